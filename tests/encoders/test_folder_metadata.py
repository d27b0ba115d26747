"""dim and fingerprint come from the model folder's files, without loading the model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from encoders import model_loads
from encoders.sentence import SentenceTransformerEncoder

ROOT = Path(__file__).resolve().parents[2]

_DESCRIBE = """
import json, sys
from encoders import model_loads
from encoders.sentence import SentenceTransformerEncoder
encoders = [SentenceTransformerEncoder(**json.loads(arg)) for arg in sys.argv[1:]]
print(json.dumps({
    "dims": [encoder.dim for encoder in encoders],
    "fingerprints": [encoder.fingerprint() for encoder in encoders],
    "loads": model_loads(),
    "imported": [name for name in ("torch", "transformers", "sentence_transformers")
                 if name in sys.modules],
}))
"""


def _describe_in_fresh_process(*configs: dict) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", _DESCRIBE, *map(json.dumps, configs)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_fresh_encoder_describes_itself_without_loading(
    default_encoder, tiny_model_dir, projected_model_dir
):
    configs = [{}, {"model": str(tiny_model_dir)}, {"model": str(projected_model_dir)}]
    described = _describe_in_fresh_process(*configs)
    assert described["loads"] == 0
    assert described["imported"] == []
    # The same answers as encoders whose models are loaded and encoding in this process.
    loaded = [default_encoder] + [SentenceTransformerEncoder(**c) for c in configs[1:]]
    widths = [encoder.encode_queries(["a query"]).shape[1] for encoder in loaded]
    assert described["dims"] == widths == [384, 32, 20]
    assert described["fingerprints"] == [encoder.fingerprint() for encoder in loaded]


def test_projection_and_matryoshka_cut_are_read_from_files(projected_model_dir):
    before = model_loads()
    encoder = SentenceTransformerEncoder(model=str(projected_model_dir))
    assert encoder.dim == 20
    assert model_loads() == before
    vectors = encoder.encode_documents(["def add(a, b): return a + b", "hello"])
    assert vectors.shape == (2, 20)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_unusual_folder_falls_back_to_loading_for_dim(tiny_model_dir, tmp_path):
    plain = tmp_path / "plain-transformers"
    shutil.copytree(tiny_model_dir, plain)
    (plain / "modules.json").unlink()  # a bare transformers folder: mean pooling is implied
    before = model_loads()
    assert SentenceTransformerEncoder(model=str(plain)).dim == 32
    assert model_loads() == before + 1


def test_fingerprint_follows_file_contents(tiny_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    encoder = SentenceTransformerEncoder(model=str(folder))
    original = encoder.fingerprint()
    assert encoder.fingerprint() == original

    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one weight changes; the size stays the same
    weights.write_bytes(bytes(data))
    changed = encoder.fingerprint()
    assert changed != original
    assert SentenceTransformerEncoder(model=str(folder)).fingerprint() == changed

    # The new weights are a new model: encoding loads them rather than reusing the old load.
    before = model_loads()
    encoder.encode_queries(["x"])
    assert model_loads() == before + 1

    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    assert encoder.fingerprint() == original  # content, not timestamps
    os.utime(weights)
    assert encoder.fingerprint() == original

    (folder / "added_tokens.json").write_text("{}")
    assert encoder.fingerprint() not in (original, changed)
