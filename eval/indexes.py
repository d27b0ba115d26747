"""Index builds for benchmarks: one per corpus or repository, with its cost measured around it.

Every build of a run is made the same way (:class:`BuildSettings`): which encoder, which vector
index kind and options, and whether vectors are made at all. A run whose modes are all lexical
builds a lexical-only index (BM25 and the chunk table, no model loaded), so its cost is that of
the lexical index alone. The user-level vector cache is not used unless a run names one
(``vector_cache``): a benchmark build measures embedding, and leaves nothing behind that would
make the next run's build look cheaper. A run that names one (vectors embedded once on a GPU
machine, ``benchmarks/gpu_vectors.py``) measures quality only, and its results say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.cost import Cost, peak_memory, timed
from retriever.errors import InputError

__all__ = ["BuildSettings", "build_corpus_index", "build_tree_index", "check_pipeline",
           "indexed_spans"]


def check_pipeline(name: str | None) -> None:
    """Refuse an unknown ranking preset name, listing the known ones (None: the default)."""
    from retriever.ranking import PRESETS

    if name is not None and name not in PRESETS:
        raise InputError(
            f"Unknown ranking pipeline {name!r}; known: {', '.join(sorted(PRESETS))}."
        )


@dataclass(frozen=True)
class BuildSettings:
    """How the index builds of one benchmark run are made.

    Attributes:
        encoder: a registered encoder name; ``encoder_config`` its keyword arguments
            (``{"model": ...}`` picks a model).
        index_spec: the vector index kind (``"Flat"``, ``"HNSW32,Flat"``, ``"BFlat"``...);
            None: the engine's default.
        index_options: options of that kind (``{"dims": 128}``, ``{"rescore": "int8"}``...).
        vectors: False for a lexical-only build.
        vector_cache: a vector cache folder to take vectors from (and store them in); None:
            every build embeds.
    """

    encoder: str = "sentence-transformers"
    encoder_config: Mapping | None = None
    index_spec: str | None = None
    index_options: Mapping | None = None
    vectors: bool = True
    vector_cache: str | None = None

    @classmethod
    def for_modes(
        cls,
        modes: Sequence[str],
        *,
        embed: bool | None = None,
        encoder: str = "sentence-transformers",
        encoder_config: Mapping | None = None,
        index_spec: str | None = None,
        index_options: Mapping | None = None,
        vector_cache: str | Path | None = None,
    ) -> BuildSettings:
        """The settings that serve ``modes``; ``embed`` None makes vectors only when needed.

        Raises:
            InputError: ``embed=False`` with a mode that searches vectors, or a vector index
                spec or options for a run that builds no vectors.
        """
        searches_vectors = [m for m in modes if m != "lexical"]
        if embed is False and searches_vectors:
            raise InputError(
                f"embed=False builds no vectors, so mode {searches_vectors[0]!r} cannot be "
                "searched; drop that mode or let the run embed (embed=None)."
            )
        vectors = bool(searches_vectors) if embed is None else embed
        if not vectors and (index_spec is not None or index_options):
            raise InputError(
                "An index spec or index options only apply to vector indexes, and the modes "
                f"{', '.join(modes)} build none; add mode dense or hybrid, or drop them."
            )
        cache = None if vector_cache is None or not vectors else str(vector_cache)
        return cls(encoder, encoder_config, index_spec, index_options, vectors, cache)

    def described(self, pipeline: str | None = None) -> dict:
        """The vector index settings given (and the ranking ``pipeline`` when one was named),
        for a result file (empty for the defaults)."""
        found: dict[str, Any] = {}
        if self.index_spec is not None:
            found["spec"] = self.index_spec
        if self.index_options:
            found["options"] = dict(self.index_options)
        if self.vector_cache is not None:
            # Build costs of such a run are not embedding costs: say so beside the numbers.
            found["vectors_from_cache"] = True
        if pipeline is not None:
            found["pipeline"] = pipeline
        return found

    def index_arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``retriever.index`` and ``retriever.index_documents``."""
        if not self.vectors:
            return {"lexical_only": True, "cache": False}
        found: dict[str, Any] = {"encoder": self.encoder, "cache": self.vector_cache or False}
        if self.encoder_config:
            found["encoder_config"] = dict(self.encoder_config)
        if self.index_spec is not None:
            found["index_spec"] = self.index_spec
        if self.index_options:
            found["index_options"] = dict(self.index_options)
        return found


def _measured(build: Callable[[], Any]) -> tuple[Any, Cost]:
    """Run ``build()`` and measure its wall time, peak memory, chunks and bytes on disk."""
    with peak_memory() as memory:
        start = timed()
        idx = build()
        seconds = timed() - start
    cost = Cost(
        index_seconds=seconds,
        chunks=len(idx),
        index_bytes=idx.info()["bytes"],
        peak_rss_bytes=memory.bytes,
    )
    if seconds > 0:
        cost.chunks_per_second = len(idx) / seconds
    return idx, cost


def build_corpus_index(
    documents: Iterable, index_dir: Path, settings: BuildSettings
) -> tuple[Any, Cost]:
    """Index ``retriever.Document`` objects (one chunk each) into ``index_dir``.

    Returns:
        The opened ``retriever.Index`` and the build's cost (latency fields left at zero).
    """
    import retriever

    return _measured(
        lambda: retriever.index_documents(
            documents, index_dir=index_dir, **settings.index_arguments()
        )
    )


def build_tree_index(root: Path, index_dir: Path, settings: BuildSettings) -> tuple[Any, Cost]:
    """Index a source tree from scratch (``force=True``: the build is what is measured).

    A kept ``index_dir`` still lets the build reuse the vectors of unchanged chunks.
    """
    import retriever

    return _measured(
        lambda: retriever.index(root, index_dir=index_dir, force=True, **settings.index_arguments())
    )


def indexed_spans(idx, prefix: str = "") -> list[tuple[str, int, int]]:
    """``(prefix + path, start_line, end_line)`` of every chunk: the targets an index covers."""
    return [(prefix + c.path, c.start_line, c.end_line) for c in idx.chunks()]
