"""Values returned to callers: search hits and corpus documents."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["Hit", "Document"]


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result.

    Attributes:
        path: file path relative to the indexed root with ``/`` separators (for a corpus
            built with :func:`retriever.index_documents`, the document id).
        start_line: first line, 1-based, inclusive.
        end_line: last line, 1-based, inclusive.
        symbol: scope path such as ``"Session.send"``, or None.
        kind: ``"function"``, ``"class"``, ``"section"``, ``"document"``...
        language: ``"python"``, ``"markdown"``, ``"text"``...
        score: higher is better; its scale depends on the mode (cosine for dense, BM25
            for lexical, reciprocal-rank fusion for hybrid).
        text: the chunk's raw text.
        chunk_id: stable id of the chunk.
    """

    path: str
    start_line: int
    end_line: int
    symbol: str | None
    kind: str
    language: str
    score: float
    text: str
    chunk_id: str

    def to_dict(self) -> dict:
        """A JSON-ready dict with the same field names."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Document:
    """A corpus document for :func:`retriever.index_documents` (BEIR-style)."""

    id: str
    text: str
    title: str = ""
