"""Line bookkeeping shared by every chunker: sizes, windows, and the coverage invariant.

All chunkers work on 0-based, inclusive line spans internally and turn them into 1-based
:class:`~chunking.chunk.Chunk` rows at the end. Sizes count non-whitespace characters, as in
cAST, so indentation and blank lines do not eat the budget.

CRLF: a ``\\r\\n`` pair counts as one line break and the ``\\r`` is dropped from chunk text,
so a file checked out with Windows line endings yields the same chunk texts (and, at the same
path, the same ids) as with Unix ones. A lone ``\\r`` is kept as ordinary text; only ``\\n``
ends a line (as in git, editors' line numbers and tree-sitter).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import accumulate

from chunking.chunk import Chunk

Span = tuple[int, int]


def normalize_newlines(source: str) -> str:
    """Drop the ``\\r`` of every ``\\r\\n``; chunk text and line numbers use ``\\n`` only."""
    return source.replace("\r\n", "\n") if "\r" in source else source


class SourceLines:
    """The lines of one file with a prefix sum of their non-whitespace sizes."""

    __slots__ = ("lines", "_cumulative")

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        # str.split() drops every kind of Unicode whitespace, matching str.isspace; the
        # maps keep the per-line loop in C (a third of the chunker's Python time before).
        sizes = map(len, map("".join, map(str.split, self.lines)))
        self._cumulative = list(accumulate(sizes, initial=0))

    def __len__(self) -> int:
        return len(self.lines)

    def size(self, start: int, end: int) -> int:
        """Non-whitespace characters in lines ``start..end`` (0-based, inclusive)."""
        return self._cumulative[end + 1] - self._cumulative[start]

    def is_blank(self, row: int) -> bool:
        return self._cumulative[row + 1] == self._cumulative[row]

    def text(self, start: int, end: int) -> str:
        return "\n".join(self.lines[start : end + 1])

    def trim(self, start: int, end: int) -> Span | None:
        """The span without its leading and trailing blank lines; None if all blank."""
        while start <= end and self.is_blank(start):
            start += 1
        while end >= start and self.is_blank(end):
            end -= 1
        return (start, end) if start <= end else None

    def windows(self, start: int, end: int, budget: int, max_lines: int) -> list[Span]:
        """Cut lines ``start..end`` into consecutive windows of non-blank content.

        A window closes when adding the next line would pass ``budget`` non-whitespace
        characters (``budget <= 0`` means no limit) or ``max_lines`` lines. A single line
        larger than the budget forms a window of its own: it is the one allowed excess.
        Blank-only windows are dropped; every non-blank line lands in exactly one window.
        """
        spans: list[Span] = []
        row = start
        while row <= end:
            while row <= end and self.is_blank(row):
                row += 1
            if row > end:
                break
            first = row
            last = row
            while last + 1 <= end and (last + 1 - first) < max_lines and (
                budget <= 0 or self.size(first, last + 1) <= budget
            ):
                last += 1
            trimmed = self.trim(first, last)
            if trimmed is not None:
                spans.append(trimmed)
            row = last + 1
        return spans

    def cover(self, spans: Iterable[Span], budget: int, max_lines: int) -> list[Span]:
        """Trim spans, sort them, and add a span for every run of uncovered non-blank lines.

        This is the safety net that makes "every non-blank line is covered" hold whatever
        a parser or heuristic did upstream (tree-sitter may leave text after an error out
        of every node). Gaps are cut into windows like any other text. Spans must not
        overlap.
        """
        ordered = sorted(t for t in (self.trim(s, e) for s, e in spans) if t is not None)
        result: list[Span] = []
        row = 0
        for start, end in ordered:
            if start > row:
                result.extend(self.windows(row, start - 1, budget, max_lines))
            result.append((start, end))
            row = end + 1
        if row < len(self.lines):
            result.extend(self.windows(row, len(self.lines) - 1, budget, max_lines))
        return result


def make_chunks(
    path: str,
    language: str,
    lines: SourceLines,
    spans: Iterable[Span],
    label: Callable[[int, int], tuple[str, str | None]],
) -> list[Chunk]:
    """Turn 0-based spans into chunks; ``label(start, end)`` gives ``(kind, symbol)``."""
    return [
        Chunk.make(
            path=path,
            language=language,
            start_line=start + 1,
            end_line=end + 1,
            kind=kind,
            symbol=symbol,
            text=lines.text(start, end),
        )
        for start, end in spans
        for kind, symbol in (label(start, end),)
    ]
