"""The static (Model2Vec-format) encoder against the tiny committed folder and the shipped model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from encoders.static import (
    DEFAULT_STATIC_MODEL,
    StaticEncoder,
    packaged_static_models,
    resolve_static_model,
)
from retriever.errors import InputError, MissingDependencyError

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURE = DATA / "static_model"
sys.path.insert(0, str(DATA))
from make_static_model import TOKENS  # noqa: E402

ROW = {token: index for index, token in enumerate(TOKENS)}


def _table() -> np.ndarray:
    return load_file(str(FIXTURE / "model.safetensors"))["embeddings"].astype(np.float32)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


@pytest.fixture()
def fixture_copy(tmp_path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(FIXTURE, target)
    return target


def test_vectors_are_normalised_means_of_token_rows() -> None:
    encoder = StaticEncoder(model=str(FIXTURE))
    vectors = encoder.encode_documents(["def get_user(self)", "Parse JSON file", "retry"])
    table = _table()
    tokens = [["def", "get", "_", "user", "(", "self", ")"], ["parse", "json", "file"], ["retry"]]
    expected = np.stack([_unit(table[[ROW[t] for t in row]].mean(0)) for row in tokens])
    assert vectors.shape == (3, 8) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(encoder.encode_queries(["retry"]), vectors[2:], rtol=1e-6)


def test_unknown_tokens_are_dropped_and_empty_texts_give_zero_vectors() -> None:
    encoder = StaticEncoder(model=str(FIXTURE))
    vectors = encoder.encode_documents(["get zzzz", "get", "", "zzzz ☃", "   "])
    np.testing.assert_allclose(vectors[0], vectors[1], rtol=1e-6)
    assert not vectors[2:].any()
    assert encoder.encode_queries([]).shape == (0, 8)


def test_unnormalised_output_is_the_raw_mean() -> None:
    raw = StaticEncoder(model=str(FIXTURE), normalize=False).encode_documents(["back off"])
    table = _table()
    np.testing.assert_allclose(raw[0], table[[ROW["back"], ROW["off"]]].mean(0), rtol=1e-5)


def test_long_texts_are_cut_at_max_tokens_and_batches_do_not_change_vectors() -> None:
    # Cut at 4 tokens (after a cut at 4 x the median token length, 3, of characters).
    short = StaticEncoder(model=str(FIXTURE), max_tokens=4).encode_documents(["a b c x y z"])
    first_four = StaticEncoder(model=str(FIXTURE)).encode_documents(["a b c x"])
    np.testing.assert_allclose(short, first_four, rtol=1e-6)
    texts = ["get user by id " * 200, "read file", "", "set x y z"] * 3
    one = StaticEncoder(model=str(FIXTURE), batch_size=1).encode_documents(texts)
    many = StaticEncoder(model=str(FIXTURE)).encode_documents(texts)
    np.testing.assert_array_equal(one, many)


def test_progress_counts_every_document() -> None:
    seen: list[int] = []
    StaticEncoder(model=str(FIXTURE), batch_size=2).encode_documents(
        ["a", "b", "c"], progress=seen.append)
    assert seen == [2, 1]


def test_config_rebuilds_the_encoder_and_fingerprint_follows_what_changes_vectors() -> None:
    encoder = StaticEncoder(model=str(FIXTURE), max_tokens=64)
    again = StaticEncoder(**encoder.config())
    assert again.config() == encoder.config()
    assert again.fingerprint() == encoder.fingerprint()
    assert StaticEncoder(model=str(FIXTURE), max_tokens=64, batch_size=7).fingerprint() == \
        encoder.fingerprint()
    assert StaticEncoder(model=str(FIXTURE), max_tokens=65).fingerprint() != encoder.fingerprint()
    assert StaticEncoder(model=str(FIXTURE), max_tokens=64, normalize=False).fingerprint() != \
        encoder.fingerprint()


def test_fingerprint_and_signature_change_with_the_table(fixture_copy) -> None:
    before = StaticEncoder(model=str(fixture_copy))
    fingerprint, signature = before.fingerprint(), before.stat_signature()
    assert fingerprint == StaticEncoder(model=str(FIXTURE)).fingerprint()  # content, not path
    table = _table().astype(np.float16)
    table[ROW["user"]] += 1
    save_file({"embeddings": table}, str(fixture_copy / "model.safetensors"))
    after = StaticEncoder(model=str(fixture_copy))
    assert after.stat_signature() != signature
    assert after.fingerprint() != fingerprint
    assert after.encode_documents(["user"])[0] @ before.encode_documents(["def"])[0] != \
        StaticEncoder(model=str(FIXTURE)).encode_documents(["user"])[0] @ \
        StaticEncoder(model=str(FIXTURE)).encode_documents(["def"])[0]


def test_model2vec_weights_and_mapping_tensors_are_applied(fixture_copy) -> None:
    table = _table()
    order = np.random.default_rng(0).permutation(len(table))
    weights = np.linspace(0.5, 2.0, len(table)).astype(np.float32)
    # mapping: token id -> row of the stored table; weights scale each token's row.
    stored = np.empty_like(table)
    stored[order] = table
    save_file({"embeddings": stored, "mapping": order.astype(np.int64), "weights": weights},
              str(fixture_copy / "model.safetensors"))
    raw = StaticEncoder(model=str(fixture_copy), normalize=False).encode_documents(["get user"])
    expected = (table[ROW["get"]] * weights[ROW["get"]] + table[ROW["user"]] *
                weights[ROW["user"]]) / 2
    np.testing.assert_allclose(raw[0], expected, rtol=1e-5)


def test_missing_and_corrupt_folders_give_clear_errors(tmp_path, fixture_copy) -> None:
    with pytest.raises(MissingDependencyError, match="neither a local folder nor a packaged"):
        StaticEncoder(model=str(tmp_path / "nowhere"))
    with pytest.raises(MissingDependencyError, match="packaged"):
        StaticEncoder(model="no-such-static-model")
    (fixture_copy / "tokenizer.json").unlink()
    with pytest.raises(InputError, match="tokenizer.json missing"):
        StaticEncoder(model=str(fixture_copy))
    shutil.copy(FIXTURE / "tokenizer.json", fixture_copy / "tokenizer.json")
    (fixture_copy / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(InputError, match="not a readable Model2Vec table"):
        StaticEncoder(model=str(fixture_copy))


def test_a_bad_tokenizer_or_a_short_table_fails_at_load(fixture_copy) -> None:
    (fixture_copy / "tokenizer.json").write_text("{not json", encoding="utf-8")
    encoder = StaticEncoder(model=str(fixture_copy))
    with pytest.raises(InputError, match="not a tokenizers file"):
        encoder.encode_documents(["get"])
    shutil.copy(FIXTURE / "tokenizer.json", fixture_copy / "tokenizer.json")
    save_file({"embeddings": _table()[:10]}, str(fixture_copy / "model.safetensors"))
    with pytest.raises(InputError, match="only 10 rows"):
        StaticEncoder(model=str(fixture_copy)).encode_documents(["get"])


@pytest.mark.parametrize("settings", [
    {"normalize": "yes"}, {"max_tokens": 0}, {"batch_size": True}, {"model": ""},
])
def test_bad_settings_are_input_errors(settings) -> None:
    with pytest.raises(InputError):
        StaticEncoder(**{"model": str(FIXTURE), **settings})


def test_one_string_instead_of_a_list_is_refused() -> None:
    with pytest.raises(InputError, match="list of texts"):
        StaticEncoder(model=str(FIXTURE)).encode_documents("get user")


def test_encoding_imports_neither_torch_nor_transformers() -> None:
    code = (
        "import sys, json\n"
        "from encoders.static import StaticEncoder\n"
        f"e = StaticEncoder(model={str(FIXTURE)!r})\n"
        "e.encode_documents(['def get_user(self)']); e.fingerprint()\n"
        "s = StaticEncoder(); s.encode_queries(['read a file'])\n"
        "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'sentence_transformers')"
        " if m in sys.modules)))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout) == []


def test_the_shipped_model_loads_by_name_and_ranks_code_by_meaning() -> None:
    assert DEFAULT_STATIC_MODEL in packaged_static_models()
    encoder = StaticEncoder()
    assert resolve_static_model(DEFAULT_STATIC_MODEL).name == DEFAULT_STATIC_MODEL
    docs = [
        "def load_config(path):\n    with open(path) as handle:\n        return json.load(handle)",
        "def add(a, b):\n    return a + b",
        "def retry(call, attempts=3, delay=0.5):\n    for n in range(attempts):\n"
        "        try:\n            return call()\n        except IOError:\n"
        "            time.sleep(delay * 2 ** n)",
    ]
    queries = ["read settings from a json file", "sum of two numbers",
               "exponential backoff between retries"]
    scores = encoder.encode_queries(queries) @ encoder.encode_documents(docs).T
    assert encoder.dim == 256
    assert list(scores.argmax(axis=1)) == [0, 1, 2]


def test_the_registry_builds_it_by_name() -> None:
    import encoders
    from retriever import registry

    assert encoders.StaticEncoder is StaticEncoder and "StaticEncoder" in encoders.__all__

    if "static" not in registry.available("encoder"):
        pytest.skip("the installed distribution predates the static entry point: pip install -e .")
    encoder = registry.create("encoder", "static", {"model": str(FIXTURE)})
    assert isinstance(encoder, StaticEncoder) and encoder.dim == 8


def test_an_index_built_with_it_answers_dense_queries(repo, tmp_path) -> None:
    import retriever

    index = retriever.index(repo, index_dir=tmp_path / "index", encoder=StaticEncoder())
    # The first stage alone: its scores are the cosines (the default code pipeline's are not).
    hits = index.search("parse a configuration file", k=5, mode="dense", pipeline="plain")
    scores = [hit.score for hit in hits]
    assert hits and scores == sorted(scores, reverse=True) and scores[0] <= 1.0 + 1e-5
    reopened = retriever.open(tmp_path / "index")
    assert reopened.search("parse a configuration file", k=5, mode="dense",
                           pipeline="plain")[0].path == hits[0].path
