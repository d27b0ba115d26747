"""An opened index: the query side of the engine."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from pathlib import Path

import numpy as np

from chunking import Chunk
from indexing.kinds import index_class
from indexing.lexical import BM25Index
from indexing.manifest import read_manifest
from indexing.quantize import RowMap
from indexing.store import current_generation
from indexing.table import CHUNKS, VECTORS, open_labels, open_vectors, read_table, rows_to_chunks
from retriever import registry
from retriever.errors import EncoderMismatchError, IndexFormatError, InputError
from retriever.hits import Hit
from retriever.pipeline import Results, Retrieve, Stage, fuse

__all__ = ["Index", "SearchMode"]

# Candidates each first stage hands to fusion; deeper lists cost little and let a document
# that one side ranks modestly still surface.
_FUSION_DEPTH = 100


class SearchMode(str, Enum):
    """How :meth:`Index.search` ranks: ``SearchMode("hybrid")`` accepts the plain string."""

    HYBRID = "hybrid"
    DENSE = "dense"
    LEXICAL = "lexical"

    @classmethod
    def parse(cls, value: str | SearchMode) -> SearchMode:
        try:
            return cls(value)
        except ValueError:
            modes = ", ".join(m.value for m in cls)
            raise InputError(f"Unknown search mode {value!r}; choose one of: {modes}.") from None


class Index:
    """A read-only view of one generation of an index directory.

    Opening resolves the live generation once; a writer publishing a newer one later does
    not disturb this object. Use :func:`retriever.open` rather than this constructor.

    Args:
        directory: the index directory.
        encoder: an encoder instance for queries; must have the fingerprint of the one that
            built the index. By default the manifest's encoder is rebuilt on first use.
    """

    def __init__(self, directory: str | Path, *, encoder=None) -> None:
        self.directory = Path(directory)
        self.generation = current_generation(self.directory)
        self.manifest = read_manifest(self.generation)
        self._chunks = read_table(self.generation / CHUNKS)
        rows = self._chunks.num_rows
        if rows != self.manifest["counts"].get("chunks"):
            raise IndexFormatError(
                f"The chunk table at {self.generation} has {rows} rows but the manifest "
                f"records {self.manifest['counts'].get('chunks')}. Rebuild the index with "
                "`retriever index PATH --force`."
            )
        dim = self.manifest["encoder"]["dim"]
        self._vectors = open_vectors(self.generation / VECTORS, rows=rows, dim=dim)
        entry = self.manifest["indexes"]["dense"]
        try:
            kind = index_class(entry["name"])
        except InputError as exc:
            raise IndexFormatError(
                f"The index at {self.generation} uses a vector index kind this version does not "
                f"know ({exc}) Upgrade dense-retriever or rebuild with `retriever index --force`."
            ) from None
        # Labels map what the vector index returns to rows; indexes written before labels
        # existed hold row numbers.
        labels = open_labels(self.generation / entry["labels"]) if entry.get("labels") else None
        self._rows = RowMap(labels) if labels is not None else None
        # Memory-mapped: opening is fast and the pages are shared between processes.
        self._dense = kind.load(
            self.generation / entry.get("path", "dense"), mmap=True,
            vectors=self._vectors, labels=labels, **entry["config"],
        )
        self._lexical = BM25Index.load(self.generation / "lexical")
        if len(self._dense) != rows or len(self._lexical) != rows:
            raise IndexFormatError(
                f"The dense or lexical index at {self.generation} does not match its "
                f"{rows} chunks. Rebuild the index with `retriever index PATH --force`."
            )
        self._encoder = None
        if encoder is not None:
            self._check_encoder(encoder)
            self._encoder = encoder
        self.last_build = None

    def __len__(self) -> int:
        return self._chunks.num_rows

    def __repr__(self) -> str:
        return f"Index({str(self.directory)!r}, chunks={len(self)})"

    def chunks(self) -> list[Chunk]:
        """Every chunk in the index, in row order (row i is vector i)."""
        return rows_to_chunks(self._chunks, range(len(self)))

    @property
    def vectors(self) -> np.ndarray:
        """The ``(n, dim)`` float32 vectors, memory-mapped read-only; row i is chunk i."""
        return self._vectors

    @property
    def encoder(self):
        """The query encoder (built from the manifest on first use)."""
        if self._encoder is None:
            spec = self.manifest["encoder"]
            encoder = registry.create("encoder", spec["name"], spec["config"])
            self._check_encoder(encoder)
            self._encoder = encoder
        return self._encoder

    def _check_encoder(self, encoder) -> None:
        spec = self.manifest["encoder"]
        if encoder.fingerprint() != spec["fingerprint"] or encoder.dim != spec["dim"]:
            raise EncoderMismatchError(
                f"The index at {self.directory} was built with the {spec['name']} encoder "
                f"{spec['config'].get('model', '')!s} (fingerprint {spec['fingerprint']}, "
                f"dim {spec['dim']}), but the query encoder has fingerprint "
                f"{encoder.fingerprint()} (dim {encoder.dim}). Query with the encoder that "
                "built it, or rebuild the index with this encoder: "
                "`retriever index PATH --force --encoder ...`."
            )

    def stage(
        self, mode: str | SearchMode = "hybrid", *, depth: int = _FUSION_DEPTH, **knobs
    ) -> Stage:
        """The pipeline stage behind a search mode, for composing with ``%``, ``>>``, fuse.

        Args:
            knobs: per-query vector index parameters (``nprobe``, ``ef_search``,
                ``rescore_multiplier``), as for :meth:`search`.
        """
        mode = SearchMode.parse(mode)
        knobs = {key: value for key, value in knobs.items() if value is not None}

        def dense_search(queries: Sequence[str], k: int):
            return self._dense_search(queries, k, **knobs)

        dense = Retrieve(dense_search, k=depth, name="dense")
        lexical = Retrieve(self._lexical.search, k=depth, name="lexical")
        if mode is SearchMode.DENSE:
            return dense
        if mode is SearchMode.LEXICAL:
            return lexical
        return fuse([dense, lexical], "rrf")

    def _dense_search(self, queries: Sequence[str], k: int, **knobs):
        return self.search_vectors(self.encoder.encode_queries(list(queries)), k, **knobs)

    def search_vectors(
        self,
        queries: np.ndarray,
        k: int,
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
        rescore_multiplier: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Dense search with already-encoded queries.

        Args:
            queries: ``(nq, dim)`` float32 unit vectors from this index's encoder.
            k: results per query.
            nprobe, ef_search, rescore_multiplier: per-query knobs (IVF lists visited, HNSW
                breadth, binary/Matryoshka candidates per result); None uses the index's own.

        Returns:
            ``(scores, rows)``: ``(nq, k)`` float32 and int64 chunk rows, ``-1`` padding.
        """
        scores, ids = self._dense.search(
            queries, k, nprobe=nprobe, ef_search=ef_search,
            rescore_multiplier=rescore_multiplier,
        )
        if self._rows is not None:
            ids = self._rows.rows(ids)
        return scores, ids

    def search(
        self, query: str, k: int = 10, mode: str | SearchMode = "hybrid", **knobs
    ) -> list[Hit]:
        """The top ``k`` chunks for ``query``, best first.

        Args:
            query: free text or code; must not be empty.
            k: number of hits wanted (fewer when the index is smaller).
            mode: ``"hybrid"`` (dense + BM25, reciprocal-rank fusion), ``"dense"`` or
                ``"lexical"``.
            knobs: ``nprobe=``, ``ef_search=``, ``rescore_multiplier=``: per-query vector
                index parameters (passed to FAISS as SearchParameters, never set on the
                shared index).
        """
        return self.search_many([query], k=k, mode=mode, **knobs)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        mode: str | SearchMode = "hybrid",
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
        rescore_multiplier: int | None = None,
    ) -> list[list[Hit]]:
        """Answer a batch of queries in one call; one list of hits per query."""
        if isinstance(queries, str):
            raise InputError("search_many() takes a list of queries; use search() for one.")
        for query in queries:
            if not isinstance(query, str) or not query.strip():
                raise InputError("The query is empty. Pass some words or code to search for.")
        if not isinstance(k, int) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}.")
        if not queries:
            return []
        depth = max(_FUSION_DEPTH, 3 * k)
        results = self.stage(
            mode, depth=depth, nprobe=nprobe, ef_search=ef_search,
            rescore_multiplier=rescore_multiplier,
        )(list(queries))
        return [self._hits(results, q, k) for q in range(len(queries))]

    def _hits(self, results: Results, q: int, k: int) -> list[Hit]:
        keep = results.ids[q] >= 0
        rows = results.ids[q][keep].tolist()
        scores = results.scores[q][keep].tolist()
        hits: list[Hit] = []
        taken: dict[str, list[tuple[int, int]]] = {}
        for chunk, score in zip(rows_to_chunks(self._chunks, rows), scores, strict=True):
            spans = taken.setdefault(chunk.path, [])
            # Never return two overlapping spans of one file: the better-ranked one wins.
            if any(chunk.start_line <= end and start <= chunk.end_line for start, end in spans):
                continue
            spans.append((chunk.start_line, chunk.end_line))
            hits.append(Hit(
                path=chunk.path, start_line=chunk.start_line, end_line=chunk.end_line,
                symbol=chunk.symbol, kind=chunk.kind, language=chunk.language,
                score=score, text=chunk.text, chunk_id=chunk.id,
            ))
            if len(hits) == k:
                break
        return hits

    def info(self) -> dict:
        """The manifest plus where the index lives and its size on disk in bytes."""
        size = sum(p.stat().st_size for p in self.generation.rglob("*") if p.is_file())
        return {
            **self.manifest,
            "directory": str(self.directory),
            "generation": self.generation.name,
            "bytes": size,
        }
