"""Where exact search stops paying: Flat vs HNSW32 query latency, build time and recall.

Seeded synthetic unit vectors (384-d, the default model's size) drawn around 1,000 cluster
centres, as real embeddings cluster by topic (isotropic noise would make every neighbour
list a near-tie); queries are perturbed copies of documents. Prints one row per corpus
size; both kinds are timed in the same process.

    python benchmarks/dense_threshold.py [--sizes 10000 25000 50000 100000] [--dim 384]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from indexing.dense import FaissIndex


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 25_000, 50_000, 100_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("n, flat p50 ms, hnsw p50 ms, hnsw build s, hnsw recall@10")
    for n in args.sizes:
        centres = rng.standard_normal((1000, args.dim))
        docs = _unit(centres[rng.integers(0, 1000, n)] + 0.8 * rng.standard_normal((n, args.dim)))
        picked = rng.integers(0, n, args.queries)
        queries = _unit(docs[picked] + 1.2 * rng.standard_normal((args.queries, args.dim))
                        / np.sqrt(args.dim))
        flat = FaissIndex.build(docs, spec="Flat")
        t0 = time.perf_counter()
        hnsw = FaissIndex.build(docs, spec="HNSW32,Flat")
        build = time.perf_counter() - t0
        times = {"flat": [], "hnsw": []}
        hits = 0
        for q in queries:
            for name, index in (("flat", flat), ("hnsw", hnsw)):
                s = time.perf_counter()
                _, ids = index.search(q[None], 10)
                times[name].append((time.perf_counter() - s) * 1000)
                if name == "flat":
                    truth = set(ids[0].tolist())
                else:
                    hits += len(truth & set(ids[0].tolist()))
        print(f"{n}, {statistics.median(times['flat']):.2f}, "
              f"{statistics.median(times['hnsw']):.2f}, {build:.1f}, "
              f"{hits / (10 * args.queries):.3f}", flush=True)


if __name__ == "__main__":
    main()
