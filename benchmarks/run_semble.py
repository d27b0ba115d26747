"""Run the semble repository benchmark with the engine and write results under benchmarks/results/.

usage:
    python benchmarks/run_semble.py --trees ../bench/semble-trees --modes lexical
    python benchmarks/run_semble.py --trees ../bench/semble-trees --modes dense,hybrid \
        --index-root ../bench/semble-index

The trees come from the shared benchmark's export.py (never from this repository). The
annotations are read from ``--annotations``, else ``$DENSE_RETRIEVER_DATA/benchmarks/semble``,
else ``../shared/benchmarks/semble`` beside the repository (see benchmarks/README.md). Repositories
run smallest first (bytes under their benchmark_root), and the JSON results are rewritten after
every repository, so an interrupted run still leaves numbers for the repositories it finished;
each JSON lists them (``per_repo``) and the ones absent (``missing``, ``not_run``).
jackson-databind and messagepack-csharp are left out (their mirrors predate the annotated
layout), and zig was too large to mirror.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from locations import semble_dir  # noqa: E402
from torch_threads import add_threads_option, apply_threads  # noqa: E402

from eval.report import write_json  # noqa: E402
from eval.runner import parse_modes, run_repo_benchmark  # noqa: E402

LEFT_OUT = {
    "jackson-databind": "mirror predates the annotated layout",
    "messagepack-csharp": "mirror predates the annotated layout",
    "zig": "too large to mirror",
}


def tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=Path, required=True, help="export.py output folder")
    parser.add_argument(
        "--annotations", type=Path, default=None, help="semble annotations (repos.json beside)"
    )
    parser.add_argument("--modes", default="all", help="comma list of modes, or all")
    parser.add_argument("--model", default=None, help="encoder model (package name or folder)")
    parser.add_argument(
        "--index-root",
        type=Path,
        default=None,
        help="keep indexes here (reruns reuse vectors); default temporary",
    )
    parser.add_argument("--repo", action="append", default=None, help="only these (repeatable)")
    parser.add_argument("--latency-runs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "semble")
    parser.add_argument("--tag", default=None, help="result file prefix (default: the modes)")
    add_threads_option(parser)
    args = parser.parse_args()
    apply_threads(args)
    annotations = args.annotations or semble_dir() / "annotations"

    modes = parse_modes(args.modes)
    specs = {r["name"]: r for r in json.loads((annotations.parent / "repos.json").read_text())}
    names = [n for n in (args.repo or specs) if n not in LEFT_OUT]
    present = [n for n in names if (args.trees / n).is_dir()]
    sizes = {}
    for name in present:
        sub = specs[name].get("benchmark_root")
        sizes[name] = tree_bytes(args.trees / name / sub if sub else args.trees / name)
    order = sorted(present, key=lambda n: sizes[n])
    revisions = {}
    for name in order:
        rev = args.trees / name / ".revision"
        revisions[name] = rev.read_text().strip() if rev.is_file() else None
    tag = args.tag or "-".join(modes)
    started = time.time()

    def write(name: str, partial: dict) -> None:
        done = list(next(iter(partial.values())).per_repo_cost)
        for mode, result in partial.items():
            path = write_json(result, args.out / f"{tag}.{mode}.json")
            data = json.loads(path.read_text())
            data["protocol"] = {
                "repos_done": done,
                "not_run": [n for n in order if n not in done],
                "left_out": LEFT_OUT,
                "not_exported": [n for n in names if n not in present],
                "tree_revisions": {n: revisions[n] for n in done},
                "tree_bytes": {n: sizes[n] for n in done},
                "model": args.model or "default (all-MiniLM-L6-v2)",
                "wall_seconds_so_far": round(time.time() - started, 1),
                "torch_threads": args.threads,
            }
            path.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
        print(
            f"[{time.strftime('%H:%M:%S')}] {name} done ({len(done)}/{len(order)}): "
            + ", ".join(f"{m} {r.scores.mean:.4f}" for m, r in partial.items()),
            flush=True,
        )

    run_repo_benchmark(
        annotations,
        args.trees,
        encoder_config={"model": args.model} if args.model else None,
        modes=modes,
        repos=order,
        index_root=args.index_root,
        latency_runs=args.latency_runs,
        on_repo=write,
    )


if __name__ == "__main__":
    main()
