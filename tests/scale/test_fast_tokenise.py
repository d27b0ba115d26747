"""The fast path's tokeniser: the word path and the normaliser bypass give the tokenizer's ids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from encoders._tokenise import Tokenise, Tokens, split_rows
from encoders.sentence import resolve_model

DATA = Path(__file__).resolve().parents[1] / "data"

# Every branch of the normaliser: tabs and line breaks, control characters it deletes
# (NUL, DEL, vertical tab, form feed, the ASCII separators), upper case, accents, CJK,
# non-breaking and zero-width spaces, a byte-order mark, a text past the token limit, and
# special tokens written in the text (matched before normalising); for the word path:
# every ASCII punctuation mark, a word over WordPiece's 100 characters, words unknown to
# the vocabulary, and texts long enough to be cut by words first.
EDGES = ["", " ", "\t\tX\r\nY", "a\x00b", "a\x7fb c\x0bd\x0ce", "x\x1cy\x1fz", "Naïve Straße",
         "日本語 CODE", "ABC\u00a0DEF", "a\u200bb", "\ufeffbom", "HELLO-World_foo.bar()",
         "def f(x):\n\treturn X**2  # SQUARE", "Token " * 600,
         "the state of the [CLS] token", "fill the [MASK] here", "a [mask] and [Sep]",
         "".join(chr(c) for c in range(33, 127)), "q" * 150 + " tail", "zxqvj qqqxz ##ing",
         "word " * 5000, "x" * 9000, "a" * 4000 + " b" * 300]


def _tokenizer(max_length: int = 256, **changes) -> Tokenizer:
    described = json.loads((resolve_model("all-MiniLM-L6-v2") / "tokenizer.json").read_text())
    described.update(changes)
    tokenizer = Tokenizer.from_str(json.dumps(described))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    return tokenizer


def _texts() -> list[str]:
    texts = []
    for path in sorted((DATA / "repo").rglob("*")):
        if path.is_file():
            source = path.read_text(encoding="utf-8", errors="replace")
            texts.extend(source[i : i + 900] for i in range(0, len(source), 450))
    texts += EDGES
    rng = np.random.default_rng(0)
    return [texts[i] for i in rng.permutation(len(texts))]  # ASCII and not, interleaved


def _expected(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tokenizer.encode_batch(texts)]


@pytest.mark.parametrize("max_length", [256, 64, 3])
def test_the_word_path_gives_the_ids_of_the_full_tokeniser_in_order(max_length):
    tokenizer = _tokenizer(max_length)
    fast = Tokenise(tokenizer)
    assert fast.pieces is not None and fast.lowercase
    texts = _texts()
    tokens = fast(texts)
    assert tokens.ids.dtype == np.int32 and tokens.lengths.dtype == np.int64
    assert tokens.types is None
    assert split_rows(tokens) == _expected(tokenizer, texts)
    assert any(not t.isascii() for t in texts) and len(fast.pieces) > 20
    # A second call reads the kept pieces and gives the same ids.
    assert split_rows(fast(texts[::-1])) == _expected(tokenizer, texts[::-1])


def test_without_the_word_path_the_bypass_gives_the_same_ids():
    tokenizer = _tokenizer()
    fast = Tokenise(tokenizer, words=False)
    assert fast.pieces is None and fast.plain is not None
    texts = _texts()
    assert split_rows(fast(texts)) == _expected(tokenizer, texts)


def test_a_cased_bert_normaliser_keeps_case_on_the_word_path():
    cased = {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
             "strip_accents": None, "lowercase": False}
    tokenizer = _tokenizer(normalizer=cased)
    fast = Tokenise(tokenizer)
    assert fast.pieces is not None and not fast.lowercase
    texts = _texts()
    assert split_rows(fast(texts)) == _expected(tokenizer, texts)


def test_truncation_from_the_left_is_not_taken_by_the_word_path():
    tokenizer = _tokenizer(64)
    tokenizer.enable_truncation(max_length=64, direction="left")
    fast = Tokenise(tokenizer)
    assert fast.pieces is None and fast.plain is not None
    texts = _texts()
    assert split_rows(fast(texts)) == _expected(tokenizer, texts)


def test_another_normaliser_or_splitter_takes_the_full_tokeniser():
    for changes in ({"normalizer": {"type": "Lowercase"}},
                    {"pre_tokenizer": {"type": "Whitespace"}}):
        tokenizer = _tokenizer(**changes)
        fast = Tokenise(tokenizer)
        assert fast.plain is None and fast.pieces is None
        texts = _texts()[:20]
        assert split_rows(fast(texts)) == _expected(tokenizer, texts)


def test_token_arrays_concatenate_in_order():
    tokenizer = _tokenizer()
    fast = Tokenise(tokenizer)
    texts = _texts()
    joined = Tokens.concatenate([fast(texts[:7]), fast(texts[7:30]), fast(texts[30:])])
    assert split_rows(joined) == _expected(tokenizer, texts)
    assert split_rows(fast([])) == []


@pytest.mark.parametrize("max_length", [256, 16])
def test_the_word_path_reads_long_texts_in_steps_with_the_same_ids(max_length):
    # Long identifiers and punctuation runs at every offset around a step's end: a step must
    # never end inside a word, and the steps' words must give the ids of the whole text.
    tokenizer = _tokenizer(max_length)
    fast = Tokenise(tokenizer)
    rng = np.random.default_rng(1)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
    texts = []
    for _ in range(300):
        words = ["".join(rng.choice(letters, size=int(rng.integers(1, 40))))
                 for _ in range(int(rng.integers(1, 400)))]
        gaps = rng.choice([" ", "_", ".", "\n", "(", "", " "], size=len(words))
        texts.append("".join(w + g for w, g in zip(words, gaps, strict=True)))
    assert any(len(text) > 4 * max_length for text in texts)
    assert split_rows(fast(texts)) == _expected(tokenizer, texts)
