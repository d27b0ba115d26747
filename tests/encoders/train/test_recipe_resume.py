"""A killed run continues from its last checkpoint and ends where an unbroken run ends."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import load_file

from encoders.train.common import TrainSettings
from encoders.train.contrastive import train_contrastive
from encoders.train.mae import train_mae
from retriever.errors import InputError

# Three batches an epoch, a checkpoint every 2 steps, killed during step 5.
SETTINGS = TrainSettings(epochs=2, batch_size=2, mini_batch_size=1, lr=2e-3, warmup=0.3,
                         checkpoint_every=2)


class Killed(Exception):
    """Stands in for SIGKILL: raised from the progress callback, nothing after it runs."""


def _kill_after(step: int):
    def progress(stage: str, done: int, total: int) -> None:
        if stage == "train" and done == step:
            raise Killed
    return progress


@pytest.mark.parametrize("recipe", ["contrastive", "mae"])
def test_a_resumed_run_matches_an_unbroken_one(recipe, trainable_model_dir, toy_pairs,
                                               tmp_path):
    train = train_contrastive if recipe == "contrastive" else train_mae
    data = toy_pairs if recipe == "contrastive" else [code for _, code in toy_pairs]
    base = str(trainable_model_dir)
    unbroken = train(data, out=tmp_path / "unbroken", base=base, settings=SETTINGS)

    out = tmp_path / "killed"
    with pytest.raises(Killed):
        train(data, out=out, base=base, settings=SETTINGS, progress=_kill_after(5))
    assert not (out / "training.json").exists()
    assert [p.name for p in (out / "checkpoints").glob("step-*")] == ["step-00000004"]
    with pytest.raises(InputError, match="unfinished run.*--resume"):
        train(data, out=out, base=base, settings=SETTINGS)

    resumed = train(data, out=out, base=base, settings=SETTINGS, resume=True)
    assert resumed.resumed_from == 4 and resumed.steps == unbroken.steps == 6
    np.testing.assert_allclose(resumed.losses, unbroken.losses, rtol=1e-5)
    first, second = (load_file(str(d / "model.safetensors")) for d in (tmp_path / "unbroken", out))
    for name, tensor in first.items():
        np.testing.assert_allclose(second[name].numpy(), tensor.numpy(), atol=1e-6, err_msg=name)
    assert not (out / "checkpoints").exists()


def test_resume_refuses_other_settings_or_data(trainable_model_dir, toy_pairs, tmp_path):
    out, base = tmp_path / "run", str(trainable_model_dir)
    with pytest.raises(Killed):
        train_contrastive(toy_pairs, out=out, base=base, settings=SETTINGS,
                          progress=_kill_after(3))
    other = TrainSettings(**{**SETTINGS.__dict__, "lr": 1e-3})
    with pytest.raises(InputError, match="started with other settings"):
        train_contrastive(toy_pairs, out=out, base=base, settings=other, resume=True)
    with pytest.raises(InputError, match="started with other data"):
        train_contrastive(toy_pairs[:4], out=out, base=base, settings=SETTINGS, resume=True)


def test_a_finished_run_is_not_overwritten(trainable_model_dir, toy_pairs, tmp_path):
    out = tmp_path / "done"
    train_contrastive(toy_pairs, out=out, base=str(trainable_model_dir),
                      settings=TrainSettings(max_steps=1, batch_size=6))
    assert json.loads((out / "training.json").read_text())["steps"] == 1
    for resume in (False, True):
        with pytest.raises(InputError, match="already holds a finished training run"):
            train_contrastive(toy_pairs, out=out, base=str(trainable_model_dir), resume=resume)
