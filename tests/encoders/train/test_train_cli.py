"""``retriever train`` through typer's CliRunner: a run, its model used by ``retriever index``,
and clear errors for bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from retriever.cli.app import app

runner = CliRunner()
SMALL = ["--epochs", "2", "--batch-size", "3", "--mini-batch-size", "3", "--lr", "1e-3"]


@pytest.fixture()
def pairs_file(tmp_path, toy_pairs):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"query": q, "positive": c, "split":
                                        "dev" if i < 2 else "train"}) + "\n"
                            for i, (q, c) in enumerate(toy_pairs)), encoding="utf-8")
    return path


def test_train_then_index_with_the_model(pairs_file, trainable_model_dir, toy_tree, tmp_path):
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", "contrastive", "--data", str(pairs_file), "--base",
                                 str(trainable_model_dir), "--out", str(out), *SMALL])
    assert result.exit_code == 0, result.output
    assert "Trained contrastive for 2 steps" in result.stdout
    assert "Dev metrics" in result.output  # the file's two dev rows
    manifest = json.loads((out / "training.json").read_text())
    assert manifest["command"].startswith("retriever train contrastive --data ")
    assert manifest["data"]["pairs"] == 4 and manifest["data"]["dev_pairs"] == 2
    indexed = runner.invoke(app, ["index", str(toy_tree), "--model", str(out), "-q"])
    assert indexed.exit_code == 0, indexed.output
    found = runner.invoke(app, ["search", "where is the piano handled", str(toy_tree),
                                "--mode", "dense", "--json", "-k", "2"])
    assert found.exit_code == 0, found.output
    assert len(json.loads(found.stdout)["hits"]) == 2


def test_each_recipe_is_a_command():
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    for recipe in ("contrastive", "matryoshka", "hash", "mae"):
        assert recipe in result.stdout


def test_mae_reads_texts_and_matryoshka_its_dims(tmp_path, trainable_model_dir, toy_pairs):
    texts = tmp_path / "chunks.jsonl"
    texts.write_text("".join(json.dumps({"text": c}) + "\n" for _, c in toy_pairs))
    result = runner.invoke(app, ["train", "mae", "--data", str(texts), "--base",
                                 str(trainable_model_dir), "--out", str(tmp_path / "m"), "-q",
                                 *SMALL])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "m" / "training.json").read_text())["recipe"] == "mae"
    bad = runner.invoke(app, ["train", "matryoshka", "--data", str(texts), "--out",
                              str(tmp_path / "x"), "--dims", "32,sixteen"])
    assert bad.exit_code == 1
    assert "Error: --dims takes comma-separated integers" in bad.output


def test_matryoshka_takes_layer_and_dim_weights(tmp_path, pairs_file, trainable_model_dir):
    out = tmp_path / "mat"
    result = runner.invoke(app, ["train", "matryoshka", "--data", str(pairs_file), "--base",
                                 str(trainable_model_dir), "--out", str(out), "--dims", "32,16",
                                 "--layers", "--layer-weights", "1=2", "--dim-weights", "16=1.5",
                                 "-q", *SMALL])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "training.json").read_text())
    options = manifest["options"]
    assert options["layer_weights"] == {"1": 2.0}
    assert options["dim_weights"] == {"32": 1.0, "16": 1.5}
    assert options["layers"] == [2, 1]  # only the weighted depth and the full one are trained
    bad = runner.invoke(app, ["train", "matryoshka", "--data", str(pairs_file), "--out",
                              str(tmp_path / "x"), "--layers", "--layer-weights", "3:2"])
    assert bad.exit_code == 1
    assert "Error: --layer-weights takes KEY=WEIGHT pairs" in bad.output


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "{missing}"], "does not exist"),
    (["--data", "{pairs}", "--base", "no/such-model"], "neither a local folder nor a packaged"),
    (["--data", "{pairs}", "--batch-size", "0"], "batch_size must be a positive integer"),
])
def test_bad_input_is_one_error_line(args, message, tmp_path, pairs_file, trainable_model_dir):
    filled = [a.format(missing=tmp_path / "missing.jsonl", pairs=pairs_file) for a in args]
    if "--base" not in filled:
        filled += ["--base", str(trainable_model_dir)]
    result = runner.invoke(app, ["train", "contrastive", "--out", str(tmp_path / "o"), *filled])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output
    assert "Traceback" not in result.output
