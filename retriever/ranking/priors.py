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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from indexing.symbols import SymbolTable
from retriever.errors import InputError
from retriever.pipeline import Results, Stage
from retriever.ranking.context import TRAITS, CodeContext
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


class PathTerms(Prior):
    """Add ``stem x share`` (and ``folder x share``) where the file stem (the parent folder)
    holds a share of the query's content words, prefixes of 3+ letters matching; ``mention``
    where the query names the file. Natural-language queries only; ``symbol`` scales it for
    symbol queries. The file's best-scoring chunk gets the whole gain, its other chunks
    ``spread`` of it: a matching file name says the file is wanted, not every piece of it, and
    lifting every piece buries a target in another file under them (line-level targets).
    ``long`` (0: off): a query with ``n`` content words, more than ``long``, gets
    ``long / n`` of the gain (see :func:`_long_scale`)."""

    name = "path_terms"

    def __init__(self, context: CodeContext, *, stem: float = 1.0, folder: float = 0.5,
                 mention: float = 1.0, symbol: float = 0.0, spread: float = 1.0,
                 long: int = 0) -> None:
        super().__init__(context, stem=stem, folder=folder, mention=mention, symbol=symbol,
                         spread=spread, **_long_setting(long))

    def rescore(self, query, ids, scores):
        info = analyze(query)
        s = self.settings
        words = _content_words(info)
        scale = s["symbol"] if info.is_symbol else 1.0
        scale *= _long_scale(len(words), s.get("long", 0))
        if scale <= 0 or not (words or info.paths) or not len(ids):
            return ids, scores
        context = self.context
        files = context.file_of[ids]
        gain: dict[int, float] = {}
        for number in set(files.tolist()):
            facts = context.files[number]
            value = 0.0
            if words:
                value += s["stem"] * _share(words, facts.stem)
                value += s["folder"] * _share(words, facts.folders)
            if info.paths and any(facts.path.endswith(p) or p.endswith(facts.path)
                                  for p in info.paths):
                value += s["mention"]
            gain[number] = value * scale
        added = np.array([gain[f] for f in files.tolist()])
        if s["spread"] != 1.0:
            factor = np.full(len(ids), float(s["spread"]))
            factor[list(_best_row_of_file(files, scores).values())] = 1.0
            added = added * factor
        return ids, scores + added


def _content_words(info) -> list[str]:
    """The words of a query the path terms match (3+ letters, stopwords dropped)."""
    return [w for w in info.words if len(w) > 2]


def _long_setting(long: int) -> dict:
    """``{"long": long}``, or nothing when it is off: a stage without it prints (and
    configures) as it did before the setting existed."""
    if isinstance(long, bool) or not isinstance(long, int) or long < 0:
        raise InputError(f"long must be a whole number of words, 0 (off) or more; got "
                         f"{long!r}.")
    return {"long": long} if long else {}


def _long_scale(words: int, long: int) -> float:
    """``long / words`` when a query has more content words than ``long`` (> 0), else 1.

    A docstring-like sentence ("Update the default model ID in the model card.") matches
    many chunks' own text, and its words also name many files and folders; there a guess
    from the file around a chunk lifts the wrong function of a well-named file above the
    right one elsewhere (mined line-level sets), while on the semble tune half these priors
    gain least for such queries (path terms +0.085 NDCG@10 at four words or fewer, +0.040
    at seven or eight; coherence costs 0.09 on the few of nine or more)."""
    return long / words if long and words > long else 1.0


def _best_row_of_file(files: np.ndarray, values: np.ndarray) -> dict[int, int]:
    """{file number: the candidate row with the highest value in it} (the first on ties)."""
    best: dict[int, int] = {}
    for i, number in enumerate(files.tolist()):
        if number not in best or values[i] > values[best[number]]:
            best[number] = i
    return best


def _share(words: list[str], parts: tuple[str, ...]) -> float:
    if not parts:
        return 0.0
    hits = 0
    for word in words:
        for part in parts:
            short, long = (word, part) if len(word) <= len(part) else (part, word)
            if short == long or (len(short) >= 3 and long.startswith(short)):
                hits += 1
                break
    return hits / len(words)


class FileCoherence(Prior):
    """Add ``weight x best score x file sum / largest file sum`` to each file's best chunk:
    a file with several good chunks is more likely the answer than a lone good chunk.
    ``long`` (0: off) scales it as :class:`PathTerms` does for a query of many words."""

    name = "coherence"

    def __init__(self, context: CodeContext, *, weight: float = 0.2, long: int = 0) -> None:
        super().__init__(context, weight=weight, **_long_setting(long))

    def rescore(self, query, ids, scores):
        if not len(ids) or self.settings["weight"] == 0:
            return ids, scores
        scale = _long_scale(len(_content_words(analyze(query))), self.settings.get("long", 0))
        files = self.context.file_of[ids]
        positive = np.clip(scores, 0, None)
        sums: dict[int, float] = {}
        for number, value in zip(files.tolist(), positive.tolist(), strict=True):
            sums[number] = sums.get(number, 0.0) + value
        best = _best_row_of_file(files, positive)
        largest = max(sums.values())
        if largest <= 0:
            return ids, scores
        unit = scale * self.settings["weight"] * positive.max()
        out = scores.copy()
        for number, i in best.items():
            out[i] += unit * sums[number] / largest
        return ids, out


class PathPrior(Prior):
    """Multiply the scores of files with a trait (test, example, ...; see
    :data:`~retriever.ranking.context.TRAITS`) by its factor; a query whose intent words name
    the trait keeps it at 1 (``intents=False`` turns that off)."""

    name = "path_prior"
    _INTENT = {"test": "test", "example": "example", "benchmark": "benchmark", "docs": "docs",
               "generated": "generated", "vendored": "vendored", "compat": "compat",
               "declaration": "type"}

    def __init__(self, context: CodeContext, *, intents: bool = True, **factors: float) -> None:
        unknown = set(factors) - set(TRAITS)
        if unknown:
            raise InputError(f"Unknown path traits {sorted(unknown)}; known: "
                             f"{', '.join(TRAITS)}.")
        super().__init__(context, intents=intents,
                         **{t: float(factors.get(t, 1.0)) for t in TRAITS})

    def rescore(self, query, ids, scores):
        intents = analyze(query).intents if self.settings["intents"] else frozenset()
        factors = self._factors(intents)
        return ids, scores * factors[self.context.file_of[ids]]

    def _factors(self, intents: frozenset) -> np.ndarray:
        # Kept with the index's context: this stage is rebuilt for every search, and the
        # per-file loop below costs about 10 ms on a repository of 9,000 chunks.
        key = (self.name, tuple(self.settings.items()), intents)
        found = self.context.derived.get(key)
        if found is None:
            wanted = {t: f for t, f in self.settings.items() if t in TRAITS
                      and self._INTENT.get(t) not in intents}
            found = np.array([
                float(np.prod([wanted.get(t, 1.0) for t in facts.traits] or [1.0]))
                for facts in self.context.files
            ])
            self.context.derived[key] = found
        return found


class FileSaturation(Prior):
    """Greedy top k: the n-th chunk of a file beyond ``after`` is multiplied by
    ``decay ** (n - after)`` unless it scores at least ``keep`` times the file's best, and a
    chunk of the same definition as one just taken (adjacent lines, one symbol) by ``split``
    as well."""

    name = "saturation"

    def __init__(self, context: CodeContext, *, after: int = 1, decay: float = 0.5,
                 split: float = 1.0, keep: float = 1.0) -> None:
        super().__init__(context, after=after, decay=decay, split=split, keep=keep)

    def rescore(self, query, ids, scores):
        s = self.settings
        if not len(ids):
            return ids, scores
        context = self.context
        order = np.argsort(-scores, kind="stable")
        taken: dict[int, int] = {}
        best: dict[int, float] = {}
        spans: dict[int, list[int]] = {}
        out = np.empty_like(scores)
        for i in order.tolist():
            row = int(ids[i])
            number = int(context.file_of[row])
            count = taken.get(number, 0)
            value = scores[i]
            # A chunk nearly as strong as its file's best is an answer of its own (a line-level
            # target beside its file's top chunk): ``keep`` spares it the decay.
            if count >= s["after"] and value < s["keep"] * best[number]:
                value *= s["decay"] ** (count - s["after"] + 1)
            best.setdefault(number, scores[i])
            if s["split"] != 1.0 and any(_same_definition(context, row, other)
                                         for other in spans.get(number, ())):
                value *= s["split"]
            out[i] = value
            taken[number] = count + 1
            spans.setdefault(number, []).append(row)
        return ids, out


def _same_definition(context: CodeContext, row: int, other: int) -> bool:
    symbol = context.row_symbols[row]
    if symbol is None or symbol != context.row_symbols[other]:
        return False
    return (context.end[other] + 1 >= context.start[row] - 1
            and context.end[row] + 1 >= context.start[other] - 1)


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
