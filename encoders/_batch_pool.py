"""Ready padded batches from worker processes, through shared memory.

The third pass (benchmarks/RESULTS.md) found that on a GPU any busy Python thread of the
encoding process (padding a window, feeding tokenising workers, unpickling their answers)
slows the forward pass, whose torch calls each give up the GIL and take it back. So here
the parent does no per-text Python work at all: it writes a call's texts once into a
shared-memory segment (one UTF-8 buffer and its offsets), and each worker
(:mod:`encoders._batch_worker`, one per core but one) tokenises an interleaved share of
them a job at a time, and writes the job's rows, padded and grouped by width bucket (ids,
lengths, the rows' positions, int32), into a shared-memory slot of its own. The parent's loop
waits on the workers' pipes, reads a small message per job, copies each bucket's rows into
the batch of that bucket it is filling (:class:`_Filling`: rows of every worker together)
and hands the slot back; a batch goes out when it is full, and the part-filled ones when the
call's last job is in. Filling batches from every worker's rows, rather than each worker its
own, gets the first batch to the GPU after one small job a worker and leaves a handful of
part-filled batches at the end of a call instead of a dozen a worker (measured on the H200:
benchmarks/RESULTS.md, "Seventh pass").

Workers are plain ``python -m`` processes, as :mod:`encoders._tokenise_pool`'s are (spawn
and forkserver import the caller's main script again; fork would copy a CUDA context).
Both segments are unlinked when the pool closes, when it is collected, at exit, and when a
call fails; a worker that dies is reported with its exit code, never waited on forever.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import weakref
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import NamedTuple

import numpy as np

from encoders._batch_worker import full_rows, shape_rows, slot_ints
from encoders._tokenise_pool import reap

__all__ = ["Batch", "BatchPool", "SharedMemoryFull", "WorkerError"]

# Texts a worker tokenises at a time (its first job a quarter of it): its share of a call is
# every workers-th run of these, so the last runs end close together; big enough that a
# job's numpy calls are few. A job's rows must fit one slot (fewer where they would not).
JOB_TEXTS = 256
SLOTS_PER_WORKER = 4
# Characters of text written to shared memory at a time: a longer call goes in parts (each
# part's end batches are part-filled, so parts are large), fewer where /dev/shm is small.
PART_CHARS = 1 << 28
_MIN_PART_CHARS = 1 << 20
# Texts joined and encoded at a time when they are written to shared memory.
_WRITE_TEXTS = 512
_SHM = Path("/dev/shm")


class WorkerError(RuntimeError):
    """A batch worker exited, or could not start."""


class SharedMemoryFull(WorkerError):
    """Shared memory (``/dev/shm``) has too little room for the slots and a part of texts."""


class Batch(NamedTuple):
    """One ready batch: ``slot`` is an int32 array in a worker slot's layout
    (:mod:`encoders._batch_worker`; valid until the next batch is asked for); ``rows`` real
    rows of ``shape_rows``, each ``width`` tokens; ``dense``: every real row is ``width``
    tokens long (no padding to mask)."""

    slot: np.ndarray
    rows: int
    shape_rows: int
    width: int
    dense: bool


class _Process:
    def __init__(self, setup: dict) -> None:
        jobs_read, jobs_write = os.pipe()
        answers_read, answers_write = os.pipe()
        package_root = str(Path(__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH")
        # One Rust thread each: the workers are the parallelism.
        env = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else ""),
               "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
               "OMP_NUM_THREADS": "1"}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "encoders._batch_worker", str(jobs_read),
                 str(answers_write)], pass_fds=(jobs_read, answers_write), env=env,
                stdin=subprocess.DEVNULL)
        finally:
            os.close(jobs_read)
            os.close(answers_write)
        self.jobs = Connection(jobs_write, readable=False)
        self.answers = Connection(answers_read, writable=False)
        self.jobs.send(setup)

    def stop(self) -> None:
        try:
            self.jobs.send(None)
        except OSError:
            pass  # gone already
        reap(self.process, timeout=5)
        self.jobs.close()
        self.answers.close()


class BatchPool:
    """``workers`` processes that tokenise and pad; :meth:`batches` yields their batches.

    Args:
        tokenizer_json: ``Tokenizer.to_str()`` of the tokenizer as used (truncation on).
        workers: processes to start (on the first call).
        words: allow the word path (same ids as the tokenizer).
        budget: padded tokens of a full batch; max_rows: its most rows.
        max_length: the token limit (the widest bucket).
        pad_id: the id that pads a row.
    """

    def __init__(self, tokenizer_json: str, *, workers: int, words: bool, budget: int,
                 max_rows: int, max_length: int, pad_id: int, nice: int = 0) -> None:
        self.workers = max(1, int(workers))
        self.tokens = max(budget, max_length)
        self.max_rows = max_rows
        self.job_texts = max(1, min(JOB_TEXTS, max_rows, self.tokens // max_length))
        self.setup = {"tokenizer": tokenizer_json, "words": words, "budget": budget,
                      "max_rows": max_rows, "max_length": max_length, "pad_id": pad_id,
                      "tokens": self.tokens, "nice": int(nice)}
        self._processes: list[_Process] = []
        self._segments: dict[str, SharedMemory | None] = {"slots": None, "texts": None}
        self._slots: np.ndarray | None = None
        self._calls = 0
        self._finalizer = weakref.finalize(self, _shut_down, self._processes, self._segments)

    def _slots_bytes(self) -> int:
        return self.workers * SLOTS_PER_WORKER * slot_ints(self.tokens, self.max_rows) * 4

    def _room(self) -> int | None:
        """Bytes /dev/shm can still take (None where it is not a folder: not Linux)."""
        return shutil.disk_usage(_SHM).free if _SHM.is_dir() else None

    def _create(self, size: int) -> SharedMemory:
        # Writing past what a tmpfs can hold kills the process (SIGBUS): ask first.
        room = self._room()
        if room is not None and size > room:
            raise SharedMemoryFull(
                f"{_SHM} has {room / 2**20:.0f} MiB free and the batch workers need "
                f"{size / 2**20:.0f} MiB more; enlarge it (docker: --shm-size=1g) or encode "
                "with batch_workers=0.")
        return SharedMemory(create=True, size=size)

    def part_chars(self) -> int:
        """Characters of texts per part, within the room /dev/shm has."""
        room = self._room()
        if room is None:
            return PART_CHARS
        if not self._processes:
            room -= self._slots_bytes()
        texts = self._segments["texts"]
        room += texts.size if texts is not None else 0  # replaced when too small
        chars = min(PART_CHARS, room // 2)
        if chars < _MIN_PART_CHARS:
            raise SharedMemoryFull(
                f"{_SHM} has too little room for the batch workers ({max(room, 0) / 2**20:.0f}"
                " MiB after their slots); enlarge it (docker: --shm-size=1g) or encode with "
                "batch_workers=0.")
        return chars

    def _start(self) -> None:
        count = self.workers * SLOTS_PER_WORKER
        size = slot_ints(self.tokens, self.max_rows)
        memory = self._create(count * size * 4)
        self._segments["slots"] = memory
        self._slots = np.ndarray((count, size), np.int32, memory.buf)
        for index in range(self.workers):
            own = list(range(index * SLOTS_PER_WORKER, (index + 1) * SLOTS_PER_WORKER))
            self._processes.append(_Process({**self.setup, "slots": memory.name,
                                             "slot_count": count, "own_slots": own}))
        for process in self._processes:
            self._answer(process, "ready")

    def _answer(self, process: _Process, expected: str | None = None) -> tuple:
        try:
            message = process.answers.recv()
        except (EOFError, OSError):
            code = process.process.wait()
            raise WorkerError(f"A batch worker (pid {process.process.pid}) exited with code "
                              f"{code}; encode with batch_workers=0 to run the same "
                              "tokenising in this process and see its error.") from None
        if message[0] == "error":
            raise message[2]
        if expected is not None and message[0] != expected:
            raise WorkerError(f"A batch worker answered {message[0]!r}, not {expected!r}.")
        return message

    def _write_texts(self, texts: Sequence[str]) -> tuple[str, int]:
        # A text's bytes are its characters unless it is not ASCII (str.isascii reads a
        # flag), so only those are encoded alone to size them.
        sizes = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"sequence item {i}: expected str instance, "
                                f"{type(text).__name__} found")
            if not text.isascii():
                sizes[i] = len(text.encode("utf-8", "surrogatepass"))
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        need = offsets.nbytes + int(offsets[-1])
        memory = self._segments["texts"]
        if memory is None or memory.size < need:
            if memory is not None:
                _release(memory)
                self._segments["texts"] = None
            # Some headroom, so calls of slowly growing size do not each make a new one.
            room = self._room()
            size = max(need + need // 4, 4096)
            memory = self._segments["texts"] = self._create(
                size if room is None else max(min(size, room), need))
        memory.buf[: offsets.nbytes] = offsets.tobytes()
        # Joined and encoded a run of texts at a time, not the whole call at once: one text
        # with a character past U+FFFF makes a joined string four bytes a character, and
        # the whole call's join and encode took 0.6 s of 100,000 chunks on the H200 before
        # any worker started (benchmarks/RESULTS.md, "Seventh pass").
        ends = offsets.tolist()
        base = offsets.nbytes
        for first in range(0, len(texts), _WRITE_TEXTS):
            last = min(len(texts), first + _WRITE_TEXTS)
            memory.buf[base + ends[first] : base + ends[last]] = "".join(
                texts[first:last]).encode("utf-8", "surrogatepass")
        return memory.name, len(texts)

    def batches(self, texts: Sequence[str], *, step: int, shapes: bool) -> Iterator[Batch]:
        """Every text of ``texts`` in exactly one batch (its position in the slot's rows
        part); ``step``: the width buckets' step; ``shapes``: pad to graph shapes. Raises
        :class:`SharedMemoryFull` before the first batch where /dev/shm is too small."""
        if not texts:
            return
        ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
        limit = self.part_chars()
        start = 0
        while start < len(texts):
            # At least one text per part; a part ends where its characters pass the limit.
            base = int(ends[start - 1]) if start else 0
            stop = max(start + 1, int(np.searchsorted(ends, base + limit, side="right")))
            yield from self._call(texts, start, min(stop, len(texts)), step, shapes)
            start = stop

    def _call(self, texts: Sequence[str], start: int, stop: int, step: int, shapes: bool
              ) -> Iterator[Batch]:
        name, count = self._write_texts(texts[start:stop])
        finished = False
        try:
            if not self._processes:
                self._start()
            self._calls += 1
            call = self._calls
            for index, process in enumerate(self._processes):
                _send(process, ("call", call, {
                    "call": call, "texts": name, "count": count, "job_texts": self.job_texts,
                    "index": index, "stride": len(self._processes), "step": step,
                    "base": start}))
            filling = _Filling(self.tokens, self.max_rows, self.setup["budget"],
                               self.setup["max_length"], self.setup["pad_id"], shapes)
            owners = {process.answers: process for process in self._processes}
            running = set(owners)
            while running:
                for connection in wait(list(running)):
                    process = owners[connection]
                    message = self._answer(process)
                    if message[0] == "done":
                        running.discard(connection)
                        continue
                    _, _, slot, buckets = message
                    yield from filling.add(self._slots[slot], buckets)
                    _send(process, ("free", slot))
            yield from filling.rest()
            finished = True
        finally:
            if not finished:
                # A failed or abandoned call leaves workers mid-way: start afresh next time.
                self.close()

    def close(self) -> None:
        """Stop the workers and unlink the shared memory (also done when collected)."""
        self._slots = None
        self._finalizer()
        self._finalizer = weakref.finalize(self, _shut_down, self._processes, self._segments)


class _Filling:
    """The batches being filled, one per width bucket (-1: rows at the limit), from the
    workers' parts; each in an array of a slot's layout, reused once it has been handed on."""

    def __init__(self, tokens: int, max_rows: int, budget: int, max_length: int, pad_id: int,
                 shapes: bool) -> None:
        self.tokens, self.max_rows, self.budget = tokens, max_rows, budget
        self.max_length, self.pad_id, self.shapes = max_length, pad_id, shapes
        self.arrays: dict[int, np.ndarray] = {}
        self.held: dict[int, int] = {}

    def add(self, part: np.ndarray, buckets: tuple) -> Iterator[Batch]:
        """Copy a part's rows (``buckets``: ``(bucket, rows)`` in the slot's order) into the
        batches; yield each batch that fills."""
        tokens, max_rows = self.tokens, self.max_rows
        rows_at = ids_at = 0
        for key, rows in buckets:
            width = self.max_length if key == -1 else key
            full = full_rows(width, self.budget, max_rows)
            taken = 0
            while taken < rows:
                array = self.arrays.get(key)
                if array is None:
                    array = self.arrays[key] = np.empty(slot_ints(tokens, max_rows), np.int32)
                held = self.held.get(key, 0)
                count = min(rows - taken, full - held)
                source = ids_at + taken * width
                array[held * width : (held + count) * width] = \
                    part[source : source + count * width]
                source = rows_at + taken
                array[tokens + held : tokens + held + count] = \
                    part[tokens + source : tokens + source + count]
                array[tokens + max_rows + held : tokens + max_rows + held + count] = \
                    part[tokens + max_rows + source : tokens + max_rows + source + count]
                taken += count
                self.held[key] = held + count
                if held + count == full:
                    self.held[key] = 0
                    yield Batch(array, full, full, width, key == -1)
            rows_at += rows
            ids_at += rows * width

    def rest(self) -> Iterator[Batch]:
        """The part-filled batches (with graph shapes: rounded up to a shape's rows, the
        extra rows one pad token long)."""
        for key, held in sorted(self.held.items()):
            if not held:
                continue
            width = self.max_length if key == -1 else key
            rows = shape_rows(held, full_rows(width, self.budget, self.max_rows)) \
                if self.shapes else held
            array = self.arrays[key]
            array[held * width : rows * width] = self.pad_id
            array[self.tokens + held : self.tokens + rows] = 1
            self.held[key] = 0
            yield Batch(array, held, rows, width, key == -1)


def _send(process: _Process, message) -> None:
    try:
        process.jobs.send(message)
    except OSError:
        code = process.process.wait()
        raise WorkerError(f"A batch worker (pid {process.process.pid}) exited with code "
                          f"{code}; encode with batch_workers=0 to run the same tokenising "
                          "in this process and see its error.") from None


def _release(memory: SharedMemory) -> None:
    try:
        memory.unlink()
    except FileNotFoundError:
        pass
    try:
        memory.close()
    except BufferError:
        pass  # a view is still alive somewhere; the mapping goes with it


def _shut_down(processes: list[_Process], segments: dict) -> None:
    for process in processes:
        process.stop()
    processes.clear()
    for key, memory in segments.items():
        if memory is not None:
            _release(memory)
        segments[key] = None
