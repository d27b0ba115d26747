"""The reranker recipe on CPU with a tiny random-weight BERT: the loss falls, the LoRA deltas
merge into exactly the model that trained, and the output loads through ``load``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from encoders.train.reranker import (
    ADAPTER,
    MANIFEST,
    RerankSettings,
    add_lora,
    load_model,
    train_reranker,
)
from retriever import rerankers
from retriever.errors import InputError
from tests.rerankers.conftest import toy_groups, toy_rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert_dir):
    rows = toy_groups(100)
    out = tmp_path_factory.mktemp("reranker") / "out"
    settings = RerankSettings(epochs=3, batch_size=8, negatives=3, lr=3e-3, max_length=32,
                              rank=4, alpha=8.0, dropout=0.0, device="cpu")
    manifest = train_reranker(rows[:80], out=out, base=str(tiny_bert_dir), settings=settings,
                              dev=rows[80:])
    return out, manifest, rows


def test_the_listwise_loss_falls_and_dev_improves(trained):
    _, manifest, _ = trained
    record = manifest["training"]
    assert record["steps"] == 3 * (80 // 8)
    assert record["loss"]["last_tenth_mean"] < record["loss"]["first_tenth_mean"] - 0.05
    assert record["dev"]["trained"]["mrr"] > record["dev"]["base"]["mrr"] + 0.05


def test_the_artifact_is_small_and_describes_itself(trained):
    out, manifest, _ = trained
    assert json.loads((out / MANIFEST).read_text())["lora"] == manifest["lora"]
    names = set(load_file(str(out / ADAPTER)))
    assert any(n.startswith("lora.") and n.endswith(".A") for n in names)
    assert {"head.classifier.weight", "head.classifier.bias"} <= names
    # Only deltas and the head: no full weight matrix of the base.
    assert not any("word_embeddings" in n for n in names)


def test_merged_weights_score_as_the_unmerged_model(trained, tiny_bert_dir):
    out, manifest, mined = trained
    merged, tokenizer, _ = load_model(out, base=str(tiny_bert_dir))
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(str(tiny_bert_dir), num_labels=1)
    wrapped = add_lora(model, manifest["lora"]["rank"], manifest["lora"]["alpha"])
    tensors = load_file(str(out / ADAPTER))
    with torch.no_grad():
        for name, wrapper in wrapped.items():
            wrapper.A.copy_(tensors[f"lora.{name}.A"])
            wrapper.B.copy_(tensors[f"lora.{name}.B"])
        for name, parameter in model.named_parameters():
            if f"head.{name}" in tensors:
                parameter.copy_(tensors[f"head.{name}"])
    model.eval()
    query, positive, negatives = mined[0]
    batch = tokenizer([query] * 4, [positive, *negatives], return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = model(**batch).logits[:, 0].numpy()
        got = merged(**batch).logits[:, 0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert tensors[next(n for n in tensors if n.endswith(".B"))].abs().sum() > 0


def test_the_output_loads_through_load_and_ranks_the_positive_first(trained, tiny_bert_dir):
    out, _, mined = trained
    reranker = rerankers.load(str(out), base=str(tiny_bert_dir))
    assert reranker.config()["model"] == str(out)
    first = 0
    held = mined[80:]
    for query, positive, negatives in held:
        scores = reranker.score(query, [positive, *negatives])
        assert scores.shape == (4,) and scores.dtype == np.float32
        first += int(np.argmax(scores) == 0)
    assert first >= 0.8 * len(held)  # chance is 1 in 4


def test_a_base_other_than_the_trained_one_is_refused(trained, tiny_cross_encoder_dir):
    out, _, _ = trained
    with pytest.raises(InputError, match="fingerprint"):
        rerankers.load(str(out), base=str(tiny_cross_encoder_dir)).score("q", ["t"])


def test_mined_negatives_are_bm25_neighbours_not_the_positive():
    rows = toy_rows(60)
    rows.append((rows[0][0] + " again", rows[0][1] + "\n"))  # a near-duplicate of row 0's code
    mined = rerankers.mine_negatives(rows, count=3)
    assert len(mined) == len(rows)
    for query, positive, negatives in mined:
        assert positive not in negatives
        # BM25 neighbours share a word with the query (a random pick mostly would not).
        words = set(query.split()) - {"the", "again"}
        assert any(words & set(n.replace("_", " ").split()) for n in negatives)
    assert rows[-1][1] not in mined[0][2] and rows[0][1] not in mined[-1][2]


def test_bad_settings_say_what_is_wrong(tmp_path, tiny_bert_dir):
    with pytest.raises(InputError, match="negatives"):
        RerankSettings(negatives=0)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(InputError, match="new or empty"):
        train_reranker(toy_rows(4), out=tmp_path / "full", base=str(tiny_bert_dir))
