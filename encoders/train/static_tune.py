"""Contrastive fine-tuning of a trained static table on the CPU, one package a batch.

A static model ranks the chunks of one repository against each other, but the recipe of
:mod:`encoders.train.distill` draws its in-batch negatives from the whole data set: most of
them are other languages and other domains, which the table already tells apart. Here every
batch holds pairs of ONE package, so the negatives are the other functions of the same code
base (the same imports, the same package name in every path header), which is what the
benchmark asks of it.

No teacher vectors are needed: the regulariser is self-distillation, the cosine between a
text's vector under the table being tuned and under the table it started from, so the table
moves only where the contrastive signal asks it to.

Each step (sparse gradients: only the rows of the batch's tokens change):

    loss = InfoNCE(queries -> codes of the package batch, temperature)
           + anchor * mean(1 - cos(student(text), start(text)))   over the batch's texts

The best epoch is chosen by the dev pairs ranked within their own package (epoch 0, the
starting table, included), so a run can only return the starting table or a better one on dev.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from retriever.errors import InputError

__all__ = ["TuneRecipe", "corpus_sif", "package_batches", "package_metrics", "tune_table"]


@dataclass
class TuneRecipe:
    """Settings of one fine-tuning run; saved in ``training.json``."""

    epochs: int = 4
    batch_pairs: int = 128
    min_batch: int = 4  # a package batch smaller than this has too few negatives to teach
    lr: float = 1e-3
    temperature: float = 0.05
    anchor: float = 1.0
    # > 0: pool with each token's row also scaled by s / (s + p), p its share of the tokens of
    # the package's codes (the corpus weighting of benchmarks/static_weighting.py), so the
    # table is tuned for the vectors a corpus-weighted index would hold.
    corpus_sif: float = 0.0
    seed: int = 0

    def config(self) -> dict:
        return asdict(self)


def package_batches(packages: Sequence[str], recipe: TuneRecipe,
                    rng: np.random.Generator) -> list[np.ndarray]:
    """Pair indices cut into batches of one package each, in a shuffled order.

    Within a package the pairs are shuffled and cut into batches of at most
    ``recipe.batch_pairs``; batches with fewer than ``recipe.min_batch`` pairs are dropped.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(packages):
        groups[name].append(i)
    batches = []
    for name in sorted(groups):
        members = np.asarray(groups[name], dtype=np.int64)
        rng.shuffle(members)
        # Even sizes: a package of 130 pairs gives two batches of 65, not 128 and a lone 2.
        count = max(1, math.ceil(len(members) / recipe.batch_pairs))
        for part in np.array_split(members, count):
            if len(part) >= recipe.min_batch:
                batches.append(part)
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def _bags(rows: Sequence[Sequence[int]], weights: Sequence[np.ndarray] | None = None):
    """(flat ids, offsets, per-token weights or None) tensors for ``embedding_bag``."""
    import torch

    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    flat = np.fromiter((t for r in rows for t in r), dtype=np.int64, count=int(lengths.sum()))
    scale = None
    if weights is not None:
        scale = torch.from_numpy(np.concatenate(
            [w[np.asarray(r, dtype=np.int64)] for w, r in zip(weights, rows, strict=True)]
        ).astype(np.float32))
    return torch.from_numpy(flat), torch.from_numpy(offsets), scale


def corpus_sif(codes: Sequence[Sequence[int]], packages: Sequence[str], rows: int,
               sif: float) -> dict[str, np.ndarray]:
    """Per package, ``sif / (sif + p)`` of every token id, ``p`` its share of the tokens of
    the package's codes (a token the package never uses gets 1)."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(packages):
        members[name].append(i)
    out = {}
    for name, picked in members.items():  # one package's counts at a time: 1,000 packages
        ids = np.concatenate([np.asarray(codes[i], dtype=np.int64) for i in picked])
        share = np.bincount(ids, minlength=rows) / max(len(ids), 1)
        out[name] = (sif / (sif + share)).astype(np.float32)
    return out


def _encode(table, rows, weights=None):
    import torch.nn.functional as F

    flat, offsets, scale = _bags(rows, weights)
    return F.normalize(F.embedding_bag(flat, table, offsets, mode="sum",
                                       per_sample_weights=scale), dim=1)


def package_metrics(table, queries: Sequence[Sequence[int]], codes: Sequence[Sequence[int]],
                    packages: Sequence[str], sif: float = 0.0) -> dict:
    """nDCG@10 and MRR@10 of each query against the codes of its own package (pair i's code
    relevant to query i), averaged over queries; and over all codes at once (``global``).
    ``sif`` > 0 pools with the packages' own SIF weights (:func:`corpus_sif`)."""
    import torch

    weights = None
    if sif > 0:
        by_package = corpus_sif(codes, packages, int(table.shape[0]), sif)
        weights = [by_package[name] for name in packages]
    with torch.no_grad():
        q, d = _encode(table, queries, weights), _encode(table, codes, weights)
        scores = q @ d.T
    same = np.asarray(packages)[:, None] == np.asarray(packages)[None, :]
    scores_np = scores.numpy()
    own = np.diagonal(scores_np)[:, None]

    def metrics(mask: np.ndarray) -> tuple[float, float]:
        rank = ((scores_np > own) & mask).sum(1)
        hit = rank < 10
        ndcg = np.where(hit, 1 / np.log2(rank + 2.0), 0.0)
        mrr = np.where(hit, 1 / (rank + 1.0), 0.0)
        return float(ndcg.mean()), float(mrr.mean())

    within, within_mrr = metrics(same)
    overall, _ = metrics(np.ones_like(same))
    return {"dev_package_ndcg@10": round(within, 4), "dev_package_mrr@10": round(within_mrr, 4),
            "dev_global_ndcg@10": round(overall, 4)}


def tune_table(
    table: np.ndarray, *, queries: Sequence[Sequence[int]], codes: Sequence[Sequence[int]],
    packages: Sequence[str], dev: Callable[[object], dict] | None = None,
    recipe: TuneRecipe | None = None, log: Callable[[dict], None] | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """Fine-tune ``table`` on (query, code) token-id pairs grouped by package.

    Args:
        table: ``(V, dim)`` float32 starting table (rows already scaled by their weights).
        queries, codes: token ids of the pairs (unknown tokens removed); row i answers row i.
        packages: the package of each pair; a batch holds one package's pairs.
        dev: called with the table (a torch tensor) after each epoch and before the first;
            returns metrics whose first value picks the best epoch.
        recipe: the settings (defaults of :class:`TuneRecipe`).
        log: called with one dict per epoch.

    Returns:
        ``(best table as float32 numpy, history)``.

    Raises:
        InputError: pairs of unequal counts, or no batch of ``min_batch`` pairs.
    """
    import torch
    import torch.nn.functional as F

    recipe = recipe or TuneRecipe()
    if not (len(queries) == len(codes) == len(packages)):
        raise InputError(f"queries, codes and packages must be of one length, got "
                         f"{len(queries)}, {len(codes)}, {len(packages)}.")
    if any(not row for row in queries) or any(not row for row in codes):
        raise InputError("Every query and code needs at least one known token; drop the "
                         "pairs whose text the vocabulary cannot spell before tuning.")
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    start = torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32))
    weight = torch.nn.Parameter(start.clone())
    optimizer = torch.optim.SparseAdam([weight], lr=recipe.lr)
    plan = [package_batches(packages, recipe, rng) for _ in range(recipe.epochs)]
    if recipe.epochs and not plan[0]:
        raise InputError(f"No package has {recipe.min_batch} pairs; lower min_batch or add "
                         "data.")
    total = sum(len(p) for p in plan)
    weights = (corpus_sif(codes, packages, int(start.shape[0]), recipe.corpus_sif)
               if recipe.corpus_sif > 0 else None)
    step = 0
    history: list[dict] = []
    best_score, best = -math.inf, start.clone()
    for epoch in range(recipe.epochs + 1):
        losses, anchors = [], []
        for batch in plan[epoch - 1] if epoch else []:
            # Cosine decay of the learning rate over the whole run.
            for group in optimizer.param_groups:
                group["lr"] = recipe.lr * 0.5 * (1 + math.cos(math.pi * step / max(total, 1)))
            q_rows = [queries[i] for i in batch]
            d_rows = [codes[i] for i in batch]
            # A batch is one package: one set of corpus weights for all its texts.
            scale = None if weights is None else [weights[packages[batch[0]]]] * len(batch)
            q_flat, q_off, q_w = _bags(q_rows, scale)
            d_flat, d_off, d_w = _bags(d_rows, scale)
            q = F.normalize(F.embedding_bag(q_flat, weight, q_off, mode="sum", sparse=True,
                                            per_sample_weights=q_w), dim=1)
            d = F.normalize(F.embedding_bag(d_flat, weight, d_off, mode="sum", sparse=True,
                                            per_sample_weights=d_w), dim=1)
            labels = torch.arange(len(batch))
            nce = F.cross_entropy(q @ d.T / recipe.temperature, labels)
            with torch.no_grad():
                q0 = F.normalize(F.embedding_bag(q_flat, start, q_off, mode="sum",
                                                 per_sample_weights=q_w), dim=1)
                d0 = F.normalize(F.embedding_bag(d_flat, start, d_off, mode="sum",
                                                 per_sample_weights=d_w), dim=1)
            drift = (2 - (q * q0).sum(1).mean() - (d * d0).sum(1).mean()) / 2
            loss = nce + recipe.anchor * drift
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(float(nce.detach()))
            anchors.append(float(drift.detach()))
        row = {"epoch": epoch, "nce": round(float(np.mean(losses)), 4) if losses else None,
               "drift": round(float(np.mean(anchors)), 5) if anchors else None}
        score = float(epoch)
        if dev is not None:
            row.update(dev(weight.detach()))
            score = next(v for k, v in row.items() if k not in ("epoch", "nce", "drift"))
        if score > best_score:
            best_score, best = score, weight.detach().clone()
        history.append(row)
        if log is not None:
            log(row)
    return best.numpy(), history
