"""One hit per definition: pieces of a long function that rank together come back as one."""

from __future__ import annotations

import pytest

import retriever
from chunking import Chunk
from retriever.hits import assemble

STEPS = 120


def _long_module() -> str:
    body = "\n".join(f"    total_{i} = compute_value({i}) + helper_offset * {i}  # step {i}"
                     for i in range(STEPS))
    return (f'"""Accounting."""\n\n\ndef long_function(helper_offset):\n'
            f'    """Sum every step."""\n{body}\n    return total_0\n\n\n'
            "def short_function(x):\n    return compute_value(x)\n")


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("merged") / "tree"
    root.mkdir()
    (root / "ledger.py").write_text(_long_module())
    (root / "other.py").write_text("def compute_value(n):\n    return n * 2\n")
    return retriever.index(root, lexical_only=True)


def test_the_tree_really_splits_the_function(index):
    pieces = [c for c in index.chunks() if c.symbol == "long_function"]
    assert len(pieces) >= 3


@pytest.mark.parametrize("pipeline", ["plain", "code"])
def test_pieces_of_one_definition_come_back_as_one_hit(index, pipeline):
    pieces = sorted((c for c in index.chunks() if c.symbol == "long_function"),
                    key=lambda c: c.start_line)
    hits = index.search("compute_value helper_offset step", k=5, mode="lexical",
                        pipeline=pipeline)
    mine = [h for h in hits if h.symbol == "long_function"]
    assert len(mine) == 1
    merged = mine[0]
    assert merged.start_line == pieces[0].start_line and merged.end_line == pieces[-1].end_line
    lines = (index.root / "ledger.py").read_text().split("\n")
    assert merged.text == "\n".join(lines[merged.start_line - 1: merged.end_line])
    # The freed slots go to other answers: every hit is a different span.
    spans = [(h.path, h.start_line, h.end_line) for h in hits]
    assert len(set(spans)) == len(spans) and len(hits) >= 2


def _chunk(start: int, end: int, symbol: str | None, path: str = "a.py") -> Chunk:
    text = "\n".join(f"line {n}" for n in range(start, end + 1))
    return Chunk(id=f"{path}:{start}", path=path, language="python", start_line=start,
                 end_line=end, kind="block", symbol=symbol, text=text)


def test_a_piece_between_two_taken_pieces_joins_them_and_keeps_the_best_rank():
    ranked = [(0, _chunk(1, 10, "f"), 3.0), (1, _chunk(30, 40, "g"), 2.5),
              (2, _chunk(21, 30 - 1, "f"), 2.0), (3, _chunk(11, 20, "f"), 1.0),
              (4, _chunk(50, 60, None), 0.5)]
    hits = assemble(ranked, k=3)
    assert [(h.start_line, h.end_line) for h in hits] == [(1, 29), (30, 40), (50, 60)]
    assert hits[0].score == 3.0 and hits[0].rank == 0 and hits[0].rows == [0, 3, 2]


def test_other_symbols_other_files_and_module_code_are_not_merged():
    ranked = [(0, _chunk(1, 10, "f"), 3.0), (1, _chunk(11, 20, "g"), 2.0),
              (2, _chunk(11, 20, "f", path="b.py"), 1.5), (3, _chunk(21, 30, None), 1.0),
              (4, _chunk(31, 40, None), 0.9)]
    assert len(assemble(ranked, k=10)) == 5


def test_pieces_apart_by_code_lines_stay_apart_and_overlaps_are_dropped():
    ranked = [(0, _chunk(1, 10, "f"), 3.0), (1, _chunk(15, 20, "f"), 2.0),
              (2, _chunk(5, 12, "h"), 1.0)]
    assert [(h.start_line, h.end_line) for h in assemble(ranked, k=10)] == [(1, 10), (15, 20)]
