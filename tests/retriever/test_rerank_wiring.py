"""`Index.search(..., rerank=)` and `retriever search --rerank`: the pipeline gets a Rerank
stage of retriever.rerankers (skipped until that package exists)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import retriever
from retriever.cli.app import app

rerankers = pytest.importorskip("retriever.rerankers")
runner = CliRunner()


class Reversed:
    """A reranker (scores only) that prefers the shortest text: a different order."""

    def score(self, query, texts):
        return np.asarray([-len(text) for text in texts], dtype=np.float32)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("rerank") / "tree"
    root.mkdir()
    for n in range(6):
        (root / f"m{n}.py").write_text(
            f"def parse_config_{n}(text):\n" + "    value = parse(text)\n" * (n + 1)
            + "    return value\n")
    return retriever.index(root, lexical_only=True)


def test_a_reranker_instance_reorders_the_top_hits(built):
    plain = built.search("parse config value", k=6, mode="lexical")
    reranked = built.search("parse config value", k=6, mode="lexical", rerank=Reversed(),
                            rerank_depth=6)
    assert sorted(h.path for h in reranked) == sorted(h.path for h in plain)
    lengths = [len(h.text) for h in reranked]
    assert lengths == sorted(lengths)
    assert all(0.0 <= h.relevance <= 1.0 for h in reranked)


def test_rerank_depth_must_be_positive(built):
    with pytest.raises(retriever.InputError, match="rerank_depth"):
        built.search("parse", mode="lexical", rerank=Reversed(), rerank_depth=0)


def test_cli_unknown_reranker_lists_the_known_ones(built):
    result = runner.invoke(app, ["search", "parse config", "--index", str(built.directory),
                                 "--mode", "lexical", "--rerank", "no-such-reranker"])
    assert result.exit_code == 1
    for name in rerankers.names():
        assert name in result.output
    as_json = runner.invoke(app, ["search", "parse config", "--index", str(built.directory),
                                  "--mode", "lexical", "--rerank", "no-such-reranker",
                                  "--json"])
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["error"]["message"]
