"""Hybrid search over documents fuses with the weight fitted for documents, not the code one."""

from __future__ import annotations

import numpy as np
import pytest

import retriever
from retriever.errors import InputError
from retriever.ranking import preset
from retriever.ranking.fitted import DOCUMENTS_FUSION


def test_documents_fuse_with_their_own_weight_and_code_keeps_its_own(tmp_path):
    docs = [retriever.Document(id=f"d{i}", text=text) for i, text in enumerate(
        ["the cat sat on the mat", "stock markets fell sharply", "a recipe for bread"])]
    index = retriever.index_documents(docs, index_dir=tmp_path / "docs")
    stage = preset("code", index, mode="hybrid", depth=10, filter=None)
    assert f"natural={DOCUMENTS_FUSION['natural']:.3g}" in repr(stage)
    assert "definitions" not in repr(stage)  # no code prior on documents
    hits = index.search("baking bread", k=3, mode="hybrid")
    assert hits[0].path == "d2"


def test_a_corpus_of_source_code_fuses_with_the_code_documents_weight(tmp_path):
    from retriever.ranking.fitted import CODE_DOCUMENTS_FUSION

    functions = [f"def read_{name}(path):\n    with open(path) as f:\n        return f.{name}()\n"
                 for name in ("read", "readline", "readlines", "seek", "tell", "close")]
    index = retriever.index_documents(
        [retriever.Document(id=f"f{i}", text=text) for i, text in enumerate(functions)],
        index_dir=tmp_path / "functions", tier="dense")
    stage = preset("code", index, mode="hybrid", depth=10, filter=None)
    assert f"natural={CODE_DOCUMENTS_FUSION['natural']:.3g}" in repr(stage)
    assert "fast" not in repr(stage)  # no static vectors in a dense-tier index
    assert CODE_DOCUMENTS_FUSION["natural"] != DOCUMENTS_FUSION["natural"]
    assert "definitions" not in repr(stage)
    # A corpus that is mostly prose gets the prose weight.
    mixed = retriever.index_documents(
        [retriever.Document(id=f"d{i}", text=t) for i, t in enumerate(
            [*functions[:2], "The cat sat on the mat.", "Markets fell.", "Bread needs yeast."])],
        index_dir=tmp_path / "mixed")
    assert f"natural={DOCUMENTS_FUSION['natural']:.3g}" in repr(
        preset("code", mixed, mode="hybrid", depth=10, filter=None))


def test_a_code_corpus_gets_both_vector_sets_and_hybrid_fuses_three_sides(tmp_path):
    from retriever.ranking.fitted import CODE_DOCUMENTS_FULL_FUSION

    functions = [f"def {name}(path):\n    with open(path) as f:\n        return f.{name}()\n"
                 for name in ("read", "readline", "readlines", "seek", "tell", "close")]
    docs = [retriever.Document(id=f"f{i}", text=text) for i, text in enumerate(functions)]
    index = retriever.index_documents(iter(docs), index_dir=tmp_path / "full")
    assert {e["tier"] for e in index.manifest["encoders"]} == {"dense", "fast"}
    assert index.tier == "dense"  # dense search stays the transformer's
    assert len(index.chunks()) == len(docs)  # the sampled head is not lost from a generator
    stage = preset("code", index, mode="hybrid", depth=10, filter=None)
    assert "fast % 10" in repr(stage)
    assert f"fast={CODE_DOCUMENTS_FULL_FUSION['fast']:.3g}" in repr(stage)
    hits = index.search("readlines", k=3, mode="hybrid")
    assert hits[0].path == "f2"
    fast = index.tier_stage("fast", depth=3)
    found = fast(["seek"])
    assert found.ids.shape == (1, 3) and set(found.ids[0].tolist()) <= set(range(len(docs)))


def test_a_prose_corpus_and_explicit_tiers_get_what_they_ask(tmp_path):
    prose = [retriever.Document(id=f"d{i}", text=t) for i, t in enumerate(
        ["The cat sat on the mat.", "Markets fell.", "Bread needs yeast."])]
    dense = retriever.index_documents(prose, index_dir=tmp_path / "prose")
    assert [e["tier"] for e in dense.manifest["encoders"]] == ["dense"]
    assert dense.tier_stage("fast") is None
    fast = retriever.index_documents(prose, index_dir=tmp_path / "fast", tier="fast")
    assert fast.tier == "fast"
    assert fast.search("yeast", k=1, mode="hybrid")[0].path == "d2"
    with pytest.raises(InputError, match="Unknown tier"):
        retriever.index_documents(prose, index_dir=tmp_path / "bad", tier="fastest")
    with pytest.raises(InputError, match="contradicts"):
        retriever.index_documents(prose, index_dir=tmp_path / "bad", tier="full",
                                  lexical_only=True)


def test_a_third_side_can_change_the_fused_order():
    from retriever.pipeline import Retrieve
    from retriever.ranking.fusion import Blend

    def side(order):  # one query; scores fall with the rank
        return Retrieve(lambda queries, k: (np.array([[1.0, 0.5][: len(order)]]),
                                            np.array([order])), k=2)

    two = Blend(side([0, 1]), side([1, 0]), method="score", symbol=0.6, natural=0.6)
    assert two(["how to read"]).ids[0].tolist() == [0, 1]
    three = Blend(side([0, 1]), side([1, 0]), method="score", symbol=0.4, natural=0.4,
                  fast=side([1, 0]), fast_weight=0.3)
    assert three(["how to read"]).ids[0].tolist() == [1, 0]
    assert three.config()["fast"] == 0.3
    with pytest.raises(InputError, match="sum to at most 1"):
        Blend(side([0]), side([0]), symbol=0.8, natural=0.8, fast=side([0]), fast_weight=0.3)
