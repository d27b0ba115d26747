"""The priors that read where a chunk lives: its file's name and folder (:class:`PathTerms`),
the other candidates of its file (:class:`FileCoherence`, :class:`FileSaturation`) and the
kind of file it is (:class:`PathPrior`). :mod:`retriever.ranking.priors` has the rest and
re-exports these."""

from __future__ import annotations

import numpy as np

from retriever.errors import InputError
from retriever.ranking.context import TRAITS, CodeContext
from retriever.ranking.priors import Prior
from retriever.ranking.query import analyze

__all__ = ["PathTerms", "FileCoherence", "PathPrior", "FileSaturation"]


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
