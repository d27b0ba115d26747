"""The encoder's batch_workers option: it reaches the fast path's runner, and changes neither
the vectors nor the fingerprint (a Ray build's actors set it to their share of a host)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoders.fast_encode import fast_runner
from encoders.sentence import SentenceTransformerEncoder
from encoders.sentence_fast import runner_for
from retriever.errors import InputError

pytestmark = pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs /dev/shm")

TEXTS = [f"def helper_{i}(values):\n    return sum(v * {i} for v in values)\n" * (1 + i % 4)
         for i in range(24)]


def test_batch_workers_reach_the_runner_and_keep_vectors_and_fingerprint(tiny_model_dir):
    plain = SentenceTransformerEncoder(model=str(tiny_model_dir))
    pooled = SentenceTransformerEncoder(model=str(tiny_model_dir), batch_workers=1)
    assert pooled.fingerprint() == plain.fingerprint()
    assert pooled.stat_signature() == plain.stat_signature()
    assert "batch_workers" not in plain.config()
    assert pooled.config() == {**plain.config(), "batch_workers": 1}
    assert SentenceTransformerEncoder(**pooled.config()).batch_workers == 1
    np.testing.assert_allclose(pooled.encode_documents(TEXTS), plain.encode_documents(TEXTS),
                               atol=1e-5)
    model = pooled._model()  # the one loaded model both encoders share
    runner = runner_for(model, precision="auto", batch_tokens=None, batch_workers=1)
    assert runner.batch_workers == 1 and runner.pool_asked  # a set number serves every call
    assert runner is runner_for(model, precision="auto", batch_tokens=None, batch_workers=1)
    # Left unset, the fast path's own runner (no batch workers on the CPU).
    default = runner_for(model, precision="auto", batch_tokens=None, batch_workers=None)
    assert default is fast_runner(model) and default.batch_workers == 0


@pytest.mark.parametrize("bad", [-1, True, 1.5, "2"])
def test_bad_batch_workers_are_refused(tiny_model_dir, bad):
    with pytest.raises(InputError, match="batch_workers must be an integer >= 0"):
        SentenceTransformerEncoder(model=str(tiny_model_dir), batch_workers=bad)
