"""Metrics against pytrec_eval and against hand-computed values on a tiny committed fixture.

Fixture (tests/data/eval/metrics): qrels
    q1: d1=2, d2=1, d3=0      graded relevance
    q2: d4=1
    q3: d5=0                  judged, but no relevant document
    q5: d2=1                  absent from the run
run: q1 d3 3.0, d1 2.0, d2 2.0 (tie), d9 1.0 | q2 d7, d8, d4 | q3 d5, d6 | q4 (not in qrels)

Ties break by doc id descending, so q1 ranks d3 (0), d2 (1), d1 (2), d9 (-).
  q1 nDCG@10 = (1/log2 3 + 2/log2 4) / (2 + 1/log2 3) = 1.630930 / 2.630930 = 0.619906
     (had d1 come first: (2/log2 3 + 1/log2 4) / 2.630930 = 0.669672)
     MRR@10 = 1/2; recall@100 = 2/2; P@10 = 2/10; AP = (1/2 + 2/3) / 2 = 0.583333
  q2 relevant at rank 3: nDCG = (1/log2 4) / 1 = 0.5; MRR = 1/3; recall 1; P@10 0.1; AP 1/3
  q3 and q5 score 0 on everything and count; q4 is ignored: means are over 4 queries.
"""

from __future__ import annotations

import math

import pytest
import pytrec_eval
from hypothesis import given, settings
from hypothesis import strategies as st

from eval.metrics import (
    bootstrap_ci,
    by_category,
    evaluate,
    paired_test,
    ranked,
    read_qrels,
    read_trec,
    write_trec,
)
from retriever.errors import DatasetError, InputError

METRICS = ["ndcg@10", "mrr@10", "recall@100", "map@100", "p@10"]
Q1_NDCG = (1 / math.log2(3) + 2 / math.log2(4)) / (2 + 1 / math.log2(3))
HAND = {
    "ndcg@10": {"q1": Q1_NDCG, "q2": 0.5, "q3": 0.0, "q5": 0.0},
    "mrr@10": {"q1": 0.5, "q2": 1 / 3, "q3": 0.0, "q5": 0.0},
    "recall@100": {"q1": 1.0, "q2": 1.0, "q3": 0.0, "q5": 0.0},
    "map@100": {"q1": (1 / 2 + 2 / 3) / 2, "q2": 1 / 3, "q3": 0.0, "q5": 0.0},
    "p@10": {"q1": 0.2, "q2": 0.1, "q3": 0.0, "q5": 0.0},
}


@pytest.fixture
def fixture(data):
    return read_qrels(data / "metrics" / "qrels.tsv"), read_trec(data / "metrics" / "run.trec")


def test_values_match_hand_computed(fixture):
    qrels, run = fixture
    result = evaluate(qrels, run, METRICS)
    assert Q1_NDCG == pytest.approx(0.619906, abs=1e-6)
    for metric, expected in HAND.items():
        assert result.per_query[metric] == pytest.approx(expected), metric
        assert result.mean[metric] == pytest.approx(sum(expected.values()) / 4), metric
    assert result.mean["ndcg@10"] == pytest.approx(0.279977, abs=1e-6)


def test_values_match_pytrec_eval_directly(fixture):
    qrels, run = fixture
    result = evaluate(qrels, run, ["ndcg@10", "recall@100", "map@100", "p@10", "mrr"])
    measures = {"ndcg_cut.10", "recall.100", "map_cut.100", "P.10", "recip_rank"}
    reference = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    keys = {
        "ndcg@10": "ndcg_cut_10",
        "recall@100": "recall_100",
        "map@100": "map_cut_100",
        "p@10": "P_10",
        "mrr": "recip_rank",
    }
    for ours, theirs in keys.items():
        for qid, values in reference.items():
            assert result.per_query[ours][qid] == pytest.approx(values[theirs])
    # pytrec_eval drops q5 (not in the run) and q4 (not in the qrels); we keep q5 as 0.
    assert set(reference) == {"q1", "q2", "q3"}
    assert set(result.per_query["ndcg@10"]) == {"q1", "q2", "q3", "q5"}


def test_ties_break_by_doc_id_descending(fixture):
    _, run = fixture
    assert [doc for doc, _ in ranked(run["q1"])] == ["d3", "d2", "d1", "d9"]


def test_mrr_at_k_truncates_the_run(fixture):
    qrels, run = fixture
    result = evaluate(qrels, run, ["mrr@2", "mrr"])
    assert result.per_query["mrr@2"]["q2"] == 0.0  # its relevant document is at rank 3
    assert result.per_query["mrr"]["q2"] == pytest.approx(1 / 3)
    assert result.per_query["mrr@2"]["q1"] == pytest.approx(0.5)


def test_unknown_metric_and_empty_qrels_raise():
    with pytest.raises(InputError, match="unknown metric"):
        evaluate({"q": {"d": 1}}, {}, ["bleu@4"])
    with pytest.raises(InputError):
        evaluate({}, {}, ["ndcg@10"])


def test_by_category_averages_each_slice():
    scores = {"a": 1.0, "b": 0.0, "c": 0.5}
    assert by_category(scores, {"a": "x", "b": "x", "c": "y"}) == {"x": 0.5, "y": 0.5}


def test_bootstrap_is_seeded_and_contains_the_mean():
    scores = [0.1, 0.9, 0.4, 0.7, 0.3, 0.8, 0.2, 0.6]
    first = bootstrap_ci(scores, seed=7)
    assert first == bootstrap_ci(scores, seed=7)
    assert first != bootstrap_ci(scores, seed=8)
    low, high = first
    assert low < sum(scores) / len(scores) < high
    assert 0.0 <= low and high <= 1.0


def test_paired_test_identical_and_different_runs():
    a = {f"q{i}": (i % 7) / 7 for i in range(60)}
    assert paired_test(a, dict(a)) == 1.0
    assert paired_test(a, dict(a), method="t") == 1.0
    better = {qid: min(1.0, score + 0.3) for qid, score in a.items()}
    assert paired_test(a, better) < 0.01
    assert paired_test(a, better, method="t") < 0.01
    # Seeded: the same p-value on every call.
    noisy = {qid: score + (0.05 if i % 2 else -0.04) for i, (qid, score) in enumerate(a.items())}
    assert paired_test(a, noisy, seed=3) == paired_test(a, noisy, seed=3)


def test_trec_round_trip_is_exact_and_deterministic(tmp_path, fixture):
    qrels, run = fixture
    path = tmp_path / "run.trec"
    write_trec(run, path, tag="sys")
    assert read_trec(path) == run
    lines = path.read_text().splitlines()
    assert lines[:3] == ["q1 Q0 d3 1 3.0 sys", "q1 Q0 d2 2 2.0 sys", "q1 Q0 d1 3 2.0 sys"]
    write_trec(run, tmp_path / "again.trec", tag="sys")
    assert (tmp_path / "again.trec").read_bytes() == path.read_bytes()
    assert evaluate(qrels, read_trec(path)).mean == evaluate(qrels, run).mean


def test_trec_rejects_spaces_and_bad_lines(tmp_path):
    with pytest.raises(InputError):
        write_trec({"q 1": {"d": 1.0}}, tmp_path / "x.trec")
    bad = tmp_path / "bad.trec"
    bad.write_text("q1 Q0 d1 1 1.0 tag\nq1 Q0 d2 2 tag\n")
    with pytest.raises(DatasetError, match=r"bad\.trec:2"):
        read_trec(bad)


docs = st.sampled_from([f"d{i}" for i in range(8)])
qrels_strategy = st.dictionaries(
    st.sampled_from(["q1", "q2", "q3"]),
    st.dictionaries(docs, st.integers(0, 3), min_size=1),
    min_size=1,
)
# Few distinct scores so that ties are frequent.
run_strategy = st.dictionaries(
    st.sampled_from(["q1", "q2", "q3", "q4"]),
    st.dictionaries(docs, st.sampled_from([0.1, 0.5, 0.5, 1.0])),
)


@settings(max_examples=150, deadline=None)
@given(qrels_strategy, run_strategy)
def test_random_runs_agree_with_pytrec_eval_and_first_hit_rule(qrels, run):
    result = evaluate(qrels, run, ["ndcg@5", "p@5", "recall@5", "mrr@3"])
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.5", "P.5", "recall.5"}).evaluate(
        {qid: docs for qid, docs in run.items() if docs}
    )
    for qid in qrels:
        theirs = reference.get(qid, {"ndcg_cut_5": 0.0, "P_5": 0.0, "recall_5": 0.0})
        assert result.per_query["ndcg@5"][qid] == pytest.approx(theirs["ndcg_cut_5"])
        assert result.per_query["p@5"][qid] == pytest.approx(theirs["P_5"])
        assert result.per_query["recall@5"][qid] == pytest.approx(theirs["recall_5"])
        top = [doc for doc, _ in ranked(run.get(qid, {}))][:3]
        first = next((i for i, d in enumerate(top, 1) if qrels[qid].get(d, 0) > 0), None)
        assert result.per_query["mrr@3"][qid] == pytest.approx(1 / first if first else 0.0)
