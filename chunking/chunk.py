"""The chunk value type and the chunker protocol."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Chunk", "Chunker", "chunk_id", "embedding_text"]


def chunk_id(path: str, start_line: int, end_line: int, text: str) -> str:
    """Stable id of a chunk: a hash of where it is and what it holds."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"{path}\0{start_line}\0{end_line}\0".encode())
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Chunk:
    """One row of the chunk table; row ``i`` of the table is vector ``i`` of the index.

    Attributes:
        id: stable hash of (path, start_line, end_line, text).
        path: relative to the indexed root, with ``/`` separators.
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
