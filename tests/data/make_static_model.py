"""Rebuild the tiny Model2Vec folder in ``tests/data/static_model`` (committed).

    python tests/data/make_static_model.py

A 32-token WordPiece vocabulary (BERT's normaliser and pre-tokenizer, so case and punctuation
behave as in the shipped model) and a seeded random 8-dimension float16 table, the plain
Model2Vec layout: ``model.safetensors`` with one ``embeddings`` tensor, ``tokenizer.json``,
``config.json``. Token ids follow the list below, so tests can name the rows they expect.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

HERE = Path(__file__).resolve().parent / "static_model"
TOKENS = [
    "[PAD]", "[UNK]", "def", "return", "class", "self", "user", "get", "set", "id", "by",
    "parse", "json", "file", "read", "write", "retry", "back", "off", "(", ")", ":", "_", ".",
    "##s", "##er", "a", "b", "c", "x", "y", "z",
]
DIM = 8


def build(folder: Path = HERE) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {token: index for index, token in enumerate(TOKENS)}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.save(str(folder / "tokenizer.json"))
    table = np.random.default_rng(7).normal(size=(len(TOKENS), DIM)).astype(np.float16)
    table[vocab["[PAD]"]] = 0
    save_file({"embeddings": table}, str(folder / "model.safetensors"))
    config = {"model_type": "model2vec", "architectures": ["StaticModel"], "hidden_dim": DIM,
              "normalize": True, "embedding_dtype": "float16"}
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    build()
