"""semble 0.7.0 and our engine's lexical + static build, side by side on the same trees.

usage:
    python3 -m venv ../bench/semble-venv && ../bench/semble-venv/bin/pip install semble==0.7.0
    python benchmarks/semble_side_by_side.py --trees ../bench/semble-trees \
        --semble-python ../bench/semble-venv/bin/python [--model code-static-minilm-v2]

Both systems get the same static model (ours, a Model2Vec folder: semble loads it with
``SembleIndex.from_path(root, model_path=FOLDER)``, offline) and the same benchmark roots. semble
builds its own index (its chunker, BM25 and dense, its code-tuned ranking) in a subprocess of its
own virtualenv, with an empty cache folder so nothing is reused; our engine builds with
``retriever.index(..., encoder="static")`` through ``eval.run_repo_benchmark`` and searches in
``--mode`` (default ``hybrid``: BM25 and static vectors, fused). Both result lists are scored by
``eval.repos.score_repo_benchmark`` (semble's protocol: NDCG@10 per repository, then the mean).
semble runs first, then ours (``--ours-first`` swaps them), in one run, so both see the same
machine.

Printed and written to ``--out`` (JSON): NDCG@10 over the repositories and over the two halves
(names sorted, alternating), build seconds (sum and median per repository; each system's model
load included in its first build), their ratio, and chunk counts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from locations import scratch_dir, semble_dir  # noqa: E402
from run_semble import LEFT_OUT  # noqa: E402

from encoders.static import DEFAULT_STATIC_MODEL, resolve_static_model  # noqa: E402
from eval.repo_runner import run_repo_benchmark  # noqa: E402
from eval.repos import load_repo_benchmark, score_repo_benchmark  # noqa: E402
from retriever.tree_plan import TREE_CORPUS_SIF  # noqa: E402

# Runs inside semble's virtualenv: builds each tree, answers its queries, reports spans and time.
SEMBLE_DRIVER = r'''
import json, sys, time
from semble import SembleIndex

job = json.load(open(sys.argv[1]))
out = {}
for repo in job["repos"]:
    start = time.perf_counter()
    index = SembleIndex.from_path(repo["root"], model_path=job["model"])
    seconds = time.perf_counter() - start
    spans = [[c.file_path, c.start_line, c.end_line] for c in index.chunks]
    results = {}
    for qid, text in repo["queries"]:
        hits = index.search(text, top_k=job["k"])
        results[qid] = [[h.chunk.file_path, h.chunk.start_line, h.chunk.end_line] for h in hits]
    out[repo["name"]] = {"seconds": seconds, "chunks": spans, "results": results}
    print(repo["name"], round(seconds, 2), len(spans), file=sys.stderr, flush=True)
json.dump(out, open(sys.argv[2], "w"))
'''


def halves(per_repo: dict[str, float]) -> dict[str, float]:
    """Mean NDCG of the two halves of the repositories: names sorted, taken alternately."""
    names = sorted(per_repo)
    parts = {"half_a": names[0::2], "half_b": names[1::2]}
    return {key: statistics.fmean(per_repo[n] for n in group) for key, group in parts.items()}


def run_semble(python: str, model: Path, roots: dict[str, tuple[Path, str]], queries, k: int):
    """Build and search every tree with semble; returns ``{repo: {seconds, chunks, results}}``."""
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        job = {"model": str(model), "k": k, "repos": [
            {"name": name, "root": str(root),
             "queries": [[q.id, q.query] for q in queries if q.repo == name]}
            for name, (root, _) in roots.items()
        ]}
        (scratch / "job.json").write_text(json.dumps(job), encoding="utf-8")
        (scratch / "driver.py").write_text(SEMBLE_DRIVER, encoding="utf-8")
        env = {**os.environ, "SEMBLE_CACHE_LOCATION": str(scratch / "cache"),
               "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}
        subprocess.run([python, str(scratch / "driver.py"), str(scratch / "job.json"),
                        str(scratch / "out.json")], env=env, check=True)
        return json.loads((scratch / "out.json").read_text(encoding="utf-8"))


def _prefixed(span: list, prefix: str) -> tuple[str, int, int]:
    # semble's paths are relative to the folder it indexed; the annotations' to the repository.
    return (prefix + span[0], int(span[1]), int(span[2]))


def summary(per_repo: dict[str, float], seconds: dict[str, float], chunks: dict[str, int]):
    return {
        "ndcg@10": statistics.fmean(per_repo.values()), **halves(per_repo),
        "build_seconds_sum": sum(seconds.values()),
        "build_seconds_median": statistics.median(seconds.values()),
        "chunks": sum(chunks.values()), "per_repo": per_repo, "build_seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=Path, required=True, help="export.py output folder")
    parser.add_argument("--semble-python", required=True, help="python of semble's virtualenv")
    parser.add_argument("--annotations", type=Path, default=None)
    parser.add_argument("--model", default=DEFAULT_STATIC_MODEL,
                        help="static model: a shipped name or a Model2Vec folder")
    parser.add_argument("--mode", default="hybrid", help="our search mode (hybrid, dense...)")
    parser.add_argument("--corpus-sif", type=float, default=TREE_CORPUS_SIF,
                        help="our static encoder's corpus SIF s (default: what a tree's fast "
                             "tier uses); 0 for the model's own weights")
    parser.add_argument("--repo", action="append", default=None, help="only these (repeatable)")
    parser.add_argument("--ours-first", action="store_true",
                        help="build ours before semble (to see what the order does to times)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON results (default: the scratch folder's side_by_side.json)")
    args = parser.parse_args()
    annotations = args.annotations or semble_dir() / "annotations"
    queries, specs = load_repo_benchmark(annotations)
    names = sorted({q.repo for q in queries} - set(LEFT_OUT))
    names = [n for n in names if (args.trees / n).is_dir() and (not args.repo or n in args.repo)]
    queries = [q for q in queries if q.repo in names]
    roots = {}
    for name in names:
        sub = specs[name].benchmark_root if name in specs else None
        roots[name] = (args.trees / name / sub if sub else args.trees / name,
                       f"{sub.strip('/')}/" if sub else "")
    model = resolve_static_model(args.model)

    started = time.perf_counter()

    def run_ours():
        return run_repo_benchmark(annotations, args.trees, encoder="static",
                                  encoder_config={"model": args.model,
                                                  **({"corpus_sif": args.corpus_sif}
                                                     if args.corpus_sif else {})},
                                  mode=args.mode,
                                  repos=names)

    ours = run_ours() if args.ours_first else None
    semble = run_semble(args.semble_python, model, roots, queries, 10)
    semble_results = {qid: [_prefixed(s, roots[name][1]) for s in spans]
                      for name, found in semble.items() for qid, spans in found["results"].items()}
    semble_indexed = {name: [_prefixed(s, roots[name][1]) for s in found["chunks"]]
                      for name, found in semble.items()}
    semble_scores = score_repo_benchmark(queries, semble_results, semble_indexed)
    if ours is None:
        ours = run_ours()
    report = {
        "repos": names, "model": args.model, "our_mode": args.mode,
        "corpus_sif": args.corpus_sif,
        "order": "ours, semble" if args.ours_first else "semble, ours",
        "wall_seconds": time.perf_counter() - started,
        "semble": summary(semble_scores.per_repo,
                          {n: f["seconds"] for n, f in semble.items()},
                          {n: len(f["chunks"]) for n, f in semble.items()}),
        "ours": summary(ours.scores.per_repo,
                        {n: c.index_seconds for n, c in ours.per_repo_cost.items()},
                        {n: c.chunks or 0 for n, c in ours.per_repo_cost.items()}),
    }
    report["build_ratio"] = (report["ours"]["build_seconds_sum"]
                             / report["semble"]["build_seconds_sum"])
    out = args.out or scratch_dir("side_by_side.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"{len(names)} repositories, static model {args.model}, our mode {args.mode}")
    print(f"{'system':8} {'NDCG@10':>8} {'half A':>7} {'half B':>7} {'build s':>8} "
          f"{'median s':>8} {'chunks':>8}")
    for system in ("semble", "ours"):
        row = report[system]
        print(f"{system:8} {row['ndcg@10']:8.3f} {row['half_a']:7.3f} {row['half_b']:7.3f} "
              f"{row['build_seconds_sum']:8.1f} {row['build_seconds_median']:8.2f} "
              f"{row['chunks']:8d}")
    print(f"build time, ours / semble: {report['build_ratio']:.2f}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
