"""Matryoshka training: the InfoNCE loss at every nested prefix of the output (384, 256, 128,
64, 32 dimensions), and optionally at every depth of the transformer too (2D Matryoshka).

Composes sentence-transformers' losses: ``MatryoshkaLoss`` over the cached InfoNCE
(GradCache, large batches), or ``Matryoshka2dLoss`` (AdaptiveLayerLoss over MatryoshkaLoss)
over plain InfoNCE, since layer-wise training cannot cache gradients. By default the 2D loss is
the paper's: each step trains the full depth and one random shallower depth (the embedding
layer's output among them), with a KL term pulling the shallower similarities towards the full
depth's. ``layer_weights`` instead trains the named depths at every step, each at its own
weight against the full depth's 1, and no others; one random depth in six left half the
layers at 60% of full quality after 80 steps (benchmarks/RESULTS.md, retention). With
``distill`` the named depths also answer to a frozen copy of the base: each is pulled towards
the base's full-depth vector of every text (:mod:`encoders.train.depth_distill`), which holds
the full depth where it was while the shallow one learns. The saved model records
what it was trained for in ``training.json``: ``{"matryoshka": {"dims": [...], "layers":
[...]}}``, layers the full depth alone without the 2D variant. The encoder's ``dims=`` and
``layers=`` (``SentenceTransformerEncoder``) refuse anything else; where the largest trained
prefix is below the full width, the folder's ``truncate_dim`` says so too, so every
sentence-transformers reader cuts there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
from encoders.train.contrastive import infonce_loss, pair_job
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
    layer_weights: Mapping[int, float] | None = None,
    dim_weights: Mapping[int, float] | None = None,
    distill: float = 0.0,
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
        layer_weights: with ``layers``, ``{depth: weight}`` of the shallower depths to train
            at every step (the full depth weighs 1; KL term off, since it would also pull
            the embedding layer's output, which no weight excludes). The model then accepts
            only these depths and the full one. None: the paper's random depth a step.
        dim_weights: ``{dims: weight}`` of the nested losses (unnamed dims weigh 1).
        distill: with ``layer_weights``, the weight of an anchor term at every trained depth:
            one minus the cosine between that depth's vector of each text and the untouched
            base's full-depth vector of it (:mod:`encoders.train.depth_distill`). 0: off.

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
    depths = _check_layer_weights(layer_weights, layers, depth)
    weights = _check_dim_weights(dim_weights, dims)
    options = {"scale": scale}
    _check_distill(distill, depths)
    if depths is not None:
        options["layer_weights"] = {str(d): w for d, w in sorted(depths.items())}
    if distill:
        from encoders.train.depth_distill import DepthDistillLoss

        loss = DepthDistillLoss(model, depths, dims, weights, scale, distill)
        options["distill"] = distill
    elif layers:
        inner = losses.MultipleNegativesRankingLoss(model, scale=scale)
        if depths is None:
            loss = losses.Matryoshka2dLoss(model, inner, list(dims), matryoshka_weights=weights,
                                           n_layers_per_step=1, n_dims_per_step=-1)
        else:
            # Every depth each step; AdaptiveLayerLoss averages the shallower losses over the
            # depth count, which prior_layers_weight undoes so each weight is absolute. Layer
            # index i is the output of the first i layers (0: the embedding layer).
            loss = losses.Matryoshka2dLoss(
                model, inner, list(dims), matryoshka_weights=weights, n_layers_per_step=-1,
                n_dims_per_step=-1, prior_layers_weight=float(depth), kl_temperature=0.0,
                layer_weighting=lambda index: depths.get(index, 0.0))
    else:
        inner = infonce_loss(model, settings, len(rows), scale)
        loss = losses.MatryoshkaLoss(model, inner, list(dims), matryoshka_weights=weights)
    if dim_weights:
        options["dim_weights"] = {str(d): w for d, w in zip(dims, weights, strict=True)}
    # Without layers only the full depth was trained, and the record says so.
    trained_depths = [depth] if not layers else list(range(depth, 0, -1)) if depths is None \
        else sorted({depth} | {d for d, w in depths.items() if w > 0}, reverse=True)
    trained = {"dims": list(dims), "layers": trained_depths}
    views = {f"@{d}": _prefix(d) for d in dims}
    job = pair_job("matryoshka", model, loss, rows, dev_rows, settings.seed, hard_negatives,
                   {**options, **trained}, views=views)
    job.manifest = {"matryoshka": trained}
    if dims[0] < width:
        def cut(saved_model) -> None:
            saved_model.truncate_dim = dims[0]  # written to config_sentence_transformers.json
        job.before_save = cut
    return fit(job, out=out, settings=settings, base=base_info, progress=progress,
               resume=resume, command=command)


def _check_distill(distill: float, depths: Mapping[int, float] | None) -> None:
    if isinstance(distill, bool) or not isinstance(distill, int | float) or distill < 0:
        raise InputError(f"distill must be a weight >= 0, not {distill!r}.")
    if distill and depths is None:
        raise InputError("distill needs layers=True and layer_weights (the depths to anchor); "
                         "the paper's random depth a step has no fixed depths to pull.")


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


def _check_layer_weights(weights: Mapping[int, float] | None, layers: bool,
                         depth: int) -> dict[int, float] | None:
    if weights is None:
        return None
    if not layers:
        raise InputError("layer_weights train shallower depths: pass layers=True with them.")
    if not isinstance(weights, Mapping) or not weights:
        raise InputError(f"layer_weights must map depths to weights, such as {{3: 2.0}}, not "
                         f"{weights!r}.")
    checked = {}
    for key, value in weights.items():
        if isinstance(key, bool) or not isinstance(key, int) or not 1 <= key < depth:
            raise InputError(f"layer_weights names depth {key!r}; the base model has {depth} "
                             f"layers, so name depths 1 to {depth - 1} (the full depth weighs 1).")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise InputError(f"layer_weights[{key}] must be a weight >= 0, not {value!r}.")
        checked[key] = float(value)
    if not any(checked.values()):
        raise InputError("layer_weights gives every depth weight 0: give at least one depth a "
                         "positive weight, or leave layer_weights unset.")
    return checked


def _check_dim_weights(weights: Mapping[int, float] | None,
                       dims: tuple[int, ...]) -> list[float] | None:
    if weights is None:
        return None
    unknown = [d for d in weights if d not in dims] if isinstance(weights, Mapping) else None
    if unknown is None or unknown:
        raise InputError(f"dim_weights must map trained dims ({list(dims)}) to weights, not "
                         f"{weights!r}.")
    values = [weights.get(d, 1.0) for d in dims]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0 for v in values):
        raise InputError(f"dim_weights must be positive numbers, not {weights!r}.")
    return [float(v) for v in values]


def _prefix(dims: int):
    def view(vectors: np.ndarray) -> np.ndarray:
        prefix = vectors[:, :dims]
        return prefix / np.maximum(np.linalg.norm(prefix, axis=1, keepdims=True), 1e-12)
    return view
