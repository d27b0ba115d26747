"""The chunk value type, the chunker protocol, and how a file name becomes a chunk path."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from retriever.errors import InputError

__all__ = ["Chunk", "Chunker", "chunk_id", "embedding_text", "escape_path", "unescape_path"]

_ESCAPED_BYTE = re.compile(r"\\x([89a-f][0-9a-f])")


def escape_path(path: str) -> str:
    """``path`` as valid UTF-8: each undecodable byte of the name becomes ``\\xNN``.

    Names from the file system carry undecodable bytes as surrogate escapes
    (``os.fsdecode``); valid names come back unchanged.
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = path.encode("utf-8", "surrogateescape")  # how git and POSIX Python decode
        except UnicodeEncodeError:
            return path.encode("utf-8", "backslashreplace").decode("utf-8")  # not a file name
        return raw.decode("utf-8", "backslashreplace")
    return path


def unescape_path(path: str) -> str:
    """The name on disk (with surrogate escapes) of a path that :func:`escape_path` escaped.

    Only apply it to a path that is not found as written: a valid name may itself contain
    the text ``\\xff``, and :func:`chunking.walk` lists such a file under its own name.
    """
    return _ESCAPED_BYTE.sub(lambda match: chr(0xDC00 + int(match[1], 16)), path)


def chunk_id(path: str, start_line: int, end_line: int, text: str) -> str:
    """Stable id of a chunk: a hash of where it is and what it holds.

    Raises:
        InputError: ``path`` is not valid UTF-8 (a file name with undecodable bytes, as
            ``os.fsdecode`` gives it); :func:`escape_path` makes it valid.
    """
    digest = hashlib.blake2b(digest_size=12)
    try:
        digest.update(f"{path}\0{start_line}\0{end_line}\0".encode())
    except UnicodeEncodeError:
        # The chunk table stores Arrow strings, so such a path could not be written anyway.
        raise InputError(
            f"The chunk path {path!r} is not valid UTF-8; pass it through "
            "chunking.chunk.escape_path (chunking.walk does so for every file it lists)."
        ) from None
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Chunk:
    """One row of the chunk table; row ``i`` of the table is vector ``i`` of the index.

    Attributes:
        id: stable hash of (path, start_line, end_line, text).
        path: relative to the indexed root, with ``/`` separators, valid UTF-8: undecodable
            bytes of a file name are written ``\\xNN`` (see :func:`escape_path`).
        language: ``"python"``, ``"go"``, ..., ``"markdown"``, ``"text"``.
        start_line: 1-based, inclusive.
        end_line: 1-based, inclusive.
        kind: ``"function"``, ``"method"``, ``"class"``, ``"module"``, ``"block"``,
            ``"section"``, ``"window"``, ...
        symbol: scope path such as ``"Session.send"``, or None at module level.
        text: the raw source lines ``start_line..end_line``.
    """

    id: str
    path: str
    language: str
    start_line: int
    end_line: int
    kind: str
    symbol: str | None
    text: str

    @classmethod
    def make(
        cls,
        *,
        path: str,
        language: str,
        start_line: int,
        end_line: int,
        kind: str,
        symbol: str | None,
        text: str,
    ) -> Chunk:
        """Build a chunk and compute its id."""
        return cls(
            id=chunk_id(path, start_line, end_line, text),
            path=path,
            language=language,
            start_line=start_line,
            end_line=end_line,
            kind=kind,
            symbol=symbol,
            text=text,
        )


def embedding_text(chunk: Chunk) -> str:
    """The text an encoder sees: a short header (path and scope) in front of the raw text.

    The header lets a query such as "session send retries" match code whose body never
    names its own file or class. The chunk table keeps the raw text.
    """
    header = chunk.path if not chunk.symbol else f"{chunk.path} :: {chunk.symbol}"
    return f"{header}\n{chunk.text}"


@runtime_checkable
class Chunker(Protocol):
    """Cuts one file's source into chunks that do not overlap and cover every non-blank line."""

    def chunk(self, path: str, source: str) -> Iterator[Chunk]: ...

    def config(self) -> dict: ...
