"""cAST: structural chunking over tree-sitter syntax trees.

The algorithm follows Zhang et al. 2025, "cAST: Enhancing Code Retrieval-Augmented Generation
with Structural Chunking via Abstract Syntax Tree": the budget counts non-whitespace
characters; a node that does not fit is split into its children, recursively; adjacent
siblings that fit are merged greedily while the merged group still fits. Chunks here are
whole lines, so siblings that share a line are merged into one piece first.

Labels:

* ``kind`` is the definition's kind ("function", "method", "class", "struct", "impl",
  "interface", "namespace", ...) when a chunk is essentially one definition (it holds exactly
  one outermost definition making up at least 60% of its non-whitespace text); otherwise
  "block" when the chunk lies inside a definition (a split piece or merged members) and
  "module" for top-level code.
* ``symbol`` is the scope path of definitions, joined with ``"."`` in every language:
  ``Session.send`` (Python, Java, C#, Kotlin, ...), ``Router.route`` for a method in Rust's
  ``impl Router`` (trait impls use the implementing type too), ``Server.Serve`` for a Go
  method on ``*Server`` (the pointer is dropped), ``ns.Widget.draw`` for C++ (``::`` becomes
  ``.``), ``Account.deposit`` for Lua's ``Account:deposit``. A chunk inside a definition gets
  that definition's path; a top-level chunk holding several definitions gets the path of the
  largest of them (what it mostly holds, not the first name inside); top-level code without
  definitions gets None. (The symbol table of an index also finds the others.)

Fragments (a lone ``}`` or ``end``, ``namespace absl {``, a decorator or a bare signature:
under 40 non-whitespace characters) are merged into the piece before them (closers) or after
them (everything else) whenever the merged piece stays within the budget.

:class:`CastChunker` is the single registered chunker, so it dispatches on the file: a grammar
from ``tree-sitter-language-pack`` when there is one, Markdown and reST section chunkers, and
line windows for everything else (and for any file whose grammar fails to load or parse, or
that is over the parse budget of :mod:`chunking.parsing`; :meth:`CastChunker.chunk_noted` says
which).
"""

from __future__ import annotations

import bisect
import functools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tree_sitter import Language, Node, Query, QueryCursor, Tree

from chunking._lines import SourceLines, Span, make_chunks, normalize_newlines
from chunking.chunk import Chunk
from chunking.definitions import definition_kind, definition_name
from chunking.languages import (
    CONTAINER_KINDS,
    SPECS,
    LanguageSpec,
    detect_language,
    load_language,
)
from chunking.parsing import over_budget, parse
from chunking.text import MarkdownChunker, RstChunker, WindowChunker
from retriever.errors import InputError

__all__ = ["CastChunker", "outline"]

logger = logging.getLogger(__name__)

# Deeper than this, an oversized node is cut into line windows instead of recursing further:
# a long chain of binary operators nests thousands deep and would exhaust Python's stack.
_MAX_DEPTH = 200
_DEFINITION_SHARE = 0.6


@dataclass(frozen=True, slots=True)
class _Definition:
    start: int
    end: int
    kind: str
    path: str
    parent: int  # index into the definitions list, -1 at top level


class CastChunker:
    """AST-aware chunker for every file type (see the module docstring for the labels).

    Args:
        max_chars: budget of non-whitespace characters per chunk. Only a single line longer
            than this (minified code, a data blob) makes a chunk exceed it.
        window_lines: the most lines in one window where a file (or an oversized leaf such as
            a long string) is cut into line windows.
    """

    # Bumped whenever the same config cuts different chunks, so indexes notice the change.
    # 2: pieces under 40 characters merge into a neighbour; labels name the largest definition.
    version = 2

    def __init__(self, *, max_chars: int = 1500, window_lines: int = 50) -> None:
        if max_chars < 1:
            raise InputError(f"max_chars must be >= 1, got {max_chars}.")
        if window_lines < 1:
            raise InputError(f"window_lines must be >= 1, got {window_lines}.")
        self.max_chars = max_chars
        self.window_lines = window_lines

    def config(self) -> dict:
        """The keyword arguments that rebuild this chunker: ``CastChunker(**c.config())``."""
        return {"max_chars": self.max_chars, "window_lines": self.window_lines}

    def __repr__(self) -> str:
        return f"CastChunker(max_chars={self.max_chars}, window_lines={self.window_lines})"

    def chunk(self, path: str, source: str) -> Iterator[Chunk]:
        """Cut one file into chunks, in line order, that cover every non-blank line.

        Args:
            path: the file's path relative to the indexed root, with ``/`` separators; its
                name picks the language.
            source: the file's text. ``\\r\\n`` counts as one line break.

        Yields:
            Chunks that never overlap; none for an empty or whitespace-only file.
        """
        yield from self.chunk_noted(path, source)[0]

    def chunk_noted(self, path: str, source: str) -> tuple[list[Chunk], str | None]:
        """:meth:`chunk`, and why the file's grammar was not used when it has one.

        Returns:
            The chunks, and None, or a short note when a file with a grammar was cut into
            line windows instead (over the parse budget, or the parser failed on it).
        """
        if not source.strip():
            return [], None
        language = detect_language(path, source)
        if language == "markdown":
            return list(MarkdownChunker(**self.config()).chunk(path, source)), None
        if language == "rst":
            return list(RstChunker(**self.config()).chunk(path, source)), None
        spec = SPECS.get(language)
        grammar = load_language(spec.grammar) if spec is not None else None
        note = None
        if spec is not None and grammar is not None:
            text = normalize_newlines(source)
            data = text.encode("utf-8", "surrogatepass")
            note = over_budget(len(data))
            if note is None:
                chunks = _chunk_tree(path, text, data, spec, grammar, self.max_chars,
                                     self.window_lines)
                if chunks is not None:
                    return chunks, None
                note = "tree-sitter failed to parse it; chunked by lines"
        return self.chunk_by_lines(path, source, language), note

    def chunk_by_lines(self, path: str, source: str, language: str | None = None) -> list[Chunk]:
        """The file in line windows, as for a file without a grammar (kind ``"window"``)."""
        windows = WindowChunker(window_lines=self.window_lines, max_chars=self.max_chars)
        language = language or detect_language(path, source)
        return list(windows.chunk(path, source, language=language))


def _parse(language: Language, data: bytes) -> Tree | None:
    """The tree of ``data``, or None when the grammar fails or the file is over the parse
    budget (see :mod:`chunking.parsing`)."""
    return None if over_budget(len(data)) else parse(language, data)


def _chunk_tree(
    path: str, text: str, data: bytes, spec: LanguageSpec, language: Language, budget: int,
    max_lines: int,
) -> list[Chunk] | None:
    tree = parse(language, data)
    if tree is None:
        return None
    lines = SourceLines(text)
    splitter = _Splitter(lines, budget, max_lines)
    spans = lines.cover(
        splitter.split(tree.root_node, 0, len(lines) - 1, 0), budget, max_lines
    )
    spans = _absorb_small(spans, lines, budget)
    definitions = _definitions(spec, tree.root_node)
    del tree  # the tree holds the file's bytes and every node: release it before the next file
    labeller = _Labeller(lines, definitions)
    return make_chunks(path, spec.name, lines, spans, labeller.label)


# A piece smaller than this (non-whitespace characters) is a fragment nobody searches for on
# its own: a closing "}" or "end", "namespace absl {", a decorator, a bare signature.
_SMALL = 40
# First lines of fragments that close what the piece before them opened.
_CLOSER = re.compile(r"^\s*(?:[)\]}]|end\b|#\s*endif\b|fi\b|done\b|esac\b|\w+_END\b)")


def _absorb_small(spans: list[Span], lines: SourceLines, budget: int) -> list[Span]:
    """Merge fragments (pieces under ``_SMALL``) into a neighbour while the budget allows:
    a closer into the piece before it, anything else (a header, a decorator, a signature)
    into the piece after it; a fragment that fits on neither side stays as it is."""
    size = lines.size

    def closer(span: Span) -> bool:
        return _CLOSER.match(lines.lines[span[0]]) is not None

    result: list[Span] = []
    waiting: Span | None = None  # a fragment that joins the next piece if it fits
    for span in spans:
        if waiting is not None:
            if size(waiting[0], span[1]) <= budget:
                span = (waiting[0], span[1])
            elif result and size(result[-1][0], waiting[1]) <= budget:
                result[-1] = (result[-1][0], waiting[1])
            else:
                result.append(waiting)
            waiting = None
        if size(*span) >= _SMALL:
            result.append(span)
        elif closer(span) and result and size(result[-1][0], span[1]) <= budget:
            result[-1] = (result[-1][0], span[1])
        else:
            waiting = span
    if waiting is not None:
        if result and size(result[-1][0], waiting[1]) <= budget:
            result[-1] = (result[-1][0], waiting[1])
        else:
            result.append(waiting)
    return result


def _rows(node: Node) -> Span:
    start = node.start_point.row
    end = node.end_point.row
    # A node that ends right after a newline ends on the line before.
    if node.end_point.column == 0 and end > start:
        end -= 1
    return start, end


class _Splitter:
    """The recursive split-then-merge of cAST, on line spans."""

    def __init__(self, lines: SourceLines, budget: int, max_lines: int) -> None:
        self.lines = lines
        self.budget = budget
        self.max_lines = max_lines

    def _pieces(self, node: Node, low: int, high: int) -> list[tuple[int, int, Node]]:
        """The node's children as disjoint line spans within ``low..high``.

        A child that starts on a line an earlier sibling already took is clipped to start
        after it; a child entirely on such lines joins that sibling's piece.
        """
        pieces: list[tuple[int, int, Node]] = []
        row = low
        for child in node.children:
            start, end = _rows(child)
            start = max(start, row)
            end = min(end, high)
            if start > end:
                continue
            pieces.append((start, end, child))
            row = end + 1
        return pieces

    def split(
        self, node: Node, low: int, high: int, depth: int, prefix: Span | None = None
    ) -> list[Span]:
        """Spans covering the node's lines ``low..high``, each within budget where possible.

        ``prefix`` is the parent's header (``class Session:``, ``fn route(...) {``), passed
        down so it merges with the first piece of the body rather than standing alone.
        """
        spans: list[Span] = []
        group: Span | None = prefix
        size = self.lines.size
        pieces = self._pieces(node, low, high)
        for start, end, child in pieces:
            if group is not None and size(group[0], end) > self.budget:
                spans.append(group)
                group = None
            if size(start, end) > self.budget and end > start:
                # Only the node's own leading tokens travel down as a header.
                header = group if group is not None and not spans and (
                    prefix is not None or group[0] == pieces[0][0]) else None
                if group is not None and header is None:
                    spans.append(group)
                group = None
                if child.child_count == 0 or depth >= _MAX_DEPTH:
                    if header is not None:
                        spans.append(header)
                    spans.extend(
                        self.lines.windows(start, end, self.budget, self.max_lines)
                    )
                else:
                    spans.extend(self.split(child, start, end, depth + 1, header))
            else:
                group = (group[0] if group is not None else start, end)
        if group is not None:
            spans.append(group)
        return spans


@functools.lru_cache(maxsize=256)
def _definition_query(name: str) -> Query | None:
    """One query capturing every definition node type this grammar knows."""
    spec = SPECS[name]
    language = load_language(spec.grammar)
    if language is None:
        return None
    known = [t for t in spec.definitions if language.id_for_node_kind(t, True)]
    if not known:
        return None
    try:
        return Query(language, "[" + " ".join(f"({t})" for t in known) + "] @definition")
    except Exception as error:  # noqa: BLE001 - a table entry the grammar rejects
        logger.warning("definition query for %s failed (%s); no symbols", spec.name, error)
        return None


def _definitions(spec: LanguageSpec, root: Node) -> list[_Definition]:
    """Every named definition, in source order, with its scope path and parent."""
    query = _definition_query(spec.name)
    if query is None:
        return []
    nodes = QueryCursor(query).captures(root).get("definition", [])
    nodes.sort(key=lambda n: (n.start_byte, -n.end_byte))
    found: list[_Definition] = []
    open_stack: list[tuple[int, int]] = []  # (end_byte, index into found)
    for node in nodes:
        parent = node.parent
        if parent is not None and parent.type == "decorated_definition":
            continue  # the decorated wrapper already stands for it, decorators included
        name = definition_name(spec.name, node)
        if name is None:
            continue
        while open_stack and open_stack[-1][0] <= node.start_byte:
            open_stack.pop()
        parent_index = open_stack[-1][1] if open_stack else -1
        kind = definition_kind(spec, node)
        if parent_index >= 0:
            outer = found[parent_index]
            if kind == "function" and outer.kind in CONTAINER_KINDS:
                kind = "method"
            full = f"{outer.path}.{name}"
        else:
            full = name
        start, end = _rows(node)
        found.append(_Definition(start, end, kind, full, parent_index))
        open_stack.append((node.end_byte, len(found) - 1))
    return found


class _Labeller:
    """Gives each span its (kind, symbol) from the definitions around and inside it."""

    def __init__(self, lines: SourceLines, definitions: list[_Definition]) -> None:
        self.lines = lines
        self.definitions = definitions
        self.starts = [d.start for d in definitions]

    def label(self, start: int, end: int) -> tuple[str, str | None]:
        definitions = self.definitions
        low = bisect.bisect_left(self.starts, start)
        high = bisect.bisect_right(self.starts, end)
        inside = {i for i in range(low, high) if definitions[i].end <= end}
        outermost = [i for i in sorted(inside) if definitions[i].parent not in inside]
        enclosing = self._enclosing(start, end, inside)
        if len(outermost) == 1:
            only = definitions[outermost[0]]
            share = self.lines.size(max(only.start, start), min(only.end, end))
            if share >= _DEFINITION_SHARE * self.lines.size(start, end):
                return only.kind, only.path
        if enclosing is not None:
            return "block", enclosing.path
        if outermost:
            # Named by what it mostly holds, not by the first name in it: a module of a small
            # helper and a large class is the class's (InvalidWheelFilename, not __dir__).
            largest = max(outermost, key=lambda i: (self.lines.size(
                max(definitions[i].start, start), min(definitions[i].end, end)), -i))
            return "module", definitions[largest].path
        return "module", None

    def _enclosing(self, start: int, end: int, inside: set[int]) -> _Definition | None:
        """The innermost definition that contains the span and is not inside it."""
        index = bisect.bisect_right(self.starts, start) - 1
        while index >= 0:
            definition = self.definitions[index]
            if index not in inside and definition.start <= start and definition.end >= end:
                return definition
            # Definitions nest, so any container of the span is an ancestor of this one.
            index = definition.parent
        return None


def outline(path: str, source: str) -> list[tuple[str, str, int, int]]:
    """The named definitions of one file, as the chunker sees them.

    Args:
        path: the file's path; its name picks the language.
        source: the file's text.

    Returns:
        ``(kind, symbol, start_line, end_line)`` per definition in source order, lines 1-based
        and inclusive; empty for languages without a definition table or a working grammar.
    """
    spec = SPECS.get(detect_language(path, source))
    language = load_language(spec.grammar) if spec is not None else None
    if spec is None or language is None:
        return []
    tree = _parse(language, normalize_newlines(source).encode("utf-8", "surrogatepass"))
    if tree is None:
        return []
    return [(d.kind, d.path, d.start + 1, d.end + 1) for d in _definitions(spec, tree.root_node)]
