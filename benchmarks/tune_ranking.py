"""Fit the code priors' weights on the tune half of the semble benchmark; report and ablate.

usage (scratch folders default to ../bench, or $DENSE_RETRIEVER_BENCH: semble-trees/,
rank-index/, mined/ from mine_packages.py, line-level/):
    python benchmarks/mine_packages.py bm25s sentence_transformers anyio fsspec packaging joblib
    python benchmarks/tune_ranking.py fit --mode lexical --rounds 2 --seed 0 \
        --line anyio --line fsspec --line packaging --line joblib
    python benchmarks/tune_ranking.py report --mode lexical --line anyio --line fsspec \
        --line packaging --line joblib --line bm25s --line sentence_transformers
    python benchmarks/tune_ranking.py latency --mode lexical --repo abseil-cpp
    python benchmarks/tune_ranking.py sweep --mode lexical --sweep path_terms.long=0,5,6 \
        --sweep coherence.long=0,5,6 --line anyio --line fsspec --line packaging --line joblib

The split is fixed (benchmarks/ranking_eval.py ``split``): the scorable repositories sorted by
name, alternating, the first to the tune half. ``fit`` runs a seeded coordinate search over a
grid per weight (each round visits the weights in a seeded order and keeps a value only when it
raises the tune half's mean NDCG@10), starting from the preset's current weights, and writes
the weights, the command and the search trace to ``--out``/fit-MODE.json (``--fit-half
check`` fits and sweeps on the check half instead: the cross-fit, which measures how much of
the halves' gap the fit itself makes; shipped weights are fitted on the tune half). ``sweep``
scores every combination of the ``--sweep`` values (a grid over a few weights together, the
rest kept) with
the same objective and writes them, and the best, to ``--out``/sweep-MODE.json. ``report`` scores
``plain``, the fitted preset, and the preset with each prior removed in turn (the ablation), on
the tune half, the check half and all repositories, per category and per language, and writes
``--out``/report-MODE.json. Indexes are built once under ``--index-root`` (lexical-only unless
the mode needs vectors) and reused; first-stage results are computed once per repository, so
each evaluation runs only the priors.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import random
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from line_level import line_repos  # noqa: E402
from locations import scratch_dir, semble_dir  # noqa: E402
from ranking_eval import (  # noqa: E402
    answer,
    first_stage,
    open_repos,
    scorable,
    score,
    split,
    summary,
    write_json,
)

from retriever.errors import InputError  # noqa: E402
from retriever.ranking import code_priors  # noqa: E402
from retriever.ranking.fitted import FILES_SATURATION, weights_for  # noqa: E402
from retriever.ranking.fusion import Blend  # noqa: E402

# The grid of each weight: (stage, setting) -> values tried.
GRID: dict[tuple[str, str], list] = {
    ("", "depth"): [50, 100, 200, 400],
    ("definitions", "symbol"): [0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0],
    ("definitions", "embedded"): [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0],
    ("definitions", "word"): [0.0, 0.5, 1.0, 2.0, 3.0],
    ("definitions", "style"): [0.0, 0.4, 0.8, 1.0],
    ("definitions", "parts"): [0.0, 0.1, 0.2, 0.3, 0.5],
    ("definitions", "qualifier"): [0.0, 0.3, 0.6, 1.0],
    ("definitions", "stem"): [0.0, 0.25, 0.5, 1.0, 2.0],
    ("definitions", "limit"): [5, 10, 20, 50],
    ("path_terms", "stem"): [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0],
    ("path_terms", "folder"): [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0],
    ("path_terms", "mention"): [0.0, 1.0, 2.0],
    ("path_terms", "symbol"): [0.0, 0.25, 0.5, 1.0],
    ("path_terms", "spread"): [0.0, 0.25, 0.5, 0.75, 1.0],
    ("path_terms", "long"): [0, 5, 6, 7, 8, 10],
    ("coherence", "weight"): [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0],
    ("coherence", "long"): [0, 5, 6, 7, 8, 10],
    ("path_prior", "intents"): [False, True],
    **{("path_prior", trait): [0.1, 0.2, 0.3, 0.5, 0.7, 1.0]
       for trait in ("test", "example", "benchmark", "docs", "generated", "vendored",
                     "compat", "reexport", "declaration", "amalgamated")},
    ("saturation", "after"): [1, 2, 3],
    ("saturation", "decay"): [0.3, 0.5, 0.7, 0.85, 1.0],
    ("saturation", "split"): [0.3, 0.5, 0.7, 1.0],
    ("saturation", "keep"): [0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    ("fusion", "method"): ["rrf", "score"],
    ("fusion", "symbol"): [0.0, 0.2, 0.35, 0.5, 0.65, 0.8],
    ("fusion", "natural"): [0.2, 0.35, 0.5, 0.65, 0.8, 1.0],
}
# How much the objective loses per point of line-level NDCG@10 below the allowed drop.
GUARD_PENALTY = 5.0
ALLOWED_DROP = 0.01
STAGES = ("definitions", "path_terms", "coherence", "path_prior", "saturation")


def index_options(args) -> dict:
    """``retriever.index`` options of ``--encoder`` / ``--corpus-sif`` / ``--tier`` (vector
    modes only)."""
    if args.mode == "lexical":
        return {}
    found = {"tier": args.tier} if args.tier else {}
    if args.encoder is not None:
        config = {"corpus_sif": args.corpus_sif} if args.corpus_sif else None
        found.update(encoder=args.encoder, encoder_config=config)
    return found


def get(weights: dict, key: tuple[str, str]):
    stage, name = key
    return weights[name] if not stage else weights[stage][name]


def put(weights: dict, key: tuple[str, str], value) -> dict:
    out = copy.deepcopy(weights)
    stage, name = key
    if stage:
        out[stage][name] = value
    else:
        out[name] = value
    return out


def pipeline(weights: dict | None, mode: str):
    """``make(repo)`` for ranking_eval.answer: cached first stage, then the priors."""
    def make(repo):
        depth = 100 if weights is None else int(weights.get("depth", 100))
        if weights is not None and mode == "hybrid" and "fusion" in weights:
            fusion = dict(weights["fusion"])
            # A share for the fast tier's vectors, where a full index holds them (sweep
            # fusion.fast=...; the product fuses them for corpora of code, not for trees).
            share = fusion.pop("fast", 0.0)
            fast = first_stage(repo, "fast", depth) if share else None
            if share and fast is None:  # else the share would score as no share at all
                raise SystemExit(f"{repo.name}: fusion.fast weighs the fast tier's vectors, "
                                 "which this index does not hold; build the indexes with "
                                 "--tier full (or drop fusion.fast).")
            first = Blend(first_stage(repo, "dense", depth), first_stage(repo, "lexical", depth),
                          **fusion, fast=fast, fast_weight=share)
        else:
            first = first_stage(repo, mode, depth)
        return first if weights is None else first >> code_priors(repo.index, weights)
    return make


class Objective:
    """Mean NDCG@10 of the half being fitted (the tune half, or the check half with
    ``--fit-half check``), minus a penalty wherever a line-level set (``--line``) falls more
    than ALLOWED_DROP below its plain first stage."""

    def __init__(self, repos, lines, mode: str, penalty: float = GUARD_PENALTY) -> None:
        self.repos, self.lines, self.mode, self.penalty = repos, lines, mode, penalty
        self.floors = {r.name: score([r], answer([r], pipeline(None, mode), mode=mode)).mean
                       - ALLOWED_DROP for r in lines}

    def __call__(self, weights: dict) -> float:
        value = score(self.repos, answer(self.repos, pipeline(weights, self.mode),
                                         mode=self.mode)).mean
        for repo in self.lines:
            line = score([repo], answer([repo], pipeline(weights, self.mode),
                                        mode=self.mode)).mean
            value -= self.penalty * max(0.0, self.floors[repo.name] - line)
        return value


def fit(args, repos_tune, lines) -> dict:
    rng = random.Random(args.seed)
    weights = copy.deepcopy(weights_for(args.mode))
    if args.start is not None:
        weights = {**json.loads(args.start.read_text())["weights"], **(
            {"fusion": weights["fusion"]} if "fusion" in weights else {})}
    # Settings added after a preset was fitted start at their neutral value.
    if "path_terms" in weights:
        weights["path_terms"].setdefault("spread", 1.0)
        weights["path_terms"].setdefault("long", 0)
    if "coherence" in weights:
        weights["coherence"].setdefault("long", 0)
    objective = Objective(repos_tune, lines, args.mode, args.guard_penalty)
    best = objective(weights)
    trace = [{"step": "start", "objective": round(best, 4)}]
    print(f"start: objective {best:.4f}", flush=True)
    for round_number in range(args.rounds):
        keys = [key for key in GRID if (not key[0] or key[0] in weights)
                and (not args.only or key[0] in args.only)]
        rng.shuffle(keys)
        changed = False
        for key in keys:
            current = get(weights, key)
            for value in GRID[key]:
                if value == current:
                    continue
                trial = put(weights, key, value)
                value_score = objective(trial)
                # Strictly better by more than rounding: ties keep the current value.
                if value_score > best + 1e-4:
                    best, weights, changed = value_score, trial, True
                    trace.append({"round": round_number, "set": ".".join(filter(None, key)),
                                  "value": value, "objective": round(best, 4)})
                    print(f"round {round_number}: {'.'.join(filter(None, key))} = {value}"
                          f" -> objective {best:.4f}", flush=True)
        if not changed:
            break
    guard = f", line-level guard {', '.join(r.name for r in lines)}" if lines else ""
    weights["fitted"] = (f"{' '.join(['python', 'benchmarks/tune_ranking.py', *args.argv])}"
                         f" ({args.fit_half} half, {len(repos_tune)} semble repositories{guard}; "
                         f"objective {best:.4f})")
    return {"weights": weights, "objective": round(best, 4), "trace": trace}


def parse_sweep(items: list[str]) -> list[tuple[tuple[str, str], list]]:
    """``["path_terms.long=0,5,6", ...]`` -> ``[(("path_terms", "long"), [0, 5, 6]), ...]``
    (each value read as JSON: ``5`` an int, ``0.5`` a float, ``true`` a bool)."""
    found = []
    for item in items:
        name, _, values = item.partition("=")
        stage, _, setting = name.rpartition(".")
        if not values or not setting:
            raise SystemExit(f"--sweep {item!r}: write STAGE.SETTING=V1,V2,... "
                             "(for example path_terms.long=0,5,6)")
        found.append(((stage, setting), [json.loads(v) for v in values.split(",")]))
    return found


def sweep(args, repos_tune, lines) -> dict:
    """The objective of every combination of the ``--sweep`` values, the rest of the preset's
    weights kept; the best one must beat the preset by more than rounding (as in ``fit``)."""
    grid = parse_sweep(args.sweep)
    start = copy.deepcopy(weights_for(args.mode))
    objective = Objective(repos_tune, lines, args.mode, args.guard_penalty)
    rows = []
    best = {"objective": objective(start), "values": None}
    print(f"preset: objective {best['objective']:.4f}", flush=True)
    for combination in itertools.product(*(values for _, values in grid)):
        trial = start
        for (key, _), value in zip(grid, combination, strict=True):
            trial = put(trial, key, value)
        try:
            value_score = objective(trial)
        except InputError:  # weights that do not fit together (shares over 1)
            continue
        values = {".".join(filter(None, key)): v
                  for (key, _), v in zip(grid, combination, strict=True)}
        rows.append({"values": values, "objective": round(value_score, 4)})
        print(f"{values} -> objective {value_score:.4f}", flush=True)
        if value_score > best["objective"] + 1e-4:
            best = {"objective": value_score, "values": values}
    best["objective"] = round(best["objective"], 4)
    guard = ", ".join(r.name for r in lines) or "none"
    return {"mode": args.mode, "rows": rows, "best": best,
            "data": f"{args.fit_half} half, {len(repos_tune)} semble repositories, "
                    f"line-level guard {guard}",
            "command": " ".join(["python", "benchmarks/tune_ranking.py", *args.argv])}


def ablations(weights: dict) -> dict[str, dict | None]:
    """The fitted weights, and each prior (and each path trait) removed in turn."""
    found: dict[str, dict | None] = {
        "plain": None, "code": weights,
        "code-files (saturation on)": {**weights, **FILES_SATURATION},
    }
    for stage in STAGES:
        if stage in weights:
            found[f"- {stage}"] = {k: v for k, v in weights.items() if k != stage}
    for trait, factor in weights.get("path_prior", {}).items():
        if trait != "intents" and factor != 1.0:
            found[f"- path_prior.{trait}"] = put(weights, ("path_prior", trait), 1.0)
    prior = weights.get("path_prior", {})
    found["path_prior.intents flipped"] = put(weights, ("path_prior", "intents"),
                                              not prior.get("intents", True))
    return found


def report(args, repos, tune, check, weights: dict, lines) -> dict:
    rows = {}
    halves = {"tune": tune, "check": check, "all": [r.name for r in repos]}
    for label, chosen in ablations(weights).items():
        started = time.perf_counter()
        results = answer(repos, pipeline(chosen, args.mode), mode=args.mode)
        rows[label] = {half: summary(score([r for r in repos if r.name in names], results))
                       for half, names in halves.items()}
        rows[label]["seconds"] = round(time.perf_counter() - started, 2)
        rows[label]["line_level"] = {
            r.name: round(score([r], answer([r], pipeline(chosen, args.mode),
                                           mode=args.mode)).mean, 4) for r in lines}
        line = "  ".join(f"{h} {rows[label][h]['ndcg@10']:.4f}" for h in halves)
        print(f"{label:32s} {line}  line {rows[label]['line_level']}", flush=True)
    return {"mode": args.mode, "weights": weights, "split": {"tune": tune, "check": check},
            "rows": rows, "command": " ".join(["python", "benchmarks/tune_ranking.py",
                                               *args.argv])}


def latency(args, repos) -> dict:
    """p50 / p95 of single ``Index.search`` calls (k=10) per repository, ``plain`` and
    ``code`` presets, after one untimed call each (which builds the ranking context). Each
    preset gets an index opened afresh, so no query's vector is already cached when it is
    timed (the model is loaded once per process either way). ``benchmarks/query_latency.py``
    compares two commits under the same load."""
    import retriever

    found = {}
    for repo in repos:
        texts = [q.query for q in repo.queries]
        found[repo.name] = {"chunks": len(repo.index), "queries": len(texts)}
        for name in ("plain", "code"):
            index = retriever.open(repo.index.directory)
            index.search("warm up the query path", k=10, mode=args.mode, pipeline=name)
            times = []
            for text in texts:
                started = time.perf_counter()
                index.search(text, k=10, mode=args.mode, pipeline=name)
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            found[repo.name][name] = {"p50_ms": round(times[len(times) // 2], 2),
                                      "p95_ms": round(times[int(len(times) * 0.95)], 2)}
        print(repo.name, found[repo.name], flush=True)
    return {"mode": args.mode, "repos": found,
            "command": " ".join(["python", "benchmarks/tune_ranking.py", *args.argv])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["fit", "report", "latency", "sweep"])
    parser.add_argument("--trees", type=Path, default=scratch_dir("semble-trees"),
                        help="export.py output folder")
    parser.add_argument("--annotations", type=Path, default=None)
    parser.add_argument("--index-root", type=Path, default=None,
                        help="default: rank-index (lexical) or rank-index-MODE in scratch")
    parser.add_argument("--mode", default="lexical", choices=["lexical", "dense", "hybrid"])
    parser.add_argument("--repo", action="append", default=None, help="only these")
    parser.add_argument("--encoder", default=None,
                        help="the encoder of new vector indexes (and of the line-level ones), "
                             "e.g. static; default: the default model")
    parser.add_argument("--tier", default=None, choices=["dense", "fast", "full"],
                        help="the tier of new vector indexes (full: the transformer's and the "
                             "fast tier's vectors, which hybrid fusion can weigh as a third "
                             "side: fusion.fast)")
    parser.add_argument("--corpus-sif", type=float, default=0.0,
                        help="with --encoder static: corpus SIF s (a tree's fast tier: "
                             "retriever.tree_plan.TREE_CORPUS_SIF)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", default=[],
                        help="fit only this stage's weights (repeatable), e.g. fusion")
    parser.add_argument("--sweep", action="append", default=[],
                        help="sweep: STAGE.SETTING=V1,V2,... (repeatable; every combination "
                        "is scored)")
    parser.add_argument("--start", type=Path, default=None,
                        help="start the fit from these weights (a fit JSON)")
    parser.add_argument("--weights", type=Path, default=None,
                        help="report these weights (a fit JSON) instead of the preset's")
    parser.add_argument("--line", action="append", default=[],
                        help="a mined package whose line-level NDCG@10 guards the fit "
                             "(repeatable; see line_level.py)")
    parser.add_argument("--mined", type=Path, default=scratch_dir("mined"))
    parser.add_argument("--line-work", type=Path, default=scratch_dir("line-level"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ranking")
    parser.add_argument("--fit-half", choices=["tune", "check"], default="tune",
                        help="the half fit and sweep optimise: check only to cross-fit "
                        "(how much of the halves' gap the fit itself makes); the shipped "
                        "weights are fitted on the tune half")
    parser.add_argument("--guard-penalty", type=float, default=GUARD_PENALTY,
                        help="objective lost per point of line-level NDCG@10 below the "
                        "allowed drop (a large value makes the guard a hard limit)")
    args = parser.parse_args()
    args.argv = [shlex.quote(a) for a in sys.argv[1:]]
    annotations = args.annotations or semble_dir() / "annotations"
    if args.index_root is None:
        args.index_root = scratch_dir("rank-index" if args.mode == "lexical"
                                      else f"rank-index-{args.mode}")
    names = scorable(annotations, args.trees)
    # The halves are those of all scorable repositories, whatever --repo keeps.
    tune, check = split(names)
    if args.repo:
        names = [n for n in names if n in args.repo]
        tune, check = [n for n in tune if n in names], [n for n in check if n in names]
    fitted_on = tune if args.fit_half == "tune" else check
    options = index_options(args)
    repos = open_repos(annotations, args.trees, args.index_root, names,
                       vectors=args.mode != "lexical", index_options=options,
                       progress=lambda message: print(message, flush=True))
    lines = line_repos(args.line, args.mined, args.line_work, args.mode,
                       index_options=options) if args.line else []
    if args.action == "latency":
        write_json(args.out / f"latency-{args.mode}.json", latency(args, repos))
        return
    if args.action == "sweep":
        if not args.sweep:
            raise SystemExit("sweep needs at least one --sweep STAGE.SETTING=V1,V2,...")
        write_json(args.out / f"sweep-{args.mode}.json",
                   sweep(args, [r for r in repos if r.name in fitted_on], lines))
        return
    if args.action == "fit":
        fitted = fit(args, [r for r in repos if r.name in fitted_on], lines)
        fitted["split"] = {"tune": tune, "check": check, "fitted_on": args.fit_half}
        write_json(args.out / f"fit-{args.mode}.json", fitted)
        print(json.dumps(fitted["weights"], indent=1))
        return
    weights = weights_for(args.mode)
    if args.weights is not None:
        weights = json.loads(args.weights.read_text())["weights"]
    write_json(args.out / f"report-{args.mode}.json", report(args, repos, tune, check, weights,
                                                                 lines))


if __name__ == "__main__":
    main()
