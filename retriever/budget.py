"""Fitting what a front end returns into a token budget.

An agent reads a tool result into its context window, and clients cap one result (Claude
Code refuses more than 25,000 tokens and warns above 10,000). No tokenizer of the client's
model is at hand, so tokens are estimated: UTF-8 bytes / 3, rounded up. That over-counts
ordinary code and prose (3.5 to 4.5 characters a token) and counts a CJK character as a
token, so a result within the estimate is within the real count.

The estimate is taken of the exact text sent (:func:`render`), so the budget holds for what
the client receives, escapes and indentation included.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retriever.errors import InputError
from retriever.payload import snippet
from retriever.text_safety import json_text

__all__ = ["DEFAULT_MAX_TOKENS", "MIN_MAX_TOKENS", "MAX_MAX_TOKENS", "BYTES_PER_TOKEN",
           "NOTE", "estimate_tokens", "render", "check_max_tokens", "fit", "fit_lines"]

# Under Claude Code's 10,000-token warning, and so far under its 25,000 cap.
DEFAULT_MAX_TOKENS = 10_000
# An answer with no hits at all needs about 100 tokens; less than this cannot hold one.
MIN_MAX_TOKENS = 200
MAX_MAX_TOKENS = 200_000
BYTES_PER_TOKEN = 3
# A hit cut below this (about eight lines of code, the CLI's snippet) says too little: leave
# the lowest-ranked hits out instead.
_MIN_TEXT_BYTES = 600
_ELLIPSIS = "…"
NOTE = ("Trimmed to fit max_tokens: hits with text_start_line/text_end_line show only those "
        "lines; call open(path, start_line, end_line) for the rest, or ask for fewer hits.")


def estimate_tokens(text: str) -> int:
    """A conservative token count of ``text``: its UTF-8 bytes / 3, rounded up."""
    return -(-len(text.encode("utf-8", "surrogatepass")) // BYTES_PER_TOKEN)


def render(payload: Any) -> str:
    """The text a payload is sent as: indented JSON, valid UTF-8, inert on a terminal."""
    return json_text(payload)


def check_max_tokens(max_tokens: int) -> int:
    """``max_tokens`` if it is a usable budget, else InputError saying what is."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not (
        MIN_MAX_TOKENS <= max_tokens <= MAX_MAX_TOKENS
    ):
        raise InputError(f"max_tokens must be an integer from {MIN_MAX_TOKENS} to "
                         f"{MAX_MAX_TOKENS:,}, got {max_tokens!r}.")
    return max_tokens


def fit(payload: Mapping, max_tokens: int = DEFAULT_MAX_TOKENS, *,
        snippet_lines: int | None = None) -> tuple[str, dict]:
    """A search payload cut to ``max_tokens``, and the text it is sent as.

    Nothing is cut when the whole payload fits. Otherwise every hit keeps its fields, the
    texts share what the fields leave of the budget (a short text whole, long ones cut to the
    lines that share most words with the query), and when even that leaves too little per hit
    the lowest-ranked hits are left out (``omitted`` counts them).

    Args:
        payload: :func:`retriever.payload.search_payload` output (``query`` and ``hits``).
        max_tokens: the budget, as :func:`estimate_tokens` counts the rendered text.
        snippet_lines: cut every hit's text to its best window of this many lines first
            (0: no text at all), as asked, whether or not the budget needs it.

    Returns:
        ``(text, payload)``: the payload gains ``truncated`` (True when the budget cut
        something) and, on a cut hit, ``text_start_line`` and ``text_end_line`` (the file
        lines its ``text`` now holds). ``estimate_tokens(text) <= max_tokens``.

    Raises:
        InputError: ``max_tokens`` outside [MIN_MAX_TOKENS, MAX_MAX_TOKENS], or too small
            for the answer's fields alone (a very long query); the message gives the minimum.
    """
    check_max_tokens(max_tokens)
    query = payload["query"]
    fitted = {**payload, "hits": [dict(hit) for hit in payload["hits"]], "truncated": False}
    if snippet_lines is not None:
        for hit in fitted["hits"]:
            _window(hit, query, snippet_lines)
    text = render(fitted)
    if estimate_tokens(text) <= max_tokens:
        return text, fitted

    fitted.update(truncated=True, omitted=0, note=NOTE)
    hits = fitted["hits"]
    texts = [hit["text"] for hit in hits]
    windowed = ["text_start_line" in hit for hit in hits]
    for hit in hits:
        hit["text"] = ""
        # Room for the line fields a cut adds: no value written later has more digits.
        hit.setdefault("text_start_line", hit["end_line"])
        hit.setdefault("text_end_line", hit["end_line"])
    limit = max_tokens * BYTES_PER_TOKEN
    while True:
        spare = limit - _bytes(render(fitted))
        if spare < 0 and not hits:
            raise InputError(
                f"max_tokens={max_tokens} cannot hold even an answer with no hits (it needs "
                f"about {-(-(limit - spare) // BYTES_PER_TOKEN)} tokens); pass a larger "
                "max_tokens or a shorter query."
            )
        costs = [_text_bytes(t) for t in texts[: len(hits)]]
        cap = _water_level(costs, spare) if spare >= 0 else 0
        starved = len(hits) > 1 and cap < _MIN_TEXT_BYTES and any(c > cap for c in costs)
        if spare < 0 or starved:
            hits.pop()  # the lowest-ranked hit gives its share to the others
            fitted["omitted"] += 1
            continue
        break
    for hit, original, cost, had_lines in zip(hits, texts, costs, windowed, strict=False):
        hit["text"] = original
        if cost > cap:
            _cut(hit, query, cap, hit["text_start_line"] if had_lines else hit["start_line"])
        elif not had_lines:
            del hit["text_start_line"], hit["text_end_line"]
    text = render(fitted)
    while estimate_tokens(text) > max_tokens and hits:  # a guard: the sums above are exact
        hits.pop()
        fitted["omitted"] += 1
        text = render(fitted)
    return text, fitted


def fit_lines(payload: dict, max_tokens: int = DEFAULT_MAX_TOKENS) -> tuple[str, dict]:
    """A file excerpt (``start_line``, ``end_line``, ``text``) cut to ``max_tokens``.

    Whole lines are dropped from the end (a single line too long for the budget is cut with
    an ellipsis); ``end_line`` follows, and ``truncated`` says whether anything was cut.
    """
    check_max_tokens(max_tokens)
    fitted = {**payload, "truncated": False}
    text = render(fitted)
    if estimate_tokens(text) <= max_tokens:
        return text, fitted
    fitted["truncated"] = True
    lines = payload["text"].split("\n")
    fitted["text"] = ""
    spare = max_tokens * BYTES_PER_TOKEN - _bytes(render(fitted))
    if spare < 0:
        raise InputError(f"max_tokens={max_tokens} is too small for this excerpt; pass a "
                         "larger max_tokens.")
    keep = _longest_prefix(lines, spare)
    if keep == 0:
        fitted["text"] = _cut_chars(lines[0], spare)
        keep = 1
    else:
        fitted["text"] = "\n".join(lines[:keep])
    fitted["end_line"] = fitted["start_line"] + keep - 1
    return render(fitted), fitted


def _bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _text_bytes(value: str) -> int:
    """What a string adds to the rendered JSON: its escaped form without the quotes."""
    return _bytes(json_text(value)) - 2


def _water_level(costs: list[int], spare: int) -> int:
    """The largest cap with ``sum(min(cost, cap)) <= spare``: short texts stay whole and the
    long ones share the rest equally."""
    if sum(costs) <= spare:
        return max(costs, default=0)
    remaining, left = spare, len(costs)
    for cost in sorted(costs):
        share = remaining // left
        if cost > share:
            return share
        remaining -= cost
        left -= 1
    return remaining  # pragma: no cover - the sum check above returns first


def _window(hit: dict, query: str, lines: int) -> None:
    """Cut ``hit``'s text to its best ``lines`` lines (none for 0), noting which file lines
    they are."""
    if lines <= 0:
        hit["text"] = ""
        return
    first, window = snippet(hit, query, lines)
    if len(window) >= hit["end_line"] - hit["start_line"] + 1:
        return
    _show(hit, hit["start_line"], first, len(window))


def _cut(hit: dict, query: str, cap: int, first_line: int) -> None:
    """Cut ``hit``'s text, whose first line is file line ``first_line``, to at most ``cap``
    rendered bytes: the most lines that fit, around the query's words; one line too long
    for the cap is cut short with an ellipsis."""
    shown = {"text": hit["text"], "start_line": first_line}
    rows = hit["text"].split("\n")
    low, high = 1, len(rows)
    best = None
    while low <= high:  # the most lines whose best window fits
        middle = (low + high) // 2
        first, window = snippet(shown, query, middle)
        raw = rows[first - first_line : first - first_line + len(window)]
        if _text_bytes("\n".join(raw)) <= cap:
            best, low = (first, len(window)), middle + 1
        else:
            high = middle - 1
    if best is not None:
        _show(hit, first_line, *best)
        return
    first, _ = snippet(shown, query, 1)
    hit["text"] = _cut_chars(rows[first - first_line], cap)
    hit["text_start_line"] = hit["text_end_line"] = first


def _show(hit: dict, first_line: int, first: int, count: int) -> None:
    """Keep ``count`` raw lines of ``hit``'s text from file line ``first`` (its text starts
    at ``first_line``). snippet() picks the window; the lines kept are the text's own, with
    any carriage returns, not snippet()'s display copies."""
    rows = hit["text"].split("\n")
    hit["text"] = "\n".join(rows[first - first_line : first - first_line + count])
    hit["text_start_line"] = first
    hit["text_end_line"] = first + count - 1


def _cut_chars(line: str, cap: int) -> str:
    """The longest prefix of ``line`` that, with an ellipsis, renders in ``cap`` bytes."""
    low, high = 0, len(line)
    while low < high:
        middle = (low + high + 1) // 2
        if _text_bytes(line[:middle] + _ELLIPSIS) <= cap:
            low = middle
        else:
            high = middle - 1
    return line[:low] + _ELLIPSIS if _text_bytes(line[:low] + _ELLIPSIS) <= cap else ""


def _longest_prefix(lines: list[str], cap: int) -> int:
    """How many leading lines, joined by newlines, render in ``cap`` bytes."""
    total = -2  # the first line has no "\n" before it
    for count, line in enumerate(lines):
        total += _text_bytes(line) + 2
        if total > cap:
            return count
    return len(lines)
