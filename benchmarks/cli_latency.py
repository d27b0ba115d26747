"""What one CLI call costs on an unchanged tree: a lexical search that refreshes the index
first (``retriever search Q --mode lexical PATH``) against the same search on the index
alone (``retriever search Q --mode lexical --index DIR``), run in the same command.

    python benchmarks/cli_latency.py [TREE] [--runs 10] [--json benchmarks/results/cli_latency.json]

Each call is a fresh process (interpreter start, imports, the staleness walk, the search,
the output), as a user or an agent runs it. The tree is indexed once first (not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
_QUERY = "write the index to disk atomically"


def _retriever() -> list[str]:
    found = shutil.which("retriever", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "retriever.cli.app"]


def _time(command: list[str], runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", nargs="?", default=str(_REPO), help="tree [this repository]")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    cli = _retriever()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(args.tree, tree, ignore=shutil.ignore_patterns(".retriever", ".git"))
        subprocess.run([*cli, "index", str(tree), "-q"], check=True, capture_output=True)
        search = [*cli, "search", _QUERY, "--mode", "lexical", "-k", "5", "--json"]
        rows = {
            "search PATH (refresh check first)": _time([*search, str(tree)], args.runs),
            "search --index DIR": _time([*search, "--index", str(tree / ".retriever")],
                                        args.runs),
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
    if args.json:
        Path(args.json).write_text(json.dumps({"tree": Path(args.tree).name, "query": _QUERY,
                                               "calls": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
