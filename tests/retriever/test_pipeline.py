from __future__ import annotations

import numpy as np
import pytest

from retriever.errors import InputError
from retriever.pipeline import RRF_K, Results, Retrieve, fuse


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
        return Results(results.ids[:, ::-1].copy(), results.scores[:, ::-1].copy())

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
