"""The code-aware BM25 tokenizer: identifier splitting, whole identifiers, stopwords, stemming."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexing.tokenize import CodeTokenizer, code_tokens, stemmer_available

needs_stemmer = pytest.mark.skipif(not stemmer_available(), reason="PyStemmer not installed")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # camelCase and PascalCase: whole identifier first, then its parts; "by" is a stopword.
        ("getUserById", ["getuserbyid", "get", "user", "id"]),
        ("UserAccountManager", ["useraccountmanager", "user", "account", "manager"]),
        # Acronyms split before the capital that starts the next word.
        ("HTTPServerError", ["httpservererror", "http", "server", "error"]),
        ("IOError", ["ioerror", "io", "error"]),
        ("parseXMLDoc", ["parsexmldoc", "parse", "xml", "doc"]),
        ("userID", ["userid", "user", "id"]),
        ("URLs", ["urls"]),  # a plural acronym stays one part
        ("getIDs", ["getids", "get", "ids"]),
        # snake_case keeps its underscores in the whole form; edges are stripped.
        ("get_user_by_id", ["get_user_by_id", "get", "user", "id"]),
        ("MAX_RETRY_COUNT", ["max_retry_count", "max", "retry", "count"]),
        ("__init__", ["init"]),
        ("_private_helper", ["private_helper", "private", "helper"]),
        # kebab-case joins letter-started runs only.
        ("content-type", ["content-type", "content", "type"]),
        ("max-age-seconds", ["max-age-seconds", "max", "age", "seconds"]),
        ("count-10", ["count", "10"]),
        # digit boundaries; one-character parts ("8", "x") are dropped.
        ("sha256", ["sha256", "sha", "256"]),
        ("utf8Decode", ["utf8decode", "utf", "decode"]),
        ("x86_64", ["x86_64", "86", "64"]),
        ("parseHTTP2Response", ["parsehttp2response", "parse", "http", "response"]),
        ("404", ["404"]),
    ],
)
def test_identifier_splits(text: str, expected: list[str]) -> None:
    assert code_tokens(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("größeÄnderung", ["größeänderung", "größe", "änderung"]),
        ("naïveCafé", ["naïvecafé", "naïve", "café"]),
        ("ΑλφαΒήτα", ["αλφαβήτα", "αλφα", "βήτα"]),
        ("ИмяФайла", ["имяфайла", "имя", "файла"]),
        ("变量名", ["变量名"]),  # no case: the identifier stays whole
        ("用户_名称", ["用户_名称", "用户", "名称"]),
    ],
)
def test_unicode_identifiers(text: str, expected: list[str]) -> None:
    assert code_tokens(text) == expected


def test_sentence_of_code() -> None:
    assert code_tokens("raise HTTPServerError(get_user_by_id(42))") == [
        "raise",
        "httpservererror",
        "http",
        "server",
        "error",
        "get_user_by_id",
        "get",
        "user",
        "id",
        "42",
    ]


def test_plain_words_count_once_and_are_lowercased() -> None:
    # A single-part identifier is its own part: emitting it twice would double its tf.
    assert code_tokens("Retries retries RETRIES") == ["retries", "retries", "retries"]


def test_stopwords_and_short_parts_dropped_but_whole_identifiers_kept() -> None:
    assert code_tokens("how is the value of x") == ["value"]
    assert code_tokens("if not is_valid: return") == ["is_valid", "valid", "return"]
    # Code keywords that are not English stopwords stay.
    assert code_tokens("async def yield class") == ["async", "def", "yield", "class"]


def test_punctuation_and_empty_input() -> None:
    assert code_tokens("") == []
    assert code_tokens("  (){}[];.,+-*/ \n\t") == []
    assert code_tokens("a.b.c = d->e") == []


@needs_stemmer
def test_stemming_applies_to_parts_not_whole_compounds() -> None:
    assert code_tokens("retries", stem=True) == code_tokens("retry", stem=True)
    assert code_tokens("getUsers", stem=True) == ["getusers", "get", "user"]
    # Numbers are never stemmed.
    assert code_tokens("sha256", stem=True) == ["sha256", "sha", "256"]
    assert CodeTokenizer(stem=True)("backed off") == ["back", "off"]


def test_tokenize_many_matches_single_calls() -> None:
    texts = ["getUserById", "", "HTTPServerError in parse_xml"]
    tokenizer = CodeTokenizer()
    assert tokenizer.tokenize_many(texts) == [tokenizer(text) for text in texts]


identifier_text = st.lists(
    st.sampled_from(list("aZbYcX_-09 éÄ变\n.(") + ["HTTP", "Server", "get", "id", "the"]),
    max_size=30,
).map("".join)


@given(identifier_text)
def test_tokens_are_lowercase_words_and_cache_does_not_change_output(text: str) -> None:
    shared = code_tokens(text)
    fresh = CodeTokenizer()(text)  # empty cache
    assert shared == fresh
    assert code_tokens(text) == shared  # second call served from the cache
    for token in shared:
        assert token == token.lower()
        assert len(token) >= 2
        assert not any(ch.isspace() for ch in token)
