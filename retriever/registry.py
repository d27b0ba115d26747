"""Components by name, from entry points.

Built-ins register under the same entry-point groups as third-party plugins (see
``pyproject.toml``), so the list of known names in an error cannot drift from what exists.
Lookup is lazy: nothing is imported until a name is asked for.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points
from typing import Any

from retriever.errors import InputError

__all__ = ["GROUPS", "available", "load", "create"]

GROUPS = {
    "encoder": "retriever.encoders",
    "chunker": "retriever.chunkers",
    "index": "retriever.indexes",
    "reranker": "retriever.rerankers",
}


def _entry_points(kind: str):
    try:
        group = GROUPS[kind]
    except KeyError:
        raise InputError(
            f"Unknown component kind {kind!r}; known kinds: {', '.join(sorted(GROUPS))}."
        ) from None
    return _group(group)


@functools.cache
def _group(group: str) -> dict:
    # Scanning the installed distributions costs milliseconds a call and a search may ask
    # several times; what is installed does not change while a process runs.
    return {ep.name: ep for ep in entry_points(group=group)}


def available(kind: str) -> list[str]:
    """Names registered for ``kind`` ("encoder", "chunker", "index", "reranker")."""
    return sorted(_entry_points(kind))


def load(kind: str, name: str) -> type:
    """The class registered as ``name``; the error lists the registered names."""
    eps = _entry_points(kind)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none (is dense-retriever installed with pip?)"
        raise InputError(f"Unknown {kind} {name!r}. Available {kind}s: {known}.")
    return eps[name].load()


def create(kind: str, name: str, config: dict[str, Any] | None = None) -> Any:
    """Instantiate ``name`` with keyword arguments ``config`` (as stored in a manifest)."""
    cls = load(kind, name)
    try:
        return cls(**(config or {}))
    except TypeError as exc:
        raise InputError(f"Bad configuration for {kind} {name!r}: {exc}") from exc
