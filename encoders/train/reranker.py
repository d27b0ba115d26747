"""A code cross-encoder: LoRA over a BERT base, a listwise loss over mined hard negatives.

The model is a ``BertForSequenceClassification`` with one output label (the base's pooler,
then a linear head) over ``[CLS] query [SEP] text [SEP]``. Training freezes the base and
learns low-rank deltas ``B @ A`` of every linear layer of the encoder, plus the pooler and
the head. What it writes is small and needs no peft to load::

    <out>/
      adapter.safetensors   lora.<module>.A (rank, in), lora.<module>.B (out, rank),
                            head.<parameter> (pooler and classifier), float32
      reranker.json         format, base model (name and fingerprint), LoRA rank and alpha,
                            max_length, and the training record (seed, data hash, command,
                            settings, loss, dev metrics)

:func:`load_model` rebuilds the base from its own folder and merges ``W += alpha / rank *
B @ A`` in place, so scoring runs the plain BERT at the base's speed.

The loss (:class:`ListwiseLoss`) is a softmax cross-entropy over each query's group
``[positive, negative 1..n]``: the positive must outscore the engine's own hard negatives.
Mining those negatives happens above this recipe (``retriever.rerankers.mining``).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# The LoRA lives in reranker_lora, reading the artifact back in reranker_model; their names
# stay importable from here, as before.
from encoders.train.reranker_lora import (  # noqa: F401
    HEAD,
    TARGETS,
    LoraLinear,
    _torch,
    adapter_tensors,
    add_lora,
)
from encoders.train.reranker_model import (  # noqa: F401
    ADAPTER,
    FORMAT,
    MANIFEST,
    VERSION,
    _base_model,
    _resolve_base,
    load_model,
    quiet_transformers,
    read_manifest,
    score_pairs,
)
from retriever.errors import InputError

__all__ = ["ADAPTER", "MANIFEST", "FORMAT", "RerankSettings", "ListwiseLoss", "LoraLinear",
           "add_lora", "load_model", "quiet_transformers", "score_pairs", "train_reranker",
           "read_manifest"]

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RerankSettings:
    """How the reranker trains; recorded in ``reranker.json``.

    Attributes:
        epochs: passes over the queries. batch_size: queries a step (each with its group).
        negatives: hard negatives a query; rows with fewer are filled with other rows'
            positives (seeded), so every group has ``1 + negatives`` texts.
        lr: peak AdamW learning rate (linear warm-up over ``warmup`` of the steps, then
            linear decay). seed: data order, LoRA initialisation, dropout, filling.
        max_length: token limit of ``query + text`` (the text is cut first).
        max_steps: stop after this many steps. rank, alpha, dropout: the LoRA deltas.
        device: ``"cpu"``, ``"cuda"``; None picks CUDA when present (bf16 autocast there).
    """

    epochs: int = 1
    batch_size: int = 32
    negatives: int = 7
    lr: float = 2e-4
    warmup: float = 0.1
    weight_decay: float = 0.0
    seed: int = 0
    max_length: int = 256
    max_steps: int | None = None
    rank: int = 32
    alpha: float = 64.0
    dropout: float = 0.05
    device: str | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "negatives", "max_length", "rank"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, not {value!r}.")
        if self.max_steps is not None and (not isinstance(self.max_steps, int)
                                           or self.max_steps < 1):
            raise InputError(f"max_steps must be a positive integer, not {self.max_steps!r}.")
        if not 0 < self.lr <= 1 or not 0 <= self.warmup < 1 or not 0 <= self.dropout < 1:
            raise InputError("lr must be in (0, 1], warmup and dropout in [0, 1).")


class ListwiseLoss:
    """Softmax cross-entropy over each query's ``(1 + negatives)`` scores, positive first.

    Args:
        group: texts a query (the positive and its negatives).
    """

    def __init__(self, group: int) -> None:
        self.group = group

    def __call__(self, logits):
        torch = _torch()
        scores = logits.float().view(-1, self.group)
        target = torch.zeros(len(scores), dtype=torch.long, device=scores.device)
        return torch.nn.functional.cross_entropy(scores, target)

    def config(self) -> dict:
        return {"group": self.group}


def _groups(rows: Sequence[tuple], count: int, seed: int) -> list[list[str]]:
    """``[query, positive, negative 1..count]`` a row; short rows filled with other rows'
    positives (seeded)."""
    rng = random.Random(seed)
    groups = []
    for i, (query, positive, negatives) in enumerate(rows):
        chosen = [n for n in negatives if n != positive][:count]
        for _ in range(50 * count):  # bounded: a pool of identical positives never fills
            if len(chosen) >= count:
                break
            other = rows[rng.randrange(len(rows))][1]
            if other != positive:
                chosen.append(other)
        if len(chosen) < count:
            raise InputError(f"Row {i + 1} has {len(chosen)} negatives and the other rows no "
                             f"distinct positives to fill {count}; pass more rows.")
        groups.append([query, positive, *chosen])
    return groups


def _dev_metrics(model, tokenizer, groups: list[list[str]], settings: RerankSettings) -> dict:
    """MRR and accuracy@1 of the positive within its group."""
    ranks = []
    for query, *texts in groups:
        scores = score_pairs(model, tokenizer, query, texts, max_length=settings.max_length,
                             batch_size=64)
        ranks.append(1 + int((scores[1:] > scores[0]).sum()))
    ranks = np.asarray(ranks)
    return {"mrr": round(float(np.mean(1 / ranks)), 4),
            "acc@1": round(float(np.mean(ranks == 1)), 4), "queries": len(ranks)}


def train_reranker(rows: Sequence[tuple], *, out: Path, base: str = "all-MiniLM-L6-v2",
                   settings: RerankSettings | None = None, dev: Sequence[tuple] | None = None,
                   progress: Progress | None = None, command: str | None = None,
                   base_identity: dict | None = None, data: dict | None = None) -> dict:
    """Train the cross-encoder on ``rows`` of ``(query, positive, negatives)``; write ``out``.

    Args:
        rows: training rows; negatives are texts (the engine's hard negatives).
        out: a new or empty folder for the artifact.
        base: a packaged model name or a BERT sentence-transformers folder.
        dev: rows scored before and after training (MRR of the positive in its group).
        base_identity: ``{"model", "fingerprint"}`` to record instead of ``base``'s own (a
            run on a copy of the packaged model records the packaged one).
        data: provenance recorded in the manifest (source, hash).

    Returns:
        The manifest written to ``out/reranker.json``.
    """
    from safetensors.torch import save_file

    from encoders.train.inputs import check_pairs, rows_hash

    torch = _torch()
    settings = settings or RerankSettings()
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out} must be a new or empty folder.")
    rows = check_pairs(rows)
    started = time.monotonic()
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    path, identity = _resolve_base(base)
    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = _base_model(path)
    wrapped = add_lora(model, settings.rank, settings.alpha, settings.dropout)
    model.to(device)
    groups = _groups(rows, settings.negatives, settings.seed)
    dev_groups = _groups(check_pairs(dev, "dev"), settings.negatives, settings.seed + 1) \
        if dev else None
    loss_fn = ListwiseLoss(1 + settings.negatives)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=settings.weight_decay)
    size = min(settings.batch_size, len(groups))
    schedule = []
    for epoch in range(settings.epochs):
        order = random.Random(settings.seed * 1_000_003 + epoch).sample(range(len(groups)),
                                                                       len(groups))
        schedule += [order[i:i + size] for i in range(0, len(order) - size + 1, size)]
    schedule = schedule[: settings.max_steps] if settings.max_steps else schedule
    base_dev = None
    if dev_groups:
        model.eval()
        base_dev = _dev_metrics(model, tokenizer, dev_groups, settings)
    model.train()
    total, warm = len(schedule), max(1, round(settings.warmup * len(schedule)))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") \
        else torch.autocast("cpu", enabled=False)
    losses = []
    for step, batch_rows in enumerate(schedule):
        for group in optimizer.param_groups:
            group["lr"] = settings.lr * min((step + 1) / warm, (total - step) / (total - warm + 1))
        queries, texts = [], []
        for row in batch_rows:
            query, *group_texts = groups[row]
            queries += [query] * len(group_texts)
            texts += group_texts
        batch = tokenizer(queries, texts, truncation="longest_first",
                          max_length=settings.max_length, padding=True, return_tensors="pt")
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast:
            logits = model(**batch).logits[:, 0]
        loss = loss_fn(logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            raise InputError(f"The loss became {losses[-1]} at step {step + 1}: lower --lr.")
        if progress is not None:
            progress("train", step + 1, total)
    model.eval()
    trained_dev = _dev_metrics(model, tokenizer, dev_groups, settings) if dev_groups else None
    tail = losses[-max(1, len(losses) // 10):]
    manifest = {
        "format": FORMAT, "version": VERSION,
        "base": base_identity or identity,
        "lora": {"rank": settings.rank, "alpha": settings.alpha, "targets": list(TARGETS)},
        "max_length": settings.max_length,
        "text": "the chunk's embedding text: 'path :: symbol' header line, then the code",
        "training": {
            "recipe": "listwise softmax over (positive + hard negatives), LoRA",
            "seed": settings.seed, "settings": asdict(settings) | {"device": device},
            "data": (data or {}) | {"rows": len(rows), "rows_hash": rows_hash(groups)},
            "command": command, "steps": len(losses),
            "loss": {"first": losses[0] if losses else None,
                     "first_tenth_mean": float(np.mean(losses[:len(tail)])) if tail else None,
                     "last_tenth_mean": float(np.mean(tail)) if tail else None},
            "dev": None if base_dev is None else {"base": base_dev, "trained": trained_dev},
            "seconds": round(time.monotonic() - started, 1),
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    save_file(adapter_tensors(model, wrapped), str(out / ADAPTER))
    # Written last: its presence means the run finished.
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest
