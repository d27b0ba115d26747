"""The static model's vocabulary: the teacher's WordPiece vocabulary, pruned and extended by
frequent code words.

A WordPiece tokenizer lowercases and splits on whitespace and punctuation, so ``get_user``
reaches it as ``get``, ``_``, ``user`` but ``getattr``, ``isinstance`` or ``DataLoader`` reach
it whole, and it spells them in pieces (``get ##att ##r``) whose vectors mean little alone. Such
words, frequent in the mined code, become tokens of their own: added to the WordPiece model's
vocabulary (not as "added tokens", which would match inside other words), they win the
longest-match lookup. Each new token's teacher text is its most frequent spelling split the way
``indexing/tokenize.py`` splits identifiers (``DataLoader`` -> ``data loader``), so its first
vector is what the teacher makes of those words.

With ``split_case`` the tokenizer also cuts identifiers at case changes before it lowercases
(``getUserByID`` -> ``get user by id``, ``HTTPServer`` -> ``http server``), as the lexical
index does: a query's words then meet the same tokens in code, whatever the naming style, and
the code words left to add are the ones written as one lowercase word (``kwargs``, ``stdout``).

Room comes from the teacher's ``[unusedN]`` placeholders and the non-ASCII tokens the code
never uses. Every ASCII token stays, so any ASCII word is still spelled as before; a word
that needs a dropped piece becomes the unknown token, which encoders drop.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from itertools import chain
from pathlib import Path

import numpy as np

from retriever.errors import InputError

__all__ = ["CASE_SPLIT", "Vocabulary", "build_vocabulary", "split_identifier", "token_counts"]

# Parts of an identifier, as indexing/tokenize.py cuts them: acronyms before a capitalised
# word, words, trailing acronyms, digits (the lexical index's rules, kept in step by a test).
_PART = re.compile(r"[A-Z]{2,}s(?![a-z])|[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_CODE_WORD = re.compile(r"[a-z][a-z0-9]{2,39}")
# Normalizers (tokenizers' JSON form) that put a space at each case change of an identifier:
# lower or digit -> upper (getUser), and an acronym's last capital before a word (HTTPServer).
# Zero-width matches, so nothing of the text is lost; they run before the teacher's normalizer
# lowercases.
CASE_SPLIT = [
    {"type": "Replace", "pattern": {"Regex": "(?<=[a-z0-9])(?=[A-Z])"}, "content": " "},
    {"type": "Replace", "pattern": {"Regex": "(?<=[A-Z])(?=[A-Z][a-z])"}, "content": " "},
]


def split_identifier(word: str) -> str:
    """``getUserByID`` -> ``get user by id``: an identifier's parts, lowercased, spaced."""
    parts = [part.lower() for part in _PART.findall(word)]
    return " ".join(parts) if parts else word.lower()


class Vocabulary:
    """A tokenizer description plus, per token, what the teacher should read to embed it.

    Attributes:
        tokenizer: the ``tokenizer.json`` content (a dict) of the static model.
        sources: per token id, an int (the teacher's own id of that token) or a str (a text
            the teacher tokenizes).
    """

    def __init__(self, tokenizer: dict, sources: list[int | str]) -> None:
        self.tokenizer = tokenizer
        self.sources = sources

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "tokenizer.json").write_text(json.dumps(self.tokenizer, ensure_ascii=False),
                                               encoding="utf-8")
        (folder / "token_sources.json").write_text(json.dumps(self.sources), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> Vocabulary:
        try:
            tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
            sources = json.loads((folder / "token_sources.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{folder}: not a vocabulary folder ({exc}); build it with "
                             "`python -m encoders.train.distill vocab`.") from exc
        return cls(tokenizer, sources)

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def code_words(self) -> int:
        """Tokens added for code words (not the teacher's own)."""
        return sum(isinstance(source, str) for source in self.sources)

    def card(self) -> dict:
        """What a model card says of the vocabulary: its size, code words and a hash."""
        digest = hashlib.blake2b(json.dumps(self.tokenizer).encode(), digest_size=16)
        return {"tokens": len(self), "code_words": self.code_words, "hash": digest.hexdigest()}


def token_counts(tokenizer, texts: Iterable[str], size: int, batch: int = 2048) -> np.ndarray:
    """How often each token id occurs in ``texts`` (no special tokens), as int64 counts."""
    counts = np.zeros(size, dtype=np.int64)
    texts = list(texts)
    for start in range(0, len(texts), batch):
        encodings = tokenizer.encode_batch(texts[start : start + batch], add_special_tokens=False)
        ids = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int64)
        counts += np.bincount(ids, minlength=size)[:size]
    return counts


def build_vocabulary(
    teacher_tokenizer: Path, texts: list[str], *, size: int, min_count: int = 5,
    split_case: bool = False,
) -> Vocabulary:
    """Prune the teacher's WordPiece vocabulary and fill it up to ``size`` with code words.

    Args:
        teacher_tokenizer: the teacher's ``tokenizer.json`` (a WordPiece model).
        texts: the code (and docstrings) the words are counted in.
        size: the number of tokens wanted; fewer when too few words reach ``min_count``.
        min_count: a word must occur this often to become a token.
        split_case: cut identifiers at case changes before lowercasing (:data:`CASE_SPLIT`);
            words are then counted as that tokenizer sees them.

    Raises:
        InputError: the teacher's tokenizer is not WordPiece, or ``size`` leaves no room for
            the teacher's kept tokens.
    """
    from tokenizers import Tokenizer

    spec = json.loads(Path(teacher_tokenizer).read_text(encoding="utf-8"))
    model = spec.get("model", {})
    if model.get("type") != "WordPiece":
        raise InputError(f"{teacher_tokenizer}: the teacher's tokenizer must be WordPiece, "
                         f"not {model.get('type')!r}.")
    spec = copy.deepcopy(spec)
    if split_case:
        original = [spec["normalizer"]] if spec.get("normalizer") else []
        spec["normalizer"] = {"type": "Sequence", "normalizers": CASE_SPLIT + original}
    teacher = Tokenizer.from_str(json.dumps(spec))
    teacher.no_padding()
    teacher.no_truncation()
    vocab: dict[str, int] = model["vocab"]
    used = token_counts(teacher, texts, len(vocab))
    specials = {token["content"] for token in spec.get("added_tokens", [])}
    kept = [
        token for token, index in sorted(vocab.items(), key=lambda item: item[1])
        if token in specials or used[index] >= min_count
        or (token.isascii() and not token.startswith("[unused"))
    ]
    if len(kept) > size:
        raise InputError(f"size {size} is below the {len(kept)} teacher tokens kept; raise it.")
    spellings: Counter[str] = Counter()
    pre = teacher.pre_tokenizer
    # Words as the tokenizer meets them: after the case split (which needs the case, so the
    # lowercasing normalizer runs with it) when asked, else as written.
    normalize = teacher.normalizer.normalize_str if split_case else (lambda text: text)
    for text in texts:
        spellings.update(word for word, _ in pre.pre_tokenize_str(normalize(text)))
    words: Counter[str] = Counter()
    best: dict[str, tuple[int, str]] = {}
    for spelling, count in spellings.items():
        word = spelling.lower()
        if _CODE_WORD.fullmatch(word) and word not in vocab:
            words[word] += count
            if count > best.get(word, (0, ""))[0]:
                best[word] = (count, spelling)
    room = size - len(kept)
    added = [w for w, c in words.most_common() if c >= min_count][:room]
    new_vocab = {token: i for i, token in enumerate(kept + added)}
    sources: list[int | str] = [vocab[t] for t in kept]
    sources += [split_identifier(best[w][1]) for w in added]
    tokenizer = copy.deepcopy(spec)
    tokenizer["model"]["vocab"] = new_vocab
    tokenizer["truncation"] = None
    tokenizer["padding"] = None
    for token in tokenizer.get("added_tokens", []):
        token["id"] = new_vocab[token["content"]]
    for special in (tokenizer.get("post_processor") or {}).get("special_tokens", {}).values():
        special["ids"] = [new_vocab[t] for t in special["tokens"]]
    return Vocabulary(tokenizer, sources)
