"""A small algebra of query-time stages over :class:`Results`.

Every stage has one signature: ``stage(queries, results=None) -> Results``. A first stage
(:class:`Retrieve`) ignores incoming results; a re-scoring stage (:class:`Rescore`, priors,
rerankers) maps the candidates it is given to new ones. Composition:

- ``stage % k`` keeps each query's top ``k`` (a first stage is simply asked for fewer);
- ``first >> second`` feeds ``first``'s results to ``second``;
- :func:`fuse` combines rankings by reciprocal rank.

So ``fuse([dense % 100, lexical % 100]) >> rerank % 10`` is a pipeline, and ``repr`` prints
it back in that form (what an index stores to say how it answers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from retriever.errors import InputError

__all__ = ["Results", "Stage", "Retrieve", "Rescore", "Cutoff", "Then", "Fuse", "fuse", "RRF_K"]

RRF_K = 60


@dataclass(frozen=True)
class Results:
    """Rankings for a batch of queries, in FAISS order: scores, then ids.

    Attributes:
        scores: ``(n_queries, k)`` float32 scores matching ``ids``.
        ids: ``(n_queries, k)`` int64 row ids, best first, ``-1`` padding.
        query_ids: one id per query (default ``0 .. n_queries - 1``), kept through every
            stage so a result row can always be traced to its query.
    """

    scores: np.ndarray
    ids: np.ndarray
    query_ids: tuple = field(default=())

    def __post_init__(self) -> None:
        if self.scores.shape != self.ids.shape or self.ids.ndim != 2:
            raise InputError(
                f"Results need scores and ids of one (n_queries, k) shape, got "
                f"{self.scores.shape} and {self.ids.shape}."
            )
        if not self.query_ids:
            object.__setattr__(self, "query_ids", tuple(range(len(self.ids))))
        elif len(self.query_ids) != len(self.ids):
            raise InputError(
                f"Results hold {len(self.ids)} rankings but {len(self.query_ids)} query ids."
            )

    def cut(self, k: int) -> Results:
        """Keep the first ``k`` columns."""
        return Results(self.scores[:, :k], self.ids[:, :k], self.query_ids)


class Stage:
    """Maps a batch of queries (and the results of a previous stage) to :class:`Results`."""

    def __call__(self, queries: Sequence[str], results: Results | None = None) -> Results:
        raise NotImplementedError

    def __mod__(self, k: int) -> Stage:
        return Cutoff(self, k)

    def __rshift__(self, other: Stage | Callable) -> Stage:
        return Then(self, other)


class Retrieve(Stage):
    """A first stage: ``search(queries, k) -> (scores, ids)``, as FAISS and BM25 indexes do."""

    def __init__(self, search: Callable, *, k: int = 100, name: str = "retrieve") -> None:
        self._search = search
        self.k = k
        self.name = name

    def __call__(self, queries: Sequence[str], results: Results | None = None) -> Results:
        scores, ids = self._search(queries, self.k)
        return Results(np.asarray(scores, dtype=np.float32), np.asarray(ids, dtype=np.int64),
                       results.query_ids if results is not None else ())

    def __mod__(self, k: int) -> Stage:
        # Asking a first stage for fewer candidates is cheaper than cutting after it.
        _check_cutoff(k)
        return Retrieve(self._search, k=k, name=self.name)

    def __repr__(self) -> str:
        return f"{self.name} % {self.k}"


class Rescore(Stage):
    """Re-score candidates: ``rescore(queries, results) -> Results``."""

    def __init__(self, rescore: Callable, *, name: str | None = None) -> None:
        self.rescore = rescore
        self.name = name or getattr(rescore, "__name__", "rescore")

    def __call__(self, queries: Sequence[str], results: Results | None = None) -> Results:
        if results is None:
            raise InputError(f"{self.name} re-scores candidates: put a first stage before it.")
        return self.rescore(queries, results)

    def __repr__(self) -> str:
        return self.name


class Cutoff(Stage):
    """Keep the top ``k`` of another stage."""

    def __init__(self, inner: Stage, k: int) -> None:
        _check_cutoff(k)
        self.inner = inner
        self.k = k

    def __call__(self, queries: Sequence[str], results: Results | None = None) -> Results:
        return self.inner(queries, results).cut(self.k)

    def __repr__(self) -> str:
        return f"({self.inner!r}) % {self.k}"


class Then(Stage):
    """``first`` then ``second`` on its results; a plain callable becomes a Rescore."""

    def __init__(self, first: Stage, second: Stage | Callable) -> None:
        self.first = first
        self.second = second if isinstance(second, Stage) else Rescore(second)

    def __call__(self, queries: Sequence[str], results: Results | None = None) -> Results:
        return self.second(queries, self.first(queries, results))

    def __repr__(self) -> str:
        return f"{self.first!r} >> {self.second!r}"


class Fuse(Stage):
    """Reciprocal-rank fusion: ``score(d) = sum over stages of 1 / (k + rank)``.

    Rank is 1-based. Ties in fused score keep the order of first appearance, so the
    first stage listed breaks ties.
    """

    def __init__(self, stages: Sequence[Stage], *, k: int = RRF_K) -> None:
        if not stages:
            raise InputError("fuse() needs at least one stage.")
        self.stages = list(stages)
        self.k = k

    def __call__(self, queries: Sequence[str], results: Results | None = None) -> Results:
        rankings = [stage(queries, results) for stage in self.stages]
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
        return Results(scores, ids, rankings[0].query_ids)

    def __repr__(self) -> str:
        inner = ", ".join(repr(stage) for stage in self.stages)
        return f"fuse([{inner}], 'rrf', k={self.k})"


def fuse(stages: Sequence[Stage], method: str = "rrf", *, k: int = RRF_K) -> Stage:
    """Fuse several stages' rankings. Only ``"rrf"`` (reciprocal-rank fusion) for now."""
    if method != "rrf":
        raise InputError(f"Unknown fusion method {method!r}; available: rrf.")
    return Fuse(stages, k=k)


def _check_cutoff(k: object) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError(f"A cut-off must be an integer of at least 1, got {k!r}.")
