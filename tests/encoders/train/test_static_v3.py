"""The shipped code-static-minilm-v3: loads by name offline, fits the size limit, and spells an
identifier as the words of a query (its tokenizer cuts at case changes)."""

from __future__ import annotations

import numpy as np

from encoders.static import StaticEncoder, resolve_static_model


def test_v3_loads_by_name_within_the_size_limit():
    folder = resolve_static_model("code-static-minilm-v3")
    assert all(path.stat().st_size <= 16_000_000 for path in folder.iterdir())
    encoder = StaticEncoder(model="code-static-minilm-v3")
    vectors = encoder.encode_documents(["def parse_config(path): ...", ""])
    assert encoder.dim == 256 and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[0]), 1.0, rtol=1e-5)
    assert not vectors[1].any()


def test_v3_gives_an_identifier_and_its_words_the_same_vector():
    encoder = StaticEncoder(model="code-static-minilm-v3")
    camel, words, other = encoder.encode_queries(
        ["getUserByID", "get user by id", "getuserbyid"])
    assert float(camel @ words) > 0.9999
    assert float(camel @ other) < 0.99  # a lowercase compound is not split: another spelling
