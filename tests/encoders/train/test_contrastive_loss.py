"""The contrastive recipe's loss: cached (GradCache) only when a step's batch is larger than the
mini batch, and the same objective either way: without dropout, both take the same steps."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from encoders.train.common import TrainSettings
from encoders.train.contrastive import train_contrastive


@pytest.fixture(scope="module")
def no_dropout_model_dir(trainable_model_dir, tmp_path_factory):
    """conftest's tiny random-weight model without dropout, so that a step is a deterministic
    function of the weights and the batch."""
    out = tmp_path_factory.mktemp("no-dropout") / "st"
    shutil.copytree(trainable_model_dir, out)
    config = json.loads((out / "config.json").read_text())
    assert config["hidden_dropout_prob"] > 0  # what this fixture exists to turn off
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (out / "config.json").write_text(json.dumps(config))
    return out


# (batch size, mini batch size) -> the loss the recipe picks. Six pairs: a batch of 32 is cut
# to the six there are, which a mini batch of 6 holds whole.
CASES = {(6, 3): "CachedMultipleNegativesRankingLoss",
         (6, 6): "MultipleNegativesRankingLoss",
         (32, 6): "MultipleNegativesRankingLoss"}


def test_the_plain_loss_takes_the_steps_the_cached_one_does(no_dropout_model_dir, toy_pairs,
                                                            tmp_path):
    losses = {}
    for (batch, mini), expected in CASES.items():
        out = tmp_path / f"b{batch}-m{mini}"
        settings = TrainSettings(epochs=4, batch_size=batch, mini_batch_size=mini, lr=5e-3,
                                 warmup=0.0, device="cpu")
        result = train_contrastive(toy_pairs, out=out, base=str(no_dropout_model_dir),
                                   settings=settings, hard_negatives=1)
        manifest = json.loads((out / "training.json").read_text())
        assert manifest["loss_module"] == expected, (batch, mini)
        losses[batch, mini] = np.array(result.losses)
    cached = losses[6, 3]
    assert len(cached) == 4 and cached[-1] < cached[0]  # it trained: the steps differ
    for key in [(6, 6), (32, 6)]:
        np.testing.assert_allclose(losses[key], cached, rtol=1e-4, err_msg=str(key))
