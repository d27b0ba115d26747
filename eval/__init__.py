"""Benchmark loaders, metrics and the evaluation harness.

Loaders return a :class:`Benchmark` (corpus, queries, graded qrels); :func:`evaluate` scores runs
through pytrec_eval; :func:`run_beir` and :func:`run_repo_benchmark` index with the engine,
search, score and measure cost in one go; :func:`write_results` writes a run's results in the
``--out`` layout, and :mod:`eval.report` also makes Markdown tables and plots.
"""

from __future__ import annotations

from eval.compare import Comparison, compare
from eval.cost import Cost
from eval.data import Benchmark, Doc, load_beir, load_codesearchnet, write_beir
from eval.metrics import (
    DEFAULT_METRICS,
    Evaluation,
    bootstrap_ci,
    by_category,
    evaluate,
    paired_test,
    read_qrels,
    read_trec,
    write_trec,
)
from eval.miner import mine
from eval.report import markdown_table, plot_tradeoffs, write_json, write_markdown, write_results
from eval.repos import (
    RepoQuery,
    RepoScores,
    RepoSpec,
    Target,
    load_repo_benchmark,
    score_repo_benchmark,
)
from eval.runner import (
    ALL_MODES,
    RepoRunResult,
    RunResult,
    parse_modes,
    run_beir,
    run_benchmark,
    run_repo_benchmark,
)

__all__ = [
    "ALL_MODES",
    "DEFAULT_METRICS",
    "Benchmark",
    "Comparison",
    "Cost",
    "Doc",
    "Evaluation",
    "RepoQuery",
    "RepoRunResult",
    "RepoScores",
    "RepoSpec",
    "RunResult",
    "Target",
    "bootstrap_ci",
    "by_category",
    "compare",
    "evaluate",
    "load_beir",
    "load_codesearchnet",
    "load_repo_benchmark",
    "markdown_table",
    "mine",
    "paired_test",
    "parse_modes",
    "plot_tradeoffs",
    "read_qrels",
    "read_trec",
    "run_benchmark",
    "run_beir",
    "run_repo_benchmark",
    "score_repo_benchmark",
    "write_beir",
    "write_json",
    "write_markdown",
    "write_results",
    "write_trec",
]
