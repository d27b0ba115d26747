"""Named ranking pipelines: what :meth:`retriever.Index.search` answers with.

A preset is a function ``(index, *, mode, depth, filter, **knobs) -> Stage``. ``"plain"`` is
the mode's first stages alone (dense, BM25, or their reciprocal-rank fusion).
"""

from __future__ import annotations

from collections.abc import Callable

from retriever.errors import InputError
from retriever.pipeline import Stage

__all__ = ["PRESETS", "DEFAULT", "preset"]


def _plain(index, *, mode, depth, filter, **knobs) -> Stage:  # noqa: A002
    return index.stage(mode, depth=depth, filter=filter, **knobs)


PRESETS: dict[str, Callable[..., Stage]] = {"plain": _plain}
DEFAULT = "plain"


def preset(name: str | None, index, **arguments) -> Stage:
    """The stage of preset ``name`` (None: :data:`DEFAULT`) for ``index``."""
    try:
        make = PRESETS[DEFAULT if name is None else name]
    except (KeyError, TypeError):
        raise InputError(
            f"Unknown ranking pipeline {name!r}; known: {', '.join(sorted(PRESETS))}."
        ) from None
    return make(index, **arguments)
