"""Fit a linear head (:mod:`encoders.head`) on a model's vectors of training pairs.

No gradient and no GPU: the model embeds ``count`` random training pairs (their queries and
their code, ``2 * count`` vectors), then

- ``pca``: the eigenvectors of the centred vectors' scatter matrix, by falling eigenvalue;
- ``itq``: iterative quantisation (Gong and Lazebnik, 2011): starting from a seeded random
  rotation, alternate the sign codes ``B = sign(V R)`` of the centred vectors ``V`` and the
  orthogonal Procrustes solution ``R = U W^T`` of ``V^T B = U S W^T``.

Measured on code-minilm-v1 with 3,000 pairs (benchmarks/RESULTS.md, retention section): PCA's
128-dimension prefix keeps 97.8% of full nDCG@10 on the semble tune half (raw prefix 95.6%);
ITQ's sign bits keep 95.8% (raw sign bits 94.7%).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from encoders.head import HEAD_KINDS, Head, write_head
from retriever.errors import InputError

__all__ = ["fit_heads", "itq", "pca"]


def pca(vectors: np.ndarray) -> np.ndarray:
    """``(d, d)`` float32 principal axes of ``vectors``, by falling variance: a prefix of the
    centred vectors turned by them keeps the most variance a prefix can."""
    centred = (vectors - vectors.mean(0)).astype(np.float64)
    values, axes = np.linalg.eigh(centred.T @ centred)
    return axes[:, np.argsort(values)[::-1]].astype(np.float32)


def itq(vectors: np.ndarray, *, iterations: int = 50,
        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Iterative quantization of ``(n, d)`` vectors: their mean and a ``(d, d)`` orthogonal
    rotation ``R`` that brings the centred vectors ``V`` close to their sign codes
    ``B = sign(V R)``, alternating the codes and the orthogonal Procrustes solution for R."""
    mean = vectors.mean(0)
    centred = (vectors - mean).astype(np.float64)
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(mean),) * 2))
    for _ in range(iterations):
        codes = np.where(centred @ rotation > 0, 1.0, -1.0)
        u, _, w = np.linalg.svd(centred.T @ codes)
        rotation = u @ w
    return mean.astype(np.float32), rotation.astype(np.float32)


def fit_heads(
    data,
    *,
    out: str | Path,
    kinds: Sequence[str] = HEAD_KINDS,
    model: str,
    count: int = 3000,
    seed: int = 0,
    iterations: int = 50,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Head]:
    """Fit heads of ``kinds`` for ``model`` on ``count`` random training pairs of ``data``
    (embedded once for all kinds) and write each as ``out/KIND.npz``.

    A folder of a local model's ``heads/`` makes them available by name (``head="pca"``).

    Args:
        data: pairs as :func:`encoders.train.inputs.load_pairs` takes them (a pairs file or
            folder, or an iterable); only training rows are used, never the dev split.
        out: the folder to write into (created if needed).
        kinds: some of ``"pca"`` and ``"itq"``.
        model: the model the heads are for (a name or a folder), as the encoder takes it.
        count: pairs sampled (seeded); each gives its query's and its code's vector.
        iterations: ITQ's alternations.
        progress: ``(stage, done, total)`` as texts are embedded.

    Raises:
        InputError: an unknown kind, a bad count, or data that is not pairs.
    """
    from encoders.sentence import SentenceTransformerEncoder
    from encoders.train.inputs import load_pairs, rows_hash

    kinds = list(dict.fromkeys(kinds))
    unknown = [kind for kind in kinds if kind not in HEAD_KINDS]
    if unknown or not kinds:
        raise InputError(f"Unknown head kind {', '.join(map(repr, unknown)) or '(none)'}; the "
                         f"kinds are {', '.join(HEAD_KINDS)}.")
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise InputError(f"count must be an integer >= 2, not {count!r}.")
    pairs, _dev = load_pairs(data)
    picked = sorted(random.Random(seed).sample(range(len(pairs)), min(count, len(pairs))))
    chosen = [pairs[i] for i in picked]
    encoder = SentenceTransformerEncoder(model=model)
    started = time.perf_counter()
    queries = _embed(encoder.encode_queries, [p[0] for p in chosen], "queries", progress)
    codes = _embed(encoder.encode_documents, [p[1] for p in chosen], "documents", progress)
    vectors = np.concatenate([queries, codes])
    base = {"model": model, "dim": int(vectors.shape[1]), "pairs": len(chosen),
            "vectors": int(len(vectors)), "seed": seed,
            "data_hash": rows_hash([list(p[:2]) for p in chosen]),
            "embed_seconds": round(time.perf_counter() - started, 1)}
    heads = {}
    for kind in kinds:
        if kind == "pca":
            mean, matrix, extra = vectors.mean(0).astype(np.float32), pca(vectors), {}
        else:
            mean, matrix = itq(vectors, iterations=iterations, seed=seed)
            extra = {"iterations": iterations}
        heads[kind] = write_head(Path(out) / f"{kind}.npz", mean=mean, matrix=matrix,
                                 info={"kind": kind, **base, **extra})
    return heads


def _embed(encode, texts: list[str], stage: str, progress) -> np.ndarray:
    """``encode`` over ``texts`` in slices, reporting each slice done."""
    parts, step = [], 256
    for start in range(0, len(texts), step):
        parts.append(encode(texts[start:start + step]))
        if progress is not None:
            progress(stage, min(start + step, len(texts)), len(texts))
    return np.concatenate(parts)
