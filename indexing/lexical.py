"""The lexical (BM25) index: code-aware tokens scored by bm25s.

Texts go through :class:`indexing.tokenize.CodeTokenizer` (the same one for documents and
queries), the token ids go to a ``bm25s.BM25`` eager index, and search returns FAISS
conventions so the pipeline can fuse it with the dense indexes.

Files written inside the index directory (no pickles; arrays load with ``allow_pickle=False``)::

    lexical.json            format name and version, config, document count
    params.index.json       bm25s parameters            } written by bm25s, absent when the
    vocab.index.json        token -> column id          } corpus has no tokens at all
    data.csc.index.npy      (nnz,) float32 scores       }
    indices.csc.index.npy   (nnz,) int32 row ids        }
    indptr.csc.index.npy    (vocab + 1,) int64 offsets  }
"""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

from indexing.layout import read_bytes
from indexing.table import NPY_ERRORS
from indexing.tokenize import CodeTokenizer, stemmer_available
from retriever.errors import IndexFormatError, InputError

__all__ = ["BM25Index"]

FORMAT_NAME = "dense-retriever-bm25"
FORMAT_VERSION = 1
META_FILE = "lexical.json"

# Only variants whose score is zero for a document sharing no token with the query: BM25L and
# BM25+ add a non-occurrence score to every document, so every document would "match".
_METHODS = ("lucene", "robertson", "atire")
# Texts whose tokens :meth:`BM25Index.tokenize` remembers (hit texts, a few KB each).
_MEMO_TEXTS = 1024


class BM25Index:
    """Okapi BM25 over code-aware tokens.

    A document matches a query when its BM25 score is positive. With the default Lucene idf,
    which is always positive, that is exactly "shares at least one token with the query";
    ``atire`` gives zero weight to a token found in every document and ``robertson`` clips
    common tokens' idf to zero, so under those a document whose shared tokens all occur in
    more than half (or all) of the corpus does not match.

    Args:
        k1: Term-frequency saturation, >= 0.
        b: Document-length normalisation, in [0, 1].
        method: bm25s scoring variant: ``"lucene"``, ``"robertson"`` or ``"atire"``.
        stem: Stem identifier parts with the Snowball English stemmer (PyStemmer).
            ``None`` means "if PyStemmer is installed"; :meth:`config` records the resolved
            value, so an index built with stemming is always queried with it.

    Raises:
        InputError: A parameter is out of range or the method is unknown.
        MissingDependencyError: ``stem=True`` and PyStemmer is not installed.
    """

    name = "bm25"
    role = "lexical"
    folder = "lexical"
    # Capabilities, as every component answers them: rebuilt whole on every change (BM25
    # statistics are corpus-wide), nothing to train.
    can_remove = False
    needs_training = False

    def __init__(
        self,
        *,
        k1: float = 1.2,
        b: float = 0.75,
        method: str = "lucene",
        stem: bool | None = None,
    ) -> None:
        if not (isinstance(k1, (int, float)) and math.isfinite(k1) and k1 >= 0):
            raise InputError(f"BM25 k1 must be a finite number >= 0, got {k1!r}.")
        if not (isinstance(b, (int, float)) and 0 <= b <= 1):
            raise InputError(f"BM25 b must be a number in [0, 1], got {b!r}.")
        if method not in _METHODS:
            raise InputError(
                f"Unknown BM25 method {method!r}; choose one of: {', '.join(_METHODS)}."
            )
        self.k1 = float(k1)
        self.b = float(b)
        self.method = method
        self.stem = stemmer_available() if stem is None else bool(stem)
        self._tokenizer = CodeTokenizer(stem=self.stem)
        self._bm25: bm25s.BM25 | None = None
        self._num_docs = 0
        self._memo: dict[str, tuple[str, ...]] = {}

    def config(self) -> dict[str, Any]:
        """The constructor arguments: ``BM25Index(**index.config())`` is an empty twin."""
        return {"k1": self.k1, "b": self.b, "method": self.method, "stem": self.stem}

    def __len__(self) -> int:
        """The number of documents indexed (row ids are ``0 .. len - 1``)."""
        return self._num_docs

    def tokenize(self, text: str) -> list[str]:
        """The tokens this index sees for ``text`` (its tokenizer, its ``stem`` setting).

        Recent texts are remembered: search tokenizes the text of every hit it returns to
        estimate relevance (most of a fast-tier query's time), and hits recur across queries.
        """
        memo = self._memo
        found = memo.get(text)
        if found is None:
            found = tuple(self._tokenizer(text))
            if len(memo) >= _MEMO_TEXTS:
                memo.clear()  # a bound, not an LRU: clearing is cheap and rarely happens
            memo[text] = found
        return list(found)

    def build(self, texts: Sequence[str]) -> None:
        """Index ``texts``, replacing anything indexed before; row ``i`` is ``texts[i]``.

        Args:
            texts: The documents. Empty ones are allowed and never match.
        """
        corpus_tokens = self._tokenizer.tokenize_many(texts)
        self._num_docs = len(corpus_tokens)
        self._bm25 = None
        if not any(corpus_tokens):
            # bm25s averages document lengths; with no tokens at all there is nothing to score.
            return
        # Column ids in order of first appearance, assigned in C by map() rather than a loop.
        vocab: defaultdict[str, int] = defaultdict(itertools.count().__next__)
        corpus_ids = [list(map(vocab.__getitem__, tokens)) for tokens in corpus_tokens]
        bm25 = bm25s.BM25(k1=self.k1, b=self.b, method=self.method, backend="numpy")
        bm25.index((corpus_ids, dict(vocab)), create_empty_token=False, show_progress=False)
        self._bm25 = bm25

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best-scoring documents for each query.

        Only documents with a positive score are returned (see the class docstring); a query
        with no known token, an empty query and an empty index return no documents.
        Ties are broken by the lower row id.

        Args:
            queries: ``nq`` query strings.
            k: Number of results per query, >= 1.

        Returns:
            ``(scores, ids)``: ``(nq, k)`` float32 BM25 scores, best first, and ``(nq, k)``
            int64 row ids. Missing results are padded with id ``-1`` and score ``-inf``.

        Raises:
            InputError: ``k`` is not a positive integer or ``queries`` is a bare string.
        """
        if isinstance(queries, str):
            raise InputError("BM25Index.search takes a sequence of queries, not one string.")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}.")
        k = int(k)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        bm25 = self._bm25
        if bm25 is None:
            return scores, ids
        for row, query in enumerate(queries):
            token_ids = bm25.get_tokens_ids(self._tokenizer(query))
            if not token_ids:
                continue
            doc_scores = bm25.get_scores_from_ids(token_ids)
            top = _top_positive(doc_scores, k)
            scores[row, : len(top)] = doc_scores[top]
            ids[row, : len(top)] = top
        return scores, ids

    def save(self, directory: Path) -> None:
        """Write the index into ``directory`` (created if needed); see the module docstring.

        Args:
            directory: Where to write. Files of the same names there are overwritten.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self._bm25 is not None:
            self._bm25.save(directory, allow_pickle=False, show_progress=False)
        meta = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "config": self.config(),
            "num_docs": self._num_docs,
            "has_terms": self._bm25 is not None,
        }
        # Written last: a directory whose save was interrupted has no (new) manifest.
        (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = False) -> BM25Index:
        """Read an index written by :meth:`save`.

        Args:
            directory: The directory given to :meth:`save`.
            mmap: Memory-map the score arrays instead of reading them into memory. The
                row-id range check is skipped then, so that loading stays lazy.

        Returns:
            The index, ready to search.

        Raises:
            IndexFormatError: A file is missing, truncated, corrupt or inconsistent.
            MissingDependencyError: The index was built with stemming and PyStemmer is
                not installed.
        """
        directory = Path(directory)
        try:
            meta = json.loads(read_bytes(directory / META_FILE, 1 << 20).decode("utf-8"))
            if not isinstance(meta, dict):
                raise ValueError(f"{META_FILE} is not an object")
            if meta.get("format") != FORMAT_NAME:
                raise ValueError(f"{META_FILE} is not a {FORMAT_NAME} manifest")
            if meta.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {meta.get('version')!r} is not {FORMAT_VERSION}")
            index = cls(**meta["config"])
            num_docs = meta["num_docs"]
            if not isinstance(num_docs, int) or num_docs < 0:
                raise ValueError(f"bad document count {num_docs!r}")
            index._num_docs = num_docs
            if meta["has_terms"]:
                _check_backend(directory)
                bm25 = bm25s.BM25.load(directory, mmap=mmap, show_progress=False)
                _check_consistent(bm25, index, num_docs, check_rows=not mmap)
                index._bm25 = bm25
        except (*NPY_ERRORS, KeyError, TypeError, AttributeError, IndexError, ImportError,
                RuntimeError, RecursionError) as exc:
            # Every way bm25s can fail on damaged or foreign files (a params file naming
            # another backend raises ImportError or RuntimeError inside bm25s).
            raise IndexFormatError(
                f"The lexical index at {directory} is corrupt or incomplete ({exc}). "
                "Rebuild it: run `retriever index --force` (or re-run indexing)."
            ) from exc
        return index


def _check_backend(directory: Path) -> None:
    """bm25s builds the backend its params file names: only ours (numpy) is accepted."""
    params = json.loads(read_bytes(directory / "params.index.json", 1 << 20).decode("utf-8"))
    if not isinstance(params, dict) or params.get("backend", "numpy") != "numpy":
        raise ValueError("params.index.json names another bm25s backend")


def _top_positive(doc_scores: np.ndarray, k: int) -> np.ndarray:
    """Row ids of the ``k`` highest positive scores, best first, ties by lower id.

    Args:
        doc_scores: ``(n_docs,)`` float32 scores.
        k: How many to keep at most.

    Returns:
        ``(m,)`` int64 row ids, ``m <= k``.
    """
    candidates = np.flatnonzero(doc_scores > 0)
    if len(candidates) > k:
        # Keep everything tied with the k-th score so the tie-break below sees all of them.
        kth = np.partition(doc_scores[candidates], len(candidates) - k)[len(candidates) - k]
        candidates = candidates[doc_scores[candidates] >= kth]
    order = np.lexsort((candidates, -doc_scores[candidates]))
    return candidates[order[:k]].astype(np.int64)


def _check_consistent(bm25: bm25s.BM25, index: BM25Index, num_docs: int, check_rows: bool) -> None:
    """Raise ValueError when the loaded bm25s arrays do not form the index the manifest names."""
    params = {"k1": bm25.k1, "b": bm25.b, "method": bm25.method}
    expected = {"k1": index.k1, "b": index.b, "method": index.method}
    if params != expected:
        raise ValueError(f"bm25s parameters {params} differ from the manifest's {expected}")
    if bm25.scores["num_docs"] != num_docs:
        raise ValueError(
            f"bm25s holds {bm25.scores['num_docs']} documents, the manifest {num_docs}"
        )
    data, indices, indptr = (bm25.scores[key] for key in ("data", "indices", "indptr"))
    vocab_size = len(bm25.vocab_dict)
    if data.ndim != 1 or indices.ndim != 1 or indptr.ndim != 1:
        raise ValueError("score arrays are not one-dimensional")
    if not (
        np.issubdtype(data.dtype, np.floating)
        and np.issubdtype(indices.dtype, np.integer)
        and np.issubdtype(indptr.dtype, np.integer)
    ):
        raise ValueError("score arrays have the wrong dtypes")
    if len(indptr) != vocab_size + 1 or indptr[0] != 0 or indptr[-1] != len(data):
        raise ValueError("indptr does not match the vocabulary and the score data")
    if len(indptr) > 1 and np.any(np.diff(indptr) < 0):
        # A decreasing offset makes bm25s slice nothing: every query would silently miss.
        raise ValueError("indptr decreases")
    if len(indices) != len(data):
        raise ValueError("indices and data differ in length")
    token_ids = np.fromiter(bm25.vocab_dict.values(), dtype=np.int64, count=vocab_size)
    if vocab_size and (token_ids.min() < 0 or token_ids.max() >= vocab_size):
        raise ValueError("vocabulary ids out of range")
    if check_rows and len(indices) and (indices.min() < 0 or indices.max() >= num_docs):
        raise ValueError("row ids out of range")
