"""Index generations on disk: one writer at a time, atomic swaps, readers never see half an index.

A directory cannot be atomically renamed over a non-empty one, so instead of swapping the
index directory itself we swap the small CURRENT pointer file. A reader resolves CURRENT
once and then reads only that generation, so it keeps working while a writer builds the next.
File names are owned by :mod:`indexing.layout`.

Nothing here follows a symlink inside the index folder: the lock and the pointer are opened
with ``O_NOFOLLOW``, temporary files get unique names and ``O_EXCL``, and symlinks planted in
the folder are removed (never their targets) while the writer holds the lock.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from indexing.layout import CURRENT, GEN_NAME, GEN_PREFIX, GITIGNORE, LOCK, TMP_PREFIX, read_small
from retriever.errors import IndexFormatError, IndexLockedError, InputError, StorageError

__all__ = ["CURRENT", "current_generation", "is_index", "looks_like_index", "writer",
           "NewGeneration", "tidy", "storage_error"]

_NOFOLLOW = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# CURRENT holds one generation name and a newline.
_POINTER_LIMIT = 256


def is_index(directory: Path) -> bool:
    """True if ``directory`` holds an index: a plain CURRENT file naming a generation."""
    try:
        return _pointer_name(Path(directory)) is not None
    except OSError:
        return False


def looks_like_index(directory: Path) -> bool:
    """True if ``directory`` holds what only an index holds (a LOCK or generation folders),
    even when its CURRENT is damaged: such a folder may be repaired by a rebuild."""
    try:
        names = os.listdir(directory)
    except OSError:
        return False
    return LOCK in names or any(n.startswith((GEN_PREFIX, TMP_PREFIX)) for n in names)


def _pointer_name(directory: Path) -> str | None:
    """The generation CURRENT names, or None when CURRENT is absent or not a valid pointer."""
    try:
        raw = read_small(directory / CURRENT, _POINTER_LIMIT)
    except IndexFormatError:
        return None
    name = raw.decode("ascii", "replace").strip()
    return name if GEN_NAME.fullmatch(name) else None


def current_generation(directory: Path) -> Path:
    """The folder of the live generation of the index at ``directory``.

    Raises:
        IndexFormatError: no index there, or CURRENT is not a plain file naming an existing
            generation folder of this index (its content is never echoed: it may be anything).
    """
    directory = Path(directory)
    pointer = directory / CURRENT
    try:
        mode = os.lstat(pointer).st_mode
    except FileNotFoundError:
        if not directory.exists():
            raise IndexFormatError(
                f"There is no index at {directory}. Build one with `retriever index PATH`."
            ) from None
        raise IndexFormatError(
            f"{directory} is not a dense-retriever index (no {CURRENT} file). "
            "Build one with `retriever index PATH --index DIR`."
        ) from None
    except OSError as exc:
        raise IndexFormatError(f"Cannot read {pointer}: {exc.strerror}. Rebuild the index "
                               "with `retriever index PATH --force`.") from exc
    name = _pointer_name(directory) if stat.S_ISREG(mode) else None
    generation = directory / name if name else None
    if generation is None or not _is_plain_dir(generation):
        raise IndexFormatError(
            f"{pointer} does not name a generation folder of this index (it is damaged, a "
            "symlink, or points at a missing folder). Rebuild it with "
            "`retriever index PATH --force`."
        )
    return generation


def _is_plain_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


class NewGeneration:
    """A generation being written; :func:`writer` publishes it when the block succeeds.

    Attributes:
        index_dir: the index directory.
        path: the folder to write into (the final folder once published).
        previous: the live generation when the writer started, or None (no index, or a
            damaged one being repaired).
    """

    def __init__(self, index_dir: Path, path: Path, previous: Path | None) -> None:
        self.index_dir = index_dir
        self.path = path
        self.previous = previous


def storage_error(exc: OSError, path: Path | str, doing: str) -> StorageError:
    """A StorageError for an OSError met while ``doing`` something at ``path``."""
    hints = {
        errno.ENOSPC: "the disk is full: free some space, or put the index elsewhere with "
                      "--index DIR",
        errno.EDQUOT: "the disk quota is used up: free some space, or use --index DIR",
        errno.EROFS: "the file system is read-only: put the index elsewhere with --index DIR",
        errno.EACCES: "permission denied: check the folder's permissions, or use --index DIR",
        errno.EPERM: "the operation is not permitted (an immutable or protected folder?): "
                     "use --index DIR",
        errno.ENAMETOOLONG: "the path is too long: use a shorter --index DIR",
    }
    hint = hints.get(exc.errno, "check the folder, or put the index elsewhere with --index DIR")
    return StorageError(
        f"Cannot {doing} at {path}: {exc.strerror or exc}; {hint}. The previous index, if "
        "any, is unchanged."
    )


def _acquire(index_dir: Path, wait: float):
    import fcntl

    lock_path = index_dir / LOCK
    for _ in range(2):
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o600)
            break
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            # A symlink planted as LOCK: remove the link itself, never touch its target.
            os.unlink(lock_path)
    else:  # pragma: no cover - a race that replants the link twice
        raise IndexFormatError(f"{lock_path} keeps being replaced by a symlink; refusing it.")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IndexFormatError(f"{lock_path} is not a regular file. Remove it and try again.")
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            if time.monotonic() >= deadline:
                os.close(fd)
                raise IndexLockedError(
                    f"Another process is writing the index at {index_dir}. Wait for it to "
                    "finish, or pass --wait SECONDS (wait=... in Python) to wait for it."
                ) from None
            time.sleep(0.1)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _prepare(index_dir: Path) -> None:
    """Create the index folder (0700: the chunk table holds the source text) and its
    .gitignore; refuse a folder that holds something else."""
    if index_dir.is_symlink() and not index_dir.exists():
        raise InputError(
            f"The index path {index_dir} is a dangling symlink. Remove it, or pass another "
            "--index directory."
        )
    if index_dir.exists() and not index_dir.is_dir():
        raise InputError(f"The index path {index_dir} exists and is not a directory.")
    if index_dir.is_dir() and any(index_dir.iterdir()) and not (
        (index_dir / CURRENT).exists() or looks_like_index(index_dir)
    ):
        raise InputError(
            f"{index_dir} exists, is not empty and is not an index; refusing to write an index "
            "into it. Pass another --index directory."
        )
    index_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    ignore = index_dir / GITIGNORE
    if not os.path.lexists(ignore):
        with contextlib.suppress(FileExistsError):
            fd = os.open(ignore, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
            with os.fdopen(fd, "w") as handle:
                handle.write("# Written by dense-retriever: the index is not source.\n*\n")


def _clean(index_dir: Path) -> None:
    """Holding the lock: remove temporary entries of writers that died, and symlinks (an
    index never holds one, so any is planted; unlinking removes the link, not its target)."""
    for entry in os.scandir(index_dir):
        try:
            if entry.is_symlink():
                os.unlink(entry.path)
            elif entry.name.startswith(TMP_PREFIX) or (
                entry.name == CURRENT and not entry.is_file(follow_symlinks=False)
            ):
                # A CURRENT that is a folder or special file can only be damage; the pointer
                # about to be written must be able to replace it.
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
        except FileNotFoundError:
            continue


def _write_pointer(index_dir: Path, name: str) -> None:
    tmp = index_dir / f"{TMP_PREFIX}{CURRENT}-{uuid.uuid4().hex}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as pointer:
            pointer.write(name + "\n")
            pointer.flush()
            os.fsync(pointer.fileno())
        os.replace(tmp, index_dir / CURRENT)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _live(index_dir: Path) -> Path | None:
    """The live generation, or None when there is none or CURRENT is damaged (a rebuild
    repairs it; the old generation folders stay until pruned)."""
    try:
        return current_generation(index_dir)
    except IndexFormatError:
        return None


@contextlib.contextmanager
def writer(index_dir: Path, *, wait: float = 0.0) -> Iterator[NewGeneration]:
    """Build a new generation of the index at ``index_dir`` and publish it atomically.

    Holds the writer lock for the whole block. The block writes into ``Generation.path``;
    when it returns, the folder is renamed into place and CURRENT is swapped to it. When it
    raises (or the process dies) the live generation is untouched and the partial folder is
    removed (now, or by the next writer). A damaged CURRENT does not stop a writer: the new
    generation replaces it.

    Args:
        index_dir: the index directory; created (mode 0700) if missing.
        wait: seconds to wait for another writer before raising IndexLockedError.

    Raises:
        StorageError: the file system refused a write (full, read-only, permissions).
    """
    index_dir = Path(index_dir)
    try:
        _prepare(index_dir)
        fd = _acquire(index_dir, wait)
    except OSError as exc:
        raise storage_error(exc, index_dir, "create the index") from exc
    try:
        try:
            _clean(index_dir)
            previous = _live(index_dir)
            # Nanoseconds first so names sort by age; the random tail keeps them unique.
            stamp = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
            tmp = index_dir / f"{TMP_PREFIX}{stamp}"
            tmp.mkdir(mode=0o700)
        except OSError as exc:
            raise storage_error(exc, index_dir, "start writing the index") from exc
        generation = NewGeneration(index_dir, tmp, previous)
        try:
            yield generation
            final = index_dir / f"{GEN_PREFIX}{stamp}"
            _fsync_dir(tmp)
            os.replace(tmp, final)
            _write_pointer(index_dir, final.name)
            _fsync_dir(index_dir)
            generation.path = final
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise storage_error(exc, tmp, "write the index") from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _prune(index_dir, keep={final.name, previous.name if previous else ""})
    finally:
        os.close(fd)


def tidy(index_dir: Path) -> None:
    """Remove what dead writers left and generations nobody needs, if no writer is busy.

    An up-to-date refresh calls this, so debris does not wait for the next real build.
    """
    index_dir = Path(index_dir)
    try:
        fd = _acquire(index_dir, 0.0)
    except (IndexLockedError, IndexFormatError, OSError):
        return
    try:
        _clean(index_dir)
        live = _live(index_dir)
        if live is not None:
            _prune(index_dir, keep={live.name})
    except OSError:
        pass  # tidying is best effort: a read-only index still answers queries
    finally:
        os.close(fd)


def _prune(index_dir: Path, *, keep: set[str]) -> None:
    """Delete generations other than ``keep``: the new live one and the one that was live a
    moment ago (readers may still hold it). Orphans of crashed writers go, whatever their age."""
    for entry in os.scandir(index_dir):
        if entry.name.startswith(GEN_PREFIX) and entry.name not in keep:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)

