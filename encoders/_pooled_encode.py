"""The fast path's loop over batches made by worker processes (:mod:`encoders._batch_pool`).

Per batch the parent makes a handful of Python-level calls: a copy of the slot into one of a
few pinned buffers, one non-blocking copy to the device, the forward (one CUDA graph replay
with :class:`encoders._bert_forward.GraphForward`), and one ``index_copy_`` of the unit rows
into their places in the output. The pinned buffers are reused in turn once their copy has
finished (a CUDA event each), which also keeps the host at most that many batches ahead of
the GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from encoders._batch_pool import BatchPool, SharedMemoryFull
from encoders._batch_worker import all_shapes, slot_ints

__all__ = ["PooledPath"]

# Pinned buffers in turn: batches the host may run ahead of the GPU (about 10 ms each for
# a full batch on the H200), so a parent late by a few batches (its core taken by a worker)
# still finds the GPU busy.
_STAGING = 8


class PooledPath:
    """The batch pool, CUDA graphs and pinned buffers of one
    :class:`encoders.fast_encode.FastEncoder` (``runner``), made on its first call."""

    def __init__(self, runner) -> None:
        import torch

        self.runner = runner
        self.pool = BatchPool(runner.tokenizer.to_str(), workers=runner.batch_workers,
                              words=runner.words, budget=runner.batch_tokens,
                              max_rows=runner.max_rows, max_length=runner.max_length,
                              pad_id=runner.pad_id, nice=runner.worker_nice)
        self.cuda = runner.device.type == "cuda"
        self.graphs = None
        self.graph_error: str | None = None  # why graphs could not be recorded, if so
        if runner.forward == "graphs":
            from encoders._bert_forward import GraphForward

            self.graphs = GraphForward(runner._bert, device=runner.device,
                                       max_tokens=self.pool.tokens, max_rows=runner.max_rows)
        size = slot_ints(self.pool.tokens, self.pool.max_rows)
        self.staging = [(torch.empty(size, dtype=torch.int32, pin_memory=True),
                         torch.cuda.Event()) for _ in range(_STAGING)] if self.cuda else []
        self.device_slot = (torch.empty(size, dtype=torch.int32, device=runner.device)
                            if self.cuda and self.graphs is None else None)

    def record_graphs(self) -> None:
        """Record every shape the workers can send (once; a call would otherwise record
        new shapes as they come, mid-call)."""
        import torch

        runner = self.runner
        if self.graphs is None or self.graphs.graphs:
            return
        try:
            with torch.no_grad():
                for rows, width, dense in all_shapes(runner.width_step, runner.max_length,
                                                     runner.batch_tokens, runner.max_rows):
                    self.graphs(rows, width, dense)
        except RuntimeError as error:  # a driver or build without graph capture: eager
            self.graph_error = repr(error)
            self.graphs = None
            runner.forward = "bert"
            self.device_slot = torch.empty_like(self.staging[0][0], device=runner.device)

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None
               ) -> np.ndarray | None:
        """``(n, dim)`` float32 unit rows of ``texts``, in order; None where /dev/shm is too
        small and the batch workers were not asked for (the caller takes its thread path)."""
        try:
            return self._encode(texts, progress)
        except SharedMemoryFull:
            if not self.runner.pool_asked:  # the default, not asked for: fall back
                return None
            raise

    def _encode(self, texts: Sequence[str], progress: Callable[[int], None] | None
                ) -> np.ndarray:
        import torch

        runner = self.runner
        self.record_graphs()
        tokens, max_rows = self.pool.tokens, self.pool.max_rows
        results = None
        # no_grad rather than inference_mode: the graphs' static buffers are ordinary tensors.
        with torch.no_grad(), runner._autocast_for_forward():
            batches = self.pool.batches(texts, step=runner.width_step,
                                        shapes=self.graphs is not None)
            for count, batch in enumerate(batches):
                if self.cuda:
                    host, event = self.staging[count % len(self.staging)]
                    event.synchronize()  # its last copy to the device has finished
                    _copy_used(host.numpy(), batch, tokens, max_rows)
                    target = self.graphs.inputs if self.graphs is not None else self.device_slot
                    target.copy_(host, non_blocking=True)
                    event.record()
                else:
                    target = torch.from_numpy(batch.slot.copy())
                positions = target[tokens + max_rows : tokens + max_rows + batch.rows].long()
                if self.graphs is not None:
                    vectors = self.graphs(batch.shape_rows, batch.width, batch.dense)[: batch.rows]
                else:
                    ids = target[: batch.shape_rows * batch.width].view(batch.shape_rows,
                                                                         batch.width)
                    lengths = target[tokens : tokens + batch.shape_rows]
                    vectors = runner._unit_rows(ids, lengths, batch.dense)[: batch.rows]
                if results is None:
                    results = torch.empty((len(texts), vectors.shape[1]), dtype=torch.float32,
                                          device=vectors.device)
                results.index_copy_(0, positions, vectors.float())
                if progress is not None:
                    progress(batch.rows)
        if results is None:
            return np.zeros((0, 0), dtype=np.float32)
        return np.ascontiguousarray(results.cpu().numpy(), dtype=np.float32)

    def close(self) -> None:
        self.pool.close()


def _copy_used(host: np.ndarray, batch, tokens: int, max_rows: int) -> None:
    """The parts of a batch's slot that are read (ids, lengths, positions) into ``host``."""
    ids = batch.shape_rows * batch.width
    host[:ids] = batch.slot[:ids]
    host[tokens : tokens + batch.shape_rows] = batch.slot[tokens : tokens + batch.shape_rows]
    at = tokens + max_rows
    host[at : at + batch.rows] = batch.slot[at : at + batch.rows]
