"""Parsing one file with tree-sitter: one parser per grammar and thread, a size budget.

Why a size budget and not a timeout. py-tree-sitter 0.26 honours ``progress_callback`` (its
only way to stop a parse early) only when the text comes from a read callback, and that path
leaks every object the callback returns (the binding takes a buffer of the returned object and
never drops its own reference to it): the Scala grammar reads its input about 10,000 times for
a 56 KB file, so 64 KB slices leaked about 250 MB per file and the parse ran 10x slower; the
callback is also called again by every ``Node.text``. Parsing the bytes directly is fast and
leaks nothing, but cannot be interrupted (the parse holds the GIL, so no thread can time it
out either). Tree-sitter's parse time grows linearly with the input for every grammar we load
(COBOL, whose grammar never returns on some inputs, is left out in :mod:`chunking.languages`),
so a byte budget bounds time and memory, and unlike a clock it cuts the same files on every
machine and under any load: the chunk table stays a function of the tree.

Parsers are kept, one per grammar and thread (a new one per file measured no slower here:
the cost was the read callback, not the parser); a parser is reset after any failure, so
nothing carries over to the next file.
"""

from __future__ import annotations

import logging
import threading

from tree_sitter import Language, Parser, Tree

from chunking.reading import human_size

__all__ = ["PARSE_BUDGET_BYTES", "over_budget", "parse"]

logger = logging.getLogger(__name__)

# Files above this many bytes (UTF-8) are cut into line windows without parsing. It equals the
# walker's default size cap, so a default walk parses every file it admits; a larger cap
# (``max_file_bytes``) admits bigger files, which are then chunked by lines. The slowest
# grammar measured here (Scala) parses 1 MiB in about 0.5 s on a loaded core.
PARSE_BUDGET_BYTES = 1 << 20


class _Parsers(threading.local):
    """The parsers of one thread, by grammar (a Parser is not safe to share across threads)."""

    def __init__(self) -> None:
        self.by_language: dict[int, tuple[Language, Parser]] = {}


_PARSERS = _Parsers()


def _parser(language: Language) -> Parser:
    parsers = _PARSERS.by_language
    # Keyed by id, with the Language kept alive beside its parser so the id stays unique.
    found = parsers.get(id(language))
    if found is None or found[0] is not language:
        found = parsers[id(language)] = (language, Parser(language))
    return found[1]


def over_budget(size: int, budget: int = PARSE_BUDGET_BYTES) -> str | None:
    """Why a file of ``size`` UTF-8 bytes is not parsed, or None when it is within budget."""
    if size > budget:
        return (f"{human_size(size)} is over the {human_size(budget)} parse budget; "
                "chunked by lines")
    return None


def parse(language: Language, data: bytes) -> Tree | None:
    """The syntax tree of ``data``, or None when the grammar fails on it (the parser is then
    reset, so the next file starts clean). Callers check :func:`over_budget` first."""
    parser = _parser(language)
    try:
        return parser.parse(data)
    except Exception as error:  # noqa: BLE001 - a parser failure means "use line windows"
        parser.reset()
        logger.warning("tree-sitter failed to parse (%s); using line windows", error)
        return None
