"""What front ends show: the search payload, snippet selection, and an index's description.

The CLI's ``--json``, the MCP server and Python callers share these, so a result reads the
same everywhere. The payload's fields are documented in README.md ("--json output"); within
:data:`SCHEMA` fields are only ever added.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import retriever.errors
from indexing.tokenize import code_tokens
from retriever.errors import InputError
from retriever.hits import Hit
from retriever.ranking.calibration import CONFIDENT
from retriever.reader import SearchMode

__all__ = ["SCHEMA", "ERROR_SCHEMA", "SNIPPET_LINES", "SKIPPED_SHOWN", "search_payload",
           "confident", "hit_records", "error_payload", "snippet", "highlights", "describe",
           "skipped_files"]

SCHEMA = "dense-retriever.search/1"
ERROR_SCHEMA = "dense-retriever.error/1"
SNIPPET_LINES = 8
SKIPPED_SHOWN = 20

_UNKNOWN = "?"


def search_payload(index: Any, query: str, hits: Sequence[Hit], *, mode: str | SearchMode,
                   k: int) -> dict:
    """The JSON-ready answer to one query (schema :data:`SCHEMA`).

    Args:
        index: the :class:`retriever.Index` that answered.
        query: the query as asked.
        hits: what ``index.search(query, k=k, mode=mode)`` returned.
        mode: the search mode used.
        k: the number of hits asked for.

    Returns:
        ``{"schema", "query", "mode", "k", "index", "tier", "confident", "hits":
        [Hit.to_dict(), ...]}``, with ``index`` the absolute index directory, ``tier`` the
        vectors that answered (``"dense"``, ``"fast"`` or ``"lexical"``) and ``confident``
        what :func:`confident` says of the hits. Serialise it with
        :func:`retriever.text_safety.json_text` to get valid UTF-8 whatever the strings hold.
    """
    return {
        "schema": SCHEMA,
        "query": query,
        "mode": SearchMode.parse(mode).value,
        "k": k,
        "index": str(Path(index.directory).absolute()),
        "tier": getattr(index, "tier", None),
        "confident": confident(hits),
        "hits": [hit.to_dict() for hit in hits],
    }


def confident(hits: Sequence[Hit | Mapping]) -> bool | None:
    """Whether an answer holds a confident match: a hit whose ``relevance`` reaches
    :data:`retriever.ranking.calibration.CONFIDENT`. False with no hits; None when hits
    carry no relevance (similar-code answers, which have no query to be relevant to)."""
    values = [hit["relevance"] if isinstance(hit, Mapping) else hit.relevance for hit in hits]
    known = [value for value in values if value is not None]
    if values and not known:
        return None
    return any(value >= CONFIDENT for value in known)


def hit_records(payload: Mapping) -> list[dict]:
    """A payload's hits as JSON Lines records: each hit's fields, plus the query it answers.

    Args:
        payload: what :func:`search_payload` returned.

    Returns:
        ``[{"query", "path", "start_line", ...}, ...]``, best first; empty when nothing matched.
    """
    return [{"query": payload["query"], **hit} for hit in payload["hits"]]


# The documented error classes (retriever.errors), most specific first in any MRO walk.
_ERROR_NAMES = frozenset(retriever.errors.__all__)


def error_payload(error: BaseException, *, kind: str | None = None) -> dict:
    """The JSON-ready form of a failure (schema :data:`ERROR_SCHEMA`).

    Args:
        error: what was raised.
        kind: the ``type`` to report instead of the exception's class (``"UsageError"`` for a
            malformed command line).

    Returns:
        ``{"schema", "error": {"type", "message"}}``. ``type`` is always one of the classes of
        :mod:`retriever.errors` (the nearest documented base of a private subclass), so tools
        can switch on it; ``message`` says what went wrong and what to do.
    """
    if kind is None:
        kind = next((cls.__name__ for cls in type(error).__mro__ if cls.__name__ in _ERROR_NAMES
                     and cls.__module__ == "retriever.errors"), type(error).__name__)
    return {"schema": ERROR_SCHEMA, "error": {"type": kind, "message": str(error)}}


def snippet(hit: Hit | Mapping, query: str, lines: int = SNIPPET_LINES) -> tuple[int, list[str]]:
    """The window of a hit's lines that shares most words with the query.

    Lines are split on ``\\n`` only, as the chunker counts them, so the numbers stay right
    when a chunk holds form feeds or other characters ``str.splitlines`` would break on.

    Args:
        hit: a :class:`Hit` or its ``to_dict()`` form (a payload's hit).
        query: the query, whose code tokens are matched against each line.
        lines: the window's size.

    Returns:
        ``(first_line, window)``: the 1-based file line number of the window's first line and
        at most ``lines`` raw lines (no line endings). The earliest best window wins ties.

    Raises:
        InputError: ``lines`` is not a positive integer.
    """
    if isinstance(lines, bool) or not isinstance(lines, int) or lines < 1:
        raise InputError(f"A snippet needs at least one line; got lines={lines!r}.")
    if isinstance(hit, Mapping):
        text, start = hit["text"], hit["start_line"]
    else:
        text, start = hit.text, hit.start_line
    rows = [row.removesuffix("\r") for row in text.split("\n")]
    if len(rows) > 1 and rows[-1] == "":
        rows.pop()  # a trailing newline ends the last line; it is not a line of its own
    if len(rows) <= lines:
        return start, rows
    wanted = set(code_tokens(query))
    marks = [len(wanted.intersection(code_tokens(row))) for row in rows]
    best = max(range(len(rows) - lines + 1),
               key=lambda i: (sum(marks[i : i + lines]), -i))
    return start + best, rows[best : best + lines]


# The identifiers indexing.tokenize cuts text into: word runs, joined by "-" for kebab-case.
# Repeated here because highlighting needs where each one is, not only its tokens.
_IDENTIFIER = re.compile(r"\w+(?:-(?=[^\W\d_])\w+)*")


def highlights(line: str, query: str) -> list[tuple[int, int]]:
    """Where a line holds the query's words, as the lexical index and :func:`snippet` see them.

    Matching goes through the same code tokenizer, so the query ``"user id"`` marks ``user``
    and ``Id`` inside ``getUserById``, and ``get_user_by_id`` marks the whole identifier.

    Args:
        line: one line, exactly as it will be shown (escape it first: the offsets are its own).
        query: the query.

    Returns:
        ``[(start, end), ...]`` character offsets into ``line``, in order, not overlapping.
    """
    wanted = set(code_tokens(query))
    spans: list[tuple[int, int]] = []
    if not wanted:
        return spans
    for match in _IDENTIFIER.finditer(line):
        raw = match.group()
        tokens = code_tokens(raw)
        if not wanted.intersection(tokens):
            continue
        whole = raw.strip("_").lower()
        lowered = raw.lower()
        if whole in wanted or len(lowered) != len(raw):
            # The whole identifier matched, or lowercasing moved the offsets (e.g. "İ"):
            # marking all of it is right, or at least never marks the wrong letters.
            spans.append(match.span())
            continue
        cursor = 0
        for part in tokens[1:] if tokens[0] == whole else tokens:
            at = lowered.find(part, cursor)
            if at < 0:
                continue
            cursor = at + len(part)
            if part in wanted:
                spans.append((match.start() + at, match.start() + cursor))
    return spans


def describe(info: Mapping) -> list[tuple[str, str]]:
    """``(label, value)`` rows for a person reading :meth:`Index.info`.

    Renders both manifest layouts (``encoders`` and ``components`` lists, or the older
    ``encoder`` and ``indexes`` objects) and never fails on a value of an unexpected type:
    it shows ``?`` instead. Keys it has no row for are shown generically. Continuation rows
    of a multi-row entry have an empty label. The values are raw: escape them with
    :func:`retriever.text_safety.printable` before printing.
    """
    info = info if isinstance(info, Mapping) else {}
    rows: list[tuple[str, str]] = [
        ("index", f"{_text(info.get('directory'))} ({_text(info.get('generation'))})"),
        ("format", f"{_text(info.get('format'))} v{_text(info.get('version'))}, "
                   f"{_text(info.get('created_by', ''))}"),
        ("created", _text(info.get("created_at", ""))),
        ("source", _source(info.get("source"), info.get("directory"))),
    ]
    if "encoders" in info or "encoder" not in info:
        rows += _many("encoders", info.get("encoders"), _encoder)
    else:
        rows += _many("encoder", [info.get("encoder")], _encoder)
    rows.append(("chunker", _named(info.get("chunker"))))
    if "components" in info or "indexes" not in info:
        rows += _many("components", info.get("components"), _component)
    else:
        indexes = info.get("indexes")
        entries = ([_role(role, entry) for role, entry in indexes.items()]
                   if isinstance(indexes, Mapping) else None)
        rows += _many("components", entries, _component)
    rows.append(("counts", _counts(info.get("counts"))))
    size = info.get("bytes")
    rows.append(("bytes", f"{size:,}" if isinstance(size, int) else _text(size)))
    for key in sorted(set(info) - _SHOWN, key=str):
        rows.append((str(key), _short(info[key])))
    return rows


def skipped_files(info: Mapping, limit: int = SKIPPED_SHOWN) -> tuple[list[tuple[str, str]], int]:
    """The first ``limit`` files the build left out, and how many more there are.

    Returns:
        ``([(path, reason), ...], more)``. ``more`` counts both the recorded entries past
        ``limit`` and those the manifest only counted (its list is capped).
    """
    info = info if isinstance(info, Mapping) else {}
    recorded = info.get("skipped")
    recorded = list(recorded) if isinstance(recorded, list | tuple) else []
    counts = info.get("counts")
    counted = counts.get("skipped") if isinstance(counts, Mapping) else None
    total = max(len(recorded), counted if isinstance(counted, int) else 0)
    shown = [_skip(entry) for entry in recorded[: max(limit, 0)]]
    return shown, total - len(shown)


# Top-level keys the rows above render (or that only repeat what they show).
_SHOWN = frozenset({"directory", "generation", "format", "version", "created_by", "created_at",
                    "source", "encoders", "encoder", "chunker", "components", "indexes",
                    "counts", "bytes", "skipped"})
_SHORT = 160


def _text(value: Any) -> str:
    """Scalars as themselves, None as ``-``, anything else as ``?``."""
    if value is None:
        return "-"
    if isinstance(value, str | int | float | bool):
        return str(value)
    return _UNKNOWN


def _compact(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=lambda _: _UNKNOWN)
    except (TypeError, ValueError):  # keys of mixed types, circular references
        return _UNKNOWN


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else _compact(value)
    return text if len(text) <= _SHORT else text[: _SHORT - 3] + "..."


def _many(label: str, entries: Any, render) -> list[tuple[str, str]]:
    if entries is None or isinstance(entries, list | tuple) and not entries:
        return [(label, "-")]
    if not isinstance(entries, list | tuple):
        return [(label, _UNKNOWN)]
    return [(label if i == 0 else "", render(entry)) for i, entry in enumerate(entries)]


def _source(source: Any, directory: Any) -> str:
    if not isinstance(source, Mapping):
        return _UNKNOWN if source is not None else "-"
    root = source.get("root")
    if root is None:
        return "documents (no source tree)"
    if isinstance(root, str) and isinstance(directory, str):
        # Format 2 stores the root relative to the index folder (so a moved tree keeps
        # working); a person wants to see the folder itself. An absolute root stays as is.
        root = os.path.normpath(Path(directory) / root)
    return f"{_text(root)} @ {_text(source.get('commit'))}"


def _named(entry: Any) -> str:
    """``name {config}`` of a chunker, encoder or component entry."""
    if not isinstance(entry, Mapping):
        return _UNKNOWN
    config = entry.get("config")
    config_text = f" {_compact(config)}" if isinstance(config, Mapping) and config else ""
    return f"{_text(entry.get('name'))}{config_text}"


def _encoder(entry: Any) -> str:
    """``main: sentence-transformers {config} dim=384 tier=full``."""
    if not isinstance(entry, Mapping):
        return _UNKNOWN
    extras = [f"{key}={_text(entry[key])}" for key in ("dim", "tier") if key in entry]
    return " ".join([_prefix(entry, "id") + _named(entry), *extras])


def _role(role: Any, entry: Any) -> Any:
    """An old ``indexes`` entry: its key is its role, and its folder unless it names one."""
    if isinstance(entry, Mapping):
        return {"role": role, "path": role, **entry}
    return entry


def _prefix(entry: Mapping, key: str) -> str:
    return f"{_text(entry[key])}: " if entry.get(key) is not None else ""


def _component(entry: Any) -> str:
    """``vectors: faiss-binary BFlat dims=128 rescore=float x4 in binary/ (encoder main)``
    for vector indexes, ``lexical: bm25 {"k1": 1.2, ...} in lexical/`` for the rest."""
    if not isinstance(entry, Mapping):
        return _UNKNOWN
    config = entry.get("config")
    if isinstance(config, Mapping) and "spec" in config:
        parts = [f"{_text(entry.get('name'))} {_text(config['spec'])}"]
        if config.get("dims"):
            parts.append(f"dims={_text(config['dims'])}")
        if config.get("rescore"):
            parts.append(f"rescore={_text(config['rescore'])} "
                         f"x{_text(config.get('rescore_multiplier'))}")
        text = " ".join(parts)
    else:
        text = _named(entry)
    text = _prefix(entry, "role") + text
    if entry.get("path") is not None:
        text += f" in {_text(entry['path'])}/"
    if entry.get("encoder") is not None:
        text += f" (encoder {_short(entry['encoder'])})"
    return text


def _counts(counts: Any) -> str:
    if not isinstance(counts, Mapping):
        return _UNKNOWN if counts is not None else "-"
    return ", ".join(f"{key}={_text(value)}" for key, value in counts.items())


def _skip(entry: Any) -> tuple[str, str]:
    """One recorded skipped file: ``{"path", "reason"}``, or a ``[path, reason]`` pair."""
    if isinstance(entry, Mapping):
        return _text(entry.get("path")), _text(entry.get("reason"))
    if isinstance(entry, list | tuple) and len(entry) == 2:
        return _text(entry[0]), _text(entry[1])
    return _UNKNOWN, _UNKNOWN
