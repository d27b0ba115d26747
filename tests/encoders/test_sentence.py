from __future__ import annotations

import numpy as np
import pytest

from encoders import Encoder
from encoders.sentence import SentenceTransformerEncoder
from retriever.errors import InputError, MissingDependencyError


def test_default_encoder_outputs_unit_float32_rows(default_encoder):
    vectors = default_encoder.encode_documents(["def add(a, b): return a + b", "hello", ""])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert isinstance(default_encoder, Encoder)


def test_related_texts_are_closer(default_encoder):
    query = default_encoder.encode_queries(["sort a list of numbers"])[0]
    docs = default_encoder.encode_documents(
        ["def sort_numbers(xs): return sorted(xs)", "def send_email(to, body): smtp.send(to, body)"]
    )
    assert docs[0] @ query > docs[1] @ query


def test_order_of_batch_does_not_change_vectors(default_encoder):
    texts = ["short", "a much longer text " * 20, "medium length text here"]
    forward = default_encoder.encode_documents(texts)
    backward = default_encoder.encode_documents(texts[::-1])[::-1]
    np.testing.assert_allclose(forward, backward, atol=1e-5)


def test_progress_callback_counts_every_text(tiny_model_dir):
    encoder = SentenceTransformerEncoder(model=str(tiny_model_dir), batch_size=2)
    seen = []
    encoder.encode_documents([f"text {i}" for i in range(40)], progress=seen.append)
    assert sum(seen) == 40


def test_config_round_trip_and_fingerprint(tiny_model_dir):
    encoder = SentenceTransformerEncoder(model=str(tiny_model_dir), query_prompt="query: ")
    rebuilt = SentenceTransformerEncoder(**encoder.config())
    assert rebuilt.config() == encoder.config()
    assert rebuilt.fingerprint() == encoder.fingerprint()
    # Batch size and device do not change vectors, so they do not change the fingerprint.
    assert SentenceTransformerEncoder(
        model=str(tiny_model_dir), query_prompt="query: ", batch_size=7
    ).fingerprint() == encoder.fingerprint()
    assert SentenceTransformerEncoder(model=str(tiny_model_dir)).fingerprint() != (
        encoder.fingerprint()
    )


def test_prompts_change_query_vectors(tiny_model_dir):
    plain = SentenceTransformerEncoder(model=str(tiny_model_dir))
    prompted = SentenceTransformerEncoder(model=str(tiny_model_dir), query_prompt="query: ")
    a = plain.encode_queries(["find the parser"])
    b = prompted.encode_queries(["find the parser"])
    assert not np.allclose(a, b)
    np.testing.assert_allclose(plain.encode_documents(["x y"]), prompted.encode_documents(["x y"]))


def test_different_weights_have_different_fingerprints(default_encoder, tiny_model_dir):
    tiny = SentenceTransformerEncoder(model=str(tiny_model_dir))
    assert tiny.fingerprint() != default_encoder.fingerprint()
    assert tiny.dim == 32


def test_unknown_model_fails_fast_with_a_clear_message(tmp_path):
    with pytest.raises(MissingDependencyError, match="neither a local folder nor a packaged"):
        SentenceTransformerEncoder(model="some-org/some-model-on-a-hub")


def test_bad_settings_are_rejected():
    with pytest.raises(InputError):
        SentenceTransformerEncoder(batch_size=0)
