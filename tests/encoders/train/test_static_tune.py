"""CPU fine-tuning of a static table (encoders.train.static_tune) on tiny random tables."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import numpy as np
import pytest

from encoders.static import StaticEncoder
from encoders.train.exclusions import ExcludedSourceError
from encoders.train.static_tune import (
    TuneRecipe,
    corpus_sif,
    package_batches,
    package_metrics,
    tune_table,
)
from encoders.train.static_tune_run import load_pairs, load_table, save_table, token_rows
from retriever.errors import InputError

FIXTURE = Path(__file__).resolve().parents[2] / "data" / "static_model"


def _task(seed: int = 0, per_package: int = 12, packages: int = 3, vocab: int = 96):
    """Pairs whose query token and code token are different rows of a random table: the
    untrained table cannot match them; every code also holds its package's own token."""
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(vocab, 8)).astype(np.float32)
    queries, codes, names = [], [], []
    for p in range(packages):
        for i in range(per_package):
            pair = p * per_package + i
            queries.append([2 * pair])
            codes.append([2 * pair + 1, vocab - 1 - p, vocab - 1 - p])
            names.append(f"pkg{p}")
    return table, queries, codes, names


def test_batches_hold_one_package_each_and_cover_its_pairs():
    names = ["a"] * 10 + ["b"] * 3 + ["c"] * 7
    recipe = TuneRecipe(batch_pairs=4, min_batch=3)
    batches = package_batches(names, recipe, np.random.default_rng(0))
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(20))  # every pair once ("b" has exactly 3)
    for batch in batches:
        assert len({names[i] for i in batch}) == 1
        assert 3 <= len(batch) <= 4
    small = package_batches(names, TuneRecipe(batch_pairs=4, min_batch=4),
                            np.random.default_rng(0))
    assert not {names[i] for b in small for i in b} & {"b"}  # 3 pairs: too few negatives


def test_corpus_sif_weighs_tokens_every_code_holds_least():
    codes = [[1, 5], [2, 5], [3, 5, 5]]
    weights = corpus_sif(codes, ["p"] * 3, 8, 0.01)["p"]
    assert weights[5] < weights[1] == weights[2]
    assert weights[0] == pytest.approx(1.0)  # a token the package never uses
    assert np.all((weights > 0) & (weights <= 1))


@pytest.mark.parametrize("sif", [0.0, 0.05])
def test_tuning_learns_pairs_the_start_table_cannot_match(sif):
    table, queries, codes, names = _task()
    before = package_metrics(table_tensor(table), queries, codes, names, sif)
    recipe = TuneRecipe(epochs=30, batch_pairs=12, lr=0.05, anchor=0.1, corpus_sif=sif)
    tuned, history = tune_table(table, queries=queries, codes=codes, packages=names,
                                dev=lambda t: package_metrics(t, queries, codes, names, sif),
                                recipe=recipe)
    after = package_metrics(table_tensor(tuned), queries, codes, names, sif)
    assert after["dev_package_ndcg@10"] > before["dev_package_ndcg@10"] + 0.2
    assert history[0]["dev_package_ndcg@10"] == before["dev_package_ndcg@10"]
    assert len(history) == 31
    # Sparse updates: rows no text uses stay exactly as they were.
    used = {t for row in queries + codes for t in row}
    unused = [i for i in range(len(table)) if i not in used]
    np.testing.assert_array_equal(tuned[unused], table[unused])


def test_anchor_keeps_vectors_near_the_start():
    table, queries, codes, names = _task(seed=1)

    def drift(anchor: float) -> float:
        recipe = TuneRecipe(epochs=5, batch_pairs=12, lr=0.05, anchor=anchor)
        _, history = tune_table(table, queries=queries, codes=codes, packages=names,
                                recipe=recipe)
        return history[-1]["drift"]

    assert drift(50.0) < drift(0.0)


def test_zero_epochs_returns_the_start_table():
    table, queries, codes, names = _task()
    tuned, history = tune_table(table, queries=queries, codes=codes, packages=names,
                                recipe=TuneRecipe(epochs=0))
    np.testing.assert_array_equal(tuned, table)
    assert [row["epoch"] for row in history] == [0]


def test_bad_input_is_refused():
    table, queries, codes, names = _task()
    with pytest.raises(InputError, match="one length"):
        tune_table(table, queries=queries, codes=codes[:-1], packages=names)
    with pytest.raises(InputError, match="known token"):
        tune_table(table, queries=[[]] + queries[1:], codes=codes, packages=names)
    with pytest.raises(InputError, match="min_batch"):
        tune_table(table, queries=queries, codes=codes, packages=names,
                   recipe=TuneRecipe(epochs=1, min_batch=100))


def test_saved_folder_pools_like_the_tuned_table(tmp_path):
    table, tokenizer = load_table(FIXTURE)
    tuned = table + np.random.default_rng(3).normal(scale=0.1, size=table.shape)
    out = tmp_path / "tuned"
    save_table(out, tuned.astype(np.float32), FIXTURE, {"recipe": "test"})
    assert (out / "tokenizer.json").read_bytes() == (FIXTURE / "tokenizer.json").read_bytes()
    text = "def get user ( self ) : return x"
    (ids,) = token_rows(tokenizer, [text])
    expected = tuned[ids].sum(0)
    got = StaticEncoder(model=str(out)).encode_documents([text])[0]
    np.testing.assert_allclose(got, expected / np.linalg.norm(expected), atol=0.02)
    assert json.loads((out / "training.json").read_text())["recipe"] == "test"


def test_token_rows_drop_unknown_tokens():
    _, tokenizer = load_table(FIXTURE)
    unk = tokenizer.token_to_id("[UNK]")
    (row,) = token_rows(tokenizer, ["get qqqq user"])
    assert unk not in row and len(row) == 2


def _pairs_file(path: Path, sources: list[str]) -> Path:
    with lzma.open(path, "wt", encoding="utf-8") as handle:
        for i, source in enumerate(sources):
            handle.write(json.dumps({"query": "get user", "code": "def get", "source": source,
                                     "split": "dev" if i == 0 else "train"}) + "\n")
    return path


def test_pairs_from_a_benchmark_repository_are_refused(tmp_path):
    fine = load_pairs(_pairs_file(tmp_path / "ok.jsonl.xz", ["left/a.py", "right/b.py"]))
    assert len(fine["train"]) == 1 and len(fine["dev"]) == 1
    with pytest.raises(ExcludedSourceError, match="requests"):
        load_pairs(_pairs_file(tmp_path / "bad.jsonl.xz", ["left/a.py", "requests/api.py"]))
    with pytest.raises(InputError, match="dev"):
        load_pairs(_only_train(tmp_path / "train.jsonl.xz"))


def _only_train(path: Path) -> Path:
    with lzma.open(path, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"query": "q", "code": "c", "source": "left/a.py",
                                 "split": "train"}) + "\n")
    return path


def table_tensor(table: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32))

