"""``code-rerank``: our code cross-encoder, a LoRA adapter over the packaged MiniLM.

The shipped folder ``encoders/weights/code-rerank-minilm-v2`` holds only the adapter
(low-rank deltas, pooler and head, a few MB) and ``reranker.json``; loading rebuilds the base
BERT from its package and merges the deltas in place (:func:`encoders.train.reranker.
load_model`), offline and without peft.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from encoders.runtime import capped_threads, shared_model
from retriever.errors import InputError, MissingDependencyError
from retriever.rerankers.cross_encoder import check_options

__all__ = ["CodeReranker", "DEFAULT_RERANKER", "shipped_rerankers"]

DEFAULT_RERANKER = "code-rerank-minilm-v2"


def _weights() -> Path:
    import encoders

    return Path(encoders.__file__).resolve().parent / "weights"


def shipped_rerankers() -> list[str]:
    """Names of the reranker folders shipped in ``encoders/weights/``."""
    from encoders.train.reranker import MANIFEST

    root = _weights()
    return sorted(p.name for p in root.iterdir() if (p / MANIFEST).is_file()) \
        if root.is_dir() else []


def _resolve(model: str) -> Path:
    from encoders.train.reranker import ADAPTER, MANIFEST

    if not isinstance(model, str) or not model.strip():
        raise InputError(f"model must be a shipped reranker's name or a folder, not {model!r}.")
    path = Path(model).expanduser()
    if not path.is_dir():
        shipped = _weights() / model
        if "/" in model or "\\" in model or not shipped.is_dir():
            raise MissingDependencyError(
                f"The code reranker {model!r} is neither a folder nor a shipped model "
                f"(shipped: {', '.join(shipped_rerankers()) or 'none'}). Pass a folder written "
                "by `retriever train reranker`.")
        path = shipped
    missing = [name for name in (MANIFEST, ADAPTER) if not (path / name).is_file()]
    if missing:
        raise InputError(f"{path} is not a code reranker folder: it lacks "
                         f"{', '.join(missing)}. Retrain with `retriever train reranker`, or "
                         "restore the folder.")
    return path.resolve()


class CodeReranker:
    """Our code cross-encoder (see the module docstring).

    Args:
        model: a shipped reranker's name (default ``code-rerank-minilm-v2``) or a folder
            written by ``retriever train reranker``.
        base: the base model the adapter merges into; None: the one its manifest names.
        max_length: token limit of query + text; None: what it was trained with.
        batch_size: pairs a forward pass. threads: most torch threads while scoring (None:
            torch's setting). device: ``"cpu"``, ``"cuda"``...

    Scores are logits (higher: more relevant); their scale is the model's own.
    """

    name = "code-rerank"

    def __init__(self, *, model: str = DEFAULT_RERANKER, base: str | None = None,
                 max_length: int | None = None, batch_size: int = 16, threads: int | None = 1,
                 device: str = "cpu") -> None:
        check_options(max_length=max_length, batch_size=batch_size, threads=threads,
                      device=device)
        from encoders.train.reranker import read_manifest

        self._path = _resolve(model)
        self._manifest = read_manifest(self._path)  # a corrupt folder fails here, not later
        self.model = model
        self.base = base
        self.max_length = max_length
        self.batch_size = batch_size
        self.threads = threads
        self.device = device

    def config(self) -> dict:
        """Constructor arguments; ``CodeReranker(**config())`` rebuilds it."""
        return {"model": self.model, "base": self.base, "max_length": self.max_length,
                "batch_size": self.batch_size, "threads": self.threads, "device": self.device}

    def __repr__(self) -> str:
        return f"CodeReranker(model={self.model!r})"

    @property
    def limit(self) -> int:
        return int(self.max_length or self._manifest.get("max_length", 256))

    def _loaded(self):
        from encoders.folder import content_digests
        from encoders.train.reranker import load_model

        key = ("code-rerank", content_digests(self._path, [b""])[0], self.base, self.device)
        return shared_model(key, lambda: load_model(self._path, base=self.base,
                                                    device=self.device))

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts),)`` float32 logits of each text's relevance to ``query``."""
        from encoders.train.reranker import score_pairs

        if not texts:
            return np.empty(0, dtype=np.float32)
        model, tokenizer, _ = self._loaded()
        with capped_threads(self.threads):
            return score_pairs(model, tokenizer, query, list(texts), max_length=self.limit,
                               batch_size=self.batch_size)
