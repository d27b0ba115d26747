"""benchmarks/make_results.py keeps the sections other scripts write into RESULTS.md."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
make_results = pytest.importorskip("make_results")

RANKING = ("<!-- ranking:start -->\n## Code-aware ranking\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
           "<!-- ranking:end -->\n")
RERANK = "<!-- rerank:start -->\n## Rerankers\n\nlatency 12 ms\n<!-- rerank:end -->\n"


def test_marked_sections_survive_a_regeneration_verbatim_and_in_order():
    old = f"# Benchmark results\n\nold text\n\n{RANKING}\nmiddle\n\n{RERANK}\n## Plots\n\n"
    new = "# Benchmark results\n\nnew text\n\n## Plots\n\n![p](plots/p.png)\n"
    kept = make_results.keep_sections(old, new)
    assert "old text" not in kept and "new text" in kept
    assert RANKING in kept and RERANK in kept
    assert kept.index(RANKING) < kept.index(RERANK) < kept.index("## Plots")
    assert kept.endswith("![p](plots/p.png)\n")


def test_a_section_the_new_text_writes_itself_is_not_doubled_and_none_means_no_change():
    new = f"# Benchmark results\n\n{RANKING.replace('| 1 | 2 |', '| 3 | 4 |')}"
    kept = make_results.keep_sections(f"{RANKING}{RERANK}", new)
    assert kept.count("<!-- ranking:start -->") == 1 and "| 3 | 4 |" in kept
    assert RERANK in kept and "| 1 | 2 |" not in kept
    assert make_results.keep_sections("# old, nothing marked\n", new) == new
