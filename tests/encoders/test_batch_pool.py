"""Batch workers (shared-memory slots) and the BERT forward, against the tokenizer and encode."""

from __future__ import annotations

import gc
import os
import re
import signal
from pathlib import Path

import numpy as np
import pytest

from encoders._batch_pool import BatchPool, WorkerError
from encoders._batch_worker import all_shapes, full_rows, job_bounds, shape_rows
from encoders._bert_forward import bert_forward_supported
from encoders.fast_encode import FastEncoder
from encoders.sentence import SentenceTransformerEncoder

SOURCE = Path(__file__).resolve().parents[2] / "encoders" / "fast_encode.py"
# The segments are looked for where POSIX shared memory lives on Linux.
pytestmark = pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs /dev/shm")


def _texts(count: int, seed: int) -> list[str]:
    """Code of mixed lengths (a few to 400 words, some over the limit), plus edge cases."""
    words = SOURCE.read_text(encoding="utf-8").split()
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 400)))) for _ in range(count)]
    return texts + ["", "naïve Straße 日本語", "[CLS] in a docstring", "x" * 3000]


def _segments(pool: BatchPool) -> list[Path]:
    return [Path("/dev/shm", memory.name) for memory in pool._segments.values()
            if memory is not None]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return SentenceTransformerEncoder(model=str(tiny_model_dir))._model()


def _reference(model, texts: list[str]) -> np.ndarray:
    return model.encode(texts, batch_size=16, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=False)


def test_shapes_cover_every_batch_and_waste_little():
    for full in (1, 5, 32, 512, 4096):
        sizes = [shape_rows(rows, full) for rows in range(1, full + 1)]
        assert all(rows <= size <= full for rows, size in zip(range(1, full + 1), sizes,
                                                              strict=True))
        # Past an eighth of a full batch, padding adds at most an eighth; below, doubles.
        assert all(size - rows <= max(rows, -(-full // 8), 8)
                   for rows, size in zip(range(1, full + 1), sizes, strict=True))
        assert len(set(sizes)) <= 16
    shapes = set(all_shapes(32, 256, 8192, 512))
    assert {(full_rows(256, 8192, 512), 256, True), (8, 32, False)} <= shapes
    assert not any(dense and width != 256 for _, width, dense in shapes)


@pytest.mark.parametrize("shapes", [False, True])
def test_batches_hold_every_text_once_with_the_tokenizers_ids(tiny, shapes):
    fast = FastEncoder(tiny, batch_tokens=512, forward="module")
    texts = _texts(300, seed=1)
    expected = [e.ids for e in fast.tokenizer.encode_batch(texts)]
    pool = BatchPool(fast.tokenizer.to_str(), workers=2, words=True, budget=512,
                     max_rows=64, max_length=fast.max_length, pad_id=fast.pad_id)
    tokens, max_rows = pool.tokens, pool.max_rows
    seen: dict[int, list[int]] = {}
    dense_rows = 0
    try:
        for batch in pool.batches(texts, step=32, shapes=shapes):
            slot = batch.slot
            ids = slot[: batch.shape_rows * batch.width].reshape(batch.shape_rows, batch.width)
            lengths = slot[tokens : tokens + batch.shape_rows]
            positions = slot[tokens + max_rows : tokens + max_rows + batch.rows]
            assert batch.shape_rows * batch.width <= 512 and batch.shape_rows <= 64
            # Rows at the limit come in batches of their own, with no padding to mask.
            at_limit = lengths[: batch.rows] == fast.max_length
            assert at_limit.all() if batch.dense else not at_limit.any()
            dense_rows += batch.rows if batch.dense else 0
            for row, position in enumerate(positions.tolist()):
                assert position not in seen
                seen[position] = ids[row, : lengths[row]].tolist()
                assert (ids[row, lengths[row] :] == fast.pad_id).all()
            if shapes:
                assert batch.width % 32 == 0 or batch.width == fast.max_length
                assert batch.shape_rows == shape_rows(batch.rows,
                                                      full_rows(batch.width, 512, 64))
                assert (lengths[batch.rows :] == 1).all()
        names = _segments(pool)
        assert names and all(name.exists() for name in names)
    finally:
        pool.close()
    assert [seen[i] for i in range(len(texts))] == expected
    assert dense_rows == sum(len(ids) == fast.max_length for ids in expected) > 0
    assert not any(name.exists() for name in names)


@pytest.mark.parametrize("forward", ["module", "bert"])
def test_batch_workers_give_the_vectors_of_encode_in_order(tiny, forward):
    texts = _texts(50, seed=2)
    fast = FastEncoder(tiny, batch_tokens=512, batch_workers=2, forward=forward)
    assert fast.forward == forward and fast.batch_workers == 2
    seen: list[int] = []
    try:
        vectors = fast.encode(texts, seen.append)
        again = fast.encode(texts[:7])  # a second call on the same workers and segments
    finally:
        fast.close()
    np.testing.assert_allclose(vectors, _reference(tiny, texts), atol=1e-5)
    np.testing.assert_allclose(again, vectors[:7], atol=1e-5)
    assert sum(seen) == len(texts)


def test_the_bert_forward_is_refused_where_it_would_differ(tiny):
    assert bert_forward_supported(tiny)
    assert not bert_forward_supported(object())
    # CPU: no graphs; the BERT forward without batch workers runs on the thread path.
    fast = FastEncoder(tiny, forward="graphs")
    assert fast.forward == "bert" and fast.batch_workers == 0
    texts = _texts(20, seed=3)
    np.testing.assert_allclose(fast.encode(texts), _reference(tiny, texts), atol=1e-5)
    with pytest.raises(ValueError):
        FastEncoder(tiny, forward="fused")


def test_a_failing_call_unlinks_the_shared_memory_and_the_next_call_starts_afresh(tiny):
    fast = FastEncoder(tiny, batch_workers=2, forward="bert")
    texts = _texts(30, seed=4)
    try:
        fast.encode(texts)
        pool = fast._pooled.pool
        names = _segments(pool)
        processes = [p.process for p in pool._processes]
        # A lone surrogate travels to the worker (UTF-8 with surrogatepass) and fails there,
        # in the tokenizer; the caller sees the error the tokenizer raises in this process.
        bad = "bad \ud800 text"
        with pytest.raises(Exception) as direct:  # noqa: PT011 - whatever the tokenizer raises
            fast.tokenizer.encode_batch([bad])
        with pytest.raises(type(direct.value), match=re.escape(str(direct.value))):
            fast.encode(texts + [bad])
        assert not any(name.exists() for name in names)
        assert all(process.poll() is not None for process in processes)
        np.testing.assert_allclose(fast.encode(texts[:5]), _reference(tiny, texts[:5]),
                                   atol=1e-5)
    finally:
        fast.close()


def test_a_worker_that_dies_gives_an_error_not_a_hang(tiny):
    fast = FastEncoder(tiny, batch_workers=2, forward="bert")
    texts = _texts(30, seed=5)
    try:
        fast.encode(texts)
        pool = fast._pooled.pool
        names = _segments(pool)
        victim = pool._processes[0].process
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        with pytest.raises(WorkerError, match="exited with code -9"):
            fast.encode(texts)
        assert not any(name.exists() for name in names)
    finally:
        fast.close()


def test_a_dropped_encoder_takes_its_workers_and_segments_with_it(tiny):
    fast = FastEncoder(tiny, batch_workers=1, forward="module")
    fast.encode(_texts(10, seed=6))
    pool = fast._pooled.pool
    names = _segments(pool)
    processes = [p.process for p in pool._processes]
    del fast, pool
    gc.collect()
    assert names and not any(name.exists() for name in names)
    assert all(process.wait(timeout=10) is not None for process in processes)


def test_a_killed_parent_leaves_no_segments_and_no_workers(tiny_model_dir):
    import json
    import subprocess
    import sys
    import time

    # A process that starts a pool, reports it, and dies without cleaning anything up.
    script = (
        "import json, os, signal\n"
        "from encoders.sentence import SentenceTransformerEncoder\n"
        "from encoders.fast_encode import FastEncoder\n"
        f"model = SentenceTransformerEncoder(model={str(tiny_model_dir)!r})._model()\n"
        "fast = FastEncoder(model, batch_workers=1, forward='module')\n"
        "fast.encode(['def f(): pass'] * 10)\n"
        "pool = fast._pooled.pool\n"
        "print(json.dumps([[m.name for m in pool._segments.values() if m],\n"
        "                  [p.process.pid for p in pool._processes]]), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    names, pids = json.loads(done.stdout.strip().splitlines()[-1])
    assert names and pids
    deadline = time.monotonic() + 15
    # The resource tracker unlinks the segments once the parent is gone; the workers read
    # the end of their pipe and exit.
    while time.monotonic() < deadline and (
            any(Path("/dev/shm", name).exists() for name in names)
            or any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)
                   for pid in pids)):
        time.sleep(0.2)
    assert not any(Path("/dev/shm", name).exists() for name in names)
    assert not any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)
                   for pid in pids)


def _state(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "zombie"  # gone while looking
    return next((line for line in status.splitlines() if line.startswith("State:")), "")


def test_a_long_call_goes_in_parts_and_keeps_its_order(tiny, monkeypatch):
    import encoders._batch_pool as batch_pool

    # Parts of about 3,000 characters: a dozen calls to the workers, each from its own base.
    monkeypatch.setattr(batch_pool, "PART_CHARS", 3000)
    monkeypatch.setattr(batch_pool, "_MIN_PART_CHARS", 1)
    texts = _texts(40, seed=7)
    fast = FastEncoder(tiny, batch_tokens=512, batch_workers=2, forward="bert")
    try:
        vectors = fast.encode(texts)
    finally:
        fast.close()
    assert sum(map(len, texts)) > 10 * 3000
    np.testing.assert_allclose(vectors, _reference(tiny, texts), atol=1e-5)


def test_too_little_shared_memory_is_an_error_or_the_thread_path(tiny, monkeypatch):
    import encoders._batch_pool as batch_pool
    import encoders.fast_encode as fast_encode

    # A container's small /dev/shm (docker's default is 64 MiB): 1 MiB free here.
    monkeypatch.setattr(batch_pool.BatchPool, "_room", lambda self: 1 << 20)
    texts = _texts(20, seed=8)
    asked = FastEncoder(tiny, batch_workers=2, forward="bert")
    with pytest.raises(batch_pool.SharedMemoryFull, match="shm-size.*batch_workers=0"):
        asked.encode(texts)
    assert asked._pooled.pool._segments == {"slots": None, "texts": None}
    # Workers by default (as on CUDA): the call takes the thread path instead.
    monkeypatch.setattr(fast_encode, "_BATCH_WORKERS", {"cpu": 2, "cuda": -1})
    monkeypatch.setattr(fast_encode, "_POOL_MIN_TEXTS", 1)
    default = FastEncoder(tiny, forward="bert")
    assert default.batch_workers == 2
    np.testing.assert_allclose(default.encode(texts), _reference(tiny, texts), atol=1e-5)
    assert default.batch_workers == 0


def test_default_workers_step_aside_for_what_was_asked(tiny, monkeypatch):
    import encoders.fast_encode as fast_encode

    # The CUDA defaults (batch workers, graphs), here on the CPU, where graphs become the
    # eager BERT forward.
    monkeypatch.setattr(fast_encode, "_BATCH_WORKERS", {"cpu": -1, "cuda": -1})
    monkeypatch.setattr(fast_encode, "_FORWARD", {"cpu": "graphs", "cuda": "graphs"})
    settings = {(): ("bert", True, 4096), (("tokenise_workers", 2),): ("bert", False, 4096),
                (("compile", True),): ("module", True, 4096),
                (("batch_workers", 3),): ("bert", True, 1),
                (("batch_workers", 0), ("forward", "module")): ("module", False, 4096)}
    for asked, (forward, pooled, smallest) in settings.items():
        fast = FastEncoder(tiny, **dict(asked))
        assert (fast.forward, fast.batch_workers > 0, fast.pool_min_texts) == (
            forward, pooled, smallest), asked


def test_worker_nice_runs_the_workers_below_the_encoding_process(tiny):
    fast = FastEncoder(tiny, batch_workers=2, forward="module", worker_nice=5)
    try:
        expected = fast.encode(_texts(12, seed=9))
        own = os.getpriority(os.PRIO_PROCESS, 0)
        pids = [p.process.pid for p in fast._pooled.pool._processes]
        assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in pids] == [min(own + 5, 19)] * 2
    finally:
        fast.close()
    plain = FastEncoder(tiny, batch_workers=2, forward="module")
    try:
        assert np.allclose(plain.encode(_texts(12, seed=9)), expected, atol=1e-6)
        pids = [p.process.pid for p in plain._pooled.pool._processes]
        assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in pids] == [own] * 2
    finally:
        plain.close()


def test_jobs_cover_every_text_once_and_start_small():
    for count, job, stride in ((0, 256, 3), (1, 256, 3), (100, 8, 3), (1000, 256, 15)):
        bounds = job_bounds(count, job, stride)
        covered = [i for first, last in bounds for i in range(first, last)]
        assert covered == list(range(count))
        # Each worker's first job is a quarter of a job, so the first batch comes early.
        assert all(last - first <= max(1, job // 4) for first, last in bounds[:stride])
        assert all(last - first <= job for first, last in bounds)


def test_batches_are_filled_from_every_workers_rows(tiny):
    fast = FastEncoder(tiny, batch_tokens=512, forward="module")
    texts = _texts(600, seed=11)
    pool = BatchPool(fast.tokenizer.to_str(), workers=3, words=True, budget=512,
                     max_rows=64, max_length=fast.max_length, pad_id=fast.pad_id)
    part_filled: dict[tuple[int, bool], int] = {}
    rows = 0
    try:
        for batch in pool.batches(texts, step=32, shapes=True):
            rows += batch.rows
            if batch.rows < full_rows(batch.width, 512, 64):
                key = (batch.width, batch.dense)
                part_filled[key] = part_filled.get(key, 0) + 1
    finally:
        pool.close()
    assert rows == len(texts)
    # One part-filled batch a bucket at most (the call's rest), not one a worker and bucket.
    assert part_filled and max(part_filled.values()) == 1


def test_texts_past_the_basic_plane_reach_the_workers_intact(tiny, monkeypatch):
    import encoders._batch_pool as batch_pool

    # One such character makes a joined string four bytes a character; the texts are written
    # in runs, and every run's bytes must land at its texts' offsets.
    monkeypatch.setattr(batch_pool, "_WRITE_TEXTS", 7)
    texts = _texts(40, seed=12)
    texts[3] = "def smile():\n    return '\U0001f600' * 3  # naïve"
    fast = FastEncoder(tiny, batch_tokens=512, batch_workers=2, forward="bert")
    try:
        vectors = fast.encode(texts)
    finally:
        fast.close()
    np.testing.assert_allclose(vectors, _reference(tiny, texts), atol=1e-5)
