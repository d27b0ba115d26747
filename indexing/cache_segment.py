"""One segment file of the vector cache: an immutable run of (key, vector) rows.

A segment is written once, to a uniquely named temporary file in its folder, fsynced and then
renamed into place, so a reader sees either all of it or nothing. It is never rewritten: new
vectors go to new segments, and eviction deletes whole segments.

Layout (little-endian)::

    header  magic b"DRVCACHE" | version u16 | reserved u16 | dim u32 | count u32 |
            fingerprint length u16 | fingerprint (UTF-8) | blake2b-16 of the header so far
    keys    count x 16-byte keys | blake2b-16 of the keys
    rows    count x (dim float32 | blake2b-8 of key + vector bytes)

Every row carries its own checksum, computed over its key and its vector, so a flipped byte
in a vector, a checksum, or a key turns that row into a miss, never into a wrong vector.
No pickles: the reader parses the header by hand and checks sizes before reading anything.

This module is private to :mod:`indexing.cache`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retriever.errors import InputError

__all__ = ["DamagedSegment", "Segment", "KEY_BYTES", "TEMP_PREFIX", "text_keys", "pick_keys",
           "key_array",
           "is_segment_name", "is_cache_file", "read_segment", "read_rows", "write_segment"]

MAGIC = b"DRVCACHE"
VERSION = 1
SEGMENT_SUFFIX = ".vec"
SEGMENT_PREFIX = "seg-"
TEMP_PREFIX = ".tmp-"
KEY_BYTES = 16
_ROW_SUM = 8
_FIXED = struct.Struct("<8sHHIIH")
_DIGEST = 16
# The largest header a reader accepts: the fixed part, a fingerprint of up to 1 KiB, a digest.
_MAX_FINGERPRINT = 1024
# O_NOFOLLOW: a symlink planted in the cache folder is refused, never followed.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_WRITE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                | getattr(os, "O_CLOEXEC", 0))


class DamagedSegment(Exception):
    """A segment file that is truncated, of an unknown format, or fails its checksums.

    Never leaves :mod:`indexing.cache`: the cache reports the file and ignores it.
    """


@dataclass(frozen=True, slots=True)
class Segment:
    """What a segment's header and key block say; ``keys`` is :func:`key_array` of its keys."""

    path: Path
    fingerprint: str
    dim: int
    count: int
    keys: np.ndarray
    rows_offset: int
    size: int

    @property
    def row_bytes(self) -> int:
        return self.dim * 4 + _ROW_SUM


def pick_keys(keys: bytes, rows: np.ndarray) -> bytes:
    """The keys at ``rows`` of a run of 16-byte keys, joined."""
    return b"".join(keys[KEY_BYTES * i:KEY_BYTES * (i + 1)] for i in rows.tolist())


def text_keys(hashes: Sequence[str]) -> bytes:
    """16 bytes per hash: a 32-hex-digit hash as it is, any other string through blake2b."""
    if all(isinstance(value, str) and len(value) == 32 for value in hashes):
        with contextlib.suppress(ValueError):  # the usual case: text_hash() values, one call
            keys = bytes.fromhex("".join(hashes))
            if len(keys) == KEY_BYTES * len(hashes):  # fromhex skips spaces: count the bytes
                return keys
    parts = []
    for value in hashes:
        if not isinstance(value, str):
            raise InputError(f"Text hashes must be strings; got {type(value).__name__}.")
        key = None
        if len(value) == 32:
            with contextlib.suppress(ValueError):
                key = bytes.fromhex(value)
        if key is None or len(key) != KEY_BYTES:
            key = hashlib.blake2b(value.encode("utf-8", "surrogatepass"),
                                  digest_size=KEY_BYTES).digest()
        parts.append(key)
    return b"".join(parts)


def key_array(keys: bytes) -> np.ndarray:
    """16-byte keys as ``(n, 2)`` native uint64 (high, low), for sorting and searching."""
    return np.frombuffer(keys, dtype=">u8").reshape(-1, 2).astype(np.uint64)


def is_segment_name(name: str) -> bool:
    return name.startswith(SEGMENT_PREFIX) and name.endswith(SEGMENT_SUFFIX)


def is_cache_file(name: str) -> bool:
    """A name the cache writes: a segment or a temporary file (nothing else is ever deleted)."""
    return is_segment_name(name) or (name.startswith(TEMP_PREFIX) and name.endswith(".part"))


def open_nofollow(path: Path) -> int:
    """A read-only descriptor of ``path``; raises OSError (ELOOP) if it is a symlink."""
    return os.open(path, _READ_FLAGS)


def _row_dtype(dim: int) -> np.dtype:
    return np.dtype([("vector", "<f4", (dim,)), ("sum", "<u8")])


def _row_sums(keys: bytes, vectors: np.ndarray) -> np.ndarray:
    """blake2b-8 of each row's key and vector bytes, as ``(n,)`` uint64."""
    digests = b"".join(
        hashlib.blake2b(keys[i * KEY_BYTES:(i + 1) * KEY_BYTES] + vectors[i].tobytes(),
                        digest_size=_ROW_SUM).digest()
        for i in range(len(vectors))
    )
    return np.frombuffer(digests, dtype="<u8")


def _header(fingerprint: str, dim: int, count: int) -> bytes:
    name = fingerprint.encode("utf-8")
    head = _FIXED.pack(MAGIC, VERSION, 0, dim, count, len(name)) + name
    return head + hashlib.blake2b(head, digest_size=_DIGEST).digest()


def write_segment(folder: Path, fingerprint: str, keys: bytes, vectors: np.ndarray) -> Segment:
    """Write ``vectors`` (``(n, dim)`` float32) under ``keys`` (n x 16 bytes) as a new segment.

    The file appears under its final name only once complete and fsynced.
    """
    count, dim = vectors.shape
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    rows = np.empty(count, dtype=_row_dtype(dim))
    rows["vector"] = vectors
    rows["sum"] = _row_sums(keys, vectors)
    head = _header(fingerprint, dim, count)
    body = [head, keys, hashlib.blake2b(keys, digest_size=_DIGEST).digest(), rows.tobytes()]
    token = secrets.token_hex(6)
    temp = folder / f"{TEMP_PREFIX}{token}.part"
    final = folder / f"{SEGMENT_PREFIX}{time.time_ns():016x}-{os.getpid()}-{token}{SEGMENT_SUFFIX}"
    fd = os.open(temp, _WRITE_FLAGS, 0o600)
    try:
        try:
            for part in body:
                view = memoryview(part)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
            _touch(fd)
        finally:
            os.close(fd)
        os.rename(temp, final)
    except BaseException:
        # Ctrl-C or a full disk half-way: leave no temporary file behind.
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(folder)
    size = sum(len(part) for part in body)
    rows_offset = size - count * (dim * 4 + _ROW_SUM)
    return Segment(final, fingerprint, dim, count, key_array(keys), rows_offset, size)


def read_segment(path: Path) -> Segment:
    """Parse and check a segment's header and key block (the vectors are checked on read).

    Raises:
        DamagedSegment: bad magic or version, a header or key checksum mismatch, or a file
            whose size is not the one its header announces (truncated or padded).
        OSError: the file cannot be opened (FileNotFoundError if it was just evicted,
            ELOOP if it is a symlink).
    """
    fd = open_nofollow(path)
    try:
        size = os.fstat(fd).st_size
        fixed = os.pread(fd, _FIXED.size, 0)
        if len(fixed) < _FIXED.size:
            raise DamagedSegment(f"truncated header ({size} bytes)")
        magic, version, _, dim, count, name_len = _FIXED.unpack(fixed)
        if magic != MAGIC:
            raise DamagedSegment("not a vector cache segment (bad magic)")
        if version != VERSION:
            raise DamagedSegment(f"segment format version {version}, this reader knows "
                                 f"{VERSION}")
        if name_len > _MAX_FINGERPRINT or dim == 0:
            raise DamagedSegment("damaged header")
        head_len = _FIXED.size + name_len
        rest = os.pread(fd, name_len + _DIGEST, _FIXED.size)
        head = fixed + rest[:name_len]
        if hashlib.blake2b(head, digest_size=_DIGEST).digest() != rest[name_len:]:
            raise DamagedSegment("header checksum mismatch")
        keys_offset = head_len + _DIGEST
        rows_offset = keys_offset + count * KEY_BYTES + _DIGEST
        expected = rows_offset + count * (dim * 4 + _ROW_SUM)
        if size != expected:
            raise DamagedSegment(f"{size} bytes where the header announces {expected} "
                                 "(truncated or damaged)")
        keys = os.pread(fd, count * KEY_BYTES + _DIGEST, keys_offset)
        if hashlib.blake2b(keys[:-_DIGEST], digest_size=_DIGEST).digest() != keys[-_DIGEST:]:
            raise DamagedSegment("key block checksum mismatch")
        fingerprint = head[_FIXED.size:].decode("utf-8", "replace")
    finally:
        os.close(fd)
    return Segment(path, fingerprint, dim, count, key_array(keys[:-_DIGEST]), rows_offset, size)


def read_rows(segment: Segment, rows: np.ndarray, keys: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Read ``rows`` (sorted int64) of ``segment`` and verify each against its key.

    Args:
        keys: ``len(rows) * 16`` bytes, the key each requested row must carry.

    Returns:
        ``(vectors, ok)``: ``(len(rows), dim)`` float32 and a bool mask of the rows whose
        checksum matched; rows that failed are zeros.

    Raises:
        OSError: the segment vanished (evicted by another process) or is a symlink.
        DamagedSegment: the file is shorter than its header said (damaged after it was read).
    """
    width = segment.row_bytes
    dtype = _row_dtype(segment.dim)
    data = np.zeros(len(rows), dtype=dtype)
    # Consecutive rows are read with one pread: a batch stored together is read back together.
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    fd = open_nofollow(segment.path)
    try:
        start = 0
        for stop in [*breaks.tolist(), len(rows)]:
            first, length = int(rows[start]), stop - start
            raw = os.pread(fd, length * width, segment.rows_offset + first * width)
            if len(raw) != length * width:
                raise DamagedSegment("truncated after it was opened")
            data[start:stop] = np.frombuffer(raw, dtype=dtype)
            start = stop
        _touch(fd)  # least-recently-used eviction orders segments by this time
    finally:
        os.close(fd)
    vectors = np.ascontiguousarray(data["vector"], dtype=np.float32)
    ok = _row_sums(keys, vectors) == data["sum"]
    vectors[~ok] = 0.0
    return vectors, ok


def _touch(fd: int) -> None:
    """Set the file's times from the process clock: finer than the kernel's coarse clock, so
    least-recently-used order is exact for segments used a millisecond apart."""
    if os.utime in os.supports_fd:
        now = time.time_ns()
        with contextlib.suppress(OSError):
            os.utime(fd, ns=(now, now))


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; some file systems refuse to open a folder, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
