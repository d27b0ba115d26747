"""2D Matryoshka with a distillation anchor: InfoNCE at every trained depth and prefix, plus a
term pulling each trained depth's vector of every text towards the untouched base model's
full-depth vector of it.

Why: trained on InfoNCE alone, weighting the first 3 layers at every step moved their
retention from 49% to 83% but cost the full depth 0.022 nDCG@10 on the semble benchmark
(benchmarks/RESULTS.md, retention, run 3): the shared lower layers drift away from what the
upper ones were trained on. The anchor gives both ends one fixed target (the base's own vector
of the same text), so the shallow depth learns to say what the full model says and the full
depth is held where it was. One forward pass gives every depth (``output_hidden_states``), and
the frozen copy runs once a text without gradients.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

__all__ = ["DepthDistillLoss"]


class DepthDistillLoss(torch.nn.Module):
    """The loss of ``train_matryoshka(layers=True, layer_weights=..., distill=W)``.

    Args:
        model: the SentenceTransformer being trained (Transformer, Pooling[, Normalize]).
        depths: ``{depth: weight}`` of the shallower depths trained every step; the full
            depth weighs 1.
        dims: the nested prefixes of the InfoNCE terms, largest first.
        dim_weights: one weight a prefix, as ``dims``; None: all 1.
        scale: inverse temperature of InfoNCE's softmax over cosines.
        distill: weight of the anchor term (one minus the cosine to the frozen base's vector)
            at each depth, against that depth's InfoNCE.
    """

    def __init__(self, model, depths: Mapping[int, float], dims: Sequence[int],
                 dim_weights: Sequence[float] | None, scale: float, distill: float) -> None:
        super().__init__()
        self.model = model
        # A frozen copy of the weights as they are before the first step: the anchor.
        self.teacher = copy.deepcopy(model).eval()
        for param in self.teacher.parameters():
            param.requires_grad_(False)
        full = int(model[0].auto_model.config.num_hidden_layers)
        self.depths = {full: 1.0, **{int(d): float(w) for d, w in depths.items() if w > 0}}
        self.dims = [int(d) for d in dims]
        self.dim_weights = [float(w) for w in dim_weights] if dim_weights else [1.0] * len(dims)
        self.scale = float(scale)
        self.distill = float(distill)

    def _depth_vectors(self, feature: dict) -> dict[int, torch.Tensor]:
        """The pooled (not yet normalised) vector of each trained depth, from one pass."""
        inputs = {k: feature[k] for k in ("input_ids", "attention_mask", "token_type_ids")
                  if k in feature}
        hidden = self.model[0].auto_model(**inputs, output_hidden_states=True,
                                          return_dict=True).hidden_states
        pooling = self.model[1]
        return {depth: pooling({"token_embeddings": hidden[depth],
                                "attention_mask": feature["attention_mask"]})
                ["sentence_embedding"] for depth in self.depths}

    def forward(self, features: list[dict], labels=None) -> torch.Tensor:
        vectors = [self._depth_vectors(f) for f in features]  # queries, positives, negatives
        with torch.no_grad():
            targets = [F.normalize(self.teacher(dict(f))["sentence_embedding"].float(), dim=-1)
                       for f in features]
        rows = torch.arange(len(features[0]["input_ids"]), device=targets[0].device)
        total = torch.zeros((), device=targets[0].device)
        for depth, weight in self.depths.items():
            queries = vectors[0][depth]
            documents = torch.cat([v[depth] for v in vectors[1:]])
            for dims, dim_weight in zip(self.dims, self.dim_weights, strict=True):
                q = F.normalize(queries[:, :dims], dim=-1)
                d = F.normalize(documents[:, :dims], dim=-1)
                total = total + weight * dim_weight * F.cross_entropy(
                    self.scale * q @ d.T, rows)
            if self.distill:
                anchor = torch.stack([
                    (1 - (F.normalize(v[depth], dim=-1) * t).sum(-1)).mean()
                    for v, t in zip(vectors, targets, strict=True)]).mean()
                total = total + weight * self.distill * anchor
        return total
