"""Indexing and query cost on real source trees.

For each tree: files, chunks, chunking throughput, encoding throughput, index bytes, peak
resident memory, and query latency p50/p95 per search mode. Each tree is indexed in its own
child process so that peak memory is that tree's alone.

    python benchmarks/index_speed.py                       # this repository + transformers
    python benchmarks/index_speed.py PATH [PATH ...] [--max-files N] [--device cuda]
    python benchmarks/index_speed.py --json results.json

--max-files copies the first N files (in walk order) to a temporary tree, for trees whose
full index would take hours to embed on a CPU.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

QUERIES = [
    "load model weights from a file", "tokenize input text", "compute attention scores",
    "parse command line arguments", "write the index to disk atomically",
    "retry on failure", "cache results", "read configuration", "split text into chunks",
    "normalize vectors", "handle missing files", "save checkpoint", "batch inputs",
    "convert tensor to numpy", "log a warning", "validate arguments", "merge two dictionaries",
    "sort by score", "download progress bar", "error when file is corrupt",
]


def _peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _subset(root: Path, max_files: int, workdir: Path) -> Path:
    from chunking.walker import walk

    target = workdir / root.name
    for file in walk(root).files[:max_files]:
        dest = target / file.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / file.path, dest)
    return target


def _measure(root: str, max_files: int | None, device: str | None, queue) -> None:
    import retriever
    from encoders.sentence import SentenceTransformerEncoder

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(root)
        if max_files:
            tree = _subset(tree, max_files, Path(tmp))
        encoder = SentenceTransformerEncoder(device=device)
        encoder.encode_documents(["warm up"])  # model load is not indexing time
        t0 = time.perf_counter()
        index = retriever.index(tree, index_dir=Path(tmp) / "index", encoder=encoder,
                                force=True)
        total = time.perf_counter() - t0
        report = index.last_build
        stage_time = report.timings
        latency = {}
        for mode in ("lexical", "dense", "hybrid"):
            index.search(QUERIES[0], k=10, mode=mode)  # warm
            times = []
            for query in QUERIES * 3:
                q0 = time.perf_counter()
                index.search(query, k=10, mode=mode)
                times.append((time.perf_counter() - q0) * 1000)
            times.sort()
            latency[mode] = {"p50_ms": statistics.median(times),
                             "p95_ms": times[int(0.95 * (len(times) - 1))]}
        queue.put({
            "tree": root, "max_files": max_files, "device": device or "cpu",
            "files": report.files, "chunks": report.chunks, "skipped": len(report.skipped),
            "build_s": total,
            "chunk_files_per_s": report.files / stage_time.get("chunk", float("nan")),
            "embed_chunks_per_s": report.chunks / stage_time.get("embed", float("nan")),
            "index_bytes": index.info()["bytes"],
            "peak_rss_mib": _peak_rss_mib(),
            "latency": latency,
        })


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--max-files", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    paths = args.paths
    if not paths:
        import transformers

        paths = [Path(__file__).resolve().parents[1], Path(transformers.__file__).parent]
    ctx = multiprocessing.get_context("spawn")
    results = []
    for path in paths:
        queue = ctx.Queue()
        child = ctx.Process(target=_measure,
                            args=(str(path), args.max_files, args.device, queue))
        child.start()
        result = queue.get()
        child.join()
        results.append(result)
        lat = result["latency"]
        print(
            f"{result['tree']} (max_files={result['max_files']}, {result['device']}): "
            f"{result['files']} files, {result['chunks']} chunks, build {result['build_s']:.1f}s, "
            f"chunking {result['chunk_files_per_s']:.0f} files/s, "
            f"encoding {result['embed_chunks_per_s']:.1f} chunks/s, "
            f"index {result['index_bytes'] / 2**20:.1f} MiB, peak RSS "
            f"{result['peak_rss_mib']:.0f} MiB, latency p50/p95 ms: "
            + ", ".join(f"{m} {v['p50_ms']:.1f}/{v['p95_ms']:.1f}" for m, v in lat.items()),
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
