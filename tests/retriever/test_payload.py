"""The search payload, snippets, index descriptions and safe text, on a real small index."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import retriever
from indexing.tokenize import code_tokens
from retriever.payload import (
    ERROR_SCHEMA,
    SCHEMA,
    describe,
    error_payload,
    highlights,
    hit_records,
    search_payload,
    skipped_files,
    snippet,
)
from retriever.text_safety import json_text, printable

README = Path(__file__).parents[2] / "README.md"

# A function whose distinctive words sit near its end, so the best window is not the first.
LONG_FUNCTION = "def schedule_jobs(queue):\n" + "".join(
    f"    step_{i} = queue.pop()  # routine bookkeeping\n" for i in range(14)
) + "    zebra_giraffe = hippo_walrus(queue)\n    return zebra_giraffe\n"

# A form feed (old Emacs page break) inside a chunk: str.splitlines() breaks on it, the
# chunker's line numbers do not.
FORM_FEED = "def paged(x):\n    first = x\n\x0c\n" + "".join(
    f"    filler_{i} = first + {i}\n" for i in range(10)
) + "    return quokka_lemur(first)\n"


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("payload") / "tree"
    root.mkdir()
    (root / "jobs.py").write_text(LONG_FUNCTION)
    (root / "paged.py").write_text(FORM_FEED)
    (root / "notes.md").write_text("# Notes\n\nA short note about otters.\n")
    return root


@pytest.fixture(scope="module")
def built(tree, default_encoder):
    return retriever.index(tree, encoder=default_encoder)


def _readme_examples() -> list[dict]:
    section = README.read_text().split("### `--json` output", 1)[1].split("\n### ", 1)[0]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.S)]


def _readme_example() -> dict:
    return _readme_examples()[0]


def test_payload_has_exactly_the_fields_the_readme_documents(built):
    hits = built.search("zebra giraffe", k=2, mode="lexical")
    payload = search_payload(built, "zebra giraffe", hits, mode="lexical", k=2)
    example = _readme_example()
    assert set(payload) == set(example)
    assert set(payload["hits"][0]) == set(example["hits"][0])
    assert payload["schema"] == SCHEMA == example["schema"]
    assert (payload["query"], payload["mode"], payload["k"]) == ("zebra giraffe", "lexical", 2)
    assert payload["hits"] == [hit.to_dict() for hit in hits]
    assert payload["hits"][0]["path"] == "jobs.py"
    assert json.loads(json_text(payload)) == payload


def test_hit_records_are_the_hits_with_their_query(built):
    hits = built.search("zebra giraffe", k=2, mode="lexical")
    payload = search_payload(built, "zebra giraffe", hits, mode="lexical", k=2)
    records = hit_records(payload)
    assert records == [{"query": "zebra giraffe", **hit.to_dict()} for hit in hits]
    assert hit_records(search_payload(built, "zebra", [], mode="lexical", k=2)) == []


def test_error_payload_names_a_documented_class_and_matches_the_readme(built):
    with pytest.raises(retriever.RetrieverError) as caught:
        built.search("otters", mode="fuzzy")
    payload = error_payload(caught.value)
    assert payload == {"schema": ERROR_SCHEMA, "error": {"type": "InputError",
                                                         "message": str(caught.value)}}
    example = next(e for e in _readme_examples() if e["schema"] == ERROR_SCHEMA)
    assert set(example) == set(payload) and set(example["error"]) == set(payload["error"])

    class Private(retriever.IndexFormatError):  # a subclass reports its documented base
        pass

    assert error_payload(Private("x"))["error"]["type"] == "IndexFormatError"
    assert error_payload(ValueError("x"), kind="UsageError")["error"]["type"] == "UsageError"


def test_payload_index_is_absolute_and_mode_is_normalised(built, monkeypatch):
    monkeypatch.chdir(built.directory.parent)
    opened = retriever.open(built.directory.name)  # a relative path
    payload = search_payload(opened, "otters", [], mode=retriever.SearchMode.DENSE, k=1)
    assert payload["index"] == str(built.directory.resolve())
    assert payload["mode"] == "dense"
    with pytest.raises(retriever.InputError, match="Unknown search mode"):
        search_payload(opened, "otters", [], mode="fuzzy", k=1)


def test_snippet_picks_the_window_with_the_query_words(built, tree):
    hit = built.search("zebra giraffe hippo walrus", k=1, mode="lexical")[0]
    assert hit.path == "jobs.py" and hit.end_line - hit.start_line + 1 > 8
    first, lines = snippet(hit, "zebra giraffe hippo walrus")
    assert len(lines) == 8
    assert any("zebra_giraffe = hippo_walrus" in line for line in lines)
    assert first > hit.start_line  # not simply the head of the chunk
    source = (tree / hit.path).read_text().split("\n")
    assert lines == source[first - 1 : first - 1 + len(lines)]
    assert snippet(hit.to_dict(), "zebra giraffe hippo walrus") == (first, lines)


def test_snippet_line_numbers_survive_a_form_feed(built, tree):
    hit = built.search("quokka lemur", k=1, mode="lexical")[0]
    assert hit.path == "paged.py" and "\x0c" in hit.text
    first, lines = snippet(hit, "quokka lemur")
    source = (tree / hit.path).read_text().split("\n")
    assert lines == source[first - 1 : first - 1 + len(lines)]
    assert "quokka_lemur" in lines[-1]


def test_short_hit_snippet_is_the_whole_hit(built):
    hit = built.search("otters", k=1, mode="lexical")[0]
    assert snippet(hit, "otters") == (hit.start_line, hit.text.split("\n"))
    rows = hit.text.split("\n")
    at = next(i for i, row in enumerate(rows) if "otters" in row)
    assert at > 0  # the heading comes first, so a one-line window has to move
    assert snippet(hit, "otters", lines=1) == (hit.start_line + at, [rows[at]])


@pytest.mark.parametrize("lines", [0, -1, 2.5, True, "3"])
def test_snippet_refuses_a_window_that_is_not_a_positive_integer(built, lines):
    hit = built.search("otters", k=1, mode="lexical")[0]
    with pytest.raises(retriever.InputError, match="at least one line"):
        snippet(hit, "otters", lines=lines)


@pytest.mark.parametrize("line, query, marked", [
    ("def getUserById(user_id):", "user id", ["User", "Id", "user", "id"]),
    ("x = get_user_by_id(1)", "get_user_by_id", ["get_user_by_id"]),
    ("raise HTTPServerError()", "server error", ["Server", "Error"]),
    ("content-type: text", "type", ["type"]),
    ("retry_with_backoff(call)", "retries backoff", ["backoff"]),  # no stemming, as snippet
    ("İstanbul user", "user", ["user"]),  # lowercasing "İ" changes the length before it
    ("İDİ_user", "user", ["İDİ_user"]),  # ...and inside it: the whole identifier is marked
    ("# the of and", "the and", []),  # stopwords are no query words
    ("\\x1b[2J quoll", "quoll", ["quoll"]),  # escaped text is ordinary text
])
def test_highlights_mark_the_query_words_the_tokenizer_finds(line, query, marked):
    spans = highlights(line, query)
    assert [line[a:b] for a, b in spans] == marked
    assert all(a < b for a, b in spans) and spans == sorted(spans)
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False))


@given(st.text(), st.text())
def test_highlights_are_query_tokens_inside_the_line(line, query):
    wanted = set(code_tokens(query))
    for start, end in highlights(line, query):
        assert 0 <= start < end <= len(line)
        assert wanted & set(code_tokens(line[start:end])) or \
            wanted & {line[start:end].lower()}


def test_describe_an_index(built, tree):
    info = built.info()
    rows = dict(describe(info))
    for label in ("index", "format", "created", "source", "chunker", "components", "counts",
                  "bytes"):
        assert rows[label] and rows[label] != "?", label
    assert rows["source"].startswith(f"{tree} @ ")
    encoder_label = "encoders" if "encoders" in rows else "encoder"
    assert "sentence-transformers" in rows[encoder_label]
    assert f"chunks={len(built)}" in rows["counts"]
    assert rows["bytes"] == f"{info['bytes']:,}"
    assert all(isinstance(a, str) and isinstance(b, str) for a, b in describe(info))


def test_describe_lists_encoders_and_components_of_the_newer_layout():
    info = {
        "directory": "/x/.retriever", "generation": "gen-1", "format": "dense-retriever-index",
        "version": 2, "created_by": "dense-retriever 9", "created_at": "now",
        "source": {"root": "..", "commit": "abc"},
        "encoders": [{"id": "main", "name": "sentence-transformers", "config": {"m": 1},
                      "dim": 384, "tier": "full"},
                     {"id": "fast", "name": "static", "config": {}, "dim": 64, "tier": "fast"}],
        "components": [{"name": "faiss-binary", "role": "vectors", "path": "binary",
                        "encoder": "main",
                        "config": {"spec": "BFlat", "dims": 128, "rescore": "float",
                                   "rescore_multiplier": 4}},
                       {"name": "bm25", "role": "lexical", "config": {"k1": 1.2},
                        "path": "lexical"}],
        "counts": {"files": 3, "chunks": 9}, "bytes": 12345, "text_style": "code",
    }
    rows = describe(info)
    assert ("encoders", 'main: sentence-transformers {"m": 1} dim=384 tier=full') in rows
    assert ("", "fast: static dim=64 tier=fast") in rows
    assert ("components", "vectors: faiss-binary BFlat dims=128 rescore=float x4 in binary/ "
                          "(encoder main)") in rows
    assert ("", 'lexical: bm25 {"k1": 1.2} in lexical/') in rows
    assert ("source", "/x @ abc") in rows and ("bytes", "12,345") in rows
    assert ("text_style", "code") in rows  # keys without a row of their own still show


@pytest.mark.parametrize("info", [
    {"encoders": 5, "components": "dense", "counts": "many", "chunker": [], "bytes": "big",
     "source": 3, "version": {"x": 1}},
    {"encoder": None, "indexes": [1, 2], "skipped": {"a": 1}, "counts": {"skipped": "x"}},
    {"encoders": [None, 7, {"name": {"x": 1}, "config": {(1, 2): 3}}],
     "components": [{"config": {"spec": [1]}, "path": {}}, "x"], (1,): "tuple key"},
])
def test_describe_shows_a_question_mark_for_unexpected_types(info):
    rows = describe(info)
    assert all(isinstance(a, str) and isinstance(b, str) for a, b in rows)
    assert any("?" in value for _, value in rows)
    shown, more = skipped_files(info)
    assert more >= 0 and all(isinstance(p, str) and isinstance(r, str) for p, r in shown)


@pytest.mark.parametrize("info", [{}, [1, 2, 3], None])
def test_describe_of_nothing_shows_dashes(info):
    rows = dict(describe(info))
    assert rows["encoders"] == rows["components"] == rows["counts"] == "-"
    assert skipped_files(info) == ([], 0)


def test_skipped_files_shows_twenty_and_counts_the_rest():
    recorded = [{"path": f"big{i}.bin", "reason": "larger than 100 bytes"} for i in range(25)]
    shown, more = skipped_files({"skipped": recorded, "counts": {"skipped": 25}})
    assert len(shown) == 20 and more == 5
    assert shown[0] == ("big0.bin", "larger than 100 bytes")
    # The manifest keeps a capped list; its count is exact.
    assert skipped_files({"skipped": recorded, "counts": {"skipped": 1500}})[1] == 1480
    assert skipped_files({"counts": {"skipped": 3}}) == ([], 3)
    assert skipped_files({"skipped": [["a.bin", "binary"], 7]}, limit=5) == (
        [("a.bin", "binary"), ("?", "?")], 0)


HOSTILE = "a\x1b]0;pwned\x07b\x1b[2Jc\x1b]52;c;aGk=\x07d\x9b31me\x7ff\rg\x00h"
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def test_printable_shows_controls_as_inert_escapes():
    assert printable(HOSTILE) == ("a\\x1b]0;pwned\\x07b\\x1b[2Jc\\x1b]52;c;aGk=\\x07d\\x9b31me"
                                  "\\x7ff\\x0dg\\x00h")
    assert printable(os.fsdecode(b"caf\xff")) == "caf\\xff"  # the byte that was there
    assert printable("\ud800") == "\\ud800"
    kept = "naïve 日本語 ✓ «quotes»\n\tindented"
    assert printable(kept) == kept
    assert printable(None) == "None"


@given(st.text())
def test_printable_output_holds_no_control_character(text):
    safe = printable(text)
    assert not _UNSAFE.search(safe)
    safe.encode("utf-8")  # strict: no surrogate left
    assert printable(safe) == safe


def _replace_surrogates(value):
    if isinstance(value, str):
        return re.sub("[\ud800-\udfff]", "\ufffd", value)
    if isinstance(value, list):
        return [_replace_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    return value


@given(st.recursive(st.text() | st.integers() | st.none(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                    max_leaves=10))
def test_json_text_is_valid_utf8_and_round_trips(value):
    text = json_text(value)
    text.encode("utf-8")  # strict: a surrogate would raise
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f]", text)  # only indent newlines
    assert json.loads(text) == _replace_surrogates(value)


def test_json_lines_are_single_lines_whatever_the_strings_hold():
    value = {"text": "a\nb\rc\u2028d\u2029e\x85f", "n": [1, {"k": None}]}
    line = json_text(value, indent=None)
    assert len(line.splitlines()) == 1 and "\n" not in line
    assert json.loads(line) == value
    assert json.loads(json_text(value)) == value  # the indented form keeps the same values


def test_json_text_keeps_controls_exact_and_replaces_surrogates():
    value = {"text": HOSTILE, "query": os.fsdecode(b"\xff"), "ok": "日本"}
    text = json_text(value)
    raw = text.encode("utf-8")
    assert b"\x1b" not in raw and b"\xc2\x9b" not in raw and b"\x7f" not in raw
    decoded = json.loads(text)
    assert decoded["text"] == HOSTILE and decoded["ok"] == "日本"
    assert decoded["query"] == "\ufffd"
