"""A million real vectors: mine text on the GPU machine, embed it there, measure ANN kinds.

A million 384-d vectors (1.5 GB) cannot come back from the GPU machine (16 MiB a file), so
the whole measurement runs there, in two warm calls (the tree, the model and the FAISS
wheel do not fit one transfer). Nothing here needs tree-sitter or the engine's indexes:

    # here, once: the default model (merged) packed into CARRY (a git-ignored .carry-* folder)
    python benchmarks/ann_million.py pack --model code-minilm-v1 --carry CARRY
    # call 1 (carry the default model's packed folder): mine, encode throughput, embed
    python3 benchmarks/ann_million.py unpack --carry CARRY --out M
    python3 benchmarks/ann_million.py mine --work W --target 1001000 --offsets 0 15 ...
    python3 benchmarks/gpu_encode.py --model M --texts W/chunks.parquet --limit 100000 ...
    python3 benchmarks/ann_million.py embed --work W --model M --settings OUT/gpu_encode.json
    # call 2 (carry the faiss-cpu wheel): build every kind on all cores, measure each on 2
    python3 benchmarks/ann_million.py measure-all --work W --json OUT/ann_million.json
    python3 benchmarks/ann_million.py microbench --json OUT/micro.json   # here too

W lives on the GPU machine only while it stays warm (30 s after a call): call 2 must follow
call 1 at once, its command written before call 1 returns.

Chunks and queries: see ``million_data.py`` (the mining and embedding half). Latency is
measured with the doc queries, one query per call, k = 10, in a child process pinned to two
cores; recall@10 against exact search.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from ann_kinds import (  # noqa: E402  (the kinds measured and the arithmetic of their rows)
    BinaryInt8,
    K,
    _cpu_name,
    build_kind,
    extrapolate,
    fixed_bytes,
    kind_files,
    percentiles,
    recall_at,
    rss_bytes,
    save_kind,
    set_params,
)
from million_data import (  # noqa: E402  (mining and embedding; re-exported for the tests)
    QUERIES,
    WINDOW,
    cmd_embed,
    cmd_mine,
    mine,
    short_query,
    split_queries,
)

__all__ = ["WINDOW", "mine", "short_query", "split_queries"]

# Every kind measured: factory string (FAISS's own syntax), then the search settings swept.
KINDS = [
    ("IVF4096,Flat", [{"nprobe": p} for p in (8, 16, 32, 64, 128)]),
    ("Flat", [{}]),
    ("IVF4096,SQ8", [{"nprobe": p} for p in (16, 32, 64)]),
    ("IVF4096,PQ48", [{"nprobe": p} for p in (16, 32, 64)]),
    ("IVF4096,PQ96", [{"nprobe": p} for p in (16, 32, 64)]),
    ("IVF4096,SQ4", [{"nprobe": p} for p in (16, 32, 64)]),
    ("IVF4096,PQ48,Refine(SQ4)", [{"nprobe": 32, "k_factor_rf": f} for f in (4, 16)]),
    ("BFlat,int8", [{"rescore_multiplier": m} for m in (4, 10, 40)]),
    ("HNSW32,Flat", [{"efSearch": e} for e in (16, 32, 64, 128)]),
]
_GRAPH_SECONDS = 100  # an HNSW build of a million is not started with less time left


# ---- building and measuring -----------------------------------------------------------

def measure(args) -> dict:
    """Child process, pinned to the given cores: load one kind, sweep its settings."""
    import faiss

    faiss.omp_set_num_threads(args.threads)
    work = Path(args.work)
    doc = np.load(work / "queries_doc.npy")
    short = np.load(work / "queries_short.npy")
    exact = np.load(work / "exact.npz")
    stem = work / "kinds" / args.stem
    before = rss_bytes()
    index = (BinaryInt8.load(faiss, stem) if args.spec == "BFlat,int8"
             else faiss.read_index(str(stem) + ".faiss"))
    loaded = rss_bytes()
    rows = []
    for params in json.loads(args.params):
        set_params(faiss, index, params)
        # One query per call on one thread: measured here, 2 OpenMP threads made an exact
        # single query 4.5x slower on 2 loaded cores (barriers, no parallel work to share).
        faiss.omp_set_num_threads(1)
        count = min(args.single, len(doc))
        for i in range(min(20, count)):  # warm-up: caches, page faults, thread pools
            index.search(doc[i : i + 1], K)
        times, found = [], []
        for i in range(count):
            started = time.perf_counter()
            _, ids = index.search(doc[i : i + 1], K)
            times.append(time.perf_counter() - started)
            found.append(ids[0])
        faiss.omp_set_num_threads(args.threads)  # batches use the pinned cores
        batch_times = []
        for start in range(0, min(len(doc), 64 * args.batches), 64):
            began = time.perf_counter()
            index.search(doc[start : start + 64], K)
            batch_times.append(time.perf_counter() - began)
        # In slices: the binary kind's rescoring holds k * multiplier int8 rows a query.
        short_ids = np.concatenate([index.search(short[s : s + 64], K)[1]
                                    for s in range(0, len(short), 64)])
        rows.append({"params": params, "single_queries": count, **percentiles(times),
                     "batch64": percentiles(batch_times),
                     "recall_doc": recall_at(np.array(found), exact["doc"][:count]),
                     "recall_short": recall_at(short_ids, exact["short"])})
    return {"spec": args.spec, "rss_before": before, "rss_delta_load": loaded - before,
            "rss_delta_end": rss_bytes() - before, "affinity": sorted(os.sched_getaffinity(0)),
            "threads": args.threads, "single_query_threads": 1, "settings": rows}


def cmd_measure_all(args) -> dict:
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    deadline = time.monotonic() + args.budget
    work = Path(args.work)
    (work / "kinds").mkdir(exist_ok=True)
    vectors = np.load(work / "vectors.npy")
    n, dim = vectors.shape
    flat = faiss.IndexFlatIP(dim)
    flat.add(vectors)
    exact = {c: flat.search(np.load(work / f"queries_{c}.npy"), K)[1] for c in ("doc", "short")}
    np.savez(work / "exact.npz", **exact)
    del flat
    sample = vectors[np.sort(np.random.default_rng(0).choice(n, min(n, args.train), False))]
    result = {"vectors": int(n), "dim": int(dim), "cpu": _cpu_name(), "cores": os.cpu_count(),
              "kinds": []}
    centroids = None
    cores = set(args.cores or sorted(os.sched_getaffinity(0))[:2])
    for spec, sweep in KINDS:
        if args.kinds and spec not in args.kinds:
            continue
        spec = spec.replace("IVF4096", f"IVF{args.nlist}")  # smaller at tiny scale
        left = deadline - time.monotonic()
        if left < 0 or (spec.startswith("HNSW") and left < _GRAPH_SECONDS):
            result["kinds"].append({"spec": spec, "skipped": "out of time"})
            continue
        stem = re.sub(r"[^A-Za-z0-9]+", "_", spec)
        saved = kind_files(work / "kinds" / stem, spec)
        if args.reuse and all(p.is_file() for p in saved):  # measure again, build nothing
            build_seconds, file_bytes = None, sum(p.stat().st_size for p in saved)
        else:
            started = time.perf_counter()
            index = build_kind(faiss, spec, vectors, sample, centroids)
            build_seconds = time.perf_counter() - started
            if spec.startswith("IVF") and centroids is None:
                quantizer = faiss.extract_index_ivf(index).quantizer
                centroids = quantizer.reconstruct_n(0, quantizer.ntotal)
            file_bytes = save_kind(faiss, index, work / "kinds" / stem)
            del index
        single = args.single if spec != "Flat" else min(args.single, 50)  # ~0.1 s each
        child = [sys.executable, __file__, "measure", "--work", str(work), "--spec", spec,
                 "--stem", stem, "--params", json.dumps(sweep), "--single", str(single),
                 "--batches", str(args.batches if spec != "Flat" else 3),
                 "--threads", str(len(cores))]
        env = {**os.environ, "OMP_NUM_THREADS": str(len(cores)),
               "OPENBLAS_NUM_THREADS": str(len(cores))}
        done = subprocess.run(child, capture_output=True, text=True, env=env, check=False,
                              preexec_fn=lambda: os.sched_setaffinity(0, cores))
        if done.returncode != 0:
            row = {"spec": spec, "error": done.stderr[-2000:]}
        else:
            row = json.loads(done.stdout.strip().splitlines()[-1])
            row.update(extrapolate(file_bytes, row["rss_delta_load"], n,
                                   fixed_bytes(spec, dim)))
        row.update({"build_seconds": build_seconds, "file_bytes": file_bytes})
        result["kinds"].append(row)
        if args.json:  # written after each kind: a call cut short still brings these back
            Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps({k: row.get(k) for k in ("spec", "build_seconds", "file_bytes")}),
              flush=True)
    return result


# ---- the CPU reference ----------------------------------------------------------------

def cmd_microbench(args) -> dict:
    """Exact Flat search, one thread: 1,000 single queries over 100k seeded random 384-d
    unit vectors. The same fixed work on both machines states their cores' relative speed."""
    import faiss

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    base = rng.standard_normal((args.n, 384), dtype=np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = rng.standard_normal((args.queries, 384), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(384)
    index.add(base)
    rounds = []
    for _ in range(args.rounds):
        times = []
        for i in range(len(queries)):
            started = time.perf_counter()
            index.search(queries[i : i + 1], K)
            times.append(time.perf_counter() - started)
        rounds.append(percentiles(times))
    return {"cpu": _cpu_name(), "cores": os.cpu_count(), "n": args.n, "queries": args.queries,
            "rounds": rounds, "median_p50_ms": float(np.median([r["p50_ms"] for r in rounds])),
            "load_average": os.getloadavg()}


def pack_model(source: Path, carry: Path) -> dict:
    """``source`` (a sentence-transformers folder) as ``unpack`` reads it: ``carry/base`` with
    the word embeddings in int8 (a float scale a row), every other float weight in float16,
    ``model.safetensors`` compressed (``model.safetensors.xz``), the other files as they are
    (code-minilm-v1: 31 MB)."""
    import lzma
    import shutil

    from safetensors.numpy import load_file, save_file

    base = carry / "base"
    shutil.rmtree(carry, ignore_errors=True)
    shutil.copytree(source, base, ignore=shutil.ignore_patterns(
        "model.safetensors", "__pycache__", "*.py"))
    packed = {}
    for name, value in load_file(str(source / "model.safetensors")).items():
        if name.endswith("embeddings.word_embeddings.weight"):
            scale = np.abs(value).max(axis=1, keepdims=True) / 127.0
            packed[name + "@int8"] = np.clip(np.rint(value / scale), -127, 127).astype(np.int8)
            packed[name + "@scale"] = scale.astype(np.float32)
        else:
            packed[name] = value.astype(np.float16) if value.dtype == np.float32 else value
    plain = base / "model.safetensors"
    save_file(packed, str(plain))
    # The strongest preset: what the call may carry is 64 MiB, the working tree included.
    with open(plain, "rb") as data, lzma.open(plain.with_name("model.safetensors.xz"), "wb",
                                              preset=9 | lzma.PRESET_EXTREME) as sink:
        shutil.copyfileobj(data, sink)
    plain.unlink()
    return {"carry_bytes": sum(p.stat().st_size for p in carry.rglob("*") if p.is_file())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("mine")
    p.add_argument("--work", required=True)
    p.add_argument("--target", type=int, default=1_001_000)
    p.add_argument("--queries", type=int, default=QUERIES)
    p.add_argument("--roots", nargs="*")
    p.add_argument("--processes", type=int)
    p.add_argument("--seconds", type=float, help="stop mining after this long")
    p.add_argument("--offsets", type=int, nargs="+", default=[0],
                   help="window starts, in passes: 0 15 fills up with shifted windows")
    p = sub.add_parser("embed")
    p.add_argument("--work", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--settings", help="gpu_encode.py's result: its fastest exact variant")
    p = sub.add_parser("pack", help="a model folder packed to carry (int8 word embeddings, "
                       "float16 for the rest, xz)")
    p.add_argument("--model", required=True, help="a model name or folder")
    p.add_argument("--carry", required=True)
    p = sub.add_parser("unpack", help="the packed model folder (int8 word embeddings, xz)")
    p.add_argument("--carry", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("measure-all")
    p.add_argument("--work", required=True)
    p.add_argument("--train", type=int, default=200_000)
    p.add_argument("--single", type=int, default=QUERIES)
    p.add_argument("--batches", type=int, default=15)
    p.add_argument("--cores", type=int, nargs="+", help="[the first two this process may use]")
    p.add_argument("--nlist", type=int, default=4096, help="IVF lists of the IVF kinds")
    p.add_argument("--kinds", nargs="*")
    p.add_argument("--budget", type=float, default=480, help="seconds before kinds are skipped")
    p.add_argument("--reuse", action="store_true", help="measure kinds already saved again")
    p = sub.add_parser("measure")
    for name in ("--work", "--spec", "--stem", "--params"):
        p.add_argument(name, required=True)
    p.add_argument("--single", type=int, default=QUERIES)
    p.add_argument("--batches", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p = sub.add_parser("microbench")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=1)
    for p in sub.choices.values():
        p.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.command == "pack":
        from encoders.models import resolve_model

        print(json.dumps(pack_model(resolve_model(args.model), Path(args.carry))))
        return
    if args.command == "unpack":
        from gpu_code_encoder import _unpack_base

        _unpack_base(Path(args.carry), Path(args.out))
        return
    run = {"mine": cmd_mine, "embed": cmd_embed, "measure-all": cmd_measure_all,
           "measure": measure, "microbench": cmd_microbench}[args.command]
    result = run(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
