"""Benchmark runners: index with the engine, search, score, and measure cost in the same run."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from eval.cost import Cost, directory_bytes, latency_ms, peak_memory, timed
from eval.data import Benchmark, load_beir
from eval.metrics import (
    DEFAULT_METRICS,
    bootstrap_ci,
    by_category,
    evaluate,
)
from eval.repos import RepoScores, load_repo_benchmark, score_repo_benchmark
from retriever.errors import InputError, MissingDependencyError

__all__ = [
    "ALL_MODES",
    "RepoRunResult",
    "RunResult",
    "parse_modes",
    "run_benchmark",
    "run_beir",
    "run_repo_benchmark",
]

#: The search modes one index serves, in the order reports list them.
ALL_MODES = ("lexical", "dense", "hybrid")

# Called as progress(stage, done, total) so a CLI can draw a bar; the library never prints.
Progress = Callable[[str, int, int], None]
_BATCH = 256
# Recorded as the encoder fingerprint of a build that stored no real vectors (lexical only), so
# that no later build reuses its zero vectors and no dense query runs against them unnoticed.
_NO_VECTORS = "no-vectors:lexical-only-build"


def parse_modes(value: str | Sequence[str]) -> tuple[str, ...]:
    """Search modes from ``"all"``, one name, a comma list (``"lexical,dense"``) or a sequence.

    Returns:
        The modes, duplicates dropped, in the order given (``"all"``: :data:`ALL_MODES`).

    Raises:
        InputError: an unknown mode, or none at all.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    found: list[str] = []
    for item in (str(i).strip().lower() for i in items):
        if not item:
            continue
        if item == "all":
            found += ALL_MODES
        elif item in ALL_MODES:
            found.append(item)
        else:
            raise InputError(
                f"Unknown search mode {item!r}; choose from {', '.join(ALL_MODES)}, "
                "a comma list of them, or all."
            )
    if not found:
        raise InputError(f"No search mode given; choose from {', '.join(ALL_MODES)} or all.")
    return tuple(dict.fromkeys(found))


def _needs_vectors(modes: Sequence[str], embed: bool | None) -> bool:
    return any(m != "lexical" for m in modes) if embed is None else bool(embed)


def _vectorless(encoder: str, encoder_config: Mapping | None):
    """An encoder instance whose document vectors are zeros, for builds searched only by BM25.

    The index still needs a vector file of the right shape; embedding every chunk just to throw
    the vectors away would cost most of a lexical run. Query encoding is left intact (lexical
    search never calls it). The fingerprint is replaced so the zeros are never reused.
    """
    import numpy as np

    from retriever import registry

    obj = registry.create("encoder", encoder, dict(encoder_config or {}))
    dim = obj.dim

    def encode_documents(texts, **_):
        return np.zeros((len(texts), dim), dtype=np.float32)

    obj.encode_documents = encode_documents
    obj.fingerprint = lambda: _NO_VECTORS
    return obj


def _lexical_bytes(idx, directory: Path) -> int:
    """Bytes of a lexical-only index: the live generation without its (zero) vectors."""
    generation = getattr(idx, "generation", None)
    if generation is None:
        return _bytes(idx, directory)
    total = 0
    for path in Path(generation).rglob("*"):
        relative = path.relative_to(generation).parts
        if path.is_file() and relative[0] not in ("vectors.npy", "dense"):
            total += path.stat().st_size
    return total


@dataclass
class RunResult:
    """Quality and cost of one system on one benchmark.

    Attributes:
        name: a label for reports, e.g. ``"scifact hybrid"``.
        dataset: the benchmark name; ``split``: its qrels split.
        mode, encoder: how the engine searched.
        metrics: ``{metric: mean}``; ``ci``: ``{metric: (low, high)}`` 95% bootstrap intervals.
        per_query: ``{metric: {qid: score}}``.
        by_category: ``{metric: {category: mean}}`` when the benchmark has categories.
        cost: build time, bytes, memory and latency.
        run: ``{qid: {docid: score}}``, ready for :func:`eval.metrics.write_trec`.
        build_modes: the modes served by the same index build (its cost is shared by them).
    """

    name: str
    dataset: str
    split: str
    mode: str
    encoder: str
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    per_query: dict[str, dict[str, float]]
    cost: Cost
    run: dict[str, dict[str, float]] = field(default_factory=dict)
    by_category: dict[str, dict[str, float]] = field(default_factory=dict)
    build_modes: list[str] = field(default_factory=list)

    def to_dict(self, *, with_run: bool = False) -> dict:
        """A JSON-ready dict; the run itself only when ``with_run`` (it can be large)."""
        data = {
            "name": self.name,
            "dataset": self.dataset,
            "split": self.split,
            "mode": self.mode,
            "encoder": self.encoder,
            "metrics": self.metrics,
            "ci": {key: list(value) for key, value in self.ci.items()},
            "by_category": self.by_category,
            "cost": self.cost.to_dict(),
            "build_modes": self.build_modes,
            "per_query": self.per_query,
        }
        if with_run:
            data["run"] = self.run
        return data


@dataclass
class RepoRunResult:
    """A repository benchmark run: semble-protocol scores plus cost.

    Attributes:
        name: a label for reports.
        mode, encoder: how the engine searched.
        scores: the NDCG scores (see :class:`eval.repos.RepoScores`).
        cost: totals over repositories (build seconds, chunks, bytes summed; peak RSS the
            highest; latencies over every query).
        per_repo_cost: ``{repo: Cost}``.
        missing: repositories whose tree was not under ``repos_dir`` (left out of every mean).
        ndcg5: NDCG@5 over the same results, averaged the same way (when ``k`` > 5).
        build_modes: the modes served by the same index builds (their cost is shared).
    """

    name: str
    mode: str
    encoder: str
    scores: RepoScores
    cost: Cost
    per_repo_cost: dict[str, Cost]
    missing: list[str]
    ndcg5: float | None = None
    build_modes: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, float]:
        """``{"ndcg@k": mean over repositories}`` (and ``ndcg@5``, which semble also reports)."""
        found = {f"ndcg@{self.scores.k}": self.scores.mean}
        if self.ndcg5 is not None:
            found["ndcg@5"] = self.ndcg5
        return found

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        s = self.scores
        return {
            "name": self.name,
            "mode": self.mode,
            "encoder": self.encoder,
            "metrics": self.metrics,
            "cost": self.cost.to_dict(),
            "per_repo": s.per_repo,
            "by_language": s.by_language,
            "by_category": s.by_category,
            "per_query": {f"ndcg@{s.k}": s.per_query},
            "missing": self.missing,
            "build_modes": self.build_modes,
            "per_repo_cost": {repo: c.to_dict() for repo, c in self.per_repo_cost.items()},
        }


def _engine():
    """The retriever facade, or MissingDependencyError when it cannot be loaded."""
    try:
        import retriever

        for name in ("index", "index_documents", "Document"):
            getattr(retriever, name)  # the facade may load these lazily
    except (ImportError, AttributeError) as error:
        raise MissingDependencyError(
            f"the retriever engine cannot be loaded ({error}); reinstall dense-retriever"
        ) from None
    return retriever


def _bytes(idx, directory: Path) -> int:
    """Bytes of the live index: ``Index.info()["bytes"]`` when offered, else the whole folder."""
    info = getattr(idx, "info", None)
    if callable(info):
        size = info().get("bytes")
        if isinstance(size, int):
            return size
    return directory_bytes(directory)


def _count(idx) -> int | None:
    try:
        return len(idx)
    except TypeError:
        return None


def _tick(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


def run_benchmark(
    benchmark: Benchmark,
    *,
    split: str = "test",
    encoder: str = "sentence-transformers",
    encoder_config: Mapping | None = None,
    mode: str = "hybrid",
    modes: str | Sequence[str] | None = None,
    embed: bool | None = None,
    k: int = 100,
    index_dir: str | Path | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    latency_queries: int = 100,
    progress: Progress | None = None,
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
            lexical-only build stores zero vectors and reports its size without them.
        k: hits per query.
        index_dir: where to build the index (kept); by default a temporary folder, removed.
        metrics: metric names, see :mod:`eval.metrics`.
        latency_queries: how many queries to time one by one per mode (0 to skip).
        progress: optional ``progress(stage, done, total)`` callback.

    Returns:
        Metrics with bootstrap intervals, per-query scores, the run, and the cost: one
        RunResult, or ``{mode: RunResult}`` when ``modes`` is given.
    """
    wanted = parse_modes(modes if modes is not None else mode)
    results = _run_modes(
        benchmark,
        wanted,
        split=split,
        encoder=encoder,
        encoder_config=encoder_config,
        embed=embed,
        k=k,
        index_dir=index_dir,
        metrics=metrics,
        latency_queries=latency_queries,
        progress=progress,
    )
    return results if modes is not None else results[wanted[0]]


def _run_modes(
    benchmark: Benchmark,
    modes: tuple[str, ...],
    *,
    split: str,
    encoder: str,
    encoder_config: Mapping | None,
    embed: bool | None,
    k: int,
    index_dir: str | Path | None,
    metrics: Sequence[str],
    latency_queries: int,
    progress: Progress | None,
) -> dict[str, RunResult]:
    retriever = _engine()
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    vectors = _needs_vectors(modes, embed)
    docs = [
        retriever.Document(id=d.id, text=d.text, title=d.title) for d in benchmark.corpus.values()
    ]
    encoder_arg = encoder if vectors else _vectorless(encoder, encoder_config)
    out: dict[str, RunResult] = {}
    with ExitStack() as stack:
        if index_dir is None:
            index_dir = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "index"
        index_dir = Path(index_dir)
        _tick(progress, "index", 0, len(docs))
        with peak_memory() as memory:
            start = timed()
            idx = retriever.index_documents(
                docs,
                index_dir=index_dir,
                encoder=encoder_arg,
                encoder_config=dict(encoder_config) if vectors and encoder_config else None,
            )
            seconds = timed() - start
        _tick(progress, "index", len(docs), len(docs))
        build = Cost(
            index_seconds=seconds,
            chunks=_count(idx),
            index_bytes=_bytes(idx, index_dir) if vectors else _lexical_bytes(idx, index_dir),
            peak_rss_bytes=memory.bytes,
        )
        if build.chunks is not None and seconds > 0:
            build.chunks_per_second = build.chunks / seconds
        qids = list(benchmark.queries)
        for mode in modes:
            cost = replace(build)
            run: dict[str, dict[str, float]] = {}
            for begin in range(0, len(qids), _BATCH):
                batch = qids[begin : begin + _BATCH]
                hits = idx.search_many([benchmark.queries[q] for q in batch], k=k, mode=mode)
                for qid, found in zip(batch, hits, strict=True):
                    scores: dict[str, float] = {}
                    for hit in found:
                        scores.setdefault(hit.path, float(hit.score))
                    run[qid] = scores
                _tick(progress, f"search {mode}", begin + len(batch), len(qids))
            timed_queries = qids[:latency_queries]
            times = []
            if timed_queries:
                idx.search(benchmark.queries[timed_queries[0]], k=k, mode=mode)
            for qid in timed_queries:
                start = timed()
                idx.search(benchmark.queries[qid], k=k, mode=mode)
                times.append(timed() - start)
            cost.latency_p50_ms, cost.latency_p95_ms = latency_ms(times)
            cost.queries_timed = len(times)
            scored = evaluate(benchmark.qrels, run, metrics)
            slices = {}
            if benchmark.categories:
                slices = {
                    m: by_category(v, benchmark.categories) for m, v in scored.per_query.items()
                }
            out[mode] = RunResult(
                name=f"{benchmark.name} {mode}",
                dataset=benchmark.name,
                split=split,
                mode=mode,
                encoder=_encoder_label(encoder, encoder_config),
                metrics=scored.mean,
                ci={m: bootstrap_ci(v) for m, v in scored.per_query.items()},
                per_query=scored.per_query,
                cost=cost,
                run=run,
                by_category=slices,
                build_modes=list(modes),
            )
    return out


def _encoder_label(encoder: str, encoder_config: Mapping | None) -> str:
    """``encoder``, or ``encoder:model`` when a model was named."""
    model = (encoder_config or {}).get("model")
    return f"{encoder}:{model}" if model else encoder


def run_beir(
    folder: str | Path, split: str = "test", **options
) -> RunResult | dict[str, RunResult]:
    """Load a BEIR folder with :func:`eval.data.load_beir` and run :func:`run_benchmark` on it.

    Args:
        folder: the BEIR folder.
        split: the qrels split.
        **options: keyword arguments of :func:`run_benchmark` (``encoder``, ``mode``,
            ``modes``, ``k``, ``index_dir``, ``metrics``, ``progress``...). With ``modes``
            the result is ``{mode: RunResult}`` from one index build.
    """
    return run_benchmark(load_beir(folder, split), split=split, **options)


def _indexed_spans(idx, root: Path, prefix: str) -> list:
    """Chunk spans of an index, relative to the repository root.

    Uses ``idx.chunks`` when the index exposes it; otherwise every non-hidden file under the
    indexed root stands for itself (as if whole files were covered), which can only over-count
    the targets present and so lower, never raise, NDCG.
    """
    chunks = getattr(idx, "chunks", None)
    if callable(chunks):
        chunks = chunks()
    if chunks is not None:
        return [(prefix + c.path, c.start_line, c.end_line) for c in chunks]
    paths = []
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        base = Path(dirpath).relative_to(root).as_posix()
        for name in files:
            relative = name if base == "." else f"{base}/{name}"
            paths.append(prefix + relative)
    return paths


def run_repo_benchmark(
    annotations: str | Path,
    repos_dir: str | Path,
    *,
    encoder: str = "sentence-transformers",
    encoder_config: Mapping | None = None,
    mode: str = "hybrid",
    modes: str | Sequence[str] | None = None,
    embed: bool | None = None,
    k: int = 10,
    repos: Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
    index_root: str | Path | None = None,
    latency_runs: int = 1,
    progress: Progress | None = None,
    on_repo: Callable[[str, dict[str, RepoRunResult]], None] | None = None,
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
            lexical-only build stores zero vectors and reports its size without them).
        k: results per query (semble: 10).
        repos: keep only these repositories, run in this order (default: all, by name).
        languages: keep only these languages.
        index_root: where to keep the indexes (``index_root/NAME``); default: temporary. A kept
            index lets a rerun reuse its vectors (only changed chunks are embedded again).
        latency_runs: search each query this many times and keep the median (semble: 5).
        progress: optional ``progress(repo, done, total)`` callback.
        on_repo: called as ``on_repo(name, {mode: result so far})`` after each repository, so
            a long run can write partial results; the results cover the repositories done.

    Returns:
        Scores, cost and the repositories left out because their tree is missing: one
        RepoRunResult, or ``{mode: RepoRunResult}`` when ``modes`` is given.

    Raises:
        InputError: no repository left to run.
    """
    retriever = _engine()
    wanted = parse_modes(modes if modes is not None else mode)
    vectors = _needs_vectors(wanted, embed)
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
    encoder_arg = encoder if vectors else _vectorless(encoder, encoder_config)
    config_arg = dict(encoder_config) if vectors and encoder_config else None
    results: dict[str, dict[str, list]] = {m: {} for m in wanted}
    times: dict[str, dict[str, list[float]]] = {m: {} for m in wanted}
    indexed: dict[str, list] = {}
    per_repo: dict[str, Cost] = {}

    def _repo_results() -> dict[str, RepoRunResult]:
        return {
            m: _repo_result(
                m,
                wanted,
                encoder,
                encoder_config,
                queries,
                results[m],
                indexed,
                per_repo,
                times[m],
                missing,
                k,
            )
            for m in wanted
        }

    with ExitStack() as stack:
        base = (
            Path(index_root)
            if index_root
            else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        )
        for done, name in enumerate(names):
            _tick(progress, name, done, len(names))
            sub = specs[name].benchmark_root if name in specs else None
            root = repos_dir / name / sub if sub else repos_dir / name
            prefix = f"{sub.strip('/')}/" if sub else ""
            with peak_memory() as memory:
                start = timed()
                idx = retriever.index(
                    root,
                    index_dir=base / name,
                    encoder=encoder_arg,
                    encoder_config=config_arg,
                    force=True,
                )
                seconds = timed() - start
            indexed[name] = _indexed_spans(idx, root, prefix)
            cost = Cost(
                index_seconds=seconds,
                chunks=_count(idx),
                index_bytes=(
                    _bytes(idx, base / name) if vectors else _lexical_bytes(idx, base / name)
                ),
                peak_rss_bytes=memory.bytes,
            )
            if cost.chunks is not None and seconds > 0:
                cost.chunks_per_second = cost.chunks / seconds
            per_repo[name] = cost
            mine = [q for q in queries if q.repo == name]
            for m in wanted:
                if mine:  # one untimed call, so model loading is not counted as latency
                    idx.search(mine[0].query, k=k, mode=m)
                spent = []
                for query in mine:
                    runs = []
                    for _ in range(max(1, latency_runs)):
                        start = timed()
                        hits = idx.search(query.query, k=k, mode=m)
                        runs.append(timed() - start)
                    spent.append(sorted(runs)[len(runs) // 2])
                    results[m][query.id] = [
                        (prefix + h.path, h.start_line, h.end_line) for h in hits
                    ]
                times[m][name] = spent
            del idx
            if on_repo is not None:
                on_repo(name, _repo_results())
        _tick(progress, "done", len(names), len(names))
    out = _repo_results()
    return out if modes is not None else out[wanted[0]]


def _repo_result(
    mode: str,
    modes: Sequence[str],
    encoder: str,
    encoder_config: Mapping | None,
    queries: list,
    results: dict[str, list],
    indexed: dict[str, list],
    per_repo: dict[str, Cost],
    times: dict[str, list[float]],
    missing: list[str],
    k: int,
) -> RepoRunResult:
    """Scores and cost of one mode over the repositories run so far."""
    kept = [q for q in queries if q.repo in per_repo]
    scores = score_repo_benchmark(kept, results, indexed, k=k)
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
        encoder=_encoder_label(encoder, encoder_config),
        scores=scores,
        cost=total,
        per_repo_cost=repo_costs,
        missing=missing,
        ndcg5=score_repo_benchmark(kept, results, indexed, k=5).mean if k > 5 else None,
        build_modes=list(modes),
    )
