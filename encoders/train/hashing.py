"""Binary hashing (BPR-style): train the model so the signs of its outputs are good binary codes.

A hash layer (a sentence-transformers ``Dense`` without activation, after the base model's
modules) gives ``bits`` outputs. In training they pass through ``tanh(beta * x)``, whose slope
``beta = sqrt(1 + gamma * step)`` grows so the codes harden towards +-1 (HashNet's
continuation); at inference the code is the sign. The loss (BPR, Yamada et al. 2021) adds
  - candidate generation: a margin ranking loss on binary query x binary document scores, each
    positive above every in-batch and hard negative by ``margin`` (2: one bit of Hamming
    distance), and
  - reranking: InfoNCE on continuous query x binary document scores.

The saved folder is a plain sentence-transformers model whose (continuous) outputs the binary
index kinds sign-binarise (``--index-spec BFlat``: bit j set where output j > 0), so its codes
feed them directly; ``training.json`` says ``{"hash": {"bits": ..., "inference": "sign"}}``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from encoders.sentence import BASE_MODEL
from encoders.train.common import (
    Progress,
    TrainResult,
    TrainSettings,
    fit,
    load_base,
    output_width,
    prepare_out,
    st_modules,
)
from encoders.train.contrastive import pair_job
from encoders.train.inputs import load_pairs
from retriever.errors import InputError

__all__ = ["BinaryHashLoss", "hash_codes", "pack_codes", "train_hash"]


def hash_codes(vectors: np.ndarray) -> np.ndarray:
    """The +-1 codes of ``(n, bits)`` outputs: ``(n, bits)`` int8, +1 where the output is > 0
    (the binary index's rule, so a 0 is -1 here as it is an unset bit there)."""
    return np.where(np.asarray(vectors) > 0, 1, -1).astype(np.int8)


def pack_codes(vectors: np.ndarray) -> np.ndarray:
    """Codes packed 8 to a byte: ``(n, bits // 8)`` uint8, most significant bit first, the
    layout FAISS binary indexes take."""
    return np.packbits(np.asarray(vectors) > 0, axis=1)


class BinaryHashLoss(nn.Module):
    """BPR's two losses over the hash layer's outputs (see the module docstring).

    Args:
        model: the SentenceTransformer whose last module is the hash layer.
        margin: what binary positive scores must beat binary negative scores by.
        scale: inverse temperature of the reranking softmax (scores are cosine-like).
        gamma: slope growth: ``beta = sqrt(1 + gamma * step)``.
        rerank_weight: weight of the reranking loss against the candidate loss.
    """

    def __init__(self, model, *, margin: float = 2.0, scale: float = 20.0, gamma: float = 0.1,
                 rerank_weight: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.margin, self.scale, self.gamma = margin, scale, gamma
        self.rerank_weight = rerank_weight
        self.step = 0  # set by the training loop before each step

    def beta(self) -> float:
        return math.sqrt(1.0 + self.gamma * self.step)

    def forward(self, features: list[dict], labels=None) -> torch.Tensor:
        outputs = [self.model(f)["sentence_embedding"] for f in features]
        queries, documents = outputs[0], torch.cat(outputs[1:])
        target = torch.arange(len(queries), device=queries.device)
        beta = self.beta()
        query_codes, document_codes = torch.tanh(beta * queries), torch.tanh(beta * documents)
        binary = query_codes @ document_codes.T  # (b, b * (1 + negatives))
        positive = binary[target, target]
        others = torch.ones_like(binary, dtype=torch.bool)
        others[target, target] = False
        candidates = F.relu(self.margin - positive[:, None] + binary)[others].mean()
        continuous = F.normalize(queries, dim=-1) @ document_codes.T
        rerank = F.cross_entropy(self.scale * continuous / math.sqrt(documents.shape[1]),
                                 target)
        return candidates + self.rerank_weight * rerank


def train_hash(
    data: Iterable | str | Path,
    *,
    out: str | Path,
    base: str = BASE_MODEL,
    settings: TrainSettings | None = None,
    bits: int | None = None,
    margin: float = 2.0,
    gamma: float = 0.1,
    rerank_weight: float = 1.0,
    hard_negatives: int | None = None,
    scale: float = 20.0,
    dev: Iterable | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    command: str | None = None,
) -> TrainResult:
    """Add a hash layer of ``bits`` outputs to ``base`` and train both for binary codes.

    Args:
        data, out, base, settings, hard_negatives, scale, dev, progress, resume, command: as
            for :func:`encoders.train.contrastive.train_contrastive`.
        bits: code length, a multiple of 8 (binary indexes pack 8 bits a byte). None: the
            base model's width.
        margin, gamma, rerank_weight: see :class:`BinaryHashLoss`.

    Returns:
        The run's result; dev metrics are reported for float vectors and for codes alone
        (``@codes``: Hamming ranking, what ``--index-spec BFlat`` without rescoring answers).
    """
    settings = settings or TrainSettings()
    rows, dev_rows = load_pairs(data, dev)
    out = prepare_out(Path(out), resume)
    model, base_info = load_base(base, settings)
    width = output_width(model)
    bits = width if bits is None else bits
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 8 or bits % 8:
        raise InputError(f"bits must be a positive multiple of 8 (codes pack 8 bits a byte), "
                         f"not {bits!r}.")
    model.append(_hash_layer(width, bits).to(model.device))
    loss = BinaryHashLoss(model, margin=margin, scale=scale, gamma=gamma,
                          rerank_weight=rerank_weight)
    views = {"": lambda v: v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12),
             "@codes": lambda v: hash_codes(v).astype(np.float32)}
    job = pair_job("hash", model, loss, rows, dev_rows, settings.seed, hard_negatives,
                   {"scale": scale, "bits": bits, "margin": margin, "gamma": gamma,
                    "rerank_weight": rerank_weight}, views=views)
    job.manifest = {"hash": {"bits": bits, "inference": "sign", "index_spec": "BFlat"}}

    def set_step(step: int) -> None:
        loss.step = step
    job.on_step = set_step
    return fit(job, out=out, settings=settings, base=base_info, progress=progress,
               resume=resume, command=command)


def _hash_layer(width: int, bits: int) -> nn.Module:
    # Starts as a rotation of the base outputs scaled to components near +-1, so the first
    # codes are the base model's own sign bits and tanh starts out of its flat middle.
    weight = torch.empty(bits, width)
    nn.init.orthogonal_(weight)
    if bits == width:
        weight = torch.eye(width)
    return st_modules().Dense(width, bits, bias=False, activation_function=nn.Identity(),
                              init_weight=weight * math.sqrt(width))
