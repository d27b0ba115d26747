"""Reports, the CLI's engine-free commands and the public names, without the engine."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import eval as package
from eval.compare import compare
from eval.cost import Cost, directory_bytes, latency_ms, peak_memory
from eval.metrics import evaluate, read_qrels, read_trec, write_trec
from eval.report import markdown_table, plot_tradeoffs, write_json
from eval.runner import RunResult
from retriever.cli.app import app


def _result(name: str, ndcg: float, latency: float, size: int) -> RunResult:
    return RunResult(
        name=name,
        dataset="tiny",
        split="test",
        mode="lexical",
        encoder="none",
        metrics={"ndcg@10": ndcg},
        ci={"ndcg@10": (ndcg - 0.1, ndcg + 0.1)},
        per_query={"ndcg@10": {"q1": ndcg}},
        cost=Cost(
            index_seconds=1.0, index_bytes=size, latency_p50_ms=latency, latency_p95_ms=2 * latency
        ),
    )


def test_markdown_json_and_plots(tmp_path):
    results = [_result("a", 0.5, 1.0, 1000), _result("b", 0.7, 3.0, 5000)]
    table = markdown_table(results)
    assert table.splitlines()[2].startswith("| a | 0.500 [0.400, 0.600] | 1.0 |")
    assert len(table.splitlines()) == 4
    data = json.loads(write_json(results[0], tmp_path / "a.json").read_text())
    assert data["metrics"] == {"ndcg@10": 0.5} and data["cost"]["index_bytes"] == 1000
    pngs = plot_tradeoffs(results, tmp_path / "plots")
    assert [p.name for p in pngs] == ["ndcg_at_10_vs_latency.png", "ndcg_at_10_vs_index_bytes.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)


def test_cost_helpers(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 10)
    assert directory_bytes(tmp_path) == 10
    assert latency_ms([]) == (0.0, 0.0)
    assert latency_ms([0.001, 0.002, 0.003]) == pytest.approx((2.0, 2.9))
    with peak_memory() as memory:
        block = bytearray(32 << 20)
    del block
    assert memory.bytes > 32 << 20


def test_compare_trec_runs_via_cli(data, tmp_path):
    qrels = read_qrels(data / "metrics" / "qrels.tsv")
    run = read_trec(data / "metrics" / "run.trec")
    worse = {qid: {doc: -score for doc, score in docs.items()} for qid, docs in run.items()}
    write_trec(worse, tmp_path / "worse.trec")
    result = compare(
        data / "metrics" / "run.trec",
        tmp_path / "worse.trec",
        qrels=data / "metrics" / "qrels.tsv",
        metrics=["ndcg@10"],
    )
    assert result.rows["ndcg@10"][0] == evaluate(qrels, run, ["ndcg@10"]).mean["ndcg@10"]
    cli = CliRunner().invoke(
        app,
        [
            "eval",
            "compare",
            str(data / "metrics" / "run.trec"),
            str(tmp_path / "worse.trec"),
            "--qrels",
            str(data / "metrics" / "qrels.tsv"),
        ],
    )
    assert cli.exit_code == 0, cli.output
    assert "ndcg@10" in cli.output


def test_cli_mine(data, tmp_path):
    args = ["eval", "mine", str(data / "mine"), "--out", str(tmp_path / "m")]
    cli = CliRunner().invoke(app, args)
    assert cli.exit_code == 0, cli.output
    assert "10 queries" in cli.output
    assert (tmp_path / "m" / "qrels" / "test.tsv").is_file()


def test_public_names():
    assert set(package.__all__) == {
        "ALL_MODES",
        "DEFAULT_METRICS",
        "Benchmark",
        "Comparison",
        "Cost",
        "Doc",
        "Evaluation",
        "RepoQuery",
        "RepoRunResult",
        "RepoScores",
        "RepoSpec",
        "RunResult",
        "Target",
        "bootstrap_ci",
        "by_category",
        "compare",
        "evaluate",
        "load_beir",
        "load_codesearchnet",
        "load_repo_benchmark",
        "markdown_table",
        "mine",
        "paired_test",
        "parse_modes",
        "plot_tradeoffs",
        "read_qrels",
        "read_trec",
        "run_benchmark",
        "run_beir",
        "run_repo_benchmark",
        "score_repo_benchmark",
        "write_beir",
        "write_json",
        "write_markdown",
        "write_results",
        "write_trec",
    }
    assert all(hasattr(package, name) for name in package.__all__)


def test_cli_errors_print_a_message_and_exit_1(tmp_path):
    cli = CliRunner().invoke(app, ["eval", "beir", str(tmp_path / "nowhere")])
    assert cli.exit_code == 1 and "Error: " in cli.output and "Traceback" not in cli.output
    cli = CliRunner().invoke(
        app, ["eval", "compare", str(tmp_path / "a.trec"), str(tmp_path / "b.trec")]
    )
    assert cli.exit_code == 1 and "Error: " in cli.output


def test_plots_without_matplotlib_name_the_extra(monkeypatch, tmp_path):
    import sys

    from retriever.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    with pytest.raises(MissingDependencyError, match=r"dense-retriever\[eval\]"):
        plot_tradeoffs([_result("a", 0.5, 1.0, 100)], tmp_path)


def test_peak_memory_without_psutil_falls_back_to_the_lifetime_peak(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "psutil", None)
    with peak_memory() as memory:
        pass
    assert memory.bytes > 0  # getrusage's peak: the process has used some memory
