"""`retriever mcp` through the SDK's own stdio client, on a copy of the fixture repository.

One lexical-only server answers the read-only tests of this module (no model loads, so it
starts in about a second); tests that change the tree or the index start their own.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mcp_harness import mcp_client

import retriever
from retriever.budget import DEFAULT_MAX_TOKENS, estimate_tokens
from retriever.payload import search_payload

DATA = Path(__file__).resolve().parents[1] / "data"
QUERIES = json.loads((DATA / "repo_queries.json").read_text())
SECRET = "the-secret-outside-the-root"
TOOLS = {"search", "open", "find_related", "status"}


def _grow(repo: Path) -> None:
    """A test file (for exclude_tests) and a long module (for budgets) beside the fixture."""
    (repo / "tests").mkdir()
    (repo / "tests" / "test_retry.py").write_text(
        "from netkit.retry import RetryPolicy\n\n\ndef test_backoff_grows():\n"
        "    policy = RetryPolicy(attempts=3)\n    assert policy.delay(2) > policy.delay(1)\n"
    )
    functions = []
    for n in range(120):
        body = "\n".join(f"    value_{i} = parse_config_value(text, {i})  # config {n}"
                         for i in range(25))
        functions.append(f"def load_config_part_{n}(text):\n{body}\n    return value_0\n")
    (repo / "python" / "config_parts.py").write_text("\n\n".join(functions))


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("served")
    repo = base / "repo"
    shutil.copytree(DATA / "repo", repo)
    _grow(repo)
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text(f"TOKEN = '{SECRET}'\n")
    (repo / "python" / "leak.py").symlink_to(outside / "secret.py")
    (repo / "elsewhere").symlink_to(outside, target_is_directory=True)
    retriever.index(repo, lexical_only=True)
    return repo


@pytest.fixture(scope="module")
def client(tree):
    with mcp_client(str(tree)) as session:
        yield session


def test_tools_are_listed_with_schemas_from_their_signatures(client):
    tools = client.tools()
    assert set(tools) == TOOLS
    search = tools["search"].input_schema
    assert search["required"] == ["query"]
    props = search["properties"]
    assert {"query", "k", "mode", "paths", "languages", "exclude_tests", "max_tokens",
            "snippet_lines"} <= set(props)
    assert props["k"]["minimum"] == 1 and props["k"]["default"] == 5
    assert props["max_tokens"]["default"] == DEFAULT_MAX_TOKENS
    modes = next(option for option in props["mode"]["anyOf"] if "enum" in option)["enum"]
    assert modes == ["hybrid", "dense", "lexical"]
    assert tools["open"].input_schema["required"] == ["path"]
    assert set(tools["find_related"].input_schema["required"]) == {"path", "line"}
    for tool in tools.values():
        assert tool.description
        assert tool.annotations.read_only_hint is True


@pytest.mark.parametrize("case", QUERIES[:6], ids=lambda c: c["path"])
def test_search_puts_the_expected_file_first(client, case):
    payload = client.json("search", query=case["query"], k=3, mode="lexical")
    assert payload["hits"], payload
    assert payload["hits"][0]["path"] == case["path"]


def test_search_answers_what_the_api_answers(client, tree):
    query = "evict the least recently used entry"
    served = client.json("search", query=query, k=4)
    index = retriever.open(tree)
    expected = search_payload(index, query, index.search(query, k=4, mode="lexical"),
                              mode="lexical", k=4)
    assert served["truncated"] is False
    assert {key: served[key] for key in expected} == expected


def test_filters_apply_before_the_top_k(client):
    only_go = client.json("search", query="handler route request", k=5, languages=["go"])
    assert only_go["hits"] and {h["language"] for h in only_go["hits"]} == {"go"}
    in_python = client.json("search", query="retry backoff", k=5, paths=["python/**"])
    assert in_python["hits"] and all(h["path"].startswith("python/")
                                     for h in in_python["hits"])
    everything = client.json("search", query="retry backoff policy delay", k=10)
    assert any(h["path"].startswith("tests/") for h in everything["hits"])
    no_tests = client.json("search", query="retry backoff policy delay", k=10,
                           exclude_tests=True)
    assert no_tests["hits"] and not any(h["path"].startswith("tests/")
                                        for h in no_tests["hits"])


@pytest.mark.parametrize(("arguments", "words"), [
    ({"query": ""}, "query is empty"),
    ({"query": "   "}, "query is empty"),
    ({"query": "retry", "k": 0}, "greater than or equal to 1"),
    ({"query": "retry", "k": -3}, "greater than or equal to 1"),
    ({"query": "retry", "k": 10**9}, "less than or equal to 100"),
    ({"query": "retry", "languages": ["klingon"]}, "Unknown language 'klingon'"),
    ({"query": "retry", "mode": "fuzzy"}, "'hybrid', 'dense' or 'lexical'"),
    ({"query": "retry", "mode": "dense"}, "lexical only"),
    ({"query": "retry", "max_tokens": 10}, "greater than or equal to 200"),
    ({"query": "retry", "paths": [""]}, "non-empty strings"),
])
def test_bad_search_input_is_a_clear_tool_error(client, arguments, words):
    assert words in client.error("search", **arguments)


@pytest.mark.parametrize("budget", [200, 400, 1_000, 2_500, 6_000])
def test_no_result_exceeds_max_tokens(client, budget):
    query = "parse config value text"
    whole = client.json("search", query=query, k=100, max_tokens=200_000)
    assert whole["truncated"] is False
    text = client.text("search", query=query, k=100, max_tokens=budget)
    payload = json.loads(text)
    assert estimate_tokens(text) <= budget
    assert payload["truncated"] is True
    # What is kept is the best-ranked hits, in order; the rest is counted.
    kept = [(h["path"], h["start_line"]) for h in payload["hits"]]
    assert kept == [(h["path"], h["start_line"]) for h in whole["hits"]][: len(kept)]
    assert len(kept) + payload["omitted"] == len(whole["hits"])
    assert budget < 400 or kept


def test_the_default_budget_holds_a_large_answer_and_fits_claude_code(client):
    text = client.text("search", query="parse config value text", k=100)
    payload = json.loads(text)
    assert payload["truncated"] is True  # the long module is far more than the budget
    assert estimate_tokens(text) <= DEFAULT_MAX_TOKENS <= 25_000
    cut = [h for h in payload["hits"] if "text_start_line" in h]
    assert cut and all(h["start_line"] <= h["text_start_line"] <= h["text_end_line"]
                       <= h["end_line"] for h in cut)


def test_snippet_lines_shows_the_best_lines_of_each_hit(client, tree):
    payload = client.json("search", query="parse config value", k=3, snippet_lines=4)
    for hit in payload["hits"]:
        shown = hit["text"].split("\n")
        assert len(shown) <= 4
        first = hit.get("text_start_line", hit["start_line"])
        lines = (tree / hit["path"]).read_text().split("\n")
        assert shown == lines[first - 1 : first - 1 + len(shown)]


def test_open_returns_the_file_lines_asked_for(client, tree):
    lines = (tree / "python/netkit/retry.py").read_text().splitlines()
    excerpt = client.json("open", path="python/netkit/retry.py", start_line=3, end_line=6)
    assert (excerpt["start_line"], excerpt["end_line"]) == (3, 6)
    assert excerpt["text"].split("\n") == lines[2:6]
    assert excerpt["total_lines"] == len(lines)
    around = client.json("open", path="./python//netkit/retry.py", line=10, context=2)
    assert (around["start_line"], around["end_line"]) == (8, 12)
    assert around["path"] == "python/netkit/retry.py"
    whole = client.json("open", path="python/netkit/retry.py")
    assert whole["text"].split("\n") == lines and whole["truncated"] is False
    assert "past its end" in client.error("open", path="python/netkit/retry.py",
                                          start_line=len(lines) + 5)


def test_open_cuts_a_long_file_to_the_budget(client):
    text = client.text("open", path="python/config_parts.py", start_line=1, end_line=3000,
                       max_tokens=500)
    excerpt = json.loads(text)
    assert estimate_tokens(text) <= 500
    assert excerpt["truncated"] is True and 1 < excerpt["end_line"] < 3000


@pytest.mark.parametrize(("path", "words"), [
    ("../../etc/passwd", "leads outside the indexed root"),
    ("python/../../outside/secret.py", "leads outside the indexed root"),
    ("/etc/passwd", "absolute path"),
    ("python/leak.py", "symlink leading outside"),
    ("elsewhere/secret.py", "symlink leading outside"),
    (".retriever/CURRENT", "inside the index folder"),
    ("", "path is empty"),
    ("python/nope.py", "does not exist"),
])
def test_open_refuses_paths_outside_the_root(client, path, words):
    message = client.error("open", path=path)
    assert words in message
    assert SECRET not in message


def test_open_refuses_an_absolute_path_even_inside_the_root(client, tree):
    assert "absolute path" in client.error("open", path=str(tree / "python/netkit/retry.py"))


def test_find_related_leaves_the_chunk_itself_out(client, tree):
    payload = client.json("find_related", path="python/netkit/retry.py", line=12, k=3)
    source = payload["source"]
    assert source["path"] == "python/netkit/retry.py"
    assert source["start_line"] <= 12 <= source["end_line"]
    assert payload["hits"] and len(payload["hits"]) <= 3
    for hit in payload["hits"]:
        assert not (hit["path"] == source["path"] and hit["start_line"] <= source["end_line"]
                    and source["start_line"] <= hit["end_line"])
    assert "not in the index" in client.error("find_related", path="python/nope.py", line=1)
    assert "leads outside" in client.error("find_related", path="../x.py", line=1)


def test_status_describes_the_index_and_its_freshness(client, tree):
    status = client.json("status")
    index = retriever.open(tree)
    assert status["ready"] is True
    assert status["chunks"] == len(index)
    assert status["generation"] == index.generation.name
    assert status["modes"] == ["lexical"] and status["encoders"] == []
    assert status["freshness"]["up_to_date"] is True
    assert Path(status["root"]) == tree.resolve()
