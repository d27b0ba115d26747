"""The reranker's LoRA: low-rank deltas ``B @ A`` wrapped around every linear layer of a BERT
encoder (:data:`TARGETS`), the base frozen, the pooler and head (:data:`HEAD`) trained; and
the tensors of ``adapter.safetensors`` (see :mod:`encoders.train.reranker`)."""

from __future__ import annotations

import math

from retriever.errors import InputError, MissingDependencyError

__all__ = ["TARGETS", "HEAD", "LoraLinear", "add_lora", "adapter_tensors"]


# The linear layers of each BERT encoder layer that get a low-rank delta.
TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense")
HEAD = ("bert.pooler.", "classifier.")


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


def adapter_tensors(model, wrapped: dict) -> dict:
    tensors = {}
    for name, wrapper in wrapped.items():
        tensors[f"lora.{name}.A"] = wrapper.A.detach().float().cpu().contiguous()
        tensors[f"lora.{name}.B"] = wrapper.B.detach().float().cpu().contiguous()
    for name, parameter in model.named_parameters():
        if name.startswith(HEAD):
            tensors[f"head.{name}"] = parameter.detach().float().cpu().contiguous()
    return tensors
