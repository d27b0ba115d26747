"""The chunker contract, checked on one file's chunks."""

from __future__ import annotations

from chunking import Chunk, chunk_id


def check_invariants(path: str, source: str, chunks: list[Chunk]) -> None:
    """No overlap, in order, inside the file, every non-blank line covered, text = lines."""
    lines = source.replace("\r\n", "\n").split("\n")
    covered: set[int] = set()
    previous_end = 0
    for chunk in chunks:
        assert chunk.path == path
        assert 1 <= chunk.start_line <= chunk.end_line <= len(lines), chunk
        assert chunk.start_line > previous_end, "chunks overlap or are out of order"
        previous_end = chunk.end_line
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        assert chunk.id == chunk_id(path, chunk.start_line, chunk.end_line, chunk.text)
        assert chunk.text.strip(), "a chunk of blank lines"
        covered.update(range(chunk.start_line, chunk.end_line + 1))
    for number, line in enumerate(lines, start=1):
        if line.strip():
            assert number in covered, f"line {number} not covered: {line!r}"
