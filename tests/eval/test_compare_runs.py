"""benchmarks/compare_runs.py: identical metrics pass, any changed or missing value fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_runs.py"

BASE = {
    "metrics": {"ndcg@10": 0.5, "mrr@10": 0.25},
    "ci": {"ndcg@10": [0.4, 0.6]},
    "per_query": {"ndcg@10": {"q1": 1.0, "q2": 0.0}},
    "cost": {"index_seconds": 3.0, "chunks": 10},
    "build_modes": ["lexical"],
}


def _run(tmp_path, new, *args):
    (tmp_path / "a.json").write_text(json.dumps(BASE))
    (tmp_path / "b.json").write_text(json.dumps(new))
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "a.json"), str(tmp_path / "b.json"), *args],
        capture_output=True, text=True, check=False,
    )


def test_identical_metrics_pass_whatever_the_cost(tmp_path):
    new = json.loads(json.dumps(BASE))
    new["cost"] = {"index_seconds": 9.0, "chunks": 11}
    new["build_modes"] = ["lexical", "dense"]
    done = _run(tmp_path, new)
    assert done.returncode == 0, done.stdout
    assert "identical: 5 values" in done.stdout and "cost.chunks: 10 -> 11" in done.stdout


def test_a_changed_or_missing_value_fails(tmp_path):
    new = json.loads(json.dumps(BASE))
    new["per_query"]["ndcg@10"]["q2"] = 1e-12
    del new["metrics"]["mrr@10"]
    done = _run(tmp_path, new)
    assert done.returncode == 1
    assert "per_query.ndcg@10.q2: 0.0 -> 1e-12" in done.stdout
    assert "metrics.mrr@10: only in the baseline" in done.stdout
    assert _run(tmp_path, new, "--tolerance", "1e-9").returncode == 1  # mrr still missing


def test_part_and_unreadable_files(tmp_path):
    assert _run(tmp_path, BASE, "--part", "metrics").returncode == 0
    assert _run(tmp_path, BASE, "--part", "nothing").returncode == 2
    (tmp_path / "bad.json").write_text("{")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "bad.json"), str(tmp_path / "bad.json")],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 2 and "cannot read" in done.stderr
