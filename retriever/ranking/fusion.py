"""Query-type-aware fusion of a dense and a lexical ranking.

Plain reciprocal-rank fusion weighs both sides alike for every query; a symbol lookup
(``RouterGroup``) is better answered by BM25, a question in words by the dense side. :class:`Blend`
gives the dense side weight ``symbol`` for symbol queries and ``natural`` for the others (the
lexical side the rest), by one of two methods:

- ``"rrf"``: ``2 x (a / (k + dense rank) + (1 - a) / (k + lexical rank))`` (with ``a = 0.5`` it
  is plain RRF);
- ``"score"``: each side's scores min-max normalised over its list, then ``a x dense +
  (1 - a) x lexical`` (a document missing from one side gets 0 there).

With a third stage ``fast`` (a static encoder's vectors, kept beside the transformer's in a
``full`` index) and its weight ``f``, the lexical side gets ``1 - a - f``: the two vector sets
rank code differently enough that on CoSQA dev the three beat any two (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retriever.errors import InputError
from retriever.pipeline import RRF_K, Results, Stage
from retriever.ranking.query import analyze

__all__ = ["Blend"]

_METHODS = ("rrf", "score")


class Blend(Stage):
    """Fuse a dense and a lexical stage with weights that depend on the query type."""

    def __init__(self, dense: Stage, lexical: Stage, *, method: str = "rrf",
                 symbol: float = 0.5, natural: float = 0.5, k: int = RRF_K,
                 fast: Stage | None = None, fast_weight: float = 0.0) -> None:
        if method not in _METHODS:
            raise InputError(f"Unknown fusion method {method!r}; known: {', '.join(_METHODS)}.")
        for name, value in (("symbol", symbol), ("natural", natural), ("fast", fast_weight)):
            if not 0.0 <= value <= 1.0:
                raise InputError(f"The {name} dense weight must be in [0, 1], got {value!r}.")
        if fast is None:
            fast_weight = 0.0
        if max(symbol, natural) + fast_weight > 1.0 + 1e-9:
            raise InputError(f"The dense weights ({max(symbol, natural)}) and the fast one "
                             f"({fast_weight}) must sum to at most 1.")
        self.dense, self.lexical, self.fast = dense, lexical, fast
        self.method, self.symbol, self.natural, self.k = method, symbol, natural, k
        self.fast_weight = fast_weight

    def config(self) -> dict:
        found = {"method": self.method, "symbol": self.symbol, "natural": self.natural,
                 "k": self.k}
        if self.fast is not None:
            found["fast"] = self.fast_weight
        return found

    def __call__(self, queries: Sequence[str], results: Results | None = None) -> Results:
        dense = self.dense(queries, results)
        lexical = self.lexical(queries, results)
        fast = self.fast(queries, results) if self.fast is not None else None
        rows, scores = [], []
        for q, query in enumerate(queries):
            weight = self.symbol if analyze(query).is_symbol else self.natural
            fused: dict[int, float] = {}
            sides = [(dense, weight), (lexical, 1.0 - weight - self.fast_weight)]
            if fast is not None:
                sides.append((fast, self.fast_weight))
            for side, share in sides:
                keep = side.ids[q] >= 0
                ids, values = side.ids[q][keep], side.scores[q][keep].astype(np.float64)
                if self.method == "rrf":
                    gains = 2.0 / (self.k + np.arange(1, len(ids) + 1))
                else:
                    low, high = (values.min(), values.max()) if len(values) else (0.0, 0.0)
                    gains = (values - low) / (high - low) if high > low else np.ones(len(ids))
                for row, gain in zip(ids.tolist(), gains.tolist(), strict=True):
                    fused[row] = fused.get(row, 0.0) + share * gain
            # sorted() is stable: ties keep the dense side's order, as fuse() does.
            ordered = sorted(fused.items(), key=lambda item: -item[1])
            rows.append(np.array([r for r, _ in ordered], dtype=np.int64))
            scores.append(np.array([v for _, v in ordered], dtype=np.float32))
        width = max((len(r) for r in rows), default=0) or 1
        ids = np.full((len(rows), width), -1, dtype=np.int64)
        out = np.full((len(rows), width), -np.inf, dtype=np.float32)
        for q, (r, v) in enumerate(zip(rows, scores, strict=True)):
            ids[q, : len(r)], out[q, : len(v)] = r, v
        return Results(out, ids, dense.query_ids)

    def __repr__(self) -> str:
        if self.fast is None:
            return (f"blend([{self.dense!r}, {self.lexical!r}], {self.method!r}, "
                    f"symbol={self.symbol:.3g}, natural={self.natural:.3g}, k={self.k})")
        return (f"blend([{self.dense!r}, {self.lexical!r}, {self.fast!r}], {self.method!r}, "
                f"symbol={self.symbol:.3g}, natural={self.natural:.3g}, "
                f"fast={self.fast_weight:.3g}, k={self.k})")
