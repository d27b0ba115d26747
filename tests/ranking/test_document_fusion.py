"""Hybrid search over documents fuses with the weight fitted for documents, not the code one."""

from __future__ import annotations

import retriever
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
        index_dir=tmp_path / "functions")
    stage = preset("code", index, mode="hybrid", depth=10, filter=None)
    assert f"natural={CODE_DOCUMENTS_FUSION['natural']:.3g}" in repr(stage)
    assert CODE_DOCUMENTS_FUSION["natural"] != DOCUMENTS_FUSION["natural"]
    assert "definitions" not in repr(stage)
    # A corpus that is mostly prose gets the prose weight.
    mixed = retriever.index_documents(
        [retriever.Document(id=f"d{i}", text=t) for i, t in enumerate(
            [*functions[:2], "The cat sat on the mat.", "Markets fell.", "Bread needs yeast."])],
        index_dir=tmp_path / "mixed")
    assert f"natural={DOCUMENTS_FUSION['natural']:.3g}" in repr(
        preset("code", mixed, mode="hybrid", depth=10, filter=None))
