"""Calibrated relevance: what a hit's score means as a probability that it is relevant.

Raw scores are not comparable: a hybrid score is a fusion of ranks, a BM25 score grows with
query length, and the ``code`` priors divide every score by the query's best, so the top hit
of a nonsense query scores exactly like the top hit of a good one. A :class:`Calibrator` maps
cheap features of each hit to an estimate of P(relevant), fitted on tune data:

- ``score``: the pipeline's final score (log-scaled for raw BM25), and ``gap``, its distance
  to the query's best score in that scale;
- ``rank``: ``log(1 + rank)``, 0-based;
- ``symbol``: 1 when the query is one identifier (:func:`retriever.ranking.query.analyze`);
- ``coverage``: the share of the query's distinct tokens (the lexical index's tokenizer)
  found in the hit's path and text: what tells a nonsense query from a real one whatever
  the ranking did; ``best_coverage``, the most any hit of the answer has; ``terms``:
  ``log(1 + distinct query tokens)``;
- ``cosine``: the query vector against the hit's (the best piece of a merged hit), and
  ``best_cosine``, the answer's highest; only for dense and hybrid search with the encoder
  the calibration was fitted with.

The model is a logistic regression whose weights on ``score``, ``coverage`` and ``cosine``
are constrained to be non-negative and those on ``gap`` and ``rank`` non-positive, so
relevance never falls when the score rises with the other features fixed, nor along one
answer's ranking unless a lower hit holds more of the query. One calibrator per mode and
score scale (``raw``: the first stages alone, ``priors``: the ``code`` presets, ``fused``:
hybrid search of a document corpus, whose default preset is a score fusion without priors,
``any``: a pipeline of the caller's own or a reranker, where the score's scale is unknown and
is not used), each with and without the cosine feature. :data:`CONFIDENT` is the relevance a
query's best hit needs for the answer to count as a confident match. :data:`FITTED` holds
the fits and :data:`FITTED_BY` the data and commands (``benchmarks/calibrate.py fit
--write`` rewrites them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from retriever.errors import InputError
from retriever.ranking.query import analyze

__all__ = ["FEATURES", "Calibrator", "FITTED", "FITTED_BY", "CONFIDENT", "FINGERPRINT", "IDENTITY",
           "fitted_model", "calibrator_for", "scale_of", "features", "hit_table", "coverage",
           "check_min_score"]

FEATURES = ("score", "gap", "rank", "symbol", "coverage", "best_coverage", "terms", "cosine",
            "best_cosine")
# Weights that must not be negative: relevance is monotone in each of these.
MONOTONE = ("score", "coverage", "best_coverage", "cosine", "best_cosine")
# Weights that must not be positive: a hit further below the best, or ranked lower, never
# gains. With MONOTONE this makes relevance fall along one answer's ranking, except where a
# lower hit holds more of the query (coverage, cosine).
ANTITONE = ("gap", "rank")


@dataclass(frozen=True)
class Calibrator:
    """``relevance = sigmoid(bias + sum(weights[f] x feature f))``.

    Attributes:
        weights: ``{feature: weight}`` over a subset of :data:`FEATURES`; the weights of
            :data:`MONOTONE` features are >= 0.
        bias: the intercept.
        log_score: the score is a raw BM25 score: use ``log(1 + max(score, 0))``.
        fitted: the data and command it was fitted with.
    """

    weights: dict
    bias: float
    log_score: bool = False
    fitted: str = ""

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(FEATURES)
        if unknown:
            raise InputError(f"Unknown calibration features {sorted(unknown)}; known: "
                             f"{', '.join(FEATURES)}.")
        negative = [f for f in MONOTONE if self.weights.get(f, 0.0) < 0]
        positive = [f for f in ANTITONE if self.weights.get(f, 0.0) > 0]
        if negative or positive:
            raise InputError(f"Calibration weights of {negative or positive} must be "
                             f"{'>=' if negative else '<='} 0 (relevance is monotone in them).")

    @property
    def uses_cosine(self) -> bool:
        return any(self.weights.get(f, 0.0) != 0.0 for f in ("cosine", "best_cosine"))

    def relevance(self, table: dict[str, np.ndarray]) -> np.ndarray:
        """``(n,)`` float64 probabilities in [0, 1] from :func:`features`' table."""
        logit = np.full(len(next(iter(table.values()))), self.bias, dtype=np.float64)
        for name, weight in self.weights.items():
            logit = logit + weight * np.nan_to_num(table[name], nan=0.0, posinf=0.0,
                                                   neginf=0.0)
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -60.0, 60.0)))

    def __call__(self, scores: Sequence[float], **evidence) -> np.ndarray:
        """Relevance of hits ranked in this order: ``features(scores, ...)`` then
        :meth:`relevance`."""
        return self.relevance(features(scores, log_score=self.log_score, **evidence))


def features(scores: Sequence[float], *, coverage: Sequence[float], terms: int,
             symbol: bool, cosine: Sequence[float] | None = None,
             log_score: bool = False, top: float | None = None) -> dict[str, np.ndarray]:
    """The feature table of one query's hits, best first.

    Args:
        scores: ``(n,)`` final scores in rank order.
        coverage: ``(n,)`` share of the query's tokens in each hit (:func:`coverage`).
        terms: distinct tokens of the query.
        symbol: the query is one identifier.
        cosine: ``(n,)`` query-hit cosine, or None (the feature is then 0).
        log_score: scores are raw BM25.
        top: the query's best score (default ``scores[0]``).

    Returns:
        ``{feature: (n,) float64}`` for every name of :data:`FEATURES`.
    """
    raw = np.asarray(scores, dtype=np.float64)
    n = len(raw)
    best = raw[0] if top is None and n else (top if top is not None else 0.0)
    if log_score:
        raw, best = np.log1p(np.maximum(raw, 0.0)), math.log1p(max(best, 0.0))
    return {
        "score": raw,
        "gap": best - raw,
        "rank": np.log1p(np.arange(n, dtype=np.float64)),
        "symbol": np.full(n, 1.0 if symbol else 0.0),
        **_with_best("coverage", coverage, n),
        "terms": np.full(n, math.log1p(terms)),
        **_with_best("cosine", cosine, n),
    }


def _with_best(name: str, values: Sequence[float] | None, n: int) -> dict[str, np.ndarray]:
    """A hit's evidence and the answer's best of it: ``{name: (n,), "best_" + name: (n,)}``
    float64, zeros when ``values`` is None."""
    column = np.zeros(n) if values is None else np.asarray(values, dtype=np.float64)
    return {name: column, f"best_{name}": np.full(n, column.max() if n else 0.0)}


def hit_table(query: str, candidates: Sequence, *, tokenize: Callable[[str], list[str]],
              vectors: np.ndarray | None = None, vector: np.ndarray | None = None,
              log_score: bool = False, top: float | None = None) -> dict[str, np.ndarray]:
    """:func:`features` of assembled hits (:class:`retriever.hits.Candidate`, best first).

    Args:
        query: the query.
        candidates: the hits, with ``best.path``, ``text()``, ``rows`` and ``score``.
        tokenize: the lexical index's tokenizer (coverage is counted in its tokens).
        vectors: ``(rows, dim)`` the index's vectors, with ``vector`` the ``(dim,)`` query
            vector: the cosine feature (max over a merged hit's pieces); else it is 0.
        log_score, top: as for :func:`features`.
    """
    wanted = set(tokenize(query))
    found = [coverage(wanted, tokenize(f"{c.best.path}\n{c.text()}")) for c in candidates]
    cosine = None
    if vector is not None and vectors is not None:
        cosine = []
        # A damaged vector file may hold huge values: its cosine becomes NaN (then 0 in the
        # relevance), without overflow warnings on the way.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            unit = vector / max(float(np.linalg.norm(vector)), 1e-12)
            for c in candidates:
                rows = np.asarray(vectors[c.rows], dtype=np.float32)
                norms = np.maximum(np.linalg.norm(rows, axis=1), 1e-12)
                cosine.append(float((rows @ unit / norms).max()))
    return features([c.score for c in candidates], coverage=found, terms=len(wanted),
                    symbol=analyze(query).is_symbol, cosine=cosine, log_score=log_score,
                    top=top)


def coverage(query_tokens: set[str], hit_tokens: Sequence[str]) -> float:
    """The share of ``query_tokens`` found among ``hit_tokens`` (0 for an empty query)."""
    if not query_tokens:
        return 0.0
    return len(query_tokens.intersection(hit_tokens)) / len(query_tokens)


def check_min_score(min_score: object) -> float | None:
    """``min_score`` as a float in [0, 1] (None: no threshold), else InputError."""
    if min_score is None:
        return None
    if isinstance(min_score, bool) or not isinstance(min_score, int | float) or not (
        0.0 <= float(min_score) <= 1.0
    ):
        raise InputError(f"min_score is a relevance in [0, 1], got {min_score!r}; pass e.g. "
                         f"{CONFIDENT:.2f} (the confidence threshold) to keep confident hits.")
    return float(min_score)


def scale_of(pipeline: object, *, mode: str, code: bool, reranked: bool = False) -> str:
    """The score scale of a search: ``any`` for a caller's own stage or a reranker (scale
    unknown), ``raw`` for ``plain`` (and dense or lexical documents, which get no priors),
    ``priors`` for the code presets on code, ``fused`` for hybrid documents."""
    if reranked or not (pipeline is None or isinstance(pipeline, str)):
        return "any"
    if pipeline == "plain":
        return "raw"
    if code:
        return "priors"
    return "fused" if mode == "hybrid" else "raw"


def fitted_model(entry: dict | None) -> bool:
    """Whether an index's encoder entry is the model the cosine features were fitted on: its
    fingerprint is :data:`FINGERPRINT`, or its merge identity :data:`IDENTITY` (the same
    model merged on another kind of CPU)."""
    return entry is not None and (entry.get("fingerprint") == FINGERPRINT
                                  or entry.get("identity") == IDENTITY)


def calibrator_for(mode: str, scale: str, *, cosine: bool = False) -> Calibrator:
    """The calibrator of a search mode (``lexical``, ``dense``, ``hybrid``) and score scale
    (``raw``, ``priors``, ``fused``, ``any``); ``cosine``: the query-hit cosine is available (the
    index's encoder is the one of :data:`FINGERPRINT`)."""
    mode = getattr(mode, "value", mode)
    suffix = "" if cosine and mode != "lexical" else "/nocos"
    for key in (f"{mode}/{scale}{suffix}", f"{mode}/any{suffix}", "lexical/any/nocos"):
        if key in FITTED:
            entry = FITTED[key]
            return Calibrator(weights=dict(entry["weights"]), bias=entry["bias"],
                              log_score=entry.get("log_score", False),
                              fitted=f"{key}, fitted on {entry.get('hits', '?')} hits: "
                                     f"{FITTED_BY}")
    return _UNFITTED


# Before any fit: relevance from token coverage alone (a hit holding none of the query's
# words is unlikely to be what was asked for).
_UNFITTED = Calibrator(weights={"coverage": 4.0, "rank": -0.5}, bias=-2.5,
                       fitted="not fitted: a hand-set placeholder")

# The default model's merge identity (SentenceTransformerEncoder.identity(), default
# settings): the same on every CPU, where FINGERPRINT below is the merged weights' digest on
# the machine that fitted (AVX-512: an AVX2 machine's merge rounds to other bytes). Either
# one names the model whose cosines the calibration was fitted on.
IDENTITY = "fa9027b0f0052c1f31f90f2436f9e808"

# fitted:start (written by benchmarks/calibrate.py fit --write; do not edit by hand)
FINGERPRINT = '0fa44fc8441df78891c21558c89def01'  # the default model's: cosine features need it
CONFIDENT = 0.3
FITTED_BY = (
    'python benchmarks/calibrate.py fit --fingerprint 0fa44fc8441df78891c21558c89def01 '
    "--out '<calib>' --write, on the rows of: python benchmarks/calibrate.py collect --mode "
    "lexical --index-root '<lex-idx>' --out '<calib>'; python benchmarks/calibrate.py "
    "collect --mode hybrid --mode dense --index-root '<hyb-idx>' --out '<calib>' (tune half "
    'and corpora only; hits = tune rows)'
)
FITTED: dict[str, dict] = {
    'dense/any': {'bias': -2.68057, 'log_score': False, 'hits': 50200, 'weights':
        {'best_coverage': 0.99462, 'cosine': 0.30634, 'coverage': 3.42226, 'rank': -0.77492,
        'symbol': -0.39185, 'terms': -0.11965}},
    'dense/any/nocos': {'bias': -2.56074, 'log_score': False, 'hits': 50200, 'weights':
        {'best_coverage': 1.02134, 'coverage': 3.46333, 'rank': -0.79238, 'symbol': -0.42401,
        'terms': -0.10665}},
    'dense/priors': {'bias': -4.18553, 'log_score': False, 'hits': 12010, 'weights':
        {'best_coverage': 1.01528, 'cosine': 4.17398, 'coverage': 1.93215, 'gap': -0.02014,
        'rank': -0.2349, 'score': 0.06279, 'symbol': -0.46618, 'terms': 0.03922}},
    'dense/priors/nocos': {'bias': -4.0357, 'log_score': False, 'hits': 12010, 'weights':
        {'best_coverage': 1.76928, 'coverage': 2.52556, 'rank': -0.39982, 'score': 0.09631,
        'symbol': -0.63921, 'terms': 0.64433}},
    'dense/raw': {'bias': -2.6555, 'log_score': False, 'hits': 38190, 'weights':
        {'best_coverage': 1.39015, 'coverage': 3.21496, 'gap': -3.76139, 'rank': -0.57534,
        'symbol': -0.24812, 'terms': -0.10187}},
    'dense/raw/nocos': {'bias': -2.65572, 'log_score': False, 'hits': 38190, 'weights':
        {'best_coverage': 1.39047, 'coverage': 3.21469, 'gap': -3.76201, 'rank': -0.57539,
        'symbol': -0.24791, 'terms': -0.10174}},
    'hybrid/any': {'bias': -3.72801, 'log_score': False, 'hits': 76380, 'weights':
        {'best_coverage': 1.23011, 'cosine': 2.10761, 'coverage': 2.61497, 'rank': -0.80324,
        'symbol': -0.00904, 'terms': -0.04746}},
    'hybrid/any/nocos': {'bias': -2.92532, 'log_score': False, 'hits': 76380, 'weights':
        {'best_coverage': 1.5394, 'coverage': 2.69776, 'rank': -0.9403, 'symbol': -0.17041,
        'terms': 0.03158}},
    'hybrid/fused': {'bias': -7.14674, 'log_score': False, 'hits': 26180, 'weights': {'cosine':
        2.65137, 'coverage': 1.8085, 'gap': -0.72046, 'rank': -0.61687, 'score': 3.52743,
        'terms': 0.53965}},
    'hybrid/fused/nocos': {'bias': -7.21645, 'log_score': False, 'hits': 26180, 'weights':
        {'best_coverage': 0.6301, 'coverage': 1.89168, 'gap': -0.14358, 'rank': -0.50921,
        'score': 5.13574, 'terms': 0.423}},
    'hybrid/priors': {'bias': -4.32972, 'log_score': False, 'hits': 12010, 'weights':
        {'best_coverage': 0.66692, 'cosine': 5.31933, 'coverage': 1.72072, 'gap': -0.01273,
        'rank': -0.45047, 'score': 0.05198, 'symbol': -0.41047, 'terms': 0.0427}},
    'hybrid/priors/nocos': {'bias': -4.48826, 'log_score': False, 'hits': 12010, 'weights':
        {'best_coverage': 2.34532, 'coverage': 1.86197, 'rank': -0.69652, 'score': 0.09505,
        'symbol': -0.37127, 'terms': 0.78604}},
    'hybrid/raw': {'bias': -5.89031, 'log_score': False, 'hits': 38190, 'weights':
        {'best_coverage': 1.34457, 'cosine': 1.27046, 'coverage': 2.28871, 'gap': -95.48812,
        'rank': -0.26139, 'score': 80.6138, 'symbol': 0.14514, 'terms': -0.05242}},
    'hybrid/raw/nocos': {'bias': -6.01921, 'log_score': False, 'hits': 38190, 'weights':
        {'best_coverage': 1.46038, 'coverage': 2.35799, 'gap': -97.3892, 'rank': -0.2801,
        'score': 100.77109, 'symbol': 0.05346, 'terms': -0.00446}},
    'lexical/any/nocos': {'bias': -4.36847, 'log_score': False, 'hits': 48512, 'weights':
        {'best_coverage': 2.01187, 'coverage': 2.55495, 'rank': -0.7182, 'symbol': 0.05226,
        'terms': 0.34251}},
    'lexical/priors/nocos': {'bias': -5.55389, 'log_score': False, 'hits': 11361, 'weights':
        {'best_coverage': 2.9921, 'coverage': 1.436, 'rank': -0.36462, 'score': 0.18272,
        'symbol': -0.4436, 'terms': 0.91622}},
    'lexical/raw/nocos': {'bias': -4.84061, 'log_score': True, 'hits': 37151, 'weights':
        {'best_coverage': 3.03764, 'coverage': 1.40985, 'gap': -1.75181, 'rank': -0.45622,
        'symbol': 0.30525, 'terms': 0.58047}},
}
# fitted:end
