"""Matryoshka's distillation anchor (``distill=``): each trained depth is pulled towards the
untouched base's full-depth vector of the same text, and its InfoNCE is the plain one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from encoders.sentence import SentenceTransformerEncoder
from encoders.train.common import TrainSettings, features, st_losses
from encoders.train.depth_distill import DepthDistillLoss
from encoders.train.matryoshka import train_matryoshka
from retriever.errors import InputError

TEXTS = ["def handle_apple(apple): return apple", "class River: flows = True",
         "where is the castle handled", "piano keys and rockets"]


@pytest.fixture(scope="module")
def three_layers(tiny_model_factory):
    return str(tiny_model_factory("distill-three-layers", layers=3, seed=2))


def _model(folder):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(folder, device="cpu", local_files_only=True)
    return model.eval()  # no dropout: two computations of one loss agree exactly


def _loss(model, columns, **options):
    import torch

    loss = DepthDistillLoss(model, options.pop("depths", {}), options.pop("dims", [32]),
                            options.pop("dim_weights", [1.0]), 20.0, **options)
    with torch.no_grad():
        return float(loss([features(model, c) for c in columns]))


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_the_anchor_is_the_cosine_distance_of_the_shallow_view_to_the_base(three_layers,
                                                                         tmp_path):
    # A random BERT's residual stream barely changes in its last layer; scaled up, depth 3
    # says something else than depth 2, so the anchor has a distance to measure.
    model = _model(three_layers)
    model[0].auto_model.encoder.layer[2].output.dense.weight.data *= 200
    model.save(str(tmp_path / "scaled"))
    three_layers = str(tmp_path / "scaled")
    columns = [TEXTS[:2], TEXTS[2:]]
    plain = _loss(model, columns, depths={2: 1.0}, distill=0.0)
    anchored = _loss(model, columns, depths={2: 1.0}, distill=0.5)
    # Before any step the full depth equals the base (no pull); depth 2 is the encoder's
    # layers=2 view, which the anchor compares with the full model's vector of each text.
    full = SentenceTransformerEncoder(model=three_layers).encode_documents(TEXTS)
    shallow = SentenceTransformerEncoder(model=three_layers, layers=2).encode_documents(TEXTS)
    distance = float(np.mean(1 - (_unit(full) * _unit(shallow)).sum(1)))
    assert distance > 0.01  # random layers: depth 2 says something else than depth 3
    assert anchored - plain == pytest.approx(0.5 * distance, rel=1e-3)


def test_its_infonce_at_the_full_depth_is_sentence_transformers_own(three_layers):
    import torch

    model = _model(three_layers)
    columns = [TEXTS[:2], TEXTS[2:]]
    reference = st_losses().MultipleNegativesRankingLoss(model, scale=20.0)
    with torch.no_grad():
        expected = float(reference([features(model, c) for c in columns], None))
    assert _loss(model, columns, distill=0.0) == pytest.approx(expected, rel=1e-5)


def test_training_with_the_anchor_stays_nearer_the_base_and_records_it(
        three_layers, toy_pairs, tmp_path):
    settings = TrainSettings(epochs=8, batch_size=6, mini_batch_size=6, lr=2e-3, warmup=0.0)
    runs = {}
    for name, distill in (("free", 0.0), ("anchored", 4.0)):
        runs[name] = str(tmp_path / name)
        train_matryoshka(toy_pairs, out=runs[name], base=three_layers, settings=settings,
                         dims=[32, 16], layers=True, layer_weights={2: 1.0}, distill=distill)
    manifest = json.loads((tmp_path / "anchored" / "training.json").read_text())
    assert manifest["matryoshka"] == {"dims": [32, 16], "layers": [3, 2]}
    assert manifest["options"]["distill"] == 4.0
    texts = [text for pair in toy_pairs for text in pair]
    base = _unit(SentenceTransformerEncoder(model=three_layers).encode_documents(texts))

    def closeness(folder, layers):
        view = SentenceTransformerEncoder(model=folder, layers=layers).encode_documents(texts)
        return float(np.mean((_unit(view) * base).sum(1)))

    # The same steps drift both views away from the base; the anchor holds both nearer.
    for layers in (None, 2):
        assert closeness(runs["anchored"], layers) > closeness(runs["free"], layers) + 0.02
    with pytest.raises(InputError, match=r"trained for layers 3, 2"):
        SentenceTransformerEncoder(model=runs["anchored"], layers=1)


@pytest.mark.parametrize(("options", "message"), [
    ({"distill": 1.0}, "distill needs layers=True and layer_weights"),
    ({"distill": -1.0, "layer_weights": {2: 1.0}}, "weight >= 0"),
    ({"distill": "1", "layer_weights": {2: 1.0}}, "weight >= 0"),
])
def test_bad_distill_is_refused_before_training(three_layers, toy_pairs, tmp_path, options,
                                                message):
    settings = TrainSettings(epochs=1, batch_size=6, mini_batch_size=6, max_steps=1)
    with pytest.raises(InputError, match=message):
        train_matryoshka(toy_pairs, out=tmp_path / "m", base=three_layers, settings=settings,
                         dims=[32, 16], layers=True, **options)
    assert not (tmp_path / "m" / "training.json").exists()
