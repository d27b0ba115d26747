"""The pipeline stage that applies a :class:`~retriever.rerankers.Reranker`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chunking import embedding_text
from retriever.errors import InputError
from retriever.pipeline import Results, Stage

__all__ = ["Rerank"]


def _check_depth(depth: object) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise InputError(f"A rerank depth must be an integer of at least 1, got {depth!r}.")
    return depth


class Rerank(Stage):
    """Re-score each query's top ``depth`` candidates with ``reranker.score(query, texts)``.

    The reranked rows come first, best reranker score first (ties keep the incoming order);
    the rows below ``depth`` follow in their incoming order. Nothing is cut: ``%`` on this
    stage sets the depth (``Rerank(index, r) % 50`` reranks 50), as it asks a first stage
    for fewer rows rather than cutting after it.

    Scores: reranked rows carry the reranker's score; the rows below ``depth`` keep their
    own scores shifted by one constant, so the first of them sits just below the last
    reranked row and the list stays in descending order.

    The text a reranker reads is the one the index embeds: for code, the chunk's
    ``path :: symbol`` header line then its text (:func:`chunking.embedding_text`); for a
    corpus of documents, the title line then the text.

    Args:
        index: the opened :class:`~retriever.Index` the candidates' rows belong to.
        reranker: anything with ``score(query, texts)`` (see :func:`retriever.rerankers.load`).
        depth: candidates a query to re-score.
    """

    def __init__(self, index, reranker, depth: int = 20) -> None:
        if not callable(getattr(reranker, "score", None)):
            raise InputError(f"{reranker!r} is not a reranker: it has no score(query, texts).")
        self.index = index
        self.reranker = reranker
        self.depth = _check_depth(depth)
        self._texts: list[str] | None = None

    @property
    def name(self) -> str:
        return str(getattr(self.reranker, "name", type(self.reranker).__name__))

    def __mod__(self, k: int) -> Stage:
        rerank = Rerank(self.index, self.reranker, _check_depth(k))
        rerank._texts = self._texts
        return rerank

    def __repr__(self) -> str:
        return f"rerank({self.name}) % {self.depth}"

    def texts(self, rows: Sequence[int]) -> list[str]:
        """The texts the reranker reads for chunk ``rows``."""
        if self._texts is None:
            # All rows once, then kept: a stage answers many queries of one index.
            document = self.index.manifest.get("chunker", {}).get("name") == "document"
            self._texts = [(f"{c.symbol}\n{c.text}" if c.symbol else c.text) if document
                           else embedding_text(c) for c in self.index.chunks()]
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
