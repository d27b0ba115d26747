"""Keeping an index fresh: the file watcher, and the live index a long-running server holds.

:func:`watch` re-indexes a tree after each debounced batch of changes. Each refresh is an
ordinary incremental :func:`retriever.index` call, so a branch switch (thousands of events)
becomes one build, a file that vanishes mid-read is skipped by that build, and a reader never
sees half an index: builds publish a whole generation atomically.

:class:`LiveIndex` is what ``retriever mcp`` answers from: the newest published generation,
re-opened only when a writer publishes another, rebuilt in the background when its folder is
deleted, and still answering from the generation it has while a rebuild runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chunking.walker import walk
from indexing.layout import FILES
from indexing.store import current_generation
from indexing.table import read_table
from retriever import api
from retriever.errors import (
    IndexFormatError,
    IndexLockedError,
    InputError,
    MissingDependencyError,
    RetrieverError,
)

__all__ = ["DEFAULT_DEBOUNCE_MS", "watch", "LiveIndex", "pending_changes"]

DEFAULT_DEBOUNCE_MS = 300
# How long one refresh waits for another writer (a `retriever index` in a terminal) before
# trying again at the next tick.
_LOCK_WAIT_S = 2.0
_TICK_MS = 1000
# Folders whose changes never matter (watchfiles' defaults); dependency folders only matter
# to an index that includes them.
_ALWAYS_IGNORED = {".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache",
                   ".hypothesis", ".tox", ".idea"}


def _watchfiles():
    try:
        import watchfiles
    except ImportError:
        raise MissingDependencyError(
            "Watching needs the watchfiles package: pip install 'dense-retriever[watch]'."
        ) from None
    return watchfiles


def _changes_filter(watchfiles, index_dir: Path, include_dependencies: bool):
    """Changes under the index folder are the watcher's own builds: reacting to them would
    rebuild forever. Version-control internals change on every commit and say nothing the
    working tree does not."""
    default = watchfiles.DefaultFilter()
    ignored = set(default.ignore_dirs) if not include_dependencies else _ALWAYS_IGNORED
    return watchfiles.DefaultFilter(ignore_dirs=ignored, ignore_paths=[str(index_dir)])


def watch(
    path: str | Path = ".",
    *,
    index_dir: str | Path | None = None,
    stop_event: threading.Event | None = None,
    debounce_ms: int = DEFAULT_DEBOUNCE_MS,
    on_update: Callable[[Any], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
    initial: bool = True,
    **index_options: Any,
) -> None:
    """Re-index ``path`` after every batch of changes, until ``stop_event`` is set.

    Args:
        path: root of the tree.
        index_dir: where the index lives; default ``PATH/.retriever``.
        stop_event: set it (from another thread) to stop; None watches until interrupted.
        debounce_ms: quiet time that ends a batch: changes closer together than this are
            indexed together (a batch is cut after at most ten times as long).
        on_update: ``on_update(index)`` after each refresh, with the opened
            :class:`retriever.Index`; ``index.last_build.rebuilt`` says whether anything
            changed (an edit to an ignored file changes nothing).
        on_error: ``on_error(exc)`` for a refresh that failed with a RetrieverError or
            OSError (the watch goes on; the previous index stays live). None raises it.
        initial: refresh once before watching (and once more, cheaply, when the watcher is
            up), so the index is current from the start.
        index_options: keyword arguments of :func:`retriever.index` (``lexical_only``,
            ``encoder``, ``include_dependencies``...), the same for every refresh.

    Raises:
        MissingDependencyError: watchfiles is not installed (the ``watch`` extra).
        InputError: ``path`` is not a folder, or ``debounce_ms`` is not a positive integer.
    """
    watchfiles = _watchfiles()
    if isinstance(debounce_ms, bool) or not isinstance(debounce_ms, int) or debounce_ms < 1:
        raise InputError(f"debounce_ms must be a positive integer, got {debounce_ms!r}.")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InputError(f"{root} is not a folder. Pass the folder to watch.")
    root = root.resolve()
    index_dir = Path(index_dir).expanduser() if index_dir is not None else (
        root / api.DEFAULT_INDEX_DIR)
    stop = stop_event if stop_event is not None else threading.Event()
    options = {key: value for key, value in index_options.items() if key != "wait"}

    def refresh() -> bool:
        """One incremental build; False when another writer holds the index (try again)."""
        try:
            opened = api.index(root, index_dir=index_dir, wait=_LOCK_WAIT_S, **options)
        except IndexLockedError:
            return False
        except (RetrieverError, OSError) as exc:
            if on_error is None:
                raise
            on_error(exc)
            return True
        if on_update is not None:
            on_update(opened)
        return True

    if initial:
        refresh()
    # The watcher starts with the loop below, after that first refresh: check once more when
    # it is up (a walk, no build, if nothing changed), or a change made in between is lost.
    pending = initial
    include_dependencies = bool(options.get("include_dependencies"))
    for changes in watchfiles.watch(
        root, watch_filter=_changes_filter(watchfiles, index_dir.absolute(),
                                           include_dependencies),
        step=debounce_ms, debounce=10 * debounce_ms, stop_event=stop,
        rust_timeout=_TICK_MS, yield_on_timeout=True, raise_interrupt=True,
    ):
        if stop.is_set():
            return
        if changes or pending:
            pending = not refresh()


def pending_changes(index: Any) -> dict:
    """How the tree differs from what ``index`` was built from, by file (path, size, mtime).

    Returns:
        ``{"up_to_date", "added", "changed", "removed"}`` counts, walking the tree with the
        index's own walk options (a few hundred milliseconds on a large tree). An index of
        documents (no tree) is always up to date.
    """
    walk_options = index.manifest.get("walk") or {}
    root = index.root
    if root is None:
        return {"up_to_date": True, "added": 0, "changed": 0, "removed": 0}
    walked = walk(root, max_bytes=walk_options.get("max_file_bytes", 1 << 20),
                  include_dependencies=walk_options.get("include_dependencies", False))
    now = {f.path: (f.size, f.mtime_ns) for f in walked.files}
    rows = read_table(index.generation / FILES, ["path", "size", "mtime_ns"]).to_pylist()
    then = {r["path"]: (r["size"], r["mtime_ns"]) for r in rows}
    added = len(now.keys() - then.keys())
    removed = len(then.keys() - now.keys())
    changed = sum(1 for p in now.keys() & then.keys() if now[p] != then[p])
    return {"up_to_date": not (added or removed or changed), "added": added,
            "changed": changed, "removed": removed}


class LiveIndex:
    """The newest whole generation of one index, for a server answering many calls.

    :meth:`get` costs an lstat and a one-line read when nothing changed; it re-opens when a
    writer has published a newer generation, and keeps serving the one it has when the new
    one cannot be opened (a generation being removed is never served half). With no index at
    all (none yet, or its folder deleted), it starts a rebuild in the background and waits
    for it up to ``wait`` seconds; a rebuild also runs after :meth:`start`, while the
    generation on disk keeps answering.

    Args:
        root: the indexed tree, or None for an index of documents (never rebuilt).
        index_dir: the index folder.
        index_options: keyword arguments of :func:`retriever.index` for every rebuild.
        wait: seconds :meth:`get` waits for a first index before saying it is being built.
    """

    def __init__(self, root: Path | None, index_dir: Path, *,
                 index_options: dict | None = None, wait: float = 10.0) -> None:
        self.root = root
        self.index_dir = Path(index_dir)
        self.options = dict(index_options or {})
        self.wait = wait
        self.watching = False
        self.last_error: str | None = None
        self.last_refresh: float | None = None
        self._index = None
        self._lock = threading.Lock()
        self._reopening = threading.Lock()
        self._builder: threading.Thread | None = None
        self._built = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def building(self) -> bool:
        builder = self._builder
        return builder is not None and builder.is_alive()

    def start(self, *, watch_tree: bool = False, debounce_ms: int = DEFAULT_DEBOUNCE_MS) -> None:
        """Open what is on disk, then bring it up to date in the background: once, or on
        every change when ``watch_tree`` (the watcher's first refresh does it then)."""
        try:
            self._open()
        except RetrieverError:
            pass  # none yet, or damaged: the refresh below builds it
        if self.root is None:
            return
        if watch_tree:
            _watchfiles()  # fail now, in the caller, when the extra is missing
            self.watching = True
            thread = threading.Thread(target=self._watch, args=(debounce_ms,), daemon=True,
                                      name="retriever-watch")
            self._threads.append(thread)
            thread.start()
        else:
            self.refresh()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the watcher; a build in flight finishes (or dies with the process: a build
        publishes atomically, so that leaves no half index)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def get(self):
        """The newest whole generation, opened.

        Raises:
            IndexLockedError: there is no index yet and the one being built is not ready
                within ``wait`` seconds (the message says so; ask again shortly).
            RetrieverError: there is no index and it cannot be rebuilt (the build failed, or
                this is an index of documents with no tree), with the reason.
        """
        held = self._index
        try:
            live = current_generation(self.index_dir)
        except IndexFormatError:
            live = None
        if live is not None:
            if held is not None and held.generation == live:
                return held
            with self._reopening:  # concurrent calls open the new generation once
                held = self._index
                if held is not None and held.generation == live:
                    return held
                try:
                    return self._open()
                except RetrieverError:
                    if held is not None:
                        return held  # a newer generation that does not open yet: keep this
                    raise
        return self._rebuild_missing()

    def refresh(self) -> None:
        """Rebuild in the background unless a rebuild is already running."""
        with self._lock:
            if self.root is None or self.building:
                return
            self._built.clear()
            self._builder = threading.Thread(target=self._build, daemon=True,
                                             name="retriever-build")
            self._builder.start()

    def _open(self):
        opened = api.open(self.index_dir)  # resolves CURRENT: the live generation
        with self._lock:
            self._index = held = opened
            asked = {key: self.options.get(key) for key in ("lexical_only", "tier")}
            if not held.has_vectors and not any(v is not None for v in asked.values()):
                # A deleted lexical index is rebuilt lexical (no model loads for it).
                self.options["lexical_only"] = True
        return held

    def _rebuild_missing(self):
        if self.root is None:
            raise IndexFormatError(
                f"There is no index at {self.index_dir} and no source tree to rebuild it "
                "from. Build it again, then restart the server."
            )
        self.refresh()
        self._built.wait(self.wait)
        try:
            return self._open()
        except RetrieverError:
            pass
        if self.building:
            raise IndexLockedError(
                f"The index of {self.root} is missing and being rebuilt in the background; "
                "ask again in a few seconds."
            )
        raise IndexFormatError(
            f"There is no index at {self.index_dir} and rebuilding it failed: "
            f"{self.last_error or 'unknown reason'}. Fix that, then ask again."
        )

    def _build(self) -> None:
        try:
            options = {**self.options, "stale_ok": True, "wait": _LOCK_WAIT_S}
            self._adopt(api.index(self.root, index_dir=self.index_dir, **options))
        except (RetrieverError, OSError) as exc:
            self.last_error = str(exc)
        finally:
            self._built.set()

    def _adopt(self, opened) -> None:
        """Serve what a build just published (it also carries the loaded encoder)."""
        self.last_error = None
        self.last_refresh = time.time()
        with self._lock:
            held = self._index
            if held is None or held.generation.name <= opened.generation.name:
                self._index = opened

    def _failed(self, exc: Exception) -> None:
        self.last_error = str(exc)

    def _watch(self, debounce_ms: int) -> None:
        try:
            watch(self.root, index_dir=self.index_dir, stop_event=self._stop,
                  debounce_ms=debounce_ms, on_update=self._adopt, on_error=self._failed,
                  **self.options)
        except (RetrieverError, OSError) as exc:  # the tree itself went away
            self.last_error = f"watching stopped: {exc}"
        finally:
            self.watching = False
