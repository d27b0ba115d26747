"""The static vocabulary with identifiers cut at case changes (``split_case``), against the
packaged MiniLM's real WordPiece tokenizer."""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer

from encoders.sentence import resolve_model
from encoders.train.vocab import build_vocabulary

CODE = [
    "def getUserByID(kwargs):\n    return HTTPServer(kwargs).fetchRows()\n",
    "class DataLoader:\n    def loadNextBatch(self, kwargs):\n        return self.kwargs\n",
] * 6


@pytest.fixture(scope="module")
def teacher_tokenizer():
    return resolve_model("all-MiniLM-L6-v2") / "tokenizer.json"


def _tokens(vocabulary, text: str) -> list[str]:
    tokenizer = Tokenizer.from_str(json.dumps(vocabulary.tokenizer))
    return tokenizer.encode(text, add_special_tokens=False).tokens


def test_split_case_spells_identifiers_as_the_words_of_a_query(teacher_tokenizer):
    vocabulary = build_vocabulary(teacher_tokenizer, CODE, size=40000, min_count=5,
                                  split_case=True)
    assert _tokens(vocabulary, "getUserByID HTTPServer") == ["get", "user", "by", "id", "http",
                                                             "server"]
    assert _tokens(vocabulary, "fetchRows") == _tokens(vocabulary, "fetch rows")
    added = {source for source in vocabulary.sources if isinstance(source, str)}
    # Only words written as one lowercase word are left to add; no identifier compound is.
    assert "kwargs" in added
    assert not added & {"getuserbyid", "httpserver", "dataloader", "loadnextbatch"}


def test_without_split_case_identifiers_become_code_words(teacher_tokenizer):
    vocabulary = build_vocabulary(teacher_tokenizer, CODE, size=40000, min_count=5)
    added = {source for source in vocabulary.sources if isinstance(source, str)}
    # A compound's teacher text is its split spelling.
    assert {"get user by id", "data loader", "kwargs"} <= added
    assert _tokens(vocabulary, "getUserByID") == ["getuserbyid"]


def test_the_vocab_command_passes_split_case(tmp_path, teacher_tokenizer):
    from encoders.train.__main__ import main
    from encoders.train.data import write_jsonl_xz
    from encoders.train.vocab import Vocabulary

    data = tmp_path / "data"
    data.mkdir()
    write_jsonl_xz(data / "pairs.jsonl.xz",
                   [{"split": "train", "source": "toy-package", "code": text, "query": "q"}
                    for text in CODE])
    write_jsonl_xz(data / "chunks.jsonl.xz", [{"text": text} for text in CODE])
    (data / "manifest.json").write_text(json.dumps({"sources": {"toy-package": {}}}))
    for flag, folder in (["--split-case"], "split"), ([], "whole"):
        assert main(["vocab", "--data", str(data), "--teacher", str(teacher_tokenizer.parent),
                     "--size", "40000", "--out", str(tmp_path / folder), *flag]) == 0
    split, whole = (Vocabulary.load(tmp_path / name) for name in ("split", "whole"))
    assert _tokens(split, "getUserByID") == ["get", "user", "by", "id"]
    assert _tokens(whole, "getUserByID") != _tokens(split, "getUserByID")
