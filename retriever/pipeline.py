"""A small algebra of query-time stages over :class:`Results`.

``stage % k`` cuts each ranking to ``k``; ``first >> second`` feeds the first stage's
candidates to a re-scoring stage; :func:`fuse` combines rankings by reciprocal rank.
For example ``fuse([dense % 100, lexical % 100]) % 10``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from retriever.errors import InputError

__all__ = ["Results", "Stage", "Retrieve", "Cutoff", "Then", "Fuse", "fuse", "RRF_K"]

RRF_K = 60


@dataclass(frozen=True)
class Results:
    """Rankings for a batch of queries, FAISS-style.

    Attributes:
        ids: ``(n_queries, k)`` int64 row ids, best first, ``-1`` padding.
        scores: ``(n_queries, k)`` float32 scores matching ``ids``.
    """

    ids: np.ndarray
    scores: np.ndarray

    def cut(self, k: int) -> Results:
        """Keep the first ``k`` columns."""
        return Results(self.ids[:, :k], self.scores[:, :k])


class Stage:
    """Something that turns a batch of queries into :class:`Results`."""

    def __call__(self, queries: Sequence[str]) -> Results:
        raise NotImplementedError

    def __mod__(self, k: int) -> Stage:
        return Cutoff(self, k)

    def __rshift__(self, other: Then | Callable) -> Stage:
        return Then(self, other)


class Retrieve(Stage):
    """A first stage: ``search(queries, k) -> (scores, ids)``, as FAISS and BM25 indexes do."""

    def __init__(self, search: Callable, *, k: int = 100, name: str = "retrieve") -> None:
        self._search = search
        self.k = k
        self.name = name

    def __call__(self, queries: Sequence[str]) -> Results:
        scores, ids = self._search(queries, self.k)
        return Results(np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float32))

    def __mod__(self, k: int) -> Stage:
        # Asking a first stage for fewer candidates is cheaper than cutting after it.
        return Retrieve(self._search, k=k, name=self.name)


class Cutoff(Stage):
    """Keep the top ``k`` of another stage."""

    def __init__(self, inner: Stage, k: int) -> None:
        if k < 1:
            raise InputError(f"A cut-off must be at least 1, got {k}.")
        self.inner = inner
        self.k = k

    def __call__(self, queries: Sequence[str]) -> Results:
        return self.inner(queries).cut(self.k)


class Then(Stage):
    """Re-score a stage's candidates: ``rescore(queries, results) -> Results``."""

    def __init__(self, first: Stage, rescore: Callable) -> None:
        self.first = first
        self.rescore = rescore

    def __call__(self, queries: Sequence[str]) -> Results:
        return self.rescore(queries, self.first(queries))


class Fuse(Stage):
    """Reciprocal-rank fusion: ``score(d) = sum over stages of 1 / (RRF_K + rank)``.

    Rank is 1-based. Ties in fused score keep the order of first appearance, so the
    first stage listed breaks ties.
    """

    def __init__(self, stages: Sequence[Stage], *, k: int = RRF_K) -> None:
        if not stages:
            raise InputError("fuse() needs at least one stage.")
        self.stages = list(stages)
        self.k = k

    def __call__(self, queries: Sequence[str]) -> Results:
        rankings = [stage(queries) for stage in self.stages]
        depth = sum(r.ids.shape[1] for r in rankings)
        ids = np.full((len(queries), depth), -1, dtype=np.int64)
        scores = np.zeros((len(queries), depth), dtype=np.float32)
        for q in range(len(queries)):
            fused: dict[int, float] = {}
            for ranking in rankings:
                for rank, row in enumerate(ranking.ids[q]):
                    if row >= 0:
                        fused[int(row)] = fused.get(int(row), 0.0) + 1.0 / (self.k + rank + 1)
            # sorted() is stable, so equal scores keep first-appearance order.
            ordered = sorted(fused.items(), key=lambda item: -item[1])
            for j, (row, score) in enumerate(ordered):
                ids[q, j] = row
                scores[q, j] = score
        return Results(ids, scores)


def fuse(stages: Sequence[Stage], method: str = "rrf", *, k: int = RRF_K) -> Stage:
    """Fuse several stages' rankings. Only ``"rrf"`` (reciprocal-rank fusion) for now."""
    if method != "rrf":
        raise InputError(f"Unknown fusion method {method!r}; available: rrf.")
    return Fuse(stages, k=k)
