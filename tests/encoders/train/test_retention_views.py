"""The retention benchmark's code views (benchmarks/gpu_retention.py) rank as the engine's binary
index does: Hamming scores rank for rank, and the float rescoring of the same candidates."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from indexing.binary import BinaryIndex

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
gpu_retention = pytest.importorskip("gpu_retention")
torch = pytest.importorskip("torch")

DIM, DOCS, QUERIES, K = 384, 2000, 24, 10


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    docs = _unit(rng.normal(size=(DOCS, DIM)))
    # Queries near some documents, so the top ranks are not all ties of random codes.
    queries = _unit(docs[rng.choice(DOCS, QUERIES, replace=False)]
                    + 0.8 * rng.normal(size=(QUERIES, DIM)) / np.sqrt(DIM))
    rows = rng.permutation(DOCS)  # a group's rows are any subset of the texts, in row order
    ranked = gpu_retention.rank_views(
        torch.from_numpy(docs), torch.from_numpy(queries), [(slice(0, QUERIES), rows)],
        ["codes", "codes_rescore", "f384", "f64"], k=K)
    return docs[rows], queries, ranked


def test_codes_score_rank_for_rank_as_the_binary_index(data):
    docs, queries, ranked = data
    index = BinaryIndex(dim=DIM, rescore=None)
    index.add(docs)
    scores, _ = index.search(queries, K)
    ids, ours = ranked["codes"]
    # Ties make the ids' order arbitrary; the score at each rank is not.
    np.testing.assert_allclose(ours.astype(np.float32) / DIM, scores, atol=1e-3)
    signs = np.where(docs > 0, 1, -1) @ np.where(queries > 0, 1, -1).T
    np.testing.assert_array_equal(np.take_along_axis(signs.T, ids, 1), ours.astype(int))


def test_codes_rescored_in_float_match_the_binary_index(data):
    docs, queries, _ = data
    k = 2  # few candidates, far in the tail, where Hamming scores seldom tie
    ids, _ = gpu_retention.rank_views(torch.from_numpy(docs), torch.from_numpy(queries),
                                      [(slice(0, QUERIES), np.arange(DOCS))],
                                      ["codes_rescore"], k=k)["codes_rescore"]
    index = BinaryIndex(dim=DIM, rescore="float", rescore_multiplier=gpu_retention.RESCORE)
    index.add(docs)
    index.attach(docs)
    _, expected = index.search(queries, k)
    hamming = np.sort(np.where(queries > 0, 1, -1) @ np.where(docs > 0, 1, -1).T, axis=1)[:, ::-1]
    depth = k * gpu_retention.RESCORE
    # Where the last candidate does not tie with the next, both take the same candidates.
    untied = hamming[:, depth - 1] != hamming[:, depth]
    assert untied.sum() >= QUERIES // 4
    np.testing.assert_array_equal(ids[untied], expected[untied])
    assert not np.array_equal(ids, gpu_retention.rank_views(
        torch.from_numpy(docs), torch.from_numpy(queries), [(slice(0, QUERIES), np.arange(DOCS))],
        ["codes"], k=k)["codes"][0])  # the rescoring changed some rankings


def test_a_prefix_view_is_exact_search_on_the_renormalised_prefix(data):
    docs, queries, ranked = data
    prefix = _unit(docs[:, :64]) @ _unit(queries[:, :64]).T
    expected = np.argsort(-prefix.T, axis=1, kind="stable")[:, :K]
    np.testing.assert_array_equal(ranked["f64"][0], expected)
    assert not np.array_equal(ranked["f64"][0], ranked["f384"][0])
