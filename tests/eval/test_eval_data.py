"""BEIR and CodeSearchNet loaders: fixtures, the real SciFact folder, and every error case."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from eval.data import first_sentence, load_beir, load_codesearchnet, write_beir
from retriever.errors import DatasetError

SCIFACT = Path("/work/shared/data/scifact")


def test_load_beir_keeps_only_queries_with_qrels(data):
    bench = load_beir(data / "beir_tiny", "test")
    assert list(bench.corpus) == ["d1", "d2", "d3", "d4"]
    assert bench.corpus["d1"].title == "Retry backoff"
    assert set(bench.queries) == {"q1", "q2"}  # q3 has qrels only in dev
    assert bench.qrels == {"q1": {"d1": 2, "d3": 1}, "q2": {"d2": 1}}
    assert set(load_beir(data / "beir_tiny", "dev").queries) == {"q3"}


def test_write_beir_round_trip(data, tmp_path):
    bench = load_beir(data / "beir_tiny", "test")
    write_beir(bench, tmp_path / "copy")
    again = load_beir(tmp_path / "copy", "test")
    assert (again.corpus, again.queries, again.qrels) == (bench.corpus, bench.queries, bench.qrels)


@pytest.mark.skipif(not SCIFACT.is_dir(), reason="the shared SciFact folder is not here")
def test_load_beir_real_scifact():
    bench = load_beir(SCIFACT, "train")
    assert len(bench.corpus) == 5183
    assert sum(len(docs) for docs in bench.qrels.values()) == 919
    assert set(bench.queries) == set(bench.qrels)
    assert all(doc in bench.corpus for docs in bench.qrels.values() for doc in docs)


@pytest.fixture
def beir(data, tmp_path) -> Path:
    """A writable copy of the tiny BEIR folder to break."""
    return Path(shutil.copytree(data / "beir_tiny", tmp_path / "beir"))


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def test_malformed_json_line_names_file_and_line(beir):
    _append(beir / "corpus.jsonl", '{"_id": "d5", "text": oops}\n')
    with pytest.raises(DatasetError, match=r"corpus\.jsonl:5: malformed JSON"):
        load_beir(beir, "test")


def test_missing_id_names_file_and_line(beir):
    _append(beir / "queries.jsonl", '{"text": "no id"}\n')
    with pytest.raises(DatasetError, match=r"queries\.jsonl:4: missing '_id'"):
        load_beir(beir, "test")


def test_qrels_id_missing_from_corpus(beir):
    _append(beir / "qrels" / "test.tsv", "q1\tnope\t1\n")
    with pytest.raises(DatasetError, match=r"test\.tsv:5: corpus-id 'nope' is not in corpus"):
        load_beir(beir, "test")


def test_qrels_query_missing_from_queries(beir):
    _append(beir / "qrels" / "test.tsv", "q9\td1\t1\n")
    with pytest.raises(DatasetError, match=r"test\.tsv:5: query-id 'q9'"):
        load_beir(beir, "test")


def test_qrels_bad_columns_and_score(beir):
    path = beir / "qrels" / "test.tsv"
    original = path.read_text()
    path.write_text(original + "q1\td1\n")
    with pytest.raises(DatasetError, match=r"test\.tsv:5: expected 3 columns"):
        load_beir(beir, "test")
    path.write_text(original + "q1\td1\thigh\n")
    with pytest.raises(DatasetError, match=r"test\.tsv:5: score 'high' is not an integer"):
        load_beir(beir, "test")


def test_empty_split(beir):
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n")
    with pytest.raises(DatasetError, match=r"test\.tsv:1: the split has no qrels rows"):
        load_beir(beir, "test")


def test_missing_split_lists_available(beir):
    with pytest.raises(DatasetError, match=r"no split 'train'; available splits: dev, test"):
        load_beir(beir, "train")


def test_missing_corpus_file(beir):
    (beir / "corpus.jsonl").unlink()
    with pytest.raises(DatasetError, match=r"corpus\.jsonl: missing"):
        load_beir(beir, "test")


def test_codesearchnet_fixture(data, tmp_path):
    bench = load_codesearchnet(data / "csn" / "tiny.jsonl")
    assert len(bench.corpus) == 2  # the row without a docstring is skipped
    slug = "https://github.com/acme/tools/blob/abc/tools/text.py#L1-L7"
    assert bench.queries[slug] == "Turn a title into a URL slug."
    assert bench.qrels[slug] == {slug: 1}
    code = bench.corpus[slug].text
    assert "URL slug" not in code and code.startswith("def slugify(text):")
    assert "return" in code
    clamp = next(q for q in bench.queries if q.endswith("nums.go#L3-L9"))
    assert bench.queries[clamp] == "Clamp limits v to the range [lo, hi]."
    packed = tmp_path / "tiny.jsonl.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as handle:
        handle.write((data / "csn" / "tiny.jsonl").read_text())
    assert load_codesearchnet(packed).queries == bench.queries


def test_codesearchnet_malformed_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"code": "x", "docstring": "fine words here"}\n{broken\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2"):
        load_codesearchnet(path)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("Compute the area. Uses pi.", "Compute the area."),
        ("Parse e.g. JSON input quickly.\n\nMore.", "Parse e.g. JSON input quickly."),
        ("Return the size\nof the queue.\n@return n", "Return the size of the queue."),
        ("Build it.\n\nArgs:\n  x: y", "Build it."),
        ("", ""),
    ],
)
def test_first_sentence(doc, expected):
    assert first_sentence(doc) == expected
