"""Shared fixtures: the real default encoder, a tiny random-weight model, the fixture repo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def _session_vector_cache(tmp_path_factory):
    """No test, session fixture or subprocess writes vectors to the user's cache folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DENSE_RETRIEVER_CACHE", str(tmp_path_factory.mktemp("vector-cache")))
        patch.delenv("DENSE_RETRIEVER_CACHE_SIZE", raising=False)
        yield


@pytest.fixture(autouse=True)
def _vector_cache(tmp_path, monkeypatch):
    """Each test starts from an empty vector cache of its own, so a test that counts what a
    build embedded passes or fails the same whichever tests ran before it."""
    monkeypatch.setenv("DENSE_RETRIEVER_CACHE", str(tmp_path / "vector-cache"))


@pytest.fixture(scope="session")
def default_encoder():
    """The real default encoder (all-MiniLM-L6-v2 from its package), loaded once."""
    from encoders.sentence import SentenceTransformerEncoder

    return SentenceTransformerEncoder()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A sentence-transformers folder with a tiny random-weight BERT (built from a config)."""
    import torch
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers import models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from encoders.sentence import resolve_model

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-model")
    vocab = resolve_model("all-MiniLM-L6-v2") / "vocab.txt"
    # from_pretrained, not BertTokenizerFast(vocab_file=...): on transformers 5 the latter
    # ignores the vocabulary, every word becomes [UNK] and every text the same vector.
    tokenizer = BertTokenizerFast.from_pretrained(str(vocab.parent))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    bert_dir = out / "bert"
    BertModel(config).save_pretrained(bert_dir)
    tokenizer.save_pretrained(bert_dir)
    word = models.Transformer(str(bert_dir), max_seq_length=64)
    dim = getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension
    pooling = models.Pooling(dim(), pooling_mode="mean")
    model_dir = out / "st"
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(model_dir))
    return model_dir


@pytest.fixture()
def repo(tmp_path) -> Path:
    """A writable copy of the committed multi-language fixture repository."""
    target = tmp_path / "repo"
    shutil.copytree(DATA / "repo", target)
    return target
