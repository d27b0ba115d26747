"""The symbol table through retriever.index: what it holds, its round trip, an incremental
update, damage, and an index built before it existed."""

from __future__ import annotations

import json
import shutil

import pytest

import retriever
from indexing.symbols import SymbolTable, definitions_in


def _where(index, names):
    table = index.component("symbols")
    chunks = index.chunks()
    return {name: sorted({(chunks[table.rows[e]].path, table.qualified[e])
                          for e in table.exact(name)}) for name in names}


def test_the_table_holds_the_fixture_definitions_with_their_scopes(repo):
    index = retriever.index(repo, lexical_only=True)
    assert [c["name"] for c in index.manifest["components"]] == ["bm25", "symbols"]
    assert _where(index, ["RetryPolicy", "send", "ServeHTTP", "LruCache", "tokenize",
                          "rotate_archives", "multiply"]) == {
        "RetryPolicy": [("python/netkit/retry.py", "RetryPolicy")],
        "send": [("python/netkit/session.py", "Session.send")],
        "ServeHTTP": [("go/server/router.go", "ServeHTTP")],
        "LruCache": [("rust/src/cache.rs", "LruCache")],
        "tokenize": [("ts/tokenizer.ts", "ExpressionLexer.tokenize")],
        "rotate_archives": [("scripts/backup.sh", "rotate_archives")],
        "multiply": [("java/org/demo/Matrix.java", "Matrix.multiply")],
    }
    table = index.component("symbols")
    # Another identifier style, and sub-token lookups.
    assert [table.names[e] for e in table.same_spelling("ROTATEARCHIVES")] == ["rotate_archives"]
    assert {table.names[e] for e in table.with_parts(("retry", "policy"))} == {"RetryPolicy"}


def test_round_trip_and_damage(repo, tmp_path):
    index = retriever.index(repo, lexical_only=True)
    table = index.component("symbols")
    table.save(tmp_path / "copy")
    again = SymbolTable.load(tmp_path / "copy")
    assert (again.names, again.qualified, again.kinds, again.rows, again.lines) == (
        table.names, table.qualified, table.kinds, table.rows, table.lines)
    (tmp_path / "copy" / "symbols.parquet").write_bytes(b"not parquet")
    with pytest.raises(retriever.IndexFormatError, match="symbol table.*--force"):
        SymbolTable.load(tmp_path / "copy")
    meta = json.loads((tmp_path / "copy" / "symbols.json").read_text())
    meta["version"] = 99
    (tmp_path / "copy" / "symbols.json").write_text(json.dumps(meta))
    with pytest.raises(retriever.IndexFormatError, match="version 99"):
        SymbolTable.load(tmp_path / "copy")


def test_an_update_follows_the_tree(repo):
    retriever.index(repo, lexical_only=True)
    retry = repo / "python" / "netkit" / "retry.py"
    retry.write_text(retry.read_text().replace("RetryPolicy", "BackoffPolicy"))
    (repo / "go" / "server" / "headers.go").write_text(
        "package server\n\nfunc ParseHeader(line string) (string, string) {\n"
        "\treturn line, line\n}\n")
    (repo / "ruby" / "slugify.rb").unlink()
    index = retriever.index(repo)
    assert index.last_build.rebuilt
    assert _where(index, ["RetryPolicy", "BackoffPolicy", "ParseHeader", "slugify"]) == {
        "RetryPolicy": [],
        "BackoffPolicy": [("python/netkit/retry.py", "BackoffPolicy")],
        "ParseHeader": [("go/server/headers.go", "ParseHeader")],
        "slugify": [],
    }
    assert index.search("ParseHeader", k=1, mode="lexical", pipeline="code")[0].path == (
        "go/server/headers.go")


def test_an_index_built_before_the_symbol_table_still_searches(repo):
    index = retriever.index(repo, lexical_only=True)
    generation = index.generation
    manifest = json.loads((generation / "manifest.json").read_text())
    manifest["components"] = [c for c in manifest["components"] if c["name"] != "symbols"]
    (generation / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(generation / "symbols")
    old = retriever.open(repo)
    assert old.component("symbols") is None
    hits = old.search("exponential backoff retry", k=3, mode="lexical", pipeline="code")
    assert hits[0].path == "python/netkit/retry.py"
    # The definition prior does nothing; a symbol query still answers from BM25.
    assert old.search("RetryPolicy", k=1, mode="lexical", pipeline="code")[0].path == (
        "python/netkit/retry.py")


@pytest.mark.parametrize(("language", "text", "expected"), [
    ("python", "class Foo(Base):\n    async def send(self):", ["Foo", "send"]),
    ("go", "func (s *Server) Serve(l net.Listener) error {\ntype Router struct {",
     ["Serve", "Router"]),
    ("javascript", "export const debounce = (fn, ms) => {\napp.use(function (req) {",
     ["debounce"]),
    ("rust", "pub(crate) fn route(&self) -> X {\nimpl<T> Router<T> {\n"
     "impl<'de> Visitor<'de> for StrVisitor {", ["route", "Router", "StrVisitor"]),
    ("java", "  @Override public void run() {\n  } else if (x) {", ["run"]),
    ("ruby", "def self.slugify(s)\nmodule Baz", ["self.slugify", "Baz"]),
    ("lua", "function M.setup(opts)\nlocal function helper()", ["M.setup", "helper"]),
    ("c", "#define UV_FOO 1\nstatic int uv__close(uv_handle_t* h) {", ["UV_FOO", "uv__close"]),
    ("haskell", "decode :: ByteString -> Maybe a\ndata Value = Object", ["decode", "Value"]),
    ("elixir", "defmodule Phoenix.Router do\n  defp build(x) do", ["Phoenix.Router", "build"]),
    ("kotlin", "data class User(val id: Int)\nsuspend fun fetch(): X {", ["User", "fetch"]),
    ("bash", "nvm_ls() {\nfunction nvm_use {", ["nvm_ls", "nvm_use"]),
    ("zig", "pub const Parser = struct {\npub fn parse(self: *Parser) !void {",
     ["Parser", "parse"]),
])
def test_definition_headers_by_language(language, text, expected):
    assert [name for _, name, _ in definitions_in(text, language)] == expected
