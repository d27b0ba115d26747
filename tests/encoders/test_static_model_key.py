"""A static encoder works out its shared-model key once: later encodes stat no file, and a
cleared model cache still reloads the table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import encoders.static as static
from encoders import clear_model_cache, model_loads
from encoders.static import StaticEncoder

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "static_model"


def test_the_key_is_worked_out_once_per_encoder(monkeypatch):
    encoder = StaticEncoder(model=str(FIXTURE))
    first = encoder.encode_queries(["back off"])
    calls = []
    real = static.stat_digest
    monkeypatch.setattr(static, "stat_digest", lambda *a: calls.append(a) or real(*a))
    again = encoder.encode_queries(["back off"])
    np.testing.assert_array_equal(first, again)
    assert calls == []
    # A new encoder of the same folder works its key out again, and shares the loaded table.
    before = model_loads()
    StaticEncoder(model=str(FIXTURE)).encode_queries(["back off"])
    assert len(calls) == 1 and model_loads() == before


def test_a_cleared_cache_reloads_the_table():
    encoder = StaticEncoder(model=str(FIXTURE))
    first = encoder.encode_queries(["retry policy"])
    clear_model_cache()
    before = model_loads()
    np.testing.assert_array_equal(encoder.encode_queries(["retry policy"]), first)
    assert model_loads() == before + 1
