"""The tables ``make_results.py`` writes into RESULTS.md from the JSON files under
benchmarks/results/: the BEIR-layout corpora (beside the shared reference numbers, with
Cranfield's grades examined) and the semble repository benchmark (per subset, per language),
each row also a point of the trade-off plots."""

from __future__ import annotations

import json
from pathlib import Path

from locations import semble_dir

from eval.cost import Cost

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SEMBLE = semble_dir()
MODES = ("lexical", "dense", "hybrid")
LABEL = {"lexical": "BM25", "dense": "all-MiniLM-L6-v2", "hybrid": "hybrid (RRF)"}

SHARED_REFERENCE = {  # shared/data/README.md, nDCG@10 on the held-out test splits
    "cosqa": {"split": "test (held out)", "BM25": 0.332, "all-MiniLM-L6-v2": 0.593},
    "scifact": {"split": "test (held out)", "BM25": 0.686, "all-MiniLM-L6-v2": 0.645},
    "cranfield": {"split": "test (same split)", "BM25": 0.528, "all-MiniLM-L6-v2": 0.506},
}


class Point:
    """What eval.report.plot_tradeoffs needs: a name, a Cost and metrics."""

    def __init__(self, name: str, cost: dict, metrics: dict) -> None:
        self.name = name
        self.cost = Cost(**cost)
        self.metrics = metrics


def ordered(modes: dict) -> list:
    """(mode, entry) pairs in the order lexical, dense, hybrid."""
    return sorted(modes.items(), key=lambda kv: MODES.index(kv[0]) if kv[0] in MODES else 9)


def mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


def ci(entry: dict, metric: str = "ndcg@10") -> str:
    value = entry["metrics"][metric]
    low, high = entry.get("ci", {}).get(metric, (None, None))
    return f"{value:.3f}" if low is None else f"{value:.3f} [{low:.3f}, {high:.3f}]"


def beir_section(lines: list[str], points: dict[str, list[Point]]) -> None:
    files = {p.stem: p for p in sorted((RESULTS / "beir").glob("*.json"))}
    if not files:
        return
    lines += [
        "## BEIR-layout corpora and mined benchmarks (CPU, all-MiniLM-L6-v2, one build each)",
        "",
        "nDCG@10 with 95% bootstrap intervals over queries. The build cost (time including model "
        "load, bytes on disk, peak RSS) is shared by the three modes; latency is per mode "
        "(single `Index.search` calls, k=100, first 100 queries, after one warm-up call).",
        "",
        "| corpus | split | queries / docs | mode | nDCG@10 [95% CI] | MRR@10 | R@100 | MAP@100 "
        "| build s | chunks/s | index MiB | peak RSS MiB | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, path in files.items():
        data = json.loads(path.read_text())
        for mode, e in ordered(data["modes"]):
            c, m = e["cost"], e["metrics"]
            rate = f"{c['chunks_per_second']:.0f}" if c.get("chunks_per_second") else ""
            size = f"{mib(c['index_bytes'])}" + (
                " (no vectors)" if mode == "lexical" and e.get("build_modes") == ["lexical"] else ""
            )
            lines.append(
                f"| {name} | {data['split']} | {data['queries']} / {data['corpus']} | {mode} | "
                f"{ci(e)} | {m['mrr@10']:.3f} | {m['recall@100']:.3f} | {m['map@100']:.3f} | "
                f"{c['index_seconds']:.1f} | {rate} | {size} | {mib(c['peak_rss_bytes'])} | "
                f"{c['latency_p50_ms']:.1f} | {c['latency_p95_ms']:.1f} |"
            )
            points.setdefault(name, []).append(Point(f"{name} {mode}", c, m))
    threads = {
        n: json.loads(p.read_text()).get("torch_threads", "2 (torch default)")
        for n, p in files.items()
    }
    lines += [
        "",
        "torch intra-op threads per corpus: "
        + ", ".join(f"{n} {t}" for n, t in threads.items())
        + ". On this shared 2-core machine two threads made one query encoding take about 1 s "
        "(measured: p50 1,018 ms with 2 threads against 61 ms with 1, same query, same load), "
        "so dense and hybrid latencies of runs with 2 threads are inflated by thread "
        "contention, not by search; document throughput was the same either way (4.4 against "
        "4.3 SciFact abstracts/s).",
    ]
    lines.append("")
    ref = [n for n in files if n in SHARED_REFERENCE]
    if ref:
        lines += [
            "Beside the reference numbers (nDCG@10) of `shared/data/README.md` (bm25s with "
            "an English stemmer and stopwords; all-MiniLM-L6-v2, exact inner product). **Our "
            "CoSQA numbers are on the 500 `dev` queries and our SciFact numbers on the 809 "
            "`train` claims; the references are on the held-out `test` splits, which are not "
            "here.** Cranfield is the same split.",
            "",
            "| corpus | our split | ours BM25 | ours MiniLM | ours hybrid | reference split "
            "| ref. BM25 | ref. MiniLM |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name in ref:
            data = json.loads(files[name].read_text())
            got = {mode: e["metrics"]["ndcg@10"] for mode, e in data["modes"].items()}
            r = SHARED_REFERENCE[name]
            cells = [f"{got[m]:.3f}" if m in got else "" for m in MODES]
            lines.append(
                f"| {name} | {data['split']} | {' | '.join(cells)} | {r['split']} | "
                f"{r['BM25']:.3f} | {r['all-MiniLM-L6-v2']:.3f} |"
            )
        lines += [
            "",
            "Published anchors (test splits, not comparable to our train/dev numbers): BEIR "
            "SciFact test nDCG@10 BM25 0.665 (BEIR paper, Thakur et al. 2021) / 0.679 (Pyserini "
            "BM25 flat); all-MiniLM-L6-v2 0.645 (MTEB leaderboard, SciFact 64.51; the shared "
            "data README measures the same 0.645 on the held-out test split). "
            "CoSQA retrieval MRR: CodeBERT 0.669, GraphCodeBERT 0.687, UniXcoder "
            "0.696 (fine-tuned, as reported by their authors).",
            "",
        ]
    if "cranfield" in files:
        data = json.loads(files["cranfield"].read_text())
        lines += [
            "### Cranfield grades",
            "",
            f"The qrels hold grades {data.get('grades_in_qrels')}. In the original "
            'Cranfield coding 1 is the *most* relevant ("complete answer") and 4 the least; '
            "ir_datasets re-codes them so that higher is more relevant. To see which coding this "
            "file uses without changing it, the table gives, per grade, the share of judged "
            "pairs found in the top 10 and their mean rank when retrieved (top 100). If 4 were "
            "the least relevant, grade-4 documents would be found least often.",
            "",
            "| mode | grade | pairs | in top 10 | mean rank |",
            "|---|---|---|---|---|",
        ]
        for mode, e in ordered(data["modes"]):
            for grade, row in e.get("rank_of_judged_docs_by_grade", {}).items():
                lines.append(
                    f"| {mode} | {grade} | {row['pairs']} | {row['in_top10']:.3f} | "
                    f"{row['mean_rank_when_retrieved']} |"
                )
        monotone = all(
            [r["in_top10"] for _, r in sorted(e["rank_of_judged_docs_by_grade"].items())]
            == sorted(r["in_top10"] for r in e["rank_of_judged_docs_by_grade"].values())
            for _, e in ordered(data["modes"])
        )
        verdict = (
            "Every mode finds grade-4 pairs most often and grade-1 pairs least (the share rises "
            "with the grade): in this file **higher means more relevant** (already re-coded, as "
            "ir_datasets does), not the original 1 = best coding, so graded nDCG with the grades "
            "as given is meaningful. Binary nDCG is shown as well."
            if monotone
            else "The share found does not rise with the grade in every mode; read the graded "
            "nDCG with care and prefer the binary one."
        )
        lines += [
            "",
            verdict,
            "",
            "nDCG@10 with the grades as given (graded) and with every judged pair as gain 1 "
            "(binary):",
            "",
            "| mode | graded nDCG@10 | binary nDCG@10 [95% CI] |",
            "|---|---|---|",
        ]
        for mode, e in ordered(data["modes"]):
            b = e["binary"]
            lines.append(
                f"| {mode} | {e['metrics']['ndcg@10']:.3f} | {b['ndcg@10']:.3f} "
                f"[{b['ci'][0]:.3f}, {b['ci'][1]:.3f}] |"
            )
        lines.append("")


def load_annotations() -> dict[str, tuple[str, str]]:
    """``{query id: (repo, category)}`` from the shared semble annotations, when present."""
    try:
        from eval.repos import load_repo_benchmark

        queries, _ = load_repo_benchmark(SEMBLE / "annotations")
    except Exception:  # noqa: BLE001 - categories on subsets are optional
        return {}
    return {q.id: (q.repo, q.category) for q in queries}


def subset_scores(data: dict, repos: list[str], meta: dict) -> tuple[float, dict[str, float]]:
    """Mean over ``repos`` of per-repository nDCG@10, and per category (semble's averaging)."""
    mean = sum(data["per_repo"][r] for r in repos) / len(repos)
    per_query = data.get("per_query", {}).get("ndcg@10", {})
    cells: dict[tuple[str, str], list[float]] = {}
    for qid, score in per_query.items():
        repo, category = meta.get(qid, (None, None))
        if repo in repos:
            cells.setdefault((category, repo), []).append(score)
    cats: dict[str, list[float]] = {}
    for (category, _), scores in cells.items():
        cats.setdefault(category, []).append(sum(scores) / len(scores))
    return mean, {c: sum(v) / len(v) for c, v in sorted(cats.items())}


def semble_section(lines: list[str], points: dict[str, list[Point]]) -> None:
    folder = RESULTS / "semble"
    bm25 = folder / "bm25only.lexical.json"
    full = {m: folder / f"allmodes.{m}.json" for m in MODES}
    full = {m: p for m, p in full.items() if p.is_file()}
    if not bm25.is_file() and not full:
        return
    meta = load_annotations()
    lines += [
        "## semble repository benchmark (file/line-level NDCG@10, mean over repositories)",
        "",
        "Protocol of `shared/benchmarks/semble/README.md`: index `benchmark_root`, top 10 "
        "chunks, relevant + secondary targets with gain 1, a chunk hits a target when its path "
        "matches and its lines overlap; mean per repository, then over repositories. Left out: "
        "jackson-databind and messagepack-csharp (mirrors predate the annotated layout), zig "
        "(too large to mirror). Written at their mirror's HEAD instead of the pinned revision "
        "(targets may have moved): httpx, starlette, axios, guzzle, nlohmann-json, circe, "
        "http4s, snapkit, redis, bash-it, mini.nvim.",
        "",
    ]
    rows = []
    if bm25.is_file():
        data = json.loads(bm25.read_text())
        repos = data["protocol"]["repos_done"]
        rows.append(("BM25, lexical-only build (no embedding)", data, repos))
        points.setdefault("semble", []).append(
            Point("BM25 (lexical-only build)", data["cost"], data["metrics"])
        )
    covered = None
    for mode, path in full.items():
        data = json.loads(path.read_text())
        covered = data["protocol"]["repos_done"]
        rows.append((f"{LABEL[mode]}, one build for all modes", data, covered))
        points.setdefault("semble", []).append(
            Point(f"{LABEL[mode]} ({len(covered)} repos)", data["cost"], data["metrics"])
        )
    lines += [
        "| system | repositories | NDCG@10 | NDCG@5 | architecture | semantic | symbol | index s "
        "(sum) | chunks | chunks/s | index MiB (sum) | query p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, data, repos in rows:
        c, cat, m = data["cost"], data["by_category"], data["metrics"]
        nan = float("nan")
        cells = [
            label,
            str(len(repos)),
            f"{m['ndcg@10']:.3f}",
            f"{m.get('ndcg@5', nan):.3f}",
            *(f"{cat.get(k, nan):.3f}" for k in ("architecture", "semantic", "symbol")),
            f"{c['index_seconds']:.0f}",
            str(c["chunks"]),
            f"{c['chunks_per_second']:.0f}",
            mib(c["index_bytes"]),
            f"{c['latency_p50_ms']:.1f}",
            f"{c['latency_p95_ms']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if covered and bm25.is_file():
        data = json.loads(bm25.read_text())
        mean, cats = subset_scores(data, covered, meta)
        lines += [
            f"On the same {len(covered)} repositories as the all-modes run, the lexical-only BM25 "
            f"build scores NDCG@10 {mean:.3f}"
            + (" (" + ", ".join(f"{k} {v:.3f}" for k, v in cats.items()) + ")" if cats else "")
            + ". The all-modes run covers: "
            + ", ".join(covered)
            + ".",
            "",
        ]
        left = [
            r for r in json.loads(bm25.read_text())["protocol"]["repos_done"] if r not in covered
        ]
        if left:
            lines += [f"Not reached by the all-modes run (time): {', '.join(left)}.", ""]
    lines += [
        "Published anchors (semble README, their benchmark version of 62 repositories / 1,258 "
        "queries, CPU): semble 0.852, CodeRankEmbed hybrid 0.860, CodeRankEmbed 0.762, ColGREP "
        "0.692, BM25 raw 0.675, ripgrep 0.123. Measured in the shared benchmark README on this "
        "copy (62 repositories, 1,231 queries): semble's own BM25-only mode 0.659, BM25 over "
        "40-line windows with one hit per file 0.644, whole files 0.626.",
        "",
    ]
    if bm25.is_file():
        data = json.loads(bm25.read_text())
        language = {
            r["name"]: r["language"] for r in json.loads((SEMBLE / "repos.json").read_text())
        }
        fulls = {m: json.loads(p.read_text()) for m, p in full.items()}
        lines += [
            "Per language (mean of its repositories; `k/n` = repositories of that language "
            "covered by the all-modes run, whose columns average only those):",
            "",
            "| language | BM25 (lexical-only build) | covered"
            + "".join(f" | {LABEL[m]}" for m in full)
            + " |",
            "|---|---|---" + "|---" * len(full) + "|",
        ]
        done = set(covered or [])
        for lang, value in data["by_language"].items():
            repos = [r for r in data["per_repo"] if language.get(r) == lang]
            cells = [
                f"{fulls[m]['by_language'][lang]:.3f}" if lang in fulls[m]["by_language"] else ""
                for m in full
            ]
            count = f"{sum(r in done for r in repos)}/{len(repos)}"
            lines.append("| " + " | ".join([lang, f"{value:.3f}", count, *cells]) + " |")
        lines.append("")
