"""Training data from files, and bad input: every mistake gets an error that names it."""

from __future__ import annotations

import json
import lzma

import numpy as np
import pytest
from safetensors.torch import load_file

from encoders.train.common import TrainSettings
from encoders.train.contrastive import train_contrastive
from encoders.train.exclusions import ExcludedSourceError
from encoders.train.inputs import load_pairs, load_texts
from retriever.errors import InputError, MissingDependencyError

QUICK = TrainSettings(max_steps=2, batch_size=3, mini_batch_size=3)


def _jsonl(path, rows, *, xz: bool = False):
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if xz:
        path.write_bytes(lzma.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_pairs_files_give_training_and_dev_rows(tmp_path, toy_pairs):
    rows = [{"query": q, "code": c, "split": "dev" if i == 0 else "train",
             "negatives": ["def other(): pass"]} for i, (q, c) in enumerate(toy_pairs)]
    folder = tmp_path / "mined"
    folder.mkdir()
    _jsonl(folder / "pairs.jsonl.xz", rows, xz=True)
    train, dev = load_pairs(folder)
    assert [r[0] for r in train] == [q for q, _ in toy_pairs[1:]]
    assert train[0][2] == ("def other(): pass",)
    assert dev == [(toy_pairs[0][0], toy_pairs[0][1], ("def other(): pass",))]
    # A dev file of its own takes every row of it, whatever the split says.
    dev_file = _jsonl(tmp_path / "dev.jsonl", [{"query": "q", "positive": "p"},
                                               {"query": "r", "positive": "s", "split": "dev"}])
    assert len(load_pairs(folder, dev_file)[1]) == 2
    texts = _jsonl(tmp_path / "chunks.jsonl", [{"text": "a chunk"}, {"text": "another"}])
    assert load_texts(texts) == ["a chunk", "another"]


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"),
    ("", "is empty"),
    ("{not json\n", "not a JSON line"),
    ('[1, 2]\n{"query": "q", "positive": "p"}\n', "row 1 is not a JSON object"),
    ('{"query": "q"}\n{"query": "r", "positive": "p"}\n', "pair 1: query and positive must be"),
    ('{"query": "q", "positive": "p"}\n', "holds 1 pairs"),
    ('{"query": "q", "positive": "p", "negatives": "n"}\n{"query": "r", "positive": "s"}\n',
     "negatives must be a list of strings"),
])
def test_bad_pairs_files_are_named(tmp_path, content, message):
    path = tmp_path / "pairs.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_pairs(path)


def test_a_folder_without_data_and_too_few_texts(tmp_path):
    with pytest.raises(InputError, match="holds no pairs.jsonl.xz or pairs.jsonl"):
        load_pairs(tmp_path)
    with pytest.raises(InputError, match="holds 1 non-empty texts"):
        load_texts(["one", "   "])


def test_benchmark_code_in_the_data_is_refused(tmp_path, toy_pairs):
    rows = [{"query": q, "positive": c, "source": "pkg/mod.py"} for q, c in toy_pairs]
    rows[2]["source"] = "httpx/_client.py"
    with pytest.raises(ExcludedSourceError, match="httpx"):
        load_pairs(_jsonl(tmp_path / "pairs.jsonl", rows))


def test_bad_base_models_and_outputs(tmp_path, toy_pairs, trainable_model_dir):
    with pytest.raises(MissingDependencyError, match="neither a local folder nor a packaged"):
        train_contrastive(toy_pairs, out=tmp_path / "a", base="org/some-hub-model")
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match="not a sentence-transformers folder"):
        train_contrastive(toy_pairs, out=tmp_path / "b", base=str(tmp_path / "plain"))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="is not empty"):
        train_contrastive(toy_pairs, out=busy, base=str(trainable_model_dir))
    with pytest.raises(InputError, match="hard_negatives must be a count"):
        train_contrastive(toy_pairs, out=tmp_path / "c", base=str(trainable_model_dir),
                          settings=QUICK, hard_negatives=-1)


@pytest.mark.parametrize(("field", "value"), [("batch_size", 0), ("lr", 0.0), ("epochs", True),
                                              ("warmup", 2.0), ("seed", "7")])
def test_bad_settings(field, value):
    with pytest.raises(InputError, match=field):
        TrainSettings(**{field: value})


def test_fp16_weights_train_as_float32(trainable_model_dir, toy_pairs, tmp_path):
    from sentence_transformers import SentenceTransformer

    half = tmp_path / "half"
    SentenceTransformer(str(trainable_model_dir), device="cpu").half().save(str(half))
    assert load_file(str(half / "model.safetensors"))[
        "embeddings.word_embeddings.weight"].dtype.itemsize == 2
    result = train_contrastive(toy_pairs, out=tmp_path / "out", base=str(half),
                               settings=TrainSettings(max_steps=3, batch_size=6, lr=1e-3))
    assert np.isfinite(result.losses).all()
    saved = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert {t.dtype.itemsize for t in saved.values()} == {4}


def test_lora_saves_the_adapter_and_a_merged_model(trainable_model_dir, toy_pairs, tmp_path):
    pytest.importorskip("peft")
    out = tmp_path / "lora"
    settings = TrainSettings(max_steps=3, batch_size=6, mini_batch_size=3, lr=1e-2, lora=True,
                             lora_rank=4)
    train_contrastive(toy_pairs, out=out, base=str(trainable_model_dir), settings=settings)
    assert (out / "lora" / "adapter_config.json").is_file()
    base = load_file(str(trainable_model_dir / "model.safetensors"))
    saved = load_file(str(out / "model.safetensors"))
    assert set(saved) == set(base)  # merged: a plain model, no adapter tensors
    changed = {n for n in base if not np.allclose(base[n].numpy(), saved[n].numpy())}
    # LoRA trains the linear layers only; embeddings and layer norms stay as they were.
    assert any("attention" in n for n in changed)
    assert "embeddings.word_embeddings.weight" not in changed


def test_given_negatives_fill_their_column_and_missing_ones_borrow(toy_pairs):
    from encoders.train.contrastive import pair_job
    from encoders.train.inputs import check_pairs

    rows = check_pairs([(q, c, ["def decoy(): pass"] if i == 0 else [])
                        for i, (q, c) in enumerate(toy_pairs)])
    job = pair_job("contrastive", None, None, rows, None, seed=3, hard_negatives=None,
                   options={})
    assert job.identity["options"]["hard_negatives"] == 1
    _, positives, negatives = job.columns(list(range(6)))
    assert negatives[0] == "def decoy(): pass"
    for positive, negative in zip(positives[1:], negatives[1:], strict=True):
        assert negative != positive and negative in positives  # another pair's positive
    assert pair_job("contrastive", None, None, rows, None, seed=3, hard_negatives=0,
                    options={}).columns([0, 1])[2:] == []
