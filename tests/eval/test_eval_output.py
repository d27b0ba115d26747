"""The ``--out`` layout (:func:`eval.write_results`) and index kinds passed to eval builds."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from eval import read_trec, run_beir, write_results
from eval.runner import run_repo_benchmark
from retriever.cli.app import app
from retriever.errors import InputError


@pytest.fixture(scope="module")
def two_modes(tmp_path_factory):
    from pathlib import Path

    data = Path(__file__).resolve().parent.parent / "data" / "eval"
    index = tmp_path_factory.mktemp("two") / "index"
    return run_beir(data / "beir_tiny", "test", modes="lexical,dense", k=4, index_dir=index)


def test_one_mode_writes_flat_files(two_modes, tmp_path):
    written = write_results({"lexical": two_modes["lexical"]}, tmp_path / "out")
    out = tmp_path / "out"
    assert written == [out / "result.json", out / "run.trec", out / "report.md"]
    saved = json.loads((out / "result.json").read_text())
    assert saved["mode"] == "lexical" and saved["run"] == two_modes["lexical"].run
    assert read_trec(out / "run.trec") == two_modes["lexical"].run  # repr round-trips
    assert "index" not in saved  # a default build records no index settings


def test_several_modes_write_a_folder_each_and_one_report(two_modes, tmp_path):
    write_results(two_modes, tmp_path)
    for mode in ("lexical", "dense"):
        saved = json.loads((tmp_path / mode / "result.json").read_text())
        assert saved["mode"] == mode and saved["build_modes"] == ["lexical", "dense"]
        assert set(read_trec(tmp_path / mode / "run.trec")) == {"q1", "q2"}
    assert not (tmp_path / "result.json").exists()
    report = (tmp_path / "report.md").read_text()
    assert "beir_tiny lexical" in report and "beir_tiny dense" in report
    with pytest.raises(InputError):
        write_results({}, tmp_path)


def test_repo_results_rewritten_after_every_repository(data, tmp_path):
    out = tmp_path / "out"
    seen = []

    def snapshot(name, _partial):
        seen.append((name, sorted(json.loads((out / "result.json").read_text())["per_repo"])))

    run_repo_benchmark(
        data / "semble" / "annotations",
        data / "semble" / "repos",
        modes="lexical",
        repos=["other", "demo"],
        out=out,
        on_repo=snapshot,
    )
    assert seen == [("other", ["other"]), ("demo", ["demo", "other"])]
    assert not (out / "run.trec").exists()  # a repository benchmark keeps no run


def _beir(data, *args):
    return CliRunner().invoke(app, ["eval", "beir", str(data / "beir_tiny"), *args])


def test_cli_beir_passes_the_index_spec_and_options(data, tmp_path):
    out = tmp_path / "binary"
    cli = _beir(data, "--mode", "dense", "--index-spec", "BFlat", "--index-option",
                "rescore=null", "--k", "4", "--out", str(out))
    assert cli.exit_code == 0, cli.output
    saved = json.loads((out / "result.json").read_text())
    assert saved["index"] == {"spec": "BFlat", "options": {"rescore": None}}
    assert set(saved["run"]) == {"q1", "q2"} and saved["metrics"]["recall@100"] > 0


def test_cli_index_spec_reaches_the_build(data, tmp_path):
    # The engine itself rejects the spec: proof that the option travelled to the build.
    cli = _beir(data, "--mode", "dense", "--index-spec", "NoSuchKind42")
    assert cli.exit_code == 1 and "Error: " in cli.output and "NoSuchKind42" in cli.output
    cli = _beir(data, "--mode", "dense", "--index-option", "dims")
    assert cli.exit_code == 1 and "KEY=VALUE" in cli.output
    cli = _beir(data, "--mode", "lexical", "--index-spec", "Flat")
    assert cli.exit_code == 1 and "only apply to vector indexes" in cli.output


def test_cli_repos_passes_the_index_spec(data, tmp_path):
    out = tmp_path / "repos"
    cli = CliRunner().invoke(app, [
        "eval", "repos", str(data / "semble" / "annotations"),
        "--repos", str(data / "semble" / "repos"), "--mode", "dense",
        "--index-spec", "HNSW16,Flat", "--index-option", "ef_search=32", "--out", str(out),
    ])
    assert cli.exit_code == 0, cli.output
    saved = json.loads((out / "result.json").read_text())
    assert saved["index"] == {"spec": "HNSW16,Flat", "options": {"ef_search": 32}}
    assert set(saved["per_repo"]) == {"demo", "other"}


def test_cli_beir_passes_encoder_options(data, tmp_path):
    out = tmp_path / "head"
    cli = _beir(data, "--mode", "dense", "--encoder-option", "head=pca", "--encoder-option",
                "dims=64", "--k", "4", "--out", str(out))
    assert cli.exit_code == 0, cli.output
    assert json.loads((out / "result.json").read_text())["encoder"] == \
        "sentence-transformers [dims=64, head=pca]"
    bad = _beir(data, "--mode", "dense", "--encoder-option", "head=nope")
    assert bad.exit_code == 1 and "No head 'nope'" in " ".join(bad.output.split())
