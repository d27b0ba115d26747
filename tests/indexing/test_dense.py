"""FaissIndex: the VectorIndex contract battery over each spec, persistence and input errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from indexing.dense import META_FILE, FaissIndex, spec_file_stem
from retriever.errors import IndexFormatError, InputError

DIM = 32
N = 400


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# (constructor kwargs, expected factory after adding N vectors, expected file name)
KINDS = {
    "flat": ({"spec": "Flat"}, "Flat", "flat.faiss"),
    "hnsw": ({"spec": "HNSW32,Flat", "ef_search": 256}, "HNSW32,Flat", "hnsw32.faiss"),
    "auto-exact": ({"spec": "auto"}, "Flat", "flat.faiss"),
    "auto-hnsw": (
        {"spec": "auto", "hnsw_threshold": 100, "ef_search": 256},
        "HNSW32,Flat",
        "hnsw32.faiss",
    ),
}


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return unit_vectors(N)


@pytest.fixture(params=list(KINDS), scope="module")
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def built(kind: str, vectors: np.ndarray) -> FaissIndex:
    index = FaissIndex(dim=DIM, **KINDS[kind][0])
    # Two batches: row ids must continue across adds (and "auto-hnsw" crosses its threshold).
    index.add(vectors[:60])
    index.add(vectors[60:])
    return index


def test_factory_and_length(kind: str, built: FaissIndex) -> None:
    assert built.factory == KINDS[kind][1]
    assert len(built) == N


def test_shapes_dtypes_and_order(built: FaissIndex, vectors: np.ndarray) -> None:
    queries = unit_vectors(7, seed=1)
    scores, ids = built.search(queries, k=10)
    assert scores.shape == ids.shape == (7, 10)
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    assert np.all((ids >= 0) & (ids < N))
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    # Scores are the inner products of the returned rows.
    np.testing.assert_allclose(
        scores, np.einsum("qd,qkd->qk", queries, vectors[ids]), rtol=1e-5, atol=1e-5
    )


def test_own_vector_found_at_rank_zero(built: FaissIndex, vectors: np.ndarray) -> None:
    scores, ids = built.search(vectors, k=1)
    np.testing.assert_array_equal(ids[:, 0], np.arange(N))
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


def test_padding_when_k_exceeds_size(kind: str) -> None:
    index = FaissIndex(dim=DIM, **KINDS[kind][0])
    index.add(unit_vectors(5, seed=3))
    scores, ids = index.search(unit_vectors(2, seed=4), k=8)
    assert scores.shape == ids.shape == (2, 8)
    assert np.all(ids[:, :5] >= 0) and np.all(ids[:, 5:] == -1)
    assert np.all(np.isfinite(scores[:, :5])) and np.all(np.isneginf(scores[:, 5:]))


def test_empty_index_returns_nothing(kind: str) -> None:
    index = FaissIndex(dim=DIM, **KINDS[kind][0])
    scores, ids = index.search(unit_vectors(3), k=4)
    assert ids.tolist() == [[-1] * 4] * 3 and np.all(np.isneginf(scores))
    assert index.search(np.empty((0, DIM), np.float32), k=4)[1].shape == (0, 4)


def test_hnsw_agrees_with_exact_search(vectors: np.ndarray) -> None:
    exact = FaissIndex.build(vectors, spec="Flat")
    graph = FaissIndex.build(vectors, spec="HNSW32,Flat")
    queries = unit_vectors(50, seed=5)
    truth, found = exact.search(queries, 10)[1], graph.search(queries, 10)[1]
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
    assert recall >= 0.95


def test_auto_switches_at_threshold(vectors: np.ndarray) -> None:
    index = FaissIndex(dim=DIM, hnsw_threshold=100)
    assert index.factory is None
    index.add(vectors[:99])
    assert index.factory == "Flat"
    index.add(vectors[99:100])
    assert index.factory == "HNSW32,Flat"
    assert FaissIndex.build(vectors[:100], hnsw_threshold=100).factory == "HNSW32,Flat"
    assert FaissIndex.build(vectors[:99], hnsw_threshold=100).factory == "Flat"


def test_config_rebuilds(built: FaissIndex) -> None:
    config = built.config()
    assert set(config) == {
        "spec", "dim", "hnsw_threshold", "ef_search", "ef_construction", "nprobe", "dims",
        "rescore", "rescore_multiplier", "train_size",
    }
    twin = FaissIndex(**config)
    assert twin.config() == config and len(twin) == 0


# --- persistence ------------------------------------------------------------------------------


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(kind: str, built: FaissIndex, tmp_path: Path, mmap: bool) -> None:
    built.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([KINDS[kind][2], META_FILE])
    queries = unit_vectors(20, seed=6)
    for loaded in (
        FaissIndex.load(tmp_path, mmap=mmap),
        FaissIndex.load(tmp_path, mmap=mmap, **built.config()),
    ):
        assert loaded.config() == built.config()
        assert loaded.factory == built.factory and len(loaded) == N
        for got, want in zip(loaded.search(queries, 10), built.search(queries, 10), strict=True):
            np.testing.assert_array_equal(got, want)


def test_mmap_index_is_read_only(tmp_path: Path, vectors: np.ndarray) -> None:
    FaissIndex.build(vectors, spec="Flat").save(tmp_path)
    loaded = FaissIndex.load(tmp_path, mmap=True)
    with pytest.raises(InputError, match="read-only"):
        loaded.add(vectors[:2])
    writable = FaissIndex.load(tmp_path)
    writable.add(vectors[:2])
    assert len(writable) == N + 2


def test_empty_auto_index_round_trip(tmp_path: Path) -> None:
    FaissIndex(dim=DIM).save(tmp_path)
    loaded = FaissIndex.load(tmp_path, dim=DIM)
    assert len(loaded) == 0
    assert loaded.search(unit_vectors(1), 3)[1].tolist() == [[-1, -1, -1]]


@pytest.mark.parametrize("spec", ["Flat", "HNSW32,Flat"])
@pytest.mark.parametrize("mmap", [False, True])
def test_truncated_file_raises_index_format_error(
    tmp_path: Path, vectors: np.ndarray, spec: str, mmap: bool
) -> None:
    FaissIndex.build(vectors, spec=spec).save(tmp_path)
    path = tmp_path / (spec_file_stem(spec) + ".faiss")
    for size in (path.stat().st_size // 2, 10, 0):
        path.write_bytes(path.read_bytes()[:size])
        with pytest.raises(IndexFormatError, match="Rebuild") as info:
            FaissIndex.load(tmp_path, mmap=mmap)
        assert path.name in str(info.value)


def test_missing_and_corrupt_files(tmp_path: Path, vectors: np.ndarray) -> None:
    FaissIndex.build(vectors, spec="Flat").save(tmp_path)
    (tmp_path / "flat.faiss").write_bytes(b"not a faiss index at all" * 10)
    with pytest.raises(IndexFormatError, match="flat.faiss"):
        FaissIndex.load(tmp_path)
    (tmp_path / "flat.faiss").unlink()
    with pytest.raises(IndexFormatError, match="flat.faiss.*missing"):
        FaissIndex.load(tmp_path)
    (tmp_path / META_FILE).write_text("{", encoding="utf-8")
    with pytest.raises(IndexFormatError, match=META_FILE):
        FaissIndex.load(tmp_path)
    with pytest.raises(IndexFormatError, match=META_FILE):
        FaissIndex.load(tmp_path / "nowhere", dim=DIM)


def test_load_rejects_mismatched_config(tmp_path: Path, vectors: np.ndarray) -> None:
    index = FaissIndex.build(vectors, spec="Flat")
    index.save(tmp_path)
    with pytest.raises(IndexFormatError, match="dimension 32.*says 64"):
        FaissIndex.load(tmp_path, **{**index.config(), "dim": 64})
    with pytest.raises(IndexFormatError, match="HNSW32,Flat"):
        FaissIndex.load(tmp_path, **{**index.config(), "spec": "HNSW32,Flat"})
    # "auto" accepts whichever structure was chosen at build time.
    assert FaissIndex.load(tmp_path, **{**index.config(), "spec": "auto"}).factory == "Flat"
    # A manifest that disagrees with the file about the vector count.
    meta = json.loads((tmp_path / META_FILE).read_text(encoding="utf-8"))
    meta["ntotal"] = 7
    (tmp_path / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(IndexFormatError, match="400 vectors"):
        FaissIndex.load(tmp_path)


# --- input errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (unit_vectors(3, dim=16), "dimension 16"),
        (unit_vectors(3).astype(np.float64), "float32"),
        (unit_vectors(3)[0], "2-D"),
        (unit_vectors(3).tolist(), "2-D"),
        (np.full((2, DIM), np.nan, dtype=np.float32), "NaN"),
    ],
)
def test_add_rejects_bad_vectors(bad: object, message: str) -> None:
    index = FaissIndex(spec="Flat", dim=DIM)
    with pytest.raises(InputError, match=message):
        index.add(bad)  # type: ignore[arg-type]
    assert len(index) == 0


def test_search_rejects_bad_queries_and_k(built: FaissIndex) -> None:
    with pytest.raises(InputError, match="dimension 16"):
        built.search(unit_vectors(2, dim=16), k=3)
    with pytest.raises(InputError, match="float32"):
        built.search(unit_vectors(2).astype(np.float16), k=3)
    for k in (0, -1, 2.5, True):
        with pytest.raises(InputError, match="k must be"):
            built.search(unit_vectors(2), k=k)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", ["Bogus", "HNSW32,Bogus", "flatt", ""])
def test_unknown_spec_lists_examples(spec: str) -> None:
    with pytest.raises(InputError, match="HNSW32,Flat"):
        FaissIndex(spec=spec, dim=DIM)


@pytest.mark.parametrize("kwargs", [{"dim": 0}, {"dim": 8, "ef_search": 0}, {"dim": 8.5}])
def test_bad_constructor_arguments(kwargs: dict) -> None:
    with pytest.raises(InputError):
        FaissIndex(**kwargs)


def test_trainable_spec_trains_on_first_add(vectors: np.ndarray) -> None:
    index = FaissIndex.build(vectors, spec="IVF4,Flat")
    assert len(index) == N
    scores, ids = index.search(vectors[:5], k=3)
    assert scores.shape == ids.shape == (5, 3) and ids.dtype == np.int64
    with pytest.raises(InputError, match="could not train"):
        FaissIndex.build(vectors[:10], spec="IVF64,Flat")


def test_spec_file_stem() -> None:
    assert spec_file_stem("Flat") == "flat"
    assert spec_file_stem("HNSW32,Flat") == "hnsw32"
    assert spec_file_stem("HNSW32") == "hnsw32"
    assert spec_file_stem("IVF256,PQ16") == "ivf256_pq16"
