"""Calibrated relevance: inside [0, 1], monotone in the score, every fitted calibrator."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retriever.errors import InputError
from retriever.ranking.calibration import (
    CONFIDENT,
    FEATURES,
    FITTED,
    FITTED_BY,
    Calibrator,
    calibrator_for,
    check_min_score,
    features,
)

KEYS = sorted(FITTED)
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
unit = st.floats(min_value=0.0, max_value=1.0)


def _calibrators():
    return [calibrator_for(*key.split("/")[:2], cosine=not key.endswith("/nocos"))
            for key in KEYS]


def test_every_mode_and_scale_has_a_fitted_calibrator():
    wanted = {f"{mode}/{scale}{suffix}" for mode in ("dense", "hybrid")
              for scale in ("raw", "priors", "any") for suffix in ("", "/nocos")}
    wanted |= {"lexical/raw/nocos", "lexical/priors/nocos", "lexical/any/nocos",
               "hybrid/fused", "hybrid/fused/nocos"}
    assert wanted <= set(FITTED)
    assert 0.0 < CONFIDENT < 1.0
    assert FITTED_BY.startswith("python benchmarks/calibrate.py fit")
    for key in KEYS:
        assert FITTED[key]["hits"] > 1000


@settings(max_examples=60, deadline=None)
@given(scores=st.lists(finite, min_size=1, max_size=12), cover=unit, cosine=unit,
       symbol=st.booleans(), terms=st.integers(0, 40))
def test_relevance_is_a_probability_for_any_scores(scores, cover, cosine, symbol, terms):
    for calibrator in _calibrators():
        values = calibrator(sorted(scores, reverse=True), coverage=[cover] * len(scores),
                            terms=terms, symbol=symbol, cosine=[cosine] * len(scores))
        assert values.shape == (len(scores),)
        assert np.all((values >= 0.0) & (values <= 1.0))


@settings(max_examples=60, deadline=None)
@given(low=finite, rise=st.floats(min_value=0.0, max_value=1e3), gap=unit, cover=unit,
       rank=st.integers(0, 50), cosine=unit)
def test_relevance_never_falls_when_the_score_rises(low, rise, gap, cover, rank, cosine):
    for key in KEYS:
        entry = FITTED[key]
        calibrator = Calibrator(weights=entry["weights"], bias=entry["bias"])
        # The other features held fixed, only the score moves.
        table = {name: np.array([0.0, 0.0]) for name in FEATURES}
        table.update(score=np.array([low, low + rise]), gap=np.array([gap, gap]),
                     rank=np.log1p(np.array([rank, rank], dtype=float)),
                     coverage=np.array([cover, cover]), cosine=np.array([cosine, cosine]))
        before, after = calibrator.relevance(table)
        assert after >= before


@settings(max_examples=40, deadline=None)
@given(score=finite, fall=st.floats(min_value=0.0, max_value=1e3), cover=unit,
       rank=st.integers(0, 50), step=st.integers(0, 50))
def test_relevance_never_rises_further_below_the_top_or_down_the_ranking(score, fall, cover,
                                                                        rank, step):
    for key in KEYS:
        entry = FITTED[key]
        calibrator = Calibrator(weights=entry["weights"], bias=entry["bias"])
        table = {name: np.array([0.0, 0.0]) for name in FEATURES}
        table.update(score=np.array([score, score]), gap=np.array([0.0, fall]),
                     rank=np.log1p(np.array([rank, rank + step], dtype=float)),
                     coverage=np.array([cover, cover]))
        higher, lower = calibrator.relevance(table)
        assert lower <= higher


def test_more_of_the_query_in_a_hit_never_lowers_its_relevance():
    calibrator = calibrator_for("lexical", "priors")
    low, high = (calibrator([1.0], coverage=[c], terms=4, symbol=False)[0] for c in (0.0, 1.0))
    assert high > low


def test_a_raw_bm25_score_is_read_in_log_scale():
    table = features([30.0, 3.0], coverage=[1, 1], terms=2, symbol=False, log_score=True)
    assert table["score"][0] == pytest.approx(np.log1p(30.0))
    assert table["gap"][1] == pytest.approx(np.log1p(30.0) - np.log1p(3.0))


def test_negative_weight_on_a_monotone_feature_is_refused():
    with pytest.raises(InputError, match="must be >= 0"):
        Calibrator(weights={"score": -1.0}, bias=0.0)
    with pytest.raises(InputError, match="must be <= 0"):
        Calibrator(weights={"gap": 0.5}, bias=0.0)
    with pytest.raises(InputError, match="Unknown calibration features"):
        Calibrator(weights={"shoe_size": 1.0}, bias=0.0)


@pytest.mark.parametrize("value", [-0.1, 1.01, float("nan"), "0.5", True])
def test_min_score_outside_the_unit_interval_is_refused(value):
    with pytest.raises(InputError, match=r"min_score is a relevance in \[0, 1\]"):
        check_min_score(value)


def test_min_score_inside_is_kept():
    assert check_min_score(None) is None
    assert check_min_score(0) == 0.0 and check_min_score(1) == 1.0
