"""The query path's caches and lazy reads change how fast an answer comes, never the answer.

Real parts: the committed fixture repository indexed with the committed static model (the
fast tier), the real BM25, FAISS and ranking priors.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import retriever
from retriever import hits as hits_module
from retriever.hits import ChunkRows, assemble
from retriever.ranking import code_priors, preset
from retriever.ranking.context import context_of
from retriever.ranking.fitted import weights_for

DATA = Path(__file__).resolve().parents[1] / "data"
QUERIES = ["retry backoff delay", "RetryPolicy", "parse the config file", "matrix rows loop",
           "tests of the http client", "Session.send"]


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    root = tmp_path_factory.mktemp("query-speed") / "repo"
    shutil.copytree(DATA / "repo", root)
    return retriever.index(root, tier="fast", fast_model=str(DATA / "static_model"))


class Counting:
    """The index's own encoder, counting the query batches it encodes."""

    def __init__(self, encoder) -> None:
        self.inner, self.batches = encoder, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode_queries(self, texts):
        self.batches.append(list(texts))
        return self.inner.encode_queries(texts)


def _top(hits):
    return [(h.chunk_id, h.path, h.start_line, h.end_line, h.score, h.relevance) for h in hits]


def test_hits_read_lazily_equal_hits_from_the_whole_chunk_table(fast):
    chunks = fast.chunks()
    for mode in ("hybrid", "lexical"):
        for query in QUERIES:
            stage = preset(None, fast, mode=mode, depth=min(100, len(fast)), filter=None)
            results = stage([query])
            keep = results.ids[0] >= 0
            rows, scores = results.ids[0][keep].tolist(), results.scores[0][keep].tolist()
            expected = assemble(((r, chunks[r], s) for r, s in zip(rows, scores, strict=True)),
                                10)
            hits = fast.search(query, k=10, mode=mode)
            assert [(h.chunk_id, h.start_line, h.end_line, h.score) for h in hits] == [
                (c.best.id, c.start_line, c.end_line, c.score) for c in expected]
            assert [h.text for h in hits] == [c.hit().text for c in expected]


def test_a_repeated_query_is_encoded_once_and_answered_the_same(fast):
    counting = Counting(fast.encoder)
    fast.use_encoder(counting)
    first = _top(fast.search("exponential backoff", k=5))
    assert len(counting.batches) == 1
    assert _top(fast.search("exponential backoff", k=5)) == first
    assert len(counting.batches) == 1
    # A batch is its own key: a query encoded beside others is not taken for the lone one.
    fast.search_many(["exponential backoff", "matrix rows"], k=5)
    assert counting.batches[-1] == ["exponential backoff", "matrix rows"]
    # Another encoder starts from nothing.
    other = Counting(counting.inner)
    fast.use_encoder(other)
    assert _top(fast.search("exponential backoff", k=5)) == first
    assert other.batches == [["exponential backoff"]]


def test_the_query_vector_cache_is_bounded(fast):
    counting = Counting(fast.encoder)
    fast.use_encoder(counting)
    for number in range(300):
        fast.search(f"query number {number}", k=1, mode="dense")
    assert len(counting.batches) == 300
    fast.search("query number 299", k=1, mode="dense")  # recent: kept
    assert len(counting.batches) == 300
    fast.search("query number 0", k=1, mode="dense")  # the oldest: dropped
    assert len(counting.batches) == 301
    cached = fast._query_vectors(["query number 0"])
    assert not cached.flags.writeable  # callers cannot change what later searches read


def test_path_factors_kept_per_index_follow_the_settings(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "src" / "client.py").write_text(
        "def send_request(url):\n    \"\"\"Send an http client request.\"\"\"\n"
        "    return open_connection(url).request()\n")
    (tmp_path / "tests" / "test_client.py").write_text(
        "def test_http_client_request():\n    \"\"\"The http client sends a request to a "
        "client server over http.\"\"\"\n    assert send_request('http://client')\n")
    index = retriever.index(tmp_path, lexical_only=True)
    weights = weights_for("lexical")
    context = context_of(index)
    query = ["http client request"]
    results = index.stage("lexical", depth=10)(query)

    def ranked(factor: float) -> list[str]:
        changed = {**weights, "path_prior": {**weights.get("path_prior", {}), "test": factor}}
        out = code_priors(index, changed)(query, results)
        return [context.paths[context.file_of[r]] for r in out.ids[0].tolist() if r >= 0]

    kept = len(context.derived)
    assert ranked(1.0)[0] == "tests/test_client.py"  # more of the query's words
    assert ranked(0.01)[0] == "src/client.py"
    assert ranked(1.0)[0] == "tests/test_client.py"  # not the factors of the last call
    # Each setting computed once and kept with the index.
    assert len(context.derived) == kept + 2


def test_chunk_rows_read_every_row_as_the_table_holds_it_and_keep_a_bounded_few(fast,
                                                                                  monkeypatch):
    monkeypatch.setattr(hits_module, "_RECENT", 5)
    table = fast._chunks
    rows = ChunkRows(table)
    expected = fast.chunks()
    for row in [*range(len(expected)), *range(len(expected))]:
        assert rows.at(row) == expected[row]
        assert len(rows._recent) <= 5
