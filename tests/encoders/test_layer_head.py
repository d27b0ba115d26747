"""Layer heads: an affine map from a cut model's vectors to its full-depth ones, written as an
ordinary head file and used only at the depth it was fitted for."""

from __future__ import annotations

import numpy as np
import pytest

from encoders.head import read_head
from encoders.sentence import SentenceTransformerEncoder
from encoders.train.heads import fit_heads, fit_layer_head, layer_map
from retriever.errors import InputError

WORDS = ("sum", "max", "min", "length", "sorted", "reversed", "first", "last", "mean",
         "median", "mode", "product", "count", "unique", "shuffled", "joined")
THINGS = ("list", "file", "row", "column", "queue", "tree", "graph", "string", "user", "order",
          "price", "token", "packet", "image", "event", "record")
# More texts than dimensions (384), so the map is determined by the data, not the ridge.
PAIRS = [(f"return the {w} of a {t}", f"def {w}_of_{t}({t}s):\n    return {w}({t}s)")
         for w in WORDS for t in THINGS]


def test_layer_map_recovers_an_affine_map_as_a_head():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8)).astype(np.float32)
    w, b = rng.normal(size=(8, 8)), rng.normal(size=8)
    mean, matrix = layer_map(x, (x @ w + b).astype(np.float32), ridge=1e-9)
    assert np.allclose((x - mean) @ matrix, x @ w + b, atol=1e-3)


def test_layer_map_refuses_mismatched_or_too_few_rows():
    with pytest.raises(InputError, match="as many shallow as full"):
        layer_map(np.zeros((10, 4)), np.zeros((9, 4)))
    with pytest.raises(InputError, match="more rows than"):
        layer_map(np.zeros((3, 4)), np.zeros((3, 4)))


def test_a_fitted_layer_head_moves_the_cut_vectors_toward_the_full_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    head = fit_layer_head(PAIRS, out=tmp_path / "heads", model="code-minilm-mat-v1", layers=3,
                          count=len(PAIRS))
    assert (tmp_path / "heads" / "layer3.npz").is_file()
    assert read_head(tmp_path / "heads" / "layer3.npz").info["layers"] == 3
    texts = [p[1] for p in PAIRS[:16]]
    full = SentenceTransformerEncoder(model="code-minilm-mat-v1").encode_documents(texts)
    raw = SentenceTransformerEncoder(model="code-minilm-mat-v1", layers=3).encode_documents(texts)
    turned = SentenceTransformerEncoder(model="code-minilm-mat-v1", layers=3,
                                        head=str(tmp_path / "heads" / "layer3.npz"))
    moved = turned.encode_documents(texts)
    assert np.allclose(np.linalg.norm(moved, axis=1), 1.0, atol=1e-5)
    assert (moved * full).sum(1).mean() > (raw * full).sum(1).mean() + 0.05
    assert turned.fingerprint() != SentenceTransformerEncoder(
        model="code-minilm-mat-v1", layers=3).fingerprint()
    assert head.info["kind"] == "layer"
    # At any other depth the map would scramble the vectors: refused, naming its depth.
    for layers in (None, 6):
        with pytest.raises(InputError, match="fitted for layers=3"):
            SentenceTransformerEncoder(model="code-minilm-mat-v1", layers=layers,
                                       head=str(tmp_path / "heads" / "layer3.npz"))


def test_fit_heads_points_layer_heads_to_their_own_fit(tmp_path):
    with pytest.raises(InputError, match="fit_layer_head"):
        fit_heads(PAIRS, out=tmp_path, kinds=["layer"], model="code-minilm-v1")
