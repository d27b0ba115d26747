"""What the priors know about an opened index, computed once per index and kept.

Per row: its file and start line. Per file: its path class (``chunking.paths.path_class``)
and further traits that only ranking needs (compat/legacy folders, mocks, re-export-only
modules, ``.d.ts`` declarations, amalgamated single headers), and the lower-case parts of its
stem and folder names. And the symbol table, when the index has one: an index built before
it existed answers None, and the definition prior is then a no-op.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from chunking.paths import path_class
from retriever.errors import IndexFormatError
from retriever.ranking.query import parts

__all__ = ["CodeContext", "context_of", "mostly_code", "TRAITS"]

#: Every file trait a path prior can demote: path classes and ranking's own traits.
TRAITS = ("test", "example", "benchmark", "docs", "generated", "vendored", "compat",
          "reexport", "declaration", "amalgamated")

_COMPAT = frozenset({"compat", "_compat", "legacy", "polyfill", "polyfills", "shim", "shims",
                     "backport", "backports", "deprecated"})
_MOCK = re.compile(r"(?:^|[_.-])(?:mocks?|fakes?|stubs?)(?:[_.-]|$)|^Mock[A-Z]|Mock\.\w+$",
                   re.IGNORECASE)
_REEXPORT_NAMES = frozenset({"__init__.py", "package-info.java", "index.js", "index.ts",
                             "index.mjs", "mod.rs"})
# A line of a module that only gathers other modules' names.
_REEXPORT_LINE = re.compile(
    r"^\s*(?:$|#|//|/\*|\*|\"\"\"|'''|from\s|import\s|export\s+(?:\*|\{[^}]*\})\s+from\b"
    r"|export\s+\*|__all__|pub\s+(?:use|mod)\s|mod\s|use\s|package\s|[\"'\w\s,\]\[)(]*$)"
)


@dataclass(frozen=True)
class FileFacts:
    """What ranking knows about one file."""

    path: str
    traits: frozenset[str]
    stem: tuple[str, ...]  # the stem's parts, and the whole stem when it has several
    folders: tuple[str, ...]  # parts of the parent folder's name
    language: str


class CodeContext:
    """Row and file facts of one index (see the module docstring).

    Attributes:
        code: False for a corpus of documents (BEIR-style), where code priors do not apply.
        code_documents: for a corpus of documents, True when most of them are source code
            (functions of a code-search set, say): their hybrid fusion has its own weight.
        file_of: ``(rows,)`` int32, the file number of each row.
        start: ``(rows,)`` int32 start lines. symbols: per row, the chunk's ``symbol``.
        files: :class:`FileFacts` by file number.
        symbols: the symbol table, or None when the index has none.
        derived: arrays the ranking stages derive from these facts, keyed by the stage and
            its settings; a pipeline is rebuilt for every search, so what a stage computes
            once per index lives here rather than in the stage.
    """

    def __init__(self, index) -> None:
        chunks = index.chunks()
        self.code = index.manifest.get("chunker", {}).get("name") != "document"
        numbers: dict[str, int] = {}
        texts: dict[str, list[str]] = {}
        languages: dict[str, str] = {}
        self.file_of = np.empty(len(chunks), dtype=np.int32)
        self.start = np.empty(len(chunks), dtype=np.int32)
        self.end = np.empty(len(chunks), dtype=np.int32)
        self.row_symbols: list[str | None] = []
        for row, chunk in enumerate(chunks):
            number = numbers.setdefault(chunk.path, len(numbers))
            self.file_of[row] = number
            self.start[row] = chunk.start_line
            self.end[row] = chunk.end_line
            self.row_symbols.append(chunk.symbol)
            languages.setdefault(chunk.path, chunk.language)
            if PurePosixPath(chunk.path).name in _REEXPORT_NAMES:
                texts.setdefault(chunk.path, []).append(chunk.text)
        self.files = [
            _facts(path, languages[path], texts.get(path)) for path in numbers
        ]
        self.paths = [facts.path for facts in self.files]
        self.languages = [languages[path] for path in numbers]
        self.symbols = index.component("symbols") if self.code else None
        self.code_documents = not self.code and _mostly_code(chunks)
        self.derived: dict[tuple, object] = {}
        if self.symbols is not None and any(row >= len(chunks) for row in self.symbols.rows):
            raise IndexFormatError(
                f"The symbol table of the index at {index.directory} names chunks it does "
                "not have. Rebuild the index with `retriever index PATH --force`."
            )

    def paths_of_rows(self) -> list[str]:
        """The path of every row (what :meth:`retriever.filters.Filter.mask` takes)."""
        return [self.paths[number] for number in self.file_of.tolist()]

    def languages_of_rows(self) -> list[str]:
        """The language of every row."""
        return [self.languages[number] for number in self.file_of.tolist()]


def _facts(path: str, language: str, texts: list[str] | None) -> FileFacts:
    pure = PurePosixPath(path)
    traits = set()
    kind = str(path_class(path))
    if kind != "source":
        traits.add(kind)
    folders = [p.lower() for p in pure.parts[:-1]]
    if any(folder in _COMPAT for folder in folders):
        traits.add("compat")
    if "single_include" in folders or "amalgamation" in folders:
        traits.add("amalgamated")
    if _MOCK.search(pure.name) or any(f in ("mocks", "mock", "fakes") for f in folders):
        traits.add("test")
    if pure.name.endswith(".d.ts"):
        traits.add("declaration")
    if texts is not None and all(
        _REEXPORT_LINE.match(line) for text in texts for line in text.split("\n")
    ):
        traits.add("reexport")
    stem = pure.name.split(".", 1)[0]
    stem_parts = parts(stem)
    if len(stem_parts) > 1:
        stem_parts = (*stem_parts, stem.lower().replace("_", "").replace("-", ""))
    parent = parts(pure.parent.name) if pure.parent.name else ()
    return FileFacts(path, frozenset(traits), stem_parts, parent, language)


_CONTEXTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# Lines only source code has: a definition or statement keyword at the start, or a line
# ending in ";", "{", "}" or "):". Prose (abstracts, answers) has neither; a function of a
# code-search corpus has several.
_CODE_LINE = re.compile(
    r"(?:^|\n)\s*(?:def |class |function |func |fn |public |private |return\b|import |"
    r"#include|if \(|for \()|[;{}]\s*(?:\n|$)|\):\s*(?:\n|$)")
# Documents looked at to decide (evenly spaced): enough to tell, cheap on a million.
_SAMPLE = 400


def _mostly_code(chunks) -> bool:
    """True when at least half of a sample of the documents has two or more code lines."""
    if not len(chunks):
        return False
    rows = np.unique(np.linspace(0, len(chunks) - 1, min(_SAMPLE, len(chunks))).astype(int))
    return mostly_code([chunks[int(row)].text for row in rows])


def mostly_code(texts: list[str]) -> bool:
    """True when at least half of ``texts`` have two or more lines only source code has
    (what decides a documents corpus's kind; the build looks at its first documents)."""
    if not texts:
        return False
    coded = sum(len(_CODE_LINE.findall(text)) >= 2 for text in texts)
    return 2 * coded >= len(texts)


def context_of(index) -> CodeContext:
    """The :class:`CodeContext` of an opened index, built on first use and kept with it."""
    found = _CONTEXTS.get(index)
    if found is None:
        found = _CONTEXTS[index] = CodeContext(index)
    return found
