"""Token ids of a window of texts as flat arrays, the same ids the tokenizer gives, faster.

The fast path (:mod:`encoders.fast_encode`) needs, per window of texts, the ids of each text
after truncation, as one flat ``int32`` array and one array of lengths, so that padding is a
numpy gather instead of a Python loop over rows (the old ``encoding.ids`` copy held the GIL
for about 16 us a row). :class:`Tokenise` makes those arrays three ways, picking per text:

- the word path: for a BERT tokenizer (BertNormalizer, BertPreTokenizer), an ASCII text
  without control characters or added-token text is, after lowercasing, a run of
  ``[a-z0-9]+`` words and single punctuation marks between spaces, tabs and line breaks,
  and WordPiece splits each word on its own. So the words are cut with one regular
  expression, each distinct word's pieces are asked of the Rust model once and kept, and a
  text is the join of its words' pieces, cut to the limit, between the template's special
  ids (the vocabulary's whole words are known from the start). About five times the
  Rust tokenizer's texts/s on one core, normaliser skipped (measured here on 5,984 mined
  texts: 6,100-8,000 against 1,250-1,550), with the same ids; checked at construction
  against the tokenizer on probe texts and dropped if any differs;
- the plain path (no word path possible, e.g. truncation from the left): such texts go,
  lowercased, through a copy of the tokenizer without the normaliser;
- every other text (non-ASCII, control characters, ``[CLS]`` written in a docstring) takes
  the full tokenizer.
"""

from __future__ import annotations

import json
import re
from itertools import chain
from typing import NamedTuple

import numpy as np

__all__ = ["Tokenise", "Tokens", "split_rows"]

# ASCII characters BERT's normaliser (clean_text) deletes: control characters but tab,
# newline and carriage return. A text holding one takes the full tokeniser.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# BertPreTokenizer on such a text: whitespace (space, tab, CR, LF) separates, and every
# ASCII punctuation mark (underscore included) stands alone; what is left is letters and
# digits. Lowercased text, and the cased form for a cased normaliser.
_WORDS = {True: re.compile(r"[a-z0-9]+|[^a-z0-9 \t\n\r]"),
          False: re.compile(r"[A-Za-z0-9]+|[^A-Za-z0-9 \t\n\r]")}
# A text is read in steps of about this many characters a token still missing, each ending
# at a word boundary, until its words fill the limit: the words of a prefix give the same
# first ids as the whole text. Code chunks at the 256-token limit need 3.7 characters a
# token at the median and 4.7 at the 95th percentile (measured on 3,000 mined chunks), and
# read to their end, 41% of the characters read were never used.
_CHARS_PER_TOKEN = 4
_PROBES = ("", "a", "def parse(path):\n\treturn open(path).read()  # PARSE_ME",
           "self._cache[key] = value_2 ** 3 / 1e-9; x += y || z",
           "averyveryveryverylongidentifierthatwordpiecemustsplitintomanypieces " * 3,
           "x" * 150 + " tail", "Token " * 400)


class Tokens(NamedTuple):
    """Token ids of a list of texts, concatenated in the texts' order.

    Attributes:
        ids: ``(total,)`` int32, every text's ids, truncated and with special tokens.
        lengths: ``(n,)`` int64 ids per text.
        types: ``(total,)`` int32 token type ids, or None when they are all zero.
    """

    ids: np.ndarray
    lengths: np.ndarray
    types: np.ndarray | None

    @staticmethod
    def concatenate(parts: list[Tokens]) -> Tokens:
        if len(parts) == 1:
            return parts[0]
        types = None
        if any(part.types is not None for part in parts):
            types = np.concatenate([np.zeros(len(part.ids), np.int32) if part.types is None
                                    else part.types for part in parts])
        return Tokens(np.concatenate([part.ids for part in parts]),
                      np.concatenate([part.lengths for part in parts]), types)


class _Pieces(dict):
    """word -> its WordPiece ids, asked of the Rust model the first time a word is seen."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def __missing__(self, word: str) -> tuple[int, ...]:
        pieces = self[word] = tuple(token.id for token in self.model.tokenize(word))
        return pieces


class Tokenise:
    """Texts to :class:`Tokens` with the ids ``tokenizer.encode_batch`` gives.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` set up as it will be used (truncation on,
            padding off).
        words: allow the word path (False: the plain and full paths only, as before).
    """

    def __init__(self, tokenizer, *, words: bool = True) -> None:
        from tokenizers import Tokenizer

        self.full = tokenizer
        self.plain = None
        self.lowercase = False
        self.pieces: _Pieces | None = None
        described = json.loads(tokenizer.to_str())
        self.added = tuple({token["content"].lower() for token in described.get("added_tokens", ())
                            if token.get("content")})
        normaliser = described.get("normalizer") or {}
        splitter = described.get("pre_tokenizer") or {}
        if (normaliser.get("type") == "BertNormalizer"
                and splitter.get("type") == "BertPreTokenizer"):
            self.lowercase = bool(normaliser.get("lowercase", True))
            self.plain = Tokenizer.from_str(tokenizer.to_str())
            self.plain.normalizer = None
            if words:
                self._set_up_words(described.get("truncation"))

    def _set_up_words(self, truncation: dict | None) -> None:
        if truncation and (truncation.get("direction", "Right") != "Right"
                           or truncation.get("stride", 0)):
            return
        probe = self.plain.encode("a")
        core = self.plain.encode("a", add_special_tokens=False).ids
        if any(probe.type_ids) or len(core) != 1 or probe.ids.count(core[0]) != 1:
            return
        at = probe.ids.index(core[0])
        self.prefix, self.suffix = tuple(probe.ids[:at]), tuple(probe.ids[at + 1 :])
        specials = len(self.prefix) + len(self.suffix)
        self.limit = None if not truncation else int(truncation["max_length"]) - specials
        if self.limit is not None and self.limit < 1:
            return
        self.words = _WORDS[self.lowercase]
        self.pieces = _Pieces(self.plain.model)
        self._seed(json.loads(self.plain.to_str()).get("model") or {})
        # The argument above is the whole proof; these probes guard against a tokenizer
        # that differs from it in a way its JSON does not show.
        expected = [e.ids for e in self.full.encode_batch(list(_PROBES))]
        if split_rows(self(list(_PROBES))) != expected:
            self.pieces = None

    def _seed(self, model: dict) -> None:
        """Start the kept pieces with the vocabulary's whole words: WordPiece matches the
        longest known prefix first, so a word that is itself in the vocabulary is one piece.
        (A worker process starts with a warm cache; BPE merges give no such rule.)"""
        if model.get("type") != "WordPiece":
            return
        longest = int(model.get("max_input_chars_per_word", 100))
        for token, token_id in (model.get("vocab") or {}).items():
            if len(token) <= longest and self.words.fullmatch(token):
                self.pieces[token] = (int(token_id),)

    def _bypass(self, text: str) -> str | None:
        """The text the plain or word path reads (lowercased as the normaliser would),
        or None when ``text`` must take the full tokenizer."""
        if not text.isascii() or _CONTROL.search(text) is not None:
            return None
        lowered = text.lower()
        if any(token in lowered for token in self.added):
            return None
        return lowered if self.lowercase else text

    def __call__(self, texts: list[str]) -> Tokens:
        if self.plain is None:
            return _from_encodings(_encode(self.full, texts))
        rows: list[list[int] | None] = [None] * len(texts)
        plain_rows, plain_texts, full_rows = [], [], []
        for i, text in enumerate(texts):
            bypass = self._bypass(text)
            if bypass is None:
                full_rows.append(i)
            elif self.pieces is not None:
                rows[i] = self._word_ids(bypass)
            else:
                plain_rows.append(i)
                plain_texts.append(bypass)
        if len(full_rows) == len(texts):
            return _from_encodings(_encode(self.full, texts))
        types = None
        for chosen, tokenizer in ((plain_rows, self.plain), (full_rows, self.full)):
            if chosen:
                encodings = _encode(tokenizer, [texts[i] if tokenizer is self.full
                                                else plain_texts[k] for k, i in enumerate(chosen)])
                for i, encoding in zip(chosen, encodings, strict=True):
                    rows[i] = encoding.ids
                    if any(encoding.type_ids):
                        types = types or {}
                        types[i] = encoding.type_ids
        return _from_rows(rows, types)

    def _word_ids(self, text: str) -> list[int]:
        limit = self.limit
        if limit is None:
            ids = list(chain.from_iterable(map(self.pieces.__getitem__,
                                               self.words.findall(text))))
            return [*self.prefix, *ids, *self.suffix]
        ids: list[int] = []
        start, size = 0, len(text)
        while start < size and len(ids) < limit:
            end = min(size, start + max(64, _CHARS_PER_TOKEN * (limit - len(ids))))
            # A word is letters and digits: never end a step between two of them.
            while end < size and text[end].isalnum() and text[end - 1].isalnum():
                end += 1
            ids.extend(chain.from_iterable(map(self.pieces.__getitem__,
                                               self.words.findall(text, start, end))))
            start = end
        del ids[limit:]
        return [*self.prefix, *ids, *self.suffix]


def split_rows(tokens: Tokens) -> list[list[int]]:
    """Each text's ids as a list (for tests and checks)."""
    if len(tokens.lengths) == 0:
        return []
    return [row.tolist() for row in np.split(tokens.ids, np.cumsum(tokens.lengths)[:-1])]


def _encode(tokenizer, texts: list[str]) -> list:
    # encode_batch_fast skips the character offsets this path never reads (same ids).
    return getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)(texts)


def _from_encodings(encodings: list) -> Tokens:
    types = {i: e.type_ids for i, e in enumerate(encodings) if any(e.type_ids)}
    return _from_rows([e.ids for e in encodings], types or None)


def _from_rows(rows: list, types: dict | None) -> Tokens:
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    ids = np.fromiter(chain.from_iterable(rows), dtype=np.int32, count=int(lengths.sum()))
    flat_types = None
    if types:
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        flat_types = np.zeros(len(ids), dtype=np.int32)
        for i, row in types.items():
            flat_types[starts[i] : starts[i] + lengths[i]] = row
    return Tokens(ids, lengths, flat_types)
