"""Matryoshka's layer_weights train the named depths at every step at their own weights (the
full depth weighs 1), record only those depths, and dim_weights weigh the nested losses."""

from __future__ import annotations

import json

import pytest

from encoders.sentence import SentenceTransformerEncoder
from encoders.train.common import TrainSettings
from encoders.train.matryoshka import train_matryoshka
from retriever.errors import InputError

ONE_STEP = TrainSettings(epochs=1, batch_size=6, mini_batch_size=6, lr=2e-3, warmup=0.0,
                         max_steps=1)


@pytest.fixture(scope="module")
def three_layers(tiny_model_factory):
    """A random-weight BERT of width 32 and 3 layers, so one shallower depth can go unnamed."""
    return str(tiny_model_factory("three-layers", layers=3, seed=1))


def _first_loss(base, pairs, out, **options) -> float:
    return train_matryoshka(pairs, out=out, base=base, settings=ONE_STEP, dims=[32, 16],
                            layers=True, **options).losses[0]


def test_each_depth_weight_adds_its_own_loss_once(three_layers, toy_pairs, tmp_path):
    # Same seed, same first batch: loss = full depth's + sum of weight x that depth's loss.
    one = _first_loss(three_layers, toy_pairs, tmp_path / "a", layer_weights={2: 1.0})
    three = _first_loss(three_layers, toy_pairs, tmp_path / "b", layer_weights={2: 3.0})
    five = _first_loss(three_layers, toy_pairs, tmp_path / "c", layer_weights={2: 5.0})
    depth_two = (three - one) / 2
    assert depth_two > 0.1  # an untrained depth's InfoNCE over 6 pairs: about ln 6 a dims
    assert five - three == pytest.approx(2 * depth_two, rel=1e-4)
    # Weighting 32 dims double adds its loss once more (at every trained depth).
    doubled = _first_loss(three_layers, toy_pairs, tmp_path / "d", layer_weights={2: 1.0},
                          dim_weights={32: 2.0})
    assert doubled > one + 0.1


def test_only_the_weighted_depths_are_recorded_and_accepted(three_layers, toy_pairs,
                                                             tmp_path):
    out = tmp_path / "m"
    train_matryoshka(toy_pairs, out=out, base=three_layers, settings=ONE_STEP, dims=[32, 16],
                     layers=True, layer_weights={2: 3.0, 1: 0.0}, dim_weights={16: 2.0})
    manifest = json.loads((out / "training.json").read_text())
    assert manifest["matryoshka"] == {"dims": [32, 16], "layers": [3, 2]}
    assert manifest["options"]["layer_weights"] == {"1": 0.0, "2": 3.0}
    assert manifest["options"]["dim_weights"] == {"32": 1.0, "16": 2.0}
    assert SentenceTransformerEncoder(model=str(out), layers=2).encode_documents(
        ["def handle_apple(apple): return apple"]).shape == (1, 32)
    with pytest.raises(InputError, match=r"trained for layers 3, 2.*layers=1"):
        SentenceTransformerEncoder(model=str(out), layers=1)


@pytest.mark.parametrize(("options", "message"), [
    ({"layer_weights": {1: 2.0}, "layers": False}, "pass layers=True"),
    ({"layer_weights": {3: 2.0}}, "name depths 1 to 2"),
    ({"layer_weights": {0: 2.0}}, "name depths 1 to 2"),
    ({"layer_weights": {1: -1.0}}, "weight >= 0"),
    ({"layer_weights": {1: 0.0}}, "at least one depth a positive weight"),
    ({"dim_weights": {8: 2.0}}, r"trained dims \(\[32, 16\]\)"),
    ({"dim_weights": {16: 0}}, "positive numbers"),
])
def test_bad_weights_are_refused_before_training(three_layers, toy_pairs, tmp_path, options,
                                                 message):
    options = {"layers": True, **options}
    with pytest.raises(InputError, match=message):
        train_matryoshka(toy_pairs, out=tmp_path / "m", base=three_layers, settings=ONE_STEP,
                         dims=[32, 16], **options)
