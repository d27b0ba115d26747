"""Reading a file the walk listed, as it was found: no symlink followed, no blocking on a
special file, no more than the size cap.

Files are opened below the walked root one folder at a time without following any symlink
(a folder or file swapped for a symlink after the walk fails with ELOOP or ENOTDIR instead of
leading outside), with ``O_NONBLOCK`` (a FIFO swapped in returns at once instead of waiting
for a writer while the build holds the index lock), must still be regular files, and are
read up to the size cap only.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from retriever.errors import InputError

__all__ = ["SourceFile", "read_source", "read_below", "DecodeError", "UnreadableFile",
           "os_reason", "human_size", "open_below", "file_kind"]

# O_PATH (Linux) opens a folder to walk through it even without read permission on it.
_DIR_FLAGS = (os.O_RDONLY | getattr(os, "O_PATH", 0) | getattr(os, "O_DIRECTORY", 0)
              | getattr(os, "O_CLOEXEC", 0))
# O_NONBLOCK: opening a FIFO that was swapped in after the walk returns at once instead of
# waiting for a writer (while the build holds the index lock).
_FILE_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to index.

    Attributes:
        path: relative to the walked root, with ``/`` separators, valid UTF-8 (see
            :func:`~chunking.chunk.escape_path`): the name it is stored and searched under.
        absolute: the file's absolute path with every symlink resolved, as found by the walk.
        size: bytes.
        mtime_ns: modification time in nanoseconds.
        root: the walked root; :func:`read_source` opens ``absolute`` below it without
            following symlinks. None reads ``absolute`` as a plain path.
        max_bytes: the walk's size cap, which :func:`read_source` enforces again.
    """

    path: str
    absolute: Path
    size: int
    mtime_ns: int
    root: Path | None = None
    max_bytes: int | None = None


class UnreadableFile(InputError, OSError):
    """A listed file could not be read as it was found; callers report it and skip the file.

    Also an OSError, as ``read_source`` raised before it existed, so callers that skip
    files on OSError keep working.

    Attributes:
        path: the file's stored path.
        reason: a short reason for a list of skipped files, e.g. ``"vanished after the walk"``.
    """

    def __init__(self, path: str, reason: str, fix: str) -> None:
        super().__init__(f"{path} was not read: {reason}; {fix}")
        self.path = path
        self.reason = reason


class DecodeError(UnreadableFile, UnicodeError):
    """A file is not valid UTF-8 text; callers report it and skip the file."""


def os_reason(error: OSError | RuntimeError) -> str:
    """A short reason for a failed stat or open, without the absolute path."""
    code = getattr(error, "errno", None)
    if isinstance(error, RuntimeError) or code == errno.ELOOP:  # RuntimeError: pathlib < 3.13
        return "symlink loop"
    if code == errno.ENAMETOOLONG:
        return "path too long"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return f"unreadable: {error.strerror or error}"


def _open_reason(error: OSError) -> str:
    """Why a file listed by the walk could not be opened for reading."""
    if error.errno == errno.ENOENT:
        return "vanished after the walk"
    if error.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):  # what O_NOFOLLOW gives
        return "became a symlink, or a folder on its path did, after the walk"
    if error.errno == errno.ENXIO:
        return "not a regular file (a socket)"
    return os_reason(error)


def file_kind(mode: int) -> str:
    kinds = {stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket", stat.S_IFCHR: "character device",
             stat.S_IFBLK: "block device", stat.S_IFDIR: "folder"}
    return kinds.get(stat.S_IFMT(mode), "special file")


def open_below(root: Path | None, path: Path) -> int:
    """A descriptor of ``path`` opened one folder at a time below ``root``, following no
    symlink on the way, so a folder or file swapped for a symlink fails with ELOOP or
    ENOTDIR instead of leading outside. With no root, ``path`` is opened as given."""
    if root is None or not _NOFOLLOW or os.open not in os.supports_dir_fd:
        return os.open(path, _FILE_FLAGS)
    # Plain string slicing: this runs twice per file, and pathlib's relative_to is slow.
    prefix = os.path.join(os.fspath(root), "")
    text = os.fspath(path)
    if not text.startswith(prefix):
        raise ValueError(f"{path} is not below {root}")
    parts = text[len(prefix):].split(os.sep)
    folder = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            inner = os.open(part, _DIR_FLAGS | _NOFOLLOW, dir_fd=folder)
            os.close(folder)
            folder = inner
        return os.open(parts[-1], _FILE_FLAGS | _NOFOLLOW, dir_fd=folder)
    finally:
        os.close(folder)


def read_below(root: Path | None, path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of the regular file ``path``.

    Raises:
        ValueError: a short reason (vanished, became a symlink, not a regular file...).
    """
    try:
        fd = open_below(root, path)
    except OSError as error:
        if root is None and error.errno == errno.ENOENT:
            raise ValueError("does not exist") from None
        raise ValueError(_open_reason(error)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"not a regular file (a {file_kind(mode)})")
        blocks = []
        while limit > 0:
            block = os.read(fd, min(limit, 1 << 20))
            if not block:
                break
            blocks.append(block)
            limit -= len(block)
        return b"".join(blocks)
    except OSError as error:
        raise ValueError(os_reason(error)) from None
    finally:
        os.close(fd)


def read_source(file: SourceFile | Path | str, *, max_bytes: int | None = None) -> str:
    """Read a file as UTF-8 text, without a byte-order mark.

    A :class:`SourceFile` is opened below its root without following symlinks and without
    blocking, so a file swapped for a symlink, a FIFO or a device after the walk, or grown
    past the cap, is refused rather than read. A plain path is read as given (symlinks
    followed), but never blocks on a FIFO either.

    Args:
        file: a file from :func:`walk`, or a path.
        max_bytes: refuse a larger file; default the walk's cap (no cap for a plain path).

    Raises:
        DecodeError: the bytes are not UTF-8 (the message names the file and offset).
        UnreadableFile: the file vanished, is no longer a regular file, became a symlink,
            is too large, or cannot be read; ``reason`` says which in a few words.
    """
    if isinstance(file, SourceFile):
        name, root, path = file.path, file.root, file.absolute
        cap = file.max_bytes if max_bytes is None else max_bytes
    else:
        name, root, path, cap = str(file), None, Path(file), max_bytes
    try:
        data = read_below(root, path, cap + 1 if cap is not None else 1 << 62)
    except ValueError as error:
        raise UnreadableFile(name, str(error), "index again once it is a plain file in the "
                             "tree, or add it to .retrieverignore") from None
    if cap is not None and len(data) > cap:
        raise UnreadableFile(name, f"too large (grew past the {human_size(cap)} cap)",
                             "raise the size cap or add it to .retrieverignore")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DecodeError(
            name, f"not UTF-8 text (invalid byte 0x{data[error.start]:02x} at offset "
            f"{error.start})", "convert it to UTF-8 or add it to .retrieverignore"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def human_size(size: int) -> str:
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MiB"
    if size >= 1 << 10:
        return f"{size / (1 << 10):.1f} KiB"
    return f"{size} B"
