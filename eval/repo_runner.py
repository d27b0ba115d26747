"""The repository benchmark runner: one index per repository tree, scored the semble way."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from eval.cost import Cost, latency_ms
from eval.indexes import BuildSettings, build_tree_index, check_pipeline, indexed_spans
from eval.report import write_results
from eval.repos import load_repo_benchmark, score_repo_benchmark
from eval.results import Progress, RepoRunResult, encoder_label, parse_modes
from eval.searching import repo_run
from retriever.errors import InputError

__all__ = ["run_repo_benchmark"]


def run_repo_benchmark(
    annotations: str | Path,
    repos_dir: str | Path,
    *,
    encoder: str = "sentence-transformers",
    encoder_config: Mapping | None = None,
    mode: str = "hybrid",
    modes: str | Sequence[str] | None = None,
    embed: bool | None = None,
    index_spec: str | None = None,
    index_options: Mapping | None = None,
    pipeline: str | None = None,
    vector_cache: str | Path | None = None,
    k: int = 10,
    repos: Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
    index_root: str | Path | None = None,
    latency_runs: int = 1,
    progress: Progress | None = None,
    on_repo: Callable[[str, dict[str, RepoRunResult]], None] | None = None,
    out: str | Path | None = None,
) -> RepoRunResult | dict[str, RepoRunResult]:
    """Index each benchmark repository with ``retriever.index`` and score it the semble way.

    Args:
        annotations: the annotations folder (repos.json beside it) or one ``NAME.json``.
        repos_dir: holds one tree per repository, ``repos_dir/NAME`` (as export.py writes).
        encoder, encoder_config: how to index (``encoder_config={"model": ...}`` picks a model).
        mode: how to search; ignored when ``modes`` is given.
        modes: several modes served by one build per repository (a sequence, a comma list or
            ``"all"``); the call then returns ``{mode: RepoRunResult}``, each with the shared
            build cost and its own latency.
        embed: whether to compute document vectors. None: only when a mode needs them (a
            build for lexical modes only is a lexical-only index).
        pipeline: the ranking preset searches answer with (:mod:`retriever.ranking`; None:
            the engine's default), recorded in each result's ``index`` settings.
        vector_cache: a vector cache folder the builds take vectors from (e.g. filled on a
            GPU machine by ``benchmarks/gpu_vectors.py``); None: every build embeds. Results
            of such a run record ``vectors_from_cache``: their build cost is not embedding's.
        index_spec, index_options: the vector index kind and its options, as for
            ``retriever.index``.
        k: results per query (semble: 10).
        repos: keep only these repositories, run in this order (default: all, by name).
        languages: keep only these languages.
        index_root: where to keep the indexes (``index_root/NAME``); default: temporary. A kept
            index lets a rerun reuse its vectors (only changed chunks are embedded again).
        latency_runs: search each query this many times and keep the median (semble: 5).
        progress: optional ``progress(repo, done, total)`` callback.
        on_repo: called as ``on_repo(name, {mode: result so far})`` after each repository, so
            a long run can write partial results; the results cover the repositories done.
        out: when given, the results so far are written there after every repository
            (:func:`eval.write_results`), so a cut-short run still leaves numbers.

    Returns:
        Scores, cost and the repositories left out because their tree is missing: one
        RepoRunResult, or ``{mode: RepoRunResult}`` when ``modes`` is given.

    Raises:
        InputError: no repository left to run, or settings that contradict the modes.
    """
    wanted = parse_modes(modes if modes is not None else mode)
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
    queries, specs = load_repo_benchmark(annotations)
    queries = [
        q
        for q in queries
        if (not repos or q.repo in repos) and (not languages or q.language in languages)
    ]
    present = {q.repo for q in queries}
    names = [n for n in dict.fromkeys(repos) if n in present] if repos else sorted(present)
    repos_dir = Path(repos_dir)
    missing = [n for n in names if not (repos_dir / n).is_dir()]
    names = [n for n in names if n not in missing]
    if not names:
        raise InputError(f"no benchmark repository found under {repos_dir} (missing: {missing})")
    label = encoder_label(encoder, encoder_config)
    results: dict[str, dict[str, list]] = {m: {} for m in wanted}
    times: dict[str, dict[str, list[float]]] = {m: {} for m in wanted}
    indexed: dict[str, list] = {}
    per_repo: dict[str, Cost] = {}

    def so_far() -> dict[str, RepoRunResult]:
        kept = [q for q in queries if q.repo in per_repo]
        found = {}
        for m in wanted:
            found[m] = _repo_result(m, wanted, label, kept, results[m], indexed, per_repo,
                                    times[m], missing, k)
            found[m].index = settings.described(pipeline)
        return found

    with ExitStack() as stack:
        base = (
            Path(index_root)
            if index_root
            else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        )
        for done, name in enumerate(names):
            if progress is not None:
                progress(name, done, len(names))
            sub = specs[name].benchmark_root if name in specs else None
            root = repos_dir / name / sub if sub else repos_dir / name
            prefix = f"{sub.strip('/')}/" if sub else ""
            idx, per_repo[name] = build_tree_index(root, base / name, settings)
            indexed[name] = indexed_spans(idx, prefix)
            mine = [q for q in queries if q.repo == name]
            for m in wanted:
                found, times[m][name] = repo_run(
                    idx, mine, k=k, mode=m, prefix=prefix, latency_runs=latency_runs,
                    pipeline=pipeline,
                )
                results[m].update(found)
            del idx
            if on_repo is not None or out is not None:
                partial = so_far()
                if out is not None:
                    write_results(partial, out)
                if on_repo is not None:
                    on_repo(name, partial)
        if progress is not None:
            progress("done", len(names), len(names))
    final = so_far()
    return final if modes is not None else final[wanted[0]]


def _repo_result(
    mode: str,
    modes: Sequence[str],
    encoder: str,
    queries: list,
    results: dict[str, list],
    indexed: dict[str, list],
    per_repo: dict[str, Cost],
    times: dict[str, list[float]],
    missing: list[str],
    k: int,
) -> RepoRunResult:
    """Scores and cost of one mode over the repositories run so far (``queries`` are theirs)."""
    scores = score_repo_benchmark(queries, results, indexed, k=k)
    repo_costs = {}
    for name, build in per_repo.items():
        cost = replace(build)
        cost.latency_p50_ms, cost.latency_p95_ms = latency_ms(times.get(name, []))
        cost.queries_timed = len(times.get(name, []))
        repo_costs[name] = cost
    all_times = [t for name in per_repo for t in times.get(name, [])]
    total = Cost(
        index_seconds=sum(c.index_seconds for c in repo_costs.values()),
        index_bytes=sum(c.index_bytes for c in repo_costs.values()),
        peak_rss_bytes=max(c.peak_rss_bytes for c in repo_costs.values()),
        queries_timed=len(all_times),
    )
    counts = [c.chunks for c in repo_costs.values()]
    if all(c is not None for c in counts):
        total.chunks = sum(counts)
        if total.index_seconds > 0:
            total.chunks_per_second = total.chunks / total.index_seconds
    total.latency_p50_ms, total.latency_p95_ms = latency_ms(all_times)
    return RepoRunResult(
        name=f"repos {mode}",
        mode=mode,
        encoder=encoder,
        scores=scores,
        cost=total,
        per_repo_cost=repo_costs,
        missing=missing,
        ndcg5=score_repo_benchmark(queries, results, indexed, k=5).mean if k > 5 else None,
        build_modes=list(modes),
    )

