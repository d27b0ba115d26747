"""The semble repository-benchmark scorer against hand-computed NDCG@10.

Fixture (tests/data/eval/semble): repos.json gives demo (python, benchmark_root "pkg") and
other (go). Ranked chunks, paths relative to the repository root:

demo/0 "how are retries backed off": targets retry.py (file), http.py:10-20 (span, secondary),
    missing.py (secondary, not in the index, so n = 2 present targets)
    1 pkg/http.py:1-9     no: the span does not overlap 10-20
    2 pkg/retry.py:1-30   retry.py               -> rank 2
    3 pkg/http.py:15-25   http.py:10-20 overlaps -> rank 3
    4 pkg/retry.py:31-60  same file again, its target is already found
    DCG = 1/log2 3 + 1/log2 4 = 1.130930; IDCG (n = 2) = 1 + 1/log2 3 = 1.630930
    NDCG = 0.693426 (0.530721 if missing.py had wrongly counted in the ideal)
demo/1 "parse the configuration file": target config.py:5-8, given relative to benchmark_root
    (matches pkg/config.py at a "/" boundary)
    1 pkg/config.py:1-4   ends before line 5: no
    2 pkg/config.py:8-12  overlaps at line 8     -> rank 2; NDCG = 1/log2 3 = 0.630930
other/0 "Router": router.go at rank 1 -> 1.0

demo = (0.693426 + 0.630930) / 2 = 0.662178; mean over repositories = (0.662178 + 1) / 2
= 0.831089; per language python 0.662178, go 1.0; per category architecture 0.693426,
semantic 0.630930, symbol 1.0.
"""

from __future__ import annotations

import math

import pytest

from eval.repos import Target, load_repo_benchmark, ndcg_at_k, path_matches, score_repo_benchmark
from retriever.errors import DatasetError

L3, L4 = 1 / math.log2(3), 1 / math.log2(4)
RESULTS = {
    "demo/0": [
        ("pkg/http.py", 1, 9),
        ("pkg/retry.py", 1, 30),
        ("pkg/http.py", 15, 25),
        ("pkg/retry.py", 31, 60),
    ],
    "demo/1": [("pkg/config.py", 1, 4), ("pkg/config.py", 8, 12)],
    "other/0": [("router.go", 1, 10)],
}
INDEXED = {
    "demo": [
        ("pkg/retry.py", 1, 30),
        ("pkg/retry.py", 31, 60),
        ("pkg/http.py", 1, 9),
        ("pkg/http.py", 15, 25),
        ("pkg/config.py", 1, 4),
        ("pkg/config.py", 8, 12),
    ],
    "other": ["router.go"],
}


@pytest.fixture
def queries(data):
    found, specs = load_repo_benchmark(data / "semble" / "annotations")
    assert specs["demo"].benchmark_root == "pkg" and specs["other"].benchmark_root is None
    return found


def test_loader_reads_targets_and_languages(queries):
    assert [q.id for q in queries] == ["demo/0", "demo/1", "other/0"]
    first = queries[0]
    assert first.language == "python" and first.category == "architecture"
    assert first.relevant == (Target("pkg/retry.py"),)
    assert first.secondary == (Target("pkg/http.py", 10, 20), Target("pkg/missing.py"))
    assert queries[2].language == "go" and queries[2].category == "symbol"


def test_hand_computed_ndcg(queries):
    scores = score_repo_benchmark(queries, RESULTS, INDEXED)
    demo0 = (L3 + L4) / (1 + L3)
    assert demo0 == pytest.approx(0.693426, abs=1e-6)
    assert scores.per_query == pytest.approx({"demo/0": demo0, "demo/1": L3, "other/0": 1.0})
    demo = (demo0 + L3) / 2
    assert scores.per_repo == pytest.approx({"demo": demo, "other": 1.0})
    assert scores.mean == pytest.approx((demo + 1) / 2)
    assert scores.mean == pytest.approx(0.831089, abs=1e-6)
    assert scores.by_language == pytest.approx({"go": 1.0, "python": demo})
    assert scores.by_category == pytest.approx(
        {"architecture": demo0, "semantic": L3, "symbol": 1.0}
    )


def test_target_missing_from_index_leaves_the_ideal(queries):
    # If missing.py were indexed the ideal would hold 3 targets and the score would drop.
    indexed = {**INDEXED, "demo": [*INDEXED["demo"], ("pkg/missing.py", 1, 5)]}
    scores = score_repo_benchmark(queries, RESULTS, indexed)
    assert scores.per_query["demo/0"] == pytest.approx((L3 + L4) / (1 + L3 + L4))
    assert scores.per_query["demo/0"] == pytest.approx(0.530721, abs=1e-6)


def test_no_target_in_index_or_no_results_scores_zero_and_counts(queries):
    scores = score_repo_benchmark(queries, {}, INDEXED)
    assert scores.per_query == {"demo/0": 0.0, "demo/1": 0.0, "other/0": 0.0}
    scores = score_repo_benchmark(queries, RESULTS, {})
    assert scores.per_query["other/0"] == 0.0 and scores.mean == 0.0


def test_only_top_k_count(queries):
    scores = score_repo_benchmark(queries, RESULTS, INDEXED, k=2)
    # demo/0: only retry.py at rank 2 is inside the top 2; ideal of min(2, 2) ones.
    assert scores.per_query["demo/0"] == pytest.approx(L3 / (1 + L3))


def test_ndcg_at_k_counts_a_rank_once():
    # Two targets found by the same chunk fill one position, as in semble's _ndcg_at_k.
    assert ndcg_at_k([1, 1], 2) == pytest.approx(1 / (1 + L3))
    assert ndcg_at_k([1, 2], 2) == pytest.approx(1.0)
    assert ndcg_at_k([11], 1) == 0.0
    assert ndcg_at_k([1], 0) == 0.0


def test_path_matches_at_a_slash_boundary():
    assert path_matches("pkg/config.py", "config.py")
    assert path_matches("config.py", "pkg/config.py")
    assert not path_matches("pkg/myconfig.py", "config.py")


def test_malformed_annotations(tmp_path):
    bad = tmp_path / "annotations"
    bad.mkdir()
    (bad / "x.json").write_text('[\n  {"query": "q", "relevant": [42]}\n]\n')
    with pytest.raises(DatasetError, match=r"x\.json: item 0"):
        load_repo_benchmark(bad)
    (bad / "x.json").write_text('[\n  {"query": "q",,}\n]\n')
    with pytest.raises(DatasetError, match=r"x\.json:2: malformed JSON"):
        load_repo_benchmark(bad)
