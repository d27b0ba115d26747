"""A served index that changes under the server: a new generation, a deleted index folder,
the watcher, a client that goes away, and the default model's vectors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mcp_harness import mcp_client, retriever_command, server_env, until

import retriever

DATA = Path(__file__).resolve().parents[1] / "data"
QUERIES = json.loads((DATA / "repo_queries.json").read_text())


@pytest.fixture()
def lexical_repo(repo) -> Path:
    retriever.index(repo, lexical_only=True)
    return repo


def _paths(client, query: str, **options) -> list[str]:
    return [h["path"] for h in client.json("search", query=query, k=5, **options)["hits"]]


def _found(client, query: str, path: str):
    """A poll for ``until``: ``path`` among the hits (a transient tool error counts as not
    yet, e.g. while a deleted index is being rebuilt)."""
    def check():
        result = client.call("search", query=query, k=5)
        return not result.is_error and path in [
            h["path"] for h in json.loads(result.content[0].text)["hits"]]
    return check


def test_a_fast_tier_answer_says_how_to_add_the_transformer_and_a_lexical_one_does_not(repo):
    retriever.index(repo, tier="fast")
    with mcp_client(str(repo)) as client:
        found = client.json("search", query="retry with backoff", k=3)
        assert found["tier"] == "fast"
        assert "--tier full" in found["hint"] and str(repo) in found["hint"]
    retriever.index(repo, lexical_only=True, force=True)
    with mcp_client(str(repo)) as client:
        assert "hint" not in client.json("search", query="retry with backoff", k=3)


def test_a_new_generation_is_served_without_a_restart(lexical_repo):
    with mcp_client(str(lexical_repo)) as client:
        before = client.json("status", check_tree=False)["generation"]
        assert "docs/TRAVEL.md" not in _paths(client, "zanzibar ferries")
        (lexical_repo / "docs" / "TRAVEL.md").write_text("# Travel\n\nFerries to zanzibar.\n")
        (lexical_repo / "c" / "crc32.c").unlink()
        assert client.json("status")["freshness"] == {
            "up_to_date": False, "added": 1, "changed": 0, "removed": 1}
        retriever.index(lexical_repo)  # another process's build, published atomically
        assert _paths(client, "zanzibar ferries")[0] == "docs/TRAVEL.md"
        status = client.json("status")
        assert status["generation"] != before and status["freshness"]["up_to_date"]


def test_a_deleted_index_folder_is_rebuilt_as_it_was(lexical_repo):
    with mcp_client(str(lexical_repo)) as client:
        assert _paths(client, "checksum of a byte buffer")[0] == "c/crc32.c"
        shutil.rmtree(lexical_repo / ".retriever")
        until(_found(client, "checksum of a byte buffer", "c/crc32.c"), timeout=60)
        status = client.json("status")
        assert status["ready"] and status["modes"] == ["lexical"]  # no model was loaded
    assert (lexical_repo / ".retriever" / "CURRENT").is_file()


@pytest.mark.parametrize("flags", [["--lexical-only"], ["--tier", "lexical"]])
def test_a_tree_with_no_index_is_indexed_at_start(repo, flags):
    with mcp_client(str(repo), *flags) as client:
        until(_found(client, "delete old backup archives", "scripts/backup.sh"), timeout=60)
        assert client.json("status")["modes"] == ["lexical"]


def test_a_build_that_fails_is_reported_by_the_tools(repo):
    with mcp_client(str(repo), "--tier", "bogus") as client:
        message = until(lambda: "rebuilding it failed" in (
            text := client.error("search", query="retry")) and text, timeout=60)
        assert "Unknown tier 'bogus'" in message
        assert "Unknown tier" in client.json("status")["last_error"]


def test_watch_inside_the_server_follows_edits(lexical_repo):
    pytest.importorskip("watchfiles")
    with mcp_client(str(lexical_repo), "--watch", "--debounce-ms", "50") as client:
        until(lambda: client.json("status", check_tree=False)["watching"], timeout=30)
        target = lexical_repo / "python" / "netkit" / "quokka.py"
        target.write_text("def feed_the_quokka(leaves):\n    return sorted(leaves)\n")
        until(_found(client, "feed_the_quokka", "python/netkit/quokka.py"), timeout=30)
        target.unlink()
        until(lambda: "python/netkit/quokka.py" not in _paths(client, "feed_the_quokka"),
              timeout=30)


def test_concurrent_calls_keep_answering_while_the_watcher_rebuilds(lexical_repo):
    pytest.importorskip("watchfiles")
    failures: list[str] = []
    answered: list[str] = []
    done = threading.Event()
    with mcp_client(str(lexical_repo), "--watch", "--debounce-ms", "30") as client:
        until(lambda: client.json("status", check_tree=False)["watching"], timeout=30)

        def ask() -> None:
            while not done.is_set():
                result = client.call("search", query="generated otter function", k=5)
                if result.is_error:
                    failures.append(result.content[0].text)
                    return
                payload = json.loads(result.content[0].text)
                answered.extend(h["path"] for h in payload["hits"])

        askers = [threading.Thread(target=ask) for _ in range(3)]
        for asker in askers:
            asker.start()
        for n in range(40):
            (lexical_repo / "python" / f"otter_{n}.py").write_text(
                f"def generated_otter_function_{n}():\n    return {n}\n")
            if n % 10 == 9:
                time.sleep(0.15)  # several builds publish while the calls run
        until(_found(client, "generated_otter_function_39", "python/otter_39.py"))
        done.set()
        for asker in askers:
            asker.join(60)
    assert not failures, failures[0]
    assert any(path.startswith("python/otter_") for path in answered)


def test_the_server_exits_cleanly_when_the_client_goes_away(lexical_repo):
    command = [*retriever_command(), "mcp", str(lexical_repo)]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=server_env())
    try:
        hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"}}}
        server.stdin.write((json.dumps(hello) + "\n").encode())
        server.stdin.flush()
        answer = json.loads(server.stdout.readline())
        assert answer["id"] == 1 and "serverInfo" in answer["result"]
        started = time.monotonic()
        server.stdin.close()  # the client disconnects
        assert server.wait(timeout=20) == 0
        assert time.monotonic() - started < 20
        assert b"Traceback" not in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_a_missing_tree_is_refused_before_serving(tmp_path):
    done = subprocess.run([*retriever_command(), "mcp", str(tmp_path / "nope")],
                          capture_output=True, env=server_env(), timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert b"is not a folder" in done.stderr and done.stdout == b""


@pytest.mark.slow
def test_hybrid_search_and_related_code_with_the_default_model(repo):
    retriever.index(repo)  # the real default model
    with mcp_client(str(repo)) as client:
        assert client.json("status")["modes"] == ["hybrid", "dense", "lexical"]
        for case in QUERIES:
            assert _paths(client, case["query"])[0] == case["path"], case
        related = client.json("find_related", path="python/netkit/retry.py", line=5, k=3)
        assert related["mode"] == "dense" and related["hits"]
        assert all(h["path"] != "python/netkit/retry.py"
                   or h["start_line"] > related["source"]["end_line"]
                   or h["end_line"] < related["source"]["start_line"]
                   for h in related["hits"])
        dense = client.json("search", query="exponential backoff", mode="dense", k=2)
        assert dense["mode"] == "dense" and dense["hits"]


@pytest.mark.parametrize(("command", "package", "extra"), [
    ("mcp", "mcp", "dense-retriever[mcp]"),
    ("watch", "watchfiles", "dense-retriever[watch]"),
])
def test_without_its_extra_a_command_says_what_to_install(repo, command, package, extra):
    # A fresh interpreter in which the optional package cannot be imported.
    program = (f"import sys; sys.modules[{package!r}] = None; sys.argv = ['retriever', "
               f"{command!r}, {str(repo)!r}]; from retriever.cli.app import main; main()")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          env=server_env(), timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stderr
    assert extra in done.stderr and "Traceback" not in done.stderr
