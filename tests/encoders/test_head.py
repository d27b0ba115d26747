"""Fitted linear heads: the fits, the file, and the encoder that applies one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from encoders.head import read_head, write_head
from encoders.sentence import SentenceTransformerEncoder
from encoders.train.heads import fit_heads, itq, pca
from retriever.errors import InputError

WORDS = ("parse", "read", "write", "sort", "merge", "hash", "split", "join", "load", "send")


def _pairs(path: Path, count: int = 24) -> Path:
    rows = [{"query": f"{WORDS[i % 10]} the {WORDS[(i * 3) % 10]} list {i}",
             "code": f"def {WORDS[i % 10]}_{i}(items):\n    return sorted(items)[{i}]\n",
             "source": "toy", "split": "dev" if i >= count - 2 else "train"}
            for i in range(count)]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    return path


def _correlated(n: int = 400, d: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) @ rng.normal(size=(d, d))).astype(np.float32)


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
    mean, rotation = itq(vectors.astype(np.float32), iterations=30)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(16), atol=1e-4)
    np.testing.assert_allclose(mean, vectors.mean(0), atol=1e-4)
    fitted = _quantization_error(vectors, mean, rotation)
    assert fitted < 0.9 * _quantization_error(vectors, mean, np.eye(16))
    assert fitted < 0.9 * _quantization_error(vectors, np.zeros(16), np.eye(16))


def test_a_pca_prefix_keeps_more_variance_than_the_raw_prefix():
    rng = np.random.default_rng(5)
    # Most variance in the last raw dims: a raw prefix misses it, the principal axes find it.
    vectors = rng.normal(size=(500, 12)) * np.linspace(0.1, 3, 12)
    axes = pca(vectors)
    np.testing.assert_allclose(axes.T @ axes, np.eye(12), atol=1e-4)
    centred = vectors - vectors.mean(0)
    kept = ((centred @ axes)[:, :4] ** 2).sum()
    assert kept > 0.6 * (centred ** 2).sum() > (centred[:, :4] ** 2).sum()
    variances = ((centred @ axes) ** 2).sum(0)
    assert np.all(np.diff(variances) <= 1e-6 * variances[0])  # falling variance


def test_head_file_round_trip_and_apply(tmp_path):
    vectors = _correlated()
    written = write_head(tmp_path / "pca.npz", mean=vectors.mean(0), matrix=pca(vectors),
                         info={"kind": "pca", "model": "x"})
    read = read_head(tmp_path / "pca.npz")
    assert read.digest == written.digest and read.info == {"kind": "pca", "model": "x"}
    turned = read.apply(vectors[:5])
    assert np.allclose(np.linalg.norm(turned, axis=1), 1.0, atol=1e-5)
    expected = (vectors[:5] - read.mean) @ read.matrix
    assert np.allclose(turned, expected / np.linalg.norm(expected, axis=1, keepdims=True),
                       atol=1e-5)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
    assert (tmp_path / "pca.npz").stat().st_mode & 0o044 == 0o044  # readable by others


@pytest.mark.parametrize("damage", ["garbage", "keys", "shape", "nan", "kind"])
def test_a_broken_head_file_is_refused_by_name(tmp_path, damage):
    path = tmp_path / "head.npz"
    mean, matrix = np.zeros(4, np.float32), np.eye(4, dtype=np.float32)
    info = np.array(json.dumps({"kind": "pca"}))
    if damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    elif damage == "keys":
        np.savez(path, mean=mean, matrix=matrix)
    elif damage == "shape":
        np.savez(path, mean=mean, matrix=np.eye(3, dtype=np.float32), info=info)
    elif damage == "nan":
        np.savez(path, mean=mean * np.nan, matrix=matrix, info=info)
    else:
        np.savez(path, mean=mean, matrix=matrix, info=np.array(json.dumps({"kind": "lsh"})))
    with pytest.raises(InputError, match="head") as caught:
        read_head(path)
    assert str(path) in str(caught.value)


def test_fit_heads_uses_training_rows_and_serves_them_by_name(tiny_model_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    seen = []
    heads = fit_heads(_pairs(tmp_path / "pairs.jsonl"), out=model / "heads", model=str(model),
                      count=100, progress=lambda stage, done, total: seen.append(stage))
    assert set(heads) == {"pca", "itq"}
    assert heads["pca"].info["pairs"] == 22  # the two dev rows are left out
    assert seen[0] == "queries" and seen[-1] == "documents"
    plain = SentenceTransformerEncoder(model=str(model))
    before = plain.fingerprint()
    with_head = SentenceTransformerEncoder(model=str(model), head="pca", dims=8)
    # Head files are not model files: the model's own fingerprint is unchanged by them.
    assert SentenceTransformerEncoder(model=str(model)).fingerprint() == before
    assert with_head.fingerprint() != before and with_head.dim == 8
    texts = ["sort the list", "def merge(a, b):\n    return a + b\n"]
    raw = plain.encode_documents(texts)
    turned = read_head(model / "heads" / "pca.npz").apply(raw)[:, :8]
    expected = turned / np.linalg.norm(turned, axis=1, keepdims=True)
    assert np.allclose(with_head.encode_documents(texts), expected, atol=1e-5)
    assert np.allclose(with_head.encode_queries(texts[:1]), expected[:1], atol=1e-5)
    rebuilt = SentenceTransformerEncoder(**with_head.config())
    assert rebuilt.fingerprint() == with_head.fingerprint()
    assert SentenceTransformerEncoder(model=str(model), head="itq").fingerprint() != \
        with_head.fingerprint()


def test_an_unknown_head_lists_the_shipped_ones(tiny_model_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    fit_heads(_pairs(tmp_path / "pairs.jsonl"), out=model / "heads", kinds=["itq"],
              model=str(model), count=10)
    with pytest.raises(InputError, match=r"No head 'pcaa'.*its shipped heads: itq"):
        SentenceTransformerEncoder(model=str(model), head="pcaa")


def test_a_head_of_another_width_is_refused(tiny_model_dir, tmp_path):
    vectors = _correlated(d=16)
    write_head(tmp_path / "wide.npz", mean=vectors.mean(0), matrix=pca(vectors),
               info={"kind": "pca"})
    with pytest.raises(InputError, match="16-d vectors.*32-d"):
        SentenceTransformerEncoder(model=str(tiny_model_dir), head=str(tmp_path / "wide.npz"))


def test_fit_heads_refuses_an_unknown_kind(tmp_path):
    with pytest.raises(InputError, match="Unknown head kind 'lsh'"):
        fit_heads(_pairs(tmp_path / "pairs.jsonl"), out=tmp_path, kinds=["lsh"], model="x")


def test_kept_vectors_are_reused_only_for_the_same_pairs(tiny_model_dir, tmp_path):
    data, kept = _pairs(tmp_path / "pairs.jsonl"), tmp_path / "kept.npz"
    calls = []
    first = fit_heads(data, out=tmp_path / "a", kinds=["pca"], model=str(tiny_model_dir),
                      count=10, vectors=kept, progress=lambda *a: calls.append(a))
    assert calls and kept.is_file()
    calls.clear()
    again = fit_heads(data, out=tmp_path / "b", kinds=["pca", "itq"],
                      model=str(tiny_model_dir), count=10, vectors=kept,
                      progress=lambda *a: calls.append(a))
    assert not calls  # nothing embedded: the kept vectors were these pairs'
    assert again["pca"].digest == first["pca"].digest
    fit_heads(data, out=tmp_path / "c", kinds=["pca"], model=str(tiny_model_dir), count=12,
              vectors=kept, progress=lambda *a: calls.append(a))
    assert calls  # other pairs: embedded again


def test_a_prefix_head_moves_the_matching_signal_into_its_short_prefixes():
    from encoders.train.heads import train_prefix_head

    # Twelve loud coordinates that differ between a query and its code, four quiet ones that
    # match: PCA puts the loud ones first, so its short prefixes cannot find a query's code.
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(800, 4))
    queries, codes = (np.concatenate([3 * rng.normal(size=(800, 12)),
                                      signal + 0.1 * rng.normal(size=(800, 4))],
                                     1).astype(np.float32) for _ in range(2))
    mean, matrix, info = train_prefix_head(queries, codes, dims=(16, 8, 4), epochs=6,
                                           batch_size=128, lr=0.1)
    assert matrix.shape == (16, 16) and np.allclose(mean, np.concatenate([queries, codes]).mean(0))
    kept = info["dev_mrr"][info["kept_epoch"] - 1]
    assert info["kept_epoch"] >= 1
    assert kept["4"] > 4 * info["dev_mrr_start"]["4"] and kept["4"] > 0.5
