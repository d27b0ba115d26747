"""A code-aware tokenizer for the lexical (BM25) index.

Source code names things in compounds (``getUserById``, ``HTTPServerError``, ``max_retries``,
``content-type``) while people search in words ("get user by id", "server error"). So each
identifier yields both its whole lowercased form, which rewards exact matches, and its parts,
which let words find compounds::

    >>> code_tokens("raise HTTPServerError(get_user_by_id(42))")  # doctest: +NORMALIZE_WHITESPACE
    ['raise', 'httpservererror', 'http', 'server', 'error',
     'get_user_by_id', 'get', 'user', 'id', '42']

Rules, in order:

- Identifiers are runs of Unicode word characters (letters, digits, ``_``); kebab compounds
  (``content-type``) join word runs whose parts start with a letter, so ``a-1`` stays apart.
- Parts split on ``_`` and ``-``, on lower-to-upper case changes, before the last capital of an
  acronym (``HTTPServer`` -> ``http``, ``server``), and on letter/digit boundaries
  (``sha256`` -> ``sha``, ``256``). A trailing plural ``s`` stays with its acronym (``URLs``).
  Case splitting knows ASCII, Latin-1, Greek and Cyrillic capitals; scripts without case
  (CJK, ...) keep an identifier whole.
- The whole identifier (lowercased, leading and trailing ``_`` stripped) is emitted only when it
  has more than one part, so a plain word counts once, not twice.
- Parts of one character and English stopwords are dropped. Code keywords that are also English
  stopwords (``if``, ``for``, ``in``, ``is``, ``not``, ``and``, ``or``, ``as``, ``with``,
  ``from``) go too: they occur in nearly every chunk and in natural-language queries alike, so
  they carry no signal. Other keywords (``def``, ``class``, ``return``, ``async``, ``yield``)
  stay: their document frequency already keeps their weight low, and a query that names one
  ("async generator") means it. Whole identifiers are never dropped.
- With ``stem=True`` parts (not whole compounds) go through the Snowball English stemmer from
  PyStemmer, so ``retries`` and ``retry`` meet; compounds stay exact.

Queries and documents must go through the same tokenizer with the same ``stem`` setting;
:class:`indexing.lexical.BM25Index` records it in its config for that reason.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable

from retriever.errors import MissingDependencyError

__all__ = ["CodeTokenizer", "code_tokens", "stemmer_available"]

# Identifier candidates: word runs, optionally joined by "-" when the next run starts with a
# letter (kebab-case). "_" is a word character, so snake_case is one match.
_IDENTIFIER = re.compile(r"\w+(?:-(?=[^\W\d_])\w+)*")

# Capital letters we split on: ASCII, Latin-1 (without the multiplication sign), Greek, Cyrillic.
_UPPER = "A-Z\u00c0-\u00d6\u00d8-\u00de\u0391-\u03a9\u0410-\u042f"
# Any other letter counts as lowercase; digits and "_" are excluded so they split.
_LOWER = rf"[^\W\d_{_UPPER}]"
_PART = re.compile(
    rf"[{_UPPER}]{{2,}}s(?!{_LOWER})"  # plural acronym: URLs, IDs
    rf"|[{_UPPER}]+(?=[{_UPPER}]{_LOWER})"  # acronym before a capitalised word: HTTP|Server
    rf"|[{_UPPER}]?{_LOWER}+"  # word: get, User
    rf"|[{_UPPER}]+"  # trailing acronym: ID
    r"|\d+"  # digits
)

# A small English list, deliberately: long lists (NLTK's 179 words) also remove words that
# matter in code ("any", "all", "each", "only", "same", "own", "up", "down", "off", "over").
_STOPWORDS = frozenset(
    """
    a an and are as at be been but by for from had has have he her his how i if in into is it
    its me my no not of on or our she so such than that the their them then there these they
    this those to was we were what when where which who whom why will with would you your
    """.split()
)

# Raw identifiers are Zipfian: a small cache of their expansion skips the part regex, the
# stopword test and the stemmer for almost every token. Cleared when full, not LRU: cheaper.
_CACHE_LIMIT = 1 << 17


@functools.cache
def stemmer_available() -> bool:
    """Whether PyStemmer can be imported, i.e. whether ``stem=True`` can work here."""
    try:
        import Stemmer  # noqa: F401
    except ImportError:
        return False
    return True


class CodeTokenizer:
    """Turns source text or a query into BM25 tokens (see the module docstring for the rules).

    Safe to share between threads.

    Args:
        stem: Apply the Snowball English stemmer to identifier parts. Requires PyStemmer.

    Raises:
        MissingDependencyError: ``stem=True`` and PyStemmer is not installed.
    """

    def __init__(self, *, stem: bool = False) -> None:
        self.stem = stem
        self._stem_word = None
        if stem:
            try:
                import Stemmer
            except ImportError as exc:
                raise MissingDependencyError(
                    "Stemming needs PyStemmer: pip install PyStemmer "
                    "(or build the lexical index with stem=False)."
                ) from exc
            self._stem_word = Stemmer.Stemmer("english").stemWord
        self._cache: dict[str, tuple[str, ...]] = {}
        # PyStemmer's stemmer objects are not thread-safe; only cache misses take the lock.
        self._lock = threading.Lock()

    def __call__(self, text: str) -> list[str]:
        """Tokenize one text.

        Args:
            text: Source code, prose or a query.

        Returns:
            Tokens in order of appearance: for each identifier its whole form (if compound)
            followed by its kept parts.
        """
        cache = self._cache
        tokens: list[str] = []
        extend = tokens.extend
        for raw in _IDENTIFIER.findall(text):
            expansion = cache.get(raw)
            if expansion is None:
                expansion = self._expand(raw)
            extend(expansion)
        return tokens

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        """Tokenize many texts; ``[self(t) for t in texts]``."""
        return [self(text) for text in texts]

    def _expand(self, raw: str) -> tuple[str, ...]:
        pieces = _PART.findall(raw)
        parts = [p for p in (piece.lower() for piece in pieces) if len(p) > 1]
        parts = [p for p in parts if p not in _STOPWORDS]
        if self._stem_word is not None:
            with self._lock:
                parts = [self._stem_word(p) if not p.isdigit() else p for p in parts]
        if len(pieces) > 1:
            whole = raw.strip("_").lower()
            expansion = (whole, *parts)
        else:
            expansion = tuple(parts)
        with self._lock:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[raw] = expansion
        return expansion


@functools.cache
def _shared_tokenizer(stem: bool) -> CodeTokenizer:
    return CodeTokenizer(stem=stem)


def code_tokens(text: str, *, stem: bool = False) -> list[str]:
    """Tokenize ``text`` for BM25 with a shared :class:`CodeTokenizer`.

    Args:
        text: Source code, prose or a query.
        stem: Stem identifier parts with the Snowball English stemmer (needs PyStemmer).

    Returns:
        The tokens, lowercase, in order of appearance.

    Raises:
        MissingDependencyError: ``stem=True`` and PyStemmer is not installed.
    """
    return _shared_tokenizer(stem)(text)
