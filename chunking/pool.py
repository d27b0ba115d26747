"""Reading and chunking the files of a tree, in this process or in a pool of processes.

Chunking is pure Python over tree-sitter trees, so one process uses one core. For a large
tree, :func:`chunk_files` hands batches of files to worker processes and yields the results
in the order of the files, so the chunk table is the same, row for row, as a serial build's.
Each worker holds one batch at a time, which bounds the memory the parent holds. Small trees
stay in this process: starting workers costs more than it saves there (see
:func:`auto_workers`).
"""

from __future__ import annotations

import os
import pickle
import select
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from chunking._worker import read_message, write_message
from chunking.chunk import Chunk, Chunker
from chunking.reading import SourceFile, read_source
from retriever.errors import InputError, RetrieverError

__all__ = ["FileChunks", "auto_workers", "check_workers", "chunk_file", "chunk_files"]

# A tree smaller than this (bytes of files listed) is chunked in this process. Measured on
# the semble trees (2 cores): starting a worker and shipping chunks back costs about as
# much as chunking 2 MiB of code.
POOL_MIN_BYTES = 8 << 20
# Each worker gets files in batches of about this many bytes (fewer round trips; small enough
# that the workers finish together).
_BATCH_BYTES = 1 << 20
BATCH_FILES = 256
_MAX_WORKERS = 8
# A worker that has not answered a batch in this many seconds is killed and its files are
# tried again one at a time; one that takes longer still is cut by lines. Generous: the
# slowest grammar here parses 1 MiB in about half a second.
TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class FileChunks:
    """One file's chunks, or why it was not read.

    Attributes:
        file: the file from the walk.
        chunks: its chunks in line order (empty when it could not be read).
        note: why a file with a grammar was chunked by lines (over the parse budget, the
            parser failed), or None.
        error: why the file could not be read (vanished, not UTF-8, ...), or None.
    """

    file: SourceFile
    chunks: list[Chunk]
    note: str | None = None
    error: str | None = None


def chunk_file(chunker: Chunker, file: SourceFile) -> FileChunks:
    """Read one listed file and chunk it; a file that cannot be read is reported, not raised."""
    try:
        source = read_source(file)
    except (RetrieverError, OSError, UnicodeError) as error:
        return FileChunks(file, [], error=getattr(error, "reason", None) or str(error))
    noted = getattr(chunker, "chunk_noted", None)
    if noted is not None:
        chunks, note = noted(file.path, source)
        return FileChunks(file, chunks, note=note)
    return FileChunks(file, list(chunker.chunk(file.path, source)))


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_workers(files: Sequence[SourceFile]) -> int:
    """Processes worth using for ``files``: 1 below ``POOL_MIN_BYTES`` or on one core, else
    one per core (at most 8), and no more than one per ``POOL_MIN_BYTES / 4`` of files."""
    size = sum(file.size for file in files)
    cpus = _cpus()
    if size < POOL_MIN_BYTES or cpus < 2:
        return 1
    return max(1, min(cpus, _MAX_WORKERS, size // (POOL_MIN_BYTES // 4)))


def _can_travel(chunker: Chunker) -> bool:
    """Whether a worker can be started and sent this chunker."""
    if not sys.executable:
        return False
    try:
        pickle.dumps(chunker)
    except Exception:  # noqa: BLE001 - any pickling failure means "chunk here"
        return False
    return True


def check_workers(workers: int | None) -> None:
    """InputError unless ``workers`` is None (auto) or a positive integer."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise InputError(f"workers must be a positive integer, or None to pick by the tree's "
                         f"size; got {workers!r}.")


def _batches(files: Sequence[SourceFile], most: int) -> Iterator[list[SourceFile]]:
    batch: list[SourceFile] = []
    size = 0
    for file in files:
        batch.append(file)
        size += file.size
        if size >= _BATCH_BYTES or len(batch) >= most:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class _Worker:
    """One ``python -m chunking._worker`` process and its two pipes."""

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chunking._worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env,
        )
        self.files: list[SourceFile] = []
        self.sent = 0.0

    def send(self, chunker: Chunker, files: list[SourceFile]) -> None:
        self.files = files
        self.sent = time.monotonic()
        write_message(self.process.stdin, (chunker, files))

    def receive(self, timeout: float | None = None) -> list[FileChunks] | None:
        """The answer to the last batch; None when none came within ``timeout`` seconds of
        sending it (the worker is then killed: a grammar that never returns cannot hang the
        build)."""
        if timeout is not None and os.name != "nt":  # select() takes no pipes on Windows
            left = max(0.0, self.sent + timeout - time.monotonic())
            ready, _, _ = select.select([self.process.stdout], [], [], left)
            if not ready:
                self.process.kill()
                self.close()
                return None
        answer = read_message(self.process.stdout)
        if answer is None:
            code = self.process.wait()
            raise RuntimeError(
                f"A chunking worker exited (code {code}) while chunking {self.files[0].path} "
                f"and {len(self.files) - 1} more files; index with workers=1 to see the error "
                "in this process."
            )
        status, value = answer
        if status == "error":
            raise value
        return value

    def close(self) -> None:
        try:
            write_message(self.process.stdin, None)
            self.process.stdin.close()
        except (OSError, ValueError):
            pass  # it has gone (or been closed) already
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def _by_lines(chunker: Chunker, file: SourceFile, timeout: float) -> FileChunks:
    """A file that no worker chunked within ``timeout`` seconds, cut into line windows here."""
    by_lines = getattr(chunker, "chunk_by_lines", None)
    if by_lines is None:
        raise RuntimeError(f"Chunking {file.path} took over {timeout:g} s in a worker and "
                           f"{type(chunker).__name__} has no line-window fallback.")
    try:
        source = read_source(file)
    except (RetrieverError, OSError, UnicodeError) as error:
        return FileChunks(file, [], error=getattr(error, "reason", None) or str(error))
    return FileChunks(file, by_lines(file.path, source),
                      note=f"chunking took over {timeout:g} s; chunked by lines")


def _one_at_a_time(chunker: Chunker, files: list[SourceFile], timeout: float
                   ) -> list[FileChunks]:
    """The files of a batch that timed out, each in a worker of its own time limit."""
    done = []
    worker = _Worker()
    try:
        for file in files:
            worker.send(chunker, [file])
            answer = worker.receive(timeout)
            if answer is None:
                done.append(_by_lines(chunker, file, timeout))
                worker = _Worker()
            else:
                done.extend(answer)
    finally:
        worker.close()
    return done


def chunk_files(chunker: Chunker, files: Sequence[SourceFile], *, workers: int | None = None,
                batch_files: int = BATCH_FILES,
                timeout: float = TIMEOUT_SECONDS) -> Iterator[FileChunks]:
    """Chunk ``files`` in their order, in ``workers`` processes.

    Workers are plain ``python -m chunking._worker`` processes rather than a
    ``multiprocessing`` pool: its spawn and forkserver methods import the caller's main
    script again in every worker, which breaks any script without an ``if __name__ ==
    "__main__"`` guard, and fork copies the caller's threads and locks.

    Args:
        chunker: the chunker, sent with every batch; one that cannot be pickled is run in
            this process instead.
        files: files from :func:`chunking.walk`.
        workers: processes to use; None picks :func:`auto_workers`; 1 chunks here.
        batch_files: the most files a worker gets at a time (batches also close at 1 MiB).
        timeout: seconds a worker may spend on one batch; after that its files are tried
            one at a time with the same limit, and a file over it is cut into line windows
            (with a note). Workers only: a file chunked here has the parse budget alone.

    Yields:
        One :class:`FileChunks` per file, in the order of ``files``, the same as a serial
        run gives.

    Raises:
        InputError: ``workers`` is not a positive integer.
        RuntimeError: a worker died (the message names the files it was chunking).
    """
    check_workers(workers)
    if workers is None:
        workers = auto_workers(files)
    if workers > 1 and not _can_travel(chunker):
        workers = 1  # a plugin chunker that cannot be sent to a worker, or no interpreter
    if workers == 1:
        for file in files:
            yield chunk_file(chunker, file)
        return
    batches = list(_batches(files, max(1, batch_files)))
    pool = [_Worker() for _ in range(min(workers, len(batches)))]
    try:
        # Batch i goes to worker i % n and answers are read in batch order, so the output
        # is in file order; each worker holds one batch at a time, so no pipe can fill up
        # in both directions at once.
        for worker, batch in zip(pool, batches, strict=False):
            worker.send(chunker, batch)
        for i in range(len(batches)):
            slot = i % len(pool)
            done = pool[slot].receive(timeout)
            if done is None:
                pool[slot] = _Worker()
                done = _one_at_a_time(chunker, batches[i], timeout)
            if i + len(pool) < len(batches):
                pool[slot].send(chunker, batches[i + len(pool)])
            yield from done
    finally:
        # Also when the consumer stops early or a worker fails: no worker is left running.
        for worker in pool:
            worker.close()
