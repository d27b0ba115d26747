"""Vector transforms shared by the index kinds: Matryoshka truncation, sign binarisation,
int8 scalar quantisation, rescoring candidates with full-precision vectors, and the map from
stable labels to rows.

Rescoring follows sentence-transformers' ``semantic_search_faiss``: a cheap first stage
(Hamming distance over 1-bit codes, or inner product over a short Matryoshka prefix) returns
``k * rescore_multiplier`` candidates, which are then ranked by the inner product of the float
query with the documents' float (or int8) vectors, read from the memory-mapped vectors file.
"""

from __future__ import annotations

import numpy as np

from retriever.errors import IndexFormatError, InputError

__all__ = [
    "truncate", "binarize", "int8_scale", "to_int8", "rescore", "rescore_labels", "RowMap",
    "RESCORE_MODES", "check_rescore",
]

RESCORE_MODES = ("float", "int8", None)


def truncate(vectors: np.ndarray, dims: int | None) -> np.ndarray:
    """The first ``dims`` columns of ``vectors``, each row re-normalised to unit length.

    Args:
        vectors: ``(n, dim)`` float32.
        dims: prefix length; None or ``dim`` returns ``vectors`` unchanged (as C-contiguous).

    Returns:
        ``(n, dims)`` float32, C-contiguous.
    """
    if dims is None or dims == vectors.shape[1]:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    prefix = np.asarray(vectors[:, :dims], dtype=np.float32)
    norms = np.linalg.norm(prefix, axis=1, keepdims=True)
    # A zero prefix stays zero rather than becoming NaN.
    return np.ascontiguousarray(prefix / np.maximum(norms, 1e-12), dtype=np.float32)


def binarize(vectors: np.ndarray) -> np.ndarray:
    """Sign-binarise: bit ``j`` of a row is 1 where component ``j`` is > 0.

    Args:
        vectors: ``(n, d)`` float32, ``d`` a multiple of 8.

    Returns:
        ``(n, d // 8)`` uint8 codes, most significant bit first (``np.packbits`` order), the
        layout FAISS binary indexes take.
    """
    return np.packbits(np.asarray(vectors) > 0, axis=1)


def int8_scale(vectors: np.ndarray) -> np.ndarray:
    """Per-dimension scale mapping ``vectors`` into int8: ``max |x_j| / 127``.

    Returns:
        ``(dim,)`` float32, strictly positive.
    """
    peak = np.abs(np.asarray(vectors, dtype=np.float32)).max(axis=0)
    return np.maximum(peak / 127.0, 1e-8).astype(np.float32)


def to_int8(vectors: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Quantise ``(n, dim)`` float32 to int8 with a per-dimension ``scale`` (clipped)."""
    codes = np.rint(np.asarray(vectors, dtype=np.float32) / scale)
    return np.clip(codes, -127, 127).astype(np.int8)


def rescore(
    queries: np.ndarray, candidates: np.ndarray, fetch, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank candidate rows by inner product with full-precision document vectors.

    Args:
        queries: ``(nq, dim)`` float32.
        candidates: ``(nq, c)`` int64 rows, ``-1`` for none.
        fetch: ``rows -> (len(rows), dim)`` float32 document vectors (rows sorted ascending,
            so a memory-mapped file is read in order).
        k: results wanted per query.

    Returns:
        ``(scores, ids)``: ``(nq, k)`` float32 best first (``-inf`` padding) and int64
        (``-1`` padding).
    """
    nq = len(queries)
    scores = np.full((nq, k), -np.inf, dtype=np.float32)
    ids = np.full((nq, k), -1, dtype=np.int64)
    if nq == 0 or candidates.size == 0:
        return scores, ids
    unique = np.unique(candidates[candidates >= 0])
    if unique.size == 0:
        return scores, ids
    docs = fetch(unique)
    for q in range(nq):
        rows = candidates[q][candidates[q] >= 0]
        if rows.size == 0:
            continue
        sims = docs[np.searchsorted(unique, rows)] @ queries[q]
        order = np.argsort(-sims, kind="stable")[:k]
        scores[q, : len(order)] = sims[order]
        ids[q, : len(order)] = rows[order]
    return scores, ids


def rescore_labels(
    queries: np.ndarray, labels: np.ndarray, rows: RowMap | None, fetch, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rescore` for candidates given as labels; ``rows`` maps labels to rows of the
    vectors that ``fetch`` reads (None: labels are rows). Returns labels."""
    candidates = labels if rows is None else rows.rows(labels)
    scores, found = rescore(queries, candidates, fetch, k)
    if rows is not None:
        found = np.where(found >= 0, rows.labels[np.maximum(found, 0)], -1)
    return scores, found


class RowMap:
    """Stable int64 labels <-> rows of the vectors file.

    Args:
        labels: ``(n,)`` int64, ``labels[row]`` is the label of ``row``; unique.
    """

    def __init__(self, labels: np.ndarray) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        self.labels = labels
        self._order = np.argsort(labels, kind="stable")
        self._sorted = labels[self._order]
        if len(labels) > 1 and np.any(self._sorted[1:] == self._sorted[:-1]):
            raise InputError("Labels must be unique; two rows share a label.")

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, labels: np.ndarray) -> np.ndarray:
        """Rows of ``labels`` (any shape); ``-1`` stays ``-1``.

        Raises:
            IndexFormatError: a label that is not in the map (the index and its label file
                disagree).
        """
        labels = np.asarray(labels, dtype=np.int64)
        out = np.full(labels.shape, -1, dtype=np.int64)
        valid = labels >= 0
        if not valid.any():
            return out
        wanted = labels[valid]
        pos = np.searchsorted(self._sorted, wanted)
        pos = np.minimum(pos, len(self._sorted) - 1)
        if len(self._sorted) == 0 or np.any(self._sorted[pos] != wanted):
            raise IndexFormatError(
                "The vector index returned a label that its label file does not hold: the "
                "index is inconsistent. Rebuild it with `retriever index PATH --force`."
            )
        out[valid] = self._order[pos]
        return out


def check_rescore(mode: object, multiplier: object) -> None:
    """Raise InputError unless ``mode`` is float/int8/None and ``multiplier`` an int >= 1."""
    if mode not in RESCORE_MODES:
        raise InputError(f"rescore must be 'float', 'int8' or None, got {mode!r}.")
    if isinstance(multiplier, bool) or not isinstance(multiplier, (int, np.integer)) \
            or multiplier < 1:
        raise InputError(f"rescore_multiplier must be an integer >= 1, got {multiplier!r}.")
