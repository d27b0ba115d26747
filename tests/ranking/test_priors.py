"""Each prior as a stage on a tiny lexical index, with hand-computed scores: one case where it
must change the order and one where it must not."""

from __future__ import annotations

import numpy as np
import pytest

import retriever
from retriever.errors import InputError
from retriever.pipeline import Results, Stage, fuse
from retriever.ranking import code_pipeline, preset
from retriever.ranking.context import context_of
from retriever.ranking.fusion import Blend
from retriever.ranking.priors import (
    Definitions,
    FileCoherence,
    FileSaturation,
    Normalize,
    PathPrior,
    PathTerms,
)

FILES = {
    "src/retry_policy.py": "class RetryPolicy:\n    def backoff(self, attempt):\n"
                           "        return 2 ** attempt\n",
    "tests/test_retry_policy.py": "def test_backoff():\n"
                                  "    assert RetryPolicy().backoff(1) == 2\n",
    "src/session.py": "class Session:\n    def send(self, request):\n        return request\n",
    "src/pool.py": "def acquire(pool):\n    return pool.pop()\n\n\n"
                   + "x = 1\n" * 30 + "\n\ndef release(pool, item):\n    pool.append(item)\n",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    for path, text in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    index = retriever.index(root, lexical_only=True, chunker_config={"max_chars": 60})
    rows: dict[str, list[int]] = {}
    for row, chunk in enumerate(index.chunks()):
        rows.setdefault(chunk.path, []).append(row)
    return index, rows


def _run(stage, query, pairs):
    """Run one stage on hand-made candidates ``[(row, score), ...]``; ``[(row, score)]`` out."""
    ids = np.array([[r for r, _ in pairs]], dtype=np.int64)
    scores = np.array([[s for _, s in pairs]], dtype=np.float32)
    out = stage([query], Results(scores, ids))
    keep = out.ids[0] >= 0
    return [(int(r), round(float(s), 4)) for r, s in zip(out.ids[0][keep], out.scores[0][keep],
                                                           strict=True)]


def test_normalize_divides_by_the_best_score(tiny):
    index, rows = tiny
    a, b = rows["src/session.py"][0], rows["src/retry_policy.py"][0]
    assert _run(Normalize(context_of(index)), "x", [(a, 4.0), (b, 2.0)]) == [(a, 1.0), (b, 0.5)]
    # Min-max: (0.9 - 0.8) / (1.0 - 0.8) = 0.5; the worst candidate goes to 0.
    c = rows["src/pool.py"][0]
    assert _run(Normalize(context_of(index), minmax=True), "x",
                [(a, 1.0), (b, 0.9), (c, 0.8)]) == [(a, 1.0), (b, 0.5), (c, 0.0)]


def test_definitions_adds_the_defining_chunk_the_first_stage_missed(tiny):
    index, rows = tiny
    context = context_of(index)
    test_row = rows["tests/test_retry_policy.py"][0]
    (definition,) = [r for r in rows["src/retry_policy.py"]
                     if "class RetryPolicy" in index.chunks()[r].text]
    stage = Definitions(context, symbol=3.0, exact=1.0, stem=0.5, parts=0.0)
    # exact name 1.0, plus 0.5 because retry_policy.py is named after it: 3 x 1.5 = 4.5.
    assert _run(stage, "RetryPolicy", [(test_row, 1.0)]) == [(definition, 4.5), (test_row, 1.0)]
    # Natural language without identifiers: nothing to look up, nothing changes.
    assert _run(stage, "how are retries backed off", [(test_row, 1.0)]) == [(test_row, 1.0)]


def test_definitions_is_a_no_op_without_a_symbol_table(tiny, tmp_path):
    index, rows = tiny
    context = context_of(index)
    saved, context.symbols = context.symbols, None
    try:
        row = rows["tests/test_retry_policy.py"][0]
        assert _run(Definitions(context), "RetryPolicy", [(row, 1.0)]) == [(row, 1.0)]
    finally:
        context.symbols = saved


def test_path_terms_lifts_the_file_named_by_the_query(tiny):
    index, rows = tiny
    stage = PathTerms(context_of(index), stem=1.0, folder=0.0, mention=0.0)
    retry, session = rows["src/retry_policy.py"][0], rows["src/session.py"][0]
    # "session" is one of the two content words: +1.0 x 1/2.
    assert _run(stage, "session handling", [(retry, 1.0), (session, 0.8)]) == [
        (session, 1.3), (retry, 1.0)]
    assert _run(stage, "exponential backoff", [(retry, 1.0), (session, 0.8)]) == [
        (retry, 1.0), (session, 0.8)]


def test_path_terms_spread_gives_the_rest_of_a_matching_file_a_share(tiny):
    index, rows = tiny
    first, second = rows["src/pool.py"][0], rows["src/pool.py"][-1]
    session = rows["src/session.py"][0]
    pairs = [(first, 0.9), (second, 0.5), (session, 0.7)]
    # "pool" is one of the two content words: +1.0 x 1/2 for the file's best chunk, and for
    # its other chunks 0.5 x spread.
    whole = PathTerms(context_of(index), stem=1.0, folder=0.0, mention=0.0)
    assert _run(whole, "pool cleanup", pairs) == [(first, 1.4), (second, 1.0), (session, 0.7)]
    share = PathTerms(context_of(index), stem=1.0, folder=0.0, mention=0.0, spread=0.25)
    assert _run(share, "pool cleanup", pairs) == [(first, 1.4), (session, 0.7),
                                                  (second, 0.625)]
    # No file named by the query: nothing moves, whatever the spread.
    assert _run(share, "exponential backoff", pairs) == [(first, 0.9), (session, 0.7),
                                                         (second, 0.5)]


LONG_QUERY = "pool cleanup after every worker thread finishes releasing"  # 8 content words


def test_path_terms_long_shrinks_the_gain_for_a_query_of_many_words(tiny):
    index, rows = tiny
    pool, session = rows["src/pool.py"][0], rows["src/session.py"][0]
    pairs = [(session, 1.0), (pool, 0.9)]
    # "pool" is one of 8 content words: +1.0 x 1/8 lifts pool above session; with long=4
    # the gain is 4/8 of that, +0.0625, and session stays first.
    full = PathTerms(context_of(index), stem=1.0, folder=0.0, mention=0.0)
    assert _run(full, LONG_QUERY, pairs) == [(pool, 1.025), (session, 1.0)]
    short = PathTerms(context_of(index), stem=1.0, folder=0.0, mention=0.0, long=4)
    assert _run(short, LONG_QUERY, pairs) == [(session, 1.0), (pool, 0.9625)]
    # A query of no more than ``long`` words keeps the whole gain (+1.0 x 1/2).
    assert _run(short, "pool cleanup", pairs) == [(pool, 1.4), (session, 1.0)]


def test_coherence_long_shrinks_the_lift_for_a_query_of_many_words(tiny):
    index, rows = tiny
    first, second = rows["src/pool.py"][0], rows["src/pool.py"][-1]
    other = rows["src/session.py"][0]
    pairs = [(other, 1.0), (first, 0.95), (second, 0.9)]
    stage = FileCoherence(context_of(index), weight=0.2, long=4)
    # Short query: as without the setting (see the coherence test above).
    assert _run(stage, "pool", pairs) == [(first, 1.15), (other, 1.1081), (second, 0.9)]
    # 8 content words: the unit is 0.2 x 4/8 = 0.1; pool 0.95 + 0.1 = 1.05, session
    # 1.0 + 0.1 x 1.0 / 1.85 = 1.0541 keeps its lead.
    assert _run(stage, LONG_QUERY, pairs) == [(other, 1.0541), (first, 1.05), (second, 0.9)]


def test_long_is_left_out_of_the_config_when_off_and_checked(tiny):
    index, _ = tiny
    context = context_of(index)
    assert "long" not in PathTerms(context).config()
    assert FileCoherence(context, weight=0.5, long=0).config() == {"weight": 0.5}
    assert FileCoherence(context, weight=0.5, long=6).config() == {"weight": 0.5, "long": 6}
    for bad in (-1, 2.5, True, "6"):
        with pytest.raises(InputError, match="long must be a whole number"):
            PathTerms(context, long=bad)


def test_path_prior_demotes_tests_unless_the_query_asks_for_them(tiny):
    index, rows = tiny
    stage = PathPrior(context_of(index), test=0.5)
    source, test = rows["src/retry_policy.py"][0], rows["tests/test_retry_policy.py"][0]
    assert _run(stage, "retry backoff", [(test, 1.0), (source, 0.9)]) == [
        (source, 0.9), (test, 0.5)]
    assert _run(stage, "retry backoff", [(source, 1.0), (test, 0.4)]) == [
        (source, 1.0), (test, 0.2)]
    # The intent word "tests" switches the demotion off.
    assert _run(stage, "tests of retry backoff", [(test, 1.0), (source, 0.9)]) == [
        (test, 1.0), (source, 0.9)]


def test_coherence_lifts_the_best_chunk_of_a_file_with_several(tiny):
    index, rows = tiny
    first, second = rows["src/pool.py"][0], rows["src/pool.py"][-1]
    other = rows["src/session.py"][0]
    stage = FileCoherence(context_of(index), weight=0.2)
    # File sums: pool 0.95 + 0.9 = 1.85 (the largest), session 1.0; unit 0.2 x best 1.0.
    # pool's best: 0.95 + 0.2 = 1.15; session's: 1.0 + 0.2 x 1.0 / 1.85 = 1.1081.
    assert _run(stage, "q", [(other, 1.0), (first, 0.95), (second, 0.9)]) == [
        (first, 1.15), (other, 1.1081), (second, 0.9)]
    # A lone strong chunk stays ahead when the other file's chunks are weak: sums session
    # 1.0 (now the largest), pool 0.9; session 1.0 + 0.2 = 1.2, pool 0.5 + 0.2 x 0.9 = 0.68.
    assert _run(stage, "q", [(other, 1.0), (first, 0.5), (second, 0.4)]) == [
        (other, 1.2), (first, 0.68), (second, 0.4)]


def test_saturation_decays_the_second_chunk_of_a_file(tiny):
    index, rows = tiny
    first, second = rows["src/pool.py"][0], rows["src/pool.py"][-1]
    other = rows["src/session.py"][0]
    stage = FileSaturation(context_of(index), after=1, decay=0.5)
    assert _run(stage, "q", [(first, 1.0), (second, 0.9), (other, 0.8)]) == [
        (first, 1.0), (other, 0.8), (second, 0.45)]
    assert _run(stage, "q", [(first, 1.0), (other, 0.9), (second, 0.8)]) == [
        (first, 1.0), (other, 0.9), (second, 0.4)]


def test_the_code_preset_prints_its_stages_and_where_its_weights_came_from(tiny):
    index, _ = tiny
    stage = preset("code", index, mode="lexical", depth=100, filter=None)
    text = repr(stage)
    assert text.startswith("lexical % ")
    for part in ("normalize()", "definitions(symbol=", "path_terms(", "coherence(",
                 "path_prior(", "saturation(", "fitted="):
        assert part in text
    # Leaving a prior out is a config change: its stage is gone from the chain.
    weights = {"depth": 10, "coherence": {"weight": 0.5}}
    assert repr(code_pipeline(index, mode="lexical", depth=10, weights=weights)) == (
        "lexical % 10 >> normalize() >> coherence(weight=0.5)")


def test_the_code_preset_answers_through_search(tiny):
    index, _ = tiny
    hits = index.search("RetryPolicy", k=3, mode="lexical", pipeline="code")
    assert hits[0].path == "src/retry_policy.py"
    with pytest.raises(retriever.InputError, match="known: code, code-files, plain"):
        index.search("RetryPolicy", mode="lexical", pipeline="fancy")
    with pytest.raises(retriever.InputError, match="Unknown path traits"):
        PathPrior(context_of(index), tests=0.5)


class _Fixed(Stage):
    """A first stage answering fixed rows, best first (scores descend from 1)."""

    def __init__(self, rows):
        self.rows = rows

    def __call__(self, queries, results=None):
        ids = np.array([self.rows], dtype=np.int64)
        return Results(np.linspace(1.0, 0.5, len(self.rows), dtype=np.float32)[None], ids)


def test_blend_weighs_the_sides_by_query_type():
    dense, lexical = _Fixed([1, 2, 3]), _Fixed([3, 4])
    blend = Blend(dense, lexical, method="rrf", symbol=0.0, natural=0.5)
    # A symbol query: the lexical side alone (2 x 1/61, 2 x 1/62).
    out = blend(["RouterGroup"])
    assert out.ids[0].tolist()[:2] == [3, 4]
    assert out.scores[0][0] == pytest.approx(2 / 61)
    # A sentence with weight 0.5 is plain reciprocal-rank fusion, order and scores.
    plain = fuse([dense, lexical])(["how are routes grouped"])
    mixed = blend(["how are routes grouped"])
    assert mixed.ids[0].tolist() == plain.ids[0].tolist()[: len(mixed.ids[0])]
    assert np.allclose(mixed.scores[0], plain.scores[0][: len(mixed.scores[0])])
    # Score fusion: min-max per side; row 3 is dense's worst (0) and lexical's best (1).
    scored = Blend(dense, lexical, method="score", natural=0.5)(["how are routes grouped"])
    assert dict(zip(scored.ids[0].tolist(), np.round(scored.scores[0], 4).tolist(),
                    strict=True)) == {1: 0.5, 2: 0.25, 3: 0.5, 4: 0.0}
    with pytest.raises(retriever.InputError, match="known: rrf, score"):
        Blend(dense, lexical, method="max")
    with pytest.raises(retriever.InputError, match=r"in \[0, 1\]"):
        Blend(dense, lexical, symbol=1.5)


def test_definitions_from_outside_the_candidates_respect_the_filter(tiny):
    index, _ = tiny
    found = index.search("RetryPolicy", k=5, mode="lexical", pipeline="code", within="tests")
    assert found and {h.path for h in found} == {"tests/test_retry_policy.py"}
    everywhere = index.search("RetryPolicy", k=5, mode="lexical", pipeline="code")
    assert everywhere[0].path == "src/retry_policy.py"
