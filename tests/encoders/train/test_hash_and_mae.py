"""The hash recipe's codes are +-1, pack to bits and are what the binary index holds; the MAE
decoder and head stay out of the saved encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import load_file

import retriever
from encoders.sentence import SentenceTransformerEncoder
from encoders.train.common import TrainSettings
from encoders.train.hashing import hash_codes, pack_codes, train_hash
from encoders.train.mae import train_mae
from indexing.quantize import binarize
from retriever.errors import InputError

SETTINGS = TrainSettings(epochs=4, batch_size=6, mini_batch_size=3, lr=2e-3, warmup=0.0)


@pytest.fixture(scope="module")
def hashed(trainable_model_dir, toy_pairs, tmp_path_factory):
    out = tmp_path_factory.mktemp("hash") / "model"
    train_hash(toy_pairs, out=out, base=str(trainable_model_dir), settings=SETTINGS, bits=24)
    return out


def test_hash_codes_are_signs_that_pack_to_bits(hashed, toy_pairs):
    manifest = json.loads((hashed / "training.json").read_text())
    assert manifest["hash"] == {"bits": 24, "inference": "sign", "index_spec": "BFlat"}
    modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((hashed / "modules.json")
                                                                 .read_text())]
    assert modules == ["Transformer", "Pooling", "Normalize", "Dense"]
    encoder = SentenceTransformerEncoder(model=str(hashed))
    assert encoder.dim == 24
    vectors = encoder.encode_documents([code for _, code in toy_pairs])
    codes = hash_codes(vectors)
    assert codes.shape == (6, 24) and set(np.unique(codes)) <= {-1, 1}
    assert len({row.tobytes() for row in codes}) > 1  # not one code for everything
    packed = pack_codes(vectors)
    assert packed.shape == (6, 3) and packed.dtype == np.uint8
    np.testing.assert_array_equal(np.unpackbits(packed, axis=1), (codes > 0).astype(np.uint8))
    np.testing.assert_array_equal(packed, binarize(vectors))  # what the binary index stores


def test_codes_alone_find_each_function(hashed, toy_tree, toy_pairs):
    index = retriever.index(toy_tree, encoder_config={"model": str(hashed)}, index_spec="BFlat",
                            index_options={"rescore": None})
    found = sum(index.search(code, k=1, mode="dense")[0].path.endswith(
        code.split("_")[1].split("(")[0] + ".py") for _, code in toy_pairs)
    assert found >= 5


def test_bits_must_pack_into_bytes(trainable_model_dir, toy_pairs, tmp_path):
    with pytest.raises(InputError, match="multiple of 8"):
        train_hash(toy_pairs, out=tmp_path / "h", base=str(trainable_model_dir),
                   settings=SETTINGS, bits=20)


def test_the_mae_decoder_is_not_saved(trainable_model_dir, toy_pairs, tmp_path):
    out = tmp_path / "mae"
    result = train_mae([code for _, code in toy_pairs] * 2, out=out,
                       base=str(trainable_model_dir), settings=SETTINGS)
    assert result.manifest["mae"]["encoder_mask"] == 0.3
    base = load_file(str(trainable_model_dir / "model.safetensors"))
    saved = load_file(str(out / "model.safetensors"))
    assert set(saved) == set(base)  # the encoder's tensors, nothing of decoder or head
    assert not any(p.suffix == ".safetensors" for p in out.rglob("*")
                   if p.name != "model.safetensors")
    assert json.loads((out / "modules.json").read_text()) == json.loads(
        (trainable_model_dir / "modules.json").read_text())
    changed = [name for name in base if not np.allclose(base[name].numpy(), saved[name].numpy())]
    assert "embeddings.word_embeddings.weight" in changed  # the tied head trained them
    assert any("encoder.layer" in name for name in changed)


def test_mae_masks_are_shares(trainable_model_dir, tmp_path):
    with pytest.raises(InputError, match="encoder_mask must be a share between 0 and 1"):
        train_mae(["a text", "another text"], out=tmp_path / "m",
                  base=str(trainable_model_dir), settings=SETTINGS, encoder_mask=1.5)
