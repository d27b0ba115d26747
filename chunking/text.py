"""Chunkers for prose and for files no grammar reads: Markdown, reStructuredText, line windows.

Every chunker here keeps the invariants of :class:`~chunking.chunk.Chunker`: chunks of a file
never overlap, lie inside it, come in line order and together cover every non-blank line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from chunking._lines import SourceLines, Span, make_chunks, normalize_newlines
from chunking.chunk import Chunk
from retriever.errors import InputError

__all__ = ["MarkdownChunker", "RstChunker", "WindowChunker"]

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_LIST_OR_TABLE = re.compile(r"^ {0,3}(?:[-+*]\s|\d+[.)]\s|\|)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# reST section adornments: any run of one printable non-alphanumeric ASCII character.
_RST_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1{2,}[ \t]*$")


class WindowChunker:
    """Fixed windows of lines, for files without structure we understand.

    Args:
        window_lines: the most lines in one window.
        max_chars: also close a window before it passes this many non-whitespace
            characters; 0 means no character limit.
    """

    def __init__(self, *, window_lines: int = 50, max_chars: int = 0) -> None:
        if window_lines < 1:
            raise InputError(f"window_lines must be >= 1, got {window_lines}.")
        self.window_lines = window_lines
        self.max_chars = max_chars

    def config(self) -> dict:
        """The keyword arguments that rebuild this chunker."""
        return {"window_lines": self.window_lines, "max_chars": self.max_chars}

    def chunk(self, path: str, source: str, *, language: str = "text") -> Iterator[Chunk]:
        """Yield windows of kind ``"window"`` and symbol None; blank-only windows are skipped."""
        lines = SourceLines(normalize_newlines(source))
        spans = lines.windows(0, len(lines) - 1, self.max_chars, self.window_lines)
        yield from make_chunks(path, language, lines, spans, lambda s, e: ("window", None))


class _SectionChunker:
    """Shared logic: find headings, then cut at each heading and window big sections."""

    language = "text"

    def __init__(self, *, max_chars: int = 1500, window_lines: int = 50) -> None:
        self.max_chars = max_chars
        self.window_lines = window_lines

    def config(self) -> dict:
        """The keyword arguments that rebuild this chunker."""
        return {"max_chars": self.max_chars, "window_lines": self.window_lines}

    def headings(self, lines: list[str]) -> list[tuple[int, int, str]]:
        """(first row of the section, heading level, title) for each heading."""
        raise NotImplementedError

    def chunk(self, path: str, source: str) -> Iterator[Chunk]:
        """Yield one ``"section"`` chunk per heading (split into windows if over budget).

        The symbol is the heading path joined with ``" > "``, e.g. ``"Install > From source"``;
        text before the first heading has symbol None.
        """
        lines = SourceLines(normalize_newlines(source))
        starts: list[tuple[int, str | None]] = [(0, None)]
        path_stack: list[tuple[int, str]] = []
        for row, level, title in self.headings(lines.lines):
            while path_stack and path_stack[-1][0] >= level:
                path_stack.pop()
            path_stack.append((level, title))
            starts.append((row, " > ".join(t for _, t in path_stack)))
        spans: list[Span] = []
        symbols: dict[int, str | None] = {}
        for index, (row, symbol) in enumerate(starts):
            end = starts[index + 1][0] - 1 if index + 1 < len(starts) else len(lines) - 1
            if end < row:
                continue
            trimmed = lines.trim(row, end)
            if trimmed is None:
                continue
            if lines.size(*trimmed) <= self.max_chars and \
                    trimmed[1] - trimmed[0] < self.window_lines * 4:
                pieces = [trimmed]
            else:
                pieces = lines.windows(trimmed[0], trimmed[1], self.max_chars, self.window_lines)
            for piece in pieces:
                spans.append(piece)
                symbols[piece[0]] = symbol
        yield from make_chunks(
            path, self.language, lines, spans, lambda s, e: ("section", symbols.get(s))
        )


class MarkdownChunker(_SectionChunker):
    """Markdown cut at ATX (``# Title``) and setext (``Title`` over ``===``) headings.

    Headings inside fenced code blocks are ignored.

    Args:
        max_chars: budget of non-whitespace characters; larger sections become line windows.
        window_lines: the most lines in one such window.
    """

    language = "markdown"

    def headings(self, lines: list[str]) -> list[tuple[int, int, str]]:
        found: list[tuple[int, int, str]] = []
        fence: str | None = None
        for row, line in enumerate(lines):
            fence_match = _FENCE.match(line)
            if fence is not None:
                if fence_match and fence_match.group(1)[0] == fence[0] and \
                        len(fence_match.group(1)) >= len(fence):
                    fence = None
                continue
            if fence_match:
                fence = fence_match.group(1)
                continue
            atx = _ATX.match(line)
            if atx:
                found.append((row, len(atx.group(1)), (atx.group(2) or "").strip()))
                continue
            previous = lines[row - 1] if row > 0 else ""
            if (
                _SETEXT.match(line)
                and previous.strip()
                and not _ATX.match(previous)
                and not _FENCE.match(previous)
                and not previous.startswith(("    ", "\t"))
                and not _LIST_OR_TABLE.match(previous)
                and not (found and found[-1][0] == row - 1)
            ):
                level = 1 if line.strip()[0] == "=" else 2
                found.append((row - 1, level, lines[row - 1].strip()))
        return found


class RstChunker(_SectionChunker):
    """reStructuredText cut at section titles (a title underlined, optionally overlined).

    Levels follow the order in which adornment styles first appear, as reST defines them.

    Args:
        max_chars: budget of non-whitespace characters; larger sections become line windows.
        window_lines: the most lines in one such window.
    """

    language = "rst"

    def headings(self, lines: list[str]) -> list[tuple[int, int, str]]:
        found: list[tuple[int, int, str]] = []
        styles: list[tuple[str, bool]] = []
        row = 1
        while row < len(lines):
            under = _RST_ADORNMENT.match(lines[row])
            title = lines[row - 1].strip()
            if under and title and not _RST_ADORNMENT.match(lines[row - 1]) and \
                    not lines[row - 1].startswith((" ", "\t")) and \
                    len(lines[row].rstrip()) >= len(title):
                overlined = row >= 2 and lines[row - 2].rstrip() == lines[row].rstrip()
                style = (under.group(1), overlined)
                if style not in styles:
                    styles.append(style)
                first = row - 2 if overlined else row - 1
                found.append((first, styles.index(style) + 1, title))
                row += 2
                continue
            row += 1
        return found
