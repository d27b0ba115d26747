"""Matryoshka training: the InfoNCE loss at every nested prefix of the output (384, 256, 128,
64, 32 dimensions), and optionally at every depth of the transformer too (2D Matryoshka).

Composes sentence-transformers' losses: ``MatryoshkaLoss`` over the cached InfoNCE
(GradCache, large batches), or ``Matryoshka2dLoss`` (AdaptiveLayerLoss over MatryoshkaLoss)
over plain InfoNCE, since layer-wise training cannot cache gradients. The saved model records
what it was trained for in ``training.json``: ``{"matryoshka": {"dims": [...], "layers":
[...]}}``, layers the full depth alone without the 2D variant. The encoder's ``dims=`` and
``layers=`` (``SentenceTransformerEncoder``) refuse anything else; where the largest trained
prefix is below the full width, the folder's ``truncate_dim`` says so too, so every
sentence-transformers reader cuts there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from encoders.sentence import BASE_MODEL
from encoders.train.common import (
    Progress,
    TrainResult,
    TrainSettings,
    fit,
    load_base,
    output_width,
    prepare_out,
    st_losses,
)
from encoders.train.contrastive import pair_job
from encoders.train.inputs import load_pairs
from retriever.errors import InputError

__all__ = ["DEFAULT_DIMS", "train_matryoshka"]

DEFAULT_DIMS = (384, 256, 128, 64, 32)


def train_matryoshka(
    data: Iterable | str | Path,
    *,
    out: str | Path,
    base: str = BASE_MODEL,
    settings: TrainSettings | None = None,
    dims: Sequence[int] | None = None,
    layers: bool = False,
    hard_negatives: int | None = None,
    scale: float = 20.0,
    dev: Iterable | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    command: str | None = None,
) -> TrainResult:
    """Fine-tune ``base`` so prefixes of its vectors (and, with ``layers``, its shallower
    layers) retrieve well on their own.

    Args:
        data, out, base, settings, hard_negatives, scale, dev, progress, resume, command: as
            for :func:`encoders.train.contrastive.train_contrastive`.
        dims: the nested output dimensions, each at most the model's width. None: those of
            384, 256, 128, 64, 32 that fit, and the full width.
        layers: also train every shallower depth (2D Matryoshka); the model then accepts
            ``layers=`` of 1 up to its layer count.

    Returns:
        The run's result; dev metrics are reported at every trained dimension.
    """
    settings = settings or TrainSettings()
    rows, dev_rows = load_pairs(data, dev)
    out = prepare_out(Path(out), resume)
    model, base_info = load_base(base, settings)
    width = output_width(model)
    dims = _check_dims(dims, width)
    losses = st_losses()
    depth = int(model[0].auto_model.config.num_hidden_layers)
    if layers:
        inner = losses.MultipleNegativesRankingLoss(model, scale=scale)
        loss = losses.Matryoshka2dLoss(model, inner, list(dims), n_layers_per_step=1,
                                       n_dims_per_step=-1)
    else:
        inner = losses.CachedMultipleNegativesRankingLoss(
            model, scale=scale, mini_batch_size=settings.mini_batch_size)
        loss = losses.MatryoshkaLoss(model, inner, list(dims))
    # Without layers only the full depth was trained, and the record says so.
    trained = {"dims": list(dims), "layers": list(range(depth, 0, -1)) if layers else [depth]}
    views = {f"@{d}": _prefix(d) for d in dims}
    job = pair_job("matryoshka", model, loss, rows, dev_rows, settings.seed, hard_negatives,
                   {"scale": scale, **trained}, views=views)
    job.manifest = {"matryoshka": trained}
    if dims[0] < width:
        def cut(saved_model) -> None:
            saved_model.truncate_dim = dims[0]  # written to config_sentence_transformers.json
        job.before_save = cut
    return fit(job, out=out, settings=settings, base=base_info, progress=progress,
               resume=resume, command=command)


def _check_dims(dims: Sequence[int] | None, width: int) -> tuple[int, ...]:
    if dims is None:
        return tuple(sorted({d for d in DEFAULT_DIMS if d <= width} | {width}, reverse=True))
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence) or not dims or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
        raise InputError(f"dims must be positive integers such as 384,256,128,64,32, not "
                         f"{dims!r}.")
    too_wide = [d for d in dims if d > width]
    if too_wide:
        raise InputError(f"dims {too_wide} exceed the base model's {width} output dimensions; "
                         f"pass dimensions of at most {width}.")
    return tuple(sorted(set(dims), reverse=True))


def _prefix(dims: int):
    def view(vectors: np.ndarray) -> np.ndarray:
        prefix = vectors[:, :dims]
        return prefix / np.maximum(np.linalg.norm(prefix, axis=1, keepdims=True), 1e-12)
    return view
