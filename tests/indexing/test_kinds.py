"""The VectorIndex contract battery over every index kind: float FAISS specs (exact, graph,
IVF, PQ, SQ, OPQ, Matryoshka prefix with a float funnel) and binary ones rescored in float or
int8. Round trips, shapes and dtypes, -1 padding, a document's own vector first (exact kinds),
add/remove by label, per-call knobs, damaged files and unfit specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexing.binary import BinaryIndex
from indexing.dense import FaissIndex
from retriever.components import new_vector_index as new_index
from retriever.components import vector_kind
from retriever.errors import IndexFormatError, InputError

DIM = 64
N = 1200


def clustered(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """Unit vectors around 30 centres: neighbour lists are not near-ties, as in real data."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, dim))
    x = centres[rng.integers(0, 30, n)] + 0.7 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# name: (spec, options, exact: a document's own vector must come first, can remove by label)
KINDS = {
    "flat": ("Flat", {}, True, True),
    "hnsw": ("HNSW32,Flat", {"ef_search": 256}, True, False),
    "ivf-flat": ("IVF8,Flat", {"nprobe": 8}, True, True),
    "sq8": ("SQ8", {}, True, True),
    # 4-bit PQ codes: 8-bit PQ training takes a minute on a busy 2-core machine.
    "ivf-pq": ("IVF8,PQ8x4", {"nprobe": 8, "rescore": "float", "rescore_multiplier": 8},
               False, True),
    "matryoshka-32": ("Flat", {"dims": 32, "rescore": "float", "rescore_multiplier": 8},
                      True, True),
    "bflat": ("BFlat", {}, True, True),
    "bflat-int8": ("BFlat", {"rescore": "int8"}, True, True),
    "bflat-hamming": ("BFlat", {"rescore": None}, False, True),
    "bhnsw": ("BHNSW32", {"ef_search": 256}, True, False),
    "bivf": ("BIVF8", {"nprobe": 8}, True, True),
    "bflat-prefix": ("BFlat", {"dims": 32, "rescore_multiplier": 10}, True, True),
}


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered(N)


@pytest.fixture(params=list(KINDS), scope="module")
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def make(kind: str, vectors: np.ndarray, ids: np.ndarray | None = None):
    spec, options, _, _ = KINDS[kind]
    cls = vector_kind(spec, DIM)
    return cls.build(vectors, ids=ids, spec=spec, **options)


@pytest.fixture(scope="module")
def built(kind: str, vectors: np.ndarray):
    return make(kind, vectors)


def test_kind_is_chosen_by_spec() -> None:
    assert isinstance(new_index("BHNSW32", dim=DIM), BinaryIndex)
    assert isinstance(new_index("IVF8,PQ16", dim=DIM), FaissIndex)
    assert isinstance(new_index("auto", dim=DIM), FaissIndex)
    # OPQ parses (training it is too slow for a unit test on 2 cores).
    assert new_index("OPQ16,IVF8,PQ16", dim=DIM).factory == "OPQ16,IVF8,PQ16"


def test_shapes_dtypes_order(built, vectors: np.ndarray) -> None:
    queries = clustered(9, seed=1)
    scores, ids = built.search(queries, 10)
    assert scores.shape == ids.shape == (9, 10)
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    assert np.all((ids >= 0) & (ids < N))
    assert np.all(np.diff(scores, axis=1) <= 1e-5)


def test_padding_when_k_exceeds_size(kind: str, built) -> None:
    scores, ids = built.search(clustered(3, seed=2), N + 7)
    assert ids.shape == (3, N + 7)
    assert np.all(ids[:, -7:] == -1) and np.all(np.isneginf(scores[:, -7:]))
    found = ids[ids >= 0]
    assert len(found) <= 3 * N
    for row in ids:
        valid = row[row >= 0]
        assert len(set(valid.tolist())) == len(valid)  # no result twice


def test_own_vector_first_for_exact_kinds(kind: str, built, vectors: np.ndarray) -> None:
    if not KINDS[kind][2]:
        pytest.skip("approximate ranking: own vector need not be first")
    _, ids = built.search(vectors[:300], 1)
    assert (ids[:, 0] == np.arange(300)).mean() >= 0.99


def near(vectors: np.ndarray, n: int, seed: int = 3) -> np.ndarray:
    """Queries with planted neighbours: perturbed copies of documents."""
    rng = np.random.default_rng(seed)
    x = vectors[rng.integers(0, len(vectors), n)] + 0.5 * rng.standard_normal(
        (n, vectors.shape[1])) / np.sqrt(vectors.shape[1])
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_recall_against_exact_search(kind: str, built, vectors: np.ndarray) -> None:
    queries = near(vectors, 100)
    truth = FaissIndex.build(vectors, spec="Flat").search(queries, 10)[1]
    found = built.search(queries, 10)[1]
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
    floor = 0.5 if kind in ("bflat-hamming", "ivf-pq") else 0.85
    assert recall >= floor, recall


def test_empty_index(kind: str) -> None:
    spec, options, _, _ = KINDS[kind]
    index = new_index(spec, dim=DIM, **options)
    scores, ids = index.search(clustered(2), 4)
    assert ids.tolist() == [[-1] * 4] * 2 and np.all(np.isneginf(scores))


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(kind: str, built, vectors: np.ndarray, tmp_path: Path,
                              mmap: bool) -> None:
    built.save(tmp_path)
    cls = type(built)
    queries = clustered(20, seed=4)
    want = built.search(queries, 10)
    for loaded in (cls.load(tmp_path, mmap=mmap, vectors=vectors),
                   cls.load(tmp_path, mmap=mmap, vectors=vectors, **built.config())):
        assert loaded.config() == built.config() and len(loaded) == N
        got = loaded.search(queries, 10)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)
    assert cls(**built.config()).config() == built.config()


def test_add_and_remove_by_label(kind: str, vectors: np.ndarray) -> None:
    labels = np.arange(N, dtype=np.int64) * 7 + 1_000_003
    index = make(kind, vectors[:1000], ids=labels[:1000])
    index.add(vectors[1000:], ids=labels[1000:])
    index.attach(vectors, labels)
    assert len(index) == N
    _, ids = index.search(vectors[1000:1010], 5)
    assert set(ids.ravel().tolist()) <= set(labels.tolist())
    if KINDS[kind][2]:
        assert (ids[:, 0] == labels[1000:1010]).mean() >= 0.9
    gone = labels[:50]
    if not KINDS[kind][3]:
        with pytest.raises(InputError, match="cannot remove"):
            index.remove_ids(gone)
        return
    assert index.remove_ids(gone) == 50
    assert len(index) == N - 50
    _, ids = index.search(vectors[:50], 20)
    assert not set(ids.ravel().tolist()) & set(gone.tolist())


def test_duplicate_labels_rejected(vectors: np.ndarray) -> None:
    with pytest.raises(InputError, match="unique"):
        FaissIndex.build(vectors[:4], spec="Flat", ids=np.array([1, 1, 2, 3]))


def test_search_knobs_are_per_call(vectors: np.ndarray) -> None:
    for spec in ("IVF16,Flat", "BIVF16"):
        index = new_index(spec, dim=DIM, nprobe=16)
        index = type(index).build(vectors, spec=spec, nprobe=16)
        queries = clustered(50, seed=5)
        before = index.search(queries, 10)[1]
        narrow = index.search(queries, 10, nprobe=1)[1]
        assert not np.array_equal(before, narrow)
        # The narrow call left the shared index as it was.
        np.testing.assert_array_equal(index.search(queries, 10)[1], before)
    hnsw = FaissIndex.build(vectors, spec="HNSW32,Flat")
    assert hnsw.search(vectors[:5], 3, ef_search=8)[1].shape == (5, 3)
    with pytest.raises(InputError, match="nprobe"):
        hnsw.search(vectors[:5], 3, nprobe=0)


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        ("Bogus", {}, "cannot build index spec"),
        ("IVF8,PQ7", {}, "PQ's M must divide"),
        ("IVF4096,PQ48", {}, "64-d"),
        ("OPQ7,IVF8,PQ7", {}, "64-d"),
        ("BFlat", {"dims": 20}, "multiple of 8"),
        ("BBogus", {}, "BFlat"),
        ("Flat", {"dims": 128}, "exceeds"),
        ("BFlat", {"rescore": "int4"}, "rescore"),
        ("Flat", {"no_such_option": 1}, "Bad option"),
    ],
)
def test_unknown_or_unfit_spec(spec: str, options: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        new_index(spec, dim=DIM, **options)


@pytest.mark.parametrize("spec", ["Flat", "IVF8,SQ8", "BFlat", "BIVF8"])
def test_damaged_files_raise_index_format_error(spec: str, vectors: np.ndarray,
                                                tmp_path: Path) -> None:
    cls = vector_kind(spec, DIM)
    cls.build(vectors, spec=spec).save(tmp_path)
    (path,) = [p for p in tmp_path.iterdir() if p.suffix in (".faiss", ".faissb")]
    data = path.read_bytes()
    for damaged in (data[: len(data) // 2], data[:10], b"", b"garbage" * 50):
        path.write_bytes(damaged)
        for mmap in (False, True):
            with pytest.raises(IndexFormatError, match="Rebuild") as info:
                cls.load(tmp_path, mmap=mmap)
            assert path.name in str(info.value)


def test_binary_memory_is_a_32nd_of_float_plus_labels(vectors: np.ndarray) -> None:
    index = BinaryIndex.build(vectors)
    float_bytes = vectors.nbytes
    assert N * (DIM // 8 + 8) <= index.memory_bytes() <= N * (DIM // 8 + 8) + 1024
    assert float_bytes / index.memory_bytes() >= 4  # 64-d: 256 B vs 16 B; 384-d gives 27x


def test_int8_files_written_and_checked(vectors: np.ndarray, tmp_path: Path) -> None:
    BinaryIndex.build(vectors, rescore="int8").save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "bflat.faissb", "binary.json", "int8.npy", "int8_scale.npy"}
    np.save(tmp_path / "int8.npy", np.zeros((3, DIM), np.int8))
    with pytest.raises(IndexFormatError, match="int8.npy"):
        BinaryIndex.load(tmp_path)
    with pytest.raises(InputError, match="attached"):
        index = BinaryIndex(dim=DIM, rescore="int8")
        index.add(vectors)
        index.save(tmp_path / "x")
