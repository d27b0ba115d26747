"""The fused BERT forward's kernel choices against the model's own encode (CPU, tiny BERT)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from encoders._bert_forward import KERNELS, BertForward
from encoders.fast_encode import FastEncoder
from encoders.sentence import SentenceTransformerEncoder

TEXTS = ["def retry(backoff):\n    return backoff * 2", "x", "class Session: pass " * 30,
         "naïve Straße 日本語", "for i in range(10):\n    total += i"] * 3


@pytest.fixture(scope="module")
def biased(tiny_model_dir):
    """The tiny model with random biases: a fresh BERT's are all zero, which would let a
    wrong bias fold pass."""
    model = copy.deepcopy(SentenceTransformerEncoder(model=str(tiny_model_dir))._model())
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, value in model.named_parameters():
            if name.endswith("bias"):
                value.copy_(torch.randn(value.shape, generator=generator) * 0.5)
    return model.eval()


def _reference(model, texts: list[str]) -> np.ndarray:
    return model.encode(texts, batch_size=8, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=False)


def _padded(model, texts: list[str]):
    batch = model[0].tokenizer(texts, padding=True, truncation=True,
                               max_length=model.max_seq_length, return_tensors="pt")
    return batch["input_ids"], batch["attention_mask"].sum(1)


@pytest.mark.parametrize("kernels", ["eager", "epilogue", "fold"])
def test_each_kernel_gives_the_models_vectors(biased, kernels):
    ids, lengths = _padded(biased, TEXTS)
    with torch.no_grad():
        vectors = BertForward(biased, dtype=torch.float32, kernels=kernels)(ids, lengths)
    expected = _reference(biased, TEXTS)
    assert vectors.shape == expected.shape and vectors.dtype == torch.float32
    np.testing.assert_allclose(vectors.numpy(), expected, atol=2e-5)


@pytest.mark.parametrize("kernels", ["epilogue", "fold"])
def test_rows_at_full_width_need_no_mask(biased, kernels):
    long = [f"{text} " * 200 for text in TEXTS[:4]]  # every row cut at the token limit
    ids, lengths = _padded(biased, long)
    assert bool((lengths == ids.shape[1]).all())
    forward = BertForward(biased, dtype=torch.float32, kernels=kernels)
    with torch.no_grad():
        dense = forward(ids, lengths, dense=True)
    np.testing.assert_allclose(dense.numpy(), _reference(biased, long), atol=2e-5)


def test_the_fold_moves_biases_but_keeps_the_sums(biased):
    folded = BertForward(biased, dtype=torch.float32, kernels="fold").folded
    layer = biased[0].auto_model.encoder.layer[0]
    # The embeddings' norm carries the first attention output's bias.
    embed_bias = biased[0].auto_model.embeddings.LayerNorm.bias
    torch.testing.assert_close(folded[0][1], embed_bias + layer.attention.output.dense.bias)
    assert not torch.allclose(folded[0][1], embed_bias)


def test_inductor_that_cannot_compile_runs_eager_and_says_why(biased, monkeypatch):
    # Stands in for a machine without Triton or a C compiler: compiling fails at the call.
    def compile_fails(fn, **kwargs):
        def call(*args):
            raise RuntimeError("no C compiler found")
        return call

    monkeypatch.setattr(torch, "compile", compile_fails)
    ids, lengths = _padded(biased, TEXTS)
    forward = BertForward(biased, dtype=torch.float32, kernels="inductor")
    with torch.no_grad():
        vectors = forward(ids, lengths)
    assert "no C compiler found" in forward.compile_error
    np.testing.assert_allclose(vectors.numpy(), _reference(biased, TEXTS), atol=2e-5)


def test_batch_workers_with_the_folded_forward_give_encodes_vectors(biased):
    fast = FastEncoder(biased, batch_workers=2, forward="bert", kernels="fold")
    try:
        assert fast._bert.kernels == "fold"
        vectors = fast.encode(TEXTS)
    finally:
        fast.close()
    np.testing.assert_allclose(vectors, _reference(biased, TEXTS), atol=2e-5)


def test_an_unknown_kernel_name_is_refused(biased):
    assert "fold" in KERNELS
    with pytest.raises(ValueError, match="fused"):
        BertForward(biased, dtype=torch.float32, kernels="fused")
