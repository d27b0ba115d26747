"""Searching a built index for a benchmark's queries: the run, and the latency of single calls.

Quality and latency are measured apart: the run comes from batched ``search_many`` calls, and
latency from separate single ``search`` calls after one untimed warm-up call, so that loading a
model or paging in an index is never counted as the time of a query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from eval.cost import timed
from eval.results import Progress

__all__ = ["corpus_run", "repo_run", "single_query_seconds"]

# Queries per search_many call: large enough to batch query encoding, small enough for a bar.
_BATCH = 256


def corpus_run(
    idx,
    queries: Mapping[str, str],
    *,
    k: int,
    mode: str,
    progress: Progress | None = None,
    pipeline: str | None = None,
) -> dict[str, dict[str, float]]:
    """``{qid: {docid: score}}`` for every query; a document keeps its best-ranked hit.

    Args:
        idx: an opened ``retriever.Index`` whose chunk paths are document ids.
        queries: ``{qid: text}``, searched in this order.
        k: hits per query; ``mode``: ``"lexical"``, ``"dense"`` or ``"hybrid"``.
        progress: called as ``progress(f"search {mode}", done, total)`` after each batch.
        pipeline: a ranking preset of :mod:`retriever.ranking` (None: the engine's default).
    """
    qids = list(queries)
    run: dict[str, dict[str, float]] = {}
    for begin in range(0, len(qids), _BATCH):
        batch = qids[begin : begin + _BATCH]
        hits = idx.search_many([queries[q] for q in batch], k=k, mode=mode,
                               pipeline=pipeline)
        for qid, found in zip(batch, hits, strict=True):
            scores: dict[str, float] = {}
            for hit in found:
                scores.setdefault(hit.path, float(hit.score))
            run[qid] = scores
        if progress is not None:
            progress(f"search {mode}", begin + len(batch), len(qids))
    return run


def single_query_seconds(idx, texts: Sequence[str], *, k: int, mode: str,
                         pipeline: str | None = None) -> list[float]:
    """Wall seconds of one ``search`` call per text, after one untimed warm-up call."""
    if not texts:
        return []
    idx.search(texts[0], k=k, mode=mode, pipeline=pipeline)
    seconds = []
    for text in texts:
        start = timed()
        idx.search(text, k=k, mode=mode, pipeline=pipeline)
        seconds.append(timed() - start)
    return seconds


def repo_run(
    idx, queries: Sequence, *, k: int, mode: str, prefix: str = "", latency_runs: int = 1,
    pipeline: str | None = None,
) -> tuple[dict[str, list[tuple[str, int, int]]], list[float]]:
    """Search each repository query once per latency run and keep its hits and median time.

    Args:
        idx: the repository's opened ``retriever.Index``.
        queries: :class:`eval.repos.RepoQuery` objects of this repository.
        k: results per query; ``mode``: how to search.
        prefix: prepended to hit paths so they are relative to the repository root
            (the index covers ``benchmark_root``).
        latency_runs: searches per query; the median time is kept (semble runs 5).
        pipeline: a ranking preset (None: the engine's default).

    Returns:
        ``{query id: [(path, start_line, end_line), ...]}`` best first, and one time each.
    """
    if queries:  # one untimed call, so model loading is not counted as latency
        idx.search(queries[0].query, k=k, mode=mode, pipeline=pipeline)
    results: dict[str, list[tuple[str, int, int]]] = {}
    spent = []
    for query in queries:
        runs = []
        for _ in range(max(1, latency_runs)):
            start = timed()
            hits = idx.search(query.query, k=k, mode=mode, pipeline=pipeline)
            runs.append(timed() - start)
        spent.append(sorted(runs)[len(runs) // 2])
        results[query.id] = [(prefix + h.path, h.start_line, h.end_line) for h in hits]
    return results, spent
