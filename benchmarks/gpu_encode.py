"""Encoding throughput: the fast path against sentence-transformers' ``encode``, same run.

Real code chunks, either a Parquet file with a ``text`` column (``--texts``) or mined here
from the Python sources of the installed packages and the standard library (``--mine N``):
top-level functions and classes cut at 1,500 characters as the cAST chunker cuts them, with
its ``path :: symbol`` header, skipping every package a benchmark indexes
(``encoders/train/exclusions.py``). Measured, in this order, on the same texts (each row is
written to ``--out`` as it ends):

- ``st_fp32``: ``SentenceTransformer.encode`` (batch 32, fp32) on the reference subset:
  what the encoder ran before, and the vectors every variant is compared with;
- ``st_fp16``: ``encode`` on a half-precision copy of the model, batch 256 (a stronger base);
- ``fast``: :class:`encoders.fast_encode.FastEncoder` end to end (texts in, float32 unit
  rows in input order out), per variant: ``previous`` (with ``--previous FILE``, an earlier
  copy of ``encoders/fast_encode.py``, with its best settings: the normaliser bypass, a
  half copy of the weights), then this version's host paths (the Rust tokenizer on a
  thread; the word path in worker processes) under autocast and on half weights, then
  under ``torch.compile`` (``--compile``); then the batch workers (``pool-*``: processes
  that tokenise and pad whole batches into shared memory, :mod:`encoders._batch_pool`)
  with the model's modules, the fused BERT forward, and its CUDA graphs per bucket shape
  (``--graph-workers`` adds rows of that variant with other worker counts). Per row: the
  first call's seconds apart (workers start, compiling, recording graphs), min and mean
  cosine against ``st_fp32``, and
  ``forward_chunks_per_s``: the model's forward alone over the same batches (first 50,000
  texts), already tokenised, padded and on the device: the ceiling of the end-to-end rate;
- ``host`` (run before ``fast``): tokenising and padding alone (the producer, no model),
  per tokeniser setting, and per batch-worker count (``batch_workers``, graph shapes);
- ``best``: the fastest variant whose min cosine is >= 0.999.

    python benchmarks/gpu_encode.py --model DIR --mine 100000 --compile --out result.json
    taskset -c 0,1 python benchmarks/gpu_encode.py --device cpu --mine 600 --reference 600

The model folder may hold fp16 weights; it is cast to float32 on load.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.gpu_encode_mining import mine  # noqa: E402
from benchmarks.gpu_encode_variants import host_settings, variants  # noqa: E402
from encoders._pooled_encode import PooledPath  # noqa: E402
from encoders._tokenise_pool import cpu_count  # noqa: E402
from encoders.fast_encode import FastEncoder  # noqa: E402


def _load(model_dir: str, device: str):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device=device, local_files_only=True)
    model.float()
    model.max_seq_length = min(256, model.max_seq_length or 256)
    return model.eval()


def _timed(fn, sync) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def run(args) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.texts:
        import pyarrow.parquet as pq

        texts = pq.read_table(args.texts, columns=["text"]).column("text").to_pylist()
        source = f"parquet {Path(args.texts).name}"
    else:
        started = time.perf_counter()
        texts = mine(args.mine)
        source = f"mined from installed packages in {time.perf_counter() - started:.1f}s"
    texts = texts[: args.limit] if args.limit else texts
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    model = _load(args.model, args.device)
    reference = texts[: args.reference]
    result: dict = {"device": torch.cuda.get_device_name() if cuda else "cpu",
                    "cpus": cpu_count(), "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads(), "texts": len(texts),
                    "source": source, "reference_texts": len(reference)}

    def save() -> None:
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")

    probe = FastEncoder(model, precision="fp32", tokenise_workers=0)
    lengths = np.array([len(e) for e in probe.tokenizer.encode_batch(texts)])
    result["tokens"] = {"mean": float(lengths.mean()), "p50": float(np.median(lengths)),
                        "at_limit": float((lengths == model.max_seq_length).mean())}

    def st_encode(m, items, batch):
        return m.encode(items, batch_size=batch, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=False)

    warm = texts[:2048]
    st_encode(model, warm[:256], 32)
    holder: dict = {}
    seconds = _timed(lambda: holder.setdefault("v", st_encode(model, reference, 32)), sync)
    expected = holder["v"]
    result["st_fp32"] = {"chunks_per_s": len(reference) / seconds, "seconds": seconds}
    save()
    if cuda and args.st_fp16:
        half = copy.deepcopy(model).half()
        st_encode(half, warm, 256)
        seconds = _timed(lambda: st_encode(half, reference, 256), sync)
        result["st_fp16"] = {"chunks_per_s": len(reference) / seconds, "seconds": seconds}
        del half
    auto = getattr(model[0], "auto_model", None)
    result["attention"] = getattr(getattr(auto, "config", None), "_attn_implementation", None)
    result["host"] = []
    for settings in host_settings(cuda, args.host_workers, args.host_batch_workers):
        fast = FastEncoder(model, precision="fp32", **settings)
        if fast.batch_workers:
            fast._pooled = PooledPath(fast)  # closed with the encoder below
            pool = fast._pooled.pool

            def produce(items, p=pool, f=fast):
                return p.batches(items, step=f.width_step, shapes=True)
        else:
            def produce(items, f=fast):
                return (b for _, _, b, _ in f._batches(items) if b is not None)
        list(produce(warm))  # starts the workers
        started = time.perf_counter()
        batches = sum(1 for _ in produce(texts))
        row = {**settings, "batches": batches,
               "chunks_per_s": len(texts) / (time.perf_counter() - started)}
        result["host"].append(row)
        print(json.dumps(row), flush=True)
        _close(fast)
        save()
    result["fast"] = []
    forward_rates: dict = {}
    for settings in variants(args, cuda):
        if args.variants and settings["variant"] not in args.variants:
            continue
        fast = _make(model, settings, args.previous)
        try:
            # The first call starts the tokenising workers and, under --compile, compiles.
            first = _timed(lambda f=fast: f.encode(warm), sync)
        except Exception as error:  # noqa: BLE001 - recorded; the rows before it are kept
            result["fast"].append({**settings, "error": repr(error)})
            save()
            continue
        try:
            row = _measure(fast, settings, texts, expected, first, sync, args, forward_rates)
        except Exception as error:  # noqa: BLE001 - recorded; the rows before it are kept
            row = {**settings, "error": repr(error)}
        result["fast"].append(row)
        print(json.dumps(row), flush=True)
        _close(fast)
        _summarise(result)
        save()
    return result


def _measure(fast, settings: dict, texts: list[str], expected: np.ndarray, first: float,
             sync, args, forward_rates: dict) -> dict:
    """One variant's row: end to end ``--repeats`` times (the median), cosines, forward."""
    out: dict = {}
    runs = [_timed(lambda f=fast, o=out: o.__setitem__("v", f.encode(texts)), sync)
            for _ in range(max(1, args.repeats))]
    seconds = float(np.median(runs))
    reference = len(expected)
    cosine = (out["v"][:reference] * expected).sum(axis=1)
    row = {**settings, "batch_tokens": fast.batch_tokens,
           "forward_used": getattr(fast, "forward", "module"),
           "batch_workers_used": getattr(fast, "batch_workers", 0),
           "chunks_per_s": len(texts) / seconds, "seconds": seconds,
           "runs_chunks_per_s": [len(texts) / r for r in runs],
           "first_call_seconds": first, "min_cosine": float(cosine.min()),
           "mean_cosine": float(cosine.mean()),
           "max_abs_diff": float(np.abs(out["v"][:reference] - expected).max())}
    bert = getattr(fast, "_bert", None)
    row["kernels_used"] = getattr(bert, "kernels", None)
    if getattr(bert, "compile_error", None):
        row["compile_error"] = bert.compile_error
    pooled = getattr(fast, "_pooled", None)
    if pooled is not None and getattr(pooled, "graph_error", None):
        row["graph_error"] = pooled.graph_error
    if args.forward:
        key = (settings["precision"], settings.get("half_weights"), settings.get("compile", False),
               row["forward_used"], row["batch_workers_used"], row["kernels_used"],
               fast.batch_tokens)
        if key not in forward_rates:  # the tokeniser changes no batch: once per key
            forward_rates[key] = _forward_rate(fast, texts[:50_000], args.device, sync)
        row["forward_chunks_per_s"] = forward_rates[key]
        row["fraction_of_forward"] = row["chunks_per_s"] / forward_rates[key]
    return row


def _summarise(result: dict) -> None:
    """The fastest variant whose vectors are those of encode (min cosine >= 0.999)."""
    exact = [row for row in result["fast"] if row.get("min_cosine", 0.0) >= 0.999]
    if not exact:
        return
    row = max(exact, key=lambda r: r["chunks_per_s"])
    result["best"] = row
    result["speedup_vs_st_fp32"] = row["chunks_per_s"] / result["st_fp32"]["chunks_per_s"]
    if "forward_chunks_per_s" in row:
        result["fraction_of_forward"] = row["chunks_per_s"] / row["forward_chunks_per_s"]


def _make(model, settings: dict, previous: Path | None):
    keys = {k: v for k, v in settings.items() if k != "variant"}
    if settings["variant"] != "previous":
        return FastEncoder(model, **keys)
    spec = importlib.util.spec_from_file_location("previous_fast_encode", previous)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FastEncoder(model, **keys)


def _close(fast) -> None:
    close = getattr(fast, "close", None)
    if close is not None:
        close()


def _forward_rate(fast, texts: list[str], device: str, sync) -> float:
    """Chunks/s of the model's forward alone over ``fast``'s batches, already on the device
    (batch workers' batches: the slots, then per batch the copy into the graphs' input
    buffer and one replay, or the fused or module forward on views of it)."""
    import torch

    if getattr(fast, "batch_workers", 0):
        return _pooled_forward_rate(fast, texts, device, sync)
    staged = [{k: v.to(device) for k, v in b.items()}
              for _, _, b, _ in fast._batches(texts) if b is not None]

    def forward_only(batches):
        with torch.inference_mode(), fast._autocast():
            for b in batches:
                fast._forward(b)

    forward_only(staged[:8])
    seconds = _timed(lambda: forward_only(staged), sync)
    return len(texts) / seconds


def _pooled_forward_rate(fast, texts: list[str], device: str, sync) -> float:
    import torch

    path = fast._pooled
    path.record_graphs()
    graphs, tokens = path.graphs, path.pool.tokens
    staged = [(torch.from_numpy(b.slot.copy()).to(device), b.shape_rows, b.width, b.dense)
              for b in path.pool.batches(texts, step=fast.width_step, shapes=graphs is not None)]

    def forward_only(batches):
        with torch.no_grad(), fast._autocast_for_forward():
            for slot, rows, width, dense in batches:
                if graphs is not None:
                    graphs.inputs.copy_(slot)
                    graphs(rows, width, dense)
                else:
                    fast._unit_rows(slot[: rows * width].view(rows, width),
                                    slot[tokens : tokens + rows], dense)

    forward_only(staged[:8])
    seconds = _timed(lambda: forward_only(staged), sync)
    return len(texts) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="sentence-transformers folder [the packaged default model]")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--texts", help="Parquet file with a 'text' column")
    parser.add_argument("--mine", type=int, default=100_000, help="chunks to mine")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--reference", type=int, default=20_000,
                        help="texts encoded by sentence-transformers (and compared)")
    parser.add_argument("--budget", type=int, default=None,
                        help="padded tokens per forward pass [the device's default]")
    parser.add_argument("--workers", type=int, default=None,
                        help="tokenising processes of the pool variants [one per core but one]")
    parser.add_argument("--previous", type=Path,
                        help="an earlier encoders/fast_encode.py to measure first")
    parser.add_argument("--compile", action="store_true", help="also under torch.compile")
    parser.add_argument("--batch-workers", type=int, default=-1,
                        help="batch workers of the pool-* variants [-1: one per core but one]")
    parser.add_argument("--graph-workers", type=int, nargs="+",
                        help="also pool-graphs (each kernel) with these batch-worker counts")
    parser.add_argument("--host-batch-workers", type=int, nargs="+",
                        help="host rows of batch-worker pools of these sizes (-1: the default)")
    parser.add_argument("--variants", nargs="+", help="run only these fast variants")
    parser.add_argument("--host-workers", type=int, nargs="*",
                        help="host rows for these pool sizes only (0: the default; none "
                             "given: no thread or pool rows)")
    parser.add_argument("--no-st-fp16", dest="st_fp16", action="store_false",
                        help="skip encode on a half copy (saves device time)")
    parser.add_argument("--no-forward", dest="forward", action="store_false",
                        help="skip the forward-only rate of each variant")
    parser.add_argument("--threads", type=int, default=0, help="torch threads [torch's]")
    parser.add_argument("--repeats", type=int, default=1,
                        help="end-to-end runs per variant (the median is the row's rate)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.model is None:
        from encoders.sentence import resolve_model

        args.model = str(resolve_model("all-MiniLM-L6-v2"))
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
