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
        self._model_key: tuple | None = None

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
        # Keyed by the files' stat (a rewrite or a copy changes it), not their hash: a
        # search on an existing index must not read a 16 MB table to find its model. The
        # key is worked out once per encoder: the walk and stats of the folder took 0.5 ms
        # of a 1.3 ms query encoding; the model itself still comes from the shared cache,
        # so a cleared cache reloads it.
        key = self._model_key
        if key is None:
            key = self._model_key = ("static", str(self._path), stat_digest(self._path, b""))
        return shared_model(key, lambda: _Model(self._path))

    def _encode(self, texts: Sequence[str], progress: Callable[[int], None] | None) -> np.ndarray:
        if isinstance(texts, str):
            raise InputError("Pass a list of texts, not one string.")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        model = self._model()
        for start in range(0, len(texts), self.batch_size):
            part = texts[start : start + self.batch_size]
            if not all(isinstance(text, str) for text in part):
                raise InputError("Every text to encode must be a string.")
            # No dedupe of identical texts: they are rare in code (0.2% of the semble trees'
            # chunks) and leaving one out moves the gather slices of _mean_rows, which
            # changes other texts' vectors in their last bit.
            out[start : start + len(part)] = _mean_rows(
                model, _token_ids(model, list(part), self.max_tokens))
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


def _token_ids(model: _Model, texts: list[str], max_tokens: int) -> list[list[int]]:
    """The first ``max_tokens`` token ids of each text, cut first at ``max_tokens`` times the
    vocabulary's median token length (Model2Vec's cut), so that the tokenizer never reads
    megabytes it would drop."""
    # The cut is at least max_tokens characters (a token is at least one): shorter texts,
    # such as every query, need neither it nor the vocabulary's median.
    if any(len(text) > max_tokens for text in texts):
        cut = max_tokens * model.median_token_length
        texts = [text[:cut] for text in texts]
    encodings = model.tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    return [encoding.ids[:max_tokens] for encoding in encodings]


def _mean_rows(model: _Model, ids: list[list[int]]) -> np.ndarray:
    """The mean table row of each id list (unknown ids dropped); zeros for an empty list.

    Each text's distinct tokens are gathered once and weighted by their counts (a code
    chunk repeats its tokens: a quarter of its tokens are distinct), in token order, and
    summed within one slice: a text's vector depends on its tokens alone, never on the other
    texts of the batch or on the batch size.
    """
    lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
    owner = np.repeat(np.arange(len(ids)), lengths)
    if model.unk_id is not None:
        known = flat != model.unk_id
        flat, owner = flat[known], owner[known]
    counts = np.bincount(owner, minlength=len(ids))
    sums = np.zeros((len(ids), model.dim), dtype=np.float32)
    # (text, token) pairs, sorted by text then token, with their counts.
    keys = owner * model.rows + flat
    if len(ids) * model.rows < 1 << 31:
        keys = keys.astype(np.int32)  # sorts faster than int64
    pairs, repeats = np.unique(keys, return_counts=True)
    who, tokens = np.divmod(pairs, model.rows)
    starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])  # each text's first pair
    begin = 0
    while begin < len(pairs):
        # Slices end at a text boundary and stay small (a cache-sized scratch array measured
        # 3x faster than one big gather); one text bigger than a slice gets one of its own.
        first = np.searchsorted(starts, begin)  # starts[first] == begin
        end = begin + _GATHER_ROWS
        if end < len(pairs):
            stop = np.searchsorted(starts, end, side="right") - 1
            if stop <= first:
                stop = first + 1
            end = starts[stop] if stop < len(starts) else len(pairs)
            stop = min(stop, len(starts))
        else:
            end, stop = len(pairs), len(starts)
        block = model.gather(tokens[begin:end])
        block *= repeats[begin:end, None].astype(np.float32)
        local = starts[first:stop]
        sums[who[local]] = np.add.reduceat(block, local - begin, axis=0)
        begin = end
    nonzero = counts > 0
    sums[nonzero] /= counts[nonzero, None]
    return sums
