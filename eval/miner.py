"""Mine a CodeSearchNet-style benchmark from any source tree with tree-sitter.

Each documented function becomes one query and one document: the first sentence of its doc
comment is the query, the function without its doc comment is the document, and the qrels map
the query to that function alone. Doc comments understood: Python docstrings, ``/** */`` before a
JavaScript/TypeScript function or a Java method, ``//`` lines directly above a Go ``func``, and
``///`` (or ``/** */``) above a Rust ``fn`` (attributes may sit in between).

Files come from chunking's walker (ignore files, dependency folders, binary, generated and
oversized files left out) and are read, typed and parsed as the chunker does. Paths that
:func:`chunking.paths.path_class` calls test, vendored or generated are not mined.

The filters follow CodeSearchNet: test files and test functions, dunder methods, functions of
fewer than :data:`MIN_LINES` non-blank lines, and queries of fewer than :data:`MIN_WORDS` words are
skipped. Identical documents keep their first occurrence (in path order); a query shared by
several different functions is ambiguous and all its occurrences are dropped.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from chunking.cast import _parse as parse_with_limit
from chunking.languages import SPECS, detect_language, load_language
from chunking.paths import path_class
from chunking.walker import read_source, walk
from eval.data import Benchmark, Doc, first_sentence, write_beir
from retriever.errors import InputError

__all__ = [
    "LANGUAGES",
    "MIN_LINES",
    "MIN_WORDS",
    "Function",
    "functions",
    "mine",
    "strip_python_docstring",
]

MIN_LINES = 3
MIN_WORDS = 3

# Function node types per language (names as chunking.languages.detect_language gives them).
_FUNCTIONS = {
    "python": {"function_definition"},
    "javascript": {
        "function_declaration",
        "generator_function_declaration",
        "method_definition",
        "variable_declarator",
    },
    "go": {"function_declaration", "method_declaration"},
    "rust": {"function_item"},
    "java": {"method_declaration", "constructor_declaration"},
}
_FUNCTIONS["typescript"] = _FUNCTIONS["tsx"] = _FUNCTIONS["javascript"]
#: The languages the miner reads doc comments of.
LANGUAGES = tuple(sorted(_FUNCTIONS))
# Wrappers a doc comment sits in front of, rather than in front of the function itself.
_WRAPPERS = {
    "export_statement",
    "lexical_declaration",
    "variable_declaration",
    "decorated_definition",
}
# Files of these path classes are not mined: CodeSearchNet leaves tests out, and vendored or
# generated code is not the project's own documentation.
_SKIPPED_CLASSES = frozenset({"test", "vendored", "generated"})
# Python stubs repeat the docstrings of the modules they describe: mining both would make
# every such query ambiguous (and drop it), so only real modules are read.
_SKIPPED_SUFFIXES = (".pyi",)


@dataclass(frozen=True)
class Function:
    """A documented function found in a file.

    Attributes:
        path: file path relative to the mined root, ``/`` separators.
        language: the tree-sitter language name.
        name: the function's name.
        start_line: first line of the function (1-based, doc comment excluded).
        end_line: last line (inclusive).
        doc: the doc comment text without comment markers.
        code: the function source without its doc comment, dedented.
        is_test: the function is a test (by name or a ``#[test]`` attribute).
    """

    path: str
    language: str
    name: str
    start_line: int
    end_line: int
    doc: str
    code: str
    is_test: bool = False


def _parse(source: bytes, language: str):
    """The tree-sitter tree of ``source``, parsed as the chunker parses (with its time limit)."""
    spec = SPECS.get(language)
    grammar = load_language(spec.grammar) if spec is not None else None
    return parse_with_limit(grammar, source) if grammar is not None else None


def _walk(node) -> Iterator:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _last_line(node) -> int:
    """0-based last row that holds text of ``node`` (a trailing newline ends on the next row)."""
    row, column = node.end_point
    return row - 1 if column == 0 and row > node.start_point[0] else row


def _python_docstring(node):
    body = node.child_by_field_name("body")
    if body is None or not body.named_children:
        return None
    first = body.named_children[0]
    # Grammar versions differ: the docstring is a bare string or one inside a statement.
    if first.type == "string":
        return first
    if first.type == "expression_statement" and first.named_children:
        if first.named_children[0].type == "string":
            return first
    return None


def _string_content(literal: str) -> str:
    match = re.match(r"^[rRuUbBfF]*(\"\"\"|'''|\"|')", literal)
    if not match:
        return literal
    quote = match.group(1)
    body = literal[match.end() :]
    return body[: -len(quote)] if body.endswith(quote) else body


def _cut_lines(source: bytes, node, cut) -> str:
    """Text of ``node`` without the rows that ``cut`` spans, dedented."""
    text = source[node.start_byte : node.end_byte].decode("utf-8", "replace")
    # Pad the first row so that dedent sees the real indentation of a method.
    rows = (" " * node.start_point[1] + text).splitlines(keepends=True)
    first = node.start_point[0]
    lo, hi = cut.start_point[0] - first, _last_line(cut) - first
    kept = rows[:lo] + rows[hi + 1 :]
    return textwrap.dedent("".join(kept)).strip("\n")


def _comment_text(raw: str) -> str:
    lines = []
    for line in raw.splitlines():
        line = line.strip()
        for marker in ("/**", "*/", "///", "//!", "//", "/*"):
            if line.startswith(marker):
                line = line[len(marker) :]
            if line.endswith("*/"):
                line = line[:-2]
        line = line.strip()
        if line.startswith("*"):
            line = line[1:].strip()
        lines.append(line)
    return "\n".join(lines).strip()


def _doc_comment(node, language: str, source: bytes) -> tuple[str, bool] | None:
    """Doc comment above ``node`` as (text, has #[test]); None when there is none."""
    anchor = node
    while anchor.parent is not None and anchor.parent.type in _WRAPPERS:
        anchor = anchor.parent
    comments = []
    is_test = False
    line = anchor.start_point[0]
    sibling = anchor.prev_sibling
    while sibling is not None and sibling.type == "attribute_item":
        is_test |= b"test" in sibling.text
        line = sibling.start_point[0]
        sibling = sibling.prev_sibling
    while sibling is not None and "comment" in sibling.type and _last_line(sibling) == line - 1:
        text = sibling.text.decode("utf-8", "replace")
        comments.append(text)
        line = sibling.start_point[0]
        if text.startswith("/*") or language not in ("go", "rust"):
            break
        sibling = sibling.prev_sibling
    if not comments:
        return None
    comments.reverse()
    if language == "go":
        if any(not c.startswith("//") or c.startswith("//go:") for c in comments):
            return None
    elif language == "rust":
        comments = [c for c in comments if c.startswith(("///", "/**"))]
        if not comments:
            return None
    elif not comments[0].startswith("/**"):
        return None
    return _comment_text("\n".join(comments)), is_test


def _name(node) -> str:
    named = node.child_by_field_name("name")
    return named.text.decode("utf-8", "replace") if named is not None else ""


def functions(path: str, source: bytes, language: str) -> Iterator[Function]:
    """Yield every documented function of one file.

    Args:
        path: the file path recorded in each :class:`Function`.
        source: the file's bytes.
        language: one of :data:`LANGUAGES`.

    Yields:
        Documented functions in file order, unfiltered; none when the grammar cannot be
        loaded or the file cannot be parsed in time.
    """
    tree = _parse(source, language)
    if tree is None:
        return
    for node in _walk(tree.root_node):
        if node.type not in _FUNCTIONS.get(language, ()):
            continue
        if node.type == "variable_declarator":
            value = node.child_by_field_name("value")
            if value is None or value.type not in (
                "arrow_function",
                "function_expression",
                "function",
            ):
                continue
        is_test = False
        if language == "python":
            docstring = _python_docstring(node)
            # A docstring on the ``def`` line cannot be cut out by whole lines; skip it.
            if docstring is None or docstring.start_point[0] == node.start_point[0]:
                continue
            literal = docstring.text.decode("utf-8", "replace")
            doc = inspect.cleandoc(_string_content(literal.strip()))
            code = _cut_lines(source, node, docstring)
            start = node
        else:
            found = _doc_comment(node, language, source)
            if found is None:
                continue
            doc, is_test = found
            start = node
            while start.parent is not None and start.parent.type in _WRAPPERS:
                start = start.parent
            text = source[start.start_byte : start.end_byte].decode("utf-8", "replace")
            code = textwrap.dedent(" " * start.start_point[1] + text).strip("\n")
        name = _name(node)
        yield Function(
            path,
            language,
            name,
            start.start_point[0] + 1,
            _last_line(start) + 1,
            doc,
            code,
            is_test or name.lower().startswith("test"),
        )


def strip_python_docstring(code: str) -> str:
    """Remove the docstring of the first Python function in ``code``, if it has one.

    Args:
        code: the source of one function.

    Returns:
        The source without the docstring's lines (unchanged when there is none).
    """
    source = code.encode("utf-8")
    tree = _parse(source, "python")
    if tree is None:
        return code
    for node in _walk(tree.root_node):
        if node.type == "function_definition":
            docstring = _python_docstring(node)
            if docstring is None:
                return code
            head = source[: node.start_byte].decode("utf-8", "replace")
            return head + _cut_lines(source, node, docstring).lstrip()
    return code


def _keep(function: Function, query: str) -> bool:
    if function.is_test:
        return False
    if function.name.startswith("__") and function.name.endswith("__"):
        return False
    code_lines = [line for line in function.code.splitlines() if line.strip()]
    return len(code_lines) >= MIN_LINES and len(query.split()) >= MIN_WORDS


def mine(
    root: str | Path,
    *,
    languages: Sequence[str] | None = None,
    out: str | Path | None = None,
) -> Benchmark:
    """Turn a source tree into a CodeSearchNet-style benchmark.

    Args:
        root: the folder to mine.
        languages: restrict to these languages (default: all of :data:`LANGUAGES`).
        out: when given, also write the benchmark there in BEIR layout (``qrels/test.tsv``),
            readable with :func:`eval.data.load_beir`.

    Returns:
        The benchmark: doc ids (also the query ids) are ``path:start-end``.

    Raises:
        InputError: ``root`` is not a folder, an unknown language, or nothing could be mined.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder to mine")
    wanted = set(languages or LANGUAGES)
    unknown = wanted - set(LANGUAGES)
    if unknown:
        raise InputError(f"unknown languages {sorted(unknown)}; known: {', '.join(LANGUAGES)}")
    found: list[tuple[Function, str]] = []
    # Path order by folder parts, as the miner has always listed files: which of two identical
    # functions is kept depends on it.
    for file in sorted(walk(root).files, key=lambda f: f.path.split("/")):
        if path_class(file.path) in _SKIPPED_CLASSES or file.path.endswith(_SKIPPED_SUFFIXES):
            continue
        if any(part.startswith(".") for part in file.path.split("/")[:-1]):
            continue  # hidden folders hold tooling and scratch code, not the documented API
        language = detect_language(file.path)
        if language not in wanted:
            continue
        try:
            source = read_source(file)
        except (OSError, UnicodeError):
            continue  # unreadable or not UTF-8: nothing to mine in it
        for function in functions(file.path, source.encode("utf-8"), language):
            query = first_sentence(function.doc)
            if _keep(function, query):
                found.append((function, query))
    seen_code: set[str] = set()
    unique = []
    for function, query in found:
        if function.code not in seen_code:
            seen_code.add(function.code)
            unique.append((function, query))
    counts = Counter(query for _, query in unique)
    corpus: dict[str, Doc] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for function, query in unique:
        if counts[query] > 1:
            continue
        docid = f"{function.path}:{function.start_line}-{function.end_line}".replace(" ", "%20")
        corpus[docid] = Doc(docid, function.code)
        queries[docid] = query
        qrels[docid] = {docid: 1}
    if not qrels:
        raise InputError(f"{root}: no documented function passed the filters; nothing to mine")
    benchmark = Benchmark(name=root.resolve().name, corpus=corpus, queries=queries, qrels=qrels)
    if out is not None:
        write_beir(benchmark, out)
    return benchmark
