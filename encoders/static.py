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

Corpus SIF (``corpus_sif=s > 0``): inside one repository some tokens are in nearly every chunk
(``self``, ``err``, the package's own name) and tell its chunks apart no better than
punctuation, while the table's own weights were fitted on other code. Each token's row is then
also scaled by ``s / (s + p)``, ``p`` the token's share of all the tokens of the corpus being
indexed, on documents and queries alike (SIF, Arora et al. 2017, with the corpus's own
frequencies). The counts come from the corpus (:meth:`StaticEncoder.count_tokens`) and are
bound to an encoder with :meth:`StaticEncoder.with_counts`; an index stores them beside its
vectors, so queries are weighted as its documents were. On the semble benchmark's 60
repositories this lifted code-static-minilm-v2's dense-only NDCG@10 from 0.702 to 0.728 (s =
0.005, chosen on the tune half; ``benchmarks/results/static/v5-sweep.md``) and cost CoSQA's
web queries 0.026, so the tree builds use it and document corpora do not.
"""

from __future__ import annotations

import copy
import hashlib
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
        corpus_sif: ``s`` of the corpus SIF weighting (module docstring); 0 turns it off. An
            encoder with ``s > 0`` encodes only once counts are bound (:meth:`with_counts`).

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
        corpus_sif: float = 0.0,
    ) -> None:
        if not isinstance(normalize, bool):
            raise InputError(f"normalize must be True or False, not {normalize!r}.")
        for label, value in (("max_tokens", max_tokens), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{label} must be a positive integer, not {value!r}.")
        if (isinstance(corpus_sif, bool) or not isinstance(corpus_sif, (int, float))
                or not 0 <= corpus_sif < float("inf")):
            raise InputError(
                f"corpus_sif must be a number >= 0 (0 turns the corpus weighting off), not "
                f"{corpus_sif!r}.")
        self.model = model
        self.normalize = normalize
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.corpus_sif = float(corpus_sif)
        self._path = resolve_static_model(model)
        header = _table_header(self._path)
        self._dim = int(header["embeddings"]["shape"][1])
        # Token ids with a row (a token mapping, where there is one, sets them): one count
        # each, so binding an index's counts never loads the table or the tokenizer.
        self._rows = (int(np.prod(header["mapping"]["shape"])) if "mapping" in header
                      else int(header["embeddings"]["shape"][0]))
        self._model_key: tuple | None = None
        # Bound by with_counts: the digest of the corpus's token counts and the row weights.
        self._counts_digest: str | None = None
        self._token_weights: np.ndarray | None = None

    @property
    def dim(self) -> int:
        """Output dimension: the table's width, read from the safetensors header."""
        return self._dim

    def config(self) -> dict:
        """Constructor arguments; ``StaticEncoder(**config())`` rebuilds it (without the
        bound counts, which an index keeps in a file of its own)."""
        config = {"model": self.model, "normalize": self.normalize,
                  "max_tokens": self.max_tokens, "batch_size": self.batch_size}
        if self.corpus_sif:
            config["corpus_sif"] = self.corpus_sif
        return config

    @property
    def wants_corpus(self) -> bool:
        """True when the vectors depend on the corpus's token counts (``corpus_sif > 0``):
        a build counts its chunks' tokens and binds them before encoding."""
        return self.corpus_sif > 0

    @property
    def table_rows(self) -> int:
        """Token ids the table has rows for (one count each), from the safetensors header."""
        return self._rows

    @property
    def counts_digest(self) -> str | None:
        """A digest of the bound token counts; None when none are bound."""
        return self._counts_digest

    def token_ids(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The token ids encoding reads from ``texts`` (cut as it cuts them, unknown tokens
        dropped): one int64 array of them all, and each text's length in it. A build that
        counts a corpus keeps them and pools with :meth:`encode_token_ids`, so every chunk
        is tokenized once."""
        if isinstance(texts, str):
            raise InputError("Pass a list of texts, not one string.")
        model = self._model()
        flats, lengths = [], []
        for start in range(0, len(texts), self.batch_size):
            flat, length = self._batch_ids(model, texts[start : start + self.batch_size])
            flats.append(flat)
            lengths.append(length)
        if not flats:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(flats), np.concatenate(lengths)

    def count_tokens(self, texts: Sequence[str]) -> np.ndarray:
        """How often each token id occurs in ``texts``, cut and filtered as encoding cuts
        them (unknown tokens dropped): an int64 array with one count per table row, to sum
        over a corpus's batches and bind with :meth:`with_counts`."""
        flat, _ = self.token_ids(texts)
        return np.bincount(flat, minlength=self.table_rows).astype(np.int64)

    def encode_token_ids(self, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Document vectors of texts given as :meth:`token_ids` gives them: the same rows
        ``encode_documents`` returns for those texts."""
        self._need_counts()
        flat, lengths = np.asarray(flat, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
        if flat.ndim != 1 or lengths.ndim != 1 or int(lengths.sum()) != len(flat):
            raise InputError("token ids and lengths must be 1-D, the lengths summing to the ids.")
        model = self._model()
        out = np.zeros((len(lengths), self.dim), dtype=np.float32)
        ends = np.cumsum(lengths)
        for start in range(0, len(lengths), self.batch_size):  # the batches _encode pools
            stop = min(start + self.batch_size, len(lengths))
            low = int(ends[start - 1]) if start else 0
            out[start:stop] = _mean_flat(model, flat[low : int(ends[stop - 1])],
                                         lengths[start:stop], self._token_weights)
        return self._normalised(out)

    def with_counts(self, counts: np.ndarray) -> StaticEncoder:
        """A copy of this encoder bound to a corpus's token counts (:meth:`count_tokens`),
        whose fingerprint covers them. Needs ``corpus_sif > 0``."""
        if not self.wants_corpus:
            raise InputError("with_counts needs an encoder made with corpus_sif > 0.")
        counts = np.asarray(counts)
        rows = self.table_rows
        if (counts.ndim != 1 or counts.dtype.kind not in "iu" or len(counts) != rows
                or (len(counts) and counts.min() < 0)):
            raise InputError(
                f"Token counts must be {rows} non-negative integers, one per row of the "
                f"table of {self._path}; got {counts.dtype} of shape {counts.shape}. Count "
                "them with count_tokens on this model, or rebuild the index.")
        bound = copy.copy(self)  # the same settings, folder and model key
        counts = counts.astype(np.int64)
        share = counts / max(int(counts.sum()), 1)
        bound._counts_digest = hashlib.blake2b(counts.astype("<i8").tobytes(),
                                               digest_size=16).hexdigest()
        bound._token_weights = (self.corpus_sif / (self.corpus_sif + share)).astype(np.float32)
        return bound

    def _settings_prefix(self) -> bytes:
        # What changes vectors besides the files; batch size does not. Without the corpus
        # weighting the prefix is what it always was, so older indexes keep their fingerprint.
        settings = ["static", self.normalize, self.max_tokens]
        if self.corpus_sif:
            settings += ["corpus-sif", self.corpus_sif, self._counts_digest]
        return json.dumps(settings).encode()

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
        self._need_counts()
        model = self._model()
        for start in range(0, len(texts), self.batch_size):
            part = texts[start : start + self.batch_size]
            # No dedupe of identical texts: they are rare in code (0.2% of the semble trees'
            # chunks) and leaving one out moves the gather slices of _mean_flat, which
            # changes other texts' vectors in their last bit.
            out[start : start + len(part)] = _mean_flat(
                model, *self._batch_ids(model, part), self._token_weights)
            if progress is not None:
                progress(len(part))
        return self._normalised(out)

    def _batch_ids(self, model: _Model, part: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """One batch's token ids as :func:`_flat_ids` gives them, the texts checked."""
        if not all(isinstance(text, str) for text in part):
            raise InputError("Every text to encode must be a string.")
        return _flat_ids(model, _token_ids(model, list(part), self.max_tokens))

    def _normalised(self, out: np.ndarray) -> np.ndarray:
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            np.divide(out, norms, out=out, where=norms > 0)
        return out

    def _need_counts(self) -> None:
        if self.wants_corpus and self._token_weights is None:
            raise InputError(
                "This static encoder weights tokens by its corpus (corpus_sif > 0) and has no "
                "token counts bound: bind them with encoder.with_counts("
                "encoder.count_tokens(corpus_texts)), or search the index it built (which "
                "binds its own), or make it with corpus_sif=0.")

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


def _flat_ids(model: _Model, ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Id lists as one int64 array and the lengths of its parts, unknown ids dropped."""
    lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
    if model.unk_id is not None:
        known = flat != model.unk_id
        if not known.all():
            owner = np.repeat(np.arange(len(ids)), lengths)
            flat = flat[known]
            lengths = np.bincount(owner[known], minlength=len(ids)).astype(np.int64)
    return flat, lengths


def _mean_flat(model: _Model, flat: np.ndarray, lengths: np.ndarray,
               token_weights: np.ndarray | None = None) -> np.ndarray:
    """The mean table row of each text, its ids given as :func:`_flat_ids` gives them
    (unknown ids dropped); zeros for a text without one. ``token_weights`` (one per row)
    scales each token's row first (the corpus weighting).

    Each text's distinct tokens are gathered once and weighted by their counts (a code
    chunk repeats its tokens: a quarter of its tokens are distinct), in token order, and
    summed within one slice: a text's vector depends on its tokens alone, never on the other
    texts of the batch or on the batch size.
    """
    texts = len(lengths)
    owner = np.repeat(np.arange(texts), lengths)
    counts = lengths
    sums = np.zeros((texts, model.dim), dtype=np.float32)
    # (text, token) pairs, sorted by text then token, with their counts.
    keys = owner * model.rows + flat
    if texts * model.rows < 1 << 31:
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
        scale = repeats[begin:end].astype(np.float32)
        if token_weights is not None:
            scale *= token_weights[tokens[begin:end]]
        block *= scale[:, None]
        local = starts[first:stop]
        sums[who[local]] = np.add.reduceat(block, local - begin, axis=0)
        begin = end
    nonzero = counts > 0
    sums[nonzero] /= counts[nonzero, None]
    return sums
