"""The shipped code-tuned adapter loads offline by name and indexes like any model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import retriever
from encoders.adapter import merged_folder
from encoders.sentence import SentenceTransformerEncoder, resolve_model
from retriever.errors import MissingDependencyError

REPO = Path(__file__).resolve().parents[1] / "data" / "repo"


@pytest.fixture
def model_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def test_the_adapter_resolves_to_its_merged_folder_and_moves_the_vectors(model_cache):
    folder = resolve_model("code-minilm-v1")
    assert folder == merged_folder("code-minilm-v1")
    assert model_cache in folder.parents  # built in the user's model cache, not the package
    code = SentenceTransformerEncoder(model="code-minilm-v1")
    assert SentenceTransformerEncoder().fingerprint() == code.fingerprint()  # the default
    base = SentenceTransformerEncoder(model="all-MiniLM-L6-v2")
    assert code.fingerprint() != base.fingerprint()
    texts = ["def read_csv(path): return open(path).read()", "class Router: pass"]
    tuned, plain = code.encode_documents(texts), base.encode_documents(texts)
    cosines = (tuned * plain).sum(axis=1)
    assert np.all(cosines < 0.9999) and np.all(cosines > 0.5)  # changed, not replaced
    assert code.config()["model"] == "code-minilm-v1"  # manifests name it, not a cache path


def test_an_index_built_with_it_searches(tmp_path, model_cache):
    index = retriever.index(REPO, index_dir=tmp_path / "index",
                            encoder_config={"model": "code-minilm-v1"}, cache=False)
    hits = index.search("parse a configuration file", k=3, mode="dense")
    assert hits and all(hit.path for hit in hits)
    assert retriever.open(tmp_path / "index").search("parse a configuration file", k=3,
                                                     mode="dense")[0].path == hits[0].path


def test_an_unknown_name_lists_the_adapter_among_the_models():
    with pytest.raises(MissingDependencyError, match="code-minilm-v1"):
        resolve_model("no-such-model")


def test_its_shipped_heads_load_by_name_and_turn_its_vectors(model_cache):
    from encoders.adapter import shipped_adapters
    from encoders.head import head_names, read_head

    assert head_names(shipped_adapters()["code-minilm-v1"]) == ["itq", "pca", "prefix"]
    plain = SentenceTransformerEncoder(model="code-minilm-v1")
    short = SentenceTransformerEncoder(model="code-minilm-v1", head="pca", dims=128)
    assert short.dim == 128 and short.config()["head"] == "pca"
    text = ["def read_csv(path): return open(path).read()"]
    pca = read_head(shipped_adapters()["code-minilm-v1"] / "heads" / "pca.npz")
    expected = pca.apply(plain.encode_queries(text))[:, :128]
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(short.encode_queries(text), expected, atol=1e-5)
    assert pca.info["model"] == "code-minilm-v1" and pca.info["pairs"] == 12000
