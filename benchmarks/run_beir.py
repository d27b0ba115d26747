"""Run a BEIR-layout benchmark in every search mode from one index build.

usage:
    python benchmarks/run_beir.py cosqa            # DATA/cosqa, split dev
    python benchmarks/run_beir.py scifact          # split train
    python benchmarks/run_beir.py cranfield        # split test, plus binary nDCG and grade check
    python benchmarks/run_beir.py NAME --folder DIR --split SPLIT   # any BEIR folder

Writes benchmarks/results/beir/NAME.json: one entry per mode (metrics with 95% bootstrap
intervals, cost: shared build time/bytes/RSS and per-mode latency) and per-query nDCG@10.
Runs (TREC files) go to --runs (default ../bench/runs beside the repository), outside the
project. The data is read where it lies: DATA is ``--data``, else ``$DENSE_RETRIEVER_DATA/data``,
else ``../shared/data`` beside the repository (see benchmarks/README.md); nothing is copied.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from locations import data_dir, scratch_dir  # noqa: E402
from torch_threads import add_threads_option, apply_threads  # noqa: E402

from eval.data import load_beir  # noqa: E402
from eval.metrics import bootstrap_ci, evaluate, write_trec  # noqa: E402
from eval.runner import parse_modes, run_benchmark  # noqa: E402

SPLITS = {"cosqa": "dev", "scifact": "train", "cranfield": "test"}


def ranks_by_grade(qrels: dict, run: dict, k: int = 10) -> dict:
    """For each grade: judged pairs, share found in the top k, mean rank when found in the run."""
    table: dict[int, list] = {}
    for qid, docs in qrels.items():
        ranked = [d for d, _ in sorted(run.get(qid, {}).items(), key=lambda x: -x[1])]
        position = {d: i + 1 for i, d in enumerate(ranked)}
        for doc, grade in docs.items():
            table.setdefault(int(grade), []).append(position.get(doc))
    out = {}
    for grade, found in sorted(table.items()):
        hits = [r for r in found if r is not None]
        out[str(grade)] = {
            "pairs": len(found),
            f"in_top{k}": round(sum(1 for r in hits if r <= k) / len(found), 4),
            "mean_rank_when_retrieved": round(sum(hits) / len(hits), 2) if hits else None,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="cosqa, scifact, cranfield, or a label with --folder")
    parser.add_argument("--folder", type=Path, default=None, help="BEIR folder (default DATA/NAME)")
    parser.add_argument(
        "--data", type=Path, default=None, help="folder of BEIR folders (default: see above)"
    )
    parser.add_argument("--split", default=None)
    parser.add_argument("--modes", default="all")
    parser.add_argument("--model", default=None, help="encoder model (package name or folder)")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "beir")
    parser.add_argument("--runs", type=Path, default=None, help="TREC run files (../bench/runs)")
    add_threads_option(parser)
    args = parser.parse_args()
    apply_threads(args)

    folder = args.folder or (args.data or data_dir()) / args.name
    runs = args.runs or scratch_dir("runs")
    split = args.split or SPLITS.get(args.name, "test")
    bench = load_beir(folder, split)
    bench.name = args.name
    started = time.time()
    results = run_benchmark(
        bench,
        split=split,
        modes=parse_modes(args.modes),
        encoder_config={"model": args.model} if args.model else None,
        k=args.k,
    )
    report = {
        "dataset": args.name,
        "folder": str(folder),
        "split": split,
        "queries": len(bench.queries),
        "corpus": len(bench.corpus),
        "model": args.model or "default (all-MiniLM-L6-v2)",
        "wall_seconds": round(time.time() - started, 1),
        "torch_threads": args.threads,
        "modes": {},
    }
    grades = sorted({g for docs in bench.qrels.values() for g in docs.values()})
    graded = any(g > 1 for g in grades)
    if graded:
        report["grades_in_qrels"] = grades
    binary = {q: {d: 1 for d, g in docs.items() if g > 0} for q, docs in bench.qrels.items()}
    for mode, result in results.items():
        entry = result.to_dict()
        entry["per_query"] = {"ndcg@10": result.per_query["ndcg@10"]}
        if graded:
            scored = evaluate(binary, result.run, ["ndcg@10"])
            entry["binary"] = {
                "ndcg@10": scored.mean["ndcg@10"],
                "ci": list(bootstrap_ci(scored.per_query["ndcg@10"])),
            }
            entry["rank_of_judged_docs_by_grade"] = ranks_by_grade(bench.qrels, result.run)
        report["modes"][mode] = entry
        runs.mkdir(parents=True, exist_ok=True)
        write_trec(result.run, runs / f"{args.name}.{mode}.trec", tag=mode)
        line = ", ".join(f"{m} {v:.4f}" for m, v in result.metrics.items())
        if graded:
            line += f", binary ndcg@10 {entry['binary']['ndcg@10']:.4f}"
        c = result.cost
        print(
            f"{args.name} {split} {mode}: {line}; index {c.index_seconds:.1f} s, "
            f"{c.index_bytes / 2**20:.1f} MiB, p50 {c.latency_p50_ms:.1f} ms",
            flush=True,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.name}.json"
    path.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    print(f"written {path}")


if __name__ == "__main__":
    main()
