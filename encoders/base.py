"""The encoder protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Encoder"]


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into vectors; asymmetric by design.

    Queries and documents may be encoded differently (prompts, lengths). Both methods return
    an ``(n, dim)`` float32 array; rows are L2-normalised so inner product is cosine.
    ``fingerprint`` identifies the weights and configuration: an index refuses queries
    from an encoder whose fingerprint differs from the one that made its vectors.

    ``dim``, ``config()`` and ``fingerprint()`` should be cheap (no model load): staleness
    checks, ``info`` and lexical search call them without encoding anything.
    """

    dim: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def fingerprint(self) -> str: ...

    def config(self) -> dict: ...
