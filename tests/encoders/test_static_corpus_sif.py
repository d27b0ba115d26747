"""The static encoder's corpus SIF weighting: counts, binding, fingerprints, pooling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoders.static import StaticEncoder
from retriever.errors import InputError

STATIC = str(Path(__file__).resolve().parents[1] / "data" / "static_model")
CORPUS = ["def parse(self, text): return self.tokens(text)",
          "class Reader: def read(self): return self.stream.read()",
          "self.cache = {}  # self everywhere",
          "retry with exponential backoff"]


def test_counts_are_the_token_ids_it_encodes_with():
    encoder = StaticEncoder(model=STATIC, corpus_sif=0.005)
    flat, lengths = encoder.token_ids(CORPUS)
    assert len(lengths) == len(CORPUS) and lengths.sum() == len(flat)
    counts = encoder.count_tokens(CORPUS)
    assert counts.dtype == np.int64 and len(counts) == encoder.table_rows
    assert counts.sum() == len(flat)
    assert np.array_equal(counts, np.bincount(flat, minlength=encoder.table_rows))
    # Counts over parts add up to the counts of the whole.
    assert np.array_equal(encoder.count_tokens(CORPUS[:2]) + encoder.count_tokens(CORPUS[2:]),
                          counts)


def test_the_fingerprint_covers_the_counts_and_not_the_object():
    encoder = StaticEncoder(model=STATIC, corpus_sif=0.005)
    counts = encoder.count_tokens(CORPUS)
    bound = encoder.with_counts(counts)
    again = StaticEncoder(**bound.config()).with_counts(counts.copy())
    assert bound.fingerprint() == again.fingerprint()
    assert bound.stat_signature() == again.stat_signature()
    other = encoder.with_counts(encoder.count_tokens(CORPUS[:1]))
    assert other.fingerprint() != bound.fingerprint()
    assert encoder.fingerprint() != bound.fingerprint()
    assert StaticEncoder(model=STATIC, corpus_sif=0.01).with_counts(counts).fingerprint() \
        != bound.fingerprint()
    # Without the weighting nothing changed: older indexes keep their fingerprint.
    plain = StaticEncoder(model=STATIC)
    assert "corpus_sif" not in plain.config() and not plain.wants_corpus
    assert plain.fingerprint() == StaticEncoder(model=STATIC, corpus_sif=0).fingerprint()


def test_a_token_common_in_the_corpus_weighs_less():
    encoder = StaticEncoder(model=STATIC, corpus_sif=0.005)
    # "self" fills the corpus; "json" is in none of its texts.
    bound = encoder.with_counts(encoder.count_tokens(CORPUS * 5 + ["self self self"] * 50))
    plain = StaticEncoder(model=STATIC)
    common, rare = plain.encode_queries(["self"])[0], plain.encode_queries(["json"])[0]
    assert rare.any() and common.any()
    mixed_plain = plain.encode_queries(["self json"])[0]
    mixed_bound = bound.encode_queries(["self json"])[0]
    assert mixed_bound @ rare > mixed_plain @ rare
    assert mixed_bound @ common < mixed_plain @ common
    # A corpus that never uses a token leaves it at full weight: a one-token text keeps its
    # direction whatever its weight.
    assert np.allclose(bound.encode_queries(["json"])[0], rare, atol=1e-6)


def test_pooling_from_kept_ids_equals_encoding_the_texts():
    encoder = StaticEncoder(model=STATIC, corpus_sif=0.005, batch_size=3)
    bound = encoder.with_counts(encoder.count_tokens(CORPUS))
    texts = CORPUS + ["", "zzzz qqqq", CORPUS[0] * 40]
    flat, lengths = bound.token_ids(texts)
    assert np.array_equal(bound.encode_token_ids(flat, lengths), bound.encode_documents(texts))
    assert not bound.encode_documents([""]).any()


def test_unbound_or_misfitting_counts_are_clear_errors():
    encoder = StaticEncoder(model=STATIC, corpus_sif=0.005)
    with pytest.raises(InputError, match="no token counts bound"):
        encoder.encode_queries(["parse"])
    with pytest.raises(InputError, match="non-negative integers"):
        encoder.with_counts(np.ones(3, dtype=np.int64))
    with pytest.raises(InputError, match="non-negative integers"):
        encoder.with_counts(-np.ones(encoder.table_rows, dtype=np.int64))
    with pytest.raises(InputError, match="corpus_sif > 0"):
        StaticEncoder(model=STATIC).with_counts(np.zeros(encoder.table_rows, dtype=np.int64))
    for bad in (-0.1, float("nan"), True, "0.005"):
        with pytest.raises(InputError, match="corpus_sif"):
            StaticEncoder(model=STATIC, corpus_sif=bad)
