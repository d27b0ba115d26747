"""Where an end-to-end call of the batch-worker path loses time: the GPU's idle gaps.

``benchmarks/gpu_encode.py`` gives the end-to-end rate and the forward alone; this runs the
same loop as :class:`encoders._pooled_encode.PooledPath` once more with a CUDA event around
each graph replay and the host's clock around each step, and reports: the GPU's time busy
replaying; its idle time before the first replay (the workers' first jobs) and between
replays; how long the GPU ran on after the host handed over the last batch (the tail); and
the parent's time waiting for the pool (no batch ready: the host side behind), blocked on a
pinned buffer (the GPU behind) and on its own per-batch work.

    python3 benchmarks/gpu_encode_timeline.py --model DIR --mine 100000 --out timeline.json \
        [--budget 65536] [--workers 15] [--slots 4]

CUDA only. The vectors are not kept (the rates are ``gpu_encode.py``'s).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.gpu_encode import _load, mine  # noqa: E402
from encoders import _batch_pool  # noqa: E402
from encoders._pooled_encode import PooledPath, _copy_used  # noqa: E402
from encoders.fast_encode import FastEncoder  # noqa: E402


def timed_call(fast, texts: list[str]) -> dict:
    """One call of the pooled path's loop, instrumented."""
    import torch

    path: PooledPath = fast._pooled
    path.record_graphs()
    graphs, tokens, max_rows = path.graphs, path.pool.tokens, path.pool.max_rows
    log = []
    waited = blocked = own = 0.0
    torch.cuda.synchronize()
    origin = torch.cuda.Event(enable_timing=True)
    origin.record()
    started = time.perf_counter()
    with torch.no_grad():
        batches = path.pool.batches(texts, step=fast.width_step, shapes=True)
        mark = time.perf_counter()
        for count, batch in enumerate(batches):
            now = time.perf_counter()
            waited += now - mark
            host, event = path.staging[count % len(path.staging)]
            event.synchronize()
            after = time.perf_counter()
            blocked += after - now
            _copy_used(host.numpy(), batch, tokens, max_rows)
            graphs.inputs.copy_(host, non_blocking=True)
            event.record()
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            graphs(batch.shape_rows, batch.width, batch.dense)
            end.record()
            mark = time.perf_counter()
            own += mark - after
            log.append((now - started, begin, end, batch.rows, batch.shape_rows, batch.width,
                        batch.dense))
    handed = time.perf_counter() - started
    torch.cuda.synchronize()
    wall = time.perf_counter() - started
    spans = np.array([(origin.elapsed_time(b) / 1e3, origin.elapsed_time(e) / 1e3)
                      for _, b, e, *_ in log])
    busy = float((spans[:, 1] - spans[:, 0]).sum())
    gaps = np.maximum(spans[1:, 0] - spans[:-1, 1], 0.0)
    first_ready = log[0][0]
    return {"texts": len(texts), "batches": len(log), "wall_s": wall,
            "chunks_per_s": len(texts) / wall, "gpu_busy_s": busy,
            "gpu_idle_before_first_s": float(spans[0, 0]),
            "first_batch_ready_s": first_ready,
            "gpu_idle_between_s": float(gaps.sum()),
            "gaps_over_1ms": int((gaps > 1e-3).sum()),
            "gpu_tail_after_handover_s": float(spans[-1, 1] - handed),
            "host_handover_s": handed,
            "parent_waiting_for_batches_s": waited, "parent_blocked_on_gpu_s": blocked,
            "parent_own_work_s": own,
            "last_batches": [(round(t, 4), r, s, w, d) for t, _, _, r, s, w, d in log[-12:]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--mine", type=int, default=100_000)
    parser.add_argument("--budget", type=int, default=None)
    parser.add_argument("--workers", type=int, default=-1)
    parser.add_argument("--slots", type=int, default=None, help="slots per worker")
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.slots:
        _batch_pool.SLOTS_PER_WORKER = args.slots
    texts = mine(args.mine)
    model = _load(args.model, "cuda")
    fast = FastEncoder(model, precision="fp16", batch_tokens=args.budget,
                       batch_workers=args.workers, forward="graphs")
    fast.encode(texts[:4096])  # starts the workers, records the graphs
    result = {"settings": vars(args) | {"out": None}, "calls": []}
    for _ in range(args.calls):
        row = timed_call(fast, texts)
        result["calls"].append(row)
        print(json.dumps(row), flush=True)
    fast.close()
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
