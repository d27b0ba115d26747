"""The pipeline stage that applies a :class:`~retriever.rerankers.Reranker`."""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np

from chunking import embedding_text
from retriever.errors import InputError
from retriever.pipeline import Results, Stage

__all__ = ["Rerank", "texts_of"]


def _check_depth(depth: object) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise InputError(f"A rerank depth must be an integer of at least 1, got {depth!r}.")
    return depth


# An opened index is a read-only view of one generation, so its texts never change: built
# once per index (0.2 s for the largest semble tree, 9,094 chunks) and kept while it lives.
_TEXTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def texts_of(index) -> list[str]:
    """Every row's reranker text: the embedding text (``path :: symbol`` header and the code;
    for a corpus of documents, the title line and the text)."""
    found = _TEXTS.get(index)
    if found is None:
        document = index.manifest.get("chunker", {}).get("name") == "document"
        found = _TEXTS[index] = [
            (f"{c.symbol}\n{c.text}" if c.symbol else c.text) if document else embedding_text(c)
            for c in index.chunks()]
    return found


def _minmax(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float32)
    span = float(values.max() - values.min())
    return np.zeros_like(values) if span == 0 else (values - values.min()) / span


class Rerank(Stage):
    """Re-score each query's top ``depth`` candidates with ``reranker.score(query, texts)``.

    The reranked rows come first, best reranker score first (ties keep the incoming order);
    the rows below ``depth`` follow in their incoming order. Nothing is cut: ``%`` on this
    stage sets the depth (``Rerank(index, r) % 50`` reranks 50), as it asks a first stage
    for fewer rows rather than cutting after it.

    Scores: with ``weight=1`` reranked rows carry the reranker's score. With ``weight < 1``
    they carry ``weight * r + (1 - weight) * s``, where ``r`` and ``s`` are the reranker's and
    the incoming scores, each min-max normalised over the query's reranked rows: the first
    stage's evidence (the code priors) is kept beside the model's. The rows below ``depth``
    keep their own scores shifted by one constant, so the first of them sits just below the
    last reranked row and the list stays in descending order.

    The text a reranker reads is the one the index embeds: for code, the chunk's
    ``path :: symbol`` header line then its text (:func:`chunking.embedding_text`); for a
    corpus of documents, the title line then the text.

    Args:
        index: the opened :class:`~retriever.Index` the candidates' rows belong to.
        reranker: anything with ``score(query, texts)`` (see :func:`retriever.rerankers.load`).
        depth: candidates a query to re-score.
        weight: share of the reranker's score in the reranked rows' score, in (0, 1].
    """

    def __init__(self, index, reranker, depth: int = 20, *, weight: float = 1.0) -> None:
        if not callable(getattr(reranker, "score", None)):
            raise InputError(f"{reranker!r} is not a reranker: it has no score(query, texts).")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or \
                not 0 < weight <= 1:
            raise InputError(f"A rerank weight must be a number in (0, 1], got {weight!r}.")
        self.index = index
        self.reranker = reranker
        self.depth = _check_depth(depth)
        self.weight = float(weight)
        self._texts: list[str] | None = None

    @property
    def name(self) -> str:
        return str(getattr(self.reranker, "name", type(self.reranker).__name__))

    def __mod__(self, k: int) -> Stage:
        rerank = Rerank(self.index, self.reranker, _check_depth(k), weight=self.weight)
        rerank._texts = self._texts
        return rerank

    def __repr__(self) -> str:
        weight = "" if self.weight == 1 else f", weight={self.weight:g}"
        return f"rerank({self.name}{weight}) % {self.depth}"

    def texts(self, rows: Sequence[int]) -> list[str]:
        """The texts the reranker reads for chunk ``rows``."""
        if self._texts is None:
            self._texts = texts_of(self.index)
        return [self._texts[row] for row in rows]

    def __call__(self, queries: Sequence[str], results: Results | None = None) -> Results:
        if results is None:
            raise InputError(f"{self!r} re-scores candidates: put a first stage before it.")
        scores = results.scores.astype(np.float32, copy=True)
        ids = results.ids.copy()
        for q, query in enumerate(queries):
            top = [j for j in range(min(self.depth, ids.shape[1])) if ids[q, j] >= 0]
            if not top:
                continue
            new = np.asarray(self.reranker.score(query, self.texts(ids[q, top].tolist())),
                             dtype=np.float32).reshape(-1)
            if len(new) != len(top) or not np.all(np.isfinite(new)):
                raise InputError(f"The reranker {self.name} returned {len(new)} scores (or "
                                 f"non-finite ones) for {len(top)} texts.")
            if self.weight < 1:
                new = self.weight * _minmax(new) + (1 - self.weight) * _minmax(
                    results.scores[q, top])
            order = np.argsort(-new, kind="stable")
            head = len(top)
            ids[q, :head] = results.ids[q, top][order]
            scores[q, :head] = new[order]
            rest = results.scores[q, head:]
            valid = results.ids[q, head:] >= 0
            if valid.any():
                # Keep the rows below depth in order and below every reranked score.
                shift = min(0.0, float(new.min()) - float(rest[valid].max()) - 1e-3)
                scores[q, head:] = np.where(valid, rest + shift, rest)
        return Results(scores, ids, results.query_ids)
