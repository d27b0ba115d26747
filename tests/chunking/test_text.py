from __future__ import annotations

from chunk_invariants import check_invariants

from chunking import CastChunker, MarkdownChunker, WindowChunker

MARKDOWN = """Intro paragraph.

# Install

Run pip.

## From source

```sh
# not a heading
make
```

Usage
-----

Call it.
"""

RST = """=======
Project
=======

Install
-------

Run pip.

From source
~~~~~~~~~~~

make
"""


def test_markdown_heading_paths() -> None:
    chunks = list(MarkdownChunker().chunk("README.md", MARKDOWN))
    check_invariants("README.md", MARKDOWN, chunks)
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("section", None), ("section", "Install"), ("section", "Install > From source"),
        ("section", "Install > Usage")]
    assert chunks[2].start_line == 7 and "# not a heading" in chunks[2].text


def test_rst_heading_paths() -> None:
    chunks = list(CastChunker().chunk("docs/index.rst", RST))
    check_invariants("docs/index.rst", RST, chunks)
    assert [c.symbol for c in chunks] == [
        "Project", "Project > Install", "Project > Install > From source"]
    assert {c.language for c in chunks} == {"rst"}


def test_big_section_is_windowed() -> None:
    source = "# Big\n" + "".join(f"line {i} of text\n" for i in range(300))
    chunks = list(MarkdownChunker(max_chars=200, window_lines=20).chunk("a.md", source))
    check_invariants("a.md", source, chunks)
    assert len(chunks) > 5 and {c.symbol for c in chunks} == {"Big"}


def test_windows_skip_blank_runs() -> None:
    source = "a\n\n\n\n\n\n\nb\nc\n"
    chunks = list(WindowChunker(window_lines=3).chunk("x.txt", source))
    check_invariants("x.txt", source, chunks)
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 1), (8, 9)]
    assert {(c.kind, c.symbol, c.language) for c in chunks} == {("window", None, "text")}
    assert WindowChunker(**WindowChunker(window_lines=3).config()).window_lines == 3
