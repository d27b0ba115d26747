"""The static model's recipe on a CPU: mine, build a vocabulary, distil and train a tiny table
from a tiny random-weight teacher, save a Model2Vec folder, load it in StaticEncoder."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest

from encoders.static import StaticEncoder
from encoders.train import __main__ as cli
from encoders.train import data
from encoders.train.vocab import Vocabulary, build_vocabulary

torch = pytest.importorskip("torch")

VERBS = ["read", "write", "parse", "load", "send", "close", "open", "sort", "merge", "split"]
NOUNS = ["file", "socket", "config", "table", "image", "queue", "token", "buffer", "graph", "tree"]


def _dev(name: str) -> bool:
    # The miner's own rule: a package goes to dev when its hashed name falls in bucket 0.
    return int(hashlib.blake2b(name.encode(), digest_size=4).hexdigest(), 16) % 25 == 0


def _write_packages(root: Path) -> None:
    """Two packages (one lands in dev) of seeded documented functions."""
    rng = random.Random(3)
    dev_name = next(f"pkg{i}" for i in range(1000) if _dev(f"pkg{i}"))
    for name in ("trainpkg", dev_name):
        lines = []
        for i in range(60):
            verb, noun = rng.choice(VERBS), rng.choice(NOUNS)
            lines.append(
                f"def {verb}{noun.title()}{i}(handle, size={i}):\n"
                f'    """{verb.title()} the {noun} number {i} from the handle."""\n'
                f"    {noun}_data = handle.{verb}_{noun}(size)\n"
                f"    result = [{noun}_data] * {i % 7 + 1}\n"
                f"    return result\n"
            )
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text("\n\n".join(lines), encoding="utf-8")


@pytest.fixture(scope="module")
def mined(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mined")
    _write_packages(root / "site")
    data.mine(root / "data", packages_dirs=[root / "site"])
    return root / "data"


def test_vocabulary_adds_frequent_code_words_and_keeps_the_specials(tiny_model_dir, mined):
    texts = [row["code"] for row in data.read_jsonl(mined / "pairs.jsonl.xz")]
    teacher = tiny_model_dir.parent / "bert" / "tokenizer.json"
    vocab = build_vocabulary(teacher, texts, size=40000, min_count=3)
    spec = vocab.tokenizer["model"]["vocab"]
    added = [s for s in vocab.sources if isinstance(s, str)]
    assert "[UNK]" in spec and "[CLS]" in spec and not any(t.startswith("[unused") for t in spec)
    assert len(spec) == len(vocab) <= 40000
    assert "handle" in spec  # a teacher token kept
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(json.dumps(vocab.tokenizer))
    words = {word for word in tokenizer.encode("readFile0 return result",
                                               add_special_tokens=False).tokens}
    assert "readfile0" in words or "return" in words
    assert added, "no code word reached min_count"
    assert all(word == word.lower() for word in added)


def test_the_recipe_lowers_its_loss_and_saves_a_folder_the_encoder_loads(
    tiny_model_dir, mined, tmp_path
):
    teacher = tiny_model_dir.parent / "bert"
    vocab_dir, out = tmp_path / "vocab", tmp_path / "models"
    assert cli.main(["vocab", "--data", str(mined), "--teacher", str(teacher),
                     "--size", "40000", "--min-count", "3", "--out", str(vocab_dir)]) == 0
    variant = {"name": "tiny", "dim": 16, "epochs": 4, "batch_pairs": 16, "batch_texts": 32,
               "lr": 0.02}
    assert cli.main(["train", "--data", str(mined), "--vocab", str(vocab_dir), "--teacher",
                     str(teacher), "--out", str(out), "--variant", json.dumps(variant)]) == 0
    training = json.loads((out / "tiny" / "training.json").read_text())
    losses = [row["loss"] for row in training["history"] if row["loss"] is not None]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert training["data"]["hash"] == data.data_hash(mined)
    assert training["seed"] == 0 and "python -m encoders.train train" in training["command"]
    encoder = StaticEncoder(model=str(out / "tiny"))
    vectors = encoder.encode_documents(["def readFile(handle): return handle.read()", ""])
    assert encoder.dim == 16 and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[0]), 1.0, rtol=1e-5)
    assert not vectors[1].any()
    assert len(Vocabulary.load(vocab_dir)) == encoder._model().table.shape[0]


def test_int8_rows_keep_the_float_table_s_directions(tmp_path):
    from encoders.train.distill import save_model2vec

    spec = json.loads((Path(__file__).resolve().parents[1] / "data" / "static_model" /
                       "tokenizer.json").read_text())
    vocab = Vocabulary(spec, list(range(len(spec["model"]["vocab"]))))
    table = np.random.default_rng(0).normal(size=(len(vocab), 8)).astype(np.float32)
    table *= np.linspace(0.01, 3, len(vocab), dtype=np.float32)[:, None]
    save_model2vec(tmp_path / "m", table, vocab, {"recipe": {"sif": 1e-3}})
    loaded = StaticEncoder(model=str(tmp_path / "m"), normalize=False)._model().table
    cosines = (loaded * table).sum(1) / np.linalg.norm(loaded, axis=1) / np.linalg.norm(table,
                                                                                      axis=1)
    assert cosines.min() > 0.999
    np.testing.assert_allclose(np.linalg.norm(loaded, axis=1), np.linalg.norm(table, axis=1),
                               rtol=0.01)
