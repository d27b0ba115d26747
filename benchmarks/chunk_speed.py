"""Build speed over the semble trees (lexical-only or fast tier), peak memory in one process,
and a check that the chunk tables equal reference builds row for row.

usage:
    python benchmarks/chunk_speed.py --trees ../bench/semble-trees [--workers N|auto] \
        [--tier lexical|fast] [--reference ../bench/rank-index] [--repo NAME ...] \
        [--out FILE.json]

Every benchmark tree (its ``benchmark_root``, as ``ranking_eval.open_repos`` indexes it) is
built (``--tier lexical``: BM25, symbols and the chunk table; ``fast``: also the shipped static
model's vectors; no vector cache) into a scratch folder, one after the other in this one
process, so the peak RSS printed at the end is what indexing all of them in one process costs. With
``--reference`` (a folder of ``<repo>/`` indexes, e.g. those ``ranking_eval.py`` keeps), each
new ``chunks.parquet`` is compared with the reference's: the same rows in the same order with
the same ids, texts and text hashes (the shared vector cache is keyed by those hashes, so a
faster chunker must not change them). Exit status 1 when any table differs.

``--chunk-only`` instead reads and chunks every file of the trees in this process without
building anything and prints CPU and wall seconds and the peak RSS; ``--profile`` does the
same under cProfile and prints where the time goes.

``--latency`` instead takes the repository of median size (bytes of files; or the one
``--repo`` names) and measures the fast tier's cost to a new user: the first answer from a
cold process (interpreter start, imports, static model load, fast-tier build of the tree with
no index, one search, exit; fresh copy of the tree each run), then the p50/p95 of single
``Index.search`` calls (k = 10, default mode and pipeline) over the repository's benchmark
queries on that index.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from locations import semble_dir  # noqa: E402
from run_semble import LEFT_OUT  # noqa: E402

import retriever  # noqa: E402
from eval.repos import load_repo_benchmark  # noqa: E402
from indexing.layout import CHUNKS  # noqa: E402
from indexing.store import current_generation  # noqa: E402
from indexing.table import read_table  # noqa: E402


def benchmark_roots(trees: Path, annotations: Path, only: list[str] | None) -> dict[str, Path]:
    """``{repo: folder indexed}`` for the scorable repositories present under ``trees``."""
    queries, specs = load_repo_benchmark(annotations)
    names = sorted({q.repo for q in queries} - set(LEFT_OUT))
    roots = {}
    for name in names:
        if only and name not in only:
            continue
        sub = specs[name].benchmark_root if name in specs else None
        root = trees / name / sub if sub else trees / name
        if root.is_dir():
            roots[name] = root
    return roots


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (chunking workers): on a shared
    machine it varies far less with the load than wall time does."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def same_table(built: Path, reference: Path) -> str | None:
    """None when the two chunk tables hold the same rows in the same order, else a summary."""
    new = read_table(built / CHUNKS)
    old = read_table(reference / CHUNKS)
    if new.equals(old):
        return None
    if new.num_rows != old.num_rows:
        return f"{new.num_rows} rows, reference {old.num_rows}"
    for column in old.column_names:
        a, b = new.column(column).to_pylist(), old.column(column).to_pylist()
        for row, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return f"column {column} differs first at row {row}"
    return "schemas differ"


def build_all(roots: dict[str, Path], workers, reference: Path | None, tier: str) -> dict:
    rows, failures = {}, {}
    # Passed only when given, so the script also measures engines from before the option.
    options = {} if workers is None else {"workers": workers}
    with tempfile.TemporaryDirectory() as scratch:
        for name, root in roots.items():
            index_dir = Path(scratch) / name
            start, cpu = time.perf_counter(), cpu_seconds()
            index = retriever.index(root, index_dir=index_dir, tier=tier, cache=False,
                                    **options)
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
            report = index.last_build
            row = {"seconds": seconds, "cpu_seconds": cpu, "files": report.files,
                   "chunks": report.chunks,
                   "timings": report.timings, "notes": len(report.warnings),
                   "rss_mib": peak_rss_mib()}
            if reference is not None:
                problem = same_table(current_generation(index_dir),
                                     current_generation(reference / name))
                row["identical"] = problem is None
                if problem:
                    failures[name] = problem
            rows[name] = row
            print(f"{name:20} {report.files:6d} files {report.chunks:7d} chunks "
                  f"{seconds:6.2f} s (cpu {cpu:6.2f})  "
                  f"chunk {report.timings.get('chunk', 0):5.2f} s  "
                  f"embed {report.timings.get('embed', 0):5.2f} s  "
                  f"index {report.timings.get('index', 0):5.2f} s  "
                  f"peak {row['rss_mib']:6.0f} MiB"
                  + ("" if reference is None else
                     ("  same" if name not in failures else f"  DIFFERS: {failures[name]}")),
                  flush=True)
            del index
    return {"per_repo": rows, "failures": failures}


def chunk_only(roots: dict[str, Path], profiled: bool) -> dict:
    """Read and chunk every file of the trees in this process (no index): CPU, wall, peak."""
    from chunking import CastChunker, read_source, walk

    chunker = CastChunker()
    files = [f for root in roots.values() for f in walk(root).files]
    profiler = cProfile.Profile() if profiled else None
    start, cpu = time.perf_counter(), cpu_seconds()
    if profiler is not None:
        profiler.enable()
    count = 0
    for file in files:
        try:
            source = read_source(file)
        except (OSError, UnicodeError, retriever.RetrieverError):
            continue
        count += sum(1 for _ in chunker.chunk(file.path, source))
    if profiler is not None:
        profiler.disable()
    result = {"files": len(files), "chunks": count, "cpu_seconds": cpu_seconds() - cpu,
              "wall_seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib()}
    print(f"{len(files)} files, {count} chunks, CPU {result['cpu_seconds']:.1f} s, wall "
          f"{result['wall_seconds']:.1f} s{' (profiled)' if profiled else ''}, peak "
          f"{result['peak_rss_mib']:.0f} MiB")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    return result


COLD = """
import sys, time, retriever
index = retriever.index(sys.argv[1], tier="fast", cache=False, workers=None)
hits = index.search(sys.argv[2], k=10)
print(len(hits))
"""


def median_repo(roots: dict[str, Path]) -> str:
    from chunking import walk

    sizes = {name: sum(f.size for f in walk(root).files) for name, root in roots.items()}
    ordered = sorted(sizes, key=lambda name: (sizes[name], name))
    return ordered[(len(ordered) - 1) // 2]


def latency(roots: dict[str, Path], annotations: Path, runs: int) -> dict:
    name = median_repo(roots) if len(roots) > 1 else next(iter(roots))
    queries = [q.query for q in load_repo_benchmark(annotations)[0] if q.repo == name]
    cold = []
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(runs):
            tree = Path(scratch) / f"tree-{run}"
            shutil.copytree(roots[name], tree, ignore=shutil.ignore_patterns(".retriever"))
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", COLD, str(tree), queries[0]], check=True,
                           capture_output=True)
            cold.append(time.perf_counter() - start)
        index = retriever.index(Path(scratch) / "tree-0", tier="fast", cache=False)
        index.search(queries[0], k=10)  # warm
        times = []
        for query in queries * 3:
            start = time.perf_counter()
            index.search(query, k=10)
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    result = {"repo": name, "chunks": len(index), "queries": len(queries),
              "cold_first_answer_s": statistics.median(cold), "cold_runs_s": cold,
              "query_p50_ms": statistics.median(times),
              "query_p95_ms": times[int(0.95 * (len(times) - 1))]}
    print(f"{name}: {len(index)} chunks; cold first answer {result['cold_first_answer_s']:.2f} s "
          f"(median of {runs}: {', '.join(f'{s:.2f}' for s in cold)}); query p50 "
          f"{result['query_p50_ms']:.2f} ms, p95 {result['query_p95_ms']:.2f} ms "
          f"({len(times)} calls)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=Path, required=True, help="export.py output folder")
    parser.add_argument("--annotations", type=Path, default=None)
    parser.add_argument("--reference", type=Path, default=None,
                        help="folder of <repo>/ indexes whose chunk tables must be matched")
    parser.add_argument("--workers", default="auto", help="chunking processes, or auto")
    parser.add_argument("--tier", default="lexical", choices=["lexical", "fast"],
                        help="what to build: BM25 only, or BM25 and the static model's vectors")
    parser.add_argument("--repo", action="append", default=None, help="only these (repeatable)")
    parser.add_argument("--chunk-only", action="store_true", help="read and chunk only")
    parser.add_argument("--profile", action="store_true", help="--chunk-only under cProfile")
    parser.add_argument("--latency", action="store_true",
                        help="cold first answer and query p50 on the median repository")
    parser.add_argument("--runs", type=int, default=5, help="cold runs for --latency")
    parser.add_argument("--out", type=Path, default=None, help="JSON results")
    args = parser.parse_args()
    annotations = args.annotations or semble_dir() / "annotations"
    roots = benchmark_roots(args.trees, annotations, args.repo)
    if args.profile or args.chunk_only:
        result = chunk_only(roots, args.profile)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        return
    if args.latency:
        result = latency(roots, annotations, args.runs)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        return
    workers = None if args.workers == "auto" else int(args.workers)
    start = time.perf_counter()
    result = build_all(roots, workers, args.reference, args.tier)
    total = sum(r["seconds"] for r in result["per_repo"].values())
    cpu = sum(r["cpu_seconds"] for r in result["per_repo"].values())
    stages = {stage: sum(r["timings"].get(stage, 0.0) for r in result["per_repo"].values())
              for stage in ("chunk", "embed", "index")}
    result.update({"repos": len(roots), "workers": args.workers, "tier": args.tier,
                   "build_seconds_sum": total, "build_cpu_seconds_sum": cpu,
                   "stage_seconds_sum": stages,
                   "wall_seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib()})
    print(f"{len(roots)} repositories, {args.tier}, workers {args.workers}: build {total:.1f} s "
          f"(cpu {cpu:.1f} s; sum; chunk {stages['chunk']:.1f}, embed {stages['embed']:.1f}, index "
          f"{stages['index']:.1f}), "
          f"peak RSS {result['peak_rss_mib']:.0f} MiB, "
          f"{len(result['failures'])} chunk tables differ")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    sys.exit(1 if result["failures"] else 0)


if __name__ == "__main__":
    main()
