"""Benchmark runs with a named ranking pipeline and with vectors taken from a vector cache."""

from __future__ import annotations

import json

import pytest

from eval.data import Benchmark, Doc
from eval.runner import run_benchmark, run_repo_benchmark
from retriever.cli.app import app
from retriever.errors import InputError


def _bench() -> Benchmark:
    texts = ["parse the config file", "open a socket and listen", "sort a list of numbers",
             "render a template to html"]
    corpus = {f"d{i}": Doc(f"d{i}", text) for i, text in enumerate(texts)}
    return Benchmark("tiny", corpus, {f"q{i}": t for i, t in enumerate(texts)},
                     {f"q{i}": {f"d{i}": 1} for i in range(len(texts))})


def test_a_vector_cache_run_embeds_once_and_says_so(tmp_path):
    cache = tmp_path / "cache"
    first = run_benchmark(_bench(), mode="dense", k=4, index_dir=tmp_path / "a",
                          vector_cache=cache)
    second = run_benchmark(_bench(), mode="dense", k=4, index_dir=tmp_path / "b",
                           vector_cache=cache)
    assert any(cache.iterdir())  # the first run stored its vectors there
    assert second.metrics == first.metrics
    assert second.index == {"vectors_from_cache": True}
    plain = run_benchmark(_bench(), mode="dense", k=4, index_dir=tmp_path / "c")
    assert plain.index == {} and plain.metrics == first.metrics


def test_the_pipeline_is_recorded_and_an_unknown_one_costs_no_build(tmp_path):
    result = run_benchmark(_bench(), mode="lexical", k=4, index_dir=tmp_path / "i",
                           pipeline="plain")
    assert result.index == {"pipeline": "plain"}
    with pytest.raises(InputError, match="code-files"):
        run_benchmark(_bench(), mode="lexical", k=4, index_dir=tmp_path / "j",
                      pipeline="fancy")
    assert not (tmp_path / "j").exists()


def test_repo_runs_take_a_pipeline_and_the_cli_passes_both(data, tmp_path):
    from typer.testing import CliRunner

    plain = run_repo_benchmark(data / "semble" / "annotations", data / "semble" / "repos",
                               mode="lexical", pipeline="plain")
    code = run_repo_benchmark(data / "semble" / "annotations", data / "semble" / "repos",
                              mode="lexical", pipeline="code")
    assert plain.index == {"pipeline": "plain"} and code.index == {"pipeline": "code"}
    out = tmp_path / "out"
    cli = CliRunner().invoke(app, ["eval", "beir", str(data / "beir_tiny"), "--mode", "dense",
                                   "--pipeline", "plain", "--vector-cache", str(tmp_path / "vc"),
                                   "--out", str(out)])
    assert cli.exit_code == 0, cli.output
    written = json.loads((out / "result.json").read_text())
    assert written["index"] == {"pipeline": "plain", "vectors_from_cache": True}
    cli = CliRunner().invoke(app, ["eval", "beir", str(data / "beir_tiny"), "--pipeline", "x"])
    assert cli.exit_code == 1 and "known: code, code-files, plain" in cli.output
