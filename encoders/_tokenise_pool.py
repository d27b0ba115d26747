"""Tokenising in worker processes: ``python -m encoders._tokenise_pool``, one per core.

On a GPU the forward pass of a small encoder outruns one core's tokenising several times
over, and the word path of :class:`encoders._tokenise.Tokenise` is Python (it holds the
GIL), so the fast path hands slices of a window to worker processes and gets flat id arrays
back (:class:`~encoders._tokenise.Tokens`), in order. Workers are plain ``python -m``
processes rather than a ``multiprocessing`` pool (as :mod:`chunking.pool`'s are): spawn and
forkserver import the caller's main script again in each worker, which breaks a script
without an ``if __name__ == "__main__"`` guard, and fork would copy a process that holds a
CUDA context and the tokenizer's threads.

Messages are length-prefixed pickles between two processes of this same code (nothing is
stored): first the tokenizer's JSON and the word-path switch, then lists of texts, each
answered by ``("ok", Tokens)`` or ``("error", exception)``; ``None`` ends a worker.
"""

from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from encoders._tokenise import Tokens

__all__ = ["TokenisePool", "cpu_count", "reap"]

_HEADER = struct.Struct("<Q")
# Texts per job: large enough that a round trip (pickling, two pipe copies) is small against
# the work (about 0.1 s of a core), small enough that a window's jobs spread over the workers.
JOB_TEXTS = 1024


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _read(stream: BinaryIO):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def _write(stream: BinaryIO, value) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


class _Worker:
    """One worker process and its two pipes; used by one thread at a time."""

    def __init__(self, setup: tuple[str, bool]) -> None:
        package_root = str(Path(__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH")
        # One Rust thread each: the workers are the parallelism.
        env = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else ""),
               "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        self.process = subprocess.Popen([sys.executable, "-m", "encoders._tokenise_pool"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        _write(self.process.stdin, setup)

    def run(self, texts: list[str]) -> Tokens:
        _write(self.process.stdin, texts)
        answer = _read(self.process.stdout)
        if answer is None:
            code = self.process.wait()
            raise RuntimeError(f"A tokenising worker exited (code {code}) on a job of "
                               f"{len(texts)} texts; encode with tokenise_workers=0 to see "
                               "the error in this process.")
        status, value = answer
        if status == "error":
            raise value
        return value

    def close(self) -> None:
        try:
            _write(self.process.stdin, None)
            self.process.stdin.close()
        except (OSError, ValueError):
            pass  # gone already
        reap(self.process, timeout=10)
        self.process.stdout.close()


def reap(process: subprocess.Popen, *, timeout: float) -> None:
    """Wait up to ``timeout`` seconds for a worker told to stop, then kill it."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class _Window:
    """The pending jobs of one window; ``result()`` joins them in order."""

    def __init__(self, jobs: list[Future]) -> None:
        self.jobs = jobs

    def result(self) -> Tokens:
        return Tokens.concatenate([job.result() for job in self.jobs])


class TokenisePool:
    """``workers`` tokenising processes behind one thread each.

    Args:
        tokenizer_json: ``Tokenizer.to_str()`` of the tokenizer as used (truncation set).
        workers: processes to start (lazily, on the first job).
        words: allow the word path in the workers.
    """

    def __init__(self, tokenizer_json: str, *, workers: int, words: bool = True) -> None:
        self.setup = (tokenizer_json, words)
        self.workers = workers
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._threads: ThreadPoolExecutor | None = None
        # The processes end with this object (or at exit), not when the caller remembers.
        self._finalizer = weakref.finalize(self, _close, self._all)

    def submit(self, texts: Sequence[str]) -> _Window:
        """Start tokenising ``texts``; the returned object's ``result()`` gives their
        :class:`Tokens` in order."""
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(self.workers,
                                                   thread_name_prefix="fast-encode-pool")
                # All workers start at once, in parallel (each takes a few tenths of a
                # second to import and read the tokenizer), before the first job.
                for _ in range(self.workers):
                    self._threads.submit(self._start_one)
        texts = list(texts)
        return _Window([self._threads.submit(self._job, texts[i : i + JOB_TEXTS])
                        for i in range(0, len(texts), JOB_TEXTS)])

    def _start_one(self) -> None:
        worker = _Worker(self.setup)
        with self._lock:
            self._all.append(worker)
        self._idle.put(worker)

    def _job(self, texts: list[str]) -> Tokens:
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                worker = _Worker(self.setup)
                self._all.append(worker)
        try:
            result = worker.run(texts)
        except BaseException:
            # A worker that failed may be half way through a message: never reuse it.
            with self._lock:
                self._all.remove(worker)
            worker.close()
            raise
        self._idle.put(worker)
        return result

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True)
        self._finalizer()


def _close(workers: list[_Worker]) -> None:
    for worker in list(workers):
        worker.close()
    workers.clear()


def main() -> None:
    from tokenizers import Tokenizer

    from encoders._tokenise import Tokenise

    jobs, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed may corrupt the answers
    setup = _read(jobs)
    if setup is None:
        return
    tokenizer_json, words = setup
    tokenise = Tokenise(Tokenizer.from_str(tokenizer_json), words=words)
    while (texts := _read(jobs)) is not None:
        try:
            answer = ("ok", tokenise(texts))
        except Exception as error:  # noqa: BLE001 - handed to the parent, which raises it
            try:
                pickle.dumps(error)
            except Exception:  # noqa: BLE001 - an exception that cannot travel
                error = RuntimeError(repr(error))
            answer = ("error", error)
        try:
            _write(answers, answer)
        except BrokenPipeError:
            os._exit(0)  # the parent is gone; a traceback per worker would bury its message


if __name__ == "__main__":
    main()
