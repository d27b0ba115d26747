"""Index generations on disk: one writer at a time, atomic swaps, readers never see half an index.

Layout of an index directory::

    <index>/
      CURRENT           name of the live generation; replaced with os.replace
      LOCK              flock'ed by the one writer; the kernel frees it if the writer dies
      gen-<id>/         one complete index: manifest.json, chunks.parquet, files.parquet,
                        vectors.npy, dense/, lexical/
      .tmp-<id>/        a generation being built; renamed to gen-<id> only when complete

A directory cannot be atomically renamed over a non-empty one, so instead of swapping the
index directory itself we swap the small CURRENT pointer file. A reader resolves CURRENT
once and then reads only that generation, so it keeps working while a writer builds the next.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from retriever.errors import IndexFormatError, IndexLockedError, InputError

__all__ = ["CURRENT", "current_generation", "is_index", "writer", "Generation"]

CURRENT = "CURRENT"
_LOCK = "LOCK"
_GEN_PREFIX = "gen-"
_TMP_PREFIX = ".tmp-"
# Generations kept behind the live one, for readers that opened them a moment ago.
_KEEP_OLD = 1


def is_index(directory: Path) -> bool:
    """True if ``directory`` holds an index (a CURRENT pointer)."""
    return (Path(directory) / CURRENT).is_file()


def current_generation(directory: Path) -> Path:
    """The folder of the live generation of the index at ``directory``.

    Raises:
        IndexFormatError: no index there, or CURRENT points at a missing generation.
    """
    directory = Path(directory)
    pointer = directory / CURRENT
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        if not directory.exists():
            raise IndexFormatError(
                f"There is no index at {directory}. Build one with `retriever index PATH`."
            ) from None
        raise IndexFormatError(
            f"{directory} is not a dense-retriever index (no {CURRENT} file). "
            "Build one with `retriever index PATH --index DIR`."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"Cannot read {pointer}: {exc}. Rebuild the index.") from exc
    generation = directory / name
    if not name.startswith(_GEN_PREFIX) or "/" in name or not generation.is_dir():
        raise IndexFormatError(
            f"{pointer} points at {name!r}, which is not a generation of this index. "
            "Rebuild it with `retriever index PATH --force`."
        )
    return generation


class Generation:
    """A generation being written; :func:`writer` publishes it when the block succeeds."""

    def __init__(self, index_dir: Path, path: Path, previous: Path | None) -> None:
        self.index_dir = index_dir
        self.path = path
        self.previous = previous


def _acquire(lock_path: Path, wait: float):
    import fcntl

    handle = lock_path.open("a+")
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                handle.close()
                raise
            if time.monotonic() >= deadline:
                handle.close()
                raise IndexLockedError(
                    f"Another process is writing the index at {lock_path.parent}. Wait for it "
                    "to finish (or pass a longer wait), then try again."
                ) from None
            time.sleep(0.1)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def writer(index_dir: Path, *, wait: float = 0.0) -> Iterator[Generation]:
    """Build a new generation of the index at ``index_dir`` and publish it atomically.

    Holds the writer lock for the whole block. The block writes into ``Generation.path``;
    when it returns, the folder is renamed into place and CURRENT is swapped to it. When it
    raises (or the process dies) the live generation is untouched and the partial folder is
    removed (now, or by the next writer).

    Args:
        index_dir: the index directory; created if missing.
        wait: seconds to wait for another writer before raising IndexLockedError.
    """
    index_dir = Path(index_dir)
    if index_dir.exists() and not index_dir.is_dir():
        raise InputError(f"The index path {index_dir} exists and is not a directory.")
    if index_dir.is_dir() and any(index_dir.iterdir()) and not (
        is_index(index_dir) or (index_dir / _LOCK).exists()
    ):
        raise InputError(
            f"{index_dir} exists, is not empty and is not an index; refusing to write an index "
            "into it. Pass another --index directory."
        )
    index_dir.mkdir(parents=True, exist_ok=True)
    handle = _acquire(index_dir / _LOCK, wait)
    try:
        # Holding the lock, any temporary folder left is from a writer that died.
        for stale in index_dir.glob(_TMP_PREFIX + "*"):
            shutil.rmtree(stale, ignore_errors=True)
        previous = current_generation(index_dir) if is_index(index_dir) else None
        # Nanoseconds first so names sort by age; the random tail keeps them unique.
        stamp = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        tmp = index_dir / f"{_TMP_PREFIX}{stamp}"
        tmp.mkdir()
        generation = Generation(index_dir, tmp, previous)
        try:
            yield generation
            final = index_dir / f"{_GEN_PREFIX}{stamp}"
            _fsync_dir(tmp)
            os.replace(tmp, final)
            pointer_tmp = index_dir / f"{_TMP_PREFIX}{CURRENT}"
            with pointer_tmp.open("w", encoding="utf-8") as pointer:
                pointer.write(final.name + "\n")
                pointer.flush()
                os.fsync(pointer.fileno())
            os.replace(pointer_tmp, index_dir / CURRENT)
            _fsync_dir(index_dir)
            generation.path = final
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _prune(index_dir, keep=final.name)
    finally:
        handle.close()


def _prune(index_dir: Path, *, keep: str) -> None:
    old = sorted(
        (p for p in index_dir.glob(_GEN_PREFIX + "*") if p.name != keep),
        key=lambda p: p.name,
    )
    for stale in old[: max(0, len(old) - _KEEP_OLD)]:
        shutil.rmtree(stale, ignore_errors=True)
