"""The fast path's tokeniser skips BERT's normaliser on ASCII texts and gives the same ids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from encoders.fast_encode import _Tokenise
from encoders.sentence import resolve_model

DATA = Path(__file__).resolve().parents[1] / "data"

# Every branch of the normaliser: tabs and line breaks, control characters it deletes
# (NUL, DEL, vertical tab, form feed, the ASCII separators), upper case, accents, CJK,
# non-breaking and zero-width spaces, a byte-order mark, a text past the token limit, and
# special tokens written in the text (matched before normalising).
EDGES = ["", " ", "\t\tX\r\nY", "a\x00b", "a\x7fb c\x0bd\x0ce", "x\x1cy\x1fz", "Naïve Straße",
         "日本語 CODE", "ABC\u00a0DEF", "a\u200bb", "\ufeffbom", "HELLO-World_foo.bar()",
         "def f(x):\n\treturn X**2  # SQUARE", "Token " * 600,
         "the state of the [CLS] token", "fill the [MASK] here", "a [mask] and [Sep]"]


def _tokenizer(**changes) -> Tokenizer:
    described = json.loads((resolve_model("all-MiniLM-L6-v2") / "tokenizer.json").read_text())
    described.update(changes)
    tokenizer = Tokenizer.from_str(json.dumps(described))
    tokenizer.enable_truncation(max_length=256)
    tokenizer.no_padding()
    return tokenizer


def _texts() -> list[str]:
    texts = []
    for path in sorted((DATA / "repo").rglob("*")):
        if path.is_file():
            source = path.read_text(encoding="utf-8", errors="replace")
            texts.extend(source[i : i + 900] for i in range(0, len(source), 450))
    return texts + EDGES


def test_the_same_ids_as_the_full_tokeniser_in_the_same_order():
    tokenizer = _tokenizer()
    fast = _Tokenise(tokenizer)
    assert fast.plain is not None and fast.lowercase
    texts = _texts()
    rng = np.random.default_rng(0)
    texts = [texts[i] for i in rng.permutation(len(texts))]  # ASCII and not, interleaved
    expected = [e.ids for e in tokenizer.encode_batch(texts)]
    assert [e.ids for e in fast(texts)] == expected
    assert any(not t.isascii() for t in texts) and any(t.isascii() for t in texts)
    ascii_only = [t for t in texts if t.isascii() and "\x00" not in t]
    assert [e.ids for e in fast(ascii_only)] == [e.ids for e in tokenizer.encode_batch(ascii_only)]


def test_a_cased_bert_normaliser_keeps_case_on_the_bypass():
    cased = {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
             "strip_accents": None, "lowercase": False}
    tokenizer = _tokenizer(normalizer=cased)
    fast = _Tokenise(tokenizer)
    assert fast.plain is not None and not fast.lowercase
    texts = _texts()
    assert [e.ids for e in fast(texts)] == [e.ids for e in tokenizer.encode_batch(texts)]


def test_another_normaliser_or_splitter_takes_the_full_tokeniser():
    for changes in ({"normalizer": {"type": "Lowercase"}},
                    {"pre_tokenizer": {"type": "Whitespace"}}):
        tokenizer = _tokenizer(**changes)
        fast = _Tokenise(tokenizer)
        assert fast.plain is None
        texts = _texts()[:20]
        assert [e.ids for e in fast(texts)] == [e.ids for e in tokenizer.encode_batch(texts)]
