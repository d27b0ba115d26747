"""``retriever train reranker``: mines BM25 hard negatives, trains, saves a folder that
``--rerank``/``load`` take; bad input is an error and exit 1."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from retriever import rerankers
from retriever.cli.app import app
from tests.rerankers.conftest import toy_rows


def _pairs(path, count):
    rows = toy_rows(count)
    path.write_text("".join(json.dumps({"query": q, "positive": p, "split": "dev"
                                        if i >= count - 6 else "train"}) + "\n"
                            for i, (q, p) in enumerate(rows)))
    return path


def test_train_reranker_end_to_end(tmp_path, tiny_bert_dir):
    data = _pairs(tmp_path / "pairs.jsonl", 40)
    out = tmp_path / "model"
    result = CliRunner().invoke(app, [
        "train", "reranker", "--data", str(data), "--base", str(tiny_bert_dir), "--out",
        str(out), "--negatives", "3", "--batch-size", "4", "--max-steps", "3",
        "--max-length", "32", "--lora-rank", "4", "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    assert "Trained the reranker for 3 steps" in result.output
    manifest = json.loads((out / "reranker.json").read_text())
    assert manifest["training"]["data"]["rows"] == 34
    assert "BM25" in manifest["training"]["data"]["negatives"]
    assert manifest["training"]["dev"]["trained"]["queries"] == 6
    scores = rerankers.load(str(out), base=str(tiny_bert_dir)).score("q", ["a", "b"])
    assert scores.shape == (2,)


def test_train_reranker_refuses_a_used_folder(tmp_path, tiny_bert_dir):
    data = _pairs(tmp_path / "pairs.jsonl", 10)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    result = CliRunner().invoke(app, [
        "train", "reranker", "--data", str(data), "--base", str(tiny_bert_dir), "--out",
        str(tmp_path / "used"), "-q"])
    assert result.exit_code == 1
    assert "Error:" in result.output and "new or empty" in result.output
