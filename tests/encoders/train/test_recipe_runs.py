"""Each recipe on the toy set: the loss falls, the folder saves with its manifest, and the model
loads through the registry, indexes a tree and searches it."""

from __future__ import annotations

import json

import numpy as np
import pytest

import retriever
from encoders.train.common import TrainSettings
from encoders.train.contrastive import train_contrastive
from encoders.train.hashing import train_hash
from encoders.train.mae import train_mae
from encoders.train.matryoshka import train_matryoshka

# One batch of all six pairs, so every step sees the same examples and the losses compare.
STEPS = 12
RECIPES = {
    "contrastive": (train_contrastive, {}, 2e-3),
    "matryoshka": (train_matryoshka, {"dims": [32, 16, 8], "layers": True}, 2e-3),
    "hash": (train_hash, {"bits": 32}, 2e-3),
    "mae": (train_mae, {}, 5e-3),
}


@pytest.fixture(scope="module", params=sorted(RECIPES))
def trained(request, trainable_model_dir, toy_pairs, tmp_path_factory):
    name = request.param
    train, options, lr = RECIPES[name]
    data = [code for _, code in toy_pairs] if name == "mae" else toy_pairs
    out = tmp_path_factory.mktemp(f"trained-{name}") / "model"
    settings = TrainSettings(epochs=STEPS, batch_size=6, mini_batch_size=3, lr=lr, warmup=0.0)
    result = train(data, out=out, base=str(trainable_model_dir), settings=settings,
                   dev=toy_pairs, command=f"test {name}", **options)
    return name, result


def test_the_loss_falls(trained):
    name, result = trained
    losses = np.array(result.losses)
    assert len(losses) == STEPS and np.isfinite(losses).all()
    assert losses[-3:].mean() < 0.9 * losses[:3].mean(), (name, losses.round(3))


def test_the_folder_is_a_model_with_its_training_manifest(trained, trainable_model_dir):
    name, result = trained
    manifest = json.loads((result.out / "training.json").read_text())
    assert manifest["recipe"] == name
    assert manifest["command"] == f"test {name}"
    assert manifest["seed"] == 0 and manifest["steps"] == STEPS
    assert len(manifest["data"]["hash"]) == 32
    from encoders.folder import content_digests

    assert manifest["base"]["fingerprint"] == content_digests(trainable_model_dir, [b""])[0]
    assert set(manifest["dev_metrics"]) == {"base", "trained"}
    assert (result.out / "modules.json").is_file() and (result.out / "README.md").is_file()
    assert not (result.out / "checkpoints").exists()


def test_the_trained_model_indexes_and_searches(trained, toy_tree, toy_pairs):
    name, result = trained
    spec = "BFlat" if name == "hash" else None
    index = retriever.index(toy_tree, encoder_config={"model": str(result.out)}, index_spec=spec)
    found = 0
    for query, code in toy_pairs:
        # MAE never saw a query: it is asked for a function by the function's own text.
        hits = index.search(code if name == "mae" else query, k=3, mode="dense")
        assert hits and all(hit.path.startswith("src/") for hit in hits)
        found += hits[0].path == f"src/{code.split('_')[1].split('(')[0]}.py"
    assert found >= 5, (name, found)
