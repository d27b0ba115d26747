"""A batch worker: ``python -m encoders._batch_worker JOBS ANSWERS``, started by
:class:`encoders._batch_pool.BatchPool`.

It reads texts from the pool's shared-memory texts segment (one UTF-8 buffer and its
offsets), tokenises its share of them a job at a time (:class:`encoders._tokenise.Tokenise`,
the word path where it applies), and writes each job's rows, padded and grouped by width
bucket, into one of its own shared-memory slots: the parent gets only ``("part", call, slot,
((bucket, rows), ...))``, copies the rows into the batches it is filling (rows of every
worker together, :class:`encoders._batch_pool.BatchPool`) and hands the slot back with
``("free", slot)``. So no text and no id crosses a pipe, and the parent does no per-text
Python work. Rows at the token limit (most code chunks) get a bucket of their own (-1): such
a batch has no padding (``dense``), so its attention needs no mask and can take the faster
kernels.

A slot holds, as int32: the ids in its first ``tokens`` entries (each bucket's rows in turn,
``rows x width`` row-major, ``width`` the bucket's), the lengths in the ``max_rows`` after
them, then the rows' positions among the texts of the pool's call (``base`` plus the position
in this part). The parent's batches have the same layout; with graph shapes on, a part-filled
batch is rounded up to one of a few row counts (:func:`shape_rows`), the extra rows of
length 1.

Earlier each worker filled whole batches of its own share (fourth to sixth passes in
benchmarks/RESULTS.md): its first batch of 256-token rows came only after about 670 texts,
and at the end of a call every worker sent a part-filled batch of every bucket at once, so
the GPU idled at the start and ran a fifth of the work alone at the end.
"""

from __future__ import annotations

import os
import sys
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory

import numpy as np

__all__ = ["all_shapes", "full_rows", "job_bounds", "shape_rows", "slot_ints", "widths"]


def full_rows(width: int, budget: int, max_rows: int) -> int:
    """Rows of a full batch of ``width`` tokens: ``budget`` padded tokens, at most ``max_rows``."""
    return max(1, min(max_rows, budget // max(width, 1)))


def shape_rows(rows: int, full: int) -> int:
    """The row count a batch of ``rows`` (<= ``full``) is padded to: a multiple of an eighth
    of ``full``, or below that a power of two (at least 8), so a width has a dozen shapes
    and a part-filled batch at most doubles (under an eighth) or gains an eighth of ``full``."""
    step = -(-full // 8)
    if rows > step:
        return min(full, -(-rows // step) * step)
    return min(step, max(8, 1 << (rows - 1).bit_length()))


def widths(step: int, max_length: int) -> list[int]:
    """Bucket widths: multiples of ``step`` up to the token limit, and the limit itself."""
    found = list(range(step, max_length, step))
    return [*found, max_length]


def all_shapes(step: int, max_length: int, budget: int, max_rows: int
               ) -> list[tuple[int, int, bool]]:
    """Every ``(shape_rows, width, dense)`` a call with ``shapes`` on can send."""
    found = []
    for width in widths(step, max_length):
        full = full_rows(width, budget, max_rows)
        sizes = sorted({shape_rows(r, full) for r in range(1, full + 1)})
        for dense in (False, True) if width == max_length else (False,):
            found.extend((rows, width, dense) for rows in sizes)
    return found


def slot_ints(tokens: int, max_rows: int) -> int:
    return tokens + 2 * max_rows


def job_bounds(count: int, job_texts: int, stride: int) -> list[tuple[int, int]]:
    """``(first, last)`` texts of each job of a call of ``count`` texts; worker ``i`` of
    ``stride`` takes jobs ``i, i + stride, ...``. Each worker's first job is a quarter of
    ``job_texts``, so the first batch is ready after a few dozen texts a worker."""
    bounds, start = [], 0
    while start < count:
        size = max(1, job_texts // 4) if len(bounds) < stride else job_texts
        bounds.append((start, min(count, start + size)))
        start += size
    return bounds


def attach(name: str) -> SharedMemory:
    """Open the parent's segment without making this process its owner."""
    if sys.version_info >= (3, 13):
        return SharedMemory(name=name, track=False)
    # Before 3.13 attaching registers the name with a resource tracker of this process,
    # which unlinks the segment when this worker exits (the parent still uses it).
    from multiprocessing import resource_tracker

    register = resource_tracker.register
    resource_tracker.register = lambda *args, **kwargs: None
    try:
        return SharedMemory(name=name)
    finally:
        resource_tracker.register = register


class _Worker:
    def __init__(self, jobs: Connection, answers: Connection, setup: dict) -> None:
        from tokenizers import Tokenizer

        from encoders._tokenise import Tokenise

        self.jobs, self.answers = jobs, answers
        self.tokenise = Tokenise(Tokenizer.from_str(setup["tokenizer"]), words=setup["words"])
        self.max_rows = setup["max_rows"]
        self.max_length, self.pad_id = setup["max_length"], setup["pad_id"]
        self.tokens = setup["tokens"]
        self.slots_memory = attach(setup["slots"])
        size = slot_ints(self.tokens, self.max_rows)
        everything = np.ndarray((setup["slot_count"], size), np.int32, self.slots_memory.buf)
        self.slots = {slot: everything[slot] for slot in setup["own_slots"]}
        self.free = list(setup["own_slots"])
        self.texts_memory: SharedMemory | None = None

    def serve(self) -> None:
        while True:
            try:
                message = self.jobs.recv()
            except EOFError:
                return  # the parent is gone
            if message is None:
                return
            if message[0] == "free":
                self.free.append(message[1])
                continue
            call = message[1]
            try:
                self.run(**message[2])
            except Exception as error:  # noqa: BLE001 - handed to the parent, which raises it
                self.answers.send(("error", call, _portable(error)))
                continue
            self.answers.send(("done", call))

    def run(self, *, call: int, texts: str, count: int, job_texts: int, index: int,
            stride: int, step: int, base: int) -> None:
        if self.texts_memory is None or self.texts_memory.name != texts:
            if self.texts_memory is not None:
                self.texts_memory.close()
            self.texts_memory = attach(texts)
        buffer = self.texts_memory.buf
        offsets = np.ndarray((count + 1,), np.int64, buffer).tolist()
        data = buffer[8 * (count + 1) :]  # the UTF-8 bytes, after the offsets
        for first, last in job_bounds(count, job_texts, stride)[index::stride]:
            texts_here = [str(data[offsets[i] : offsets[i + 1]], "utf-8", "surrogatepass")
                          for i in range(first, last)]
            self._send_part(call, self.tokenise(texts_here), first + base, step)
        del data, buffer

    def _send_part(self, call: int, tokens, first: int, step: int) -> None:
        """One job's rows, grouped by width bucket, padded into a free slot."""
        lengths = tokens.lengths
        starts = np.cumsum(lengths) - lengths
        buckets = np.minimum(-(-lengths // step) * step, self.max_length)
        # At the limit: a bucket of their own, -1 (no padding, no attention mask).
        buckets[lengths == self.max_length] = -1
        order = np.argsort(buckets, kind="stable")
        keys, counts = np.unique(buckets[order], return_counts=True)
        while not self.free:  # wait for the parent to hand a slot back
            message = self.jobs.recv()
            if message is None or message[0] != "free":
                raise RuntimeError(f"unexpected message while waiting for a slot: {message!r}")
            self.free.append(message[1])
        slot = self.free.pop()
        memory = self.slots[slot]
        last_id = max(len(tokens.ids) - 1, 0)
        rows_at = ids_at = 0
        for key, rows in zip(keys.tolist(), counts.tolist(), strict=True):
            chosen = order[rows_at : rows_at + rows]
            width = self.max_length if key == -1 else key
            columns = np.arange(width)
            where = starts[chosen][:, None] + columns[None, :]
            grid = memory[ids_at : ids_at + rows * width].reshape(rows, width)
            if key == -1:  # every row fills the width
                np.take(tokens.ids, where, out=grid)
            else:
                np.take(tokens.ids, np.minimum(where, last_id), out=grid)
                grid[columns[None, :] >= lengths[chosen][:, None]] = self.pad_id
            memory[self.tokens + rows_at : self.tokens + rows_at + rows] = lengths[chosen]
            at = self.tokens + self.max_rows + rows_at
            memory[at : at + rows] = chosen + first
            rows_at += rows
            ids_at += rows * width
        self.answers.send(("part", call, slot, tuple(zip(keys.tolist(), counts.tolist(),
                                                         strict=True))))


def _portable(error: Exception) -> Exception:
    import pickle

    try:
        pickle.dumps(error)
    except Exception:  # noqa: BLE001 - an exception that cannot travel
        return RuntimeError(repr(error))
    return error


def main() -> None:
    jobs = Connection(int(sys.argv[1]), writable=False)
    answers = Connection(int(sys.argv[2]), readable=False)
    sys.stdout = sys.stderr  # nothing printed goes anywhere the parent reads
    setup = jobs.recv()
    if setup.get("nice"):
        # Below the parent: with a worker on every other core, the parent must get a core the
        # moment a batch is due, or the GPU waits for its next launch.
        os.nice(int(setup["nice"]))
    try:
        worker = _Worker(jobs, answers, setup)
    except Exception as error:  # noqa: BLE001 - the parent raises it
        answers.send(("error", -1, _portable(error)))
        return
    answers.send(("ready", -1))
    worker.serve()


if __name__ == "__main__":
    main()
