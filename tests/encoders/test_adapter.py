"""LoRA adapters merged without peft match peft's own merge, and bad adapters are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from encoders.adapter import merge_weights, merged_folder
from encoders.folder import content_digests
from retriever.errors import InputError


def _adapter(model_dir: Path, out: Path, base_name: str, seed: int = 3) -> Path:
    """A peft LoRA adapter over ``model_dir`` with random (non-zero) B matrices, saved the
    way encoders.train saves one, plus the adapter manifest."""
    peft = pytest.importorskip("peft")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(seed)
    model = SentenceTransformer(str(model_dir), device="cpu")
    backbone = peft.get_peft_model(model[0].auto_model, peft.LoraConfig(
        r=4, lora_alpha=8, target_modules="all-linear"))
    with torch.no_grad():
        for name, param in backbone.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    backbone.save_pretrained(str(out))
    (out / "adapter.json").write_text(json.dumps({
        "format": "dense-retriever-adapter", "version": 1, "base": base_name,
        "base_fingerprint": content_digests(model_dir, [b""])[0]}))
    return out, backbone


def test_merged_folder_encodes_as_peft_merge_and_unload(tiny_model_dir, tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer

    import encoders.sentence as sentence

    monkeypatch.setattr(sentence, "resolve_model", lambda name: Path(tiny_model_dir))
    folder, backbone = _adapter(tiny_model_dir, tmp_path / "adapter", "tiny")
    merged = merged_folder(folder, cache_dir=tmp_path / "cache")
    texts = ["parse a duration string", "def add(a, b):\n    return a + b"]
    reference = SentenceTransformer(str(tiny_model_dir), device="cpu")
    reference[0].model = backbone.merge_and_unload()
    ours = SentenceTransformer(str(merged), device="cpu")
    plain = SentenceTransformer(str(tiny_model_dir), device="cpu").encode(texts)
    expected, got = reference.encode(texts), ours.encode(texts)
    assert np.abs(got - expected).max() < 1e-5
    assert np.abs(got - plain).max() > 1e-3  # the adapter changed something
    # The second call reuses the merged folder.
    assert merged_folder(folder, cache_dir=tmp_path / "cache") == merged


def test_an_adapter_for_another_base_is_refused(tiny_model_dir, tmp_path, monkeypatch):
    import encoders.sentence as sentence

    monkeypatch.setattr(sentence, "resolve_model", lambda name: Path(tiny_model_dir))
    folder, _ = _adapter(tiny_model_dir, tmp_path / "adapter", "tiny")
    manifest = json.loads((folder / "adapter.json").read_text())
    manifest["base_fingerprint"] = "0" * 32
    (folder / "adapter.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="trained on a tiny whose files digest"):
        merged_folder(folder, cache_dir=tmp_path / "cache")


def test_a_folder_without_adapter_files_is_refused(tmp_path):
    with pytest.raises(InputError, match="not a LoRA adapter folder.*adapter.json"):
        merged_folder(tmp_path, cache_dir=tmp_path / "cache")


def test_mismatched_matrices_name_the_weight():
    base = {"encoder.dense.weight": np.zeros((4, 3), np.float32)}
    adapter = {"base_model.model.encoder.other.lora_A.weight": np.ones((2, 3), np.float32),
               "base_model.model.encoder.other.lora_B.weight": np.ones((4, 2), np.float32)}
    with pytest.raises(InputError, match="encoder.other.weight"):
        merge_weights(base, {"r": 2, "lora_alpha": 4}, adapter)
    adapter = {k.replace("other", "dense"): v for k, v in adapter.items()}
    merged = merge_weights(base, {"r": 2, "lora_alpha": 4}, adapter)
    assert np.allclose(merged["encoder.dense.weight"], 2 * 2.0)  # alpha/r * B @ A = 2 * 2
