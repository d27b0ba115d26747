from __future__ import annotations

import pytest
from chunk_invariants import check_invariants
from chunk_snippets import EXPECTED, SNIPPETS

from chunking import CastChunker, Chunker, outline

LANGUAGES = sorted(SNIPPETS)


def test_snippets_cover_the_required_languages() -> None:
    assert set(LANGUAGES) == {
        "python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp",
        "csharp", "ruby", "php", "kotlin", "scala", "swift", "bash", "lua",
    }


@pytest.mark.parametrize("language", LANGUAGES)
def test_outline_names_definitions(language: str) -> None:
    path, source = SNIPPETS[language]
    found = {(kind, symbol) for kind, symbol, _, _ in outline(path, source)}
    missing = [pair for pair in EXPECTED[language] if pair not in found]
    assert not missing, f"missing {missing}; found {sorted(found)}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_small_budget_gives_definitions_their_own_symbols(language: str) -> None:
    path, source = SNIPPETS[language]
    chunks = list(CastChunker(max_chars=40).chunk(path, source))
    check_invariants(path, source, chunks)
    assert {c.language for c in chunks} == {language}
    symbols = {c.symbol for c in chunks}
    for kind, symbol in EXPECTED[language]:
        if kind != "namespace":
            assert symbol in symbols, f"{symbol} not among {symbols}"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("budget", [1, 25, 80, 300, 1500])
def test_invariants_and_budget_for_every_language(language: str, budget: int) -> None:
    path, source = SNIPPETS[language]
    chunks = list(CastChunker(max_chars=budget).chunk(path, source))
    check_invariants(path, source, chunks)
    for chunk in chunks:
        size = len("".join(chunk.text.split()))
        assert size <= budget or chunk.start_line == chunk.end_line, chunk


def test_python_labels() -> None:
    path, source = SNIPPETS["python"]
    chunks = list(CastChunker(max_chars=110).chunk(path, source))
    by_symbol = {c.symbol: c for c in chunks}
    assert by_symbol["Session.send"].kind == "method"
    assert by_symbol["connect"].kind == "function"
    assert by_symbol["Session.send"].text.lstrip().startswith("def send")
    # With the default budget the whole small file is one top-level chunk.
    whole = list(CastChunker().chunk(path, source))
    assert len(whole) == 1 and whole[0].kind == "module"


def test_whole_definition_chunk_is_labelled_by_it() -> None:
    source = "import os\n\n\n" + "def run(path):\n" + "    x = os.path.join(path, 'a')\n" * 30
    chunks = list(CastChunker(max_chars=2000).chunk("run.py", source))
    assert [(c.kind, c.symbol) for c in chunks] == [("function", "run")]


def test_split_method_pieces_keep_their_scope() -> None:
    body = "".join(f"        value_{i} = compute({i})\n" for i in range(80))
    source = f"class Engine:\n    def start(self):\n{body}        return value_1\n"
    chunks = list(CastChunker(max_chars=200).chunk("engine.py", source))
    check_invariants("engine.py", source, chunks)
    assert len(chunks) > 3
    # The headers merge with the first statements, so the first piece starts in the class.
    assert chunks[0].start_line == 1 and chunks[0].symbol == "Engine"
    assert {c.symbol for c in chunks[1:]} == {"Engine.start"}
    assert {c.kind for c in chunks} == {"block"}


def test_rust_impl_method_and_go_method() -> None:
    path, source = SNIPPETS["rust"]
    rows = outline(path, source)
    assert ("impl", "Router") in {(k, s) for k, s, _, _ in rows}
    path, source = SNIPPETS["go"]
    assert ("method", "Server.Serve") in {(k, s) for k, s, _, _ in outline(path, source)}


def test_cpp_qualified_out_of_class_definition() -> None:
    source = "namespace net {\nvoid Socket::close() {\n  fd = -1;\n}\n}\n"
    assert ("function", "net.Socket.close", 2, 4) in outline("s.cpp", source)


def test_syntax_errors_are_still_chunked() -> None:
    source = "def broken(:\n    return ((\nclass X\n    def y(self) pass\n}}}\n"
    chunks = list(CastChunker(max_chars=10).chunk("bad.py", source))
    check_invariants("bad.py", source, chunks)
    assert chunks


def test_single_long_line_is_one_chunk() -> None:
    source = "var a=" + "1+" * 5000 + "1;\n"
    chunks = list(CastChunker(max_chars=100).chunk("app.js", source))
    assert len(chunks) == 1 and chunks[0].start_line == chunks[0].end_line == 1


def test_deep_nesting_does_not_overflow() -> None:
    source = "x = " + "(" * 400 + "1" + ")" * 400 + "\n" + "y = [\n" + "  1,\n" * 3000 + "]\n"
    chunks = list(CastChunker(max_chars=50).chunk("deep.py", source))
    check_invariants("deep.py", source, chunks)


def test_empty_and_blank_files_yield_nothing() -> None:
    chunker = CastChunker()
    for source in ("", "\n\n", "   \n\t\n", "\r\n"):
        assert list(chunker.chunk("a.py", source)) == []
        assert list(chunker.chunk("a.md", source)) == []
        assert list(chunker.chunk("a.unknown", source)) == []


def test_crlf_gives_the_same_chunks_as_lf() -> None:
    path, source = SNIPPETS["java"]
    chunker = CastChunker(max_chars=60)
    lf = list(chunker.chunk(path, source))
    crlf = list(chunker.chunk(path, source.replace("\n", "\r\n")))
    assert lf == crlf
    assert all("\r" not in c.text for c in crlf)


def test_ids_are_stable_and_depend_on_path() -> None:
    path, source = SNIPPETS["go"]
    first = [c.id for c in CastChunker(max_chars=50).chunk(path, source)]
    second = [c.id for c in CastChunker(max_chars=50).chunk(path, source)]
    other = [c.id for c in CastChunker(max_chars=50).chunk("other/" + path, source)]
    assert first == second and len(set(first)) == len(first)
    assert not set(first) & set(other)


def test_config_round_trip_and_protocol() -> None:
    chunker = CastChunker(max_chars=700, window_lines=20)
    assert chunker.config() == {"max_chars": 700, "window_lines": 20}
    rebuilt = CastChunker(**chunker.config())
    assert rebuilt.config() == chunker.config()
    assert isinstance(rebuilt, Chunker)
    path, source = SNIPPETS["rust"]
    assert list(rebuilt.chunk(path, source)) == list(chunker.chunk(path, source))


def test_bad_config_is_refused() -> None:
    from retriever.errors import InputError

    with pytest.raises(InputError, match="max_chars"):
        CastChunker(max_chars=0)
    with pytest.raises(InputError, match="window_lines"):
        CastChunker(window_lines=0)


def test_dispatch_by_file_type() -> None:
    chunker = CastChunker()
    assert {c.language for c in chunker.chunk("README.md", "# T\ntext\n")} == {"markdown"}
    assert {c.kind for c in chunker.chunk("notes.txt", "a\nb\n")} == {"window"}
    assert {c.language for c in chunker.chunk("bin/tool", "#!/usr/bin/env python3\nx=1\n")} == {
        "python"}
    assert {c.language for c in chunker.chunk("Makefile", "all:\n\techo hi\n")} == {"make"}


@pytest.mark.parametrize("path,source", [
    ("a.hs", "module Main where\nmain :: IO ()\nmain = putStrLn \"hi\"\n"),
    ("a.ex", "defmodule M do\n  def f(x), do: x\nend\n"),
    ("a.zig", "pub fn main() void {\n    return;\n}\n"),
    ("a.yaml", "a: 1\nb:\n  - x\n  - y\n"),
    ("a.json", '{"a": [1, 2],\n "b": {"c": null}}\n'),
    ("a.toml", "[tool]\nname = 'x'\n"),
    ("a.html", "<html>\n<body><p>hi</p></body>\n</html>\n"),
    ("a.css", "a {\n  color: red;\n}\n"),
    ("a.sql", "SELECT a\nFROM b\nWHERE c = 1;\n"),
    ("a.ml", "let add x y =\n  x + y\n"),
    ("a.jl", "function f(x)\n  x + 1\nend\n"),
    ("a.dart", "class A {\n  void f() {}\n}\n"),
])
def test_other_languages_parse_structurally(path: str, source: str) -> None:
    chunks = list(CastChunker(max_chars=8).chunk(path, source))
    check_invariants(path, source, chunks)
    assert chunks[0].language not in ("text",)
