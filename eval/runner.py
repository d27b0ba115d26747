"""Benchmark runners: index with the engine, search, score, and measure cost in the same run."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
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
    "RepoRunResult",
    "RunResult",
    "run_benchmark",
    "run_beir",
    "run_repo_benchmark",
]

# Called as progress(stage, done, total) so a CLI can draw a bar; the library never prints.
Progress = Callable[[str, int, int], None]
_BATCH = 256


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
    """

    name: str
    mode: str
    encoder: str
    scores: RepoScores
    cost: Cost
    per_repo_cost: dict[str, Cost]
    missing: list[str]
    ndcg5: float | None = None

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
    k: int = 100,
    index_dir: str | Path | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    latency_queries: int = 100,
    progress: Progress | None = None,
) -> RunResult:
    """Index a benchmark's corpus, search its queries, and score the run with its cost.

    The run comes from ``search_many`` (batched); latency comes from separate single
    ``search`` calls on the first ``latency_queries`` queries, after one untimed warm-up call.
    A document split into several chunks keeps its best-ranked hit.

    Args:
        benchmark: corpus, queries and qrels.
        split: recorded in the result.
        encoder, encoder_config: passed to ``retriever.index_documents``.
        mode: ``"hybrid"``, ``"dense"`` or ``"lexical"``.
        k: hits per query.
        index_dir: where to build the index (kept); by default a temporary folder, removed.
        metrics: metric names, see :mod:`eval.metrics`.
        latency_queries: how many queries to time one by one (0 to skip).
        progress: optional ``progress(stage, done, total)`` callback.

    Returns:
        Metrics with bootstrap intervals, per-query scores, the run, and the cost.
    """
    retriever = _engine()
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    docs = [
        retriever.Document(id=d.id, text=d.text, title=d.title) for d in benchmark.corpus.values()
    ]
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
                encoder=encoder,
                encoder_config=encoder_config,
            )
            seconds = timed() - start
        _tick(progress, "index", len(docs), len(docs))
        cost = Cost(
            index_seconds=seconds,
            chunks=_count(idx),
            index_bytes=_bytes(idx, index_dir),
            peak_rss_bytes=memory.bytes,
        )
        if cost.chunks is not None and seconds > 0:
            cost.chunks_per_second = cost.chunks / seconds
        qids = list(benchmark.queries)
        run: dict[str, dict[str, float]] = {}
        for begin in range(0, len(qids), _BATCH):
            batch = qids[begin : begin + _BATCH]
            hits = idx.search_many([benchmark.queries[q] for q in batch], k=k, mode=mode)
            for qid, found in zip(batch, hits, strict=True):
                scores: dict[str, float] = {}
                for hit in found:
                    scores.setdefault(hit.path, float(hit.score))
                run[qid] = scores
            _tick(progress, "search", begin + len(batch), len(qids))
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
    )


def run_beir(folder: str | Path, split: str = "test", **options) -> RunResult:
    """Load a BEIR folder with :func:`eval.data.load_beir` and run :func:`run_benchmark` on it.

    Args:
        folder: the BEIR folder.
        split: the qrels split.
        **options: keyword arguments of :func:`run_benchmark` (``encoder``, ``mode``, ``k``,
            ``index_dir``, ``metrics``, ``progress``...).
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
    k: int = 10,
    repos: Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
    index_root: str | Path | None = None,
    latency_runs: int = 1,
    progress: Progress | None = None,
) -> RepoRunResult:
    """Index each benchmark repository with ``retriever.index`` and score it the semble way.

    Args:
        annotations: the annotations folder (repos.json beside it) or one ``NAME.json``.
        repos_dir: holds one tree per repository, ``repos_dir/NAME`` (as export.py writes).
        encoder, encoder_config, mode: how to index and search.
        k: results per query (semble: 10).
        repos, languages: keep only these repositories / languages.
        index_root: where to keep the indexes (``index_root/NAME``); default: temporary.
        latency_runs: search each query this many times and keep the median (semble: 5).
        progress: optional ``progress(repo, done, total)`` callback.

    Returns:
        Scores, cost and the repositories left out because their tree is missing.

    Raises:
        InputError: no repository left to run.
    """
    retriever = _engine()
    queries, specs = load_repo_benchmark(annotations)
    queries = [
        q
        for q in queries
        if (not repos or q.repo in repos) and (not languages or q.language in languages)
    ]
    names = sorted({q.repo for q in queries})
    repos_dir = Path(repos_dir)
    missing = [n for n in names if not (repos_dir / n).is_dir()]
    names = [n for n in names if n not in missing]
    if not names:
        raise InputError(f"no benchmark repository found under {repos_dir} (missing: {missing})")
    results: dict[str, list] = {}
    indexed: dict[str, list] = {}
    per_repo: dict[str, Cost] = {}
    all_times: list[float] = []
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
                    encoder=encoder,
                    encoder_config=encoder_config,
                    force=True,
                )
                seconds = timed() - start
            indexed[name] = _indexed_spans(idx, root, prefix)
            cost = Cost(
                index_seconds=seconds,
                chunks=_count(idx),
                index_bytes=_bytes(idx, base / name),
                peak_rss_bytes=memory.bytes,
            )
            if cost.chunks is not None and seconds > 0:
                cost.chunks_per_second = cost.chunks / seconds
            times = []
            for query in (q for q in queries if q.repo == name):
                runs = []
                for _ in range(max(1, latency_runs)):
                    start = timed()
                    hits = idx.search(query.query, k=k, mode=mode)
                    runs.append(timed() - start)
                times.append(sorted(runs)[len(runs) // 2])
                results[query.id] = [(prefix + h.path, h.start_line, h.end_line) for h in hits]
            cost.latency_p50_ms, cost.latency_p95_ms = latency_ms(times)
            cost.queries_timed = len(times)
            all_times += times
            per_repo[name] = cost
        _tick(progress, "done", len(names), len(names))
    kept = [q for q in queries if q.repo in per_repo]
    scores = score_repo_benchmark(kept, results, indexed, k=k)
    total = Cost(
        index_seconds=sum(c.index_seconds for c in per_repo.values()),
        index_bytes=sum(c.index_bytes for c in per_repo.values()),
        peak_rss_bytes=max(c.peak_rss_bytes for c in per_repo.values()),
        queries_timed=len(all_times),
    )
    counts = [c.chunks for c in per_repo.values()]
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
        per_repo_cost=per_repo,
        missing=missing,
        ndcg5=score_repo_benchmark(kept, results, indexed, k=5).mean if k > 5 else None,
    )
