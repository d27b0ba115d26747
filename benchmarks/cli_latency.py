"""What one CLI call costs.

Warm tree (default): a lexical search that refreshes the index first
(``retriever search Q --mode lexical PATH``) against the same search on the index alone
(``retriever search Q --mode lexical --index DIR``), run in the same command::

    python benchmarks/cli_latency.py [TREE] [--runs 10] [--json benchmarks/results/cli_latency.json]

Each call is a fresh process (interpreter start, imports, the staleness walk, the search,
the output), as a user or an agent runs it. The tree is indexed once first (not timed).

Cold tree (``--cold``): the first answer on a tree with no index, model load included: a
fresh copy of TREE each run, then ``retriever search Q TREE --json`` (which builds the fast
tier first). ``--source DIR`` (repeatable) runs the same calls from other checkouts of the
project (``git archive COMMIT | tar -x -C DIR``), interleaved run by run so that every
checkout sees the same load; for a checkout whose search does not build the fast tier by
itself, the fast answer takes ``retriever index TREE --tier fast`` and then the search (two
processes), both timed. Wall and CPU seconds (user + system of the processes run: on a
shared machine CPU time moves far less with the load) are recorded, and the load average
before and after::

    python benchmarks/cli_latency.py TREE --cold --runs 7 --source ../prev [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
_QUERY = "write the index to disk atomically"
# The CLI of the checkout in the working folder (python -c puts it first on sys.path).
_CLI = [sys.executable, "-c", "from retriever.cli.app import main; main()"]


def _retriever() -> list[str]:
    found = shutil.which("retriever", path=os.path.dirname(sys.executable))
    return [found] if found else _CLI


def _time(command: list[str], runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
    return seconds


def _summary(times: list[float]) -> dict:
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
            "max_s": round(max(times), 3), "runs_s": [round(t, 3) for t in times]}


def _builds_fast_tier(source: Path) -> bool:
    """Whether that checkout's ``search`` builds the fast tier for a tree with no index."""
    probe = "import retriever.api as a; print(hasattr(a, 'SEARCH_TIER'))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=source, capture_output=True,
                          text=True, check=True)
    return done.stdout.strip() == "True"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cold_once(source: Path, tree: Path, query: str,
               one_call: bool) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (of the processes run) and the tier that answered."""
    started, cpu = time.perf_counter(), _children_cpu()
    if not one_call:
        subprocess.run([*_CLI, "index", str(tree), "--tier", "fast", "-q"], cwd=source,
                       check=True, capture_output=True)
    done = subprocess.run([*_CLI, "search", query, str(tree), "--json"], cwd=source,
                          check=True, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    return seconds, cpu, json.loads(done.stdout)["tier"]


def cold(tree: Path, sources: list[Path], runs: int, query: str) -> dict:
    one_call = {source: _builds_fast_tier(source) for source in sources}
    times: dict[Path, list[float]] = {source: [] for source in sources}
    cpus: dict[Path, list[float]] = {source: [] for source in sources}
    tiers: dict[Path, set] = {source: set() for source in sources}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(runs):
            for source in sources:
                copy = Path(scratch) / f"tree-{run}-{len(times[source])}-{sources.index(source)}"
                shutil.copytree(tree, copy, ignore=shutil.ignore_patterns(".retriever"))
                seconds, cpu, tier = _cold_once(source, copy, query, one_call[source])
                times[source].append(seconds)
                cpus[source].append(cpu)
                tiers[source].add(tier)
                shutil.rmtree(copy)
    load_after = os.getloadavg()
    base = statistics.median(times[sources[0]])
    rows = {}
    name = f"{tree.parent.name}/{tree.name}"
    print(f"cold first answer on {name}, query {query!r}, {runs} runs each, load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after")
    print("| checkout | calls | median s | min-max s | CPU s (median) | tier | vs first |")
    print("|---|---|---:|---:|---:|---|---:|")
    for source in sources:
        row = _summary(times[source])
        row.update(calls="search" if one_call[source] else "index --tier fast, then search",
                   tiers=sorted(tiers[source]), cpu_median_s=round(
                       statistics.median(cpus[source]), 3),
                   cpu_runs_s=[round(c, 3) for c in cpus[source]])
        # Named by folder, not path: the results name no path of the machine.
        rows["this checkout" if source == _REPO else source.name] = row
        print(f"| {source.name} | {row['calls']} | {row['median_s']:.2f} | "
              f"{row['min_s']:.2f}-{row['max_s']:.2f} | {row['cpu_median_s']:.2f} | "
              f"{', '.join(row['tiers'])} | "
              f"{row['median_s'] / base:.2f}x |")
    return {"tree": name, "query": query, "load_average_before": load_before,
            "load_average_after": load_after, "checkouts": rows}


def warm(tree_arg: str, runs: int) -> dict:
    cli = _retriever()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(tree_arg, tree, ignore=shutil.ignore_patterns(".retriever", ".git"))
        subprocess.run([*cli, "index", str(tree), "-q"], check=True, capture_output=True)
        search = [*cli, "search", _QUERY, "--mode", "lexical", "-k", "5", "--json"]
        rows = {
            "search PATH (refresh check first)": _time([*search, str(tree)], runs),
            "search --index DIR": _time([*search, "--index", str(tree / ".retriever")], runs),
        }
    base = statistics.median(rows["search --index DIR"])
    print("| call | median s | p90 s | vs --index |")
    print("|---|---|---|---|")
    summary = {}
    for name, times in rows.items():
        median = statistics.median(times)
        p90 = sorted(times)[max(0, int(len(times) * 0.9) - 1)]
        summary[name] = {"median_s": round(median, 3), "p90_s": round(p90, 3),
                         "runs": len(times)}
        print(f"| {name} | {median:.3f} | {p90:.3f} | {median / base:.2f}x |")
    return {"tree": Path(tree_arg).name, "query": _QUERY, "calls": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", nargs="?", default=str(_REPO), help="tree [this repository]")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--cold", action="store_true",
                        help="first answer on a tree with no index (fresh copy each run)")
    parser.add_argument("--source", type=Path, action="append", default=[],
                        help="with --cold: another checkout to time the same way (repeatable)")
    parser.add_argument("--query", default=None, help="with --cold: the query")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if args.cold:
        sources = [_REPO, *(source.resolve() for source in args.source)]
        result = cold(Path(args.tree).resolve(), sources, args.runs, args.query or _QUERY)
    else:
        result = warm(args.tree, args.runs)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
