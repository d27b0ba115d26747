"""Query latency of single ``Index.search`` calls, this tree against an older commit, in one run.

On a shared, loaded machine an absolute p50 says as much about the neighbours as about the
code, so this script times two versions of the engine side by side under the same load: the
working tree (or ``--new REF``) and ``--baseline REF``, each exported with ``git archive``
into a temporary folder (nothing in the repository is touched). Each version runs in a
worker process of its own, pinned to one core shared by both (``--cpu``), that opens the
same index read-only; the parent sends the same queries to both, one at a time, alternating
which worker goes first, and each worker times its own ``Index.search`` call (k = 10, the
default pipeline unless ``--pipeline``). It reports p50 and p95 per version, the ratio of the
p50s and the median of the per-query ratios, the p50 of each worker's CPU time per call
(steadier than wall time under load), the load average before and after, and whether both
versions returned the same top 10 (chunk ids, lines, scores and relevances, compared
exactly) for every query.

Queries: the repository's own benchmark queries first, then (``--queries N``) the other
repositories' queries, in a fixed order, up to N distinct ones: a query is text, so any of them
exercises the whole path, and more distinct queries make the p50 steadier. Pass 1 asks each
query once, new to both processes (the headline p50: no per-query cache helps); later passes
(``--passes``) ask them again and are reported apart.

Examples::

    python benchmarks/query_latency.py --index IDX/abseil-cpp --repo abseil-cpp \\
        --baseline HEAD~3 --queries 200
    python benchmarks/query_latency.py --index IDX/axum --repo axum --mode lexical \\
        --baseline HEAD~3 --queries 0      # the repository's own queries only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
# What a worker needs of an exported commit: the engine's packages.
PACKAGES = ("retriever", "indexing", "encoders", "chunking", "eval")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="index folder (read-only)")
    parser.add_argument("--repo", required=True, help="benchmark repository whose queries go first")
    parser.add_argument("--annotations", type=Path, default=None)
    parser.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "lexical"])
    parser.add_argument("--pipeline", default=None, help="ranking preset (default: the default)")
    parser.add_argument("--baseline", default=None,
                        help="git ref (or a folder holding the packages) to compare with; "
                             "omit to time this tree alone")
    parser.add_argument("--new", default=None,
                        help="git ref (or folder) of the new side (omit: this working tree)")
    parser.add_argument("--queries", type=int, default=0,
                        help="distinct queries in all, the repository's own first "
                             "(0: its own only)")
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--cpu", type=int, default=None,
                        help="the core both workers are pinned to (default: the last one this "
                             "process may use; -1: no pinning)")
    parser.add_argument("--out", type=Path, default=None, help="JSON results")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        serve(args.worker, args.index, args.mode, args.pipeline)
        return
    if args.cpu is None:
        args.cpu = max(os.sched_getaffinity(0))
    queries = benchmark_queries(args.annotations, args.repo, args.queries)
    with tempfile.TemporaryDirectory(prefix="query-latency-") as scratch:
        new = export(args.new, Path(scratch) / "new") if args.new else REPOSITORY
        roots = {"new": new}
        if args.baseline:
            roots = {"old": export(args.baseline, Path(scratch) / "old"), "new": new}
        result = compare(roots, args, queries)
    result["command"] = " ".join(["python", "benchmarks/query_latency.py", *sys.argv[1:]])
    print(json.dumps(result["summary"], indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


def benchmark_queries(annotations: Path | None, repo: str, wanted: int) -> list[str]:
    sys.path.insert(0, str(REPOSITORY))
    sys.path.insert(0, str(HERE))
    from locations import semble_dir

    from eval.repos import load_repo_benchmark

    found = load_repo_benchmark(annotations or semble_dir() / "annotations")[0]
    own = [q.query for q in found if q.repo == repo]
    if not own:
        raise SystemExit(f"No benchmark queries for repository {repo!r}.")
    others = [q.query for q in sorted(found, key=lambda q: (q.repo, q.query)) if q.repo != repo]
    ordered = list(dict.fromkeys(own + (others if wanted > len(own) else [])))
    return ordered[: max(wanted, len(own))]


def export(ref: str, folder: Path) -> Path:
    """The engine's packages at commit ``ref``, extracted under ``folder``; a folder that
    holds them already (an experiment's copy) is used as it is."""
    if (Path(ref) / "retriever" / "__init__.py").is_file():
        return Path(ref).resolve()
    folder.mkdir(parents=True)
    archive = folder.with_suffix(".tar")
    subprocess.run(["git", "-C", str(REPOSITORY), "archive", "--format=tar", "-o",
                    str(archive), ref, *PACKAGES], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder


def compare(roots: dict[str, Path], args, queries: list[str]) -> dict:
    workers = {name: start_worker(root, args) for name, root in roots.items()}
    try:
        load_before = os.getloadavg()
        times: dict[str, dict[int, list[float]]] = {n: {} for n in workers}
        cpu: dict[str, list[float]] = {n: [] for n in workers}
        tops: dict[str, list] = {n: [] for n in workers}
        names = list(workers)
        step = 0
        for number in range(1, args.passes + 1):
            for query in queries:
                # Alternate who goes first, so neither side always runs right after the other.
                order = names if step % 2 == 0 else names[::-1]
                step += 1
                for name in order:
                    answer = ask(workers[name], query)
                    times[name].setdefault(number, []).append(answer["ms"])
                    if number == 1:
                        tops[name].append(answer["top"])
                        cpu[name].append(answer["cpu_ms"])
        load_after = os.getloadavg()
    finally:
        for worker in workers.values():
            worker.stdin.close()
            worker.wait(timeout=60)
    summary: dict = {"queries": len(queries), "mode": args.mode, "passes": args.passes,
                     "cpu": args.cpu,
                     "load_before": [round(x, 2) for x in load_before],
                     "load_after": [round(x, 2) for x in load_after]}
    for name, passes in times.items():
        first = passes[1]
        # CPU time of the worker process: what the code costs, far less moved by the load.
        summary[name] = {"p50_ms": round(statistics.median(first), 3),
                         "p95_ms": round(percentile(first, 0.95), 3),
                         "cpu_p50_ms": round(statistics.median(cpu[name]), 3)}
        later = [t for n, values in passes.items() if n > 1 for t in values]
        if later:
            summary[name]["repeated_p50_ms"] = round(statistics.median(later), 3)
    if "old" in times:
        summary["p50_ratio_new_old"] = round(summary["new"]["p50_ms"] / summary["old"]["p50_ms"], 3)
        # The same query timed on both sides moments apart: steadier under a changing load.
        paired = [n / o for n, o in zip(times["new"][1], times["old"][1], strict=True)]
        summary["median_paired_ratio"] = round(statistics.median(paired), 3)
        same = [a == b for a, b in zip(tops["old"], tops["new"], strict=True)]
        summary["identical_top10"] = f"{sum(same)}/{len(same)}"
        summary["differing_queries"] = [q for q, s in zip(queries, same, strict=True) if not s]
    return {"summary": summary, "times_ms": times, "cpu_ms": cpu}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def start_worker(root: Path, args) -> subprocess.Popen:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(root),
               "--index", str(args.index), "--repo", args.repo, "--mode", args.mode]
    if args.pipeline:
        command += ["--pipeline", args.pipeline]
    # Both workers on one core: otherwise one may sit on a core a neighbour keeps busy and
    # the other on a quieter one, and the ratio measures that (seen: 1.4 for equal code).
    pin = None if args.cpu < 0 else (lambda: os.sched_setaffinity(0, {args.cpu}))
    worker = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, bufsize=1, preexec_fn=pin)
    ready = json.loads(worker.stdout.readline())
    if Path(ready["engine"]).resolve() != (root / "retriever").resolve():
        raise SystemExit(f"The worker for {root} imported the engine from {ready['engine']}.")
    return worker


def ask(worker: subprocess.Popen, query: str) -> dict:
    worker.stdin.write(json.dumps(query) + "\n")
    worker.stdin.flush()
    line = worker.stdout.readline()
    if not line:
        raise SystemExit("A worker stopped; see its error above.")
    return json.loads(line)


def serve(root: Path, index_dir: Path, mode: str, pipeline: str | None) -> None:
    """Worker: import the engine from ``root``, open the index, answer queries from stdin."""
    sys.path.insert(0, str(root))
    import retriever

    index = retriever.open(index_dir)
    options = {"pipeline": pipeline} if pipeline else {}
    # Warm: loads the query encoder, builds the ranking context and the symbol table's
    # lookups (an identifier query), once per process; not what is measured.
    for warm in ("warm up the query path", "WarmUp::query_path"):
        index.search(warm, k=10, mode=mode, **options)
    print(json.dumps({"engine": str(Path(retriever.__file__).parent)}), flush=True)
    for line in sys.stdin:
        query = json.loads(line)
        started, cpu = time.perf_counter(), time.process_time()
        hits = index.search(query, k=10, mode=mode, **options)
        elapsed = (time.perf_counter() - started) * 1000
        cpu = (time.process_time() - cpu) * 1000
        top = [[h.chunk_id, h.path, h.start_line, h.end_line, h.score, h.relevance]
               for h in hits]
        print(json.dumps({"ms": elapsed, "cpu_ms": cpu, "top": top}), flush=True)


if __name__ == "__main__":
    main()
