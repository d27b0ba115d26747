"""Adapt an encoder to one repository with zero labels: mine its documented functions, train a
LoRA adapter on them, and measure before and after on functions held out.

The pairs are the miner's (:func:`eval.miner.mine`): the first sentence of a doc comment is
the query, the function without it the document. Whole files are held out (a seeded hash of
the path picks about ``dev_share`` of them), so a held-out query never has a sibling of its
own file in training. The measure ranks every held-out query against *all* the mined
functions of the repository, as a search would, not against the held-out ones alone.

    from eval.adapt import adapt
    result = adapt("path/to/repo", out="path/to/repo/.retriever/adapted")
    result.before["ndcg@10"], result.after["ndcg@10"]

The folder written is a sentence-transformers model (the adapter merged, and also kept in
``OUT/lora``) usable as ``retriever index PATH --model OUT``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from encoders.sentence import DEFAULT_MODEL
from encoders.train.common import TrainSettings, ranking_metrics
from encoders.train.contrastive import train_contrastive
from eval.miner import mine
from retriever.errors import InputError

__all__ = ["MIN_PAIRS", "Adapted", "adapt", "split_files"]

# Fewer documented functions than this teach an adapter little and measure it less.
MIN_PAIRS = 40
# Held-out queries below this make before/after differences noise.
_MIN_DEV = 10

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Adapted:
    """What :func:`adapt` did: the model folder, the pairs, and the held-out measure."""

    out: Path
    base: str
    train_pairs: int
    dev_pairs: int
    corpus: int
    before: dict[str, float]
    after: dict[str, float]
    steps: int
    seconds: float


def split_files(paths: list[str], dev_share: float, seed: int) -> set[str]:
    """The files held out: those whose seeded hash falls under ``dev_share``."""
    held = set()
    for path in sorted(set(paths)):
        digest = hashlib.sha256(f"{seed}:{path}".encode()).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 < dev_share:
            held.add(path)
    return held


def adapt(
    root: str | Path,
    out: str | Path,
    *,
    base: str = DEFAULT_MODEL,
    settings: TrainSettings | None = None,
    dev_share: float = 0.2,
    min_pairs: int = MIN_PAIRS,
    max_pairs: int | None = 20_000,
    progress: Progress | None = None,
) -> Adapted:
    """Mine ``root``, train a LoRA adapter over ``base`` on its pairs into ``out``, and
    measure the held-out functions before and after.

    Args:
        root: the repository (any source tree the miner reads).
        out: the model folder to write (new or empty).
        base: a packaged model name or a sentence-transformers folder.
        settings: training settings; default: LoRA rank 16, 3 epochs, batch 32, lr 1e-4.
        dev_share: the share of files held out for the measure.
        min_pairs: refuse a repository with fewer mined pairs than this.
        max_pairs: train on at most this many pairs (a seeded sample), None: all.
        progress: ``progress(stage, done, total)``: stages ``"train"`` and ``"measure"``.

    Raises:
        InputError: ``root`` is not a folder, too few pairs were mined, ``dev_share`` is not
            in (0, 1), or training fails on its settings.
    """
    started = time.monotonic()
    if not 0 < dev_share < 1:
        raise InputError(f"dev_share must be in (0, 1), not {dev_share!r}.")
    settings = settings or TrainSettings(epochs=3, batch_size=32, mini_batch_size=32, lr=1e-4,
                                         lora=True, lora_rank=16)
    bench = mine(root)
    ids = sorted(bench.queries)
    if len(ids) < min_pairs:
        raise InputError(
            f"{root}: only {len(ids)} documented functions could be mined (at least "
            f"{min_pairs} are needed to train and measure an adapter). Adapting needs doc "
            "comments (Python docstrings, /** */ in JS/TS/Java, // above Go funcs, /// in "
            "Rust).")
    # Doc ids are "path:start-end": hold out whole files.
    dev, train = _split(ids, lambda i: i.rsplit(":", 1)[0], dev_share, settings.seed)
    if len(dev) < _MIN_DEV or len(train) < _MIN_DEV:
        # Few files: hold out functions instead of files (seeded the same way).
        dev, train = _split(ids, lambda i: i, dev_share, settings.seed)
    if len(dev) < _MIN_DEV or len(train) < _MIN_DEV:
        raise InputError(f"{root}: {len(ids)} mined functions leave too few to hold out "
                         f"({len(dev)} held out, {len(train)} to train); need {_MIN_DEV} each.")
    if max_pairs is not None and len(train) > max_pairs:
        rng = np.random.default_rng(settings.seed)
        train = sorted(rng.choice(train, size=max_pairs, replace=False).tolist())
    pairs = [(bench.queries[i], bench.corpus[i].text) for i in train]
    # Held-out queries are ranked among every mined function, as a search would see them.
    before = _measure(base, bench, dev, ids, settings, progress)
    result = train_contrastive(pairs, out=out, base=base, settings=settings,
                               progress=progress, command=None)
    after = _measure(str(result.out), bench, dev, ids, settings, progress)
    return Adapted(out=result.out, base=base, train_pairs=len(train), dev_pairs=len(dev),
                   corpus=len(ids), before=before, after=after, steps=result.steps,
                   seconds=round(time.monotonic() - started, 1))


def _split(ids: list[str], key: Callable[[str], str], dev_share: float,
           seed: int) -> tuple[list[str], list[str]]:
    """(held out, trained on): the ids whose key :func:`split_files` holds out, the rest."""
    held = split_files([key(i) for i in ids], dev_share, seed)
    return [i for i in ids if key(i) in held], [i for i in ids if key(i) not in held]


def _measure(model: str, bench, dev: list[str], corpus_ids: list[str],
             settings: TrainSettings, progress: Progress | None) -> dict[str, float]:
    """nDCG@10, MRR@10 and Recall@10 of the held-out queries over every mined function."""
    from encoders.train.common import load_base

    if progress is not None:
        progress("measure", 0, 1)
    plain = TrainSettings(seed=settings.seed, max_length=settings.max_length,
                          device=settings.device)
    encoder, _ = load_base(model, plain)
    encoder.eval()
    docs = encoder.encode([bench.corpus[i].text for i in corpus_ids], batch_size=32,
                          normalize_embeddings=True, convert_to_numpy=True)
    queries = encoder.encode([bench.queries[i] for i in dev], batch_size=32,
                             normalize_embeddings=True, convert_to_numpy=True)
    row = {doc_id: n for n, doc_id in enumerate(corpus_ids)}
    metrics = ranking_metrics(queries.astype(np.float32), docs.astype(np.float32),
                              np.array([row[i] for i in dev]))
    if progress is not None:
        progress("measure", 1, 1)
    return {key: round(value, 4) for key, value in metrics.items()}
