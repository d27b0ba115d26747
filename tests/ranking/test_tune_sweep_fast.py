"""benchmarks/tune_ranking: a fast-tier share (fusion.fast) on indexes without the fast tier's
vectors is refused, rather than scored as if the share were not there."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import retriever

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from ranking_eval import Repo  # noqa: E402
from tune_ranking import pipeline  # noqa: E402


def test_a_fast_share_without_fast_vectors_is_refused(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "parse.py").write_text("def parse_config(path):\n    return open(path).read()\n")
    index = retriever.index(tree, index_dir=tmp_path / "idx", lexical_only=True, cache=False)
    query = type("Query", (), {"query": "parse the config file", "id": "q1"})()
    repo = Repo("toy", "python", index, "", [query], [])
    with pytest.raises(SystemExit, match="toy: fusion.fast .*--tier full"):
        pipeline({"fusion": {"fast": 0.2}}, "hybrid")(repo)
