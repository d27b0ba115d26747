"""The symbol table: every definition an index knows, written at build time from the chunks.

Ranking priors ask it "which chunks define ``getUserById``?" (exact, case-insensitive), "which
define something spelled ``get_user_by_id`` or ``getuserbyid``?" (the same name in another
style), and "which definitions have names made of these parts?" (sub-token matches), so that a
definition boost can reach chunks the first stage never returned.

Definitions come from two places, both in the chunk table alone (so a build needs nothing but
the table, and an update rebuilds it in a fraction of the BM25 time):

- the chunker's labels: a chunk whose ``kind`` is a definition kind (``function``, ``class``,
  ...) defines its ``symbol`` (a scope path such as ``Session.send``); a chunk labelled with
  several definitions (``"A, B"``) defines each;
- definition headers found in the chunk text by a table of per-language patterns (``def``,
  ``class``, ``fn``, ``func (r *T) Name``, ``const name = (...) =>``, ``#define``, ...), which
  finds the small definitions that the chunker merged into one chunk with their neighbours.
  A header found inside a chunk labelled with a scope is qualified by it.

Each entry: ``name`` (the last segment, as written), ``qualified`` (its scope path, ``.``
separated), ``kind``, ``row`` (the chunk row holding the header) and ``line`` (1-based).

Files (no pickles)::

    symbols/symbols.json     format name and version, entry count
    symbols/symbols.parquet  name, qualified, kind, row, line
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from indexing.layout import read_bytes
from retriever.errors import IndexFormatError

__all__ = ["SymbolTable", "name_parts", "definitions_in"]

FORMAT_NAME = "dense-retriever-symbols"
FORMAT_VERSION = 1
META_FILE = "symbols.json"
TABLE_FILE = "symbols.parquet"
_REBUILD = "Rebuild the index with `retriever index PATH --force`."

_SCHEMA = pa.schema([
    ("name", pa.string()),
    ("qualified", pa.string()),
    ("kind", pa.string()),
    ("row", pa.int32()),
    ("line", pa.int32()),
])

# Chunk kinds that are not one definition (pieces, top-level code, prose, windows).
_NOT_DEFINITIONS = frozenset({"block", "module", "window", "section", "document", "text"})

# --- identifier parts -----------------------------------------------------------------------

_PART = re.compile(r"[A-Z]{2,}s(?![a-z])|[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def name_parts(name: str) -> tuple[str, ...]:
    """Lower-case parts of an identifier: ``HTTPServerError`` -> ``("http", "server",
    "error")``, ``max_retries`` -> ``("max", "retries")``; one-letter parts are dropped."""
    return tuple(p for p in (m.lower() for m in _PART.findall(name)) if len(p) > 1)


def _normalized(name: str) -> str:
    """One spelling for every identifier style: lower case, no ``_``, ``-`` or ``$``."""
    return name.lower().replace("_", "").replace("-", "").replace("$", "")


# --- definition headers in text ---------------------------------------------------------------

_NAME = r"[A-Za-z_$][\w$]*(?:(?:\.|::|:)[A-Za-z_$][\w$]*)*"
_MODIFIERS = (
    r"(?:(?:export|default|public|private|protected|internal|static|final|abstract|sealed|open"
    r"|override|async|unsafe|extern|inline|virtual|data|case|inner|companion|suspend|partial"
    r"|readonly|declare|local|pub(?:\([\w:\s]+\))?|const(?=\s+fn))\s+)*"
)
_KEYWORDS = {
    "def": "function", "fn": "function", "func": "function", "function": "function",
    "fun": "function", "defp": "function", "defmacro": "function", "defmacrop": "function",
    "class": "class", "struct": "struct", "enum": "enum", "trait": "trait",
    "interface": "interface", "type": "type", "typealias": "type", "newtype": "type",
    "module": "module", "defmodule": "module", "namespace": "namespace", "object": "object",
    "impl": "impl", "protocol": "protocol", "defprotocol": "protocol", "extension": "extension",
    "record": "record", "union": "union", "mixin": "mixin", "macro_rules!": "macro",
    "data": "type",
}
_KEYWORD_DEF = re.compile(
    rf"^\s*{_MODIFIERS}(?P<kw>{'|'.join(re.escape(k) for k in sorted(_KEYWORDS, key=len)[::-1])})"
    # Go receivers "func (s *Server) Name", Rust/Kotlin generics "impl<T> Name", "fun <T> name"
    r"(?:\s*\([^)]*\))?(?:\s*<[^>]*>)?\s+(?:\*\s*)?"
    rf"(?P<name>{_NAME})"
)
# const name = (...) =>, name: function, M.name = function, const Foo = struct { (Zig)
_ASSIGN_DEF = re.compile(
    r"^\s*(?:export\s+)?(?:(?:const|let|var|local|pub\s+const|pub\s+var)\s+)?"
    rf"(?P<name>{_NAME})\s*(?::\s*[\w<>\[\], .|]+)?\s*[:=]\s*(?:async\s+)?"
    r"(?P<value>function\b|\([^()]*\)\s*(?::\s*[^=]+)?=>|[A-Za-z_$][\w$]*\s*=>"
    r"|(?:extern\s+|packed\s+)?(?:struct|enum|union|opaque)\b)"
)
# A C-family function or method header: "int name(args) {", "public Foo bar(int x) {",
# "async name(a) {", "name() {" (shell); the line must open the body.
_CALL_DEF = re.compile(
    r"^\s*(?P<prefix>(?:[\w$<>\[\],*&~.?:@]+\s+)*?)(?P<name>~?[A-Za-z_$][\w$]*)\s*"
    r"\((?P<args>[^()\"'`;=]*(?:\([^()]*\)[^()\"'`;=]*)*)\)\s*"
    r"(?:const\s*|noexcept\s*|override\s*|throws\s+[\w., ]+|:\s*[\w<>\[\], .?|]+)?\s*\{\s*$"
)
# What a _KEYWORD_DEF line starts with: a modifier or a keyword, followed by whitespace,
# "(" or "<" (the first word of the stripped line, cut at those).
_LEADS = frozenset(_KEYWORDS) | frozenset(
    "export default public private protected internal static final abstract sealed open "
    "override async unsafe extern inline virtual data case inner companion suspend partial "
    "readonly declare local pub const".split()
)
# (An _ASSIGN_DEF value holds "function", "=>" or a Zig container keyword: tested inline.)
_IMPL_FOR = re.compile(rf"\bfor\s+&?(?:'\w+\s+)?(?P<name>{_NAME})")
_CONTAINER_VALUE = re.compile(r"(?:extern\s+|packed\s+)?(?:struct|enum|union|opaque)\b")
_DEFINE = re.compile(r"^\s*#\s*define\s+(?P<name>[A-Za-z_]\w*)")
_TYPEDEF_END = re.compile(r"^\s*}\s*(?P<name>[A-Za-z_]\w*)\s*;")
_HASKELL_SIGNATURE = re.compile(r"^(?P<name>[a-z_][\w']*)\s*::")
_CONTROL = frozenset({
    "if", "for", "while", "switch", "catch", "return", "else", "do", "try", "when", "foreach",
    "synchronized", "using", "lock", "fixed", "sizeof", "typeof", "match", "with", "new",
    "elif", "unless", "until", "case", "defer", "go", "select", "loop", "guard", "in",
})
_C_FAMILY = frozenset({
    "c", "cpp", "cuda", "objc", "java", "csharp", "kotlin", "scala", "javascript",
    "typescript", "tsx", "php", "swift", "dart", "groovy", "rust", "go", "zig", "bash", "shell",
})


def definitions_in(text: str, language: str) -> list[tuple[int, str, str]]:
    """Definition headers in ``text`` by pattern: ``(line offset, name path, kind)``.

    ``name path`` keeps the qualifier written in the header (``self.foo``, ``M.foo``,
    ``Phoenix.Router``), ``.`` separated.
    """
    found = []
    c_family = language in _C_FAMILY
    c_like = language in ("c", "cpp", "cuda", "objc")
    for offset, line in enumerate(text.split("\n")):
        stripped = line.strip()
        if len(line) > 400 or not stripped:
            continue
        # Each pattern runs only on lines that pass a cheap test it implies (its first
        # word, a literal it needs): most lines of code are no header, and the patterns
        # were most of a symbol table's build time. The results are the same.
        lead = stripped.split(None, 1)[0].split("(", 1)[0].split("<", 1)[0]
        match = _KEYWORD_DEF.match(line) if lead in _LEADS else None
        if match is not None:
            name = match["name"]
            if match["kw"] == "impl":
                # "impl Visitor for Foo" implements Visitor for Foo: it defines Foo's side.
                implemented = _IMPL_FOR.search(line, match.end("name"))
                name = implemented["name"] if implemented is not None else name
            found.append((offset, name, _KEYWORDS[match["kw"]]))
            continue
        assigns = ("=>" in line or "function" in line or "struct" in line or "enum" in line
                   or "union" in line or "opaque" in line)
        match = _ASSIGN_DEF.match(line) if assigns else None
        if match is not None:
            kind = "struct" if _CONTAINER_VALUE.match(match["value"]) else "function"
            found.append((offset, match["name"], kind))
            continue
        if c_family and stripped.endswith("{") and "(" in line:
            match = _CALL_DEF.match(line)
            if match is not None and _plausible_call_definition(match):
                found.append((offset, match["name"], "function"))
                continue
        if c_like and stripped[0] in "#}":
            match = _DEFINE.match(line) or _TYPEDEF_END.match(line)
            if match is not None:
                found.append((offset, match["name"], "definition"))
                continue
        if language == "haskell" and "::" in line:
            match = _HASKELL_SIGNATURE.match(line)
            if match is not None:
                found.append((offset, match["name"], "function"))
    return [(o, _dotted(n), k) for o, n, k in found if _dotted(n)]


def _plausible_call_definition(match: re.Match) -> bool:
    """Not a control statement (``if (x) {``) nor a call taking a callback."""
    words = match["prefix"].split()
    if match["name"] in _CONTROL or any(word in _CONTROL for word in words):
        return False
    return "function" not in match["args"] and "=>" not in match["args"]


def _dotted(name: str) -> str:
    return name.replace("::", ".").replace(":", ".").strip(".$")


# --- the component ----------------------------------------------------------------------------


class SymbolTable:
    """Definitions of an index generation, looked up by name (see the module docstring).

    Attributes:
        names, qualified, kinds: per entry, the name as written, its ``.`` scope path, kind.
        rows, lines: per entry, the chunk row that holds its header and the header's line.
    """

    name = "symbols"
    role = "symbols"
    folder = "symbols"
    # Rebuilt whole from the chunk table on every build (seconds even for large trees).
    can_remove = False
    needs_training = False

    def __init__(self) -> None:
        self.names: list[str] = []
        self.qualified: list[str] = []
        self.kinds: list[str] = []
        self.rows: list[int] = []
        self.lines: list[int] = []
        self._by_name: dict[str, list[int]] | None = None
        self._by_normalized: dict[str, list[int]] | None = None
        self._by_part: dict[str, list[int]] | None = None

    def config(self) -> dict[str, Any]:
        """No settings: ``SymbolTable(**table.config())`` is an empty table."""
        return {}

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"SymbolTable({len(self)} definitions)"

    # -- building --

    @classmethod
    def from_chunks(cls, chunks_path: str | Path) -> SymbolTable:
        """Collect the definitions of a chunk table (``chunks.parquet``).

        Raises:
            IndexFormatError: the table cannot be read or lacks the chunk columns.
        """
        columns = ["path", "language", "start_line", "kind", "symbol", "text"]
        try:
            table = pq.read_table(chunks_path, columns=columns)
        except (pa.ArrowException, OSError, KeyError) as exc:
            raise IndexFormatError(
                f"Cannot read the chunk table {chunks_path} to build the symbol table "
                f"({exc}). {_REBUILD}"
            ) from exc
        data = table.to_pydict()
        out = cls()
        seen: dict[tuple[str, str], int] = {}

        def add(path: str, qualified: str, kind: str, row: int, line: int,
                labelled: bool = False) -> None:
            key = (path, qualified)
            if key in seen:
                if labelled:  # the grammar's kind beats the pattern's guess
                    out.kinds[seen[key]] = kind
                return
            seen[key] = len(out.names)
            out.names.append(qualified.rsplit(".", 1)[-1])
            out.qualified.append(qualified)
            out.kinds.append(kind)
            out.rows.append(row)
            out.lines.append(line)

        for row, (path, language, start, kind, symbol, text) in enumerate(zip(
            data["path"], data["language"], data["start_line"], data["kind"], data["symbol"],
            data["text"], strict=True,
        )):
            labels = [s.strip() for s in symbol.split(",")] if symbol else []
            # A chunk inside a definition qualifies what it holds by that definition's path.
            scope = labels[0] if len(labels) == 1 and kind != "module" else None
            text = text or ""
            headers = definitions_in(text, language)
            if headers:  # most chunks hold none: their lines need no second look
                lines = text.split("\n")
                # A definition chunk may also hold a sibling (a type alias above a class):
                # only headers indented deeper than its outermost lines are inside its scope.
                outer = min((_indent(line) for line in lines if line.strip()), default=0)
            for offset, header, header_kind in headers:
                qualified = header
                if header.startswith("self."):  # Ruby "def self.name"
                    header = qualified = header[5:]
                nested = kind == "block" or _indent(lines[offset]) > outer
                if scope and scope.rsplit(".", 1)[-1] == header:
                    qualified = scope
                elif scope and nested and "." not in header:
                    qualified = f"{scope}.{header}"
                add(path, qualified, header_kind, row, start + offset)
            # After the headers, which know the definition's line; a label knows its kind.
            if kind not in _NOT_DEFINITIONS:
                for label in labels:
                    if label:
                        add(path, label, kind, row, start, labelled=True)
        return out

    # -- persistence --

    def save(self, directory: str | Path) -> None:
        """Write ``symbols.parquet`` and then ``symbols.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pydict({
            "name": self.names, "qualified": self.qualified, "kind": self.kinds,
            "row": self.rows, "line": self.lines,
        }, schema=_SCHEMA)
        pq.write_table(table, directory / TABLE_FILE, compression="zstd")
        meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "config": self.config(),
                "count": len(self)}
        # Written last: a folder whose save was interrupted has no (new) manifest.
        (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> SymbolTable:
        """Read a table written by :meth:`save`.

        Raises:
            IndexFormatError: a file is missing, damaged, or of another format version.
        """
        directory = Path(directory)
        try:
            meta = json.loads(read_bytes(directory / META_FILE, 1 << 16).decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
                raise ValueError(f"{META_FILE} is not a {FORMAT_NAME} manifest")
            if meta.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {meta.get('version')!r} is not "
                                 f"{FORMAT_VERSION}")
            # ParquetFile, not read_table: that imports pyarrow.dataset, and it pandas.
            table = pq.ParquetFile(directory / TABLE_FILE).read()
            if not table.schema.equals(_SCHEMA) or table.num_rows != meta.get("count"):
                raise ValueError("symbols.parquet does not match its manifest")
            data = table.to_pydict()
        except (OSError, ValueError, UnicodeError, pa.ArrowException) as exc:
            raise IndexFormatError(
                f"The symbol table at {directory} is corrupt or incomplete ({exc}). {_REBUILD}"
            ) from exc
        out = cls()
        out.names, out.qualified, out.kinds = data["name"], data["qualified"], data["kind"]
        out.rows, out.lines = data["row"], data["line"]
        if any(r is None or r < 0 for r in out.rows):
            raise IndexFormatError(f"The symbol table at {directory} has bad rows. {_REBUILD}")
        return out

    # -- lookups (entry numbers; the dictionaries are built on first use) --

    def exact(self, name: str) -> list[int]:
        """Entries whose name equals ``name``, ignoring case."""
        if self._by_name is None:
            self._by_name = _group(n.lower() for n in self.names)
        return self._by_name.get(name.lower(), [])

    def same_spelling(self, name: str) -> list[int]:
        """Entries whose name is ``name`` in another identifier style (``get_user`` /
        ``getUser`` / ``GETUSER``)."""
        if self._by_normalized is None:
            self._by_normalized = _group(_normalized(n) for n in self.names)
        return self._by_normalized.get(_normalized(name), [])

    def with_parts(self, parts: tuple[str, ...]) -> list[int]:
        """Entries whose name parts include every one of ``parts`` (lower case)."""
        if not parts:
            return []
        if self._by_part is None:
            index: dict[str, list[int]] = defaultdict(list)
            for entry, name in enumerate(self.names):
                for part in set(name_parts(name)):
                    index[part].append(entry)
            self._by_part = dict(index)
        lists = sorted((self._by_part.get(p, []) for p in set(parts)), key=len)
        if not lists[0]:
            return []
        found = set(lists[0])
        for more in lists[1:]:
            found.intersection_update(more)
            if not found:
                return []
        return sorted(found)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _group(keys) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for entry, key in enumerate(keys):
        groups[key].append(entry)
    return dict(groups)
