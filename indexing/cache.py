"""A vector cache shared by every index build of a user, keyed by encoder and embedded text.

A vector depends only on the encoder (its fingerprint) and the text it embedded, so a build
that looks there first embeds nothing that any earlier build on this machine embedded: another
branch, a worktree, a copy of a repository, a benchmark rerun, or the run after a Ctrl-C.

README section (for the lead to paste)
--------------------------------------

**The vector cache.** Every vector an index build computes is also kept in a per-user cache,
keyed by the encoder's fingerprint and the hash of the embedded text; later builds read it
first, so a branch, a worktree, a copy of the repository or a rerun embeds nothing twice, and a
build interrupted with Ctrl-C resumes where it stopped.

- Where: ``$XDG_CACHE_HOME/dense-retriever/vectors``, by default
  ``~/.cache/dense-retriever/vectors``.
- Move it: set ``DENSE_RETRIEVER_CACHE=/some/folder`` (or pass ``--cache-dir``).
- Turn it off: ``DENSE_RETRIEVER_CACHE=off`` (or ``0``).
- Size: capped at 2 GiB; the least recently used vectors are dropped first. Change the cap
  with ``DENSE_RETRIEVER_CACHE_SIZE=500M`` (plain bytes, or K, M, G, T suffixes).
- ``retriever cache info`` shows what it holds; ``retriever cache clear`` empties it.
- Safe to share between concurrent builds, and a damaged file in it is reported and skipped:
  every vector is checked against a checksum before it is used.

Layout and guarantees
---------------------

::

    <cache>/CACHEDIR.TAG             marks the folder as a cache for backup tools
    <cache>/<fingerprint>/seg-*.vec  immutable segments (format in indexing/cache_segment.py)
    <cache>/<fingerprint>/.tmp-*     a segment being written; renamed into place when complete

- Append-only: :meth:`VectorCache.store` writes new segments atomically (temporary file,
  fsync, rename) and never rewrites one, so concurrent builds need no lock.
- Never fatal: a folder that cannot be created or written disables the cache or skips the
  store; a damaged, truncated, foreign or symlinked file is reported in
  :attr:`VectorCache.problems` (and logged as a warning) and ignored; a segment evicted under
  a reader is a miss. A returned vector has passed its row checksum, so it is never wrong.
- Eviction deletes whole segments, least recently used first (reads touch a segment's time),
  whenever a store leaves the cache above ``max_bytes``.

Use in an index build (for the lead)
------------------------------------

::

    cache = open_cache(directory=cache_dir, enabled=use_cache)   # no-op when off or unwritable
    for batch in batches:                                        # after reusing the old generation
        cached, found = cache.lookup(fingerprint, dim, hashes)   # (n, dim) float32, (n,) bool
        vectors[rows[found]] = cached[found]
        missing = np.flatnonzero(~found)
        fresh = encoder.encode_documents([texts[i] for i in missing])
        vectors[rows[missing]] = fresh
        cache.store(fingerprint, [hashes[i] for i in missing], fresh)  # per batch: Ctrl-C keeps it
    report.warnings.extend(cache.problems)

``hashes`` are the table's ``text_hash`` values (any strings work; 32-hex-digit ones are used
as they are, others are hashed). Store right after each batch so an interrupted build keeps
what it computed. One ``VectorCache`` may be shared by threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from indexing.cache_segment import (
    KEY_BYTES,
    DamagedSegment,
    is_cache_file,
    key_array,
    pick_keys,
    read_rows,
    text_keys,
    write_segment,
)
from indexing.cache_shard import Shard, encoder_folders, evict, folder_name, scan_segments
from retriever.errors import InputError

__all__ = ["VectorCache", "open_cache", "default_cache_dir", "cache_size_limit", "ENV_DIR",
           "ENV_SIZE", "DEFAULT_MAX_BYTES"]

logger = logging.getLogger(__name__)

ENV_DIR = "DENSE_RETRIEVER_CACHE"
ENV_SIZE = "DENSE_RETRIEVER_CACHE_SIZE"
DEFAULT_MAX_BYTES = 2 * 1024**3
_OFF = {"off", "0", "false", "no", "none", "disabled"}
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
# One store of a huge batch is cut into segments of about this size, so eviction stays fine-grained.
_SEGMENT_BYTES = 32 * 1024**2
_TAG = ("Signature: 8a477f597d28d172789f06886806bc55\n"
        "# This file marks a cache folder of dense-retriever (vectors of embedded text).\n")


def default_cache_dir() -> Path | None:
    """The cache folder the environment asks for, or None if ``$DENSE_RETRIEVER_CACHE=off``.

    ``$DENSE_RETRIEVER_CACHE`` if set, else ``$XDG_CACHE_HOME/dense-retriever/vectors`` (when
    that is an absolute path, as the XDG spec requires), else
    ``~/.cache/dense-retriever/vectors``.
    """
    value = os.environ.get(ENV_DIR, "").strip()
    if value.lower() in _OFF:
        return None
    if value:
        return Path(value).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    try:
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    except RuntimeError:  # no home folder (some service accounts): no cache rather than a crash
        return None
    return base / "dense-retriever" / "vectors"


def cache_size_limit(value: str | None = None) -> int:
    """Bytes from ``"2G"``, ``"500M"``, ``"1048576"`` (default: ``$DENSE_RETRIEVER_CACHE_SIZE``).

    Raises:
        InputError: the value is not a size.
    """
    text = (os.environ.get(ENV_SIZE, "") if value is None else value).strip().lower()
    if not text:
        return DEFAULT_MAX_BYTES
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", text)
    if not match:
        source = f"${ENV_SIZE}" if value is None else "The cache size"
        raise InputError(f"{source} is {text!r}, not a size. Give bytes or a number with K, M, "
                         "G or T, e.g. 2G or 500M.")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def open_cache(
    directory: Path | str | None = None, *, enabled: bool = True, max_bytes: int | None = None
) -> VectorCache:
    """The cache an index build should use: a no-op one when it is off or cannot be created.

    Args:
        directory: the cache folder; default :func:`default_cache_dir` (which the environment
            may turn off).
        enabled: False gives the no-op cache (``--no-cache``).
        max_bytes: size cap; default ``$DENSE_RETRIEVER_CACHE_SIZE`` or 2 GiB.
    """
    if not enabled:
        return VectorCache.disabled()
    cache = VectorCache(directory, max_bytes=max_bytes)
    if cache.directory is None:
        return cache
    try:
        cache.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tag = cache.directory / "CACHEDIR.TAG"
        if not tag.exists() and not tag.is_symlink():
            tag.write_text(_TAG, encoding="utf-8")
        if not os.access(cache.directory, os.W_OK | os.X_OK):
            raise PermissionError("not writable")
    except OSError as exc:
        off = VectorCache.disabled()
        off._report(f"vector cache disabled: cannot use {cache.directory} ({exc}); set "
                    f"{ENV_DIR} to a writable folder, or to 'off'")
        return off
    return cache


class VectorCache:
    """Vectors by (encoder fingerprint, text hash), in append-only segment files.

    Creating one touches no file; :func:`open_cache` is what a build calls.

    Args:
        directory: the cache folder; default :func:`default_cache_dir` (None there, i.e.
            ``$DENSE_RETRIEVER_CACHE=off``, gives a disabled cache).
        max_bytes: the size cap eviction keeps the folder under.

    Attributes:
        problems: one line per damaged or foreign file skipped, or store that failed.
    """

    def __init__(self, directory: Path | str | None = None, *, max_bytes: int | None = None):
        self.directory = Path(directory).expanduser().absolute() if directory is not None \
            else default_cache_dir()
        self.max_bytes = cache_size_limit() if max_bytes is None else int(max_bytes)
        if self.max_bytes < 0:
            raise InputError(f"max_bytes is {max_bytes}; give a size of 0 bytes or more.")
        self.problems: list[str] = []
        self._shards: dict[str, Shard] = {}
        self._lock = threading.RLock()

    @classmethod
    def disabled(cls) -> VectorCache:
        """A cache that finds nothing and keeps nothing."""
        cache = cls(max_bytes=0)
        cache.directory = None
        return cache

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def lookup(self, fingerprint: str, dim: int, hashes: Sequence[str]) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
        """Cached vectors of ``hashes`` for the encoder ``fingerprint``.

        Returns:
            ``(vectors, found)``: ``(n, dim)`` float32, zeros where not found, and ``(n,)``
            bool. A vector of another dimension, or one failing its checksum, is not found.
        """
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise InputError(f"lookup() got dim={dim!r}; pass the encoder's dimension, a "
                             "positive integer.")
        keys = text_keys(hashes)
        count = len(keys) // KEY_BYTES
        vectors = np.zeros((count, int(dim)), dtype=np.float32)
        found = np.zeros(count, dtype=bool)
        if not self.enabled or count == 0:
            return vectors, found
        query = key_array(keys)
        with self._lock:
            shard = self._shard(fingerprint)
            shard.refresh(self._report)
            where, rows = shard.find(query, int(dim))
            segments = list(shard.segments)
        hits = np.flatnonzero(where >= 0)
        hits = hits[np.lexsort((rows[hits], where[hits]))]  # by segment, then row
        for picked in np.split(hits, np.flatnonzero(np.diff(where[hits])) + 1):
            if not len(picked):
                continue
            segment = segments[where[picked[0]]]
            try:
                got, ok = read_rows(segment, rows[picked], pick_keys(keys, picked))
            except FileNotFoundError:
                continue  # evicted by another process since the listing: a miss
            except (OSError, DamagedSegment) as exc:
                self._report(f"{segment.path}: {exc}; ignored")
                continue
            if not ok.all():
                self._report(f"{segment.path}: rows fail their checksum; those rows are "
                             "ignored")
            vectors[picked[ok]] = got[ok]
            found[picked[ok]] = True
        return vectors, found

    def store(self, fingerprint: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Keep ``vectors`` (``(n, dim)``, row i for ``hashes[i]``) in new segments.

        Hashes already cached (at this dimension) and repeats within the call are skipped.
        A store that fails (disk full, read-only folder) is reported in :attr:`problems`
        and otherwise ignored: the cache is an optimisation.

        Raises:
            InputError: ``vectors`` is not 2-D with one row per hash.
        """
        array = np.asarray(vectors)
        if array.ndim != 2 or len(array) != len(hashes) or array.shape[1] == 0:
            raise InputError(f"store() got {len(hashes)} hashes and vectors of shape "
                             f"{array.shape}; pass an (n, dim) array with one row per hash.")
        keys = text_keys(hashes)
        if not self.enabled or not len(hashes):
            return
        array = np.ascontiguousarray(array, dtype=np.float32)
        query = key_array(keys)
        _, first = np.unique(query, axis=0, return_index=True)
        with self._lock:
            shard = self._shard(fingerprint)
            shard.refresh(self._report)
            where, _ = shard.find(query, array.shape[1])
            fresh = np.sort(first[where[first] < 0])
            if not len(fresh):
                return
            try:
                shard.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                if shard.folder.is_symlink():
                    raise OSError(f"{shard.folder} is a symbolic link")
                step = max(1, _SEGMENT_BYTES // (array.shape[1] * 4 + 24))
                for start in range(0, len(fresh), step):
                    part = fresh[start:start + step]
                    shard.add(write_segment(shard.folder, fingerprint, pick_keys(keys, part),
                                            array[part]))
            except OSError as exc:
                self._report(f"could not store {len(fresh)} vectors in the cache at "
                             f"{self.directory}: {exc}")
                return
            evict(self.directory, self.max_bytes)

    def info(self) -> dict:
        """What the cache holds: folder, cap, bytes, segments, vectors, per-encoder counts."""
        result = {"directory": str(self.directory) if self.directory else None,
                  "enabled": self.enabled, "max_bytes": self.max_bytes, "bytes": 0,
                  "segments": 0, "vectors": 0, "damaged": 0, "fingerprints": {}}
        if not self.enabled:
            return result
        self._check_folder()
        with self._lock:
            for folder in encoder_folders(self.directory):
                for entry in scan_segments(folder):
                    result["bytes"] += entry.size
                    segment = entry.read()
                    if segment is None:
                        result["damaged"] += not entry.temporary
                        continue
                    result["segments"] += 1
                    result["vectors"] += segment.count
                    row = result["fingerprints"].setdefault(
                        segment.fingerprint, {"segments": 0, "vectors": 0, "bytes": 0,
                                              "dims": []})
                    row["segments"] += 1
                    row["vectors"] += segment.count
                    row["bytes"] += entry.size
                    if segment.dim not in row["dims"]:
                        row["dims"].append(segment.dim)
        return result

    def clear(self, fingerprint: str | None = None) -> int:
        """Delete the cached vectors (of one encoder, or all); returns the bytes freed.

        Only files named like the cache's own are deleted, one folder level down, so pointing
        the cache at a wrong folder by mistake cannot wipe it.
        """
        if not self.enabled:
            return 0
        self._check_folder()
        freed = 0
        with self._lock:
            folders = ([self._shard(fingerprint).folder] if fingerprint is not None
                       else encoder_folders(self.directory))
            for folder in folders:
                if folder.is_symlink() or not folder.is_dir():
                    continue
                for entry in os.scandir(folder):
                    if not is_cache_file(entry.name):
                        continue
                    with contextlib.suppress(OSError):
                        size = entry.stat(follow_symlinks=False).st_size
                        os.unlink(entry.path)
                        freed += 0 if entry.is_symlink() else size
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if nothing else is left in it
            self._shards.clear()
        return freed

    def _check_folder(self) -> None:
        if self.directory.exists() and not self.directory.is_dir():
            raise InputError(f"The vector cache folder {self.directory} is a file, not a folder. "
                             f"Point --cache-dir or ${ENV_DIR} at a folder.")

    def _shard(self, fingerprint: str) -> Shard:
        if not isinstance(fingerprint, str) or not fingerprint:
            raise InputError(f"The encoder fingerprint is {fingerprint!r}; pass a non-empty "
                             "string (Encoder.fingerprint()).")
        shard = self._shards.get(fingerprint)
        if shard is None:
            shard = self._shards[fingerprint] = Shard(
                fingerprint, self.directory / folder_name(fingerprint))
        return shard

    def _report(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)
            logger.warning("%s", problem)
