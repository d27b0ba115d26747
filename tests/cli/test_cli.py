"""The CLI through typer's CliRunner, on real indexes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from retriever.cli.app import app

runner = CliRunner()


@pytest.fixture()
def tiny_index(repo, tiny_model_dir):
    result = runner.invoke(app, ["index", str(repo), "--model", str(tiny_model_dir), "-q"])
    assert result.exit_code == 0, result.output
    return repo


def test_index_reports_counts_and_is_then_up_to_date(tiny_index, tiny_model_dir):
    again = runner.invoke(app, ["index", str(tiny_index), "-q"])
    assert again.exit_code == 0, again.output
    assert "up to date" in again.output


def test_search_json_schema(tiny_index):
    result = runner.invoke(
        app, ["search", "least recently used cache", str(tiny_index), "--json", "-k", "3",
              "--mode", "lexical"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["schema"] == "dense-retriever.search/1"
    assert payload["mode"] == "lexical" and payload["k"] == 3
    assert 1 <= len(payload["hits"]) <= 3
    assert payload["hits"][0]["path"] == "rust/src/cache.rs"
    assert set(payload["hits"][0]) == {"path", "start_line", "end_line", "symbol", "kind",
                                       "language", "score", "text", "chunk_id", "relevance"}


def test_search_table_shows_location_and_symbol(tiny_index):
    result = runner.invoke(app, ["search", "multiply matrices", "--index",
                                 str(tiny_index / ".retriever"), "--mode", "lexical"])
    assert result.exit_code == 0, result.output
    assert "java/org/demo/Matrix.java:" in result.output
    assert "Matrix" in result.output


def test_search_builds_a_missing_index(repo, tiny_model_dir, monkeypatch):
    # No index yet: `search PATH` builds one (with the default model) and answers.
    result = runner.invoke(app, ["search", "debounce typing", str(repo), "--json",
                                 "--mode", "lexical"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hits"][0]["path"] == "js/debounce.js"
    assert (repo / ".retriever" / "CURRENT").is_file()


def test_search_table_lists_the_json_hits_in_order(tiny_index, monkeypatch):
    monkeypatch.chdir(tiny_index)  # paths are shown relative to the working folder
    args = ["search", "cache matrix retry", "--index", str(tiny_index / ".retriever"),
            "--mode", "lexical", "-k", "4"]
    hits = json.loads(runner.invoke(app, [*args, "--json"]).stdout)["hits"]
    table = runner.invoke(app, args, env={"COLUMNS": "200"}).stdout
    titles = [f"\n{h['path']}:{h['start_line']}  " for h in hits]
    assert len(titles) >= 2
    positions = [f"\n{table}".index(title) for title in titles]
    assert positions == sorted(positions)


def test_info(tiny_index, tiny_model_dir):
    result = runner.invoke(app, ["info", str(tiny_index / ".retriever"), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["counts"]["chunks"] > 0
    # Both manifest layouts: an encoders list, or (format 1) one encoder.
    encoders = info["encoders"] if "encoders" in info else [info["encoder"]]
    assert encoders[0]["name"] == "sentence-transformers"
    human = runner.invoke(app, ["info", str(tiny_index)], env={"COLUMNS": "200"})
    assert human.exit_code == 0, human.output
    for label in ("index", "encoder", "chunker", "components", "counts", "bytes"):
        assert f" {label}" in human.stdout, label
    assert f"chunks={info['counts']['chunks']}" in human.stdout
    assert tiny_model_dir.parent.name in human.stdout  # the encoder row shows its model


@pytest.mark.parametrize(
    "args, message",
    [
        (["index", "/definitely/not/here"], "does not exist"),
        (["search", "   ", "--index", "{repo}/.retriever"], "query is empty"),
        (["search", "x", "--index", "/definitely/not/here"], "no index"),
        (["info", "/definitely/not/here"], "no index"),
        (["search", "x", "--index", "{repo}/.retriever", "--mode", "bogus"], "Unknown search mode"),
    ],
)
def test_errors_print_a_message_and_exit_1(tiny_index, args, message):
    args = [a.replace("{repo}", str(tiny_index)) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") or "Error: " in result.output
    assert message.lower() in result.output.lower()
    assert "Traceback" not in result.output
