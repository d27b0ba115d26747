"""Hybrid search over the committed multi-language fixture repository, real parts only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import retriever

QUERIES = json.loads((Path(__file__).parents[1] / "data" / "repo_queries.json").read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory, default_encoder):
    import shutil

    root = tmp_path_factory.mktemp("search") / "repo"
    shutil.copytree(Path(__file__).parents[1] / "data" / "repo", root)
    return retriever.index(root, encoder=default_encoder)


@pytest.mark.parametrize("case", QUERIES, ids=[c["path"] for c in QUERIES])
def test_hybrid_finds_the_expected_file_in_the_top_3(built, case):
    hits = built.search(case["query"], k=3)
    assert case["path"] in [hit.path for hit in hits]


@pytest.mark.parametrize("mode", ["dense", "lexical"])
def test_each_single_mode_finds_most_files_first(built, mode):
    found = sum(
        built.search(case["query"], k=1, mode=mode)[0].path == case["path"] for case in QUERIES
    )
    assert found >= len(QUERIES) * 0.6


def test_hits_carry_spans_symbols_and_text(built):
    hit = built.search("exponential backoff delay doubles", k=1)[0]
    assert hit.path == "python/netkit/retry.py"
    lines = (built.root / hit.path).read_text().splitlines()
    assert hit.text == "\n".join(lines[hit.start_line - 1 : hit.end_line])
    assert hit.language == "python"
    assert hit.symbol in ("RetryPolicy", "RetryPolicy.backoff", "retry")
    assert set(hit.to_dict()) == {"path", "start_line", "end_line", "symbol", "kind",
                                  "language", "score", "text", "chunk_id", "relevance"}


def test_results_never_overlap_within_a_file_and_are_sorted(built):
    for mode in ("hybrid", "dense", "lexical"):
        hits = built.search("matrix rows columns loop", k=20, mode=mode)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        for i, a in enumerate(hits):
            for b in hits[i + 1 :]:
                if a.path == b.path:
                    assert a.end_line < b.start_line or b.end_line < a.start_line


def test_search_many_matches_search(built):
    queries = [case["query"] for case in QUERIES[:4]]
    batch = built.search_many(queries, k=5)
    assert len(batch) == 4
    for query, hits in zip(queries, batch, strict=True):
        single = built.search(query, k=5)
        assert [h.chunk_id for h in hits] == [h.chunk_id for h in single]


def test_k_larger_than_index_returns_everything_once(built):
    hits = built.search("function", k=10_000, mode="dense")
    assert len(hits) == len(built)
    assert len({h.chunk_id for h in hits}) == len(hits)


def test_reopened_index_answers_the_same(built):
    reopened = retriever.open(built.directory)
    query = QUERIES[0]["query"]
    assert [h.chunk_id for h in reopened.search(query)] == [h.chunk_id for h in built.search(query)]


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_is_refused(built, query):
    with pytest.raises(retriever.InputError, match="query is empty"):
        built.search(query)


def test_bad_mode_and_k_are_refused(built):
    with pytest.raises(retriever.InputError, match="hybrid, dense, lexical"):
        built.search("x", mode="fuzzy")
    with pytest.raises(retriever.InputError, match="positive"):
        built.search("x", k=0)
