"""Fit the calibrated relevance of search hits (retriever/ranking/calibration.py) and check it.

usage (scratch folders default to ../bench, or $DENSE_RETRIEVER_BENCH):
    python benchmarks/calibrate.py collect --mode lexical --index-root RANK_INDEX
    DENSE_RETRIEVER_CACHE=CACHE python benchmarks/calibrate.py collect --mode hybrid \
        --mode dense --index-root HYBRID_INDEX
    python benchmarks/calibrate.py fit --write

RANK_INDEX holds one lexical-only index per semble repository (benchmarks/ranking_eval.py
``open_repos``), HYBRID_INDEX one hybrid index each (built with the default model; CACHE is the
vector cache they were embedded into, so the corpora embed nothing either). Indexes are only
opened, never written.

``collect`` answers every query of the tune and check halves of the semble benchmark (the
fixed split of benchmarks/ranking_eval.py: repositories sorted by name, alternating, the first
to tune) with each preset (``plain``: score scale ``raw``; ``code``: ``priors``), plus CoSQA
dev and SciFact train (document corpora: ``raw`` only, all of them tune data), and stores each
top-10 hit's features (retriever.ranking.calibration.hit_table, the same code the reader
runs, on the hits ``retriever.hits.assemble`` makes) with its label: the hit matches a target
(semble's rule) or a judged-relevant document (grade > 0). Also "nonsense" rows: each check
repository answering the queries of the next one (nothing there is relevant).

``fit`` fits one calibrator per mode and scale (and ``any``: score features left out), with
and without the cosine feature, on the tune rows only (each source weighted alike), sets the
confidence threshold from the tune half (the relevance that 90% of relevant top hits reach),
reports the check half (reliability table, ECE, Brier; confident-rate of relevant tops and of
nonsense queries) and writes ``--out``/calibration.json; ``--write`` rewrites the fitted block
of retriever/ranking/calibration.py with it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import textwrap
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from calibrate_stats import (  # noqa: E402  (the fit's statistics)
    _design,
    _fit,
    _load,
    _names,
    _predict,
    _quality,
    _tops,
)
from locations import data_dir, scratch_dir, semble_dir  # noqa: E402
from ranking_eval import LEFT_OUT, split  # noqa: E402

import retriever  # noqa: E402
from eval.data import load_beir  # noqa: E402
from eval.repos import load_repo_benchmark, path_matches  # noqa: E402
from eval.runner import corpus_documents  # noqa: E402
from retriever.hits import assemble  # noqa: E402
from retriever.ranking import calibration as cal  # noqa: E402
from retriever.ranking import preset  # noqa: E402

K = 10
PRESETS = {"plain": "raw", "code": "priors"}
KEEP_TOPS = 0.9  # the confidence threshold keeps this share of relevant top hits (tune half)


def _relevant(path: str, start: int, end: int, targets) -> bool:
    """semble's rule: the path matches and, for a line target, the spans overlap."""
    for target in targets:
        if not path_matches(path, target.path):
            continue
        if target.start_line is None or target.end_line is None:
            return True
        if not (end < target.start_line or start > target.end_line):
            return True
    return False


def _rows(index, texts, labels, mode: str, name: str) -> dict[str, np.ndarray]:
    """Feature rows of every query's top-K hits; ``labels(q, hit) -> bool``."""
    depth = min(max(100, 3 * K), len(index))
    stage = preset(name, index, mode=mode, depth=depth, filter=None)
    results = stage(texts)
    cosine = mode != "lexical" and index.has_vectors
    vectors = index._query_vectors(texts) if cosine else None
    chunks = index.chunks()
    columns: dict[str, list] = {f: [] for f in (*cal.FEATURES, "raw_score", "label", "query")}
    for q, text in enumerate(texts):
        keep = results.ids[q] >= 0
        rows = results.ids[q][keep].tolist()
        scores = results.scores[q][keep].tolist()
        found = assemble(((r, chunks[r], s) for r, s in zip(rows, scores, strict=True)), K)
        if not found:
            continue
        table = cal.hit_table(text, found, tokenize=index._lexical.tokenize,
                              vectors=index.vectors if cosine else None,
                              vector=None if vectors is None else vectors[q], top=scores[0])
        for feature in cal.FEATURES:
            columns[feature].extend(table[feature].tolist())
        columns["raw_score"].extend(c.score for c in found)
        columns["label"].extend(float(labels(q, c)) for c in found)
        columns["query"].extend([q] * len(found))
    return {key: np.asarray(value, dtype=np.float64) for key, value in columns.items()}


def collect(args) -> None:
    queries, specs = load_repo_benchmark(args.annotations)
    names = sorted(p.name for p in args.index_root.iterdir()
                   if (p / "CURRENT").is_file() and p.name not in LEFT_OUT)
    names = [n for n in names if any(q.repo == n for q in queries)]
    tune, check = split(names)
    out = args.out / "rows"
    out.mkdir(parents=True, exist_ok=True)
    commands = out / "commands.txt"
    known = commands.read_text().splitlines() if commands.is_file() else []
    command = _command()
    if command not in known:
        commands.write_text("\n".join([*known, command]) + "\n")
    for mode in args.mode:
        for name in [] if args.skip_semble else names:
            index = retriever.open(args.index_root / name)
            if mode != "lexical" and not index.has_vectors:
                continue
            half = "tune" if name in tune else "check"
            sub = specs[name].benchmark_root if name in specs else None
            prefix = f"{sub.strip('/')}/" if sub else ""
            mine = [q for q in queries if q.repo == name]
            texts = [q.query for q in mine]

            def label(q, c, mine=mine, prefix=prefix):
                return _relevant(prefix + c.best.path, c.start_line, c.end_line,
                                 mine[q].targets)

            alien = [q.query for q in queries if q.repo == _stranger(name, names, specs)]
            for preset_name, scale in PRESETS.items():
                rows = _rows(index, texts, label, mode, preset_name)
                np.savez(out / f"semble-{half}-{name}-{mode}-{scale}.npz", **rows)
                rows = _rows(index, alien, lambda q, c: False, mode, preset_name)
                np.savez(out / f"nonsense-{half}-{name}-{mode}-{scale}.npz", **rows)
            print(f"{mode} {name} ({half}): {len(texts)} queries", file=sys.stderr)
        pairs = (("cosqa", "dev", "scifact", "train"), ("scifact", "train", "cosqa", "dev"))
        for corpus, qrels_split, other, other_split in pairs:
            benchmark = load_beir(args.data / corpus, qrels_split)
            index = retriever.index_documents(
                corpus_documents(benchmark),
                index_dir=args.out / "corpora" / (corpus + ("-lexical" if mode == "lexical"
                                                            else "")),
                lexical_only=mode == "lexical", total=len(benchmark.corpus))
            qids = list(benchmark.queries)
            texts = [benchmark.queries[qid] for qid in qids]

            def label(q, c, qids=qids, qrels=benchmark.qrels):
                return qrels[qids[q]].get(c.best.path, 0) > 0

            # The other corpus's questions: code search queries asked of scientific
            # abstracts and the reverse, none relevant.
            alien = list(load_beir(args.data / other, other_split).queries.values())
            # Hybrid documents under the default preset: score fusion with the documents'
            # own weight (retriever.ranking), a scale of its own ("fused").
            scales = {"plain": "raw", "code": "fused"} if mode == "hybrid" else {"plain": "raw"}
            for preset_name, scale in scales.items():
                rows = _rows(index, texts, label, mode, preset_name)
                np.savez(out / f"{corpus}-tune-{corpus}-{mode}-{scale}.npz", **rows)
                rows = _rows(index, alien, lambda q, c: False, mode, preset_name)
                np.savez(out / f"nonsense-tune-{corpus}-{mode}-{scale}.npz", **rows)
            print(f"{mode} {corpus}: {len(texts)} queries", file=sys.stderr)


def _stranger(name: str, names: list[str], specs) -> str:
    """The next repository of ``name``'s half (alternating order) in another language, whose
    queries ``name`` cannot answer: the nonsense queries."""
    language = specs[name].language if name in specs else None
    at = names.index(name)
    for step in range(2, len(names), 2):
        other = names[(at + step) % len(names)]
        if other in specs and specs[other].language != language:
            return other
    return names[(at + 2) % len(names)]


def fit(args) -> None:
    rows = args.out / "rows"
    collected = (rows / "commands.txt").read_text().splitlines()
    result: dict = {"command": _command(), "collected": collected, "fitted": {}, "check": {}}
    thresholds = []
    for mode in ("lexical", "dense", "hybrid"):
        for scale in ("raw", "priors", "fused", "any"):
            pattern = "*" if scale == "any" else scale
            log = mode == "lexical" and scale == "raw"
            tune = _load(rows, f"*-tune-*-{mode}-{pattern}.npz", log)
            check = _load(rows, f"semble-check-*-{mode}-{pattern}.npz", log)
            if scale == "any":  # one preset's rows: the other's are the same queries
                check = [t for t in check if t["source"].endswith("-priors")]
            if not tune:
                continue
            for cosine in ((False,) if mode == "lexical" else (True, False)):
                key = f"{mode}/{scale}" + ("" if cosine else "/nocos")
                weights, bias = _fit(tune, _names(scale, cosine))
                entry = {"weights": weights, "bias": bias, "log_score": log,
                         "hits": sum(len(t["label"]) for t in tune)}
                result["fitted"][key] = entry
                if check:
                    x, y, _ = _design(check, ["label"])
                    p = np.concatenate([_predict(entry, t) for t in check])
                    result["check"][key] = _quality(p, y)
                    # The same measure on the tune half's semble rows, to set beside it.
                    mine = [t for t in tune if t["source"].startswith("semble")]
                    if scale == "any":
                        mine = [t for t in mine if t["source"].endswith("-priors")]
                    x, y, _ = _design(mine, ["label"])
                    p = np.concatenate([_predict(entry, t) for t in mine])
                    tuned = _quality(p, y)
                    result["check"][key].update(tune_brier=tuned["brier"],
                                                tune_ece=tuned["ece"])
                if scale != "any" and cosine == (mode != "lexical"):
                    best, relevant = _tops([t for t in tune
                                            if not t["source"].startswith("nonsense")], entry)
                    thresholds.append(np.quantile(best[relevant > 0], 1 - KEEP_TOPS))
    threshold = round(float(np.median(thresholds)), 2) if thresholds else cal.CONFIDENT
    result["confident"] = threshold
    for key, entry in result["fitted"].items():
        mode, scale = key.split("/")[:2]
        check = _load(rows, f"semble-check-*-{mode}-{'priors' if scale == 'any' else scale}"
                           ".npz", entry["log_score"])
        if check and key in result["check"]:
            best, relevant = _tops(check, entry)
            result["check"][key]["confident_relevant_tops"] = round(
                float((best[relevant > 0] >= threshold).mean()), 3)
            result["check"][key]["confident_all"] = round(float((best >= threshold).mean()), 3)
        nonsense = _load(rows, f"nonsense-check-*-{mode}-{scale if scale != 'any' else 'priors'}"
                              ".npz", entry["log_score"])
        if nonsense:
            best, _ = _tops(nonsense, entry)
            result["check"][key]["confident_nonsense"] = round(
                float((best >= threshold).mean()), 3)
    (args.out / "calibration.json").write_text(json.dumps(result, indent=1) + "\n")
    _print(result)
    if args.write:
        _write(result, args.fingerprint)


def _command() -> str:
    """This run's command line; an absolute path shows as ``<its name>`` (where a folder
    lies on one machine is no part of the recipe)."""
    words = [f"<{Path(a).name}>" if a.startswith("/") else a for a in sys.argv[1:]]
    return " ".join(["python benchmarks/calibrate.py", *map(shlex.quote, words)])


def _print(result: dict) -> None:
    print(f"confidence threshold {result['confident']}")
    print("| calibrator | check rows | base rate | Brier (tune) | ECE (tune) | relevant tops "
          "confident | all confident | nonsense confident |")
    print("|---|---|---|---|---|---|---|---|")
    for key, q in result["check"].items():
        print(f"| {key} | {q['n']} | {q['base_rate']} | {q['brier']} ({q['tune_brier']}) | "
              f"{q['ece']} ({q['tune_ece']}) | "
              f"{q.get('confident_relevant_tops', '')} | {q.get('confident_all', '')} | "
              f"{q.get('confident_nonsense', '')} |")


def _write(result: dict, fingerprint: str) -> None:
    """Rewrite the fitted block of retriever/ranking/calibration.py: one entry a line or two,
    and where they came from once (FITTED_BY)."""
    path = HERE.parent / "retriever" / "ranking" / "calibration.py"
    text = path.read_text()
    entries = []
    for key, entry in sorted(result["fitted"].items()):
        weights = ", ".join(f"{name!r}: {value!r}"
                            for name, value in sorted(entry["weights"].items()))
        line = (f"{key!r}: {{'bias': {entry['bias']!r}, 'log_score': {entry['log_score']!r}, "
                f"'hits': {entry['hits']!r}, 'weights': {{{weights}}}}},")
        entries.append("\n".join(textwrap.wrap(line, width=96, initial_indent="    ",
                                                subsequent_indent="        ")))
    by = textwrap.wrap(f"{result['command']}, on the rows of: {'; '.join(result['collected'])}"
                       f" (tune half and corpora only; hits = tune rows)", width=86)
    block = ("# fitted:start (written by benchmarks/calibrate.py fit --write; do not edit by "
             "hand)\n"
             f"FINGERPRINT = {fingerprint!r}  # the default model's: cosine features need it\n"
             f"CONFIDENT = {result['confident']!r}\n"
             "FITTED_BY = (\n" + "".join(f"    {line!r}\n" for line in
                                        (w + " " for w in by[:-1])) + f"    {by[-1]!r}\n)\n"
             "FITTED: dict[str, dict] = {\n" + "\n".join(entries) + "\n}\n# fitted:end\n")
    start, end = text.index("# fitted:start"), text.index("# fitted:end\n")
    path.write_text(text[:start] + block + text[end + len("# fitted:end\n"):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("collect", "fit"):
        one = sub.add_parser(name)
        one.add_argument("--out", type=Path, default=scratch_dir() / "calibration")
    collect_parser = sub.choices["collect"]
    collect_parser.add_argument("--mode", action="append", choices=["lexical", "dense",
                                                                     "hybrid"])
    collect_parser.add_argument("--index-root", type=Path, default=scratch_dir() / "rank-index")
    collect_parser.add_argument("--annotations", type=Path,
                                default=semble_dir() / "annotations")
    collect_parser.add_argument("--data", type=Path, default=data_dir())
    collect_parser.add_argument("--skip-semble", action="store_true",
                                help="only the document corpora")
    fit_parser = sub.choices["fit"]
    fit_parser.add_argument("--write", action="store_true")
    fit_parser.add_argument("--fingerprint", default="c0b2c58d5af6bd5599d56dff3b209ad7",
                            help="the encoder whose cosines the fit used (all-MiniLM-L6-v2)")
    args = parser.parse_args()
    if args.command == "collect":
        args.mode = args.mode or ["lexical"]
        collect(args)
    else:
        fit(args)


if __name__ == "__main__":
    main()
