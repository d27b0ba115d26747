"""Index kinds at scale: build time, bytes, memory, latency, recall, and nDCG on real corpora.

``synthetic``: seeded unit vectors (384-d) drawn around 1,000 cluster centres, as real
embeddings cluster by topic, with queries that are perturbed copies of documents (planted
neighbours), as in ``benchmarks/dense_threshold.py``. For each index spec: build time, bytes
on disk, resident memory after opening (memory-mapped, as a reader opens it) and after the
queries, query latency p50/p95 at batch 1 and batch 64, recall@10 against exact search. Each
spec is built in one child process and queried in another, so memory is its own.

``corpora``: SciFact (train split) and CoSQA (dev) from the shared data folder (see
benchmarks/README.md), embedded once with the default encoder and cached outside the
repository (keyed by corpus, split and the encoder's fingerprint); for each spec the nDCG@10
of dense search as a fraction of exact float search, and the bytes its searchable structure
holds in memory.

    python benchmarks/index_scale.py synthetic --sizes 100000 1000000 [--specs S ...]
    python benchmarks/index_scale.py corpora [--data DIR] [--cache DIR]
    python benchmarks/index_scale.py embed          # only fill the vector cache
    python benchmarks/index_scale.py ray --root TREE --work DIR [--tier fast] [--cpus 2]

``ray``: the same tree built locally (``retriever.index``) and on a local Ray cluster of
``--cpus`` CPUs (``retriever.ray_build.index``), each timed, then compared: the chunk
table, the manifest (but its date) and every vector set must be the same.

Queries run on BENCH_THREADS FAISS threads (default 1); builds use every core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from locations import data_dir, scratch_dir  # noqa: E402

DEFAULT_CACHE = Path(os.environ.get("RETRIEVER_BENCH_CACHE", scratch_dir("cache")))
DEFAULT_DATA = data_dir()
CORPORA = {"scifact": "train", "cosqa": "dev"}
DIM = 384
QUERIES = 200
# spec -> constructor options; "knobs" are per-query settings swept at query time.
SYNTHETIC_SPECS = {
    "Flat": {},
    "HNSW32,Flat": {"knobs": [{"ef_search": 64}, {"ef_search": 128}]},
    "IVF1024,Flat": {"knobs": [{"nprobe": 8}, {"nprobe": 16}, {"nprobe": 32}]},
    "IVF1024,SQ8": {"knobs": [{"nprobe": 8}, {"nprobe": 16}, {"nprobe": 32}]},
    "BFlat": {"rescore": "float", "knobs": [{"rescore_multiplier": 4},
                                            {"rescore_multiplier": 10}]},
    "BIVF1024": {"rescore": "float", "knobs": [{"nprobe": 16, "rescore_multiplier": 10},
                                               {"nprobe": 32, "rescore_multiplier": 10}]},
    "Flat@128": {"spec": "Flat", "dims": 128, "rescore": "float",
                 "knobs": [{"rescore_multiplier": 10}]},
}


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def synthetic(n: int, cache: Path, dim: int = DIM) -> tuple[Path, Path, Path]:
    """(docs.npy, queries.npy, truth.npy) for ``n`` vectors, generated once and cached."""
    stem = cache / f"synthetic-{n}-{dim}"
    docs, queries, truth = (Path(f"{stem}-{part}.npy") for part in ("docs", "queries", "truth"))
    if truth.exists():
        return docs, queries, truth
    cache.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((1000, dim)).astype(np.float32)
    out = np.lib.format.open_memmap(docs, mode="w+", dtype=np.float32, shape=(n, dim))
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        out[start:start + m] = _unit(centres[rng.integers(0, 1000, m)]
                                     + 0.8 * rng.standard_normal((m, dim), dtype=np.float32))
    out.flush()
    picked = rng.integers(0, n, QUERIES)
    q = _unit(out[picked] + 1.2 * rng.standard_normal((QUERIES, dim)) / np.sqrt(dim))
    np.save(queries, q)
    best = np.zeros((QUERIES, 10), dtype=np.int64)
    from indexing.dense import FaissIndex

    best = FaissIndex.build(np.asarray(out), spec="Flat").search(q, 10)[1]
    np.save(truth, best)
    return docs, queries, truth


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _options(name: str) -> tuple[str, dict, list]:
    options = dict(SYNTHETIC_SPECS.get(name, {}))
    knobs = options.pop("knobs", [{}])
    return options.pop("spec", name), options, knobs


def _threads() -> None:
    import faiss

    # One query is fastest on one thread on a busy 2-core machine (OpenMP barriers spin).
    faiss.omp_set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))


def child_build(name: str, docs: Path, out: Path) -> dict:
    import faiss
    from indexing.kinds import index_class, kind_for_spec

    faiss.omp_set_num_threads(os.cpu_count() or 1)

    spec, options, _ = _options(name)
    vectors = np.load(docs, mmap_mode="r")
    cls = index_class(kind_for_spec(spec))
    t0 = time.perf_counter()
    index = cls.build(vectors, spec=spec, **options)
    seconds = time.perf_counter() - t0
    index.save(out)
    size = sum(p.stat().st_size for p in out.iterdir())
    return {"build_s": seconds, "disk_bytes": size}


def child_query(name: str, docs: Path, queries: Path, truth: Path, out: Path) -> dict:
    from indexing.kinds import index_class, kind_for_spec

    _threads()

    spec, options, knobs = _options(name)
    cls = index_class(kind_for_spec(spec))
    q = np.load(queries)
    best = np.load(truth)
    base = _rss_bytes()
    t0 = time.perf_counter()
    vectors = np.load(docs, mmap_mode="r")
    index = cls.load(out, mmap=True, vectors=vectors)
    open_s = time.perf_counter() - t0
    opened = _rss_bytes() - base
    rows = []
    for knob in knobs:
        index.search(q[:8], 10, **knob)  # warm
        single = []
        found = []
        for i in range(len(q)):
            s = time.perf_counter()
            ids = index.search(q[i : i + 1], 10, **knob)[1]
            single.append(time.perf_counter() - s)
            found.append(ids[0])
        batched = []
        for start in range(0, len(q) - 63, 64):
            s = time.perf_counter()
            index.search(q[start : start + 64], 10, **knob)
            batched.append(time.perf_counter() - s)
        overlap = [len(set(t) & set(f)) / 10 for t, f in zip(best, found, strict=True)]
        recall = float(np.mean(overlap))
        rows.append({
            "knobs": knob, "recall@10": recall,
            "b1_p50_ms": 1000 * float(np.percentile(single, 50)),
            "b1_p95_ms": 1000 * float(np.percentile(single, 95)),
            "b64_p50_ms": 1000 * float(np.percentile(batched, 50)),
            "b64_p95_ms": 1000 * float(np.percentile(batched, 95)),
        })
    return {"open_s": open_s, "rss_after_open": opened, "rss_after_queries": _rss_bytes() - base,
            "runs": rows}


def run_synthetic(sizes: list[int], specs: list[str], cache: Path, results: Path | None) -> None:
    print("n, spec, build s, disk MB, open s, RSS open MB, RSS after queries MB, knobs, "
          "recall@10, b1 p50 ms, b1 p95 ms, b64 p50 ms, b64 p95 ms", flush=True)
    report = []
    for n in sizes:
        docs, queries, truth = synthetic(n, cache)
        for name in specs:
            with tempfile.TemporaryDirectory(dir=cache) as tmp:
                out = Path(tmp) / "index"
                args = [sys.executable, __file__, "_child"]
                built = json.loads(subprocess.run(
                    args + ["build", name, str(docs), str(out)],
                    check=True, capture_output=True, text=True).stdout.splitlines()[-1])
                queried = json.loads(subprocess.run(
                    args + ["query", name, str(docs), str(out), str(queries), str(truth)],
                    check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            for row in queried["runs"]:
                print(f"{n}, {name}, {built['build_s']:.1f}, {built['disk_bytes'] / 2**20:.1f}, "
                      f"{queried['open_s']:.3f}, {queried['rss_after_open'] / 2**20:.1f}, "
                      f"{queried['rss_after_queries'] / 2**20:.1f}, {json.dumps(row['knobs'])}, "
                      f"{row['recall@10']:.3f}, {row['b1_p50_ms']:.2f}, {row['b1_p95_ms']:.2f}, "
                      f"{row['b64_p50_ms']:.1f}, {row['b64_p95_ms']:.1f}", flush=True)
            report.append({"n": n, "spec": name, **built, **queried})
    if results:
        results.write_text(json.dumps(report, indent=2))


# --------------------------------------------------------------------------- corpora



def corpus_vectors(name: str, split: str, data: Path, cache: Path):
    """(benchmark, doc ids, doc vectors, query ids, query vectors), embedded once and cached."""
    from chunking import Chunk
    from encoders.sentence import SentenceTransformerEncoder
    from eval.data import load_beir
    from retriever.build import document_text

    bench = load_beir(data / name, split=split)
    encoder = SentenceTransformerEncoder()
    key = f"{name}-{split}-{encoder.fingerprint()[:16]}"
    doc_ids = list(bench.corpus)
    query_ids = list(bench.queries)
    docs_path, queries_path = cache / f"{key}-docs.npy", cache / f"{key}-queries.npy"
    if not docs_path.exists():
        texts = [
            document_text(Chunk(id=d, path=d, language="text", start_line=1, end_line=1,
                                kind="document", symbol=bench.corpus[d].title or None,
                                text=bench.corpus[d].text))
            for d in doc_ids
        ]
        t0 = time.perf_counter()
        vectors = encoder.encode_documents(texts)
        print(f"embedded {len(texts)} {name} docs in {time.perf_counter() - t0:.0f}s", flush=True)
        cache.mkdir(parents=True, exist_ok=True)
        np.save(str(docs_path) + ".tmp.npy", vectors)
        os.replace(str(docs_path) + ".tmp.npy", docs_path)
    if not queries_path.exists():
        vectors = encoder.encode_queries([bench.queries[q] for q in query_ids])
        np.save(str(queries_path) + ".tmp.npy", vectors)
        os.replace(str(queries_path) + ".tmp.npy", queries_path)
    return bench, doc_ids, np.load(docs_path), query_ids, np.load(queries_path)



CORPUS_SPECS = [
    ("Flat", {}),
    ("HNSW32,Flat", {}),
    ("SQ8", {}),
    ("IVF64,Flat", {"nprobe": 8}),
    ("BFlat", {"rescore": None}),
    ("BFlat", {"rescore": "float", "rescore_multiplier": 4}),
    ("BFlat", {"rescore": "float", "rescore_multiplier": 10}),
    ("BFlat", {"rescore": "int8", "rescore_multiplier": 4}),
    ("BFlat", {"rescore": "int8", "rescore_multiplier": 10}),
    ("BHNSW32", {"rescore": "float", "rescore_multiplier": 10}),
    ("Flat", {"dims": 128}),
    ("Flat", {"dims": 128, "rescore": "float", "rescore_multiplier": 10}),
    ("BFlat", {"dims": 256, "rescore": "float", "rescore_multiplier": 10}),
]


def _memory_bytes(index) -> int:
    """Bytes the searchable structure holds in memory (float vectors for rescoring are mapped
    from vectors.npy and not counted)."""
    if hasattr(index, "memory_bytes"):
        return index.memory_bytes()
    import faiss

    return len(faiss.serialize_index(index._index))


def run_corpora(data: Path, cache: Path, names: list[str]) -> None:
    from indexing.kinds import index_class, kind_for_spec

    from eval.metrics import evaluate

    print("corpus, spec, options, nDCG@10, fraction of exact float, memory bytes, "
          "float/this memory", flush=True)
    for name in names:
        split = CORPORA[name]
        bench, doc_ids, docs, query_ids, queries = corpus_vectors(name, split, data, cache)
        exact = None
        float_bytes = None
        for spec, options in CORPUS_SPECS:
            index = index_class(kind_for_spec(spec)).build(docs, spec=spec, **options)
            # k=10: nDCG@10 sees exactly what a top-10 search returns (k * multiplier candidates).
            scores, ids = index.search(queries, 10)
            run = {
                q: {doc_ids[j]: float(s) for j, s in zip(ids[i], scores[i], strict=True)
                    if j >= 0}
                for i, q in enumerate(query_ids)
            }
            ndcg = evaluate(bench.qrels, run, ["ndcg@10"]).mean["ndcg@10"]
            memory = _memory_bytes(index)
            if exact is None:
                exact, float_bytes = ndcg, memory
            print(f"{name}-{split}, {spec}, {json.dumps(options)}, {ndcg:.4f}, "
                  f"{ndcg / exact:.3f}, {memory}, {float_bytes / memory:.1f}", flush=True)


def run_ray(root: Path, work: Path, tier: str, cpus: int, shard_files: int,
            results: Path | None) -> dict:
    import shutil

    import ray

    import retriever
    from retriever import ray_build
    from retriever.generation import Generation

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.perf_counter()
    local = retriever.index(root, index_dir=work / "local", tier=tier, cache=False)
    local_seconds = time.perf_counter() - started
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter()
    built = ray_build.index(root, index_dir=work / "ray", tier=tier, shard_files=shard_files)
    ray_seconds = time.perf_counter() - started
    ray.shutdown()
    a, b = Generation(built.generation), Generation(local.generation)
    manifests = [dict(g.manifest) for g in (a, b)]
    for manifest in manifests:
        manifest.pop("created_at")
    differences = {}
    for entry in a.manifest["encoders"]:
        differences[entry["id"]] = float(np.abs(
            a.vectors(entry["id"]) - b.vectors(entry["id"])).max())
    report = built.last_build
    result = {
        "root": root.name, "tier": tier, "cpus": cpus, "files": report.files,
        "chunks": report.chunks, "shards": report.shards,
        "local_seconds": local_seconds, "ray_seconds": ray_seconds,
        "ray_cluster_seconds": report.timings.get("cluster"),
        "chunk_tables_equal": a.chunk_table().equals(b.chunk_table()),
        "manifests_equal": manifests[0] == manifests[1],
        "max_vector_difference": differences,
    }
    print(json.dumps(result, indent=2))
    if results:
        results.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    synth = sub.add_parser("synthetic")
    synth.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    synth.add_argument("--specs", nargs="+", default=list(SYNTHETIC_SPECS))
    synth.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    synth.add_argument("--json", type=Path, default=None)
    for command in ("corpora", "embed"):
        part = sub.add_parser(command)
        part.add_argument("--data", type=Path, default=DEFAULT_DATA)
        part.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
        part.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=list(CORPORA))
    on_ray = sub.add_parser("ray")
    on_ray.add_argument("--root", type=Path, required=True)
    on_ray.add_argument("--work", type=Path, default=scratch_dir("ray-scale"))
    on_ray.add_argument("--tier", default="fast", choices=["lexical", "fast", "dense", "full"])
    on_ray.add_argument("--cpus", type=int, default=2)
    on_ray.add_argument("--shard-files", type=int, default=64)
    on_ray.add_argument("--json", type=Path, default=None)
    child = sub.add_parser("_child")
    child.add_argument("what", choices=["build", "query"])
    child.add_argument("spec")
    child.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args()
    if args.command == "embed":
        for name, split in CORPORA.items():
            corpus_vectors(name, split, args.data, args.cache)
    elif args.command == "corpora":
        run_corpora(args.data, args.cache, args.corpora)
    elif args.command == "synthetic":
        run_synthetic(args.sizes, args.specs, args.cache, args.json)
    elif args.command == "ray":
        run_ray(args.root, args.work, args.tier, args.cpus, args.shard_files, args.json)
    elif args.what == "build":
        docs, out = args.paths
        print(json.dumps(child_build(args.spec, docs, out)))
    else:
        docs, out, queries, truth = args.paths
        print(json.dumps(child_query(args.spec, docs, queries, truth, out)))


if __name__ == "__main__":
    main()
