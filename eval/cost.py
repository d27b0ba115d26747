"""Cost measured in the same run as quality: build time, throughput, bytes, memory, latency."""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = ["Cost", "PeakMemory", "directory_bytes", "latency_ms", "peak_memory"]


@dataclass
class Cost:
    """What a run cost.

    Attributes:
        index_seconds: wall time of the index build.
        chunks: rows in the index (None when the index does not say).
        chunks_per_second: ``chunks / index_seconds``.
        index_bytes: bytes on disk of the index directory.
        peak_rss_bytes: the highest resident set size seen while building (sampled every 20 ms;
            falls back to the process's lifetime peak from ``getrusage`` without psutil).
        latency_p50_ms: median wall time of one ``Index.search`` call.
        latency_p95_ms: 95th percentile of the same.
        queries_timed: how many search calls the latencies come from.
    """

    index_seconds: float = 0.0
    chunks: int | None = None
    chunks_per_second: float | None = None
    index_bytes: int = 0
    peak_rss_bytes: int = 0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    queries_timed: int = 0

    def to_dict(self) -> dict:
        """A JSON-ready dict of the fields."""
        return asdict(self)


def directory_bytes(path: str | Path) -> int:
    """Total size in bytes of the regular files under ``path`` (symlinks not followed)."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total


def latency_ms(seconds: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds of per-call wall times given in seconds; (0, 0) when empty."""
    if not seconds:
        return 0.0, 0.0
    p50, p95 = np.percentile(np.asarray(seconds) * 1000, [50, 95])
    return float(p50), float(p95)


def _lifetime_peak() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return int(peak if sys.platform == "darwin" else peak * 1024)


@dataclass
class PeakMemory:
    """The result of :func:`peak_memory`: ``bytes`` is filled in when the block exits."""

    bytes: int = 0


@contextmanager
def peak_memory(interval: float = 0.02) -> Iterator[PeakMemory]:
    """Sample this process's RSS while the block runs and record the highest value.

    getrusage's peak cannot be reset, so it would report an earlier, larger phase; a sampling
    thread measures just this block (it can miss a spike shorter than ``interval``).
    """
    result = PeakMemory()
    try:
        import psutil
    except ImportError:
        yield result
        result.bytes = _lifetime_peak()
        return
    process = psutil.Process()
    stop = threading.Event()
    peak = [process.memory_info().rss]

    def sample() -> None:
        while not stop.wait(interval):
            peak[0] = max(peak[0], process.memory_info().rss)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result.bytes = max(peak[0], process.memory_info().rss)


def timed() -> float:
    """A monotonic clock in seconds (perf_counter), named for readability at call sites."""
    return time.perf_counter()
