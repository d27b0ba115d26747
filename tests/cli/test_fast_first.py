"""`retriever search` on a tree with no index builds the fast tier first and says how to get
the transformer's; `retriever index --tier full` adds it; search then uses the best tier."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from retriever.cli.app import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "sentence_transformers")


def _search_json(*args: str) -> dict:
    result = runner.invoke(app, ["search", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_search_on_a_new_tree_builds_the_fast_tier_and_full_adds_the_transformer(
    repo, tiny_model_dir
):
    first = _search_json("debounce typing", str(repo), "-k", "3")
    assert first["tier"] == "fast" and first["mode"] == "hybrid"
    assert first["hits"][0]["path"] == "js/debounce.js"
    assert "--tier full" in first["hint"] and str(repo) in first["hint"]

    built = runner.invoke(app, ["index", str(repo), "--tier", "full", "--model",
                                str(tiny_model_dir), "-q"])
    assert built.exit_code == 0, built.output
    after = _search_json("debounce typing", str(repo), "-k", "3")
    assert after["tier"] == "dense" and "hint" not in after
    # The refresh kept both tiers: nothing to rebuild.
    again = runner.invoke(app, ["index", str(repo), "-q"])
    assert again.exit_code == 0 and "up to date" in again.output


def test_search_keeps_the_tier_of_an_existing_index(repo, tiny_model_dir):
    built = runner.invoke(app, ["index", str(repo), "--model", str(tiny_model_dir), "-q"])
    assert built.exit_code == 0, built.output
    payload = _search_json("least recently used cache", str(repo), "-k", "2")
    assert payload["tier"] == "dense" and "hint" not in payload


def test_the_hint_goes_to_stderr_and_quiet_drops_it(repo):
    shown = runner.invoke(app, ["search", "debounce typing", str(repo), "--no-snippet"])
    assert shown.exit_code == 0, shown.output
    assert "--tier full" in shown.stderr and "--tier full" not in shown.stdout
    quiet = runner.invoke(app, ["search", "debounce typing", str(repo), "-q", "--no-snippet"])
    assert quiet.exit_code == 0 and "--tier full" not in quiet.stderr
    # `retriever index PATH` keeps the fast tier and says how to add the transformer's.
    kept = runner.invoke(app, ["index", str(repo)])
    assert kept.exit_code == 0 and "up to date" in kept.stdout
    assert "--tier full" in kept.stderr


def test_the_fast_path_imports_no_transformer_stack(repo):
    # The CLI itself, in a fresh process: build the fast tier, answer, then list what the
    # process imported. torch alone costs about a second of a cold start.
    code = (
        "import json, sys\n"
        "from retriever.cli.app import main\n"
        f"sys.argv = ['retriever', 'search', 'debounce typing', {str(repo)!r}, '--json']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert json.loads(done.stdout)["tier"] == "fast"
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []
