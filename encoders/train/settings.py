"""What a training run is: its settings (recorded in ``training.json``), the recipe's job as
:func:`encoders.train.common.fit` takes it, and what the run did."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from retriever.errors import InputError

__all__ = ["CHECKPOINTS", "MANIFEST_FORMAT", "MANIFEST_VERSION", "Job", "Progress",
           "TrainResult", "TrainSettings"]


MANIFEST_FORMAT = "dense-retriever-training"
MANIFEST_VERSION = 1
CHECKPOINTS = "checkpoints"
Progress = Callable[[str, int, int], None]


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
