"""Lexical-only build speed over the semble trees, peak memory in one process, and a check
that the chunk tables equal reference builds row for row.

usage:
    python benchmarks/chunk_speed.py --trees ../bench/semble-trees [--workers N|auto] \
        [--reference ../bench/rank-index] [--repo NAME ...] [--out FILE.json]

Every benchmark tree (its ``benchmark_root``, as ``ranking_eval.open_repos`` indexes it) is
built lexical-only into a scratch folder, one after the other in this one process, so the
peak RSS printed at the end is what indexing all of them in one process costs. With
``--reference`` (a folder of ``<repo>/`` indexes, e.g. those ``ranking_eval.py`` keeps), each
new ``chunks.parquet`` is compared with the reference's: the same rows in the same order with
the same ids, texts and text hashes (the shared vector cache is keyed by those hashes, so a
faster chunker must not change them). Exit status 1 when any table differs.

``--profile`` instead chunks every file of the trees without building (reading and chunking
only) under cProfile and prints where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
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


def build_all(roots: dict[str, Path], workers, reference: Path | None) -> dict:
    rows, failures = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, root in roots.items():
            index_dir = Path(scratch) / name
            start = time.perf_counter()
            index = retriever.index(root, index_dir=index_dir, lexical_only=True, cache=False,
                                    workers=workers)
            seconds = time.perf_counter() - start
            report = index.last_build
            row = {"seconds": seconds, "files": report.files, "chunks": report.chunks,
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
                  f"{seconds:6.2f} s  chunk {report.timings.get('chunk', 0):5.2f} s  "
                  f"index {report.timings.get('index', 0):5.2f} s  "
                  f"peak {row['rss_mib']:6.0f} MiB"
                  + ("" if reference is None else
                     ("  same" if name not in failures else f"  DIFFERS: {failures[name]}")),
                  flush=True)
            del index
    return {"per_repo": rows, "failures": failures}


def profile(roots: dict[str, Path]) -> None:
    from chunking import CastChunker, read_source, walk

    chunker = CastChunker()
    files = [f for root in roots.values() for f in walk(root).files]
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    count = 0
    for file in files:
        try:
            source = read_source(file)
        except (OSError, UnicodeError, retriever.RetrieverError):
            continue
        count += len(chunker.chunk_noted(file.path, source)[0])
    profiler.disable()
    print(f"{len(files)} files, {count} chunks, {time.perf_counter() - start:.2f} s "
          f"(profiled), peak {peak_rss_mib():.0f} MiB")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=Path, required=True, help="export.py output folder")
    parser.add_argument("--annotations", type=Path, default=None)
    parser.add_argument("--reference", type=Path, default=None,
                        help="folder of <repo>/ indexes whose chunk tables must be matched")
    parser.add_argument("--workers", default="auto", help="chunking processes, or auto")
    parser.add_argument("--repo", action="append", default=None, help="only these (repeatable)")
    parser.add_argument("--profile", action="store_true", help="cProfile chunking only")
    parser.add_argument("--out", type=Path, default=None, help="JSON results")
    args = parser.parse_args()
    roots = benchmark_roots(args.trees, args.annotations or semble_dir() / "annotations",
                            args.repo)
    if args.profile:
        profile(roots)
        return
    workers = None if args.workers == "auto" else int(args.workers)
    start = time.perf_counter()
    result = build_all(roots, workers, args.reference)
    total = sum(r["seconds"] for r in result["per_repo"].values())
    result.update({"repos": len(roots), "workers": args.workers, "build_seconds_sum": total,
                   "wall_seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib()})
    print(f"{len(roots)} repositories, workers {args.workers}: build {total:.1f} s (sum), "
          f"peak RSS {result['peak_rss_mib']:.0f} MiB, "
          f"{len(result['failures'])} chunk tables differ")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    sys.exit(1 if result["failures"] else 0)


if __name__ == "__main__":
    main()
