"""(docstring -> code) pairs and code chunks of one Python file, with the standard library's
``ast`` (no tree-sitter, so the same code runs on a bare training machine). A pair's document
is what the engine embeds for a chunk: a ``path :: symbol`` header line, then the function
without its docstring; the query is its docstring's first sentence."""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

__all__ = ["Pair", "first_sentence", "python_items", "MIN_LINES", "MIN_WORDS",
           "MAX_CHUNK_CHARS"]


MIN_LINES = 3
MIN_WORDS = 3
# The engine's chunks hold at most 1,500 non-whitespace characters; longer functions would
# teach the table texts it never sees (and cost the teacher's time).
MAX_CHUNK_CHARS = 1500
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)[.!?](?=\s+[A-Z0-9]|$)")
_SECTION = re.compile(
    r"^(Args|Arguments|Returns|Raises|Yields|Examples?|Parameters|Notes?|See Also|"
    r"Attributes|Example usage)\s*:?\s*$"
)


@dataclass(frozen=True, slots=True)
class Pair:
    """One (docstring -> code) example."""

    query: str
    code: str
    source: str


def first_sentence(doc: str) -> str:
    """The first sentence of a docstring's first paragraph, whitespace collapsed."""
    lines: list[str] = []
    for line in doc.strip().splitlines():
        stripped = line.strip()
        if not stripped and lines:
            break
        if stripped.startswith(("@", ":param", ":return", ":raises", ">>>", "..")) or \
                _SECTION.match(stripped) or set(stripped) <= set("-=~"):
            break
        if stripped:
            lines.append(stripped)
    paragraph = " ".join(" ".join(lines).split())
    end = _SENTENCE_END.search(paragraph)
    return paragraph[: end.end()] if end else paragraph


def _non_space(text: str) -> int:
    return sum(1 for c in text if not c.isspace())


def _segment(lines: list[str], node: ast.AST, drop: ast.AST | None = None) -> str:
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    body = lines[start - 1 : node.end_lineno]
    if drop is not None:
        first, last = drop.lineno - start, drop.end_lineno - start
        body = body[:first] + body[last + 1 :]
    return textwrap.dedent("\n".join(body))


def python_items(path: str, source: str) -> tuple[list[Pair], list[str]]:
    """Pairs and chunks of one Python file.

    Args:
        path: the file's path as the header shows it (``package/module.py``).
        source: the file's text.

    Returns:
        ``(pairs, chunks)``; both empty for a file that does not parse.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return [], []
    lines = source.splitlines()
    pairs: list[Pair] = []
    chunks: list[str] = []

    def visit(node: ast.AST, scope: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                symbol = ".".join(scope + (child.name,))
                header = f"{path} :: {symbol}\n"
                whole = _segment(lines, child)
                if _non_space(whole) <= MAX_CHUNK_CHARS:
                    chunks.append(header + whole)
                if not isinstance(child, ast.ClassDef):
                    pair = _pair(child, lines, header, path)
                    if pair is not None:
                        pairs.append(pair)
                visit(child, scope + (child.name,))

    visit(tree, ())
    return pairs, chunks


def _pair(node: ast.AST, lines: list[str], header: str, path: str) -> Pair | None:
    name = node.name
    if name.startswith("test") or (name.startswith("__") and name.endswith("__")):
        return None
    doc = ast.get_docstring(node)
    body = node.body
    if not doc or not body or not isinstance(body[0], ast.Expr):
        return None
    query = first_sentence(doc)
    code = _segment(lines, node, drop=body[0])
    if len(query.split()) < MIN_WORDS or _non_space(code) > MAX_CHUNK_CHARS:
        return None
    if sum(1 for line in code.splitlines() if line.strip()) < MIN_LINES:
        return None
    return Pair(query=query, code=header + code, source=path)
