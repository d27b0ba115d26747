"""Pooling of the static encoder: exact means, whatever else is in the batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from encoders.static import StaticEncoder

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "static_model"
TEXTS = ["def get_user(self): return self.user", "get get get user", "parse json file",
         "", "zzzz", "retry " * 700, "user.get(json)"]


def test_a_text_s_vector_does_not_depend_on_its_batch() -> None:
    # Slices of the gather end at text boundaries: alone, reversed, in small batches or
    # in one, a text gets the same bits.
    together = StaticEncoder(model=str(FIXTURE)).encode_documents(TEXTS)
    small = StaticEncoder(model=str(FIXTURE), batch_size=2).encode_documents(TEXTS)
    reverse = StaticEncoder(model=str(FIXTURE)).encode_documents(TEXTS[::-1])[::-1]
    alone = np.stack([StaticEncoder(model=str(FIXTURE)).encode_documents([t])[0] for t in TEXTS])
    for other in (small, reverse, alone):
        assert np.array_equal(together, other)


def test_repeated_tokens_weigh_by_their_count() -> None:
    encoder = StaticEncoder(model=str(FIXTURE), normalize=False)
    table = encoder._model().table
    tokenizer = encoder._model().tokenizer
    ids = tokenizer.encode("get get get user", add_special_tokens=False).ids
    expected = table[ids].astype(np.float64).mean(0)
    np.testing.assert_allclose(encoder.encode_documents(["get get get user"])[0], expected,
                               rtol=1e-6, atol=1e-7)
