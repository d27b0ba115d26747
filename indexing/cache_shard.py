"""The vector cache's view of its folders: one encoder's segments, indexed in memory.

A :class:`Shard` holds the keys of every segment of one encoder fingerprint in sorted arrays,
so looking up 100k hashes is a few vectorised ``searchsorted`` calls. It is built lazily from
the segment headers and refreshed from a directory listing before each lookup: segments that
other processes wrote since are read and merged in (the arrays are already sorted, so the
stable sort is a linear merge), segments that were evicted are dropped.

This module is private to :mod:`indexing.cache`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexing.cache_segment import (
    TEMP_PREFIX,
    DamagedSegment,
    Segment,
    is_cache_file,
    is_segment_name,
    read_segment,
)

__all__ = ["Shard", "FileEntry", "folder_name", "encoder_folders", "scan_segments", "evict"]

# A temporary file this old belongs to a writer that died; eviction may delete it.
_STALE_TEMP_NS = 3600 * 10**9


def folder_name(fingerprint: str) -> str:
    """A safe folder name for ``fingerprint``: itself when it is plain, else a sanitised prefix
    and a digest (segment headers carry the full fingerprint, so a collision is harmless)."""
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", fingerprint):
        return fingerprint
    digest = hashlib.blake2b(fingerprint.encode("utf-8", "surrogatepass"), digest_size=8)
    return f"{re.sub(r'[^A-Za-z0-9_-]+', '_', fingerprint)[:40]}-{digest.hexdigest()}"


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A regular file the cache wrote: a segment or a temporary file being written."""

    path: Path
    name: str
    size: int
    mtime_ns: int

    @property
    def temporary(self) -> bool:
        return self.name.startswith(TEMP_PREFIX)

    @property
    def stale(self) -> bool:
        return self.temporary and time.time_ns() - self.mtime_ns > _STALE_TEMP_NS

    def read(self) -> Segment | None:
        """The segment's header and keys, or None if it is damaged, temporary or gone."""
        if self.temporary:
            return None
        try:
            return read_segment(self.path)
        except (OSError, DamagedSegment):
            return None


def encoder_folders(directory: Path) -> list[Path]:
    """The cache's encoder folders: real folders (no symlinks) with a name the cache gives."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    return [Path(e.path) for e in entries
            if e.is_dir(follow_symlinks=False) and re.fullmatch(r"[A-Za-z0-9_-]+", e.name)]


def evict(directory: Path, max_bytes: int) -> None:
    """Delete least-recently-used segments until the cache at ``directory`` fits ``max_bytes``.

    Two processes may evict at once: a file already gone is skipped, and at worst both delete
    a little more than needed. A temporary file is left alone unless its writer died long ago.
    """
    entries = [entry for folder in encoder_folders(directory) for entry in scan_segments(folder)]
    total = sum(entry.size for entry in entries)
    for entry in sorted(entries, key=lambda e: (e.mtime_ns, e.name)):
        if total <= max_bytes:
            break
        if entry.temporary and not entry.stale:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)
        total -= entry.size


def scan_segments(folder: Path) -> list[FileEntry]:
    """The cache's own regular files in ``folder`` (symlinks and foreign files left out)."""
    entries = []
    try:
        listing = list(os.scandir(folder))
    except OSError:
        return []
    for entry in listing:
        if not is_cache_file(entry.name):
            continue
        try:
            stat = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # deleted since the listing
        if entry.is_file(follow_symlinks=False):
            entries.append(FileEntry(Path(entry.path), entry.name, stat.st_size,
                                     stat.st_mtime_ns))
    return entries


class Shard:
    """The segments of one encoder fingerprint and a sorted index of their keys."""

    def __init__(self, fingerprint: str, folder: Path) -> None:
        self.fingerprint = fingerprint
        self.folder = folder
        self.segments: list[Segment | None] = []  # by segment id; None once evicted
        self._ids: dict[str, int] = {}            # live segment file name -> id
        self._skipped: set[str] = set()           # damaged or foreign names, reported once
        self._dims = np.zeros(0, dtype=np.int64)
        self._hi = np.zeros(0, dtype=np.uint64)   # sorted
        self._lo = np.zeros(0, dtype=np.uint64)
        self._seg = np.zeros(0, dtype=np.int64)
        self._row = np.zeros(0, dtype=np.int64)

    def refresh(self, report: Callable[[str], None]) -> None:
        """Merge segments written since the last refresh and drop those that vanished."""
        if self.folder.is_symlink():
            if self.folder.name not in self._skipped:
                self._skipped.add(self.folder.name)
                report(f"{self.folder}: a symbolic link in the cache folder; ignored")
            listing = []
        else:
            try:
                listing = list(os.scandir(self.folder))
            except FileNotFoundError:
                listing = []
            except OSError as exc:
                report(f"{self.folder}: cannot list it ({exc}); the cache is skipped")
                listing = []
        listed, new = set(), []
        for entry in listing:
            name = entry.name
            if name.startswith(TEMP_PREFIX):
                continue  # being written by someone; it appears under its final name when done
            listed.add(name)
            if name in self._ids or name in self._skipped:
                continue
            segment = self._read(entry, report)
            if segment is not None:
                new.append(segment)
        gone = [name for name in self._ids if name not in listed]
        if gone:
            self._drop(gone)
        if new:
            self._merge(new)

    def add(self, segment: Segment) -> None:
        """Index a segment this process just wrote (no need to read it back)."""
        self._merge([segment])

    def find(self, query: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """Segment id and row of each ``(n, 2)`` uint64 key of dimension ``dim``; -1 if none."""
        where = np.full(len(query), -1, dtype=np.int64)
        rows = np.zeros(len(query), dtype=np.int64)
        if not len(self._hi) or not len(query):
            return where, rows
        left = np.searchsorted(self._hi, query[:, 0], side="left")
        right = np.searchsorted(self._hi, query[:, 0], side="right")
        unique = right - left == 1
        at = np.minimum(left, len(self._hi) - 1)
        hit = unique & (self._lo[at] == query[:, 1]) & (self._dims[self._seg[at]] == dim)
        where[hit], rows[hit] = self._seg[at[hit]], self._row[at[hit]]
        # Several entries share the high word: the same text cached twice (by two concurrent
        # builds, or at two dimensions) or, very rarely, two hashes alike in 64 bits.
        for i in np.flatnonzero(right - left > 1).tolist():
            span = np.arange(left[i], right[i])
            ok = span[(self._lo[span] == query[i, 1]) & (self._dims[self._seg[span]] == dim)]
            if len(ok):
                where[i], rows[i] = self._seg[ok[0]], self._row[ok[0]]
        return where, rows

    def _read(self, entry: os.DirEntry, report: Callable[[str], None]) -> Segment | None:
        name, path = entry.name, Path(entry.path)
        problem = None
        if entry.is_symlink():
            problem = "a symbolic link in the cache folder"
        elif not is_segment_name(name) or not entry.is_file(follow_symlinks=False):
            problem = "not a cache segment"
        else:
            try:
                segment = read_segment(path)
            except FileNotFoundError:
                return None  # evicted since the listing
            except (OSError, DamagedSegment) as exc:
                problem = str(exc)
            else:
                if segment.fingerprint == self.fingerprint:
                    return segment
                problem = f"holds vectors of encoder {segment.fingerprint!r}, not of this folder"
        self._skipped.add(name)
        report(f"{path}: {problem}; ignored")
        return None

    def _merge(self, segments: list[Segment]) -> None:
        ids = np.arange(len(self.segments), len(self.segments) + len(segments))
        self.segments.extend(segments)
        for segment, seg_id in zip(segments, ids.tolist(), strict=True):
            self._ids[segment.path.name] = seg_id
        self._dims = np.concatenate([self._dims, [s.dim for s in segments]]).astype(np.int64)
        keys = np.concatenate([s.keys for s in segments])
        hi = np.concatenate([self._hi, keys[:, 0]])
        order = np.argsort(hi, kind="stable")
        self._hi = hi[order]
        self._lo = np.concatenate([self._lo, keys[:, 1]])[order]
        self._seg = np.concatenate(
            [self._seg, np.repeat(ids, [s.count for s in segments])])[order]
        self._row = np.concatenate(
            [self._row, np.concatenate([np.arange(s.count) for s in segments])])[order]

    def _drop(self, names: list[str]) -> None:
        dead = np.array([self._ids.pop(name) for name in names], dtype=np.int64)
        for seg_id in dead.tolist():
            self.segments[seg_id] = None
        keep = ~np.isin(self._seg, dead)
        self._hi, self._lo = self._hi[keep], self._lo[keep]
        self._seg, self._row = self._seg[keep], self._row[keep]
