"""Chunks a person can trust (issue 9, item 9): no lone closers, headers or decorators, and a
chunk holding several definitions is named by what it holds."""

from __future__ import annotations

from chunking import CastChunker


def _size(text: str) -> int:
    return len("".join(text.split()))


def _covered(source: str, chunks) -> None:
    lines = source.split("\n")
    taken = set()
    for chunk in chunks:
        assert chunk.text == "\n".join(lines[chunk.start_line - 1: chunk.end_line])
        assert not taken & set(range(chunk.start_line, chunk.end_line + 1))
        taken.update(range(chunk.start_line, chunk.end_line + 1))
    assert all(n in taken for n, line in enumerate(lines, 1) if line.strip())


CPP = "namespace absl {\nABSL_NAMESPACE_BEGIN\n\n" + "".join(
    f"int Function{i}(int value) {{\n" + "".join(
        f"  value = value * {j} + {i};  // step {j} of the computation\n" for j in range(12))
    + "  return value;\n}\n\n" for i in range(4)) + "ABSL_NAMESPACE_END\n}  // namespace absl\n"

RUBY = "module Rails\n  class Engine\n" + "".join(
    f"    def step_{i}(app)\n" + "".join(
        f"      app.configure(:option_{j}, value_{j}) if app.ready?\n" for j in range(10))
    + "    end\n\n" for i in range(4)) + "  end\nend\n"


def test_no_lone_closer_or_namespace_header_when_a_neighbour_has_room():
    for path, source in (("a.cc", CPP), ("a.rb", RUBY)):
        chunks = list(CastChunker(max_chars=600).chunk(path, source))
        _covered(source, chunks)
        assert len(chunks) > 2  # the file is really cut
        small = [c.text for c in chunks if _size(c.text) < 40]
        assert small == [], small
        assert all(_size(c.text) <= 600 for c in chunks)


def test_a_fragment_that_fits_nowhere_stays():
    # Budget 60: each function is about 60 characters, so its closer cannot join it.
    source = "".join(f"int f{i}(int x) {{\n  return x * {i} + 1234567890 + 987654;\n}}\n"
                     for i in range(3))
    chunks = list(CastChunker(max_chars=45).chunk("b.c", source))
    _covered(source, chunks)
    assert all(_size(c.text) <= 45 or c.start_line == c.end_line for c in chunks)


def test_a_chunk_of_several_definitions_is_named_by_the_largest():
    source = (
        "def __dir__():\n    return []\n\n\n"
        "class InvalidWheelFilename(ValueError):\n"
        + "".join(f"    def check_{i}(self, name):\n        return name.endswith('{i}')\n"
                  for i in range(6))
        + "\n\ndef helper():\n    return 1\n"
    )
    (chunk,) = CastChunker().chunk("utils.py", source)
    assert chunk.kind == "module"
    assert chunk.symbol == "InvalidWheelFilename"  # not __dir__, the first name inside
