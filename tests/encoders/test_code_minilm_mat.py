"""The shipped Matryoshka adapter (half the layers) stacks on code-minilm-v1 and records what
it was trained for, so ``layers=`` is checked against its own training manifest."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from encoders.adapter import merged_folder, shipped_adapters
from encoders.cuts import trained_matryoshka
from encoders.sentence import SentenceTransformerEncoder, resolve_model
from retriever.errors import InputError

TEXTS = ["def read_csv(path): return open(path).read()", "parse a duration string"]


@pytest.fixture
def model_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def test_it_merges_over_code_minilm_v1_and_keeps_its_training_record(model_cache):
    folder = resolve_model("code-minilm-mat-v1")
    assert model_cache in folder.parents
    assert trained_matryoshka(folder) == {"dims": [384], "layers": [6, 3]}
    # The base it stacks on is a shipped adapter too, merged first, with no record of its own.
    assert trained_matryoshka(resolve_model("code-minilm-v1")) == {}
    full = SentenceTransformerEncoder(model="code-minilm-mat-v1")
    base = SentenceTransformerEncoder(model="code-minilm-v1")
    cosines = (full.encode_documents(TEXTS) * base.encode_documents(TEXTS)).sum(axis=1)
    assert np.all(cosines < 0.9999) and np.all(cosines > 0.5)  # changed, not replaced


def test_half_the_layers_load_and_other_depths_are_refused(model_cache):
    half = SentenceTransformerEncoder(model="code-minilm-mat-v1", layers=3)
    vectors = half.encode_queries(TEXTS)
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    full = SentenceTransformerEncoder(model="code-minilm-mat-v1").encode_queries(TEXTS)
    assert not np.allclose(vectors, full, atol=1e-3)  # a cut, not the full model
    with pytest.raises(InputError, match="layers 6, 3"):
        SentenceTransformerEncoder(model="code-minilm-mat-v1", layers=2).encode_queries(TEXTS)


def test_a_changed_training_record_is_a_different_merge(model_cache, tmp_path):
    # The record is part of the adapter's digest: editing it cannot reuse a stale merge.
    copy = tmp_path / "mat-copy"
    shutil.copytree(shipped_adapters()["code-minilm-mat-v1"], copy)
    first = merged_folder(copy)
    record = json.loads((copy / "training.json").read_text())
    record["matryoshka"]["layers"] = [6]
    (copy / "training.json").write_text(json.dumps(record))
    second = merged_folder(copy)
    assert first != second
    assert trained_matryoshka(second) == {"layers": [6], "dims": [384]}


def test_the_stacked_base_is_named_by_its_inputs_not_its_merged_bytes(model_cache, tmp_path):
    from safetensors.numpy import load_file, save_file

    # Another CPU's BLAS rounds the base's merge differently: one weight one ulp away.
    base = resolve_model("code-minilm-v1")
    weights = load_file(str(base / "model.safetensors"))
    key = next(k for k in sorted(weights) if k.endswith("query.weight"))
    changed = weights[key].copy()
    changed.flat[0] = np.nextafter(changed.flat[0], np.float32(np.inf))
    save_file({**weights, key: changed}, str(base / "model.safetensors"))
    copy = tmp_path / "mat-copy"
    shutil.copytree(shipped_adapters()["code-minilm-mat-v1"], copy)
    assert (merged_folder(copy) / "modules.json").is_file()
    # A different code-minilm-v1 (its adapter's inputs) is refused, naming what was expected.
    manifest = json.loads((copy / "adapter.json").read_text())
    (copy / "adapter.json").write_text(json.dumps({**manifest, "base_adapter": "0" * 16}))
    with pytest.raises(InputError, match="code-minilm-v1 adapter whose inputs digest is 0{16}"):
        merged_folder(copy)
