"""``cross-encoder``: any local sentence-transformers CrossEncoder folder, offline."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from encoders.runtime import capped_threads, shared_model
from retriever.errors import InputError, MissingDependencyError

__all__ = ["CrossEncoderReranker", "check_options"]

_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def check_options(*, max_length: int | None, batch_size: int, threads: int | None,
                  device: str) -> None:
    """The options every reranker shares, checked."""
    for label, value, optional in (("max_length", max_length, True),
                                   ("batch_size", batch_size, False),
                                   ("threads", threads, True)):
        if value is None and optional:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{label} must be a positive integer"
                             f"{' or None' if optional else ''}, not {value!r}.")
    if not isinstance(device, str) or not device.strip():
        raise InputError(f"device must be a name such as 'cpu' or 'cuda:0', not {device!r}.")


def _check_folder(model: str | None) -> Path:
    if model is None:
        raise InputError("The cross-encoder reranker needs model=FOLDER: the path of a local "
                         "sentence-transformers CrossEncoder folder (CrossEncoder.save).")
    path = Path(model).expanduser()
    if not path.is_dir():
        raise MissingDependencyError(
            f"The CrossEncoder folder {model!r} does not exist. Models load offline only: pass "
            "the path of a folder saved by sentence-transformers' CrossEncoder.save().")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path} is not a CrossEncoder folder: its config.json is missing or "
                         f"unreadable ({exc}). Pass a folder saved by CrossEncoder.save()."
                         ) from exc
    if not isinstance(config, dict) or not any((path / name).is_file() for name in _WEIGHTS):
        raise InputError(f"{path} is not a CrossEncoder folder: it has no "
                         f"{' or '.join(_WEIGHTS)}. Pass a folder saved by CrossEncoder.save().")
    return path.resolve()


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` from a local folder.

    Args:
        model: the folder (``CrossEncoder.save``); required.
        max_length: token limit of query + text (the model's own limit when None).
        batch_size: pairs a forward pass.
        threads: most torch threads while scoring (1: a search beside other work stays
            fast); None leaves torch's setting.
        device: ``"cpu"``, ``"cuda"``...

    Scores are what ``CrossEncoder.predict`` returns with the model's default activation
    (a sigmoid for one label); a model with several output labels is refused.
    """

    name = "cross-encoder"

    def __init__(self, *, model: str | None = None, max_length: int | None = 256,
                 batch_size: int = 16, threads: int | None = 1, device: str = "cpu") -> None:
        check_options(max_length=max_length, batch_size=batch_size, threads=threads,
                      device=device)
        self._path = _check_folder(model)
        # Never past the model's position embeddings: a longer input would fail, not truncate.
        positions = json.loads((self._path / "config.json").read_text(encoding="utf-8")).get(
            "max_position_embeddings")
        self._limit = max_length if not isinstance(positions, int) else min(
            max_length or positions, positions)
        self.model = model
        self.max_length = max_length
        self.batch_size = batch_size
        self.threads = threads
        self.device = device

    def config(self) -> dict:
        """Constructor arguments; ``CrossEncoderReranker(**config())`` rebuilds it."""
        return {"model": self.model, "max_length": self.max_length,
                "batch_size": self.batch_size, "threads": self.threads, "device": self.device}

    def __repr__(self) -> str:
        return f"CrossEncoderReranker(model={self.model!r})"

    def _model(self):
        from encoders.folder import content_digests

        key = ("cross-encoder", content_digests(self._path, [b""])[0], self.max_length,
               self.device)
        return shared_model(key, self._load)

    def _load(self):
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise MissingDependencyError("pip install sentence-transformers") from exc
        from encoders.train.reranker import quiet_transformers

        try:
            with quiet_transformers():
                model = CrossEncoder(str(self._path), device=self.device, local_files_only=True,
                                     max_length=self._limit)
        except Exception as exc:  # noqa: BLE001 - any failure to load is a bad folder
            raise InputError(f"Could not load the CrossEncoder folder {self._path}: {exc}. "
                             "Pass a folder saved by CrossEncoder.save().") from exc
        labels = getattr(model, "num_labels", None) or model.config.num_labels
        if labels != 1:
            raise InputError(f"The CrossEncoder at {self._path} has {labels} output labels; a "
                             "reranker needs a model with one relevance score.")
        return model

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts),)`` float32 relevance of each text to ``query``."""
        if not texts:
            return np.empty(0, dtype=np.float32)
        model = self._model()
        with capped_threads(self.threads):
            scores = model.predict([(query, text) for text in texts],
                                   batch_size=self.batch_size, show_progress_bar=False,
                                   convert_to_numpy=True)
        return np.asarray(scores, dtype=np.float32).reshape(len(texts))
