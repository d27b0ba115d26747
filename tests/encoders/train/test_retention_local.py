"""The retention benchmark's local helpers (benchmarks/retention_local.py): ITQ's rotation
quantizes better than the plain signs it starts from, and ``compare`` pairs the same units."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
retention_local = pytest.importorskip("retention_local")


def _quantization_error(vectors: np.ndarray, mean: np.ndarray, rotation: np.ndarray) -> float:
    moved = (vectors - mean) @ rotation
    codes = np.where(moved > 0, 1.0, -1.0)
    # Each code's best scale: how far the vectors are from some multiple of their signs.
    scale = (moved * codes).sum(1, keepdims=True) / codes.shape[1]
    return float(((moved - scale * codes) ** 2).sum())


def test_itq_is_a_rotation_that_quantizes_better_than_plain_signs():
    rng = np.random.default_rng(3)
    # Anisotropic, off-centre data: a few directions carry most of the variance.
    vectors = (rng.normal(size=(600, 16)) * np.linspace(3, 0.2, 16)) @ np.linalg.qr(
        rng.normal(size=(16, 16)))[0] + 0.5
    mean, rotation = retention_local.itq(vectors.astype(np.float32), iterations=30)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(16), atol=1e-4)
    np.testing.assert_allclose(mean, vectors.mean(0), atol=1e-4)
    fitted = _quantization_error(vectors, mean, rotation)
    assert fitted < 0.9 * _quantization_error(vectors, mean, np.eye(16))
    assert fitted < 0.9 * _quantization_error(vectors, np.zeros(16), np.eye(16))


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


def test_a_pca_prefix_keeps_more_variance_than_the_raw_prefix():
    rng = np.random.default_rng(5)
    # Most variance in the last raw dims: a raw prefix misses it, the principal axes find it.
    vectors = rng.normal(size=(500, 12)) * np.linspace(0.1, 3, 12)
    axes = retention_local.pca(vectors)
    np.testing.assert_allclose(axes.T @ axes, np.eye(12), atol=1e-4)
    centred = vectors - vectors.mean(0)
    kept = ((centred @ axes)[:, :4] ** 2).sum()
    assert kept > 0.6 * (centred ** 2).sum() > (centred[:, :4] ** 2).sum()
    variances = ((centred @ axes) ** 2).sum(0)
    assert np.all(np.diff(variances) <= 1e-6 * variances[0])  # falling variance
