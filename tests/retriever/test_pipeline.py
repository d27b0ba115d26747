from __future__ import annotations

import numpy as np
import pytest

from retriever.errors import InputError
from retriever.pipeline import RRF_K, Rescore, Results, Retrieve, fuse


def _fixed(rows_per_query):
    """A first stage answering from fixed rankings (score = 1 / rank)."""

    def search(queries, k):
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.zeros((len(queries), k), dtype=np.float32)
        for q, _ in enumerate(queries):
            rows = rows_per_query[q][:k]
            ids[q, : len(rows)] = rows
            scores[q, : len(rows)] = [1.0 / (i + 1) for i in range(len(rows))]
        return scores, ids

    return Retrieve(search, k=10)


def test_rrf_hand_computed():
    a = _fixed([[1, 2, 3]])
    b = _fixed([[3, 1]])
    fused = fuse([a, b])(["q"])
    # 1: 1/61 + 1/62; 3: 1/63 + 1/61; 2: 1/62
    expected = {1: 1 / 61 + 1 / 62, 3: 1 / 63 + 1 / 61, 2: 1 / 62}
    assert RRF_K == 60
    assert fused.ids[0, :3].tolist() == [1, 3, 2]
    np.testing.assert_allclose(fused.scores[0, :3], [expected[1], expected[3], expected[2]],
                               rtol=1e-6)
    assert (fused.ids[0, 3:] == -1).all()


def test_cutoff_and_composition():
    stage = fuse([_fixed([[5, 6, 7, 8]]), _fixed([[8, 7]])]) % 2
    result = stage(["q"])
    assert result.ids.shape == (1, 2)

    def reverse(queries, results: Results) -> Results:
        return Results(results.scores[:, ::-1].copy(), results.ids[:, ::-1].copy(),
                       results.query_ids)

    flipped = (_fixed([[1, 2, 3]]) % 3 >> reverse)(["q"])
    assert flipped.ids[0].tolist() == [3, 2, 1]


def test_first_stage_cutoff_asks_for_fewer():
    asked = []

    def search(queries, k):
        asked.append(k)
        return np.zeros((1, k), np.float32), np.arange(k, dtype=np.int64)[None]

    (Retrieve(search, k=100) % 7)(["q"])
    assert asked == [7]


def test_bad_arguments():
    with pytest.raises(InputError):
        fuse([])
    with pytest.raises(InputError, match="rrf"):
        fuse([_fixed([[1]])], method="borda")
    with pytest.raises(InputError):
        fuse([_fixed([[1]])]) % 0


def test_stages_print_themselves_and_keep_query_ids():
    dense, lexical = Retrieve(lambda q, k: _zeros(q, k), name="dense"), _fixed([[1, 2], [2]])

    def rerank(queries, results: Results) -> Results:
        return results

    pipeline = fuse([dense % 100, lexical % 50]) >> Rescore(rerank) % 10
    assert repr(pipeline) == "fuse([dense % 100, retrieve % 50], 'rrf', k=60) >> (rerank) % 10"
    seeded = Results(np.zeros((2, 1), np.float32), np.zeros((2, 1), np.int64), ("a", "b"))
    out = pipeline(["x", "y"], seeded)
    assert out.query_ids == ("a", "b") and out.ids.shape[0] == 2
    with pytest.raises(InputError, match="first stage"):
        Rescore(rerank)(["x"])
    with pytest.raises(InputError, match="2 rankings but 1"):
        Results(np.zeros((2, 1), np.float32), np.zeros((2, 1), np.int64), ("a",))


def _zeros(queries, k):
    return np.zeros((len(queries), k), np.float32), np.full((len(queries), k), -1, np.int64)
