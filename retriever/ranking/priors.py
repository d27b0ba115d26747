"""Ranking priors: small re-scoring stages that use what the index knows about code.

Each prior is a :class:`~retriever.pipeline.Stage` with its own keyword-only settings
(``config()``, printed by ``repr``), so an ablation is a config change. They work on scores
normalised per query (:class:`Normalize`: the best candidate scores 1), so a weight means the
same thing after BM25, dense search or a fusion:

- :class:`Definitions` adds ``weight x strength`` to chunks that define an identifier of the
  query (exact name, the same name in another style, or every part of it), taking them from
  the symbol table, so a definition the first stage missed is added;
- :class:`PathTerms` adds weight to chunks whose file stem or folder holds the query's words,
  or whose path the query mentions;
- :class:`FileCoherence` lifts the best chunk of a file with several strong chunks;
  both guess from what surrounds a chunk, so ``long`` shrinks them for a query with many
  content words (a sentence gives BM25 and dense search enough evidence of their own);
- :class:`PathPrior` multiplies the scores of tests, examples, generated code... by a factor
  (the query's intent words switch the matching factor off);
- :class:`FileSaturation` decays the n-th chunk of one file in the top k, and a piece of the
  definition just above it more, so one file or definition does not take every slot.

The four that read a chunk's file live in :mod:`retriever.ranking.file_priors`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from indexing.symbols import SymbolTable
from retriever.errors import InputError
from retriever.pipeline import Results, Stage
from retriever.ranking.context import CodeContext
from retriever.ranking.query import analyze

__all__ = ["Normalize", "Definitions", "PathTerms", "FileCoherence", "PathPrior",
           "FileSaturation", "Priors"]


class Prior(Stage):
    """A re-scoring stage with keyword settings; subclasses implement :meth:`rescore`."""

    name = "prior"

    def __init__(self, context: CodeContext, **settings: float) -> None:
        self.context = context
        self.settings = settings

    def config(self) -> dict:
        return dict(self.settings)

    def __call__(self, queries: Sequence[str], results: Results | None = None) -> Results:
        if results is None:
            raise InputError(f"{self.name} re-scores candidates: put a first stage before it.")
        rows, scores = [], []
        for q, query in enumerate(queries):
            keep = results.ids[q] >= 0
            ids, values = self.rescore(query, results.ids[q][keep],
                                       results.scores[q][keep].astype(np.float64))
            order = np.argsort(-values, kind="stable")
            rows.append(ids[order])
            scores.append(values[order])
        return _pack(rows, scores, results.query_ids)

    def rescore(self, query: str, ids: np.ndarray, scores: np.ndarray):
        raise NotImplementedError

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={_short(v)}" for k, v in self.settings.items())
        return f"{self.name}({inner})"


class Normalize(Prior):
    """Divide each query's scores by its best one, so the priors' weights are relative;
    ``minmax=True`` maps them onto [0, 1] instead (cosine scores of one query lie close
    together, so dividing by the best leaves every candidate near 1 and the priors' additive
    boosts would decide alone)."""

    name = "normalize"

    def __init__(self, context: CodeContext, *, minmax: bool = False) -> None:
        super().__init__(context, **({"minmax": True} if minmax else {}))

    def rescore(self, query, ids, scores):
        if not len(scores):
            return ids, scores
        top = scores.max()
        if self.settings.get("minmax"):
            low = scores.min()
            return ids, (scores - low) / (top - low) if top > low else np.ones(len(scores))
        return ids, scores / top if top > 0 else scores


class Definitions(Prior):
    """Boost chunks that define what the query names (see the module docstring).

    Settings: ``symbol`` (weight when the whole query is one identifier), ``embedded``
    (identifiers inside a sentence), ``word`` (a one-word query in plain lower case);
    strengths ``exact``, ``style`` (the same name in another style), ``parts`` (every part of a
    compound name, in a longer name), ``qualifier`` (added when a qualifier of the query
    matches the definition's scope) and ``stem`` (added when the file is named after it);
    ``limit`` caps the definitions added from outside the candidates.
    """

    name = "definitions"

    def __init__(self, context: CodeContext, *, allowed: np.ndarray | None = None,
                 symbol: float = 3.0, embedded: float = 1.5, word: float = 0.0,
                 exact: float = 1.0, style: float = 0.8, parts: float = 0.3,
                 qualifier: float = 0.3, stem: float = 0.5, limit: int = 20) -> None:
        super().__init__(context, symbol=symbol, embedded=embedded, word=word, exact=exact,
                         style=style, parts=parts, qualifier=qualifier, stem=stem,
                         limit=limit)
        self.allowed = allowed

    def rescore(self, query, ids, scores):
        table: SymbolTable | None = self.context.symbols
        if table is None or not len(table):
            return ids, scores
        info = analyze(query)
        s = self.settings
        if info.is_symbol:
            weight, names = s["symbol"], info.identifiers
        elif info.identifiers:
            weight, names = s["embedded"], info.identifiers
        elif len(info.words) == 1 and " " not in info.text:
            weight, names = s["word"], ((info.text, info.words[0], ()),)
        else:
            return ids, scores
        if weight <= 0:
            return ids, scores
        strengths = self._strengths(table, names)
        if not strengths:
            return ids, scores
        position = {int(row): i for i, row in enumerate(ids)}
        boost = np.zeros(len(ids))
        outside = []
        for row, strength in strengths.items():
            if row in position:
                boost[position[row]] = strength
            elif self.allowed is None or self.allowed[row]:
                outside.append((strength, row))
        outside.sort(key=lambda item: (-item[0], item[1]))
        outside = outside[: int(s["limit"])]
        new_ids = np.concatenate([ids, np.array([r for _, r in outside], dtype=np.int64)])
        new_scores = np.concatenate([scores + weight * boost,
                                     np.array([weight * v for v, _ in outside])])
        return new_ids, new_scores

    def _strengths(self, table: SymbolTable, names) -> dict[int, float]:
        """Row -> best strength over the query's identifiers and their matching entries."""
        s = self.settings
        context = self.context
        best: dict[int, float] = {}
        for identifier in names:
            if isinstance(identifier, tuple):  # a plain word: (text, name, qualifier)
                name, qualifier, wanted = identifier[1], (), (identifier[1],)
            else:
                name, qualifier = identifier.name, identifier.qualifier
                wanted = identifier.parts
            found: dict[int, float] = {e: s["exact"] for e in table.exact(name)}
            for entry in table.same_spelling(name):
                found.setdefault(entry, s["style"])
            if len(wanted) > 1 and s["parts"] > 0:
                for entry in table.with_parts(wanted)[:500]:
                    found.setdefault(entry, s["parts"])
            flat = name.lower().replace("_", "")
            for entry, strength in found.items():
                if strength <= 0:
                    continue
                row = table.rows[entry]
                if qualifier and _scoped(table.qualified[entry], qualifier):
                    strength += s["qualifier"]
                stem = context.files[context.file_of[row]].stem
                if stem and (flat == stem[-1] or flat.rstrip("s") == stem[-1].rstrip("s")):
                    strength += s["stem"]
                if strength > best.get(row, 0.0):
                    best[row] = strength
        return best


def _scoped(qualified: str, qualifier: tuple[str, ...]) -> bool:
    """Whether the definition's scope holds the query's innermost qualifier."""
    scope = {p.lower() for p in qualified.split(".")[:-1]}
    return qualifier[-1].lower() in scope


class Priors(Stage):
    """A chain of priors printed as one, with where its weights came from."""

    def __init__(self, stages: Sequence[Prior], *, fitted: str = "") -> None:
        self.stages = list(stages)
        self.fitted = fitted

    def __call__(self, queries: Sequence[str], results: Results | None = None) -> Results:
        for stage in self.stages:
            results = stage(queries, results)
        return results

    def config(self) -> dict:
        return {"stages": [{"name": s.name, **s.config()} for s in self.stages],
                "fitted": self.fitted}

    def __repr__(self) -> str:
        chain = " >> ".join(repr(s) for s in self.stages)
        return f"priors({chain}, fitted={self.fitted!r})" if self.fitted else chain


def _pack(rows: list[np.ndarray], scores: list[np.ndarray], query_ids) -> Results:
    width = max((len(r) for r in rows), default=0) or 1
    ids = np.full((len(rows), width), -1, dtype=np.int64)
    out = np.full((len(rows), width), -np.inf, dtype=np.float32)
    for q, (r, v) in enumerate(zip(rows, scores, strict=True)):
        ids[q, : len(r)] = r
        out[q, : len(v)] = v
    return Results(out, ids, query_ids)


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else repr(value)


# Defined after Prior, which they build on; importing them here keeps every prior importable
# from this module, as before the split.
from retriever.ranking.file_priors import (  # noqa: E402
    FileCoherence,
    FileSaturation,
    PathPrior,
    PathTerms,
)
