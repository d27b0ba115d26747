"""The training loop every recipe shares: seeded steps with checkpoints (resumed to the same
steps), then the saved model, its ``training.json`` and model card
(see :mod:`encoders.train.common`)."""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from encoders.sentence import TRAINING_MANIFEST
from encoders.train.base_model import _no_hf_bars, _seed, _set_backbone, features
from encoders.train.checkpoints import (
    check_identity,
    latest,
    load_checkpoint,
    read_json,
    save_checkpoint,
    write_json,
)
from encoders.train.settings import (
    CHECKPOINTS,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    Job,
    Progress,
    TrainResult,
    TrainSettings,
)
from retriever.errors import InputError

__all__ = ["fit"]


# Settings that change what a step computes: a resumed run must have the same ones.
_IDENTITY_SETTINGS = ("epochs", "batch_size", "lr", "warmup", "weight_decay", "seed",
                      "max_length", "max_steps", "lora", "lora_rank")


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
