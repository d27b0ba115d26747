from __future__ import annotations

from chunk_invariants import check_invariants
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chunking import CastChunker, MarkdownChunker, RstChunker, WindowChunker

PY_LINES = st.sampled_from([
    "def f(x):", "    return x", "class A:", "    def m(self):", "        pass", "",
    "import os", "x = (1,", "  2)", "if x:", "    y = 'ü€😀'", "# comment", "    ", "\t",
    "@decorator", "lambda: (", "'''", "x = [" + "1," * 80 + "]", "}", "async def g():",
])
PY_SOURCES = st.lists(PY_LINES, max_size=40).map("\n".join)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=400)
NEWLINES = st.sampled_from(["\n", "\r\n"])
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(path: str, source: str, budget: int) -> None:
    chunker = CastChunker(max_chars=budget, window_lines=7)
    chunks = list(chunker.chunk(path, source))
    check_invariants(path, source, chunks)
    assert chunks == list(chunker.chunk(path, source))  # stable across runs
    for chunk in chunks:
        size = len("".join(chunk.text.split()))
        assert size <= budget or chunk.start_line == chunk.end_line


@SETTINGS
@given(PY_SOURCES, NEWLINES, st.integers(1, 200))
def test_python_like_sources(source: str, newline: str, budget: int) -> None:
    _check("gen.py", source.replace("\n", newline), budget)


@SETTINGS
@given(TEXT, st.sampled_from(["a.py", "a.js", "a.rs", "a.go", "a.md", "a.rst", "a.txt",
                              "a.c", "a.rb", "a.json"]), st.integers(1, 100))
def test_arbitrary_text_in_any_language(source: str, path: str, budget: int) -> None:
    _check(path, source, budget)


@SETTINGS
@given(st.lists(st.sampled_from(["# Title", "## Sub", "text", "", "===", "---", "```",
                                 "Heading", "~~~~~~~", "  indented"]), max_size=30)
       .map("\n".join), st.integers(1, 60))
def test_prose_chunkers(source: str, budget: int) -> None:
    for chunker, path in ((MarkdownChunker(max_chars=budget, window_lines=5), "a.md"),
                          (RstChunker(max_chars=budget, window_lines=5), "a.rst")):
        check_invariants(path, source, list(chunker.chunk(path, source)))
    check_invariants("a.txt", source, list(WindowChunker(window_lines=3).chunk("a.txt", source)))
