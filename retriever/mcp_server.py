"""`retriever mcp`: the search engine as a Model Context Protocol server over stdio.

A thin front end, like the CLI: each tool is one typed method whose signature becomes its
schema, makes one call into the API and returns one payload. Search results have the field
names of ``retriever search --json``; every result is cut to the caller's token budget
(:mod:`retriever.budget`). Paths a caller names are confined to the indexed root. The index
is a :class:`retriever.watch.LiveIndex`: always the newest whole generation.

Needs the ``mcp`` extra (the official SDK, 2.x).
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import threading
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from chunking.walker import SourceFile, UnreadableFile, read_source
from retriever import api
from retriever.budget import (
    DEFAULT_MAX_TOKENS,
    MAX_MAX_TOKENS,
    MIN_MAX_TOKENS,
    fit,
    fit_lines,
    render,
)
from retriever.errors import InputError, RetrieverError
from retriever.hits import Hit
from retriever.payload import search_payload
from retriever.ranking.calibration import CONFIDENT
from retriever.watch import DEFAULT_DEBOUNCE_MS, LiveIndex, pending_changes

__all__ = ["INSTRUCTIONS", "MAX_HITS", "Tools", "build_server", "serve"]

# More hits than this is a listing, not a search; narrow with paths/languages instead.
MAX_HITS = 100
_OPEN_LINES = 200
_OPEN_MAX_BYTES = 8 << 20
_RELATED_DEPTH = 20

INSTRUCTIONS = f"""\
Code search over one repository (semantic + keyword, hybrid by default).
- search(query): describe what the code does ("where are retries backed off") or name an
  identifier. Hits give path, start_line-end_line, symbol and the chunk's text. Narrow with
  paths=["src/**/*.py"], languages=["python"], exclude_tests=true.
- open(path, start_line, end_line), or open(path, line=N): the file's lines, to read more
  than a hit shows. Paths are relative to the repository root, as hits give them.
- find_related(path, line): code similar to the chunk at that line.
- status(): what is indexed and whether the index is up to date.
Each search hit has a relevance in [0, 1] (estimated probability it is what was asked);
"confident": false means no hit reached the confidence threshold: rephrase, or the code is
not there. min_score={CONFIDENT} keeps only confident hits.
Results are trimmed to max_tokens; "truncated": true says something was cut."""

Budget = Annotated[int, Field(ge=MIN_MAX_TOKENS, le=MAX_MAX_TOKENS,
                              description="Most tokens the answer may take (estimated).")]
Lines = Annotated[int | None, Field(ge=0, le=1000, description=(
    "Show only this many lines of each hit, those that best match (0: none). "
    "Default: whole chunks, cut only to fit max_tokens."))]
Count = Annotated[int, Field(ge=1, le=MAX_HITS, description="Number of hits.")]
LineNumber = Annotated[int, Field(ge=1, description="1-based line number.")]


def _tool_errors(method):
    """The library's errors become tool errors whose message the model reads and can act on;
    anything else is a bug, which the SDK reports without its details."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except RetrieverError as exc:
            raise ToolError(str(exc)) from None

    return wrapper


class Tools:
    """The server's tools over one live index (their docstrings are what the model reads)."""

    def __init__(self, live: LiveIndex) -> None:
        self.live = live
        self._chunk_map: tuple | None = None
        self._lock = threading.Lock()

    @_tool_errors
    def search(
        self,
        query: Annotated[str, Field(description="Words or code to look for.")],
        k: Count = 5,
        mode: Annotated[Literal["hybrid", "dense", "lexical"] | None, Field(description=(
            "hybrid (meaning + keywords), dense (meaning) or lexical (keywords). Default: "
            "hybrid, or lexical for an index without vectors."))] = None,
        paths: Annotated[list[str] | None, Field(description=(
            'Only files matching any of these gitignore-style globs, e.g. ["src/**/*.py"].'
        ))] = None,
        languages: Annotated[list[str] | None, Field(description=(
            'Only these languages, e.g. ["python", "go"].'))] = None,
        exclude_tests: Annotated[bool, Field(description="Leave test files out.")] = False,
        min_score: Annotated[float | None, Field(description=(
            "Only hits whose relevance (0 to 1) is at least this."))] = None,
        max_tokens: Budget = DEFAULT_MAX_TOKENS,
        snippet_lines: Lines = None,
    ) -> str:
        """Search the repository's code and docs; the best matches first, as JSON hits with
        path, start_line, end_line, symbol, kind, language, score, relevance and text, and
        "confident" (whether any hit is a confident match)."""
        index = self.live.get()
        mode = mode or ("hybrid" if index.has_vectors else "lexical")
        hits = index.search(query, k=k, mode=mode, paths=paths, languages=languages,
                            exclude=["test"] if exclude_tests else None, min_score=min_score)
        payload = search_payload(index, query, hits, mode=mode, k=k)
        hint = api.tier_hint(index)
        if hint is not None:  # a fast-tier index: say how to add the transformer's vectors
            payload["hint"] = hint
        return fit(payload, max_tokens, snippet_lines=snippet_lines)[0]

    @_tool_errors
    def open(  # shadows the builtin only inside this class: the name agents look for
        self,
        path: Annotated[str, Field(description="File path relative to the repository root.")],
        start_line: LineNumber = 1,
        end_line: Annotated[int | None, Field(ge=1, description=(
            f"Last line (default: start_line + {_OPEN_LINES - 1})."))] = None,
        line: Annotated[int | None, Field(ge=1, description=(
            "Instead of a range: the line to show with `context` lines either side."))] = None,
        context: Annotated[int, Field(ge=0, le=1000)] = 20,
        max_tokens: Budget = DEFAULT_MAX_TOKENS,
    ) -> str:
        """Read lines of a file in the repository (a range, or the code around one line)."""
        relative, text = self._read(path)
        rows = text.split("\n")
        if rows and rows[-1] == "":
            rows.pop()  # a final newline ends the last line
        if line is not None:
            start_line, end_line = max(1, line - context), line + context
        elif end_line is None:
            end_line = start_line + _OPEN_LINES - 1
        if end_line < start_line:
            raise InputError(f"end_line {end_line} is before start_line {start_line}.")
        if start_line > max(len(rows), 1):
            raise InputError(f"{relative} has {len(rows)} lines; start_line {start_line} is "
                             "past its end.")
        end_line = min(end_line, len(rows))
        payload = {"path": relative, "start_line": start_line, "end_line": end_line,
                   "total_lines": len(rows), "text": "\n".join(rows[start_line - 1:end_line])}
        return fit_lines(payload, max_tokens)[0]

    @_tool_errors
    def find_related(
        self,
        path: Annotated[str, Field(description="File path relative to the repository root.")],
        line: LineNumber,
        k: Count = 5,
        max_tokens: Budget = DEFAULT_MAX_TOKENS,
        snippet_lines: Lines = None,
    ) -> str:
        """Code similar to the chunk at path:line (by meaning, or by words for an index
        without vectors); the chunk itself is left out. Same hit fields as search."""
        index = self.live.get()
        chunks, by_path, by_id = self._chunks(index)
        relative = _relative(path)
        spans = by_path.get(relative)
        if not spans:
            raise InputError(f"{relative} is not in the index. Pass a path as search hits "
                             "give it (relative to the repository root).")
        row = min(spans, key=lambda r: _distance(chunks[r], line))
        source = chunks[row]
        depth = min(len(index), k + _RELATED_DEPTH)
        if index.has_vectors:
            vector = np.asarray(index.vectors[row : row + 1], dtype=np.float32)
            scores, rows = index.search_vectors(vector, depth)
            ranked = [(chunks[r], float(s)) for r, s in zip(rows[0], scores[0], strict=True)
                      if r >= 0]
            mode = "dense"
        else:
            found = index.search(source.text, k=depth, mode="lexical")
            ranked = [(chunks[by_id[hit.chunk_id]], hit.score) for hit in found]
            mode = "lexical"
        hits = _related(ranked, source, k)
        payload = search_payload(index, f"{relative}:{line}", hits, mode=mode, k=k)
        payload["source"] = {"path": source.path, "start_line": source.start_line,
                             "end_line": source.end_line, "symbol": source.symbol,
                             "kind": source.kind}
        return fit(payload, max_tokens, snippet_lines=snippet_lines)[0]

    @_tool_errors
    def status(
        self,
        check_tree: Annotated[bool, Field(description=(
            "Walk the tree to say whether files changed since the index was built."))] = True,
    ) -> str:
        """What is indexed (files, chunks, encoders, search modes) and whether it is up to
        date with the files on disk."""
        live = self.live
        state = {"root": None if live.root is None else str(live.root),
                 "index": str(live.index_dir.absolute()), "building": live.building,
                 "watching": live.watching, "last_error": live.last_error}
        try:
            index = live.get()
        except RetrieverError as exc:
            return render({**state, "ready": False, "problem": str(exc)})
        manifest = index.manifest
        state.update(
            ready=True, generation=index.generation.name, created_at=manifest.get("created_at"),
            chunks=len(index), counts=manifest.get("counts"),
            encoders=[{"id": e.get("id"), "name": e.get("name"), "tier": e.get("tier"),
                       "model": (e.get("config") or {}).get("model"), "dim": e.get("dim")}
                      for e in manifest.get("encoders", [])],
            modes=["hybrid", "dense", "lexical"] if index.has_vectors else ["lexical"],
            version=_version(),
        )
        if check_tree:
            state["freshness"] = pending_changes(index)
        return render(state)

    def _read(self, path: str) -> tuple[str, str]:
        """``(relative path, text)`` of a file inside the root, refusing any path that leads
        out of it: ``..``, absolute paths, and symlinks whose target is outside."""
        root = self.live.root
        if root is None:
            raise InputError("This index holds documents, not a source tree: there are no "
                             "files to open.")
        relative = _relative(path)
        real_root = root.resolve()
        try:
            real = (real_root / relative).resolve(strict=True)
        except FileNotFoundError:
            raise InputError(f"{relative} does not exist in the repository. Pass a path as "
                             "search hits give it.") from None
        except (OSError, RuntimeError):
            raise InputError(f"{relative} cannot be resolved (a symlink loop?).") from None
        if not real.is_relative_to(real_root):
            raise InputError(f"{relative} is a symlink leading outside the indexed root; "
                             "refusing to follow it.")
        if real.is_relative_to(self.live.index_dir.resolve()):
            raise InputError(f"{relative} is inside the index folder, not a source file.")
        # Opened below the root one folder at a time, following no symlink: a path swapped
        # for a symlink after the check above fails instead of leading out.
        file = SourceFile(path=relative, absolute=real, size=0, mtime_ns=0, root=real_root,
                          max_bytes=_OPEN_MAX_BYTES)
        try:
            return relative, read_source(file)
        except UnreadableFile as exc:
            raise InputError(f"{relative} cannot be opened: {exc.reason}.") from None

    def _chunks(self, index) -> tuple[list, dict[str, list[int]], dict[str, int]]:
        """Every chunk of ``index``, its rows by file and by chunk id, kept for its
        generation."""
        with self._lock:
            cached = self._chunk_map
            if cached is None or cached[0] != index.generation:
                chunks = index.chunks()
                by_path: dict[str, list[int]] = {}
                for row, chunk in enumerate(chunks):
                    by_path.setdefault(chunk.path, []).append(row)
                by_id = {chunk.id: row for row, chunk in enumerate(chunks)}
                cached = self._chunk_map = (index.generation, chunks, by_path, by_id)
            return cached[1], cached[2], cached[3]


def _relative(path: str) -> str:
    """``path`` as a clean relative path, or InputError when it is empty, absolute or
    climbs out with ``..``."""
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise InputError("path is empty. Pass a file path relative to the repository root.")
    text = path.strip().replace("\\", "/")
    if text.startswith("/") or re.match(r"[A-Za-z]:/", text):
        raise InputError(f"{path!r} is an absolute path; pass a path relative to the "
                         "repository root, as search hits give it (e.g. 'src/app.py').")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InputError(f"{path!r} leads outside the indexed root ('..'); pass a path "
                         "relative to the repository root.")
    if not parts:
        raise InputError(f"{path!r} names the root folder, not a file.")
    return "/".join(parts)


def _distance(chunk, line: int) -> int:
    """0 for a chunk holding ``line``, else how many lines away it is (ties: the earlier)."""
    if chunk.start_line <= line <= chunk.end_line:
        return 0
    return chunk.start_line - line if line < chunk.start_line else line - chunk.end_line


def _related(ranked, source, k: int) -> list[Hit]:
    """The first ``k`` ranked chunks other than ``source``, no two overlapping in a file."""
    hits: list[Hit] = []
    taken: dict[str, list[tuple[int, int]]] = {source.path: [(source.start_line,
                                                               source.end_line)]}
    for chunk, score in ranked:
        spans = taken.setdefault(chunk.path, [])
        if any(chunk.start_line <= end and start <= chunk.end_line for start, end in spans):
            continue
        spans.append((chunk.start_line, chunk.end_line))
        hits.append(Hit(path=chunk.path, start_line=chunk.start_line, end_line=chunk.end_line,
                        symbol=chunk.symbol, kind=chunk.kind, language=chunk.language,
                        score=score, text=chunk.text, chunk_id=chunk.id))
        if len(hits) == k:
            break
    return hits


def _version() -> str:
    try:
        return importlib.metadata.version("dense-retriever")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout
        return "unknown"


def build_server(live: LiveIndex) -> MCPServer:
    """The MCP server over ``live``, its tools registered (not yet running)."""
    server = MCPServer(name="dense-retriever", instructions=INSTRUCTIONS, version=_version(),
                       log_level="WARNING")
    tools = Tools(live)
    read_only = ToolAnnotations(read_only_hint=True, idempotent_hint=True,
                                open_world_hint=False)
    for method in (tools.search, tools.open, tools.find_related, tools.status):
        # Text only: a structured copy would send every hit twice and double the tokens.
        server.add_tool(method, annotations=read_only, structured_output=False)
    return server


def serve(path: str | Path | None = None, *, index_dir: str | Path | None = None,
          watch: bool = False, debounce_ms: int = DEFAULT_DEBOUNCE_MS,
          lexical_only: bool | None = None, tier: str | None = None,
          wait: float = 10.0) -> None:
    """Serve the index of ``path`` over stdio until the client disconnects.

    Args:
        path: the tree; None: the indexed tree at or above the working folder (else it).
        index_dir: the index folder; default ``PATH/.retriever``. Given alone, the tree it
            was built from.
        watch: re-index on every change (needs the ``watch`` extra); else the index is
            brought up to date once, in the background, at start.
        debounce_ms: the watcher's quiet time before a batch of changes is indexed.
        lexical_only: build without vectors when there is no index yet (None: the index's
            own setting, else with vectors).
        tier: the vector sets to build (``retriever.index(tier=...)``: lexical, fast, dense
            or full); None keeps the index's own.
        wait: seconds a call waits for a first index before saying it is being built.
    """
    root, index_dir = _locate(path, index_dir)
    options = {key: value for key, value in (("lexical_only", lexical_only), ("tier", tier))
               if value is not None}
    live = LiveIndex(root, index_dir, index_options=options, wait=wait)
    live.start(watch_tree=watch, debounce_ms=debounce_ms)
    threading.Thread(target=_warm_up, args=(live,), daemon=True, name="warm-up").start()
    try:
        build_server(live).run("stdio")
    finally:
        live.close()


def _locate(path, index_dir) -> tuple[Path | None, Path]:
    if path is None and index_dir is not None:
        opened = api.open(index_dir)
        return opened.root, opened.directory
    if path is None:
        here = Path.cwd()
        path = api.find_root(here) or here
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InputError(f"{root} is not a folder. Pass the repository to serve.")
    root = root.resolve()
    return root, Path(index_dir).expanduser() if index_dir else root / api.DEFAULT_INDEX_DIR


def _warm_up(live: LiveIndex) -> None:
    """Load the query encoder before the first search asks for it (seconds, not ms)."""
    try:
        index = live.get()
        if index.has_vectors:
            index.encoder.encode_queries(["warm up"])
    except RetrieverError:
        pass  # the first search reports it
