"""The encoding fast path against sentence-transformers' own ``encode`` (differential)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoders.fast_encode import FastEncoder, fast_path_supported, fast_runner
from encoders.sentence import SentenceTransformerEncoder
from retriever.errors import InputError

DATA = Path(__file__).resolve().parents[1] / "data"


def _code_texts() -> list[str]:
    """Windows of the fixture repository's files, plus edge cases: empty, blank-padded,
    non-ASCII, and a text far over the token limit (truncated)."""
    texts = []
    for path in sorted((DATA / "repo").rglob("*")):
        if path.is_file():
            source = path.read_text(encoding="utf-8", errors="replace")
            texts.extend(source[i : i + 700] for i in range(0, len(source), 350))
    return texts + ["", "   padded   ", "x", "naïve Straße 日本語", "token " * 900]


def _reference(model, texts: list[str]) -> np.ndarray:
    return model.encode(texts, batch_size=16, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=False)


@pytest.fixture(scope="module")
def loaded_default(default_encoder):
    return default_encoder._model()


def test_default_model_gives_the_vectors_of_encode(loaded_default):
    texts = _code_texts()
    assert fast_path_supported(loaded_default)
    fast = FastEncoder(loaded_default).encode(texts)
    expected = _reference(loaded_default, texts)
    assert fast.shape == expected.shape == (len(texts), 384)
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, expected, atol=1e-5)


def test_windows_on_a_worker_thread_and_token_buckets_keep_the_input_order(tiny_model_dir):
    encoder = SentenceTransformerEncoder(model=str(tiny_model_dir))
    model = encoder._model()
    rng = np.random.default_rng(3)
    words = " ".join(_code_texts()).split()
    # Mixed lengths (1 to 60 words) in random order, several windows, small batches.
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 60)))) for _ in range(300)]
    seen: list[int] = []
    fast = FastEncoder(model, window=64, batch_tokens=256).encode(texts, seen.append)
    np.testing.assert_allclose(fast, _reference(model, texts), atol=1e-5)
    assert sum(seen) == len(texts) and len(seen) == 5  # one call per window


def test_the_encoder_takes_the_fast_path_and_keeps_its_contract(tiny_model_dir):
    encoder = SentenceTransformerEncoder(model=str(tiny_model_dir), batch_tokens=256)
    texts = _code_texts()[:50]
    via_encoder = encoder.encode_documents(texts)
    runner = fast_runner(encoder._model(), batch_tokens=256)
    assert runner is not None and runner is fast_runner(encoder._model(), batch_tokens=256)
    # Bit for bit the runner's output: the encoder went through it, not through encode.
    np.testing.assert_array_equal(via_encoder, runner.encode(texts))
    np.testing.assert_allclose(via_encoder, _reference(encoder._model(), texts), atol=1e-5)
    rebuilt = SentenceTransformerEncoder(**encoder.config())
    assert rebuilt.config() == encoder.config() and rebuilt.batch_tokens == 256
    # Precision and the token budget round floats at most: not part of the fingerprint.
    assert rebuilt.fingerprint() == SentenceTransformerEncoder(
        model=str(tiny_model_dir), precision="fp16").fingerprint()


def test_matryoshka_cut_applies_on_the_fast_path(tiny_model_dir):
    full = SentenceTransformerEncoder(model=str(tiny_model_dir))
    cut = SentenceTransformerEncoder(model=str(tiny_model_dir), dims=8)
    texts = ["def parse(path): return open(path).read()", "class Session: pass"]
    head = full.encode_documents(texts)[:, :8]
    head /= np.linalg.norm(head, axis=1, keepdims=True)
    np.testing.assert_allclose(cut.encode_documents(texts), head, atol=1e-6)


@pytest.mark.parametrize("bad", [{"precision": "fp8"}, {"batch_tokens": 0},
                                 {"batch_tokens": True}])
def test_bad_fast_path_settings_are_refused(tiny_model_dir, bad):
    with pytest.raises(InputError, match=next(iter(bad))):
        SentenceTransformerEncoder(model=str(tiny_model_dir), **bad)


def test_texts_that_are_not_strings_are_refused(tiny_model_dir):
    encoder = SentenceTransformerEncoder(model=str(tiny_model_dir))
    with pytest.raises(InputError, match="item 2 is a NoneType"):
        encoder.encode_documents(["a", "b", None])
    with pytest.raises(InputError, match="not one string"):
        encoder.encode_queries("find the parser")


def test_an_error_on_the_tokenising_thread_reaches_the_caller(tiny_model_dir):
    model = SentenceTransformerEncoder(model=str(tiny_model_dir))._model()
    texts = ["def f(): pass"] * 40 + [b"bytes are not text"]  # past the encoder's check
    with pytest.raises(TypeError):
        FastEncoder(model, window=8).encode(texts)
    # The thread has stopped and the runner still works.
    assert FastEncoder(model, window=8).encode(texts[:20]).shape == (20, 32)


def test_tokenising_processes_give_the_vectors_of_encode_in_order(tiny_model_dir):
    model = SentenceTransformerEncoder(model=str(tiny_model_dir))._model()
    rng = np.random.default_rng(5)
    words = " ".join(_code_texts()).split()
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 60)))) for _ in range(150)]
    texts += _code_texts()[-10:]  # non-ASCII and over-long texts take the full tokenizer
    fast = FastEncoder(model, window=64, batch_tokens=256, tokenise_workers=2)
    seen: list[int] = []
    try:
        vectors = fast.encode(texts, seen.append)
        workers = list(fast._pool._all)
        # A text that is not a string fails in a worker; the error reaches the caller and
        # the pool goes on with the next call.
        with pytest.raises(TypeError):
            fast.encode(["def f(): pass"] * 10 + [b"bytes are not text"])
        again = fast.encode(texts[:20])
    finally:
        fast.close()
    np.testing.assert_allclose(vectors, _reference(model, texts), atol=1e-5)
    np.testing.assert_allclose(again, vectors[:20], atol=1e-6)  # other batches: rounding
    assert sum(seen) == len(texts) and len(seen) == 3
    assert 1 <= len(workers) <= 2 and all(w.process.poll() is not None for w in workers)


def test_compile_falls_back_to_eager_where_it_cannot_compile(tiny_model_dir, monkeypatch):
    import torch

    model = SentenceTransformerEncoder(model=str(tiny_model_dir))._model()

    def no_compiler(*args, **kwargs):
        raise RuntimeError("no compiler here")

    # A machine without Triton or a C compiler: torch.compile fails on the first call.
    monkeypatch.setattr(torch, "compile", no_compiler)
    texts = ["def f(): pass", "class A: x = 1", "import os"] + _code_texts()[:5]
    fast = FastEncoder(model, compile=True)
    vectors = fast.encode(texts)
    assert fast._call is fast.forward_model
    np.testing.assert_allclose(vectors, _reference(model, texts), atol=1e-5)
    # One text: a one-row batch, doubled for the compiled graph and cut back.
    np.testing.assert_allclose(fast.encode(texts[:1]), vectors[:1], atol=1e-6)


def test_runners_are_kept_per_batch_workers_too(tiny_model_dir):
    model = SentenceTransformerEncoder(model=str(tiny_model_dir))._model()
    plain = fast_runner(model)
    pooled = fast_runner(model, batch_workers=1)
    try:
        # Two encoders differing only in batch_workers used to share one runner.
        assert pooled is not plain and pooled is fast_runner(model, batch_workers=1)
        assert (plain.batch_workers, pooled.batch_workers) == (0, 1)
        assert fast_runner(model, batch_workers=0) is not plain  # asked for, not the default
    finally:
        pooled.close()
