"""What the training recipes share: settings, data checks, the loop, checkpoints, the manifest.

A recipe (``contrastive``, ``matryoshka``, ``hashing``, ``mae``) checks its data, loads the base
model, composes its loss and hands both to :func:`fit`, which runs the steps and writes::

    <out>/
      modules.json, config.json, ...   the sentence-transformers folder (``--model OUT``)
      training.json                    recipe, seed, data hash, base fingerprint, command,
                                       settings, loss, dev metrics: written last, so its
                                       presence means the run finished
      README.md                        the same as a short model card
      lora/                            the LoRA adapter alone (``lora=True`` runs only)
      checkpoints/                     while the run is unfinished: run.json (what must match
                                       to resume) and step-<n>/ (trainable weights, optimizer,
                                       random states); removed when the run finishes

Checkpoints hold only what trains, load with safetensors and ``torch.load(weights_only=True)``,
and restore the random states, so a killed run resumed from its last checkpoint takes the
same steps as one that was never stopped. Library code: progress goes to a callback.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from encoders.folder import content_digests
from encoders.sentence import PACKAGED_MODELS, TRAINING_MANIFEST, resolve_model
from encoders.train.checkpoints import (
    check_identity,
    latest,
    load_checkpoint,
    read_json,
    save_checkpoint,
    write_json,
)
from retriever.errors import InputError, MissingDependencyError

__all__ = [
    "CHECKPOINTS", "MANIFEST_FORMAT", "Job", "Progress", "TrainResult", "TrainSettings",
    "features", "fit", "load_base", "output_width", "prepare_out", "ranking_metrics",
    "st_losses", "st_modules",
]

MANIFEST_FORMAT = "dense-retriever-training"
MANIFEST_VERSION = 1
CHECKPOINTS = "checkpoints"
Progress = Callable[[str, int, int], None]
# Settings that change what a step computes: a resumed run must have the same ones.
_IDENTITY_SETTINGS = ("epochs", "batch_size", "lr", "warmup", "weight_decay", "seed",
                      "max_length", "max_steps", "lora", "lora_rank")


@dataclass(frozen=True)
class TrainSettings:
    """How a recipe trains; every field is recorded in ``training.json``.

    Attributes:
        epochs: passes over the data.
        batch_size: examples a step; in-batch negatives grow with it.
        mini_batch_size: texts a forward pass where the loss caches gradients (GradCache), so
            a large ``batch_size`` costs the memory of this one.
        lr: peak learning rate of AdamW (linear warm-up, then linear decay to 0).
        warmup: fraction of the steps spent warming up.
        weight_decay: AdamW weight decay.
        seed: seeds the data order, the model's random draws and the negatives' filling.
        max_length: token limit a text.
        max_steps: stop after this many steps (None: all epochs).
        checkpoint_every: steps between checkpoints.
        lora: train a LoRA adapter (peft) instead of every weight; merged into the saved model.
        lora_rank: the adapter's rank.
        device: ``"cpu"``, ``"cuda"``...; None picks CUDA when present.
        keep_checkpoints: keep ``checkpoints/`` after the run finishes.
    """

    epochs: int = 1
    batch_size: int = 64
    mini_batch_size: int = 32
    lr: float = 2e-5
    warmup: float = 0.1
    weight_decay: float = 0.01
    seed: int = 0
    max_length: int = 256
    max_steps: int | None = None
    checkpoint_every: int = 200
    lora: bool = False
    lora_rank: int = 16
    device: str | None = None
    keep_checkpoints: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "mini_batch_size", "max_length",
                     "checkpoint_every", "lora_rank"):
            _positive_int(name, getattr(self, name))
        if self.max_steps is not None:
            _positive_int("max_steps", self.max_steps)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise InputError(f"seed must be an integer, not {self.seed!r}.")
        for name, low, high in (("lr", 0.0, 1.0), ("warmup", 0.0, 1.0),
                                ("weight_decay", 0.0, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                low <= value <= high) or (name == "lr" and value == 0):
                raise InputError(f"{name} must be a number in ({low}, {high}], not {value!r}.")


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer, not {value!r}.")


@dataclass(frozen=True)
class TrainResult:
    """What a run did: where the model is, its steps and losses, and its manifest."""

    out: Path
    steps: int
    resumed_from: int | None
    losses: list[float]
    manifest: dict


@dataclass
class Job:
    """One recipe's run, as :func:`fit` takes it.

    Attributes:
        recipe: the recipe's name, as the CLI spells it.
        model: the SentenceTransformer being trained (float32, on its device).
        loss: an ``nn.Module`` called as ``loss(features, None)``, features one dict a column.
        columns: the text columns of a batch of row ids (queries, positives, negatives...).
        rows: how many training rows there are.
        identity: what else must match to resume (data hash, recipe options).
        manifest: recipe sections added to ``training.json`` (dims, hash bits...).
        dev: dev metrics of the model (None: no dev data).
        on_step: called with the step about to run (schedules inside a loss).
        before_save: called with the model after training, before it is saved.
    """

    recipe: str
    model: Any
    loss: torch.nn.Module
    columns: Callable[[list[int]], list[list[str]]]
    rows: int
    identity: dict
    manifest: dict = field(default_factory=dict)
    dev: Callable[[Any], dict] | None = None
    on_step: Callable[[int], None] | None = None
    before_save: Callable[[Any], None] | None = None


def prepare_out(out: Path, resume: bool) -> Path:
    """Check ``out`` before any model loads: a new or empty folder, or an unfinished run when
    resuming."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; pass a folder for the trained model.")
    if (out / TRAINING_MANIFEST).exists():
        raise InputError(f"{out} already holds a finished training run ({TRAINING_MANIFEST}). "
                         "Choose another output folder, or delete this one.")
    unfinished = (out / CHECKPOINTS / "run.json").exists()
    if out.exists() and any(out.iterdir()):
        if unfinished and not resume:
            raise InputError(f"{out} holds an unfinished run: pass --resume (resume=True) to "
                             "continue it from its last checkpoint, or choose another folder.")
        if not unfinished:
            raise InputError(f"{out} is not empty and holds no unfinished run to resume. "
                             "Choose a new or empty output folder.")
    return out


def load_base(base: str, settings: TrainSettings):
    """The base model, float32 on its device, LoRA-wrapped if asked; and its identity."""
    from sentence_transformers import SentenceTransformer

    _seed(settings.seed)  # the modules a recipe adds (a decoder, a head) start seeded too
    path = resolve_model(base)  # MissingDependencyError names the packaged models
    if not (path / "modules.json").is_file():
        raise InputError(f"The base model {base!r} is not a sentence-transformers folder (no "
                         "modules.json). Pass such a folder or a packaged model name.")
    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    with _no_hf_bars():
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
    # Weights stored as fp16 (to fit a transfer) overflow in training: the loss goes to NaN.
    model.float()
    model.max_seq_length = min(settings.max_length, model.max_seq_length or settings.max_length)
    if settings.lora:
        _wrap_lora(model, settings.lora_rank)
    name = base if base in PACKAGED_MODELS else path.name  # no path of this machine
    return model, {"model": name, "fingerprint": content_digests(path, [b""])[0]}


@contextlib.contextmanager
def _no_hf_bars() -> Iterator[None]:
    """transformers draws bars on stderr while loading and saving; a library must not print."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _wrap_lora(model, rank: int) -> None:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise MissingDependencyError(
            "LoRA training needs peft: pip install 'dense-retriever[train]'.") from exc
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05,
                        target_modules="all-linear")
    _set_backbone(model[0], get_peft_model(model[0].auto_model, config))


def _set_backbone(transformer, backbone) -> None:
    # sentence-transformers 6 keeps the transformers model in `model` (`auto_model` is a
    # read-only alias); earlier releases keep it in `auto_model` itself.
    alias = getattr(type(transformer), "auto_model", None)
    setattr(transformer, "model" if isinstance(alias, property) else "auto_model", backbone)


def st_losses():
    """sentence-transformers' losses module (6.x moved it; the old path warns)."""
    try:
        from sentence_transformers.sentence_transformer import losses
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers import losses
    return losses


def st_modules():
    """sentence-transformers' modules (Dense, Pooling...), wherever this release keeps them."""
    try:
        from sentence_transformers.sentence_transformer import modules
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers import models as modules
    return modules


def output_width(model) -> int:
    """The model's output dimension (sentence-transformers 6 renamed the getter)."""
    getter = getattr(model, "get_embedding_dimension", None)
    return int(getter() if getter else model.get_sentence_embedding_dimension())


def features(model, texts: Sequence[str]) -> dict:
    """Tokenised ``texts`` on the model's device, as a loss takes one column."""
    prepare = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers < 6
    batch = prepare(list(texts))
    return {k: v.to(model.device) if hasattr(v, "to") else v for k, v in batch.items()}


def ranking_metrics(queries: np.ndarray, docs: np.ndarray, relevant: np.ndarray,
                    k: int = 10) -> dict[str, float]:
    """nDCG@k, MRR@k and Recall@k with one relevant document a query.

    Args:
        queries: ``(n, d)`` float32 query vectors (or +-1 codes).
        docs: ``(m, d)`` document vectors of the same kind.
        relevant: ``(n,)`` int row of each query's relevant document.

    Ties with the relevant document count half, so codes that tie often are not flattered.
    """
    scores = queries @ docs.T
    own = scores[np.arange(len(queries)), relevant][:, None]
    rank = 1 + (scores > own).sum(1) + ((scores == own).sum(1) - 1) / 2
    hit = rank <= k
    return {
        f"ndcg@{k}": float(np.mean(np.where(hit, 1 / np.log2(rank + 1), 0.0))),
        f"mrr@{k}": float(np.mean(np.where(hit, 1 / rank, 0.0))),
        f"recall@{k}": float(np.mean(hit)),
    }


def fit(job: Job, *, out: Path, settings: TrainSettings, base: dict,
        progress: Progress | None = None, resume: bool = False,
        command: str | None = None) -> TrainResult:
    """Run ``job``'s steps with checkpoints, then save the model and ``training.json``."""
    started = time.monotonic()
    model, run_dir = job.model, out / CHECKPOINTS
    identity = json.loads(json.dumps({  # as run.json stores it: tuples become lists
        "recipe": job.recipe, "base": base, **job.identity,
        "settings": {k: getattr(settings, k) for k in _IDENTITY_SETTINGS}}))
    schedule = _schedule(job.rows, settings)
    params = _trainable(model, job.loss)
    optimizer = torch.optim.AdamW(list(params.values()), lr=settings.lr,
                                  weight_decay=settings.weight_decay)
    checkpoint = latest(run_dir) if resume else None
    if checkpoint is not None:
        run = read_json(run_dir / "run.json")
        check_identity(run.get("identity", {}), identity, out)
        start, losses = load_checkpoint(checkpoint, params, optimizer)
        base_metrics = run.get("base_metrics")
    else:
        _seed(settings.seed)
        start, losses = 0, []
        base_metrics = _dev(job, progress)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "run.json", {"identity": identity, "base_metrics": base_metrics})
    total, warm = len(schedule), max(1, round(settings.warmup * len(schedule)))
    model.train()
    for step in range(start, total):
        for group in optimizer.param_groups:  # linear warm-up, then linear decay
            group["lr"] = settings.lr * min((step + 1) / warm, (total - step) / (total - warm + 1))
        if job.on_step is not None:
            job.on_step(step)
        value = job.loss([features(model, c) for c in job.columns(schedule[step])], None)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        optimizer.step()
        losses.append(float(value.detach()))
        if not math.isfinite(losses[-1]):
            raise InputError(f"The loss became {losses[-1]} at step {step + 1}: lower the "
                             "learning rate (--lr), or check the base model's weights.")
        if progress is not None:
            progress("train", step + 1, total)
        if (step + 1) % settings.checkpoint_every == 0 and step + 1 < total:
            save_checkpoint(run_dir, step + 1, params, optimizer, losses)
    model.eval()
    return _finish(job, out, settings, base, identity, losses, base_metrics, command,
                   start if checkpoint is not None else None, started, progress)


def _schedule(rows: int, settings: TrainSettings) -> list[list[int]]:
    """Row ids of every step: a seeded shuffle an epoch, cut into full batches."""
    size = min(settings.batch_size, rows)
    batches = []
    for epoch in range(settings.epochs):
        order = random.Random(settings.seed * 1_000_003 + epoch).sample(range(rows), rows)
        batches += [order[i:i + size] for i in range(0, rows - size + 1, size)]
    return batches[: settings.max_steps] if settings.max_steps else batches


def _trainable(model, loss: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """Every parameter that trains: the model's, then the loss's own (a decoder, a head)."""
    params = {f"model.{n}": p for n, p in model.named_parameters() if p.requires_grad}
    seen = {id(p) for p in model.parameters()}
    params.update({f"loss.{n}": p for n, p in loss.named_parameters()
                   if p.requires_grad and id(p) not in seen})
    return params


def _seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # every device's generator


def _dev(job: Job, progress: Progress | None) -> dict | None:
    if job.dev is None:
        return None
    if progress is not None:
        progress("dev", 0, 1)
    job.model.eval()
    with torch.no_grad():
        metrics = job.dev(job.model)
    job.model.train()
    if progress is not None:
        progress("dev", 1, 1)
    return metrics


def _finish(job: Job, out: Path, settings: TrainSettings, base: dict, identity: dict,
            losses: list[float], base_metrics, command, resumed_from, started,
            progress) -> TrainResult:
    model = job.model
    with _no_hf_bars():
        if settings.lora:  # the adapter alone (a few MB, what a shipped model needs), then merged
            adapted = model[0].auto_model
            adapted.save_pretrained(str(out / "lora"))
            _set_backbone(model[0], adapted.merge_and_unload())
        if job.before_save is not None:
            job.before_save(model)
        model.save(str(out), create_model_card=False)
    trained_metrics = _dev(job, progress)
    model.eval()
    tail = losses[-max(1, len(losses) // 10):]
    manifest = {
        "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
        "created_by": f"dense-retriever {_version()}",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "recipe": job.recipe, "seed": settings.seed, "base": base,
        "data": identity.get("data"), "options": identity.get("options"),
        "command": command, "settings": asdict(settings), "steps": len(losses),
        "loss": {"first": losses[0] if losses else None,
                 "last_tenth_mean": float(np.mean(tail)) if tail else None},
        "dev_metrics": None if base_metrics is None else
        {"base": base_metrics, "trained": trained_metrics},
        "seconds_this_process": round(time.monotonic() - started, 1),
        **job.manifest,
    }
    (out / "README.md").write_text(_model_card(manifest), encoding="utf-8")
    write_json(out / TRAINING_MANIFEST, manifest)  # last: its presence means finished
    if not settings.keep_checkpoints:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    return TrainResult(out=out, steps=len(losses), resumed_from=resumed_from, losses=losses,
                       manifest=manifest)


def _model_card(manifest: dict) -> str:
    lines = [f"# {manifest['recipe']} encoder over {manifest['base']['model']}", "",
             f"- recipe: `{manifest['recipe']}`, seed {manifest['seed']}, "
             f"{manifest['steps']} steps",
             f"- base: `{manifest['base']['model']}` (fingerprint "
             f"`{manifest['base']['fingerprint']}`)",
             f"- data: `{json.dumps(manifest['data'])}`",
             f"- command: `{manifest['command']}`", ""]
    if manifest["dev_metrics"]:
        lines += ["| dev metric | base | trained |", "| --- | --- | --- |"]
        base, trained = manifest["dev_metrics"]["base"], manifest["dev_metrics"]["trained"]
        lines += [f"| {name} | {base.get(name, float('nan')):.4f} | {value:.4f} |"
                  for name, value in trained.items()]
    lines += ["", f"Everything else is in `{TRAINING_MANIFEST}`.", ""]
    return "\n".join(lines)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dense-retriever")
    except PackageNotFoundError:
        return "unknown"
