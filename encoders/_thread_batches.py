"""The fast path's thread producer: windows of texts to padded batches in pinned memory.

A window of texts is tokenised while the previous one is cut into batches (on a thread of
this process: the Rust tokenizer releases the GIL; or in the tokenising processes of
:mod:`encoders._tokenise_pool`), sorted by token count and cut by a token budget, and each
batch is gathered from the flat ids with numpy straight into pinned host memory. The
functions take the :class:`encoders.fast_encode.FastEncoder` (``runner``) whose settings
they read.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from encoders._tokenise import Tokens
from encoders._tokenise_pool import TokenisePool

__all__ = ["batches", "produced"]

_QUEUED = 6  # batches the producer may run ahead


def produced(runner, texts: list[str]) -> Iterator[tuple[int, np.ndarray, dict | None, int]]:
    """Batches from a producer thread: ``(window_start, rows, batch, 0)`` per batch and
    ``(window_start, empty, None, window_size)`` after each window."""
    if len(texts) <= runner.window and not _use_pool(runner, texts):
        yield from batches(runner, texts)  # one window here: no thread to start or join
        return
    handoff: queue.Queue = queue.Queue(maxsize=_QUEUED)
    stop = threading.Event()
    failure: list[BaseException] = []

    def put(item) -> bool:
        # A bounded wait, so a consumer that stopped early (an error in a forward pass)
        # never leaves this thread blocked on a full queue.
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in batches(runner, texts):
                if not put(item):
                    return
        except BaseException as exc:  # re-raised on the calling thread
            failure.append(exc)
        put(None)

    thread = threading.Thread(target=produce, name="fast-encode-tokenise", daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is None:
                break
            yield item
    finally:
        stop.set()
        thread.join()
    if failure:
        raise failure[0]


def _use_pool(runner, texts: list[str]) -> bool:
    return runner.tokenise_workers > 0


def batches(runner, texts: list[str]) -> Iterator[tuple[int, np.ndarray, dict | None, int]]:
    import torch

    pin = runner.device.type == "cuda"
    starts = range(0, len(texts), runner.window)
    if _use_pool(runner, texts):
        if runner._pool is None:
            runner._pool = TokenisePool(runner.tokenizer.to_str(), words=runner.words,
                                      workers=runner.tokenise_workers)
        yield from _pipelined(runner, texts, starts, runner._pool.submit, 2, pin, torch)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fast-encode-ids") as pool:
        # The next window is tokenised (the Rust tokenizer releases the GIL) while this
        # one is cut into batches.
        yield from _pipelined(runner, texts, starts, lambda part: pool.submit(
            runner.tokenise, part), 1, pin, torch)


def _pipelined(runner, texts, starts, submit, ahead: int, pin: bool, torch):
    """The windows' batches, with ``ahead`` windows submitted before the one in hand."""
    pending: deque = deque()
    following = iter(starts)
    for start in following:
        pending.append((start, submit(texts[start : start + runner.window])))
        if len(pending) > ahead:
            break
    while pending:
        start, job = pending.popleft()
        tokens = job.result()
        nxt = next(following, None)
        if nxt is not None:
            pending.append((nxt, submit(texts[nxt : nxt + runner.window])))
        yield from _window_batches(runner, start, tokens, pin, torch)


def _window_batches(runner, start: int, tokens: Tokens, pin: bool, torch
                    ) -> Iterator[tuple[int, np.ndarray, dict | None, int]]:
    lengths = tokens.lengths
    offsets = np.cumsum(lengths) - lengths
    last = max(len(tokens.ids) - 1, 0)
    # Longest first: the largest activations are allocated once, at the start.
    order = np.argsort(-lengths, kind="stable")
    for rows in _bucket(lengths[order], runner.batch_tokens, runner.max_rows):
        picked = order[rows]
        width = int(lengths[picked[0]])
        columns = np.arange(width)
        valid = columns[None, :] < lengths[picked][:, None]
        # Row i, column j reads flat id offsets[i] + j where j < its length (a gather,
        # not a Python loop over rows).
        where = np.minimum(offsets[picked][:, None] + columns[None, :], last)
        ids = torch.empty((len(picked), width), dtype=torch.int64, pin_memory=pin)
        np.copyto(ids.numpy(), np.where(valid, tokens.ids[where], runner.pad_id))
        batch = {"input_ids": ids, "lengths": torch.from_numpy(lengths[picked])}
        if pin:
            batch["lengths"] = batch["lengths"].pin_memory()
        if tokens.types is not None:
            types = torch.empty((len(picked), width), dtype=torch.int64, pin_memory=pin)
            np.copyto(types.numpy(), np.where(valid, tokens.types[where], 0))
            batch["token_type_ids"] = types
        yield start, picked, batch, 0
    yield start, order[:0], None, len(lengths)


def _bucket(sorted_lengths: np.ndarray, budget: int, max_rows: int) -> Iterator[slice]:
    """Slices of rows (lengths sorted longest first) whose padded size, rows times the
    first row's length, stays within ``budget`` tokens and ``max_rows`` rows."""
    start, n = 0, len(sorted_lengths)
    while start < n:
        width = max(int(sorted_lengths[start]), 1)
        stop = min(n, start + max(1, min(max_rows, budget // width)))
        yield slice(start, stop)
        start = stop
