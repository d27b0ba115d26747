"""Fit the hybrid fusion weight of document corpora (no code priors) on CoSQA dev + SciFact train.

A corpus of documents gets no code priors, only the fusion of its dense and lexical lists, so
its weight is fitted apart from the code one, on the splits we may tune on (never a test
split): the mean NDCG@10 over the sets, each weighted alike, on a grid of dense weights, for
min-max score fusion and weighted RRF.

    python benchmarks/fit_document_fusion.py --set cosqa:dev --set scifact:train \
        [--vector-cache DIR] [--index-root DIR] [--out FILE] [--fast]

``--fast`` builds each corpus with both vector sets (``tier="full"``) and adds a grid over
three sides, the fast tier's static vectors the third (min-max score fusion; the lexical
side gets what the two vector weights leave).

With ``--vector-cache`` (filled by ``gpu_vectors.py``) the builds embed nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from locations import data_dir, scratch_dir  # noqa: E402
from ranking_eval import Frozen  # noqa: E402

import retriever  # noqa: E402
from eval.data import load_beir  # noqa: E402
from eval.metrics import evaluate  # noqa: E402
from eval.runner import corpus_documents  # noqa: E402
from retriever.pipeline import Results  # noqa: E402
from retriever.ranking.fusion import Blend  # noqa: E402

WEIGHTS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


FAST_WEIGHTS = [0.1, 0.2, 0.3]


def first_stages(name: str, split: str, cache, index_root: Path, depth: int,
                 fast: bool = False) -> dict:
    bench = load_beir(data_dir() / name, split)
    index = retriever.index_documents(corpus_documents(bench), index_dir=index_root / name,
                                      cache=cache, tier="full" if fast else "dense")
    qids = list(bench.queries)
    texts = [bench.queries[q] for q in qids]
    found = {"bench": bench, "qids": qids, "texts": texts,
             "paths": [c.path for c in index.chunks()],
             "dense": index.stage("dense", depth=depth)(texts),
             "lexical": index.stage("lexical", depth=depth)(texts)}
    if fast:
        found["fast"] = index.tier_stage("fast", depth=depth)(texts)
    return found


def ndcg(data: dict, results: Results) -> float:
    run = {}
    for i, qid in enumerate(data["qids"]):
        scores: dict[str, float] = {}
        for row, score in zip(results.ids[i].tolist(), results.scores[i].tolist(), strict=True):
            if row >= 0:
                scores.setdefault(data["paths"][row], float(score))
        run[qid] = scores
    return evaluate(data["bench"].qrels, run, ["ndcg@10"]).mean["ndcg@10"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", required=True, help="NAME:SPLIT")
    parser.add_argument("--vector-cache", default=None)
    parser.add_argument("--index-root", type=Path, default=scratch_dir("fusion-index"))
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--fast", action="store_true",
                        help="also fit three sides, the fast tier's vectors the third")
    args = parser.parse_args()
    sets = {}
    for item in args.set:
        name, split = item.split(":")
        sets[item] = first_stages(name, split, args.vector_cache, args.index_root, args.depth,
                                  fast=args.fast)
    rows = []
    for item, data in sets.items():
        rows.append({"set": item, "fusion": "dense", "ndcg@10": ndcg(data, data["dense"])})
        rows.append({"set": item, "fusion": "lexical", "ndcg@10": ndcg(data, data["lexical"])})
        if "fast" in data:
            rows.append({"set": item, "fusion": "fast", "ndcg@10": ndcg(data, data["fast"])})
    # Two sides (each method, each dense weight), then with --fast three (score fusion).
    points = [(method, weight, None) for method in ("score", "rrf") for weight in WEIGHTS]
    points += [("score", weight, fast) for weight in WEIGHTS if args.fast
               for fast in FAST_WEIGHTS if weight + fast <= 1.0 + 1e-9]
    grid = []
    for method, weight, fast in points:
        found = {}
        for item, data in sets.items():
            third = {} if fast is None else {
                "fast": Frozen(data["texts"], data["fast"], "fast"), "fast_weight": fast}
            blend = Blend(Frozen(data["texts"], data["dense"], "dense"),
                          Frozen(data["texts"], data["lexical"], "lexical"), method=method,
                          symbol=weight, natural=weight, **third)
            found[item] = ndcg(data, blend(data["texts"]))
        mean = sum(found.values()) / len(found)
        row = {"method": method, "dense_weight": weight}
        if fast is not None:
            row["fast_weight"] = fast
        grid.append({**row, "mean": round(mean, 4), **{k: round(v, 4) for k, v in found.items()}})
        print(json.dumps(grid[-1]), flush=True)
    best = max(grid, key=lambda row: row["mean"])
    result = {"command": " ".join(["python", "benchmarks/fit_document_fusion.py", *sys.argv[1:]]),
              "sides": rows, "grid": grid, "best": best}
    print("best", json.dumps(best))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
