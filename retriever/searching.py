"""The search side of an opened index: the stages behind each search mode, encoded queries,
batches of queries answered into hits, and filters applied before the top k.

:class:`IndexSearch` is the half of :class:`retriever.reader.Index` that answers queries; the
reader's half opens the generation, holds its parts and checks the query encoder, which these
methods use (``self.encoder``, ``self._need_vectors``, the loaded parts)."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from pathlib import Path

import numpy as np

from retriever.errors import InputError
from retriever.filters import Filter
from retriever.hits import Hit, assemble
from retriever.pipeline import Results, Retrieve, Stage, fuse
from retriever.ranking import calibration
from retriever.tier_vectors import TierVectors, tier_entry

__all__ = ["IndexSearch", "SearchMode", "MAX_K"]


# Candidates each first stage hands to fusion; deeper lists cost little and let a document
# that one side ranks modestly still surface.
_FUSION_DEPTH = 100
# The most hits one query returns (k is also capped by the number of chunks): result arrays
# are sized by k, so an unbounded k is a way to exhaust memory.
MAX_K = 10_000
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


class IndexSearch:
    """The search methods of :class:`retriever.reader.Index` (see the module docstring)."""

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
            cosine=mode is not SearchMode.LEXICAL and calibration.fitted_model(self._encoder_entry))
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
