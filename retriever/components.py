"""The components of an index generation, by name, through the registry.

Every part of a generation (a float or binary vector index, BM25, and whatever later kinds
register under ``retriever.indexes``) is a registered class that says what it is and what it
can do:

- ``name``: its registry name, stored in the manifest entry ``{name, role, config, path}``;
- ``role``: ``"vectors"`` (built from one encoder's vectors), ``"lexical"`` (from texts) or
  ``"symbols"`` (from the chunk table alone: ``cls.from_chunks(path)``, built by every build);
- ``folder``: the generation sub-folder it is written to by default;
- ``can_remove`` and ``needs_training``: whether an update can take vectors out by label,
  and whether rebuilding it costs a training run;
- vector kinds also answer ``parse_error(spec, dim)``: a spec string such as ``"IVF1024,PQ48"``
  or ``"BHNSW32"`` finds its kind by being parsed by each kind in turn, never by its spelling.
"""

from __future__ import annotations

from typing import Any

from retriever import registry
from retriever.errors import IndexFormatError, InputError

__all__ = ["component_class", "vector_kinds", "derived_kinds", "vector_kind",
           "new_vector_index", "ROLES"]

ROLES = ("vectors", "lexical", "symbols")


def component_class(name: str) -> type:
    """The registered component class ``name``; IndexFormatError naming the known ones (a
    manifest naming an unknown component was written by a newer version or tampered with)."""
    try:
        return registry.load("index", name)
    except InputError as exc:
        raise IndexFormatError(
            f"The index uses a component this version does not know ({exc}) Upgrade "
            "dense-retriever, or rebuild the index with `retriever index PATH --force`."
        ) from None


def _kinds(role: str) -> list[type]:
    kinds = (registry.load("index", name) for name in registry.available("index"))
    return [cls for cls in kinds if getattr(cls, "role", None) == role]


def vector_kinds() -> list[type]:
    """The registered component classes whose role is ``"vectors"``, by name."""
    return _kinds("vectors")


def derived_kinds() -> list[type]:
    """The registered component classes built from the chunk table alone (role
    ``"symbols"``): every build makes each of them (``cls.from_chunks(path)``)."""
    return _kinds("symbols")


def vector_kind(spec: str, dim: int) -> type:
    """The vector index kind that parses ``spec`` for ``dim``-d vectors.

    Raises:
        InputError: no registered kind parses it; the message gives each kind's reason.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError("An index spec must be a non-empty string such as 'Flat' or 'BFlat'.")
    reasons = []
    for cls in vector_kinds():
        reason = cls.parse_error(spec, dim)
        if reason is None:
            return cls
        reasons.append(f"{cls.name}: {reason}")
    raise InputError(f"No vector index kind accepts the spec {spec!r}. " + " ".join(reasons))


def new_vector_index(spec: str, *, dim: int, **options: Any):
    """An empty vector index for ``spec`` over ``dim``-d vectors.

    Constructing it parses the spec against the dimension, so an unknown spec, or one the
    dimension does not fit (PQ with an M that does not divide it), fails here with
    InputError, before anything is embedded or written.

    Args:
        spec: a float or binary FAISS factory string, or ``"auto"``.
        dim: the vector dimension.
        **options: further constructor arguments of the kind (``dims``, ``rescore``,
            ``rescore_multiplier``, ``nprobe``, ``ef_search``, ...).
    """
    cls = vector_kind(spec, dim)
    try:
        return cls(spec=spec, dim=dim, **options)
    except TypeError as exc:
        raise InputError(f"Bad option for a {cls.name} index ({spec!r}): {exc}") from exc
