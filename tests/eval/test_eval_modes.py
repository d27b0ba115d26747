"""Several search modes from one index build, vector-free lexical builds, and the CLI options."""

from __future__ import annotations

import json

import pytest

from eval.runner import ALL_MODES, parse_modes
from retriever.errors import InputError


def test_parse_modes_accepts_all_a_comma_list_and_a_sequence():
    assert parse_modes("all") == ALL_MODES == ("lexical", "dense", "hybrid")
    assert parse_modes("dense, lexical") == ("dense", "lexical")
    assert parse_modes("hybrid,hybrid,ALL") == ("hybrid", "lexical", "dense")
    assert parse_modes(["lexical"]) == ("lexical",)


@pytest.mark.parametrize("value", ["", " , ", "bm25", "dense,sparse"])
def test_parse_modes_rejects_unknown_or_empty(value):
    with pytest.raises(InputError):
        parse_modes(value)


try:
    from retriever import index_documents  # noqa: F401
except ImportError as error:  # the facade lands in parallel
    pytest.skip(f"retriever.index_documents is not importable: {error}", allow_module_level=True)

import retriever  # noqa: E402
from eval.data import Benchmark, Doc  # noqa: E402
from eval.runner import run_benchmark, run_repo_benchmark  # noqa: E402
from retriever.cli.app import app  # noqa: E402


def _self_bench() -> Benchmark:
    texts = ["alpha beta gamma", "delta epsilon zeta", "eta theta iota", "kappa lambda mu"]
    corpus = {f"d{i}": Doc(f"d{i}", text) for i, text in enumerate(texts)}
    return Benchmark(
        "self",
        corpus,
        {f"d{i}": t for i, t in enumerate(texts)},
        {f"d{i}": {f"d{i}": 1} for i in range(len(texts))},
    )


def test_one_build_serves_every_mode(tmp_path):
    results = run_benchmark(_self_bench(), modes="all", k=4, index_dir=tmp_path / "index")
    assert list(results) == list(ALL_MODES)
    builds = {(r.cost.index_seconds, r.cost.index_bytes, r.cost.chunks) for r in results.values()}
    assert len(builds) == 1  # the build cost is the shared one
    for mode, result in results.items():
        assert result.mode == mode and result.name == f"self {mode}"
        assert result.build_modes == list(ALL_MODES)
        assert result.metrics["mrr@10"] == pytest.approx(1.0), mode
        assert result.cost.queries_timed == 4 and result.cost.latency_p50_ms > 0
        assert result.to_dict()["build_modes"] == list(ALL_MODES)
    # only one generation was built
    assert len([p for p in (tmp_path / "index").iterdir() if p.name.startswith("gen-")]) == 1


def test_a_single_mode_still_returns_one_result(tmp_path):
    result = run_benchmark(_self_bench(), mode="lexical", k=4, index_dir=tmp_path / "i")
    assert result.mode == "lexical" and result.build_modes == ["lexical"]


def test_lexical_only_build_skips_embedding_and_matches_the_full_build(tmp_path):
    bench = _self_bench()
    cheap = run_benchmark(bench, modes=["lexical"], k=4, index_dir=tmp_path / "cheap")["lexical"]
    full = run_benchmark(bench, modes=["lexical"], embed=True, k=4, index_dir=tmp_path / "full")
    full = full["lexical"]
    assert cheap.run == full.run
    assert cheap.cost.index_bytes < full.cost.index_bytes  # no vectors were written
    assert not retriever.open(tmp_path / "cheap").has_vectors
    assert retriever.open(tmp_path / "full").has_vectors


def test_settings_that_contradict_the_modes_are_refused(tmp_path):
    with pytest.raises(InputError, match="embed=False builds no vectors"):
        run_benchmark(_self_bench(), modes="lexical,dense", embed=False, index_dir=tmp_path)
    with pytest.raises(InputError, match="only apply to vector indexes"):
        run_benchmark(_self_bench(), modes="lexical", index_spec="HNSW32,Flat")


def test_repo_benchmark_modes_and_partial_results(data, tmp_path):
    seen = []
    results = run_repo_benchmark(
        data / "semble" / "annotations",
        data / "semble" / "repos",
        modes=("lexical", "hybrid"),
        repos=["other", "demo"],
        index_root=tmp_path / "idx",
        on_repo=lambda name, partial: seen.append((name, sorted(partial), list(
            partial["lexical"].scores.per_repo))),
    )
    assert sorted(results) == ["hybrid", "lexical"]
    assert seen[0] == ("other", ["hybrid", "lexical"], ["other"])  # run in the order given
    assert seen[1][0] == "demo" and sorted(seen[1][2]) == ["demo", "other"]
    lexical, hybrid = results["lexical"], results["hybrid"]
    assert lexical.scores.per_query["other/0"] == pytest.approx(1.0)
    assert lexical.cost.index_seconds == hybrid.cost.index_seconds
    assert lexical.build_modes == ["lexical", "hybrid"]
    assert set(hybrid.per_repo_cost) == {"demo", "other"}


def test_cli_beir_several_modes_write_one_folder_each(data, tmp_path):
    from typer.testing import CliRunner

    out = tmp_path / "out"
    cli = CliRunner().invoke(
        app,
        ["eval", "beir", str(data / "beir_tiny"), "--mode", "lexical,dense", "--out", str(out)],
    )
    assert cli.exit_code == 0, cli.output
    for mode in ("lexical", "dense"):
        data_ = json.loads((out / mode / "result.json").read_text())
        assert data_["mode"] == mode and data_["build_modes"] == ["lexical", "dense"]
        assert (out / mode / "run.trec").is_file()
    report = (out / "report.md").read_text()
    assert "beir_tiny lexical" in report and "beir_tiny dense" in report


def test_cli_rejects_a_bad_mode_and_a_missing_model(data, tmp_path):
    from typer.testing import CliRunner

    cli = CliRunner().invoke(app, ["eval", "beir", str(data / "beir_tiny"), "--mode", "bm25"])
    assert cli.exit_code == 1 and "Error: " in cli.output and "bm25" in cli.output
    cli = CliRunner().invoke(
        app,
        ["eval", "beir", str(data / "beir_tiny"), "--model", str(tmp_path / "no-such-model")],
    )
    assert cli.exit_code == 1 and "Error: " in cli.output


def test_cli_repos_all_modes_with_model_option(data, tmp_path):
    from typer.testing import CliRunner

    out = tmp_path / "out"
    cli = CliRunner().invoke(
        app,
        [
            "eval", "repos", str(data / "semble" / "annotations"),
            "--repos", str(data / "semble" / "repos"),
            "--mode", "all", "--model", "all-MiniLM-L6-v2", "--out", str(out),
        ],
    )
    assert cli.exit_code == 0, cli.output
    for mode in ALL_MODES:
        assert json.loads((out / mode / "result.json").read_text())["mode"] == mode
    assert "lexical: NDCG@10" in cli.output
