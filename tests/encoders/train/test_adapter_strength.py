"""benchmarks/gpu_code_encoder.at_strength: the base plus a share of the trained LoRA change,
as the shipped half-strength adapters are merged (encoders/adapter.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_code_encoder  # noqa: E402

QUERY = "encoder.layer.0.attention.self.query.weight"


def _trained(tmp_path: Path) -> tuple[Path, Path, dict, dict]:
    draw = np.random.default_rng(0)
    base, trained = tmp_path / "base", tmp_path / "trained"
    (trained / "lora").mkdir(parents=True)
    base.mkdir()
    weights = {QUERY: draw.normal(size=(6, 6)).astype(np.float32),
               "embeddings.word_embeddings.weight": draw.normal(size=(10, 6)).astype(np.float32)}
    save_file(weights, str(base / "model.safetensors"))
    adapter = {f"base_model.model.{QUERY[:-7]}.lora_A.weight":
               draw.normal(size=(2, 6)).astype(np.float32),
               f"base_model.model.{QUERY[:-7]}.lora_B.weight":
               draw.normal(size=(6, 2)).astype(np.float32)}
    save_file(adapter, str(trained / "lora" / "adapter_model.safetensors"))
    (trained / "lora" / "adapter_config.json").write_text(json.dumps({"r": 2, "lora_alpha": 4}))
    (trained / "modules.json").write_text("[]")
    save_file({"x": np.zeros(1, np.float32)}, str(trained / "model.safetensors"))
    return base, trained, weights, adapter


def test_half_strength_adds_half_the_trained_change(tmp_path) -> None:
    base, trained, weights, adapter = _trained(tmp_path)
    folder = gpu_code_encoder.at_strength(trained, base, tmp_path / "half", 0.5)
    merged = load_file(str(folder / "model.safetensors"))
    a, b = adapter.values()
    # lora_alpha / r = 2 at full strength, so 1 at half.
    np.testing.assert_allclose(merged[QUERY], weights[QUERY] + 1.0 * (b @ a), rtol=1e-6)
    np.testing.assert_array_equal(merged["embeddings.word_embeddings.weight"],
                                  weights["embeddings.word_embeddings.weight"])
    assert (folder / "modules.json").is_file() and not (folder / "lora").exists()
    assert gpu_code_encoder.at_strength(trained, base, tmp_path / "full", 1.0) == trained
