"""Interactive searches run FAISS on one thread and leave the process's setting as it was."""

from __future__ import annotations

import threading

import faiss
import numpy as np

from indexing.dense import FaissIndex


def _index(n: int = 2000, dim: int = 16) -> tuple[FaissIndex, np.ndarray]:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = FaissIndex(dim=dim, spec="Flat")
    index.add(vectors)
    return index, vectors


def test_one_query_and_a_batch_give_the_same_answers_and_restore_the_thread_count():
    index, vectors = _index()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        alone = [index.search(vectors[i:i + 1], 5) for i in range(8)]
        batch_scores, batch_ids = index.search(vectors[:8], 5)  # more than 4: FAISS's threads
        assert faiss.omp_get_max_threads() == 2
        for i, (scores, ids) in enumerate(alone):
            assert ids[0, 0] == i
            np.testing.assert_array_equal(ids[0], batch_ids[i])
            np.testing.assert_allclose(scores[0], batch_scores[i], rtol=1e-5)
    finally:
        faiss.omp_set_num_threads(before)


def test_concurrent_searches_leave_the_setting_restored():
    index, vectors = _index()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    errors = []

    def work(offset: int) -> None:
        try:
            for i in range(50):
                _, ids = index.search(vectors[(offset + i) % 2000][None, :], 3)
                assert ids[0, 0] == (offset + i) % 2000
        except AssertionError as error:  # pragma: no cover - reported below
            errors.append(error)

    try:
        threads = [threading.Thread(target=work, args=(t * 100,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)
