"""Dense-only NDCG@10 of one encoder on the semble benchmark: all 60, tune half, check half.

usage:
    # vectors from a cache that benchmarks/gpu_vectors.py (or gpu_code_encoder.py) filled
    DENSE_RETRIEVER_CACHE=CACHE python benchmarks/score_dense.py --trees TREES \\
        --index-root IDX --encoder sentence-transformers --model MODEL --out result.json
    # or indexes already built with vectors, opened as they are
    python benchmarks/score_dense.py --trees TREES --index-root IDX --open-only --out base.json

Dense only means the raw first stage, ``Index.stage("dense")``: no lexical fusion and no
ranking priors, so the number measures the encoder. The halves are those of
``benchmarks/ranking_eval.py`` (repositories sorted by name, alternating, the first to tune).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from locations import semble_dir  # noqa: E402
from ranking_eval import Repo, evaluate, open_repos, scorable, split  # noqa: E402


def open_dense(annotations: Path, trees: Path, index_root: Path, names: list[str], *,
               encoder: str | None, model: str | None, open_only: bool,
               corpus_sif: float = 0.0) -> list[Repo]:
    config = {**({"model": model} if model else {}),
              **({"corpus_sif": corpus_sif} if corpus_sif else {})}
    return open_repos(annotations, trees, index_root, names, vectors=True, open_only=open_only,
                      index_options={"encoder": encoder, "encoder_config": config or None})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=Path, required=True)
    parser.add_argument("--index-root", type=Path, required=True)
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--open-only", action="store_true")
    parser.add_argument("--corpus-sif", type=float, default=0.0,
                        help="static encoder only: corpus SIF s (the fast tier of a tree: "
                             "retriever.tree_plan.TREE_CORPUS_SIF); 0 for the model's weights")
    parser.add_argument("--repo", action="append", default=[])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    annotations = semble_dir() / "annotations"
    names = args.repo or scorable(annotations, args.trees)
    started = time.monotonic()
    repos = open_dense(annotations, args.trees, args.index_root, names, encoder=args.encoder,
                       model=args.model, open_only=args.open_only,
                       corpus_sif=args.corpus_sif)
    built = time.monotonic() - started
    scores = evaluate(repos, lambda repo: repo.index.stage("dense"), mode="dense")
    tune, check = split(scores.per_repo)
    result = {
        "encoder": args.encoder, "model": args.model, "open_only": args.open_only,
        "corpus_sif": args.corpus_sif,
        "repos": len(scores.per_repo), "queries": len(scores.per_query),
        "ndcg@10": round(scores.mean, 4),
        "tune": round(statistics.fmean(scores.per_repo[n] for n in tune), 4) if tune else None,
        "check": round(statistics.fmean(scores.per_repo[n] for n in check), 4) if check else None,
        "by_language": {k: round(v, 4) for k, v in sorted(scores.by_language.items())},
        "by_category": {k: round(v, 4) for k, v in sorted(scores.by_category.items())},
        "per_repo": {k: round(v, 4) for k, v in sorted(scores.per_repo.items())},
        "seconds_open": round(built, 1), "command": " ".join(sys.argv),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("repos", "queries", "ndcg@10", "tune", "check")}))


if __name__ == "__main__":
    main()
