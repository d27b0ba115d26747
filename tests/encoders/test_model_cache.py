"""One model load per process, and the query-time torch thread cap."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from encoders import clear_model_cache, model_loads
from encoders.runtime import capped_threads
from encoders.sentence import SentenceTransformerEncoder
from retriever.errors import InputError


def test_encoders_with_the_same_weights_share_one_load(tiny_model_dir):
    clear_model_cache()
    before = model_loads()
    plain = SentenceTransformerEncoder(model=str(tiny_model_dir))
    prompted = SentenceTransformerEncoder(model=str(tiny_model_dir), query_prompt="query: ")
    rebuilt = SentenceTransformerEncoder(**plain.config())
    plain.encode_queries(["find the parser"])
    prompted.encode_queries(["find the parser"])
    rebuilt.encode_documents(["def parse(text): ..."])
    assert model_loads() - before == 1
    # The token limit is set on the loaded model, so another limit is another load.
    SentenceTransformerEncoder(model=str(tiny_model_dir), max_length=16).encode_queries(["x"])
    assert model_loads() - before == 2


def test_concurrent_first_uses_load_once(tiny_model_dir):
    clear_model_cache()
    before = model_loads()
    start = threading.Barrier(4)
    results: list[np.ndarray] = []

    def worker() -> None:
        encoder = SentenceTransformerEncoder(model=str(tiny_model_dir))
        start.wait()
        results.append(encoder.encode_documents(["a shared model"]))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert model_loads() - before == 1
    for vectors in results[1:]:
        np.testing.assert_allclose(vectors, results[0], atol=1e-6)


def test_cleared_cache_reloads_the_same_vectors(default_encoder):
    text = ["how are retries backed off"]
    first = default_encoder.encode_queries(text)
    clear_model_cache()
    before = model_loads()
    again = SentenceTransformerEncoder().encode_queries(text)
    assert model_loads() - before == 1
    np.testing.assert_allclose(again, first, atol=1e-6)
    default_encoder.encode_queries(text)  # the fixture's encoder shares the fresh load
    assert model_loads() - before == 1


def test_capped_threads_restores_the_setting_even_on_error():
    original = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        with capped_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 3
        with pytest.raises(RuntimeError, match="boom"), capped_threads(2):
            assert torch.get_num_threads() == 2
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 3
        with capped_threads(8):  # a cap never raises the thread count
            assert torch.get_num_threads() == 3
        with capped_threads(None):
            assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(original)


def test_query_thread_cap_restores_torch_and_keeps_vectors(default_encoder):
    uncapped = SentenceTransformerEncoder(query_threads=None)
    original = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        capped_vectors = default_encoder.encode_queries(["sort a list", "open a socket"])
        assert torch.get_num_threads() == 3
        many = default_encoder.encode_queries([f"query {i}" for i in range(40)])  # > batch
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(original)
    assert many.shape == (40, 384)
    np.testing.assert_allclose(
        capped_vectors, uncapped.encode_queries(["sort a list", "open a socket"]), atol=1e-5
    )
    # Threads do not change vectors: same fingerprint, but the config rebuilds the setting.
    assert uncapped.fingerprint() == default_encoder.fingerprint()
    assert default_encoder.config()["query_threads"] == 1
    assert SentenceTransformerEncoder(**uncapped.config()).query_threads is None


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_bad_query_threads_are_rejected(bad):
    with pytest.raises(InputError, match="query_threads"):
        SentenceTransformerEncoder(query_threads=bad)


def test_the_batch_a_build_hands_over_follows_the_device(tiny_model_dir):
    from encoders.fast_encode import preferred_batch

    clear_model_cache()
    before = model_loads()
    on_cpu = SentenceTransformerEncoder(model=str(tiny_model_dir), device="cpu")
    on_gpu = SentenceTransformerEncoder(model=str(tiny_model_dir), device="cuda:0")
    assert on_cpu.preferred_batch == preferred_batch("cpu") == 256
    assert on_gpu.preferred_batch == preferred_batch("cuda") > on_cpu.preferred_batch
    assert model_loads() == before  # asking loads nothing
