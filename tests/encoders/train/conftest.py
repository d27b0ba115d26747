"""Fixtures of the recipe tests: a tiny trainable model, a toy set of pairs and its tree.

The model is a random-weight BERT of width 32 and 2 layers built from a config, with the
packaged MiniLM's real tokenizer (loaded from its tokenizer files, so every word has its own
id), mean pooling and Normalize: the shape of all-MiniLM-L6-v2 at a thousandth of its compute.
"""

from __future__ import annotations

from pathlib import Path

import pytest

WORDS = ("apple", "river", "castle", "piano", "rocket", "garden")


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny models train fastest on one thread: on shared CI cores, torch's thread per core
    spins waiting for the others (a step took three times as long)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_model(out: Path, *, layers: int = 2, seed: int = 0) -> Path:
    """A random-weight BERT of width 32 and ``layers`` layers as a sentence-transformers
    folder under ``out``, seeded."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from encoders.sentence import resolve_model
    from encoders.train.common import st_modules

    modules = st_modules()
    torch.manual_seed(seed)
    tokenizer = BertTokenizerFast.from_pretrained(str(resolve_model("all-MiniLM-L6-v2")))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32,
                        num_hidden_layers=layers, num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128)
    bert = out / "bert"
    BertModel(config).save_pretrained(bert)
    tokenizer.save_pretrained(bert)
    word = modules.Transformer(str(bert), max_seq_length=64)
    pooling = modules.Pooling(32, pooling_mode="mean")
    model = SentenceTransformer(modules=[word, pooling, modules.Normalize()], device="cpu")
    model.save(str(out / "st"))
    return out / "st"


@pytest.fixture(scope="session")
def tiny_model_factory(tmp_path_factory):
    """``make(name, layers=, seed=)``: :func:`tiny_model` in a fresh folder named ``name``."""
    return lambda name, **options: tiny_model(tmp_path_factory.mktemp(name), **options)


@pytest.fixture(scope="session")
def trainable_model_dir(tiny_model_factory) -> Path:
    return tiny_model_factory("trainable-model")


def function_of(word: str) -> str:
    return f"def handle_{word}({word}):\n    return {word}\n"


@pytest.fixture(scope="session")
def toy_pairs() -> list[tuple[str, str]]:
    """Six (question -> function) pairs, each with its own words, so a few steps can learn them."""
    return [(f"where is the {word} handled", function_of(word)) for word in WORDS]


@pytest.fixture()
def toy_tree(tmp_path) -> Path:
    """One file a toy function: the tree a trained model indexes."""
    root = tmp_path / "tree"
    (root / "src").mkdir(parents=True)
    for word in WORDS:
        (root / "src" / f"{word}.py").write_text(function_of(word), encoding="utf-8")
    return root
