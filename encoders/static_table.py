"""The files of a static (Model2Vec) model: finding its folder, reading its safetensors table
(memory-mapped where the dtype allows) and its tokenizer, and turning rows into scaled float32
on first use. :mod:`encoders.static` pools and normalises them."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from retriever.errors import InputError, MissingDependencyError

__all__ = ["packaged_static_models", "resolve_static_model"]

# Shipped models replaced by a better one: the name an old index records -> its successor.
_RETIRED = {"code-static-minilm-v1": "code-static-minilm-v2"}
_WEIGHTS = Path(__file__).resolve().parent / "weights"
_TABLE_FILE = "model.safetensors"
_REQUIRED = (_TABLE_FILE, "tokenizer.json", "config.json")


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


# safetensors dtype names -> numpy; bfloat16 (no numpy type) goes through safetensors itself.
_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8}


def _mapped_tensors(path: Path, header: dict) -> dict[str, np.ndarray]:
    """The file's tensors as read-only arrays over a memory map of it: nothing is read until
    a row is used, so a query touches a few pages of the table instead of all 16 MB."""
    file = path / _TABLE_FILE
    try:
        buffer = np.memmap(file, dtype=np.uint8, mode="r")
        start = 8 + struct.unpack("<Q", bytes(buffer[:8]))[0]
        tensors = {}
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            dtype = np.dtype(_DTYPES[entry["dtype"]])
            begin, end = (start + int(offset) for offset in entry["data_offsets"])
            shape = tuple(int(size) for size in entry["shape"])
            if not start <= begin <= end <= len(buffer) or end - begin != dtype.itemsize * int(
                np.prod(shape, dtype=np.int64)
            ):
                raise ValueError(f"tensor {name!r} does not fit the file")
            tensors[name] = buffer[begin:end].view(dtype).reshape(shape)
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise InputError(f"{file}: cannot load the table ({exc}).") from exc
    return tensors


def _loaded_tensors(path: Path, header: dict) -> dict[str, np.ndarray]:
    """All tensors read into memory by safetensors (dtypes numpy cannot map, e.g. bf16)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path / _TABLE_FILE))
    except (OSError, SafetensorError, ValueError) as exc:
        raise InputError(f"{path / _TABLE_FILE}: cannot load the table ({exc}).") from exc


class _Model:
    """The table and tokenizer; shared between encoders, and immutable as far as they can
    tell: rows are turned into scaled float32 on first use (the same values whenever that
    happens), so a short query or a small repository pays for the rows it uses, not for
    converting a 60,000-row table."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        header = _table_header(path)
        mappable = all(entry.get("dtype") in _DTYPES for name, entry in header.items()
                       if name != "__metadata__")
        tensors = (_mapped_tensors if mappable else _loaded_tensors)(path, header)
        try:
            self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises plain Exception on a malformed file
            raise InputError(
                f"{path / 'tokenizer.json'} is not a tokenizers file ({exc}); copy the model "
                "folder again."
            ) from exc
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self._path = path
        self._raw = tensors["embeddings"]
        mapping = tensors.get("mapping")
        weights = tensors.get("weights")
        vocab = self.tokenizer.get_vocab_size(with_added_tokens=True)
        rows = len(self._raw)
        if mapping is not None:
            mapping = np.asarray(mapping, dtype=np.int64).reshape(-1)
            if mapping.size < vocab or mapping.max(initial=0) >= rows or mapping.min(
                initial=0
            ) < 0:
                raise InputError(f"{path}: the table's token mapping does not fit its rows.")
            rows = mapping.size
        if rows < vocab:
            raise InputError(
                f"{path}: the tokenizer has {vocab} tokens but the table only {rows} "
                "rows; the folder's files do not belong together."
            )
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float32).reshape(-1)
            if weights.size < vocab:
                raise InputError(f"{path}: the table has fewer token weights than tokens.")
            # Rows past the tokenizer's vocabulary are never looked up by a text; a weight
            # of one keeps the whole-table view defined for them.
            weights = np.concatenate([weights, np.ones(max(0, rows - weights.size),
                                                       dtype=np.float32)])[:rows]
        self._mapping, self._weights = mapping, weights
        self.rows, self.dim = rows, int(self._raw.shape[1])
        # Rows converted so far; np.zeros maps zero pages, so untouched rows cost no memory.
        self._table = np.zeros((rows, self.dim), dtype=np.float32)
        self._ready = np.zeros(rows, dtype=bool)
        self.unk_id = self._unk_id()
        self._median: int | None = None

    def _unk_id(self) -> int | None:
        model = self.tokenizer.model
        unk = getattr(model, "unk_token", None)  # WordPiece, BPE
        if isinstance(unk, str):
            return self.tokenizer.token_to_id(unk)
        if hasattr(model, "unk_token"):  # BPE without one
            return None
        # Unigram keeps only an id, which the Python binding does not expose.
        spec = json.loads((self._path / "tokenizer.json").read_text(encoding="utf-8"))["model"]
        unk = spec.get("unk_token")
        return self.tokenizer.token_to_id(unk) if isinstance(unk, str) else spec.get("unk_id")

    @property
    def median_token_length(self) -> int:
        """The vocabulary's median token length in characters (for the character cut);
        computed on first use: texts too short to be cut never need it."""
        if self._median is None:
            lengths = [len(token) for token in self.tokenizer.get_vocab()]
            self._median = max(1, int(np.median(lengths)))
        return self._median

    def gather(self, ids: np.ndarray) -> np.ndarray:
        """The float32 rows of token ids ``ids`` (scaled by the token weights), converting
        those not used before. Idempotent, so concurrent callers at worst convert a row twice
        into the same values."""
        missing = ids[~self._ready[ids]]
        if missing.size:
            missing = np.unique(missing)
            source = missing if self._mapping is None else self._mapping[missing]
            rows = self._raw[source].astype(np.float32)
            if self._weights is not None:
                rows *= self._weights[missing, None]
            self._table[missing] = rows
            self._ready[missing] = True
        return self._table[ids]

    @property
    def table(self) -> np.ndarray:
        """The whole ``(rows, dim)`` float32 table (every row converted)."""
        self.gather(np.arange(self.rows))
        return self._table
