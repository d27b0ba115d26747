"""The fitted weights of the ``code`` preset, and where they came from.

Each entry names the data it was fitted on and the command that fitted it; the preset prints
both with its stages (``repr``). Refit with that command and paste its output here.
"""

from __future__ import annotations

__all__ = ["FITTED", "weights_for"]

# Starting values (semble 0.7.0's constants mapped onto these stages) until a fit replaces
# them; "fitted" says which.
_START = {
    "depth": 100,
    "definitions": {"symbol": 3.0, "embedded": 1.5, "word": 0.0, "exact": 1.0, "style": 0.8,
                    "parts": 0.0, "qualifier": 0.3, "stem": 0.5, "limit": 20},
    "path_terms": {"stem": 1.0, "folder": 1.0, "mention": 1.0, "symbol": 0.0},
    "coherence": {"weight": 0.2},
    "path_prior": {"intents": False, "test": 0.3, "example": 0.3, "benchmark": 1.0,
                   "docs": 1.0, "generated": 1.0, "vendored": 1.0, "compat": 0.3,
                   "reexport": 0.5, "declaration": 0.7, "amalgamated": 0.3},
    "saturation": {"after": 1, "decay": 0.5, "split": 1.0, "keep": 1.0},
    "fitted": "not fitted: semble 0.7.0's constants",
}

FITTED: dict[str, dict] = {"lexical": _START, "dense": _START, "hybrid": _START}


def weights_for(mode: str) -> dict:
    """The fitted weights for a search mode (``"lexical"``, ``"dense"``, ``"hybrid"``)."""
    return FITTED[mode]
