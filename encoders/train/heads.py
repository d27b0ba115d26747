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
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from encoders.head import HEAD_KINDS, Head, write_head, write_npz
from retriever.errors import InputError

__all__ = ["fit_heads", "fit_layer_head", "itq", "layer_map", "pca", "train_prefix_head"]


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
    kinds: Sequence[str] = ("pca", "itq"),
    model: str,
    count: int = 3000,
    seed: int = 0,
    iterations: int = 50,
    vectors: str | Path | None = None,
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
        vectors: an ``.npz`` file keeping the embedded pairs: read when it holds these
            pairs' vectors by this model (the model's fingerprint and the pairs' hash match),
            else written, so fitting other kinds later embeds nothing.
        progress: ``(stage, done, total)`` as texts are embedded.

    Raises:
        InputError: an unknown kind, a bad count, or data that is not pairs.
    """
    from encoders.sentence import SentenceTransformerEncoder
    from encoders.train.inputs import load_pairs, rows_hash

    kinds = list(dict.fromkeys(kinds))
    known = [kind for kind in HEAD_KINDS if kind != "layer"]  # fit_layer_head fits that one
    unknown = [kind for kind in kinds if kind not in known]
    if unknown or not kinds:
        raise InputError(f"Unknown head kind {', '.join(map(repr, unknown)) or '(none)'}; the "
                         f"kinds are {', '.join(known)} (a layer head: fit_layer_head).")
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise InputError(f"count must be an integer >= 2, not {count!r}.")
    pairs, _dev = load_pairs(data)
    picked = sorted(random.Random(seed).sample(range(len(pairs)), min(count, len(pairs))))
    chosen = [pairs[i] for i in picked]
    encoder = SentenceTransformerEncoder(model=model)
    data_hash = rows_hash([list(p[:2]) for p in chosen])
    key = f"{encoder.fingerprint()}:{data_hash}"
    held = _read_vectors(vectors, key)
    if held is None:
        held = (_embed(encoder.encode_queries, [p[0] for p in chosen], "queries", progress),
                _embed(encoder.encode_documents, [p[1] for p in chosen], "documents",
                       progress))
        if vectors is not None:
            write_npz(Path(vectors), key=np.array(key), queries=held[0], codes=held[1])
    stacked = np.concatenate(held)
    # No timings in the info: it joins the head's digest, which must depend only on what
    # was fitted (a refit from kept vectors gives the same file).
    base = {"model": model, "dim": int(stacked.shape[1]), "pairs": len(chosen),
            "vectors": int(len(stacked)), "seed": seed, "data_hash": data_hash}
    heads = {}
    for kind in kinds:
        if kind == "pca":
            mean, matrix, extra = stacked.mean(0).astype(np.float32), pca(stacked), {}
        elif kind == "prefix":
            mean, matrix, extra = train_prefix_head(*held, seed=seed)
        else:
            mean, matrix = itq(stacked, iterations=iterations, seed=seed)
            extra = {"iterations": iterations}
        heads[kind] = write_head(Path(out) / f"{kind}.npz", mean=mean, matrix=matrix,
                                 info={"kind": kind, **base, **extra})
    return heads


def _read_vectors(path: str | Path | None, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The kept (queries, codes) vectors of ``path`` when its key is ``key``; None otherwise
    (no file, another model or other pairs, or a file that is not one of ours)."""
    if path is None or not Path(path).is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as held:
            if str(held["key"]) != key:
                return None
            return held["queries"], held["codes"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None


def _embed(encode, texts: list[str], stage: str, progress) -> np.ndarray:
    """``encode`` over ``texts`` in slices, reporting each slice done."""
    parts, step = [], 256
    for start in range(0, len(texts), step):
        parts.append(encode(texts[start:start + step]))
        if progress is not None:
            progress(stage, min(start + step, len(texts)), len(texts))
    return np.concatenate(parts)


def train_prefix_head(
    queries: np.ndarray,
    codes: np.ndarray,
    *,
    dims: Sequence[int] = (384, 128, 64),
    epochs: int = 10,
    batch_size: int = 1024,
    lr: float = 1e-3,
    scale: float = 20.0,
    held_out: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """A square matrix whose prefixes rank a query's own code first (Matryoshka on a frozen
    model): InfoNCE with in-batch negatives at each prefix of ``dims`` (equal weights), from
    PCA's axes, Adam; the epoch whose held-out pairs score best at the two shortest prefixes'
    mean MRR is kept. Returns ``(mean, matrix, info)``.

    The defaults are the best of seven settings on the semble tune half for code-minilm-v1's
    64-dim prefix (benchmarks/RESULTS.md, retention: 93.3% of full nDCG@10 against PCA's
    92.5%); PCA's axes stay better at 128 dims.

    The model's vectors do not move, so a head fitted on some thousand pairs takes seconds an
    epoch on a CPU.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    vectors = np.concatenate([queries, codes])
    mean = vectors.mean(0).astype(np.float32)
    order = torch.randperm(len(queries), generator=generator)
    cut = max(1, int(len(queries) * held_out))
    dev, train = order[:cut], order[cut:]
    q = torch.from_numpy(queries - mean)
    c = torch.from_numpy(codes - mean)
    matrix = torch.nn.Parameter(torch.from_numpy(pca(vectors)))
    optimiser = torch.optim.Adam([matrix], lr=lr)
    dims = sorted({int(d) for d in dims if 0 < int(d) <= matrix.shape[1]}, reverse=True)
    watched = dims[-2:]

    def prefixes(rows_q, rows_c, turn):
        tq, tc = rows_q @ turn, rows_c @ turn
        for d in dims:
            yield d, (torch.nn.functional.normalize(tq[:, :d], dim=1),
                      torch.nn.functional.normalize(tc[:, :d], dim=1))

    def dev_mrr(turn) -> dict[int, float]:
        with torch.no_grad():
            found = {}
            for d, (a, b) in prefixes(q[dev], c[dev], turn):
                scores = a @ b.T
                rank = (scores > scores.diagonal()[:, None]).sum(1) + 1
                found[d] = float((1.0 / rank).mean())
            return found

    best = dev_mrr(matrix.detach())
    start = {str(d): round(v, 4) for d, v in best.items()}
    best_score, best_matrix, best_epoch = np.mean([best[d] for d in watched]), \
        matrix.detach().clone(), 0
    labels = torch.arange(batch_size)
    history = []
    for epoch in range(1, epochs + 1):
        shuffled = train[torch.randperm(len(train), generator=generator)]
        for begin in range(0, len(shuffled) - 1, batch_size):
            rows = shuffled[begin:begin + batch_size]
            loss = sum(
                torch.nn.functional.cross_entropy(scale * a @ b.T, labels[:len(rows)])
                for _, (a, b) in prefixes(q[rows], c[rows], matrix)) / len(dims)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        found = dev_mrr(matrix.detach())
        score = float(np.mean([found[d] for d in watched]))
        history.append({"epoch": epoch, **{str(d): round(v, 4) for d, v in found.items()}})
        if score > best_score:
            best_score, best_matrix, best_epoch = score, matrix.detach().clone(), epoch
    info = {"dims": dims, "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "scale": scale, "held_out_pairs": int(cut), "kept_epoch": best_epoch,
            "dev_mrr_start": start, "dev_mrr": history}
    return mean, best_matrix.numpy().astype(np.float32), info


def layer_map(shallow: np.ndarray, full: np.ndarray, *, ridge: float = 1e-2
              ) -> tuple[np.ndarray, np.ndarray]:
    """A head's ``(mean, matrix)`` whose ``(x - mean) @ matrix`` is the least-squares affine
    map (a small ``ridge``) from ``shallow`` vectors to the ``full`` vectors of the same texts.

    The fit is ``[x, 1] @ [[W], [b]]``; as a head, ``mean = -b @ inv(W)``.

    Raises:
        InputError: the shapes differ, or the fitted matrix is singular.
    """
    if shallow.shape != full.shape or shallow.ndim != 2 or len(shallow) <= shallow.shape[1]:
        raise InputError(f"A layer head needs as many shallow as full vectors, more rows than "
                         f"dimensions; got {shallow.shape} and {full.shape}.")
    x = np.hstack([shallow, np.ones((len(shallow), 1))]).astype(np.float64)
    solved = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]),
                             x.T @ full.astype(np.float64))
    matrix, shift = solved[:-1], solved[-1]
    try:
        mean = -np.linalg.solve(matrix.T, shift)
    except np.linalg.LinAlgError as exc:
        raise InputError("The fitted layer map is singular; fit on more, varied pairs.") from exc
    return mean.astype(np.float32), matrix.astype(np.float32)


def fit_layer_head(
    data,
    *,
    out: str | Path,
    model: str,
    layers: int,
    count: int = 4000,
    seed: int = 0,
    ridge: float = 1e-2,
    progress: Callable[[str, int, int], None] | None = None,
) -> Head:
    """Fit a ``layer`` head for ``model`` cut to ``layers`` on ``count`` random training pairs
    of ``data`` (their queries and code, embedded at both depths) and write ``out/layerK.npz``.

    Raises:
        InputError: a bad count, data that is not pairs, or a depth the model was not
            trained for (the encoder checks ``layers``).
    """
    from encoders.sentence import SentenceTransformerEncoder
    from encoders.train.inputs import load_pairs, rows_hash

    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise InputError(f"count must be an integer >= 2, not {count!r}.")
    pairs, _dev = load_pairs(data)
    picked = sorted(random.Random(seed).sample(range(len(pairs)), min(count, len(pairs))))
    texts = [pairs[i][0] for i in picked] + [pairs[i][1] for i in picked]
    full = SentenceTransformerEncoder(model=model)
    cut = SentenceTransformerEncoder(model=model, layers=layers)
    mean, matrix = layer_map(_embed(cut.encode_documents, texts, f"layers {layers}", progress),
                             _embed(full.encode_documents, texts, "full depth", progress),
                             ridge=ridge)
    info = {"kind": "layer", "layers": layers, "model": model, "dim": int(matrix.shape[0]),
            "pairs": len(picked), "vectors": len(texts), "seed": seed, "ridge": ridge,
            "data_hash": rows_hash([list(pairs[i][:2]) for i in picked])}
    return write_head(Path(out) / f"layer{layers}.npz", mean=mean, matrix=matrix, info=info)
