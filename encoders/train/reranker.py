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

import contextlib
import json
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from retriever.errors import InputError, MissingDependencyError

__all__ = ["ADAPTER", "MANIFEST", "FORMAT", "RerankSettings", "ListwiseLoss", "LoraLinear",
           "add_lora", "load_model", "quiet_transformers", "score_pairs", "train_reranker",
           "read_manifest"]

ADAPTER = "adapter.safetensors"
MANIFEST = "reranker.json"
FORMAT = "dense-retriever-reranker"
VERSION = 1
# The linear layers of each BERT encoder layer that get a low-rank delta.
TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense")
HEAD = ("bert.pooler.", "classifier.")
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


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a core dependency
        raise MissingDependencyError("The reranker needs torch: pip install torch.") from exc
    return torch


def _lora_class():
    torch = _torch()

    class _LoraLinear(torch.nn.Module):
        """``base(x) + alpha / rank * B(A(dropout(x)))``; B starts at zero, so the wrapped
        model starts exactly as the base."""

        def __init__(self, base, rank: int, alpha: float, dropout: float) -> None:
            super().__init__()
            self.base = base
            self.scale = alpha / rank
            self.A = torch.nn.Parameter(torch.empty(rank, base.in_features))
            self.B = torch.nn.Parameter(torch.zeros(base.out_features, rank))
            torch.nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # as nn.Linear, and peft
            self.dropout = torch.nn.Dropout(dropout)

        def forward(self, x):
            return self.base(x) + (self.dropout(x) @ self.A.T @ self.B.T) * self.scale

    return _LoraLinear


def LoraLinear(base, rank: int, alpha: float, dropout: float = 0.0):  # noqa: N802
    """A LoRA wrapper around the ``nn.Linear`` ``base`` (built lazily: torch loads on use)."""
    return _lora_class()(base, rank, alpha, dropout)


def add_lora(model, rank: int, alpha: float, dropout: float = 0.0) -> dict:
    """Freeze ``model`` and wrap its :data:`TARGETS` linears; the pooler and head train.

    Returns:
        ``{module name: wrapper}`` for every wrapped layer.
    """
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    wrapped = {}
    for name, module in list(model.named_modules()):
        if ".layer." in name and name.endswith(TARGETS) and hasattr(module, "in_features"):
            parent_name, _, child = name.rpartition(".")
            wrapper = LoraLinear(module, rank, alpha, dropout)
            setattr(model.get_submodule(parent_name), child, wrapper)
            wrapped[name] = wrapper
    if not wrapped:
        raise InputError("The base model has no BERT encoder layers to adapt; pass a BERT "
                         "sentence-transformers folder such as all-MiniLM-L6-v2.")
    for name, parameter in model.named_parameters():
        if name.startswith(HEAD):
            parameter.requires_grad_(True)
    return wrapped


def _adapter_tensors(model, wrapped: dict) -> dict:
    tensors = {}
    for name, wrapper in wrapped.items():
        tensors[f"lora.{name}.A"] = wrapper.A.detach().float().cpu().contiguous()
        tensors[f"lora.{name}.B"] = wrapper.B.detach().float().cpu().contiguous()
    for name, parameter in model.named_parameters():
        if name.startswith(HEAD):
            tensors[f"head.{name}"] = parameter.detach().float().cpu().contiguous()
    return tensors


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


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """A library must not print: transformers warns about a newly made head and draws a bar
    while loading weights. Both are off for the block, then the caller's settings return."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _base_model(path: Path):
    """(BertForSequenceClassification with one label, tokenizer) from a BERT folder."""
    from transformers import AutoConfig, AutoTokenizer, BertForSequenceClassification

    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"The reranker's base {path} has no readable config.json ({exc}). "
                         "Pass a BERT sentence-transformers folder.") from exc
    if config.model_type != "bert":
        raise InputError(f"The reranker's base {path} is a {config.model_type!r} model; this "
                         "reranker is a BERT cross-encoder (all-MiniLM-L6-v2 and the like).")
    config.num_labels = 1
    with quiet_transformers():
        model = BertForSequenceClassification.from_pretrained(
            str(path), config=config, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return model.float(), tokenizer


def _resolve_base(base: str) -> tuple[Path, dict]:
    from encoders.folder import content_digests

    path = Path(base).expanduser()
    if path.is_dir():
        path, name = path.resolve(), path.name  # the name only: no path of this machine
    else:
        from encoders.sentence import resolve_model

        path, name = resolve_model(base), base
    return path, {"model": name, "fingerprint": content_digests(path, [b""])[0]}


def read_manifest(folder: Path) -> dict:
    """``reranker.json`` of an artifact folder, checked; InputError names what is wrong."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{folder / MANIFEST} is unreadable ({exc}). Retrain with `retriever "
                         "train reranker`, or restore the folder.") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{folder / MANIFEST} is not a {FORMAT} manifest.")
    if manifest.get("version") != VERSION:
        raise InputError(f"{folder} holds reranker format version {manifest.get('version')!r}; "
                         f"this release reads version {VERSION}. Retrain it.")
    return manifest


def load_model(folder: Path, *, base: str | None = None, device: str = "cpu"):
    """The merged cross-encoder of an artifact ``folder``: ``(model, tokenizer, manifest)``.

    Args:
        base: the base model (a packaged name or a folder); None: the one the manifest names.
            Its fingerprint must be the one the adapter was trained on.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    torch = _torch()
    manifest = read_manifest(folder)
    path, identity = _resolve_base(base or manifest["base"]["model"])
    if identity["fingerprint"] != manifest["base"].get("fingerprint"):
        raise InputError(
            f"The reranker {folder.name} was trained on a base with fingerprint "
            f"{manifest['base'].get('fingerprint')}, but {identity['model']} has "
            f"{identity['fingerprint']}. Pass base= the model it was trained on.")
    try:
        tensors = load_file(str(folder / ADAPTER))
    except (OSError, SafetensorError) as exc:
        raise InputError(f"{folder / ADAPTER} is missing or corrupt ({exc}). Retrain with "
                         "`retriever train reranker`, or restore the folder.") from exc
    model, tokenizer = _base_model(path)
    scale = float(manifest["lora"]["alpha"]) / int(manifest["lora"]["rank"])
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key, value in tensors.items():
            kind, _, name = key.partition(".")
            if kind == "head" and name in params and params[name].shape == value.shape:
                params[name].copy_(value)
            elif kind == "lora" and name.endswith(".A"):
                layer = modules.get(name[:-2])
                up = tensors.get(f"lora.{name[:-2]}.B")
                if layer is None or up is None or layer.weight.shape != (len(up), value.shape[1]):
                    raise InputError(f"{folder / ADAPTER}: {key} does not fit the base model. "
                                     "Pass base= the model it was trained on.")
                layer.weight += scale * (up.float() @ value.float())
            elif kind not in ("lora", "head") or (kind == "head" and name not in params):
                raise InputError(f"{folder / ADAPTER}: unexpected tensor {key}.")
    model.eval().to(device)
    return model, tokenizer, manifest


def score_pairs(model, tokenizer, query: str, texts: Sequence[str], *, max_length: int,
                batch_size: int = 16) -> np.ndarray:
    """Logits of ``(query, text)`` for each text: ``(len(texts),)`` float32."""
    torch = _torch()
    out = np.empty(len(texts), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            part = list(texts[start:start + batch_size])
            batch = tokenizer([query] * len(part), part, truncation="longest_first",
                              max_length=max_length, padding=True, return_tensors="pt")
            batch = {k: v.to(model.device) for k, v in batch.items()}
            out[start:start + len(part)] = model(**batch).logits[:, 0].float().cpu().numpy()
    return out


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
    save_file(_adapter_tensors(model, wrapped), str(out / ADAPTER))
    # Written last: its presence means the run finished.
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest
