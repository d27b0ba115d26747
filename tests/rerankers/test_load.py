"""Loading rerankers by name and folder: clear errors for unknown names, missing and corrupt
folders; the shipped code reranker loads offline and scores a real pair."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from retriever import rerankers
from retriever.errors import InputError, MissingDependencyError
from retriever.rerankers.code import CodeReranker


def test_names_come_from_the_entry_points():
    assert {"cross-encoder", "code-rerank"} <= set(rerankers.names())
    assert rerankers.names() == sorted(rerankers.names())


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(InputError) as caught:
        rerankers.load("colbert")
    assert "cross-encoder" in str(caught.value) and "code-rerank" in str(caught.value)


def test_a_missing_folder_says_so(tmp_path):
    with pytest.raises(MissingDependencyError, match="does not exist"):
        rerankers.load(str(tmp_path / "nowhere"))
    with pytest.raises(MissingDependencyError, match="does not exist"):
        rerankers.load("cross-encoder", model=str(tmp_path / "nowhere"))


def test_cross_encoder_needs_a_folder():
    with pytest.raises(InputError, match="model=FOLDER"):
        rerankers.load("cross-encoder")


def test_a_corrupt_cross_encoder_folder_is_a_clear_error(tmp_path, tiny_cross_encoder_dir):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="config.json"):
        rerankers.load(str(bad))
    (bad / "config.json").write_text("{}")
    with pytest.raises(InputError, match="model.safetensors"):
        rerankers.load(str(bad))
    broken = tmp_path / "broken"
    shutil.copytree(tiny_cross_encoder_dir, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    reranker = rerankers.load(str(broken))  # the folder's layout is fine; its weights are not
    with pytest.raises(InputError, match="Could not load"):
        reranker.score("q", ["text"])


def test_a_corrupt_code_reranker_folder_is_a_clear_error(tmp_path):
    folder = tmp_path / "ours"
    folder.mkdir()
    (folder / "reranker.json").write_text("{}")
    with pytest.raises(InputError, match="adapter.safetensors"):
        rerankers.load(str(folder))
    (folder / "adapter.safetensors").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a dense-retriever-reranker"):
        rerankers.load(str(folder))
    (folder / "reranker.json").write_text(json.dumps({"format": "dense-retriever-reranker",
                                                      "version": 99}))
    with pytest.raises(InputError, match="version"):
        rerankers.load(str(folder))


def test_options_are_checked_and_config_rebuilds(tiny_cross_encoder_dir):
    with pytest.raises(InputError, match="batch_size"):
        rerankers.load(str(tiny_cross_encoder_dir), batch_size=0)
    reranker = rerankers.load(str(tiny_cross_encoder_dir), max_length=64)
    again = type(reranker)(**reranker.config())
    texts = ["def parse(path): ...", "class Cache: ..."]
    np.testing.assert_allclose(again.score("parse", texts), reranker.score("parse", texts))


def test_importing_rerankers_imports_no_torch():
    code = "import sys, retriever.rerankers; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_the_shipped_code_reranker_loads_offline_and_ranks_a_real_pair(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reranker = rerankers.load("code-rerank")
    assert isinstance(reranker, CodeReranker) and reranker.config()["model"] == \
        "code-rerank-minilm-v2"
    scores = reranker.score("read a JSON file and return the parsed object", [
        "config/io.py :: load_json\ndef load_json(path):\n    with open(path) as handle:\n"
        "        return json.load(handle)",
        "geometry/shapes.py :: area\ndef area(width, height):\n    return width * height",
    ])
    assert scores.shape == (2,) and scores[0] > scores[1]
