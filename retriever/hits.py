"""Values returned to callers: search hits and corpus documents; hit assembly.

:func:`assemble` turns a ranked list of chunks into hits: it merges the pieces of one
definition (a long function the chunker cut into several chunks) into one hit, and never
returns two overlapping spans of one file, so each of the top k slots holds a different answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from chunking import Chunk

__all__ = ["Hit", "Document", "Candidate", "ChunkRows", "assemble"]

# The chunk table's columns that make a Chunk, in the order of its fields.
_CHUNK_FIELDS = ("id", "path", "language", "start_line", "end_line", "kind", "symbol", "text")
# Chunks a ChunkRows keeps after reading them (their text, a few KB each).
_RECENT = 2048


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
        score: the ranking's own score, higher is better; its scale depends on the mode and
            the pipeline (cosine for dense, BM25 for lexical, a fusion for hybrid, scores
            normalised to the best candidate under the ``code`` priors). Compare it only
            within one answer; :attr:`relevance` is the comparable one.
        text: the hit's raw text (several chunks' text when it spans a split definition).
        chunk_id: stable id of the chunk (of the best-scoring one when the hit spans several).
        relevance: the estimated probability, in [0, 1], that the hit is what was asked for
            (:mod:`retriever.ranking.calibration`); None where nothing estimated it.
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
    relevance: float | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict with the same field names."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Document:
    """A corpus document for :func:`retriever.index_documents` (BEIR-style)."""

    id: str
    text: str
    title: str = ""


@dataclass(slots=True)
class Candidate:
    """A hit being assembled: its best chunk, every chunk it spans, and where it ranks.

    Attributes:
        best: the best-ranked chunk (its score, id, kind and rank are the hit's).
        score: ``best``'s score.
        rank: 0-based position of ``best`` in the ranking.
        pieces: ``(row, chunk)`` of every chunk merged in, in line order.
    """

    best: Chunk
    score: float
    rank: int
    pieces: list[tuple[int, Chunk]] = field(default_factory=list)

    @property
    def start_line(self) -> int:
        return self.pieces[0][1].start_line

    @property
    def end_line(self) -> int:
        return self.pieces[-1][1].end_line

    @property
    def rows(self) -> list[int]:
        return [row for row, _ in self.pieces]

    def text(self) -> str:
        """The pieces' text in line order; lines between two pieces (blank lines the chunker
        left out) come back as empty lines, so line numbers stay right."""
        parts: list[str] = []
        last = None
        for _, chunk in self.pieces:
            if last is not None:
                parts.append("\n" * max(chunk.start_line - last, 1))
            parts.append(chunk.text.removesuffix("\n"))
            last = chunk.end_line
        return "".join(parts)

    def hit(self, relevance: float | None = None) -> Hit:
        chunk = self.best
        text = chunk.text if len(self.pieces) == 1 else self.text()
        return Hit(path=chunk.path, start_line=self.start_line, end_line=self.end_line,
                   symbol=chunk.symbol, kind=chunk.kind, language=chunk.language,
                   score=self.score, text=text, chunk_id=chunk.id, relevance=relevance)


class ChunkRows:
    """The chunks of a chunk table (pyarrow) by row, read one value at a time as a ranking
    is walked: :func:`assemble` stops after about k of the hundreds of ranked rows, and
    taking them all cost more than the search itself. The last few thousand read are kept
    (a repository's good answers recur across queries)."""

    def __init__(self, table) -> None:
        self._table = table
        self._columns: list | None = None
        self._recent: dict[int, Chunk] = {}

    def at(self, row: int) -> Chunk:
        found = self._recent.get(row)
        if found is None:
            if self._columns is None:
                self._columns = [self._table.column(name) for name in _CHUNK_FIELDS]
            found = Chunk(*(column[row].as_py() for column in self._columns))
            if len(self._recent) >= _RECENT:
                self._recent.clear()  # a bound, not an LRU: cheap, and rare
            self._recent[row] = found
        return found


def _adjacent(candidate: Candidate, chunk: Chunk) -> bool:
    """``chunk`` continues ``candidate``'s definition: the same symbol, and no line of code
    between them (at most a blank line, which the chunker does not cover)."""
    if chunk.symbol is None or chunk.symbol != candidate.best.symbol:
        return False
    return (chunk.start_line <= candidate.end_line + 2
            and candidate.start_line <= chunk.end_line + 2)


def _overlaps(candidate: Candidate, start: int, end: int) -> bool:
    return start <= candidate.end_line and candidate.start_line <= end


def _absorb(into: Candidate, other: Candidate) -> None:
    into.pieces = sorted(into.pieces + other.pieces, key=lambda piece: piece[1].start_line)
    if other.rank < into.rank:
        into.best, into.score, into.rank = other.best, other.score, other.rank


def assemble(ranked: Iterable[tuple[int, Chunk, float]], k: int) -> list[Candidate]:
    """The first ``k`` hits of a ranking, one per definition.

    A chunk that continues a hit already taken (same file, same symbol, adjacent lines: a
    piece of one long definition) is merged into it, so the hit spans both and keeps the
    better score and rank; a chunk overlapping a hit of its file is dropped. Merging happens
    before the cut, so ``k`` different hits come back when the ranking has them.

    Args:
        ranked: ``(row, chunk, score)`` best first.
        k: hits wanted.

    Returns:
        Up to ``k`` candidates, best first.
    """
    hits: list[Candidate] = []
    by_path: dict[str, list[Candidate]] = {}
    for rank, (row, chunk, score) in enumerate(ranked):
        mine = by_path.setdefault(chunk.path, [])
        if any(_overlaps(c, chunk.start_line, chunk.end_line) for c in mine):
            continue  # never two overlapping spans of one file: the better-ranked one wins
        new = Candidate(best=chunk, score=score, rank=rank, pieces=[(row, chunk)])
        # ``mine`` is in rank order, so the first neighbour is the best-ranked one; a piece
        # between two taken pieces of one definition joins all three.
        neighbours = [c for c in mine if _adjacent(c, chunk)]
        if neighbours:
            into = neighbours[0]
            _absorb(into, new)
            for other in neighbours[1:]:
                _absorb(into, other)
                mine.remove(other)
                hits.remove(other)
            continue
        if len(hits) == k:
            break
        mine.append(new)
        hits.append(new)
    return hits
