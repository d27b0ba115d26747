"""BM25Index.tokenize remembers recent texts without letting a caller change what it keeps."""

from __future__ import annotations

from indexing import lexical
from indexing.lexical import BM25Index
from indexing.tokenize import CodeTokenizer


def test_remembered_tokens_are_the_tokenizers_and_a_copy_each_time():
    index = BM25Index(stem=False)
    text = "def getUserById(user_id):\n    return self.users[user_id]  # HTTPServer"
    expected = CodeTokenizer(stem=False)(text)
    first = index.tokenize(text)
    assert first == expected
    first.append("mutated")
    assert index.tokenize(text) == expected


def test_the_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(lexical, "_MEMO_TEXTS", 8)
    index = BM25Index(stem=False)
    for number in range(50):
        assert index.tokenize(f"value_{number} plus") == CodeTokenizer(stem=False)(
            f"value_{number} plus")
    assert len(index._memo) <= 8
