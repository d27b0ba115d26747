"""Contrastive training (InfoNCE): each query against its positive, the other positives of the
batch, and the given hard negatives, over large batches at small-batch memory.

The loss is sentence-transformers' CachedMultipleNegativesRankingLoss (GradCache) when
``mini_batch_size`` is smaller than the batch: a batch of ``batch_size`` pairs is embedded
``mini_batch_size`` texts at a time, so the in-batch negatives grow with the batch while memory
stays that of the mini batch. When the mini batch holds the whole batch, GradCache saves no
memory and costs an extra forward pass a step (a step of `retriever adapt` on the CPU took
14.0 s without it, 24.1 s with it), so the plain MultipleNegativesRankingLoss computes the
same objective instead.

    from encoders.train.contrastive import train_contrastive
    train_contrastive("pairs.jsonl", base="all-MiniLM-L6-v2", out="models/code-minilm")

The Matryoshka and hashing recipes train on the same pairs through :func:`pair_job`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from encoders.sentence import BASE_MODEL
from encoders.train.common import (
    Job,
    Progress,
    TrainResult,
    TrainSettings,
    fit,
    load_base,
    prepare_out,
    ranking_metrics,
    st_losses,
)
from encoders.train.inputs import Pair, load_pairs, rows_hash
from retriever.errors import InputError

__all__ = ["dev_metrics", "infonce_loss", "pair_job", "train_contrastive"]

# Without an explicit count, rows use up to this many of their given negatives: each one is
# another text to embed a query.
DEFAULT_NEGATIVES_CAP = 3
View = Callable[[np.ndarray], np.ndarray]


def train_contrastive(
    data: Iterable | str | Path,
    *,
    out: str | Path,
    base: str = BASE_MODEL,
    settings: TrainSettings | None = None,
    hard_negatives: int | None = None,
    scale: float = 20.0,
    dev: Iterable | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    command: str | None = None,
) -> TrainResult:
    """Fine-tune ``base`` with InfoNCE over in-batch and hard negatives.

    Args:
        data: ``(query, positive[, negatives])`` pairs, or a pairs JSONL file or folder
            (:mod:`encoders.train.inputs`; its ``"dev"`` rows are the dev set).
        out: the folder to write: a new or empty one, or an unfinished run's with ``resume``.
        base: a packaged model name or a sentence-transformers folder.
        settings: epochs, batch size, learning rate, seed, LoRA... (:class:`TrainSettings`).
        hard_negatives: negatives a query; rows with fewer get positives of random other
            pairs. None: as many as the richest row gives, at most 3.
        scale: inverse temperature of the softmax over cosine similarities.
        dev: held-out pairs; nDCG@10, MRR@10 and Recall@10 before and after go in the manifest.
        progress: ``progress(stage, done, total)``, stages ``"train"`` and ``"dev"``.
        resume: continue the unfinished run in ``out`` from its last checkpoint.
        command: the command line to record.

    Returns:
        The run's result; ``out`` is then usable as ``--model OUT``.
    """
    settings = settings or TrainSettings()
    rows, dev_rows = load_pairs(data, dev)
    out = prepare_out(Path(out), resume)
    model, base_info = load_base(base, settings)
    loss = infonce_loss(model, settings, len(rows), scale)
    job = pair_job("contrastive", model, loss, rows, dev_rows, settings.seed,
                   hard_negatives, {"scale": scale})
    job.manifest = {"loss_module": type(loss).__name__}
    return fit(job, out=out, settings=settings, base=base_info, progress=progress,
               resume=resume, command=command)


def infonce_loss(model, settings: TrainSettings, rows: int, scale: float):
    """InfoNCE over in-batch and given negatives: cached (GradCache) only when a step's batch
    is larger than the mini batch, since otherwise caching buys no memory for an extra pass."""
    losses = st_losses()
    if settings.mini_batch_size >= min(settings.batch_size, rows):  # as fit cuts the batches
        return losses.MultipleNegativesRankingLoss(model, scale=scale)
    return losses.CachedMultipleNegativesRankingLoss(
        model, scale=scale, mini_batch_size=settings.mini_batch_size)


def pair_job(recipe: str, model, loss, rows: list[Pair], dev_rows: list[Pair] | None,
             seed: int, hard_negatives: int | None, options: dict,
             views: dict[str, View] | None = None) -> Job:
    """The :class:`Job` of a recipe that trains on pairs: text columns (queries, positives,
    then one column a negative), the data's identity, and dev metrics over ``views``."""
    count = _negatives_count(rows, hard_negatives)
    negatives = _fill_negatives(rows, count, seed)

    def columns(ids: list[int]) -> list[list[str]]:
        return [[rows[i][0] for i in ids], [rows[i][1] for i in ids],
                *[[negatives[i][j] for i in ids] for j in range(count)]]

    identity = {
        "data": {"hash": rows_hash(rows), "pairs": len(rows),
                 "dev_hash": rows_hash(dev_rows) if dev_rows else None,
                 "dev_pairs": len(dev_rows) if dev_rows else 0},
        "options": {**options, "hard_negatives": count},
    }
    dev = None
    if dev_rows:
        def dev(m):
            return dev_metrics(m, dev_rows, views=views)
    return Job(recipe=recipe, model=model, loss=loss, columns=columns, rows=len(rows),
               identity=identity, dev=dev)


def _negatives_count(rows: list[Pair], requested: int | None) -> int:
    if requested is None:
        return min(DEFAULT_NEGATIVES_CAP, max(len(row[2]) for row in rows))
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 0:
        raise InputError(f"hard_negatives must be a count >= 0 or None, not {requested!r}.")
    return requested


def _fill_negatives(rows: list[Pair], count: int, seed: int) -> list[list[str]]:
    """``count`` negatives a row: its own first, then positives of random other rows."""
    draw = random.Random(seed)
    filled = []
    for index, (_, positive, given) in enumerate(rows):
        negatives = list(given[:count])
        while len(negatives) < count:
            other = draw.randrange(len(rows))
            if other != index and rows[other][1] != positive:
                negatives.append(rows[other][1])
            elif len({row[1] for row in rows}) < 2:
                negatives.append(rows[other][1])  # every positive alike: nothing better exists
        filled.append(negatives)
    return filled


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def dev_metrics(model, rows: list[Pair], *, views: dict[str, View] | None = None,
                batch_size: int = 64) -> dict[str, float]:
    """Ranking metrics of ``model`` on held-out pairs: each query against every distinct dev
    positive, one relevant each.

    Args:
        model: a SentenceTransformer.
        rows: the dev pairs.
        views: name suffix -> transform of the raw ``(n, d)`` float32 outputs before scoring
            (a Matryoshka prefix, sign codes); default ``{"": unit rows}``.
        batch_size: texts a forward pass.

    Returns:
        ``{"ndcg@10<suffix>": ..., "mrr@10<suffix>": ..., "recall@10<suffix>": ...}``.
    """
    docs = list(dict.fromkeys(row[1] for row in rows))
    where = {doc: i for i, doc in enumerate(docs)}
    relevant = np.array([where[row[1]] for row in rows])

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                       show_progress_bar=False), dtype=np.float32)

    queries, documents = encode([row[0] for row in rows]), encode(docs)
    metrics = {}
    for suffix, view in (views or {"": _unit}).items():
        for name, value in ranking_metrics(view(queries), view(documents), relevant).items():
            metrics[name + suffix] = round(value, 4)
    return metrics
