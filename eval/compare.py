"""Compare two systems query by query: means and a paired significance test per metric."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from eval.metrics import DEFAULT_METRICS, evaluate, paired_test, read_qrels, read_trec
from retriever.errors import DatasetError, InputError

__all__ = ["Comparison", "compare"]


@dataclass
class Comparison:
    """Two systems side by side: ``{metric: (mean_a, mean_b, p_value)}`` over common queries."""

    a: str
    b: str
    rows: dict[str, tuple[float, float, float]]
    queries: int
    method: str


def _per_query(path: Path, qrels: Mapping | None, metrics: Sequence[str]) -> dict[str, dict]:
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DatasetError(f"{path}:{error.lineno}: malformed JSON ({error.msg})") from None
        if qrels is not None and "run" in data:
            return evaluate(qrels, data["run"], metrics).per_query
        if "per_query" not in data:
            raise DatasetError(f"{path}: a result JSON needs 'per_query' (or 'run' with --qrels)")
        return data["per_query"]
    if qrels is None:
        raise InputError(f"{path}: a TREC run file needs qrels to be scored")
    return evaluate(qrels, read_trec(path), metrics).per_query


def compare(
    a: str | Path,
    b: str | Path,
    *,
    qrels: str | Path | Mapping | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    method: str = "randomization",
) -> Comparison:
    """Compare two runs query by query with a paired significance test.

    Args:
        a, b: TREC run files (need ``qrels``) or result JSON files written by
            :func:`eval.report.write_json` (their per-query scores are used as they are).
        qrels: a qrels file (BEIR TSV or TREC) or ``{qid: {docid: grade}}``.
        metrics: for TREC runs, which metrics to compute; for JSON, those present are kept.
        method: ``"randomization"`` or ``"t"`` (see :func:`eval.metrics.paired_test`).
    """
    judged = read_qrels(qrels) if isinstance(qrels, (str, Path)) else qrels
    first, second = _per_query(Path(a), judged, metrics), _per_query(Path(b), judged, metrics)
    rows = {}
    common: set[str] = set()
    for metric in (m for m in first if m in second):
        left, right = first[metric], second[metric]
        common = set(left) & set(right)
        if not common:
            continue
        mean_a = sum(left[q] for q in common) / len(common)
        mean_b = sum(right[q] for q in common) / len(common)
        rows[metric] = (mean_a, mean_b, paired_test(left, right, method=method))
    if not rows:
        raise InputError(f"{a} and {b} share no metric over common queries")
    return Comparison(a=str(a), b=str(b), rows=rows, queries=len(common), method=method)
