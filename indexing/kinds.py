"""Index kinds by name and by spec string.

A spec string names the whole index: FAISS factory strings for float indexes (``"Flat"``,
``"HNSW32,Flat"``, ``"IVF4096,PQ48"``, ``"SQ8"``, ``"OPQ48,IVF1024,PQ48"``, or ``"auto"``) and
FAISS binary factory strings (``"BFlat"``, ``"BHNSW32"``, ``"BIVF1024"``) for binary indexes
rescored in float. The manifest records ``{"name": kind, "config": index.config()}``.
"""

from __future__ import annotations

import re
from typing import Any

from indexing.binary import BinaryIndex
from indexing.dense import FaissIndex
from retriever.errors import InputError

__all__ = ["KINDS", "kind_for_spec", "index_class", "new_index"]

_BINARY = re.compile(r"^B(Flat|HNSW|IVF|Hash)", re.IGNORECASE)

KINDS: dict[str, type] = {FaissIndex.name: FaissIndex, BinaryIndex.name: BinaryIndex}


def kind_for_spec(spec: str) -> str:
    """The kind name for a spec string: ``BFlat``, ``BHNSW..``, ``BIVF..``, ``BHash..`` are
    binary, anything else is a float FAISS factory string."""
    if not isinstance(spec, str) or not spec.strip():
        raise InputError("An index spec must be a non-empty string such as 'Flat' or 'BFlat'.")
    return BinaryIndex.name if _BINARY.match(spec.strip()) else FaissIndex.name


def index_class(name: str) -> type:
    """The class of a kind name; the error lists the known names."""
    try:
        return KINDS[name]
    except KeyError:
        raise InputError(
            f"Unknown index kind {name!r}; known kinds: {', '.join(sorted(KINDS))}."
        ) from None


def new_index(spec: str, *, dim: int, **options: Any):
    """An empty index for ``spec`` over ``dim``-d vectors.

    Constructing it parses the spec against the dimension, so an unknown spec, or one the
    dimension does not fit (PQ with an M that does not divide it), fails here with
    InputError, before anything is embedded or written.

    Args:
        spec: a float or binary FAISS factory string, or ``"auto"``.
        dim: the vector dimension.
        **options: further constructor arguments of the kind (``dims``, ``rescore``,
            ``rescore_multiplier``, ``nprobe``, ``ef_search``, ...).
    """
    cls = index_class(kind_for_spec(spec))
    try:
        return cls(spec=spec, dim=dim, **options)
    except TypeError as exc:
        raise InputError(f"Bad option for a {cls.name} index ({spec!r}): {exc}") from exc
