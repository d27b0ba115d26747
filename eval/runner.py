"""Benchmark runners: index with the engine, search, score, and measure cost in the same run.

One index build serves every requested search mode. This module runs corpus (BEIR-layout)
benchmarks and gathers the runners' public names; :mod:`eval.repo_runner` runs the repository
benchmark. The pieces they share: :mod:`eval.indexes` builds the indexes and measures their
cost, :mod:`eval.searching` runs the queries and times them, :mod:`eval.results` holds what a
run returns, and :func:`eval.report.write_results` writes it (``out=``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from eval.cost import Cost, latency_ms
from eval.data import Benchmark, load_beir
from eval.indexes import BuildSettings, build_corpus_index, check_pipeline
from eval.metrics import DEFAULT_METRICS, bootstrap_ci, by_category, evaluate
from eval.repo_runner import run_repo_benchmark
from eval.report import write_results
from eval.results import ALL_MODES, Progress, RepoRunResult, RunResult, encoder_label, parse_modes
from eval.searching import corpus_run, single_query_seconds
from retriever.errors import InputError

__all__ = [
    "ALL_MODES",
    "RepoRunResult",
    "RunResult",
    "corpus_documents",
    "parse_modes",
    "run_benchmark",
    "run_beir",
    "run_repo_benchmark",
]


def corpus_documents(benchmark: Benchmark) -> list:
    """The benchmark's corpus as the ``retriever.Document`` objects a run indexes (so other
    builds of it embed the same texts and share cached vectors)."""
    import retriever

    return [retriever.Document(id=d.id, text=d.text, title=d.title)
            for d in benchmark.corpus.values()]


def run_benchmark(
    benchmark: Benchmark,
    *,
    split: str = "test",
    encoder: str = "sentence-transformers",
    encoder_config: Mapping | None = None,
    mode: str = "hybrid",
    modes: str | Sequence[str] | None = None,
    embed: bool | None = None,
    index_spec: str | None = None,
    index_options: Mapping | None = None,
    pipeline: str | None = None,
    vector_cache: str | Path | None = None,
    k: int = 100,
    index_dir: str | Path | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    latency_queries: int = 100,
    progress: Progress | None = None,
    out: str | Path | None = None,
) -> RunResult | dict[str, RunResult]:
    """Index a benchmark's corpus, search its queries, and score the run with its cost.

    The run comes from ``search_many`` (batched); latency comes from separate single
    ``search`` calls on the first ``latency_queries`` queries, after one untimed warm-up call.
    A document split into several chunks keeps its best-ranked hit.

    Args:
        benchmark: corpus, queries and qrels.
        split: recorded in the result.
        encoder, encoder_config: passed to ``retriever.index_documents``.
        mode: ``"hybrid"``, ``"dense"`` or ``"lexical"``; ignored when ``modes`` is given.
        modes: several modes served by one index build (a sequence, a comma list or
            ``"all"``); the call then returns ``{mode: RunResult}``. Each result carries the
            shared build cost (time, bytes, memory) and its own latency.
        embed: whether to compute document vectors. None: only when a mode needs them; a
            build for lexical modes only is a lexical-only index (no model is loaded).
        pipeline: the ranking preset searches answer with (:mod:`retriever.ranking`; None:
            the engine's default), recorded in each result's ``index`` settings.
        vector_cache: a vector cache folder the builds take vectors from (e.g. filled on a
            GPU machine by ``benchmarks/gpu_vectors.py``); None: every build embeds. Results
            of such a run record ``vectors_from_cache``: their build cost is not embedding's.
        index_spec, index_options: the vector index kind and its options, as for
            ``retriever.index`` (e.g. ``"HNSW32,Flat"``, ``{"dims": 128}``).
        k: hits per query.
        index_dir: where to build the index (kept); by default a temporary folder, removed.
        metrics: metric names, see :mod:`eval.metrics`.
        latency_queries: how many queries to time one by one per mode (0 to skip).
        progress: optional ``progress(stage, done, total)`` callback.
        out: when given, the results are also written there (:func:`eval.write_results`).

    Returns:
        Metrics with bootstrap intervals, per-query scores, the run, and the cost: one
        RunResult, or ``{mode: RunResult}`` when ``modes`` is given.

    Raises:
        InputError: ``k`` below 1, or settings that contradict the modes (see
            :meth:`eval.indexes.BuildSettings.for_modes`).
    """

    wanted = parse_modes(modes if modes is not None else mode)
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    check_pipeline(pipeline)  # before any build: an unknown name must not cost one
    settings = BuildSettings.for_modes(
        wanted,
        embed=embed,
        encoder=encoder,
        encoder_config=encoder_config,
        index_spec=index_spec,
        index_options=index_options,
        vector_cache=vector_cache,
    )
    docs = corpus_documents(benchmark)
    results: dict[str, RunResult] = {}
    with ExitStack() as stack:
        if index_dir is None:
            index_dir = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "index"
        if progress is not None:
            progress("index", 0, len(docs))
        idx, build = build_corpus_index(docs, Path(index_dir), settings)
        if progress is not None:
            progress("index", len(docs), len(docs))
        for m in wanted:
            run = corpus_run(idx, benchmark.queries, k=k, mode=m, progress=progress,
                             pipeline=pipeline)
            timed_texts = [benchmark.queries[q] for q in list(benchmark.queries)[:latency_queries]]
            seconds = single_query_seconds(idx, timed_texts, k=k, mode=m, pipeline=pipeline)
            results[m] = _scored(benchmark, m, wanted, run, build, seconds, split, metrics,
                                 encoder_label(encoder, encoder_config))
            results[m].index = settings.described(pipeline)
    if out is not None:
        write_results(results, out)
    return results if modes is not None else results[wanted[0]]


def _scored(
    benchmark: Benchmark,
    mode: str,
    modes: Sequence[str],
    run: dict[str, dict[str, float]],
    build: Cost,
    seconds: list[float],
    split: str,
    metrics: Sequence[str],
    encoder: str,
) -> RunResult:
    """One mode's run scored against the qrels, with the shared build cost and its latency."""
    cost = replace(build)
    cost.latency_p50_ms, cost.latency_p95_ms = latency_ms(seconds)
    cost.queries_timed = len(seconds)
    scored = evaluate(benchmark.qrels, run, metrics)
    slices = {}
    if benchmark.categories:
        slices = {m: by_category(v, benchmark.categories) for m, v in scored.per_query.items()}
    return RunResult(
        name=f"{benchmark.name} {mode}",
        dataset=benchmark.name,
        split=split,
        mode=mode,
        encoder=encoder,
        metrics=scored.mean,
        ci={m: bootstrap_ci(v) for m, v in scored.per_query.items()},
        per_query=scored.per_query,
        cost=cost,
        run=run,
        by_category=slices,
        build_modes=list(modes),
    )


def run_beir(
    folder: str | Path, split: str = "test", **options
) -> RunResult | dict[str, RunResult]:
    """Load a BEIR folder with :func:`eval.data.load_beir` and run :func:`run_benchmark` on it.

    Args:
        folder: the BEIR folder.
        split: the qrels split.
        **options: keyword arguments of :func:`run_benchmark` (``encoder``, ``mode``,
            ``modes``, ``index_spec``, ``index_options``, ``k``, ``index_dir``, ``metrics``,
            ``progress``, ``out``...). With ``modes`` the result is ``{mode: RunResult}``
            from one index build.
    """
    return run_benchmark(load_beir(folder, split), split=split, **options)

