"""One query is encoded on the calling thread; its vector is the fast path's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from encoders.fast_encode import fast_runner
from encoders.runtime import capped_threads
from encoders.sentence import SentenceTransformerEncoder

TEXTS = [
    "how are retries backed off",
    "RetryPolicy.backoff",
    "Ünïcödé naïve café — 東京 \t tabs\nand lines",
    "x",
    # Longer than the model's token limit: truncated alike on both paths.
    " ".join(f"word{i} getUserById_{i}" for i in range(400)),
]


@pytest.mark.parametrize("folder", ["tiny_model_dir", "projected_model_dir"])
def test_one_query_alone_equals_the_fast_path(folder, request):
    encoder = SentenceTransformerEncoder(model=str(request.getfixturevalue(folder)),
                                         device="cpu")
    fast = fast_runner(encoder._model(), precision=encoder.precision)
    assert fast is not None
    for text in TEXTS:
        alone = encoder.encode_queries([text])
        assert alone.shape == (1, encoder.dim) and alone.dtype == np.float32
        np.testing.assert_array_equal(alone, _fast_path(encoder, fast, text))


def test_default_model_query_alone_equals_the_fast_path(default_encoder):
    fast = fast_runner(default_encoder._model(), precision=default_encoder.precision)
    for text in TEXTS:
        alone = default_encoder.encode_queries([text])
        np.testing.assert_array_equal(alone, _fast_path(default_encoder, fast, text))
        assert abs(float(np.linalg.norm(alone)) - 1.0) < 1e-5


def _fast_path(encoder, fast, text: str) -> np.ndarray:
    # With the thread count a query gets: the sums of a matrix product split by thread can
    # differ in their last bit, whichever path runs them.
    with capped_threads(encoder.query_threads):
        return encoder._cut(fast.encode([text]))


def test_the_model_key_is_worked_out_once_and_a_cleared_cache_still_reloads(
        tiny_model_dir, monkeypatch):
    import encoders.sentence as sentence
    from encoders.runtime import clear_model_cache, model_loads

    walks = []
    real = sentence.content_digests
    monkeypatch.setattr(sentence, "content_digests",
                        lambda *a, **k: walks.append(a[0]) or real(*a, **k))
    encoder = SentenceTransformerEncoder(model=str(tiny_model_dir), device="cpu")
    first = encoder.encode_queries(["find the parser"])
    for _ in range(5):
        np.testing.assert_array_equal(encoder.encode_queries(["find the parser"]), first)
    assert len(walks) == 1
    clear_model_cache()
    before = model_loads()
    np.testing.assert_array_equal(encoder.encode_queries(["find the parser"]), first)
    assert model_loads() == before + 1
