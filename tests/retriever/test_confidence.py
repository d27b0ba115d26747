"""Relevance, --min-score and "no confident match" through the API, the CLI and MCP, with the
real default model on the committed fixture repository."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import retriever
from retriever.cli.app import app
from retriever.payload import confident, search_payload
from retriever.ranking.calibration import CONFIDENT

DATA = Path(__file__).resolve().parents[1] / "data"
NONSENSE = "kubernetes helm chart deployment yaml"
REAL = "retry with exponential backoff"
runner = CliRunner()


@pytest.fixture(scope="module")
def built(tmp_path_factory, default_encoder):
    root = tmp_path_factory.mktemp("confidence") / "repo"
    shutil.copytree(DATA / "repo", root)
    return retriever.index(root, encoder=default_encoder)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_a_nonsense_query_has_no_confident_match(built, mode):
    hits = built.search(NONSENSE, k=5, mode=mode)
    assert all(0.0 <= hit.relevance < CONFIDENT for hit in hits)
    assert search_payload(built, NONSENSE, hits, mode=mode, k=5)["confident"] is False


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_a_real_query_is_a_confident_match_above_the_rest(built, mode):
    hits = built.search(REAL, k=5, mode=mode)
    assert hits[0].path == "python/netkit/retry.py"
    assert hits[0].relevance >= CONFIDENT
    assert hits[0].relevance > max((hit.relevance for hit in hits[1:]), default=0.0)
    assert confident(hits) is True


def test_min_score_keeps_only_hits_at_least_that_relevant(built):
    everything = built.search(REAL, k=5)
    kept = built.search(REAL, k=5, min_score=CONFIDENT)
    assert kept == [hit for hit in everything if hit.relevance >= CONFIDENT]
    assert kept and len(kept) < len(everything)
    assert built.search(NONSENSE, k=5, min_score=CONFIDENT) == []


def test_min_score_outside_the_unit_interval_is_an_input_error(built):
    with pytest.raises(retriever.InputError, match=r"in \[0, 1\]"):
        built.search(REAL, min_score=1.5)


def _search(built, *args):
    return runner.invoke(app, ["search", *args, "--index", str(built.directory)])


def test_cli_json_carries_confident_and_each_hits_relevance(built):
    for query, expected in ((NONSENSE, False), (REAL, True)):
        result = _search(built, query, "--json", "-k", "3")
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout)
        assert payload["confident"] is expected
        assert all(0.0 <= hit["relevance"] <= 1.0 for hit in payload["hits"])
        assert len(payload["hits"]) == 3


def test_cli_min_score_filters_the_json_hits(built):
    result = _search(built, REAL, "--json", "--min-score", str(CONFIDENT))
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    assert hits and all(hit["relevance"] >= CONFIDENT for hit in hits)
    empty = json.loads(_search(built, NONSENSE, "--json", "--min-score", "0.5").stdout)
    assert empty["hits"] == [] and empty["confident"] is False


def test_cli_says_no_confident_match_in_one_line_and_marks_low_hits(built):
    result = _search(built, NONSENSE, "--no-snippet", "-k", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f'No confident match for "{NONSENSE}"')
    assert len(lines) == 4 and all(line.rstrip().endswith(line.split()[-1]) for line in lines)
    assert all(" low " in line for line in lines[1:])
    good = _search(built, REAL, "--no-snippet", "-k", "3").stdout.splitlines()
    assert "No confident match" not in good[0] and " low " not in good[0]
    filtered = _search(built, NONSENSE, "--min-score", "0.9").stdout
    assert filtered.strip() == f'No results with relevance >= 0.9 for "{NONSENSE}".'


@pytest.mark.parametrize("value", ["1.5", "-0.2"])
def test_cli_min_score_out_of_range_exits_1(built, value):
    result = _search(built, REAL, "--min-score", value)
    assert result.exit_code == 1
    assert "min_score is a relevance in [0, 1]" in result.output
    as_json = _search(built, REAL, "--min-score", value, "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["error"]["type"] == "InputError"


def test_cli_unknown_pipeline_lists_the_known_ones(built):
    result = _search(built, REAL, "--pipeline", "fancy")
    assert result.exit_code == 1
    assert "known: code, code-files, plain" in result.output
    plain = _search(built, REAL, "--pipeline", "plain", "--json", "--mode", "lexical")
    assert json.loads(plain.stdout)["hits"][0]["path"] == "python/netkit/retry.py"


def test_mcp_search_takes_min_score(built):
    pytest.importorskip("mcp")
    from mcp.server.mcpserver.exceptions import ToolError

    from retriever.mcp_server import Tools
    from retriever.watch import LiveIndex

    # The server's tool itself, in process, over the index the module built.
    live = LiveIndex(built.root, built.directory)
    try:
        tools = Tools(live)
        answer = json.loads(tools.search(query=REAL, k=5, min_score=CONFIDENT))
        assert answer["confident"] is True
        assert answer["hits"] and all(h["relevance"] >= CONFIDENT for h in answer["hits"])
        assert json.loads(tools.search(query=NONSENSE, min_score=0.5))["hits"] == []
        with pytest.raises(ToolError, match="min_score is a relevance"):
            tools.search(query=REAL, min_score=2.0)
    finally:
        live.close()
