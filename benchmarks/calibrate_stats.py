"""The statistics of ``calibrate.py fit``: the collected row files read (raw BM25 scores in the
calibrator's log scale), the weighted design matrix, the bounded logistic fit, and the check
measures (reliability table, ECE, Brier; each query's best relevance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retriever.ranking import calibration as cal

# Queries whose answer is not in the index weigh half as much as a source of real ones:
# they are what the relevance must recognise, but not what most searches are.
NONSENSE_WEIGHT = 0.5


def _load(folder: Path, pattern: str, log: bool = False) -> list[dict[str, np.ndarray]]:
    """The row files matching ``pattern``; ``log``: scores in the raw-BM25 log scale."""
    found = []
    for path in sorted(folder.glob(pattern)):
        with np.load(path) as data:
            table = {key: data[key] for key in data.files} | {"source": path.stem}
        if log:
            table["score"], table["gap"] = _log_scores(table)
        found.append(table)
    return found


def _design(tables, names) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X, y and weights; each source (semble repositories together, each corpus) weighs
    alike, so a corpus with many queries does not decide alone."""
    xs, ys, ws = [], [], []
    sources: dict[str, int] = {}
    for table in tables:
        kind = table["source"].split("-", 1)[0]
        sources[kind] = sources.get(kind, 0) + len(table["label"])
    for table in tables:
        kind = table["source"].split("-", 1)[0]
        share = NONSENSE_WEIGHT if kind == "nonsense" else 1.0
        xs.append(np.column_stack([table[n] for n in names]) if names
                  else np.zeros((len(table["label"]), 0)))
        ys.append(table["label"])
        ws.append(np.full(len(table["label"]), share / sources[kind]))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ws) * len(sources)


def _fit(tables, names, *, l2: float = 1e-3) -> tuple[dict, float]:
    """Weighted logistic regression; weights of cal.MONOTONE features >= 0, of cal.ANTITONE
    features <= 0."""
    from scipy.optimize import minimize

    x, y, w = _design(tables, names)
    w = w / w.sum()
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std

    def loss(theta):
        logit = z @ theta[1:] + theta[0]
        p = 1.0 / (1.0 + np.exp(-np.clip(logit, -60, 60)))
        value = -np.sum(w * (y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)))
        grad = np.concatenate([[np.sum(w * (p - y))], z.T @ (w * (p - y))])
        value += l2 * np.sum(theta[1:] ** 2)
        grad[1:] += 2 * l2 * theta[1:]
        return value, grad

    bounds = [(None, None)] + [(0.0, None) if n in cal.MONOTONE else
                               (None, 0.0) if n in cal.ANTITONE else (None, None)
                               for n in names]
    theta = minimize(loss, np.zeros(len(names) + 1), jac=True, method="L-BFGS-B",
                     bounds=bounds).x
    weights = {n: float(theta[i + 1] / std[i]) for i, n in enumerate(names)}
    bias = float(theta[0] - sum(theta[i + 1] * mean[i] / std[i] for i in range(len(names))))
    return {n: round(v, 5) for n, v in weights.items() if abs(v) > 1e-7}, round(bias, 5)


def _predict(entry: dict, table: dict) -> np.ndarray:
    calibrator = cal.Calibrator(weights=entry["weights"], bias=entry["bias"])
    return calibrator.relevance(table)


def _quality(p: np.ndarray, y: np.ndarray, bins: int = 10) -> dict:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            gap = abs(p[inside].mean() - y[inside].mean())
            ece += inside.mean() * gap
            table.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": int(inside.sum()),
                          "predicted": round(float(p[inside].mean()), 3),
                          "observed": round(float(y[inside].mean()), 3)})
    return {"n": len(y), "base_rate": round(float(y.mean()), 4),
            "brier": round(float(np.mean((p - y) ** 2)), 4), "ece": round(float(ece), 4),
            "reliability": table}


def _tops(tables, entry) -> tuple[np.ndarray, np.ndarray]:
    """Per query: the best relevance of its hits and whether its top hit is relevant."""
    best, relevant = [], []
    for table in tables:
        p = _predict(entry, table)
        for q in np.unique(table["query"]):
            mine = table["query"] == q
            best.append(p[mine].max())
            relevant.append(table["label"][mine][0])
    return np.asarray(best), np.asarray(relevant)


def _names(scale: str, cosine: bool) -> list[str]:
    names = ["rank", "symbol", "coverage", "best_coverage", "terms"]
    if scale != "any":
        names = ["score", "gap", *names]
    return [*names, "cosine", "best_cosine"] if cosine else names


def _log_scores(table) -> tuple[np.ndarray, np.ndarray]:
    """Raw BM25 scores in the calibrator's log scale, and the gap in it."""
    raw = np.log1p(np.maximum(table["raw_score"], 0.0))
    top = np.zeros_like(raw)
    for q in np.unique(table["query"]):
        mine = table["query"] == q
        top[mine] = raw[mine][0]
    return raw, top - raw
