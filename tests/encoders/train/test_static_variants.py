"""The batched static recipe on a CPU: teacher-sized windows, hard negatives in the InfoNCE
term, and several variants trained from one pass of a tiny random-weight teacher."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from encoders.static import StaticEncoder
from encoders.train.static_data import teacher_windows
from encoders.train.vocab import build_vocabulary
from retriever.errors import InputError

torch = pytest.importorskip("torch")

VERBS = ["read", "write", "parse", "load", "send", "close", "open", "sort"]
NOUNS = ["file", "socket", "config", "table", "image", "queue", "token", "buffer"]


@pytest.fixture(scope="module")
def teacher_dir(tiny_model_dir):
    return tiny_model_dir.parent / "bert"


@pytest.fixture(scope="module")
def plain_tokenizer(teacher_dir):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(teacher_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _code(verb: str, noun: str, i: int) -> str:
    return (f"def {verb}_{noun}_{i}(handle):\n    {noun} = handle.{verb}({i})\n"
            f"    return {noun}\n")


def test_windows_cut_long_texts_into_teacher_sized_spans(plain_tokenizer):
    long_text = " ".join(f"word{i} value{i}" for i in range(200))
    windows = teacher_windows([long_text, "short text", ""], plain_tokenizer, width=50,
                              max_windows=3)
    assert windows[-1] == "short text"  # a short text is its own window; the empty one none
    cut = windows[:-1]
    assert len(cut) == 3
    lengths = [len(plain_tokenizer.encode(w, add_special_tokens=False).ids) for w in cut]
    assert all(40 <= n <= 50 for n in lengths)  # a word's pieces may straddle the cut
    assert long_text.startswith(cut[0])
    # Consecutive and in order: each window starts where the text continues after the last.
    position = 0
    for window in cut:
        found = long_text.index(window, position)
        assert long_text[position:found].strip() == ""
        position = found + len(window)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_windows_refuse_a_width_that_is_not_a_positive_integer(plain_tokenizer, bad):
    with pytest.raises(InputError, match="width"):
        teacher_windows(["some text"], plain_tokenizer, width=bad)


def _toy_tables(pairs: int, dim: int = 8, vocab: int = 40):
    from encoders.train.distill import pad_ids

    rng = np.random.default_rng(0)
    queries = pad_ids([list(rng.integers(1, vocab, 5)) for _ in range(pairs)], 0, 6)
    codes = pad_ids([list(rng.integers(1, vocab, 9)) for _ in range(pairs)], 0, 10)
    table = torch.from_numpy(rng.normal(size=(vocab, dim)).astype(np.float32))
    head = torch.from_numpy(rng.normal(size=(12, dim)).astype(np.float32))
    return table, head, queries, codes


def test_mined_negatives_join_the_denominator_of_the_first_step():
    from encoders.train.distill import Recipe, train_table

    table, head, queries, codes = _toy_tables(8)
    negatives = torch.tensor([(i + 3) % 8 for i in range(8)])
    empty = torch.zeros((0, 4), dtype=torch.int32)
    losses = {}
    for hard in (False, True):
        # One step over every pair, contrastive only: the step's loss is measured before any
        # update, so the two runs see the same table and differ only by the extra columns.
        recipe = Recipe(dim=8, epochs=1, batch_pairs=8, distill_weight=0.0, lr=0.01,
                        hard_negatives=hard)
        _, history = train_table(table, head, pad=0, texts=empty, targets=torch.zeros((0, 12)),
                                 queries=queries, codes=codes, recipe=recipe,
                                 negatives=negatives)
        losses[hard] = history[1]["loss"]
    assert losses[True] > losses[False] > 0


def test_a_recipe_asking_for_negatives_without_them_is_refused():
    from encoders.train.distill import Recipe, train_table

    table, head, queries, codes = _toy_tables(4)
    with pytest.raises(InputError, match="hard negatives"):
        train_table(table, head, pad=0, texts=torch.zeros((0, 4), dtype=torch.int32),
                    targets=torch.zeros((0, 12)), queries=queries, codes=codes,
                    recipe=Recipe(dim=8, epochs=1, hard_negatives=True))


@pytest.fixture(scope="module")
def toy_data(teacher_dir):
    from encoders.train.static_recipe import StaticData

    rng = random.Random(1)
    rows = []
    for i in range(48):
        verb, noun = rng.choice(VERBS), rng.choice(NOUNS)
        rows.append((f"{verb} the {noun}", _code(verb, noun, i)))
    train = [(q, c, (i + 1) % 40) for i, (q, c) in enumerate(rows[:40])]
    chunks = ["\n".join(_code(rng.choice(VERBS), rng.choice(NOUNS), i) for i in range(12))
              for _ in range(6)]
    vocab = build_vocabulary(teacher_dir / "tokenizer.json", chunks + [c for _, c, _ in train],
                             size=40000, min_count=2)
    return StaticData(train=train, dev=rows[40:], chunks=chunks, data_hash="toy"), vocab


def test_variants_train_from_one_teacher_pass_and_load_in_the_encoder(
    teacher_dir, toy_data, tmp_path
):
    from encoders.train.static_recipe import run_variants

    data, vocab = toy_data
    variants = [
        {"name": "plain", "dim": 16, "epochs": 3, "batch_pairs": 16, "batch_texts": 16,
         "lr": 0.02},
        {"name": "negatives", "dim": 8, "epochs": 3, "batch_pairs": 16, "batch_texts": 16,
         "lr": 0.02, "hard_negatives": True, "symmetric": True},
    ]
    rows = []
    results = run_variants(teacher_dir, {"toy": vocab}, data, variants, out=tmp_path,
                           max_length=64, max_windows=2, teacher_info={"name": "tiny"},
                           command="test", log=rows.append)
    assert [r["name"] for r in results] == ["plain", "negatives"]
    teacher_row = next(r for r in rows if r.get("step") == "teacher")
    # Windows: each chunk (12 functions, well over 62 tokens) gives two texts.
    assert teacher_row["texts"] == 2 * len(data.chunks) + 2 * len(data.train)
    for result, dim in zip(results, (16, 8), strict=True):
        training = json.loads((tmp_path / result["name"] / "training.json").read_text())
        losses = [h["loss"] for h in training["history"] if h["loss"] is not None]
        assert len(losses) == 3 and losses[-1] < losses[0]
        assert training["recipe"]["dim"] == dim and training["teacher"]["name"] == "tiny"
        assert training["data"]["distillation_texts"] == teacher_row["texts"]
        encoder = StaticEncoder(model=str(tmp_path / result["name"]))
        vectors = encoder.encode_documents([data.dev[0][1], ""])
        assert encoder.dim == dim
        np.testing.assert_allclose(np.linalg.norm(vectors[0]), 1.0, rtol=1e-5)
        assert not vectors[1].any()


def test_the_budget_stops_later_variants_and_bad_variants_are_refused(
    teacher_dir, toy_data, tmp_path
):
    from encoders.train.static_recipe import run_variants

    data, vocab = toy_data
    small = {"dim": 8, "epochs": 1, "batch_pairs": 16, "batch_texts": 16}
    results = run_variants(teacher_dir, {"toy": vocab}, data,
                           [{"name": "first", **small}, {"name": "second", **small}],
                           out=tmp_path, max_length=64, budget_s=0.0)
    assert [r["name"] for r in results] == ["first"] and not (tmp_path / "second").exists()
    with pytest.raises(InputError, match="unknown recipe fields"):
        run_variants(teacher_dir, {"toy": vocab}, data, [{"name": "x", "dims": 8}],
                     out=tmp_path, max_length=64)
    with pytest.raises(InputError, match="'vocab'"):
        run_variants(teacher_dir, {"toy": vocab}, data, [{"name": "x", "vocab": "other"}],
                     out=tmp_path, max_length=64)
