"""`retriever index --index-spec/--index-option/--wait` and what `retriever info` shows."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from retriever.cli.app import app

runner = CliRunner()


def test_index_spec_and_options_reach_the_manifest(repo, tiny_model_dir):
    result = runner.invoke(app, [
        "index", str(repo), "--model", str(tiny_model_dir), "-q", "--index-spec", "BFlat",
        "--index-option", "rescore=int8", "--index-option", "rescore_multiplier=8",
        "--wait", "5",
    ])
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["info", str(repo), "--json"])
    assert info.exit_code == 0, info.output
    [dense] = [c for c in json.loads(info.stdout)["components"] if c["role"] == "vectors"]
    assert dense["name"] == "faiss-binary" and dense["path"] == "binary"
    assert dense["config"]["spec"] == "BFlat"
    assert dense["config"]["rescore"] == "int8" and dense["config"]["rescore_multiplier"] == 8
    # A refresh without --index-spec keeps the spec and its options, and is up to date.
    again = runner.invoke(app, ["index", str(repo), "-q"])
    assert again.exit_code == 0 and "up to date" in again.output
    # Another spec rebuilds.
    other = runner.invoke(app, ["index", str(repo), "-q", "--index-spec", "Flat"])
    assert other.exit_code == 0 and "Indexed" in other.output
    info = json.loads(runner.invoke(app, ["info", str(repo), "--json"]).stdout)
    assert [c["name"] for c in info["components"]] == ["faiss", "bm25", "symbols"]


def test_bad_specs_and_options_fail_cleanly(repo, tiny_model_dir):
    for args, message in (
        (["--index-spec", "Nope"], "cannot build index spec"),
        (["--index-spec", "IVF4,PQ7"], "PQ's M must divide"),
        (["--index-option", "dims"], "KEY=VALUE"),
        (["--index-option", "bogus=1"], "Bad option"),
    ):
        result = runner.invoke(app, ["index", str(repo), "--model", str(tiny_model_dir), "-q",
                                     *args])
        assert result.exit_code == 1, result.output
        assert "Error:" in result.output and message in result.output
    assert not (repo / ".retriever").exists()


def test_info_names_the_vector_index(repo, tiny_model_dir):
    result = runner.invoke(app, ["index", str(repo), "--model", str(tiny_model_dir), "-q",
                                 "--index-spec", "BFlat"])
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["info", str(repo)])
    assert info.exit_code == 0, info.output
    line = " ".join(info.output.split())  # rich wraps long rows
    assert "vectors: faiss-binary BFlat" in line and "in binary/ (encoder main)" in line
