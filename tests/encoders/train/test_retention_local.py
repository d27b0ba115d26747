"""The retention benchmark's local helpers (benchmarks/retention_local.py): ``compare`` pairs
the same units. (The ITQ and PCA fits it uses are encoders.train.heads', tested with them.)"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
retention_local = pytest.importorskip("retention_local")


def test_compare_pairs_units_and_reports_a_shift_and_no_shift():
    rng = np.random.default_rng(0)
    base = {f"q{i}": float(v) for i, v in enumerate(rng.uniform(0.2, 0.8, 200))}
    better = {q: v + 0.05 + rng.normal(0, 0.01) for q, v in base.items()}
    paired = {"a/f384": {"set": better}, "b/f384": {"set": base},
              "a/codes": {"set": base}, "b/codes": {"set": dict(reversed(base.items()))},
              "b/only": {"set": base}}
    out = retention_local.compare(paired, "a", "b")
    assert sorted(out) == ["a - b (codes)", "a - b (f384)"]  # views both have
    shift = out["a - b (f384)"]["set"]
    assert shift["difference"] == pytest.approx(0.05, abs=0.003)
    assert shift["ci95"][0] < 0.05 < shift["ci95"][1] and shift["p"] < 0.001
    same = out["a - b (codes)"]["set"]  # same scores in another order: paired by unit
    assert same == {"difference": 0.0, "ci95": [0.0, 0.0], "units": 200, "p": 1.0}
