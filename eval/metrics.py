"""Retrieval metrics through pytrec_eval, per-category slices, bootstrap intervals, paired tests.

Conventions (the same as ``trec_eval -c``, which pytrec_eval wraps):

- Metric names are short strings in the ranx style: ``ndcg@10``, ``mrr@10``, ``recall@100``,
  ``map@100``, ``p@10``, ``hit@10``; without a cut-off (``ndcg``, ``mrr``, ``map``) the whole run
  counts. Each maps to a pytrec_eval measure (:data:`MEASURES`); no formula is written here.
- Graded relevance: nDCG uses the grade itself as the gain (linear, not ``2**rel - 1``) with a
  ``log2(rank + 1)`` discount, as trec_eval does. Every other metric is binary: grade >= 1 is
  relevant, grade 0 (or below) is judged non-relevant.
- MRR@k: pytrec_eval's ``recip_rank`` has no cut-off, so the run is first truncated to its top k
  documents (in the tie order below) and ``recip_rank`` is computed on that.
- Ties: pytrec_eval orders documents by score descending and breaks equal scores by document id
  *descending*. :func:`ranked` and :func:`write_trec` use that same order, so a run written to a
  TREC file and evaluated anywhere gives the numbers :func:`evaluate` gives.
- Which queries count: exactly the queries present in the qrels. A query in the qrels whose
  judgments are all 0 (no relevant document) counts, scoring 0 on every metric. A query in the
  qrels missing from the run (nothing retrieved) counts, scoring 0 (pytrec_eval would silently drop
  it; trec_eval's ``-c`` flag keeps it). A query in the run but not in the qrels is ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retriever.errors import DatasetError, InputError

__all__ = [
    "DEFAULT_METRICS",
    "MEASURES",
    "Evaluation",
    "bootstrap_ci",
    "by_category",
    "evaluate",
    "paired_test",
    "ranked",
    "read_qrels",
    "read_trec",
    "write_trec",
]

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]

DEFAULT_METRICS = ("ndcg@10", "mrr@10", "recall@100", "map@100", "p@10")

# Our name -> pytrec_eval measure family; the cut-off, when given, becomes ``family.k``.
MEASURES = {
    "ndcg": "ndcg_cut",
    "mrr": "recip_rank",
    "recall": "recall",
    "map": "map_cut",
    "p": "P",
    "hit": "success",
}
# Without a cut-off these families have a plain whole-run measure instead.
_UNCUT = {"ndcg_cut": "ndcg", "map_cut": "map"}
_NAME = re.compile(r"^([a-z]+)(?:@(\d+))?$")


@dataclass(frozen=True)
class Evaluation:
    """Per-query and mean scores of one run.

    Attributes:
        per_query: ``{metric: {qid: score}}`` over every evaluated query.
        mean: ``{metric: mean over per_query[metric]}``.
    """

    per_query: dict[str, dict[str, float]]
    mean: dict[str, float]


def _parse(name: str) -> tuple[str, int | None]:
    match = _NAME.match(name.strip().lower())
    if not match or match.group(1) not in MEASURES:
        known = ", ".join(f"{key}@k" for key in MEASURES)
        raise InputError(f"unknown metric {name!r}; use one of: {known} (e.g. 'ndcg@10')")
    cutoff = int(match.group(2)) if match.group(2) else None
    if cutoff is not None and cutoff < 1:
        raise InputError(f"metric {name!r}: the cut-off must be at least 1")
    if match.group(1) == "hit" and cutoff is None:
        raise InputError("metric 'hit' needs a cut-off, e.g. 'hit@10'")
    return match.group(1), cutoff


def ranked(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """Order one query's documents as pytrec_eval does: score descending, then doc id descending.

    Args:
        scores: ``{docid: score}`` for one query.

    Returns:
        ``[(docid, score), ...]`` best first.
    """
    return sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)


def _truncate(run: Run, k: int) -> dict[str, dict[str, float]]:
    return {qid: dict(ranked(docs)[:k]) for qid, docs in run.items()}


def _measure(name: str) -> tuple[str, str, int | None]:
    """Return (pytrec_eval measure to request, key of its result, truncation for the run)."""
    short, cutoff = _parse(name)
    family = MEASURES[short]
    if short == "mrr":
        return "recip_rank", "recip_rank", cutoff
    if cutoff is None:
        plain = _UNCUT.get(family, family)
        return plain, plain, None
    return f"{family}.{cutoff}", f"{family}_{cutoff}", None


def evaluate(qrels: Qrels, run: Run, metrics: Sequence[str] = DEFAULT_METRICS) -> Evaluation:
    """Score a run against graded qrels with pytrec_eval.

    Args:
        qrels: ``{qid: {docid: grade}}``; grades are ints, 0 means judged non-relevant.
        run: ``{qid: {docid: score}}``; higher scores rank first, ties as in :func:`ranked`.
        metrics: names such as ``"ndcg@10"``; see the module docstring for the list.

    Returns:
        The per-query and mean scores over every query of ``qrels`` (see the module docstring for
        queries missing from the run or without relevant documents).

    Raises:
        InputError: an unknown metric name or empty qrels.
    """
    import pytrec_eval

    if not qrels:
        raise InputError("qrels are empty: there is no query to evaluate")
    judged = {qid: {doc: int(grade) for doc, grade in docs.items()} for qid, docs in qrels.items()}
    # pytrec_eval drops a query whose run is empty, so every qrels query gets at least a dict.
    base = {qid: {doc: float(score) for doc, score in run.get(qid, {}).items()} for qid in judged}
    per_query: dict[str, dict[str, float]] = {}
    mean: dict[str, float] = {}
    for name in metrics:
        measure, key, truncate = _measure(name)
        scored = _truncate(base, truncate) if truncate else base
        result = pytrec_eval.RelevanceEvaluator(judged, {measure}).evaluate(scored)
        values = {qid: float(result.get(qid, {}).get(key, 0.0)) for qid in judged}
        per_query[name] = values
        mean[name] = float(np.mean(list(values.values())))
    return Evaluation(per_query=per_query, mean=mean)


def by_category(per_query: Mapping[str, float], categories: Mapping[str, str]) -> dict[str, float]:
    """Average per-query scores within each category.

    Args:
        per_query: ``{qid: score}`` for one metric.
        categories: ``{qid: category}``; queries without a category go to ``"unknown"``.

    Returns:
        ``{category: mean score}``, sorted by category name.
    """
    groups: dict[str, list[float]] = {}
    for qid, score in per_query.items():
        groups.setdefault(categories.get(qid, "unknown"), []).append(score)
    return {name: float(np.mean(values)) for name, values in sorted(groups.items())}


def bootstrap_ci(
    scores: Sequence[float] | Mapping[str, float],
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of per-query scores.

    Queries are resampled with replacement ``resamples`` times from a generator seeded with
    ``seed``, so the interval is the same on every call.

    Args:
        scores: per-query scores (a sequence, or ``{qid: score}``).
        resamples: number of bootstrap samples.
        confidence: coverage of the interval, e.g. 0.95.
        seed: seed of the numpy generator.

    Returns:
        ``(low, high)`` bounds of the mean.

    Raises:
        InputError: no scores, or a confidence outside (0, 1).
    """
    values = np.asarray(list(scores.values()) if isinstance(scores, Mapping) else scores, float)
    if values.size == 0:
        raise InputError("bootstrap_ci needs at least one score")
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, values.size, size=(resamples, values.size))
    means = values[picks].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def paired_test(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    method: str = "randomization",
    resamples: int = 10000,
    seed: int = 0,
) -> float:
    """Two-sided p-value that two systems' per-query scores have the same mean.

    Only queries scored in both runs are paired. ``"randomization"`` is the paired permutation
    (sign-flip) test of Smucker et al. (2007): each query's difference has its sign flipped at
    random ``resamples`` times; the p-value is ``(hits + 1) / (resamples + 1)`` where hits count
    mean differences at least as extreme as the observed one. ``"t"`` is scipy's paired t-test.
    Identical score lists give p = 1 under both.

    Args:
        a: ``{qid: score}`` of system A for one metric.
        b: ``{qid: score}`` of system B for the same metric.
        method: ``"randomization"`` or ``"t"``.
        resamples: random sign flips (randomization only).
        seed: seed of the numpy generator (randomization only).

    Returns:
        The p-value in (0, 1].

    Raises:
        InputError: no common query or an unknown method.
    """
    common = sorted(set(a) & set(b))
    if not common:
        raise InputError("the two runs share no query to compare")
    diffs = np.array([a[qid] - b[qid] for qid in common], dtype=float)
    if not np.any(diffs):
        return 1.0
    if method == "t":
        from scipy import stats

        p = float(stats.ttest_rel([a[q] for q in common], [b[q] for q in common]).pvalue)
        return 1.0 if math.isnan(p) else p
    if method != "randomization":
        raise InputError(f"unknown test {method!r}; use 'randomization' or 't'")
    observed = abs(diffs.mean())
    rng = np.random.default_rng(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(resamples, diffs.size))
    flipped = np.abs((signs * diffs).mean(axis=1))
    # A small tolerance so that float noise does not count an equal mean as smaller.
    hits = int(np.sum(flipped >= observed - 1e-12))
    return (hits + 1) / (resamples + 1)


def write_trec(run: Run, path: str | Path, *, tag: str = "run", k: int | None = None) -> None:
    """Write a run as a TREC run file: ``qid Q0 docid rank score tag``, one line per document.

    Queries are written in sorted order; documents in :func:`ranked` order (score descending,
    doc id descending), ranks from 1, so the file is byte-for-byte reproducible.

    Args:
        run: ``{qid: {docid: score}}``.
        path: file to write.
        tag: the run tag (last column); no whitespace.
        k: keep at most this many documents per query.

    Raises:
        InputError: an id or the tag contains whitespace (the format would break).
    """
    lines = []
    for qid in sorted(run):
        for rank, (doc, score) in enumerate(ranked(run[qid])[:k], start=1):
            for value in (qid, doc, tag):
                if not value or any(ch.isspace() for ch in value):
                    raise InputError(
                        f"TREC run ids and tags cannot be empty or hold spaces: {value!r}"
                    )
            lines.append(f"{qid} Q0 {doc} {rank} {score!r} {tag}\n")
    Path(path).write_text("".join(lines), encoding="utf-8")


def read_trec(path: str | Path) -> dict[str, dict[str, float]]:
    """Read a TREC run file written by :func:`write_trec` or any TREC tool.

    Args:
        path: a file of ``qid Q0 docid rank score tag`` lines.

    Returns:
        ``{qid: {docid: score}}``.

    Raises:
        DatasetError: a line without six columns or with a non-numeric score (names file, line).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such run file")
    run: dict[str, dict[str, float]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 6:
                raise DatasetError(
                    f"{path}:{number}: expected 'qid Q0 docid rank score tag', "
                    f"got {len(parts)} columns"
                )
            try:
                score = float(parts[4])
            except ValueError:
                raise DatasetError(f"{path}:{number}: score {parts[4]!r} is not a number") from None
            run.setdefault(parts[0], {})[parts[2]] = score
    return run


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read qrels from a BEIR TSV (``query-id corpus-id score`` with a header) or a TREC qrels file.

    Args:
        path: a ``.tsv`` with three columns, or TREC ``qid iter docid grade`` lines.

    Returns:
        ``{qid: {docid: grade}}``.

    Raises:
        DatasetError: a line with the wrong column count or a non-integer grade.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such qrels file")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts or (number == 1 and parts[0] == "query-id"):
                continue
            if len(parts) not in (3, 4):
                raise DatasetError(f"{path}:{number}: expected 3 or 4 columns, got {len(parts)}")
            qid, doc, grade = parts[0], parts[-2], parts[-1]
            try:
                qrels.setdefault(qid, {})[doc] = int(grade)
            except ValueError:
                raise DatasetError(f"{path}:{number}: grade {grade!r} is not an integer") from None
    return qrels
