"""The fast path (:mod:`encoders.fast_encode`) as the sentence encoder uses it: the runner for
its settings, and one text (an interactive query) through the model on the calling thread."""

from __future__ import annotations

import numpy as np

from encoders.fast_encode import FastEncoder, fast_runner

__all__ = ["runner_for", "encode_alone"]


def runner_for(model, *, precision: str, batch_tokens: int | None,
               batch_workers: int | None) -> FastEncoder | None:
    """The fast path's runner over ``model`` with these settings, made once per model and
    settings by :func:`encoders.fast_encode.fast_runner`; None when the model cannot take
    the fast path. ``batch_workers`` None: the fast path's own choice."""
    return fast_runner(model, precision=precision, batch_tokens=batch_tokens,
                       batch_workers=batch_workers)


def encode_alone(fast, text: str) -> np.ndarray:
    """One text (an interactive query) through ``fast``'s model on the calling thread: the
    same token ids, inputs and forward pass as ``fast.encode``, so the same vector, without
    its tokeniser thread, whose start and hand-off cost a fifth to a third of a query's
    encoding on a loaded machine (measured at load 8 on 2 cores)."""
    import torch

    encoding = fast.tokenizer.encode(text)
    ids = torch.tensor([encoding.ids], dtype=torch.int64)
    features = {"input_ids": ids}
    if "attention_mask" in fast.inputs:
        features["attention_mask"] = torch.ones_like(ids)
    if "token_type_ids" in fast.inputs:
        features["token_type_ids"] = (torch.zeros_like(ids) if fast.zero_types else
                                      torch.tensor([encoding.type_ids], dtype=torch.int64))
    model = fast.model
    if model.training:
        model.eval()  # as encode does: no dropout
    with torch.inference_mode():
        vectors = model(features)["sentence_embedding"].float()
        if fast.truncate_dim is not None:
            vectors = vectors[:, : fast.truncate_dim]
        vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
    return np.ascontiguousarray(vectors.numpy(), dtype=np.float32)
