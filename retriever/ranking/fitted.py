"""The fitted weights of the ``code`` preset, and where they came from.

Each entry names the data it was fitted on and the command that fitted it (scratch folders at
their defaults, ``../bench`` or ``$DENSE_RETRIEVER_BENCH``; see benchmarks/README.md); the preset
prints it with its stages (``repr``). To refit, run the command and paste the ``weights`` of the
JSON it writes here.

Lexical (the fit on 30 tune-half semble repositories, lexical-only builds, with a line-level
guard: the objective loses 5 x any drop of a mined package's line-level NDCG@10 beyond 0.01
below plain BM25) turned per-file saturation off (decay 1.0) and embedded-identifier boosts
down (0.25): both are what semble's stack gains on file-level targets and what costs it
line-level precision (see the ranking section of benchmarks/RESULTS.md).
"""

from __future__ import annotations

import copy

__all__ = ["FITTED", "weights_for"]

_LEXICAL_COMMAND = (
    "python benchmarks/tune_ranking.py fit --mode lexical --rounds 2 --seed 0 --line anyio "
    "--line fsspec --line packaging --line joblib (tune half, 30 semble repositories, "
    "line-level guard anyio, fsspec, packaging, joblib; objective 0.8633)"
)

_LEXICAL = {
    "depth": 50,
    "definitions": {"symbol": 3.0, "embedded": 0.25, "word": 0.0, "exact": 1.0, "style": 0.0,
                    "parts": 0.3, "qualifier": 0.3, "stem": 2.0, "limit": 20},
    "path_terms": {"stem": 1.5, "folder": 1.0, "mention": 1.0, "symbol": 0.25},
    "coherence": {"weight": 0.3},
    "path_prior": {"intents": True, "test": 0.3, "example": 0.3, "benchmark": 0.1,
                   "docs": 0.1, "generated": 1.0, "vendored": 1.0, "compat": 0.3,
                   "reexport": 0.5, "declaration": 0.7, "amalgamated": 0.3},
    "saturation": {"after": 3, "decay": 1.0, "split": 1.0, "keep": 1.0},
    "fitted": _LEXICAL_COMMAND,
}

# Dense: no fit of its own (building vectors for 60 repositories was out of reach on CPU);
# the lexical weights, said so in what it prints.
_DENSE = {**copy.deepcopy(_LEXICAL), "fitted": "lexical weights, not fitted for dense: "
          + _LEXICAL_COMMAND}

# Hybrid: the lexical priors after a query-type-aware fusion; until it is fitted, plain RRF.
_HYBRID = {**copy.deepcopy(_LEXICAL),
           "fusion": {"method": "rrf", "symbol": 0.5, "natural": 0.5, "k": 60},
           "fitted": "lexical weights, fusion not fitted (plain RRF): " + _LEXICAL_COMMAND}

FITTED: dict[str, dict] = {"lexical": _LEXICAL, "dense": _DENSE, "hybrid": _HYBRID}

# The ``code-files`` preset: the same, with per-file saturation fitted without the line-level
# guard, for answers wanted one file per slot (what semble's benchmark scores). It costs
# line-level precision (benchmarks/RESULTS.md), which is why it is not the ``code`` default.
FILES_SATURATION = {
    "saturation": {"after": 1, "decay": 0.3, "split": 0.5, "keep": 1.0},
    "fitted": "python benchmarks/tune_ranking.py fit --mode lexical --rounds 2 --seed 0 "
              "--only saturation (tune half, 30 semble repositories, no line-level guard, "
              "from the lexical weights; objective 0.8831)",
}


def weights_for(mode: str, *, files: bool = False) -> dict:
    """The fitted weights for a search mode (``"lexical"``, ``"dense"``, ``"hybrid"``);
    ``files=True``: those of the ``code-files`` preset."""
    weights = FITTED[mode]
    if not files:
        return weights
    return {**weights, **FILES_SATURATION,
            "fitted": f"{FILES_SATURATION['fitted']}; the rest: {weights['fitted']}"}
