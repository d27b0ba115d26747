"""`-q` leaves only the results: no progress bars, notes, warnings or skipped-file lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_terminal import in_terminal, plain
from typer.testing import CliRunner

from indexing.store import writer
from retriever.cli.app import app

runner = CliRunner(env={"COLUMNS": "200"})

FILES = {
    "retry.py": "def retry_with_backoff(call):\n    return call()\n",
    "server.go": "package main\n\nfunc handleRequest() {}\n",
    "big.txt": "retry " * 100,  # over --max-file-bytes below: skipped, with a reason
}


@pytest.fixture()
def tree(tmp_path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    for name, text in FILES.items():
        (root / name).write_text(text)
    return root


def test_index_quiet_prints_only_its_result_line(tree):
    args = ["index", str(tree), "--lexical-only", "--max-file-bytes", "200"]
    loud = runner.invoke(app, args)
    assert loud.exit_code == 0, loud.output
    assert "Skipped 1 files" in loud.stderr and "big.txt" in loud.stderr
    quiet = runner.invoke(app, [*args, "--force", "-q"])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
    assert quiet.stdout.splitlines() == [quiet.stdout.strip()]
    assert quiet.stdout.startswith("Indexed 2 files")


def test_quiet_on_a_terminal_draws_no_progress_bars(tree):
    args = ["index", str(tree), "--lexical-only"]
    code, _, err = in_terminal(*args, cwd=tree)
    assert code == 0, err
    assert "Chunking files" in plain(err.decode())  # a terminal gets bars without -q
    code, out, err = in_terminal(*args, "--force", "-q", cwd=tree)
    assert code == 0 and err == b""
    assert out.startswith(b"Indexed ")
    (tree / "new.py").write_text("def fresh_function():\n    pass\n")
    code, out, err = in_terminal("search", "fresh function", "--mode", "lexical", "-q",
                                 cwd=tree)
    assert code == 0 and err == b""  # the refresh before the search drew nothing either
    assert plain(out.decode()).startswith("new.py:1  ")


def test_quiet_search_drops_the_stale_index_note_but_not_the_results(tree):
    assert runner.invoke(app, ["index", str(tree), "--lexical-only", "-q"]).exit_code == 0
    (tree / "late.py").write_text("def retry_later():\n    pass\n")
    args = ["search", "retry", str(tree), "--mode", "lexical"]
    with pytest.raises(RuntimeError, match="abandon"), writer(tree / ".retriever"):
        loud = runner.invoke(app, args)
        assert loud.exit_code == 0, loud.output
        assert "Note: another process is refreshing the index" in loud.stderr
        quiet = runner.invoke(app, [*args, "-q"])
        assert quiet.exit_code == 0, quiet.output
        assert quiet.stderr == "" and quiet.stdout == loud.stdout
        assert "retry.py:1" in quiet.stdout
        quiet_json = runner.invoke(app, [*args, "-q", "--json"])
        assert quiet_json.stderr == ""
        assert "retry.py" in [hit["path"] for hit in json.loads(quiet_json.stdout)["hits"]]
        raise RuntimeError("abandon the held generation")
