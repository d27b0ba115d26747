"""BM25Index: ranking, matching and padding rules, scores against a hand formula, persistence."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from indexing.lexical import META_FILE, BM25Index
from retriever.errors import IndexFormatError, InputError

CODE_DOCS = [
    "def get_user_by_id(user_id):\n    return db.users.fetch(user_id)",
    "class HTTPServerError(Exception):\n    '''Raised when the server answers 5xx.'''",
    "def retry_with_backoff(fn, attempts=5):\n    for delay in backoff_delays(attempts): ...",
    "function parseConfig(path) { return JSON.parse(readFile(path)); }",
    "SELECT name, email FROM accounts WHERE active = 1",
    "def list_users(db):\n    return [user.name for user in db.users.all()]",
]


@pytest.fixture()
def code_index() -> BM25Index:
    index = BM25Index()
    index.build(CODE_DOCS)
    return index


def _check_conventions(scores: np.ndarray, ids: np.ndarray, nq: int, k: int) -> None:
    assert scores.shape == ids.shape == (nq, k)
    assert scores.dtype == np.float32
    assert ids.dtype == np.int64
    found = ids >= 0
    assert np.all(scores[found] > 0)
    assert np.all(np.isneginf(scores[~found]))
    for row in range(nq):
        hits = int(found[row].sum())
        assert found[row, :hits].all() and not found[row, hits:].any()  # padding at the end
        assert np.all(np.diff(scores[row, :hits]) <= 0)  # best first
        assert len(set(ids[row, :hits])) == hits


def test_doc_containing_query_identifier_ranks_first(code_index: BM25Index) -> None:
    queries = ["get_user_by_id", "HTTPServerError", "retry with backoff", "parseConfig"]
    scores, ids = code_index.search(queries, k=3)
    _check_conventions(scores, ids, len(queries), 3)
    assert ids[:, 0].tolist() == [0, 1, 2, 3]


def test_words_find_compound_identifiers(code_index: BM25Index) -> None:
    _, ids = code_index.search(["server error", "parse config file"], k=1)
    assert ids[:, 0].tolist() == [1, 3]


def test_docs_sharing_no_token_are_not_returned(code_index: BM25Index) -> None:
    # "users" occurs in docs 0 and 5 only; everything else scores zero and must not appear.
    scores, ids = code_index.search(["users"], k=6)
    _check_conventions(scores, ids, 1, 6)
    assert sorted(ids[0, :2].tolist()) == [0, 5]
    assert ids[0, 2:].tolist() == [-1] * 4


def test_padding_when_corpus_smaller_than_k(code_index: BM25Index) -> None:
    scores, ids = code_index.search(["def return user"], k=50)
    _check_conventions(scores, ids, 1, 50)
    assert set(ids[0, ids[0] >= 0].tolist()) <= set(range(len(CODE_DOCS)))
    assert (ids[0] == -1).sum() >= 50 - len(CODE_DOCS)


@pytest.mark.parametrize("query", ["", "   ", "the of and", "zzyzx qwertyuiop", "+-*/"])
def test_queries_without_known_tokens_return_nothing(code_index: BM25Index, query: str) -> None:
    scores, ids = code_index.search([query, "HTTPServerError"], k=4)
    assert ids[0].tolist() == [-1] * 4
    assert np.all(np.isneginf(scores[0]))
    assert ids[1, 0] == 1  # the other query of the batch is unaffected


def test_no_queries(code_index: BM25Index) -> None:
    scores, ids = code_index.search([], k=3)
    assert scores.shape == ids.shape == (0, 3)


def test_empty_corpus(tmp_path: Path) -> None:
    index = BM25Index()
    index.build([])
    assert len(index) == 0
    scores, ids = index.search(["anything", ""], k=3)
    assert ids.tolist() == [[-1] * 3] * 2 and np.all(np.isneginf(scores))
    index.save(tmp_path)
    loaded = BM25Index.load(tmp_path)
    assert len(loaded) == 0
    assert loaded.search(["anything"], k=2)[1].tolist() == [[-1, -1]]


def test_corpus_without_tokens_keeps_its_rows(tmp_path: Path) -> None:
    index = BM25Index()
    index.build(["", "  ", "() {}"])
    assert len(index) == 3
    assert index.search(["x y z word"], k=2)[1].tolist() == [[-1, -1]]
    index.save(tmp_path)
    assert len(BM25Index.load(tmp_path)) == 3


def test_rebuild_replaces_previous_documents() -> None:
    index = BM25Index()
    index.build(["alpha beta", "gamma"])
    index.build(["gamma delta"])
    assert len(index) == 1
    assert index.search(["alpha"], k=2)[1].tolist() == [[-1, -1]]
    assert index.search(["gamma"], k=2)[1].tolist() == [[0, -1]]


def test_ties_broken_by_lower_row_id() -> None:
    index = BM25Index()
    index.build(["other words here", "same text", "different", "same text", "same text"])
    _, ids = index.search(["same"], k=2)
    assert ids.tolist() == [[1, 3]]


def test_config_rebuilds_and_rejects_bad_values() -> None:
    index = BM25Index(k1=1.5, b=0.3, method="atire", stem=False)
    assert index.config() == {"k1": 1.5, "b": 0.3, "method": "atire", "stem": False}
    assert BM25Index(**index.config()).config() == index.config()
    assert isinstance(BM25Index().config()["stem"], bool)  # None resolves at construction
    for bad in ({"method": "bm25+"}, {"method": "okapi"}, {"b": 1.5}, {"k1": -1.0}):
        with pytest.raises(InputError):
            BM25Index(**bad)
    with pytest.raises(InputError):
        index.search(["query"], k=0)
    with pytest.raises(InputError, match="sequence of queries"):
        index.search("query", k=1)


def test_never_prints(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    index = BM25Index()
    index.build(CODE_DOCS * 50)
    index.search(["user", ""], k=5)
    index.save(tmp_path)
    BM25Index.load(tmp_path, mmap=True).search(["user"], k=5)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# --- scores against Lucene's BM25, computed by hand ------------------------------------------

PLAIN_DOCS = [
    "apple banana apple",
    "banana cherry",
    "cherry cherry cherry date",
    "elder",
    "apple cherry elder fig grape",
]


def lucene_bm25(docs: list[list[str]], query: list[str], k1: float, b: float) -> list[float]:
    """Lucene BM25 (Kamphuis et al., 2020), written out independently of bm25s."""
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    scores = []
    for doc in docs:
        tf = Counter(doc)
        total = 0.0
        for term in query:
            df = sum(term in d for d in docs)
            if tf[term] == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            total += idf * tf[term] / (tf[term] + k1 * (1 - b + b * len(doc) / avgdl))
        scores.append(total)
    return scores


def test_hand_checked_value() -> None:
    # Query "banana" over PLAIN_DOCS, k1=1.2, b=0.75: N=5, df=2, avgdl=15/5=3.
    # idf = ln(1 + 3.5/2.5) = ln 2.4; doc 1 has tf=1, |d|=2:
    # 1 / (1 + 1.2 * (0.25 + 0.75 * 2/3)) = 1 / 1.9.
    expected = math.log(2.4) / 1.9
    index = BM25Index(stem=False)
    index.build(PLAIN_DOCS)
    scores, ids = index.search(["banana"], k=5)
    assert ids[0, 0] == 1
    assert scores[0, 0] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("k1", "b"), [(1.2, 0.75), (1.5, 0.3), (0.9, 1.0), (2.0, 0.0)])
@pytest.mark.parametrize(
    "query", ["apple", "cherry", "banana cherry", "elder fig", "apple apple date", "grape kiwi"]
)
def test_scores_match_lucene_formula(k1: float, b: float, query: str) -> None:
    index = BM25Index(k1=k1, b=b, method="lucene", stem=False)
    index.build(PLAIN_DOCS)
    scores, ids = index.search([query], k=len(PLAIN_DOCS))
    expected = lucene_bm25([d.split() for d in PLAIN_DOCS], query.split(), k1, b)
    got = np.zeros(len(PLAIN_DOCS))
    found = ids[0] >= 0
    got[ids[0, found]] = scores[0, found]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Exactly the documents with a positive expected score are returned.
    assert set(ids[0, found].tolist()) == {i for i, s in enumerate(expected) if s > 0}


# --- persistence ------------------------------------------------------------------------------


def _random_corpus(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    words = [f"tok{i}" for i in range(200)] + ["getUserById", "HTTPServer", "parse_config"]
    return [" ".join(rng.choice(words, size=int(rng.integers(1, 30)))) for _ in range(n)]


@pytest.fixture()
def saved(tmp_path: Path) -> tuple[BM25Index, Path]:
    index = BM25Index()
    index.build(_random_corpus(300, seed=1))
    index.save(tmp_path / "lexical")
    return index, tmp_path / "lexical"


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(saved: tuple[BM25Index, Path], mmap: bool) -> None:
    index, directory = saved
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [
            META_FILE,
            "params.index.json",
            "vocab.index.json",
            "data.csc.index.npy",
            "indices.csc.index.npy",
            "indptr.csc.index.npy",
        ]
    )
    for npy in directory.glob("*.npy"):
        np.load(npy, allow_pickle=False)  # plain arrays, no pickled objects
    loaded = BM25Index.load(directory, mmap=mmap)
    assert loaded.config() == index.config()
    assert len(loaded) == len(index) == 300
    queries = _random_corpus(40, seed=2) + ["get user", "http server", ""]
    for got, want in zip(loaded.search(queries, k=10), index.search(queries, k=10), strict=True):
        np.testing.assert_array_equal(got, want)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt_json(path: Path) -> None:
    path.write_text('{"not": "finished', encoding="utf-8")


def _bad_indptr(path: Path) -> None:
    np.save(path, np.arange(5, dtype=np.int64), allow_pickle=False)


def _pickled_array(path: Path) -> None:
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)


def _wrong_version(path: Path) -> None:
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["version"] = 99
    path.write_text(json.dumps(meta), encoding="utf-8")


@pytest.mark.parametrize(
    ("file_name", "damage"),
    [
        (META_FILE, Path.unlink),
        (META_FILE, _corrupt_json),
        (META_FILE, _wrong_version),
        ("params.index.json", Path.unlink),
        ("vocab.index.json", _corrupt_json),
        ("data.csc.index.npy", Path.unlink),
        ("data.csc.index.npy", _truncate),
        ("indices.csc.index.npy", _truncate),
        ("indices.csc.index.npy", _pickled_array),
        ("indptr.csc.index.npy", _truncate),
        ("indptr.csc.index.npy", _bad_indptr),
    ],
)
@pytest.mark.parametrize("mmap", [False, True])
def test_damaged_files_raise_index_format_error(
    saved: tuple[BM25Index, Path], file_name: str, damage, mmap: bool
) -> None:
    _, directory = saved
    damage(directory / file_name)
    with pytest.raises(IndexFormatError, match="retriever index --force") as info:
        BM25Index.load(directory, mmap=mmap)
    assert str(directory) in str(info.value)


def test_missing_directory_raises_index_format_error(tmp_path: Path) -> None:
    with pytest.raises(IndexFormatError, match="lexical index"):
        BM25Index.load(tmp_path / "nowhere")
