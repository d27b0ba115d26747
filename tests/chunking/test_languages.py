from __future__ import annotations

import logging

import pytest
from chunk_invariants import check_invariants

import chunking
from chunking import CastChunker, detect_language, outline
from chunking.languages import SPECS, load_language


def test_public_names() -> None:
    assert sorted(chunking.__all__) == sorted([
        "CastChunker", "Chunk", "Chunker", "DecodeError", "MarkdownChunker", "RstChunker",
        "Skipped", "SourceFile", "WalkResult", "WindowChunker", "chunk_id", "detect_language",
        "embedding_text", "outline", "read_source", "walk",
    ])
    for name in chunking.__all__:
        assert getattr(chunking, name) is not None


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_grammar_loads_and_chunks(name: str) -> None:
    spec = SPECS[name]
    assert load_language(spec.grammar) is not None
    source = "a = 1\n\nb = [2,\n  3]\nfoo(bar)\n"
    extension = next((e for e, lang in _EXTENSIONS.items() if lang == name), None)
    path = f"x{extension}" if extension else "x.txt"
    chunks = list(CastChunker(max_chars=4).chunk(path, source))
    check_invariants(path, source, chunks)


_EXTENSIONS = chunking.languages.EXTENSIONS


def test_missing_grammar_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert load_language("no_such_grammar") is None
    assert "no_such_grammar" in caplog.text


@pytest.mark.parametrize("path,source,language", [
    ("src/a.py", "", "python"), ("a.tsx", "", "tsx"), ("a.cs", "", "csharp"),
    ("Makefile", "", "make"), ("Dockerfile", "", "dockerfile"),
    ("x/Dockerfile.dev", "", "dockerfile"),
    ("a.H", "", "c"), ("script", "#!/bin/sh\necho\n", "bash"),
    ("tool", "#!/usr/bin/env -S python3 -u\n", "python"), ("notes", "plain\n", "text"),
    ("README.md", "", "markdown"), ("index.rst", "", "rst"), ("a.unknownext", "", "text"),
])
def test_detect_language(path: str, source: str, language: str) -> None:
    assert detect_language(path, source) == language


@pytest.mark.parametrize("path,source,expected", [
    ("a.hs", "data Shape = Circle Double\n\narea :: Shape -> Double\narea (Circle r) = r\n",
     [("type", "Shape", 1, 1), ("function", "area", 4, 4)]),
    ("a.jl", "module Geo\nstruct Point\n  x::Float64\nend\nfunction norm(p)\n  p.x\nend\nend\n",
     [("module", "Geo", 1, 8), ("struct", "Geo.Point", 2, 4), ("function", "Geo.norm", 5, 7)]),
    ("a.zig", "pub fn main() void {\n    return;\n}\nconst S = struct {\n fn f() void {}\n};\n",
     [("function", "main", 1, 3), ("struct", "S", 4, 6), ("method", "S.f", 5, 5)]),
    ("a.ml", "let add x y = x + y\nmodule M = struct\n  let f x = x\nend\n",
     [("function", "add", 1, 1), ("module", "M", 2, 4), ("function", "M.f", 3, 3)]),
    ("a.ex", "defmodule Math.Ops do\n  def one do\n    1\n  end\nend\nIO.puts(1)\n",
     [("module", "Math.Ops", 1, 5), ("function", "Math.Ops.one", 2, 4)]),
    ("a.r", "add <- function(x, y) {\n  x + y\n}\nz <- 3\n", [("function", "add", 1, 3)]),
    ("a.clj", "(ns foo)\n(defn bar [x]\n  (+ x 1))\n(println 1)\n", [("function", "bar", 2, 3)]),
    ("a.erl", "-module(m).\nadd(X, Y) -> X + Y.\n", [("function", "add", 2, 2)]),
    ("a.dart", "class A {\n  void f() {}\n}\n", [("class", "A", 1, 3), ("method", "A.f", 2, 2)]),
    ("a.proto", "service S {\n  rpc Get(A) returns (A);\n}\n",
     [("service", "S", 1, 3), ("function", "S.Get", 2, 2)]),
    ("a.m", "@implementation Foo\n- (void)bar {\n}\n@end\n",
     [("class", "Foo", 1, 4), ("method", "Foo.bar", 2, 3)]),
    ("a.pl", "package Foo;\nsub bar {\n  return 1;\n}\n",
     [("package", "Foo", 1, 1), ("function", "bar", 2, 4)]),
])
def test_best_effort_symbols_in_other_languages(path: str, source: str, expected: list) -> None:
    assert outline(path, source) == expected
