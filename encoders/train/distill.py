"""Distil a static code encoder from a transformer teacher, then train its table.

The recipe (after Model2Vec's distillation and potion-code's training):

1. Vocabulary: the teacher's WordPiece vocabulary, pruned, plus frequent code words
   (:mod:`encoders.train.vocab`).
2. Each token's vector is the teacher's mean-pooled output for that token alone
   (``[CLS] token [SEP]``; a code word is embedded from its split spelling).
3. PCA to ``dim`` dimensions, then SIF weighting: a token of frequency ``p`` in the mined code
   is scaled by ``sif / (sif + p)``, so ``self`` and ``(`` weigh little in a mean.
4. Training, both losses each step: (a) the student's vector of a text, through a linear head
   that is thrown away afterwards, matches the teacher's embedding of it (cosine); (b) InfoNCE
   on (docstring -> code) pairs with in-batch negatives (and, when the recipe asks, one mined
   hard negative a pair), in the student's own space.
5. Saved as a Model2Vec folder: int8 rows with one float scale per token (Model2Vec's
   ``weights``), ``tokenizer.json``, ``config.json`` and ``training.json`` (the recipe, seed,
   data hash, teacher fingerprint, command and dev metrics).

This module needs torch (and transformers for the teacher); the encoder that reads its output
(:class:`encoders.static.StaticEncoder`) needs neither. The command line that runs it is
``python -m encoders.train train`` (:mod:`encoders.train.__main__`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np

from encoders.train.vocab import Vocabulary
from retriever.errors import InputError

__all__ = [
    "Recipe", "Teacher", "distil_table", "pad_ids", "retrieval_metrics", "save_model2vec",
    "train_table",
]


@dataclass
class Recipe:
    """Settings of one training run; saved in ``training.json``."""

    dim: int = 256
    sif: float = 1e-3
    epochs: int = 10
    batch_pairs: int = 1024
    batch_texts: int = 2048
    lr: float = 5e-3
    temperature: float = 0.05
    distill_weight: float = 1.0
    contrastive_weight: float = 1.0
    symmetric: bool = False  # InfoNCE both ways: queries to codes and codes to queries
    # Mined hard negatives (one code per pair) join the in-batch negatives of the queries.
    hard_negatives: bool = False
    max_tokens: int = 512
    seed: int = 0
    notes: dict = field(default_factory=dict)


class Teacher:
    """A sentence-transformers-style teacher: a BERT folder, mean pooling, L2 norm."""

    def __init__(self, folder: Path, device: str = "cpu", max_length: int = 256) -> None:
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModel

        self.device = device
        self.max_length = max_length
        self.model = AutoModel.from_pretrained(str(folder), dtype=torch.float32)
        self.model.to(device).eval()
        self.tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        self.cls = self.tokenizer.token_to_id("[CLS]")
        self.sep = self.tokenizer.token_to_id("[SEP]")

    def _pool(self, rows: list[list[int]], normalize: bool, batch: int):
        import torch

        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        out = torch.zeros((len(rows), self.model.config.hidden_size), device=self.device)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device != "cpu")
        with torch.inference_mode(), autocast:
            for start in range(0, len(order), batch):
                picked = order[start : start + batch]
                width = max(len(rows[i]) for i in picked)
                ids = torch.zeros((len(picked), width), dtype=torch.long)
                mask = torch.zeros((len(picked), width), dtype=torch.long)
                for j, i in enumerate(picked):
                    ids[j, : len(rows[i])] = torch.tensor(rows[i])
                    mask[j, : len(rows[i])] = 1
                ids, mask = ids.to(self.device), mask.to(self.device)
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
                out[torch.tensor(picked, device=self.device)] = pooled
        return torch.nn.functional.normalize(out, dim=1) if normalize else out

    def embed(self, texts: Sequence[str], batch: int = 512):
        """(n, hidden) float32 unit rows on the teacher's device."""
        rows = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        return self._pool(rows, True, batch)

    def token_vectors(self, sources: Sequence[int | str], batch: int = 4096):
        """The teacher's raw mean-pooled output for each token alone, (len(sources), hidden)."""
        texts = [s for s in sources if isinstance(s, str)]
        spelled = iter(self.tokenizer.encode_batch(texts)) if texts else iter(())
        rows = [[self.cls, s, self.sep] if isinstance(s, int) else next(spelled).ids
                for s in sources]
        return self._pool(rows, False, batch)


def distil_table(token_vectors, counts: np.ndarray, recipe: Recipe):
    """PCA to ``recipe.dim`` and SIF weighting of the teacher's token vectors.

    Returns:
        ``(table, head)``: the (V, dim) float32 table and the (hidden, dim) map back to the
        teacher's space (the PCA components, scaled), as torch tensors on the input's device.
    """
    import torch

    vectors = token_vectors.float()
    mean = vectors.mean(0, keepdim=True)
    _, _, v = torch.linalg.svd(vectors - mean, full_matrices=False)
    dim = min(recipe.dim, v.shape[0])
    components = v[:dim].T  # (hidden, dim)
    projected = (vectors - mean) @ components
    scale = projected.std().clamp_min(1e-8)
    p = torch.as_tensor(counts, dtype=torch.float64, device=vectors.device)
    p = p / p.sum().clamp_min(1)
    weights = (recipe.sif / (recipe.sif + p)).float()[:, None]
    return projected / scale * weights, components * scale


def pad_ids(rows: list[list[int]], pad: int, width: int):
    """(len(rows), width) int32 tensor of the id lists, cut at ``width``, padded with ``pad``."""
    import torch

    lengths = np.fromiter((min(len(row), width) for row in rows), dtype=np.int64, count=len(rows))
    out = np.full((len(rows), width), pad, dtype=np.int32)
    # A boolean mask assigns in row-major order: the concatenated rows, left-aligned.
    filled = np.arange(width)[None, :] < lengths[:, None]
    out[filled] = np.fromiter(chain.from_iterable(row[:width] for row in rows), dtype=np.int32,
                              count=int(lengths.sum()))
    return torch.from_numpy(out)


def train_table(
    table, head, *, pad: int, texts, targets, queries, codes, recipe: Recipe,
    dev: Callable[[object], dict] | None = None, log: Callable[[dict], None] | None = None,
    negatives=None,
):
    """Train the table (and the head) with the two losses; returns (best table, history).

    Args:
        table: (V, dim) float tensor, the initial table.
        head: (hidden, dim) float tensor, the initial map to the teacher's space.
        pad: the token id that stands for padding and unknown tokens (excluded from means).
        texts: (n, width) int tensor of token ids for the distillation texts.
        targets: (n, hidden) teacher unit vectors of those texts.
        queries, codes: (m, width) int tensors of the pairs, row i answers row i.
        recipe: the settings.
        dev: called with the table after each epoch; returns metrics, the first of which
            chooses the best epoch (epoch 0, the untrained table, included).
        log: called with one dict per epoch.
        negatives: (m,) int tensor, per pair the row of ``codes`` that is its hard negative
            (-1: none); used when ``recipe.hard_negatives`` is set.
    """
    import torch
    import torch.nn.functional as F

    generator = torch.Generator(device="cpu").manual_seed(recipe.seed)
    device = table.device
    weight = torch.nn.Parameter(table.clone())
    projection = torch.nn.Parameter(head.T.clone().contiguous())  # (dim, hidden)
    optimizer = torch.optim.Adam([weight, projection], lr=recipe.lr)
    steps_per_epoch = max(1, math.ceil(len(queries) / recipe.batch_pairs)) if len(queries) else \
        max(1, math.ceil(len(texts) / recipe.batch_texts))
    total = steps_per_epoch * recipe.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1))))

    def encode(ids):
        return F.embedding_bag(ids.to(device).long(), weight, mode="sum", padding_idx=pad)

    use_negatives = recipe.hard_negatives and negatives is not None
    if recipe.hard_negatives and negatives is None:
        raise InputError("The recipe asks for hard negatives but none were given; pass "
                         "negatives= (one code row per pair, -1 for none) or set "
                         "hard_negatives=False.")
    history = []
    best_score, best = -math.inf, table.clone()
    for epoch in range(recipe.epochs + 1):
        if epoch:
            order = torch.randperm(len(queries), generator=generator) if len(queries) else None
            losses = []
            for step in range(steps_per_epoch):
                loss = torch.zeros((), device=device)
                if recipe.distill_weight and len(texts):
                    pick = torch.randint(len(texts), (recipe.batch_texts,), generator=generator)
                    student = encode(texts[pick.to(texts.device)]) @ projection
                    cos = F.cosine_similarity(student, targets[pick.to(targets.device)], dim=1)
                    loss = loss + recipe.distill_weight * (1 - cos).mean()
                if recipe.contrastive_weight and order is not None:
                    pick = order[step * recipe.batch_pairs : (step + 1) * recipe.batch_pairs]
                    pick = pick.to(queries.device)
                    if len(pick) > 1:
                        q = F.normalize(encode(queries[pick]), dim=1)
                        d = F.normalize(encode(codes[pick]), dim=1)
                        logits = q @ d.T / recipe.temperature
                        labels = torch.arange(len(pick), device=device)
                        forward = logits
                        if use_negatives:  # each query also against every mined negative
                            hard = _negative_vectors(encode, codes, negatives[pick])
                            forward = torch.cat([logits, q @ hard.T / recipe.temperature], 1)
                        nce = F.cross_entropy(forward, labels)
                        if recipe.symmetric:
                            nce = (nce + F.cross_entropy(logits.T, labels)) / 2
                        loss = loss + recipe.contrastive_weight * nce
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                losses.append(float(loss.detach()))
        row = {"epoch": epoch, "loss": float(np.mean(losses)) if epoch else None}
        if dev is not None:
            with torch.no_grad():
                row.update(dev(weight.detach()))
            score = next(v for k, v in row.items() if k not in ("epoch", "loss"))
        else:
            score = epoch
        if score > best_score:
            best_score, best = score, weight.detach().clone()
        history.append(row)
        if log is not None:
            log(row)
    return best, history


def _negative_vectors(encode, codes, rows):
    """Unit vectors of the codes named by ``rows`` (pairs without a negative, -1, skipped)."""
    import torch.nn.functional as F

    rows = rows.to(codes.device)
    return F.normalize(encode(codes[rows[rows >= 0]]), dim=1)


def retrieval_metrics(table, pad: int, queries, codes) -> dict:
    """nDCG@10 and MRR@10 of each query against all codes (row i relevant to query i)."""
    import torch
    import torch.nn.functional as F

    def encode(ids):
        return F.normalize(F.embedding_bag(ids.to(table.device).long(), table, mode="sum",
                                           padding_idx=pad), dim=1)

    scores = encode(queries) @ encode(codes).T
    own = scores.diagonal()[:, None]
    rank = (scores > own).sum(1)  # 0-based rank of the relevant code
    hit = rank < 10
    ndcg = torch.where(hit, 1 / torch.log2(rank.float() + 2), torch.zeros_like(own[:, 0]))
    mrr = torch.where(hit, 1 / (rank.float() + 1), torch.zeros_like(own[:, 0]))
    return {"dev_ndcg@10": round(float(ndcg.mean()), 4), "dev_mrr@10": round(float(mrr.mean()), 4)}


def save_model2vec(folder: Path, table, vocabulary: Vocabulary, training: dict) -> None:
    """Write a Model2Vec folder: int8 rows, one float32 scale per row (``weights``), the
    tokenizer, ``config.json`` and ``training.json``."""
    from safetensors.numpy import save_file

    matrix = np.asarray(table.detach().float().cpu().numpy() if hasattr(table, "detach")
                        else table, dtype=np.float32)
    if matrix.shape[0] != len(vocabulary):
        raise InputError(f"The table has {matrix.shape[0]} rows for {len(vocabulary)} tokens.")
    peak = np.abs(matrix).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    quantized = np.clip(np.rint(matrix / scale[:, None]), -127, 127).astype(np.int8)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": quantized, "weights": scale}, str(folder / "model.safetensors"))
    (folder / "tokenizer.json").write_text(json.dumps(vocabulary.tokenizer, ensure_ascii=False),
                                           encoding="utf-8")
    config = {
        "model_type": "model2vec", "architectures": ["StaticModel"],
        "hidden_dim": int(matrix.shape[1]), "normalize": True, "embedding_dtype": "int8",
        "apply_pca": int(matrix.shape[1]), "sif_coefficient": training.get("recipe", {}).get("sif"),
        "tokenizer_name": training.get("teacher", {}).get("name"), "max_length": 512,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    (folder / "training.json").write_text(json.dumps(training, indent=1) + "\n", encoding="utf-8")

