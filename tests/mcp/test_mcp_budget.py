"""The token budget (retriever.budget) over hostile payloads: long lines, non-ASCII text,
control characters, budgets from tiny to ample. Properties, not fixed answers: the result
never exceeds the budget, keeps the best-ranked hits in order, and every text it shows is
the file's own lines at the line numbers it states."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retriever.budget import (
    DEFAULT_MAX_TOKENS,
    MIN_MAX_TOKENS,
    estimate_tokens,
    fit,
    fit_lines,
)
from retriever.errors import InputError

LINE = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300).map(
    lambda s: s.replace("\n", " ")
)


@st.composite
def payloads(draw):
    hits = []
    line = 1
    for n in range(draw(st.integers(0, 12))):
        rows = draw(st.lists(LINE, min_size=1, max_size=60))
        hits.append({
            "path": f"src/file_{n}.py", "start_line": line, "end_line": line + len(rows) - 1,
            "symbol": draw(st.none() | st.text(max_size=20)), "kind": "function",
            "language": "python", "score": 1.0 / (n + 1), "text": "\n".join(rows),
            "chunk_id": f"{n:024x}",
        })
        line += len(rows)
    return {"schema": "dense-retriever.search/1", "query": draw(LINE.filter(str.strip)),
            "mode": "lexical", "k": len(hits), "index": "/somewhere/.retriever",
            "hits": hits}


def _check_hit(shown: dict, original: dict) -> None:
    for key in ("path", "start_line", "end_line", "symbol", "score", "chunk_id"):
        assert shown[key] == original[key]
    if "text_start_line" not in shown:
        assert shown["text"] == original["text"]
        return
    rows = original["text"].split("\n")
    first, last = shown["text_start_line"], shown["text_end_line"]
    assert original["start_line"] <= first <= last <= original["end_line"]
    expected = rows[first - original["start_line"] : last - original["start_line"] + 1]
    got = shown["text"].split("\n")
    assert len(got) == len(expected)
    assert got[:-1] == expected[:-1]
    # The last line is whole, or a prefix of it cut with an ellipsis (or nothing, when the
    # budget leaves room for no character at all).
    assert got[-1] in (expected[-1], "") or (got[-1].endswith("…")
                                             and expected[-1].startswith(got[-1][:-1]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=payloads(), budget=st.integers(MIN_MAX_TOKENS, 6_000),
       lines=st.none() | st.integers(0, 10))
def test_fit_never_exceeds_the_budget_and_keeps_true_lines(payload, budget, lines):
    try:
        text, fitted = fit(payload, budget, snippet_lines=lines)
    except InputError as exc:
        assert "max_tokens" in str(exc)  # only a query too long for any answer
        return
    assert estimate_tokens(text) <= budget
    assert json.loads(text) == fitted
    kept = [hit["chunk_id"] for hit in fitted["hits"]]
    assert kept == [hit["chunk_id"] for hit in payload["hits"]][: len(kept)]
    assert len(kept) + fitted.get("omitted", 0) == len(payload["hits"])
    for shown, original in zip(fitted["hits"], payload["hits"], strict=False):
        if lines == 0:
            assert shown["text"] == ""
        else:
            _check_hit(shown, original)
    if not fitted["truncated"]:
        assert "omitted" not in fitted


@given(payload=payloads())
@settings(max_examples=40, deadline=None)
def test_a_payload_that_fits_is_returned_whole(payload):
    text, fitted = fit(payload, 200_000)
    assert fitted == {**payload, "truncated": False}
    assert json.loads(text) == fitted


def test_the_estimate_is_conservative_for_ascii_and_non_ascii():
    assert estimate_tokens("abc" * 100) == 100
    assert estimate_tokens("中" * 10) == 10  # three UTF-8 bytes: one token each
    assert estimate_tokens("") == 0


@pytest.mark.parametrize("budget", [0, MIN_MAX_TOKENS - 1, 10**7, True, 1.5])
def test_an_unusable_budget_is_refused(budget):
    with pytest.raises(InputError, match="max_tokens must be an integer"):
        fit({"query": "q", "hits": []}, budget)


def test_a_query_too_long_for_the_budget_says_what_would_fit():
    with pytest.raises(InputError, match="needs about"):
        fit({"query": "word " * 1_000, "hits": []}, MIN_MAX_TOKENS)


@given(rows=st.lists(LINE, min_size=1, max_size=400), budget=st.integers(MIN_MAX_TOKENS, 3_000))
@settings(max_examples=80, deadline=None)
def test_fit_lines_cuts_from_the_end(rows, budget):
    excerpt = {"path": "a.py", "start_line": 5, "end_line": 4 + len(rows),
               "total_lines": 10_000, "text": "\n".join(rows)}
    text, fitted = fit_lines(excerpt, budget)
    assert estimate_tokens(text) <= budget
    assert json.loads(text) == fitted
    shown = fitted["text"].split("\n")
    assert fitted["end_line"] - fitted["start_line"] + 1 == len(shown)
    assert shown[:-1] == rows[: len(shown) - 1]
    assert fitted["truncated"] == (fitted["text"] != excerpt["text"])


def test_the_default_budget_is_under_claude_codes_limit():
    assert DEFAULT_MAX_TOKENS <= 25_000
