"""The miner on tiny Python, JavaScript, TypeScript, Go, Rust and Java sources."""

from __future__ import annotations

import pytest

from eval.data import load_beir
from eval.miner import mine
from retriever.errors import InputError

EXPECTED = {
    "src/Queue.java:11-15": "Return the number of elements currently in the queue.",
    "src/copy.py:1-10": "Compute the area of a circle from its radius.",
    "src/lib.rs:5-10": "Parse a comma separated list of integers into a vector.",
    "src/shapes.py:38-45": "Compute the volume of the box for a given depth.",
    "src/stack.go:10-14": "Push adds an item to the top of the stack.",
    "src/stack.go:17-25": "MaxOf returns the largest value in the slice of numbers.",
    "src/strings.js:5-9": "Reverse the characters of a string.",
    "src/strings.js:12-15": "Convert a string to upper case letters quickly.",
    "src/strings.js:21-25": "Greet a person by their name politely.",
    "src/sum.ts:4-8": "Add two numbers together and return the total.",
}


@pytest.fixture
def bench(data):
    return mine(data / "mine")


def test_queries_are_first_doc_sentences(bench):
    assert bench.queries == EXPECTED
    assert bench.qrels == {qid: {qid: 1} for qid in EXPECTED}


def test_documents_lack_their_doc_comment(bench):
    corpus = bench.corpus
    python = corpus["src/shapes.py:38-45"].text
    assert python.startswith("def volume(self, depth):") and '"""' not in python
    assert "More details" not in python and "return base * depth" in python
    assert corpus["src/strings.js:5-9"].text.startswith("function reverseString(text) {")
    assert corpus["src/strings.js:12-15"].text.startswith("export const shout")
    assert corpus["src/strings.js:21-25"].text.startswith("greet(name) {")
    assert corpus["src/stack.go:10-14"].text.startswith("func (s *Stack) Push")
    assert corpus["src/lib.rs:5-10"].text.startswith("pub fn parse_list")
    assert corpus["src/Queue.java:11-15"].text.startswith("public int count()")
    for doc in corpus.values():
        assert "/**" not in doc.text and "///" not in doc.text and "// " not in doc.text


def test_filters(bench):
    names = " ".join(doc.text.split("(")[0] for doc in bench.corpus.values())
    for skipped in (
        "tiny",  # fewer than 3 lines
        "short_doc",  # "Sum values." has 2 words
        "__init__",  # dunder
        "undocumented",
        "test_area_is_positive",  # test function
        "helper_for_tests",  # in a tests/ folder
        "TestSomething",  # Go test
        "parses_numbers",  # Rust #[test]
        "plainComment",  # a plain // comment is not a JSDoc
        "first_twin",  # the same query on two different functions: ambiguous, both dropped
        "second_twin",
    ):
        assert skipped not in names, skipped
    # area_of_circle is in copy.py and shapes.py with identical code: the first one is kept.
    assert "src/copy.py:1-10" in bench.corpus
    assert not any(key.startswith("src/shapes.py:4-") for key in bench.corpus)


def test_languages_and_beir_round_trip(data, tmp_path):
    only_go = mine(data / "mine", languages=["go"], out=tmp_path / "go")
    assert set(only_go.queries) == {"src/stack.go:10-14", "src/stack.go:17-25"}
    again = load_beir(tmp_path / "go", "test")
    assert again.queries == only_go.queries and again.qrels == only_go.qrels
    with pytest.raises(InputError, match="unknown languages"):
        mine(data / "mine", languages=["cobol"])
    with pytest.raises(InputError, match="not a folder"):
        mine(tmp_path / "nowhere")


FUNCTION = '''def {name}(values, factor):
    """Scale every value of the list by the given factor."""
    scaled = []
    for value in values:
        scaled.append(value * factor)
    return scaled
'''


def test_files_come_from_the_walker_and_path_classes(tmp_path):
    # One documented function per file, each with its own query, so only the file decides.
    files = {
        "src/kept.py": "kept",
        "vendor/lib/copied.py": "vendored_copy",
        "third_party/lib/other.py": "third_party_copy",
        "proto/messages_pb2.py": "generated_code",
        "src/conftest.py": "test_fixture_helper",
        "spec/helpers.py": "spec_helper",
        ".tools/script.py": "hidden_tool",
        "build/lib/kept.py": "build_output",
        "scratch/ignored.py": "ignored_by_gitignore",
    }
    for relative, name in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(FUNCTION.format(name=name).replace("list", f"list ({name})"))
    (tmp_path / ".gitignore").write_text("scratch/\n")
    (tmp_path / "src" / "latin1.py").write_bytes(b'def f():\n    """Caf\xe9 au lait."""\n')
    bench = mine(tmp_path)
    assert list(bench.queries) == ["src/kept.py:1-6"]
    assert bench.corpus["src/kept.py:1-6"].text.startswith("def kept(values, factor):")
