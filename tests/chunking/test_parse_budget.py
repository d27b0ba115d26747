"""The parse budget (files over it are chunked by lines and say so) and parser reuse."""

from __future__ import annotations

from pathlib import Path

from chunk_invariants import check_invariants

import retriever
from chunking import CastChunker, walk
from chunking.parsing import PARSE_BUDGET_BYTES
from chunking.pool import chunk_files

FUNCTION = "def handler_{0}(request):\n    value = request.get('key_{0}')\n    return value\n\n\n"


def _python_of_size(size: int) -> str:
    parts, total, i = [], 0, 0
    while total < size:
        part = FUNCTION.format(i)
        parts.append(part)
        total += len(part)
        i += 1
    return "".join(parts)


def test_a_file_over_the_parse_budget_is_chunked_by_lines_and_reported(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    big = _python_of_size(PARSE_BUDGET_BYTES + 1000)
    (tree / "big.py").write_text(big)
    (tree / "small.py").write_text(FUNCTION.format("small"))
    index = retriever.index(tree, index_dir=tmp_path / "index", lexical_only=True,
                            cache=False, max_file_bytes=2 * PARSE_BUDGET_BYTES, workers=1)
    warnings = index.last_build.warnings
    assert len(warnings) == 1 and warnings[0].startswith("big.py: ")
    assert "parse budget" in warnings[0] and "chunked by lines" in warnings[0]
    chunks, note = CastChunker().chunk_noted("big.py", big)
    assert note is not None and "parse budget" in note
    assert {c.kind for c in chunks} == {"window"} and {c.language for c in chunks} == {"python"}
    check_invariants("big.py", big, chunks)
    # The small file beside it was parsed as usual.
    small, small_note = CastChunker().chunk_noted("small.py", FUNCTION.format("small"))
    assert small_note is None and small[0].kind == "function"


def test_a_file_just_within_the_budget_is_parsed() -> None:
    source = _python_of_size(PARSE_BUDGET_BYTES - 4096)
    assert len(source.encode()) <= PARSE_BUDGET_BYTES
    chunks, note = CastChunker().chunk_noted("within.py", source)
    assert note is None
    assert {c.kind for c in chunks} <= {"function", "module", "block"}


BROKEN = {
    "broken.py": "def f(:\n    return ((((\nclass \x00 {{{\n" * 50,
    "broken.go": "package main\nfunc (((( {\n\ttype struct ]]]\n" * 50,
    "broken.scala": "object X { def f = {{{{ ((( \n  case => => =>\n" * 50,
}
GOOD = {
    "good.py": "class Session:\n    def send(self, request):\n        return request\n",
    "good.go": "package main\n\nfunc (s *Server) Serve() error {\n\treturn nil\n}\n",
    "good.scala": "object Codec {\n  def decode(s: String): Int = s.length\n}\n",
}


def test_a_broken_file_does_not_change_how_the_next_file_is_chunked(tmp_path: Path) -> None:
    # "Alone": each good file chunked first thing in a fresh worker process.
    tree = tmp_path / "tree"
    tree.mkdir()
    for name, text in GOOD.items():
        (tree / name).write_text(text)
    alone = {d.file.path: d.chunks
             for d in chunk_files(CastChunker(), walk(tree).files, workers=2, batch_files=1)}
    chunker = CastChunker()
    for name, text in GOOD.items():
        broken = "broken" + Path(name).suffix
        assert list(chunker.chunk(broken, BROKEN[broken]))  # the reused parser met it first
        assert list(chunker.chunk(name, text)) == alone[name], name
        assert {c.symbol for c in alone[name]} - {None}, name  # really parsed, with symbols
