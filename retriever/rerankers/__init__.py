"""Rerankers: re-score a first stage's top candidates with a model that reads query and text
together (a cross-encoder), and the pipeline stage that applies one.

- :class:`Reranker`: the protocol, ``score(query, texts) -> (len(texts),) float32``, higher
  is better; sorting and cut-offs live in the pipeline (:class:`Rerank`).
- :func:`load`: a reranker by registered name (the ``retriever.rerankers`` entry-point group:
  ``cross-encoder`` for any local sentence-transformers CrossEncoder folder, ``code-rerank``
  for the code cross-encoder we ship) or by folder path; :func:`names` lists the names.
- :class:`Rerank`: ``index.stage(...) >> Rerank(index, reranker, depth=20)``.
- :func:`mine_negatives` and :func:`train`: hard negatives from this engine's BM25, then the
  recipe of :mod:`encoders.train.reranker` (``retriever train reranker``).

Importing this package imports neither torch nor sentence-transformers; a reranker loads its
model on the first :meth:`Reranker.score`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from retriever import registry
from retriever.errors import InputError, MissingDependencyError
from retriever.rerankers.mining import mine_negatives, train
from retriever.rerankers.stage import Rerank

__all__ = ["Reranker", "Rerank", "load", "names", "mine_negatives", "train"]


@runtime_checkable
class Reranker(Protocol):
    """Scores texts against one query; the pipeline sorts and cuts."""

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray: ...

    def config(self) -> dict: ...


def names() -> list[str]:
    """The registered reranker names (entry points of ``retriever.rerankers``)."""
    return registry.available("reranker")


def load(name_or_folder: str, **options) -> Reranker:
    """A reranker by registered name, or from a local folder.

    Args:
        name_or_folder: a name of :func:`names` (``cross-encoder`` needs ``model=FOLDER``;
            ``code-rerank`` loads the shipped model offline), or the path of a
            sentence-transformers CrossEncoder folder, or of a folder written by
            ``retriever train reranker``.
        options: the reranker's keyword arguments (``max_length``, ``batch_size``,
            ``threads``, ``device``...).

    Raises:
        InputError: an unknown name (the message lists the known ones), bad options, or a
            folder that is not a reranker.
        MissingDependencyError: a folder path that does not exist.
    """
    if not isinstance(name_or_folder, str) or not name_or_folder.strip():
        raise InputError(f"A reranker is a name ({', '.join(names())}) or a folder path, not "
                         f"{name_or_folder!r}.")
    known = names()
    if name_or_folder in known:
        return registry.create("reranker", name_or_folder, options)
    path = Path(name_or_folder).expanduser()
    if path.is_dir():
        from encoders.train.reranker import MANIFEST

        name = "code-rerank" if (path / MANIFEST).is_file() else "cross-encoder"
        return registry.create("reranker", name, {**options, "model": str(path)})
    if path.exists() or any(sep in name_or_folder for sep in ("/", "\\")) or \
            name_or_folder.startswith((".", "~")):
        raise MissingDependencyError(
            f"The reranker folder {name_or_folder!r} does not exist or is not a folder. Pass "
            "the path of a sentence-transformers CrossEncoder folder (CrossEncoder.save) or of "
            f"a `retriever train reranker` output, or a name: {', '.join(known)}.")
    raise InputError(f"Unknown reranker {name_or_folder!r}. Available rerankers: "
                     f"{', '.join(known) or 'none (is dense-retriever installed with pip?)'}; "
                     "or pass the path of a local CrossEncoder folder.")
