"""No escape sequence from an indexed tree, a query or a path reaches the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from retriever.cli.app import app

# Wide enough that no long temporary path is folded or cut.
runner = CliRunner(env={"COLUMNS": "240"})

TITLE = "\x1b]0;pwned\x07"           # OSC 0: retitle the window
CLEAR = "\x1b[2J"                    # CSI: clear the screen
CLIPBOARD = "\x1b]52;c;aGVsbG8=\x07"  # OSC 52: write the clipboard
C1_CSI = "\x9b31m"                   # the one-character CSI of 8-bit terminals
# Short lines, so that no line of a result card wraps on an 80-column console.
SOURCE = (
    "def wombat_report(path):\n"
    f"    # Wombat {TITLE} report\n"
    f"    # numbat {CLEAR} quoll\n"
    f"    # bilby {CLIPBOARD}\n"
    f"    # quokka {C1_CSI} end\n"
    "    return path\x7f\n"
)
NOTES = f"# Wombat notes {CLEAR}heading\n\nWombat burrows are square.\n"
# "[bold]" and "[red]": rich must not read names as markup either.
EVIL_NAME = f"wombat{TITLE}[bold].py"
SKIPPED = 23


def _no_controls(raw: bytes) -> None:
    """Fail if any byte could start or carry a terminal control sequence."""
    text = raw.decode("utf-8")  # strict: also proves the output is valid UTF-8
    bad = [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f]
    assert not bad, f"control characters reached the terminal: {bad!r}"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, tiny_model_dir):
    # The tree's own folder name carries an escape too: `info` shows the source root.
    root = tmp_path_factory.mktemp("hostile") / f"tree{TITLE}"
    root.mkdir()
    (root / EVIL_NAME).write_text(SOURCE)
    (root / "notes.md").write_text(NOTES)
    for i in range(SKIPPED):  # over --max-file-bytes: skipped, with a reason
        (root / f"big{CLEAR}[red]{i:02d}.txt").write_text("wombat " * 200)
    result = runner.invoke(app, ["index", str(root), "--model", str(tiny_model_dir), "-q",
                                 "--max-file-bytes", "1000"])
    assert result.exit_code == 0, result.output
    return root


def test_search_table_neutralises_escapes_in_names_and_snippets(hostile):
    result = runner.invoke(app, ["search", "wombat report numbat quoll", "--index",
                                 str(hostile / ".retriever"), "--mode", "lexical"])
    assert result.exit_code == 0, result.output
    _no_controls(result.stdout_bytes)
    shown = result.stdout
    assert "wombat\\x1b]0;pwned\\x07[bold].py:1  " in shown      # the path, visibly escaped
    assert "lines 1-6" in shown
    for line in ("# Wombat \\x1b]0;pwned\\x07 report", "# numbat \\x1b[2J quoll",
                 "# bilby \\x1b]52;c;aGVsbG8=\\x07", "# quokka \\x9b31m end",
                 "return path\\x7f"):
        assert line in shown
    assert "Wombat notes \\x1b[2Jheading" in shown         # a Markdown symbol


def test_search_json_keeps_exact_text_but_no_raw_control_bytes(hostile):
    result = runner.invoke(app, ["search", "wombat report numbat quoll", "--index",
                                 str(hostile / ".retriever"), "--mode", "lexical", "--json"])
    assert result.exit_code == 0, result.output
    _no_controls(result.stdout_bytes.replace(b"\n", b""))
    hits = json.loads(result.stdout)["hits"]
    by_path = {hit["path"]: hit for hit in hits}
    assert by_path[EVIL_NAME]["text"] == SOURCE.rstrip("\n")


def test_no_results_echoes_the_query_safely(hostile):
    result = runner.invoke(app, ["search", "zzyzx\x1b[5n", "--index",
                                 str(hostile / ".retriever"), "--mode", "lexical"])
    assert result.exit_code == 0, result.output
    _no_controls(result.stdout_bytes)
    assert 'No results for "zzyzx\\x1b[5n".' in result.stdout


def test_info_neutralises_escapes_and_lists_skipped_files(hostile):
    result = runner.invoke(app, ["info", str(hostile)])
    assert result.exit_code == 0, result.output
    _no_controls(result.stdout_bytes)
    assert "tree\\x1b]0;pwned\\x07" in result.stdout
    assert f"skipped={SKIPPED}" in result.stdout
    info = json.loads(runner.invoke(app, ["info", str(hostile), "--json"]).stdout)
    listed = [line for line in result.stdout.splitlines() if "big\\x1b[2J[red]" in line]
    assert len(listed) == 20 and all(":" in line for line in listed)  # path: reason
    assert f"... and {SKIPPED - 20} more" in result.stdout
    assert sorted(entry["path"] for entry in info["skipped"]) == sorted(
        f"big{CLEAR}[red]{i:02d}.txt" for i in range(SKIPPED))


def test_error_messages_neutralise_escapes(hostile):
    missing = hostile.parent / f"nowhere{CLEAR}"
    result = runner.invoke(app, ["search", "x", "--index", str(missing)])
    assert result.exit_code == 1
    _no_controls(result.stderr_bytes)
    assert "nowhere\\x1b[2J" in result.stderr and "no index" in result.stderr.lower()
    usage = runner.invoke(app, ["search", "x", "--index", str(hostile / ".retriever"),
                                f"--bogus{TITLE}"])
    assert usage.exit_code == 2
    _no_controls(usage.stderr_bytes)
    assert "--bogus\\x1b]0;pwned\\x07" in usage.stderr


def _retriever(*args: str | bytes) -> subprocess.CompletedProcess:
    # Real argv bytes: what a shell passes for a query that is not valid UTF-8.
    command = [sys.executable, "-c", "from retriever.cli.app import main; main()", *args]
    return subprocess.run(command, capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8:surrogateescape"})


def test_invalid_utf8_query_gives_valid_utf8_output(hostile):
    index_dir = os.fsencode(hostile / ".retriever")
    as_json = _retriever(b"search", b"wombat \xff", b"--index", index_dir, b"--json",
                         b"--mode", b"lexical")
    assert as_json.returncode == 0, as_json.stderr.decode(errors="replace")
    payload = json.loads(as_json.stdout.decode("utf-8"))  # strict UTF-8
    assert payload["query"] == "wombat \ufffd"
    assert payload["hits"], "the valid part of the query still finds the file"
    human = _retriever(b"search", b"\xff", b"--index", index_dir, b"--mode", b"lexical")
    assert human.returncode == 0, human.stderr.decode(errors="replace")
    _no_controls(human.stdout)
    assert 'No results for "\\xff"' in human.stdout.decode("utf-8")
