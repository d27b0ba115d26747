"""The names of everything in an index directory, and the one safe way to open a path in it.

Layout (format version 2)::

    <index>/
      .gitignore        "*": the index never shows in ``git status``
      CURRENT           name of the live generation; replaced with os.replace
      LOCK              flock'ed by the one writer
      gen-<stamp>/      one complete generation
        manifest.json   what it holds (see indexing.manifest)
        chunks.parquet  the chunk table; row i <-> vector i of every vector set
        files.parquet   (path, size, mtime_ns, chunks): what the tree looked like
        labels.npy      stable int64 label of each row
        vectors-<encoder id>.npy   one vector set per encoder
        token-counts-<encoder id>.npy   the corpus's token counts, for an encoder whose
                                        vectors depend on them (static, corpus SIF)
        <component>/    one folder per component (dense/, binary/, lexical/, ...)
      .tmp-<stamp>/     a generation being built
      .tmp-CURRENT-<random>   a pointer being written

Every name an index file gives us (CURRENT's content, a component's folder, an encoder id) is
checked here to be one plain path segment of the expected shape, and every path is opened
without following symlinks: an index folder that arrived inside a cloned repository may hold
planted symlinks, and nothing outside the index may be read or written through them.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from retriever.errors import IndexFormatError

__all__ = [
    "CURRENT", "LOCK", "GITIGNORE", "GEN_PREFIX", "TMP_PREFIX", "MANIFEST", "CHUNKS", "FILES",
    "LABELS", "GEN_NAME", "SEGMENT", "vectors_file", "counts_file", "check_segment", "inside",
    "read_small", "read_bytes",
]

CURRENT = "CURRENT"
LOCK = "LOCK"
GITIGNORE = ".gitignore"
GEN_PREFIX = "gen-"
TMP_PREFIX = ".tmp-"
MANIFEST = "manifest.json"
CHUNKS = "chunks.parquet"
FILES = "files.parquet"
LABELS = "labels.npy"

# gen-<20-digit nanoseconds>-<8 hex>: what writers create, and all CURRENT may name.
GEN_NAME = re.compile(r"gen-[0-9]{20}-[0-9a-f]{8}")
# A component folder or encoder id: one lower-case segment, never "." or "..".
SEGMENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_REBUILD = "Rebuild it with `retriever index PATH --force`."


def vectors_file(encoder_id: str) -> str:
    """The file name of one encoder's vector set in a generation."""
    return f"vectors-{check_segment(encoder_id, 'encoder id')}.npy"


def counts_file(encoder_id: str) -> str:
    """The file name of the token counts one encoder's vectors were weighted by."""
    return f"token-counts-{check_segment(encoder_id, 'encoder id')}.npy"


def check_segment(name: object, what: str) -> str:
    """``name`` if it is one safe path segment (``SEGMENT``), else IndexFormatError."""
    if not isinstance(name, str) or not SEGMENT.fullmatch(name):
        raise IndexFormatError(
            f"The index names a {what} that is not a plain folder or file name "
            f"({_shown(name)}); it may have been tampered with. {_REBUILD}"
        )
    return name


def inside(base: Path, name: str, *, kind: str) -> Path:
    """``base / name`` when it exists as a real (not symlinked) ``kind`` ("dir" or "file").

    Raises:
        IndexFormatError: it is missing, a symlink, or of another type.
    """
    path = base / name
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise IndexFormatError(f"{path} is missing. {_REBUILD}") from None
    except OSError as exc:
        raise IndexFormatError(f"Cannot read {path}: {exc.strerror}. {_REBUILD}") from exc
    wanted = stat.S_ISDIR if kind == "dir" else stat.S_ISREG
    if stat.S_ISLNK(mode) or not wanted(mode):
        raise IndexFormatError(
            f"{path} is not a plain {'folder' if kind == 'dir' else 'file'} (a symlink or "
            f"another file type); refusing to follow it. {_REBUILD}"
        )
    return path


def read_small(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, opened without following a
    symlink and without blocking on a FIFO.

    Raises:
        IndexFormatError: missing, a symlink or special file, larger than ``limit``.
    """
    try:
        return read_bytes(path, limit)
    except FileNotFoundError:
        raise IndexFormatError(f"{path} is missing. {_REBUILD}") from None
    except OSError as exc:
        raise IndexFormatError(
            f"Cannot open {path} ({exc.strerror}; a symlink is never followed). {_REBUILD}"
        ) from exc
    except ValueError as exc:
        raise IndexFormatError(f"{path}: {exc}. {_REBUILD}") from None


def read_bytes(path: Path, limit: int) -> bytes:
    """:func:`read_small` for callers that word their own error.

    Raises:
        OSError: cannot open it (missing, a symlink: ``ELOOP``).
        ValueError: not a regular file, or larger than ``limit``.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    with os.fdopen(os.open(path, flags), "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("it is not a regular file")
        if info.st_size > limit:
            raise ValueError(
                f"it is {info.st_size} bytes, more than an index file of its kind can be "
                f"({limit})"
            )
        return handle.read(limit + 1)[:limit]


def _shown(value: object) -> str:
    """A short, printable description of an untrusted value (never its full content)."""
    if isinstance(value, str):
        safe = value[:40].encode("ascii", "backslashreplace").decode("ascii")
        return repr(safe) + ("..." if len(value) > 40 else "")
    return f"a {type(value).__name__}"
