"""An opened index: the query side of the engine."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from enum import Enum
from pathlib import Path

import numpy as np

from chunking import Chunk
from indexing.quantize import RowMap
from indexing.store import current_generation
from indexing.table import rows_to_chunks
from retriever.build import same_encoder
from retriever.errors import EncoderMismatchError, IndexFormatError, InputError
from retriever.filters import Filter
from retriever.generation import Generation
from retriever.hits import ChunkRows, Hit, assemble
from retriever.pipeline import Results, Retrieve, Stage, fuse
from retriever.ranking import calibration
from retriever.tier_vectors import TierVectors, manifest_encoder, tier_entry

__all__ = ["Index", "SearchMode", "MAX_K"]

# Candidates each first stage hands to fusion; deeper lists cost little and let a document
# that one side ranks modestly still surface.
_FUSION_DEPTH = 100
# The most hits one query returns (k is also capped by the number of chunks): result arrays
# are sized by k, so an unbounded k is a way to exhaust memory.
MAX_K = 10_000
_REBUILD = "Rebuild the index with `retriever index PATH --force`."
# Query batches whose vectors an index keeps (a few KB each).
_ENCODED_BATCHES = 256


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
    Opening never loads a model: the query encoder is built on the first dense search.

    Args:
        directory: the index directory.
        encoder: an encoder instance for queries; must have the fingerprint of the one that
            built the index. By default the manifest's encoder is rebuilt on first use.
    """

    def __init__(self, directory: str | Path, *, encoder=None) -> None:
        self.directory = Path(directory)
        self.generation = current_generation(self.directory)
        opened = Generation(self.generation)
        self.manifest = opened.manifest
        self._chunks = opened.chunk_table()
        rows = self._chunks.num_rows
        lexical = opened.components("lexical")
        if len(lexical) != 1:
            raise IndexFormatError(f"The index at {self.generation} has no lexical index. "
                                   + _REBUILD)
        self._lexical = opened.load(lexical[0], mmap=False)
        self._encoder_entry, self._vectors, self._dense, self._rows = None, None, None, None
        dense = _best_vector_component(opened)
        if dense is not None:
            self._encoder_entry = opened.encoder(dense["encoder"])
            self._vectors = opened.vectors(dense["encoder"])
            # Labels map what the vector index returns to rows.
            labels = opened.labels()
            self._rows = RowMap(labels)
            # Memory-mapped: opening is fast and the pages are shared between processes.
            self._dense = opened.load(dense, mmap=True, vectors=self._vectors, labels=labels,
                                      **dense["config"])
        if len(self._lexical) != rows or (self._dense is not None and len(self._dense) != rows):
            raise IndexFormatError(
                f"The dense or lexical index at {self.generation} does not match its "
                f"{rows} chunks. {_REBUILD}"
            )
        self._encoder = None
        # Recently encoded query batches: the relevance estimate and a filtered search's
        # deeper list want them again, and a person or an agent often repeats a query.
        self._encoded: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._encoded_lock = threading.Lock()
        self._columns = None
        self._chunk_rows = ChunkRows(self._chunks)
        self._opened = opened
        self._loaded: dict[str, object] = {}
        self._tiers: dict[str, TierVectors | None] = {}
        if encoder is not None:
            self.use_encoder(encoder)
        self.last_build = None
        # True when a refresh was wanted but another process holds the writer lock: this
        # object answers from the live generation, which may be behind the tree.
        self.stale = False

    def __len__(self) -> int:
        return self._chunks.num_rows

    def __repr__(self) -> str:
        return f"Index({str(self.directory)!r}, chunks={len(self)})"

    def chunks(self) -> list[Chunk]:
        """Every chunk in the index, in row order (row i is vector i)."""
        return rows_to_chunks(self._chunks, range(len(self)))

    @property
    def root(self) -> Path | None:
        """The indexed source tree (None for a corpus index). The manifest stores it relative
        to the index folder, so a moved or shared tree keeps working and names no machine."""
        relative = self.manifest["source"]["root"]
        return None if relative is None else (self.directory / relative).resolve()

    @property
    def tier(self) -> str:
        """What dense and hybrid search use: ``"dense"`` (a transformer's vectors), ``"fast"``
        (a static encoder's) or ``"lexical"`` (no vectors)."""
        return "lexical" if self._encoder_entry is None else self._encoder_entry["tier"]

    @property
    def has_vectors(self) -> bool:
        """False for a lexical-only index (dense and hybrid search are then refused)."""
        return self._dense is not None

    @property
    def vectors(self) -> np.ndarray:
        """The ``(n, dim)`` float32 vectors, memory-mapped read-only; row i is chunk i."""
        self._need_vectors()
        return self._vectors

    @property
    def encoder(self):
        """The query encoder (built from the manifest on first use)."""
        self._need_vectors()
        if self._encoder is None:
            encoder = manifest_encoder(self._encoder_entry, self.directory)
            self._check_encoder(encoder)
            self._encoder = encoder
        return self._encoder

    def component(self, role: str):
        """The generation's component of ``role`` (``"symbols"``, ...), loaded on first use
        and kept; None when the index has none (an index built before it was registered)."""
        if role not in self._loaded:
            entries = self._opened.components(role)
            self._loaded[role] = self._opened.load(entries[0]) if entries else None
        return self._loaded[role]

    def use_encoder(self, encoder) -> None:
        """Query with ``encoder`` (an instance, e.g. one already loaded); it must have the
        fingerprint of the encoder that built the index (EncoderMismatchError otherwise)."""
        self._check_encoder(encoder)
        self._encoder = encoder
        with self._encoded_lock:
            self._encoded.clear()

    def _need_vectors(self) -> None:
        if self._dense is None:
            raise InputError(
                f"The index at {self.directory} is lexical only (built without an encoder): "
                "search it with mode='lexical' (--mode lexical), or rebuild it with vectors: "
                "`retriever index PATH --force`."
            )

    def _check_encoder(self, encoder) -> None:
        self._need_vectors()
        spec = self._encoder_entry
        if not same_encoder(spec, encoder):
            raise EncoderMismatchError(
                f"The index at {self.directory} was built with the {spec['name']} encoder "
                f"{spec['config'].get('model', '')!s} (fingerprint {spec['fingerprint']}, "
                f"dim {spec['dim']}), but the query encoder has fingerprint "
                f"{encoder.fingerprint()} (dim {encoder.dim}). Query with the encoder that "
                "built it, or rebuild the index with this encoder: "
                "`retriever index PATH --force --encoder ...`."
            )

    def stage(
        self, mode: str | SearchMode = "hybrid", *, depth: int = _FUSION_DEPTH,
        filter: Filter | None = None, **knobs  # noqa: A002 - the natural name
    ) -> Stage:
        """The pipeline stage behind a search mode, for composing with ``%``, ``>>``, fuse.

        Args:
            filter: which chunks may be returned (:class:`retriever.filters.Filter`), applied
                inside each first stage, before its top k.
            knobs: per-query vector index parameters (``nprobe``, ``ef_search``,
                ``rescore_multiplier``), as for :meth:`search`.
        """
        mode = SearchMode.parse(mode)
        knobs = {key: value for key, value in knobs.items() if value is not None}

        def dense_search(queries: Sequence[str], k: int):
            return self.search_vectors(self._query_vectors(queries), k, **knobs)

        allowed = None if filter is None else filter.mask(*self._paths_and_languages())
        dense = Retrieve(_restricted(dense_search, allowed), k=depth, name="dense")
        lexical = Retrieve(_restricted(self._lexical.search, allowed), k=depth, name="lexical")
        if mode is SearchMode.DENSE:
            return dense
        if mode is SearchMode.LEXICAL:
            return lexical
        return fuse([dense, lexical], "rrf")

    def tier_stage(self, tier: str, *, depth: int = _FUSION_DEPTH,
                   filter: Filter | None = None) -> Stage | None:  # noqa: A002
        """A first stage (named ``tier``) over the vectors of ``tier`` (``"dense"``, ``"fast"``)
        when the index holds them, else None. Search uses the best tier present; a ``full``
        index also keeps its fast tier's vectors, which hybrid search over a corpus of source
        code fuses as a third side (:mod:`retriever.ranking`)."""
        if tier == self.tier:
            return self.stage("dense", depth=depth, filter=filter)
        if tier not in self._tiers:
            entry = tier_entry(self._opened, tier)
            self._tiers[tier] = (None if entry is None
                                 else TierVectors(self._opened, entry, self.directory))
        side = self._tiers[tier]
        if side is None:
            return None
        allowed = None if filter is None else filter.mask(*self._paths_and_languages())
        return Retrieve(_restricted(side.search, allowed), k=depth, name=tier)

    def _query_vectors(self, queries: Sequence[str]) -> np.ndarray:
        """``(nq, dim)`` vectors of ``queries``, encoded once per batch: a filtered search
        asks again for a deeper list, and the relevance estimate wants them too."""
        key = tuple(queries)
        with self._encoded_lock:
            found = self._encoded.get(key)
            if found is not None:
                self._encoded.move_to_end(key)
                return found
        # Keyed by the whole batch: a query encoded beside others may differ from the same
        # query alone in its last bits (padding), and search must not depend on history.
        found = self.encoder.encode_queries(list(queries))
        found.setflags(write=False)
        with self._encoded_lock:
            self._encoded[key] = found
            while len(self._encoded) > _ENCODED_BATCHES:
                self._encoded.popitem(last=False)
        return found

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
        self._need_vectors()
        scores, ids = self._dense.search(
            queries, k, nprobe=nprobe, ef_search=ef_search,
            rescore_multiplier=rescore_multiplier,
        )
        return scores, self._rows.rows(ids)

    def search(
        self, query: str, k: int = 10, mode: str | SearchMode = "hybrid", **options
    ) -> list[Hit]:
        """The top ``k`` chunks for ``query``, best first.

        Args:
            query: free text or code; must not be empty.
            k: number of hits wanted (fewer when the index is smaller; at most ``MAX_K``,
                10,000: a larger k is capped).
            mode: ``"hybrid"`` (dense + BM25, reciprocal-rank fusion), ``"dense"`` or
                ``"lexical"``.
            options: filters (``within=`` a folder, ``paths=`` globs, ``languages=``,
                ``exclude=`` path classes such as ``["test", "generated"]``; applied before
                the top k is taken), ``nprobe=``, ``ef_search=``, ``rescore_multiplier=``:
                per-query vector index parameters (passed to FAISS as SearchParameters,
                never set on the shared index), and ``pipeline=``, ``rerank=``,
                ``rerank_depth=``, ``min_score=`` as for :meth:`search_many`.
        """
        return self.search_many([query], k=k, mode=mode, **options)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        mode: str | SearchMode = "hybrid",
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
        rescore_multiplier: int | None = None,
        within: str | None = None,
        paths: Sequence[str] | str | None = None,
        languages: Sequence[str] | str | None = None,
        exclude: Sequence[str] | str | None = None,
        pipeline: Stage | str | None = None,
        rerank: object | None = None,
        rerank_depth: int = 20,
        min_score: float | None = None,
    ) -> list[list[Hit]]:
        """Answer a batch of queries in one call; one list of hits per query.

        The filters are those of :meth:`search` (see :class:`retriever.filters.Filter`).
        Pieces of one definition that rank together come back as one hit spanning them
        (:func:`retriever.hits.assemble`); each hit's ``relevance`` is the estimated
        probability that it is relevant (:mod:`retriever.ranking.calibration`).

        Args:
            pipeline: a named preset of :mod:`retriever.ranking` (None: its default) or a
                :class:`~retriever.pipeline.Stage` to answer with instead.
            rerank: a reranker, or its name or folder (``retriever.rerankers.load``), to
                re-score the pipeline's top ``rerank_depth`` candidates.
            min_score: drop hits whose ``relevance`` is below this, in [0, 1].
        """
        min_score = calibration.check_min_score(min_score)
        chosen = Filter.make(within=within, paths=paths, languages=languages, exclude=exclude)
        if isinstance(queries, str):
            raise InputError("search_many() takes a list of queries; use search() for one.")
        for query in queries:
            if not isinstance(query, str) or not query.strip():
                raise InputError("The query is empty. Pass some words or code to search for.")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}.")
        mode = SearchMode.parse(mode)
        if mode is not SearchMode.LEXICAL:
            self._need_vectors()
        if not queries:
            return []
        # Never more than the index holds, nor than MAX_K: arrays below are sized by k.
        k = min(k, len(self), MAX_K)
        depth = min(max(_FUSION_DEPTH, 3 * k), len(self))
        if isinstance(pipeline, Stage):
            stage = pipeline
        else:
            from retriever.ranking import preset

            stage = preset(pipeline, self, mode=mode, depth=depth, filter=chosen,
                           nprobe=nprobe, ef_search=ef_search,
                           rescore_multiplier=rescore_multiplier)
        if rerank is not None:
            stage = self._reranked(stage, rerank, rerank_depth)
        calibrator = calibration.calibrator_for(
            mode.value, calibration.scale_of(
                pipeline, mode=mode.value, reranked=rerank is not None,
                code=self.manifest.get("chunker", {}).get("name") != "document"),
            cosine=mode is not SearchMode.LEXICAL
            and self._encoder_entry["fingerprint"] == calibration.FINGERPRINT)
        queries = list(queries)
        results = stage(queries)
        vectors = self._query_vectors(queries) if calibrator.uses_cosine else None
        answers = []
        for q, query in enumerate(queries):
            hits = self._hits(results, q, k, query, calibrator,
                              None if vectors is None else vectors[q])
            answers.append(hits if min_score is None
                           else [hit for hit in hits if hit.relevance >= min_score])
        return answers

    def _reranked(self, stage: Stage, rerank: object, depth: int) -> Stage:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            # Before a reranker's model is loaded: a bad depth fails at once.
            raise InputError(f"rerank_depth must be a positive integer, got {depth!r}.")
        from retriever import rerankers

        reranker = rerankers.load(str(rerank)) if isinstance(rerank, str | Path) else rerank
        return stage >> rerankers.Rerank(self, reranker, depth=depth)

    def _paths_and_languages(self) -> tuple[list[str], list[str]]:
        if self._columns is None:
            self._columns = (self._chunks.column("path").to_pylist(),
                             self._chunks.column("language").to_pylist())
        return self._columns

    def _hits(self, results: Results, q: int, k: int, query: str,
              calibrator: calibration.Calibrator, vector: np.ndarray | None) -> list[Hit]:
        keep = results.ids[q] >= 0
        rows = results.ids[q][keep].tolist()
        scores = results.scores[q][keep].tolist()
        at = self._chunk_rows.at  # read as assemble asks, so only about k of the rows
        ranked = ((row, at(row), score) for row, score in zip(rows, scores, strict=True))
        candidates = assemble(ranked, k)
        if not candidates:
            return []
        relevance = calibrator.relevance(calibration.hit_table(
            query, candidates, tokenize=self._lexical.tokenize, vectors=self._vectors,
            vector=vector, log_score=calibrator.log_score, top=scores[0]))
        return [c.hit(float(r)) for c, r in zip(candidates, relevance, strict=True)]

    def info(self) -> dict:
        """The manifest plus where the index lives, the absolute source root (``root``; the
        manifest's ``source.root`` is relative to the index folder) and its size in bytes."""
        size = sum(p.lstat().st_size for p in self.generation.rglob("*") if p.is_file())
        return {
            **self.manifest,
            "directory": str(self.directory.absolute()),
            "root": None if self.root is None else str(self.root),
            "generation": self.generation.name,
            "bytes": size,
        }


def _restricted(search, allowed: np.ndarray | None):
    """``search(queries, k)`` answering only rows where ``allowed``: asks for deeper lists
    until each query has ``k`` allowed rows or the whole index was ranked, so the filter acts
    before the top k is taken (a filter after it returns too few results)."""
    if allowed is None:
        return search
    total = len(allowed)

    def restricted(queries, k: int):
        asked = min(total, max(k, 4 * k))
        while True:
            scores, ids = search(queries, asked)
            keep = (ids >= 0) & allowed[np.clip(ids, 0, None)]
            if asked >= total or (keep.sum(axis=1) >= k).all():
                break
            asked = min(total, asked * 4)
        out_scores = np.full((len(ids), k), -np.inf, dtype=np.float32)
        out_ids = np.full((len(ids), k), -1, dtype=np.int64)
        for q in range(len(ids)):
            picked = np.flatnonzero(keep[q])[:k]
            out_scores[q, : len(picked)] = scores[q, picked]
            out_ids[q, : len(picked)] = ids[q, picked]
        return out_scores, out_ids

    return restricted


def _best_vector_component(generation: Generation) -> dict | None:
    """The vector component search uses: the best tier present (a transformer's vectors
    over a static encoder's), else None for a lexical-only index."""
    tiers = {e["id"]: e["tier"] for e in generation.manifest["encoders"]}
    entries = generation.components("vectors")
    dense = [e for e in entries if tiers.get(e.get("encoder")) == "dense"]
    return (dense or entries or [None])[0]
