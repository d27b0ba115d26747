"""Tiny random-weight cross-encoders built from a config, and a toy reranking data set."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

WORDS = ("parse", "retry", "socket", "cache", "token", "render", "schema", "thread", "upload",
         "queue", "hash", "stream", "cookie", "layout", "branch", "vector")


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tmp_path_factory) -> Path:
    """A sentence-transformers CrossEncoder folder: a 2-layer BERT with one output label."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from encoders.sentence import resolve_model

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-cross-encoder")
    # from_pretrained keeps the vocabulary on transformers 5 (see tests/conftest.py).
    tokenizer = BertTokenizerFast.from_pretrained(str(resolve_model("all-MiniLM-L6-v2")))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        num_labels=1, initializer_range=0.2)  # wide: texts score apart
    BertForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A tiny random-weight BERT folder to train a reranker from. Its weights are drawn wider
    than BERT's 0.02 so that [CLS] carries the text from the start: with the standard scale a
    random 2-layer model gives every text the same score and a few steps cannot move it."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from encoders.sentence import resolve_model

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = BertTokenizerFast.from_pretrained(str(resolve_model("all-MiniLM-L6-v2")))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                        initializer_range=0.2)
    BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def toy_rows(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """``(query, code)`` pairs where the code names the query's two words: learnable."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        a, b = rng.sample(WORDS, 2)
        rows.append((f"{a} the {b}", f"m{i}.py :: {a}_{b}\ndef {a}_{b}(x):\n    return {a}(x, "
                     f"{b}={i})"))
    return rows


def toy_groups(count: int, seed: int = 0) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(query, code, negatives)`` where the negatives are prose: a tiny model learns to
    put the code first within a few steps, which is all a test of the recipe needs."""
    rng = random.Random(seed)
    return [(query, code, tuple(f"Release notes {rng.randrange(1000)}: the {rng.choice(WORDS)} "
                                "page moved to the wiki." for _ in range(3)))
            for query, code in toy_rows(count, seed)]
