"""A Matryoshka model records its trained dims and layers; the encoder's dims=/layers= are checked
against them and cut the vectors and the layer stack as a reference computation does."""

from __future__ import annotations

import json

import numpy as np
import pytest

import retriever
from encoders.sentence import SentenceTransformerEncoder
from encoders.train.common import TrainSettings
from encoders.train.matryoshka import train_matryoshka
from retriever.errors import InputError

SETTINGS = TrainSettings(epochs=2, batch_size=6, mini_batch_size=3, lr=2e-3, warmup=0.0)


@pytest.fixture(scope="module")
def two_d(trainable_model_dir, toy_pairs, tmp_path_factory):
    """Trained at 32, 16, 8 dims and both depths."""
    out = tmp_path_factory.mktemp("two-d") / "model"
    train_matryoshka(toy_pairs, out=out, base=str(trainable_model_dir), settings=SETTINGS,
                     dims=[8, 32, 16], layers=True)
    return out


@pytest.fixture(scope="module")
def narrow(trainable_model_dir, toy_pairs, tmp_path_factory):
    """Trained at 16 and 8 dims only (below the width of 32), one depth."""
    out = tmp_path_factory.mktemp("narrow") / "model"
    train_matryoshka(toy_pairs, out=out, base=str(trainable_model_dir), settings=SETTINGS,
                     dims=[16, 8])
    return out


def test_the_manifest_records_dims_and_layers(two_d, narrow):
    assert json.loads((two_d / "training.json").read_text())["matryoshka"] == {
        "dims": [32, 16, 8], "layers": [2, 1]}
    assert json.loads((narrow / "training.json").read_text())["matryoshka"] == {
        "dims": [16, 8], "layers": [2]}
    # Below the full width the folder itself says where to cut, for any reader of it.
    settings = json.loads((narrow / "config_sentence_transformers.json").read_text())
    assert settings["truncate_dim"] == 16
    assert SentenceTransformerEncoder(model=str(narrow)).dim == 16


def test_dims_cut_and_renormalise_the_full_vectors(two_d):
    texts = ["def handle_apple(apple): return apple", "where is the river handled"]
    full = SentenceTransformerEncoder(model=str(two_d)).encode_documents(texts)
    cut = SentenceTransformerEncoder(model=str(two_d), dims=16)
    assert cut.dim == 16
    expected = full[:, :16] / np.linalg.norm(full[:, :16], axis=1, keepdims=True)
    np.testing.assert_allclose(cut.encode_documents(texts), expected, atol=1e-5)
    assert cut.fingerprint() != SentenceTransformerEncoder(model=str(two_d)).fingerprint()
    assert SentenceTransformerEncoder(**cut.config()).config() == cut.config()


def test_layers_run_the_first_layers_as_transformers_computes_them(two_d):
    import torch
    from transformers import AutoModel, AutoTokenizer

    text = "def handle_apple(apple): return apple"
    vector = SentenceTransformerEncoder(model=str(two_d), layers=1).encode_documents([text])[0]
    tokenizer, model = AutoTokenizer.from_pretrained(str(two_d)), AutoModel.from_pretrained(
        str(two_d))
    with torch.no_grad():
        batch = tokenizer([text], return_tensors="pt")
        states = model(**batch, output_hidden_states=True).hidden_states[1][0]  # after layer 1
    reference = states.mean(0).numpy()  # the folder's mean pooling, then Normalize
    np.testing.assert_allclose(vector, reference / np.linalg.norm(reference), atol=1e-5)
    full = SentenceTransformerEncoder(model=str(two_d)).encode_documents([text])[0]
    assert not np.allclose(vector, full, atol=1e-3)


def test_dims_and_layers_the_model_was_not_trained_for_are_refused(two_d, narrow):
    with pytest.raises(InputError, match=r"trained for dims 32, 16, 8.*dims=12"):
        SentenceTransformerEncoder(model=str(two_d), dims=12)
    with pytest.raises(InputError, match=r"trained for dims 16, 8.*dims=32"):
        SentenceTransformerEncoder(model=str(narrow), dims=32)
    with pytest.raises(InputError, match=r"trained for layers 2, 1.*layers=3"):
        SentenceTransformerEncoder(model=str(two_d), layers=3)
    with pytest.raises(InputError, match=r"trained for layers 2 .*layers=1"):
        SentenceTransformerEncoder(model=str(narrow), layers=1)
    with pytest.raises(InputError, match="positive integer"):
        SentenceTransformerEncoder(model=str(two_d), dims=0)


def test_an_untrained_model_accepts_any_prefix_it_has(trainable_model_dir):
    # No training manifest: nothing to check against but the width.
    assert SentenceTransformerEncoder(model=str(trainable_model_dir), dims=12).dim == 12
    with pytest.raises(InputError, match="dims=40 exceeds the model's 32 output dimensions"):
        SentenceTransformerEncoder(model=str(trainable_model_dir), dims=40)
    with pytest.raises(InputError, match="layers=3 exceeds the model's 2 layers"):
        SentenceTransformerEncoder(model=str(trainable_model_dir), layers=3)


def test_an_index_refuses_an_untrained_dims_and_builds_with_a_trained_one(two_d, toy_tree):
    with pytest.raises(InputError, match="dims=12"):
        retriever.index(toy_tree, encoder_config={"model": str(two_d), "dims": 12})
    index = retriever.index(toy_tree, encoder_config={"model": str(two_d), "dims": 8,
                                                      "layers": 1})
    hits = index.search("where is the apple handled", k=2, mode="dense")
    assert len(hits) == 2


def test_dims_wider_than_the_base_are_refused_before_training(trainable_model_dir, toy_pairs,
                                                              tmp_path):
    with pytest.raises(InputError, match=r"dims \[64\] exceed the base model's 32"):
        train_matryoshka(toy_pairs, out=tmp_path / "m", base=str(trainable_model_dir),
                         settings=SETTINGS, dims=[64, 32])
