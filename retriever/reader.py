"""An opened index: the query side of the engine."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from chunking import Chunk
from indexing.quantize import RowMap
from indexing.store import current_generation
from indexing.table import rows_to_chunks
from retriever.build import same_encoder
from retriever.encoder_slots import corpus_bound
from retriever.errors import EncoderMismatchError, IndexFormatError, InputError
from retriever.generation import Generation
from retriever.hits import ChunkRows

# The search methods live in searching; these names stay importable from here, as before.
from retriever.searching import (  # noqa: F401
    _FUSION_DEPTH,
    MAX_K,
    IndexSearch,
    SearchMode,
    _restricted,
)
from retriever.tier_vectors import TierVectors, manifest_encoder

__all__ = ["Index", "SearchMode", "MAX_K"]

_REBUILD = "Rebuild the index with `retriever index PATH --force`."


class Index(IndexSearch):
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
            self._encoder = self._check_encoder(encoder)
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
        fingerprint of the encoder that built the index (EncoderMismatchError otherwise).
        An encoder that weights tokens by its corpus is bound to the index's own counts."""
        self._encoder = self._check_encoder(encoder)
        with self._encoded_lock:
            self._encoded.clear()

    def _need_vectors(self) -> None:
        if self._dense is None:
            raise InputError(
                f"The index at {self.directory} is lexical only (built without an encoder): "
                "search it with mode='lexical' (--mode lexical), or rebuild it with vectors: "
                "`retriever index PATH --force`."
            )

    def _check_encoder(self, encoder):
        """``encoder`` (bound to the index's token counts where it weights by them), when it
        is the one that built the index; EncoderMismatchError otherwise."""
        self._need_vectors()
        spec = self._encoder_entry
        encoder = corpus_bound(spec, encoder, self._opened)
        if not same_encoder(spec, encoder):
            raise EncoderMismatchError(
                f"The index at {self.directory} was built with the {spec['name']} encoder "
                f"{spec['config'].get('model', '')!s} (fingerprint {spec['fingerprint']}, "
                f"dim {spec['dim']}), but the query encoder has fingerprint "
                f"{encoder.fingerprint()} (dim {encoder.dim}). Query with the encoder that "
                "built it, or rebuild the index with this encoder: "
                "`retriever index PATH --force --encoder ...`."
            )
        return encoder

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


def _best_vector_component(generation: Generation) -> dict | None:
    """The vector component search uses: the best tier present (a transformer's vectors
    over a static encoder's), else None for a lexical-only index."""
    tiers = {e["id"]: e["tier"] for e in generation.manifest["encoders"]}
    entries = generation.components("vectors")
    dense = [e for e in entries if tiers.get(e.get("encoder")) == "dense"]
    return (dense or entries or [None])[0]
