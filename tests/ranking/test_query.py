"""Query analysis, table-driven over identifier styles of many languages."""

from __future__ import annotations

import pytest

from retriever.ranking.query import analyze

# query -> [(identifier text, name, qualifier, style)]
IDENTIFIERS = [
    ("getUserById", [("getUserById", "getUserById", (), "camel")]),
    ("RouterGroup", [("RouterGroup", "RouterGroup", (), "pascal")]),
    ("Engine", [("Engine", "Engine", (), "capitalized")]),
    ("max_retries", [("max_retries", "max_retries", (), "snake")]),
    ("__init__", [("__init__", "__init__", (), "snake")]),
    ("_private", [("_private", "_private", (), "snake")]),
    ("MAX_BUFFER_SIZE", [("MAX_BUFFER_SIZE", "MAX_BUFFER_SIZE", (), "upper")]),
    ("requests.adapters.HTTPAdapter",
     [("requests.adapters.HTTPAdapter", "HTTPAdapter", ("requests", "adapters"), "qualified")]),
    ("Sinatra::Base", [("Sinatra::Base", "Base", ("Sinatra",), "qualified")]),
    ("absl::StrCat", [("absl::StrCat", "StrCat", ("absl",), "qualified")]),
    ("$request", [("$request", "request", (), "variable")]),
    ("self->field", [("self->field", "field", ("self",), "qualified")]),
    ("Illuminate\\Support\\Collection",
     [("Illuminate\\Support\\Collection", "Collection", ("Illuminate", "Support"),
       "qualified")]),
    ("Array#flatten", [("Array#flatten", "flatten", ("Array",), "qualified")]),
    ("how does parseEither run a parser",
     [("parseEither", "parseEither", (), "camel")]),
    ("absl::Mutex and MutexLock for synchronization",
     [("absl::Mutex", "Mutex", ("absl",), "qualified"),
      ("MutexLock", "MutexLock", (), "pascal")]),
    ("how are routes registered", []),
    ("JSON response rendering over HTTP", []),  # acronyms are words, not identifiers
    ("sha256 of a file", [("sha256", "sha256", (), "snake")]),
]


@pytest.mark.parametrize(("query", "expected"), IDENTIFIERS, ids=[q for q, _ in IDENTIFIERS])
def test_identifiers_and_their_styles(query, expected):
    found = [(i.text, i.name, i.qualifier, i.style) for i in analyze(query).identifiers]
    assert found == expected


@pytest.mark.parametrize(("query", "symbol"), [
    ("RouterGroup", True), ("Session.send", True), ("A::b", True), ("$x", True),
    ("foo_bar()", True), ("how does RouterGroup register routes", False),
    ("session", False), ("radix tree path matching", False), ("URL", False),
])
def test_symbol_or_natural_language(query, symbol):
    assert analyze(query).is_symbol is symbol


def test_parts_and_content_words():
    info = analyze("how does the HTTPServerError get raised")
    assert info.identifiers[0].parts == ("http", "server", "error")
    # Stopwords dropped, identifiers split, order kept, no repeats.
    assert info.words == ("http", "server", "error", "raised")


@pytest.mark.parametrize(("query", "paths", "extensions", "languages"), [
    ("where is utils.py imported", ("utils.py",), ("py",), ("python",)),
    ("the handler in src/router.go", ("src/router.go",), ("go",), ("go",)),
    ("type declarations in .d.ts files", (), ("ts",), ("typescript",)),
    ("retry logic in rust", (), (), ("rust",)),
    ("Session.send retries", (), (), ()),  # a qualified name is not a file
])
def test_mentioned_paths_extensions_and_languages(query, paths, extensions, languages):
    info = analyze(query)
    assert (info.paths, info.extensions, info.languages) == (paths, extensions, languages)


@pytest.mark.parametrize(("query", "intents"), [
    ("tests of the retry policy", {"test"}),
    ("example of a custom middleware", {"example"}),
    ("where are config defaults merged", {"config"}),
    ("interface for a cache backend", {"type"}),
    ("legacy compat shims", {"compat"}),
    ("benchmark of the parser", {"benchmark"}),
    ("how are routes registered", set()),
])
def test_intent_words(query, intents):
    assert analyze(query).intents == intents
