"""The build hands the encoder the batch it prefers; the index it builds is unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import retriever
from encoders.fast_encode import preferred_batch
from encoders.static import StaticEncoder
from retriever.build import embed_batch


def _preferring(preferred: object) -> StaticEncoder:
    """The real static encoder, stating a batch of its own and recording each call's size
    (instance attributes: the build checks that the encoder's class is registered)."""
    encoder = StaticEncoder()
    encoder.preferred_batch = preferred
    encoder.calls = []
    encode = encoder.encode_documents

    def recorded(texts, **options):
        encoder.calls.append(len(texts))
        return encode(texts, **options)

    encoder.encode_documents = recorded
    return encoder


def _build(repo, index_dir, encoder, cache):
    events: list[tuple[str, int, int]] = []
    index = retriever.index(repo, index_dir=index_dir, encoder=encoder, cache=cache,
                            progress=lambda stage, done, total: events.append((stage, done, total)))
    return index, [e for e in events if e[0] == "embed"]


def test_a_preferred_batch_changes_the_calls_and_nothing_in_the_index(repo, tmp_path):
    plain, small = _preferring(None), _preferring(3)
    base, base_events = _build(repo, tmp_path / "a", plain, False)
    chunks = len(base.chunks())
    assert chunks > 6 and max(plain.calls) == min(chunks, 256) and sum(plain.calls) == chunks
    cache = tmp_path / "cache"
    other, events = _build(repo, tmp_path / "b", small, cache)
    assert max(small.calls) == 3 and sum(small.calls) == chunks
    # Progress still moves after every call, up to the total.
    assert [done for _, done, _ in events] == list(range(3, chunks, 3)) + [chunks]
    assert base_events[-1] == events[-1] == ("embed", chunks, chunks)
    assert [c.id for c in other.chunks()] == [c.id for c in base.chunks()]
    np.testing.assert_array_equal(other.vectors, base.vectors)
    # The cache was filled call by call: a third build embeds nothing.
    again = _preferring(3)
    third, _ = _build(repo, tmp_path / "c", again, cache)
    assert again.calls == [] and third.last_build.cached == chunks


@pytest.mark.parametrize("stated", [None, 0, -3, True, 2.5, "64"])
def test_an_encoder_without_a_usable_preference_gets_the_old_batch(stated):
    class Encoder:
        preferred_batch = stated

    assert embed_batch(Encoder()) == 256
    assert embed_batch(object()) == 256


def test_the_fast_path_prefers_a_whole_window_on_cuda_and_the_old_batch_on_cpu():
    assert preferred_batch("cpu") == preferred_batch(None) == 256
    assert preferred_batch("cuda:0") == preferred_batch("cuda") > 256 * 16
