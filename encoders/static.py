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
from collections.abc import Callable, Sequence
from itertools import chain

import numpy as np

from encoders.folder import content_digests, stat_digest
from encoders.runtime import shared_model
from encoders.static_table import (  # noqa: F401 - re-exported; the table's reading lives there
    _Model,
    _table_header,
    packaged_static_models,
    resolve_static_model,
)
from retriever.errors import InputError

__all__ = ["DEFAULT_STATIC_MODEL", "StaticEncoder", "packaged_static_models",
           "resolve_static_model"]

DEFAULT_STATIC_MODEL = "code-static-minilm-v2"
# Tokens gathered per step while pooling: a slice this small stays in the CPU cache, which
# measured 3x faster than large slices (the gather is bound by memory traffic).
_GATHER_ROWS = 1 << 10


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
