"""A static (Model2Vec-style) encoder: a token-embedding table, mean pooling, normalisation.

A text's vector is the mean of its tokens' rows in the table, L2-normalised. No network runs,
so encoding costs a tokenizer call and a gather: thousands of code chunks a second on one core,
where a transformer manages tens. Inference needs numpy, ``safetensors`` and ``tokenizers``;
it never imports torch or transformers.

A model is a Model2Vec folder: ``model.safetensors`` holding an ``embeddings`` table (rows =
token ids; optional ``weights``, one scale per token, and ``mapping``, token id -> row, as
Model2Vec writes them), ``tokenizer.json`` and ``config.json``. It is a name shipped in
``encoders/weights/`` or a local folder; nothing is downloaded.

Texts are tokenized without special tokens; unknown tokens are dropped (as Model2Vec does, so
a word the vocabulary cannot spell does not pull every text towards one row); a text is cut to
``max_tokens`` tokens, after a character cut of ``max_tokens`` times the vocabulary's median
token length that keeps the tokenizer from reading megabytes it would truncate anyway. Both
cuts are Model2Vec's, so a folder gives the same vectors here and in Model2Vec.
A text with no known token (the empty text) maps to the zero vector.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from itertools import chain
from pathlib import Path

import numpy as np

from encoders.folder import content_digests, stat_digest
from encoders.runtime import shared_model
from retriever.errors import InputError, MissingDependencyError

__all__ = ["DEFAULT_STATIC_MODEL", "StaticEncoder", "packaged_static_models",
           "resolve_static_model"]

DEFAULT_STATIC_MODEL = "code-static-minilm-v2"
# Shipped models replaced by a better one: the name an old index records -> its successor.
_RETIRED = {"code-static-minilm-v1": "code-static-minilm-v2"}
_WEIGHTS = Path(__file__).resolve().parent / "weights"
_TABLE_FILE = "model.safetensors"
_REQUIRED = (_TABLE_FILE, "tokenizer.json", "config.json")
# Tokens gathered per step while pooling: a slice this small stays in the CPU cache, which
# measured 3x faster than large slices (the gather is bound by memory traffic).
_GATHER_ROWS = 1 << 10


def packaged_static_models() -> list[str]:
    """Names of the static models shipped in ``encoders/weights/``."""
    if not _WEIGHTS.is_dir():
        return []
    return sorted(p.name for p in _WEIGHTS.iterdir() if (p / _TABLE_FILE).is_file())


def resolve_static_model(model: str) -> Path:
    """The folder of ``model``: a packaged static model's name, or a path to a folder.

    Raises:
        MissingDependencyError: neither a folder nor a packaged name.
        InputError: a folder that lacks a file of the Model2Vec layout.
    """
    if not isinstance(model, str) or not model.strip():
        raise InputError(f"model must be a packaged name or a folder path, not {model!r}.")
    path = Path(model).expanduser()
    if not path.is_dir() and model in _RETIRED and not (_WEIGHTS / model).is_dir():
        raise MissingDependencyError(
            f"The static model {model!r} was replaced by {_RETIRED[model]!r} (better on the "
            "semble benchmark and CoSQA; see its MODEL.md). An index built with the old one "
            "needs its fast tier rebuilt: `retriever index PATH --force`, or pass a folder "
            "holding a copy of the old model."
        )
    if not path.is_dir():
        packaged = _WEIGHTS / model
        if "/" in model or "\\" in model or not (packaged / _TABLE_FILE).is_file():
            known = ", ".join(packaged_static_models()) or "none"
            raise MissingDependencyError(
                f"Static model {model!r} is neither a local folder nor a packaged model "
                f"(packaged: {known}). Pass the path of a Model2Vec folder (model.safetensors, "
                "tokenizer.json, config.json); models load offline only."
            )
        path = packaged
    missing = [name for name in _REQUIRED if not (path / name).is_file()]
    if missing:
        raise InputError(
            f"{path} is not a Model2Vec folder: {', '.join(missing)} missing. A static model "
            "folder holds model.safetensors (an 'embeddings' table), tokenizer.json and "
            "config.json; re-save or re-copy it."
        )
    return path.resolve()


def _table_header(path: Path) -> dict:
    """The safetensors header of the table file: tensor names -> dtype and shape."""
    file = path / _TABLE_FILE
    try:
        with file.open("rb") as handle:
            size_bytes = handle.read(8)
            (size,) = struct.unpack("<Q", size_bytes) if len(size_bytes) == 8 else (-1,)
            if not 0 < size <= 100 * 1024 * 1024:
                raise ValueError("bad header length")
            header = json.loads(handle.read(size))
        table = header["embeddings"]
        shape = table["shape"]
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"embeddings has shape {shape}")
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise InputError(
            f"{file} is not a readable Model2Vec table ({exc}): it needs a 2-D tensor named "
            "'embeddings'. Re-save the model or copy it again."
        ) from exc
    return header


class _Model:
    """The loaded table and tokenizer; immutable after loading, shared between encoders."""

    def __init__(self, path: Path) -> None:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        try:
            tensors = load_file(str(path / _TABLE_FILE))
        except (OSError, SafetensorError, ValueError) as exc:
            raise InputError(f"{path / _TABLE_FILE}: cannot load the table ({exc}).") from exc
        try:
            self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
            spec = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))["model"]
        except Exception as exc:  # tokenizers raises plain Exception on a malformed file
            raise InputError(
                f"{path / 'tokenizer.json'} is not a tokenizers file ({exc}); copy the model "
                "folder again."
            ) from exc
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        # One float32 copy of the table, scaled in place: a second 60 MB array costs ~0.1 s.
        table = tensors["embeddings"].astype(np.float32)
        mapping = tensors.get("mapping")
        weights = tensors.get("weights")
        vocab = self.tokenizer.get_vocab_size(with_added_tokens=True)
        if mapping is not None:
            mapping = np.asarray(mapping, dtype=np.int64).reshape(-1)
            if mapping.size < vocab or mapping.max(initial=0) >= len(table) or mapping.min(
                initial=0
            ) < 0:
                raise InputError(f"{path}: the table's token mapping does not fit its rows.")
            table = table[mapping]
        if len(table) < vocab:
            raise InputError(
                f"{path}: the tokenizer has {vocab} tokens but the table only {len(table)} "
                "rows; the folder's files do not belong together."
            )
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float32).reshape(-1)
            if weights.size < vocab:
                raise InputError(f"{path}: the table has fewer token weights than tokens.")
            table *= weights[: len(table), None]
        self.table = np.ascontiguousarray(table)
        unk = spec.get("unk_token")
        self.unk_id = self.tokenizer.token_to_id(unk) if isinstance(unk, str) else spec.get(
            "unk_id")
        lengths = [len(token) for token in self.tokenizer.get_vocab()]
        self.median_token_length = max(1, int(np.median(lengths)))


class StaticEncoder:
    """Encodes with a static token-embedding table (a Model2Vec folder), offline.

    Constructing one, ``dim``, ``config()``, ``fingerprint()`` and ``stat_signature()`` read
    the folder's files and load nothing; the first encode call loads the table (shared by
    every encoder of this process over the same files).

    Args:
        model: a packaged static model name (default ``code-static-minilm-v2``) or a folder.
        normalize: L2-normalise each output row (the index expects unit rows; False gives the
            raw mean, for analysis).
        max_tokens: tokens per text; longer texts are cut.
        batch_size: texts per tokenizer call; bounds memory, does not change vectors.

    Queries and documents are encoded alike. Output rows are float32; the empty text, or one
    of unknown tokens only, gives the zero vector.
    """

    def __init__(
        self,
        *,
        model: str = DEFAULT_STATIC_MODEL,
        normalize: bool = True,
        max_tokens: int = 512,
        batch_size: int = 4096,
    ) -> None:
        if not isinstance(normalize, bool):
            raise InputError(f"normalize must be True or False, not {normalize!r}.")
        for label, value in (("max_tokens", max_tokens), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{label} must be a positive integer, not {value!r}.")
        self.model = model
        self.normalize = normalize
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._path = resolve_static_model(model)
        self._dim = int(_table_header(self._path)["embeddings"]["shape"][1])

    @property
    def dim(self) -> int:
        """Output dimension: the table's width, read from the safetensors header."""
        return self._dim

    def config(self) -> dict:
        """Constructor arguments; ``StaticEncoder(**config())`` rebuilds it."""
        return {"model": self.model, "normalize": self.normalize,
                "max_tokens": self.max_tokens, "batch_size": self.batch_size}

    def _settings_prefix(self) -> bytes:
        # What changes vectors besides the files; batch size does not.
        return json.dumps(["static", self.normalize, self.max_tokens]).encode()

    def fingerprint(self) -> str:
        """Hash of the table, tokenizer and config files and the settings that change vectors.

        Memoised per process by the files' stat, so a repeated call costs a stat per file.
        """
        return content_digests(self._path, [self._settings_prefix()], while_reading=[b""])[0]

    def stat_signature(self) -> str:
        """A cheap stand-in for :meth:`fingerprint` on this machine: the settings and each
        model file's stat, not its bytes (see ``encoders.folder.stat_digest``)."""
        return stat_digest(self._path, self._settings_prefix())

    def _model(self) -> _Model:
        files = content_digests(self._path, [b""], while_reading=[self._settings_prefix()])[0]
        return shared_model(("static", files), lambda: _Model(self._path))

    def _encode(self, texts: Sequence[str], progress: Callable[[int], None] | None) -> np.ndarray:
        if isinstance(texts, str):
            raise InputError("Pass a list of texts, not one string.")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        model = self._model()
        cut = self.max_tokens * model.median_token_length
        for start in range(0, len(texts), self.batch_size):
            part = [text[:cut] for text in texts[start : start + self.batch_size]]
            if not all(isinstance(text, str) for text in part):
                raise InputError("Every text to encode must be a string.")
            encodings = model.tokenizer.encode_batch_fast(part, add_special_tokens=False)
            ids = [encoding.ids[: self.max_tokens] for encoding in encodings]
            out[start : start + len(part)] = _mean_rows(model, ids)
            if progress is not None:
                progress(len(part))
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            np.divide(out, norms, out=out, where=norms > 0)
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode queries. Returns an ``(n, dim)`` float32 array (unit rows, or zero rows for
        texts without a known token)."""
        return self._encode(texts, None)

    def encode_documents(
        self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Encode documents. Returns an ``(n, dim)`` float32 array, as ``encode_queries``.

        Args:
            texts: the documents.
            progress: called with the number of texts finished after each batch.
        """
        return self._encode(texts, progress)


def _mean_rows(model: _Model, ids: list[list[int]]) -> np.ndarray:
    """The mean table row of each id list (unknown ids dropped); zeros for an empty list."""
    lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
    owner = np.repeat(np.arange(len(ids)), lengths)
    if model.unk_id is not None:
        known = flat != model.unk_id
        flat, owner = flat[known], owner[known]
    counts = np.bincount(owner, minlength=len(ids))
    sums = np.zeros((len(ids), model.table.shape[1]), dtype=np.float32)
    # Gather in slices so the scratch array stays small; rows of one text are contiguous,
    # so each slice sums into its texts with one reduceat.
    for begin in range(0, len(flat), _GATHER_ROWS):
        rows = flat[begin : begin + _GATHER_ROWS]
        who = owner[begin : begin + _GATHER_ROWS]
        starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        sums[who[starts]] += np.add.reduceat(model.table[rows], starts, axis=0)
    nonzero = counts > 0
    sums[nonzero] /= counts[nonzero, None]
    return sums
