"""Render the ranking results (benchmarks/results/ranking/*.json) as the ranking section of
RESULTS.md.

usage:
    python benchmarks/ranking_report.py            # rewrite the section in RESULTS.md
    python benchmarks/ranking_report.py --print    # print it instead

The section sits between ``<!-- ranking:start -->`` and ``<!-- ranking:end -->``; it is added
at the end when RESULTS.md has none, and nothing else in the file is touched.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "ranking"
START, END = "<!-- ranking:start -->", "<!-- ranking:end -->"
CATEGORIES = ("architecture", "semantic", "symbol")


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def _f(value) -> str:
    return "" if value is None else f"{value:.3f}"


def _headline(lines: list[str], report: dict, title: str) -> None:
    rows = report["rows"]
    lines += [title, "",
              "| ranking | tune NDCG@10 | check NDCG@10 | all NDCG@10 | "
              + " | ".join(f"all {c}" for c in CATEGORIES) + " |",
              "|---|---|---|---|" + "---|" * len(CATEGORIES)]
    for label in ("plain", "code"):
        row = rows[label]
        cats = row["all"]["by_category"]
        lines.append(f"| {label} | {_f(row['tune']['ndcg@10'])} | {_f(row['check']['ndcg@10'])}"
                     f" | {_f(row['all']['ndcg@10'])} | "
                     + " | ".join(_f(cats.get(c)) for c in CATEGORIES) + " |")
    lines.append("")


def _ablation(lines: list[str], report: dict) -> None:
    rows = report["rows"]
    packages = list(rows["plain"].get("line_level", {}))
    lines += ["Ablation (each prior, then each path demotion, removed in turn; line-level "
              "columns: NDCG@10 of the mined package queries against their function's lines, "
              "see below):", "",
              "| ranking | tune | check | all | " + " | ".join(packages) + " |",
              "|---|---|---|---|" + "---|" * len(packages)]
    first = [label for label in ("plain", "code") if label in rows]
    for label in first + sorted(set(rows) - set(first), key=lambda n: (n.startswith("-"), n)):
        row = rows[label]
        line = row.get("line_level", {})
        lines.append(f"| {label} | {_f(row['tune']['ndcg@10'])} | {_f(row['check']['ndcg@10'])}"
                     f" | {_f(row['all']['ndcg@10'])} | "
                     + " | ".join(_f(line.get(p)) for p in packages) + " |")
    lines.append("")


def _languages(lines: list[str], report: dict) -> None:
    plain = report["rows"]["plain"]["all"]["by_language"]
    code = report["rows"]["code"]["all"]["by_language"]
    lines += ["Per language (all repositories, mean of each language's repositories):", "",
              "| language | plain | code |", "|---|---|---|"]
    lines += [f"| {name} | {_f(plain[name])} | {_f(code.get(name))} |" for name in plain]
    lines.append("")


def _line_level(lines: list[str], line_level: dict | None, mode: str) -> None:
    if line_level is None:
        return
    lines += [f"### Line-level precision (mined packages, {mode})", "",
              "Mined queries (`mine_packages.py`: a docstring's first sentence) asked of the "
              "package's source tree indexed as code with every docstring blanked (line "
              "numbers kept); a hit counts only when its lines overlap the function's. "
              + ("`anyio`, `fsspec`, `packaging`, `joblib` guard the lexical fit"
                 if mode == "lexical" else
                 "`anyio`, `fsspec`, `packaging`, `joblib` guard the hybrid fit")
              + " (the objective loses 5 x any drop beyond 0.01 below plain); `bm25s` and "
              "`sentence_transformers` (the committed mined sets) were never used in "
              "fitting.", "",
              f"Command: `{line_level['command']}`", "",
              "| package | queries | chunks | plain | code | change |",
              "|---|---|---|---|---|---|"]
    for name, row in line_level["packages"].items():
        lines.append(f"| {name} | {row['queries']} | {row['chunks']} | {_f(row['plain'])} | "
                     f"{_f(row['code'])} | {row['code'] - row['plain']:+.3f} |")
    lines.append("")


def render() -> str:
    lines = [START, "## Code-aware ranking (issue 9)", ""]
    lexical = _load("report-lexical.json")
    if lexical is None:
        lines += ["No ranking results yet: run benchmarks/tune_ranking.py.", END]
        return "\n".join(lines)
    split = lexical["split"]
    lines += [
        "The `code` preset (`Index.search(..., pipeline=\"code\")`, `retriever.ranking`): the "
        "mode's first stages, then priors as stages: definitions (symbol table), path terms "
        "(file stem and folder), file coherence, path demotions (tests, examples, docs, "
        "benchmarks, compat, re-exports, `.d.ts`, single-header amalgamations; intent words "
        "switch them off) and per-file saturation. Weights fitted by "
        "`benchmarks/tune_ranking.py fit` on the **tune half** only: the scorable semble "
        "repositories sorted by name, alternating, the first to tune "
        f"({len(split['tune'])} tune, {len(split['check'])} check), with a line-level guard "
        "in the objective (below). Lexical-only builds (BM25 + symbols + priors, nothing "
        "embedded), the chunker of this commit.", "",
        f"Command: `{lexical['command']}`", "",
        f"Fitted: `{lexical['weights'].get('fitted', '')}`", ""]
    _headline(lines, lexical, "### semble benchmark, lexical-only builds")
    lines.append("Reference: semble 0.7.0 BM25 + its ranking stack, no model, measured here: "
                 "0.839 (issue 9).")
    lines.append("")
    _ablation(lines, lexical)
    _languages(lines, lexical)
    for mode in ("lexical", "hybrid"):
        _line_level(lines, _load(f"line-level-{mode}.json"), mode)
    for mode in ("hybrid", "dense"):
        report = _load(f"report-{mode}.json")
        if report is None:
            continue
        # Reports written before the model was recorded were all all-MiniLM-L6-v2's.
        model = report.get("model", "all-MiniLM-L6-v2")
        name = f"{model} + BM25" if mode == "hybrid" else model
        names = report["split"]["tune"] + report["split"]["check"]
        every = len(names) == len(split["tune"]) + len(split["check"])
        _headline(lines, report, f"### {mode.capitalize()} ({name}), "
                  + (f"all {len(names)} repositories" if every
                     else f"{len(names)} small repositories only"))
        which = ("Vectors embedded once on a GPU machine into a vector cache "
                 "(`benchmarks/gpu_vectors.py`; the same model, computed in float32), so the "
                 "builds embedded nothing." if every else
                 f"Repositories: {', '.join(sorted(names))} (tune: "
                 f"{', '.join(report['split']['tune'])}).")
        lines += [f"{which} Fitted: `{report['weights'].get('fitted', '')}`. Line-level NDCG@10 "
                  + ", ".join(f"{p} {_f(report['rows']['plain']['line_level'][p])} -> "
                              f"{_f(report['rows']['code']['line_level'][p])}"
                              for p in report["rows"]["plain"].get("line_level", {}))
                  + f". Command: `{report['command']}`", ""]
        if mode == "hybrid":
            _ablation(lines, report)

    latency = _load("latency-lexical.json")
    if latency is not None:
        lines += ["### Query latency (single `Index.search` calls, k = 10, lexical-only build, "
                  "2 shared cores)", "", f"Command: `{latency['command']}`", "",
                  "| repository | chunks | plain p50 ms | plain p95 ms | code p50 ms | "
                  "code p95 ms |", "|---|---|---|---|---|---|"]
        for name, row in latency["repos"].items():
            lines.append(f"| {name} | {row['chunks']} | {row['plain']['p50_ms']} | "
                         f"{row['plain']['p95_ms']} | {row['code']['p50_ms']} | "
                         f"{row['code']['p95_ms']} |")
        lines.append("")
    notes = _load("notes.json")
    if notes is not None:
        lines += ["### Notes", ""] + [f"- {note}" for note in notes["notes"]] + [""]
    lines.append(END)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print the section only")
    args = parser.parse_args()
    section = render()
    if args.print:
        print(section)
        return
    path = HERE / "RESULTS.md"
    text = path.read_text()
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
    print(f"wrote the ranking section of {path}")


if __name__ == "__main__":
    main()
