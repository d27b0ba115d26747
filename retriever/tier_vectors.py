"""The vectors of one tier of an index other than the one search uses.

An index built with ``tier="full"`` holds a transformer's vectors (the ``dense`` tier, which
dense and hybrid search use) and a static encoder's (the ``fast`` tier). The fast tier's are
a different view of the same chunks, and hybrid search over a corpus of source code fuses
them as a third side (``retriever.ranking.fitted.CODE_DOCUMENTS_FULL_FUSION``). This module
opens such a vector set on first use, with its own query encoder, so an index that never
asks for it pays nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from indexing.quantize import RowMap
from retriever import registry
from retriever.build import resolved_config, same_encoder
from retriever.encoder_slots import corpus_bound
from retriever.errors import EncoderMismatchError, IndexFormatError, InputError
from retriever.generation import Generation

__all__ = ["TierVectors", "manifest_encoder", "tier_entry"]

_REBUILD = "rebuild the index with `retriever index PATH --force`."


def manifest_encoder(spec: dict, directory: Path, label: str = "an encoder"):
    """The encoder a manifest's entry names, built from its stored config; an
    IndexFormatError saying how to get it back when this machine cannot build it."""
    try:
        return registry.create("encoder", spec["name"], resolved_config(spec, directory))
    except InputError as exc:
        raise IndexFormatError(
            f"The index at {directory} names {label} this machine cannot build ({exc}) "
            f"Install or restore its model, or {_REBUILD}") from exc


def tier_entry(generation: Generation, tier: str) -> dict | None:
    """The manifest's vector component of ``tier`` ("dense", "fast"), or None."""
    tiers = {e["id"]: e["tier"] for e in generation.manifest["encoders"]}
    for entry in generation.components("vectors"):
        if tiers.get(entry.get("encoder")) == tier:
            return entry
    return None


class TierVectors:
    """One vector component of a generation and the encoder that made it, opened on first
    search (memory-mapped, like the main vector set)."""

    def __init__(self, generation: Generation, entry: dict, directory: Path) -> None:
        self._generation, self._entry, self._directory = generation, entry, directory
        self._spec = generation.encoder(entry["encoder"])
        self._lock = threading.Lock()
        self._index = self._rows = self._encoder = None

    @property
    def tier(self) -> str:
        return self._spec["tier"]

    def _opened(self):
        with self._lock:
            if self._index is None:
                labels = self._generation.labels()
                vectors = self._generation.vectors(self._entry["encoder"])
                index = self._generation.load(self._entry, mmap=True, vectors=vectors,
                                              labels=labels, **self._entry["config"])
                if len(index) != self._generation.chunk_count:
                    raise IndexFormatError(
                        f"The {self.tier} vectors at {self._generation.path} do not match its "
                        "chunks. Rebuild the index with `retriever index PATH --force`.")
                self._encoder = self._query_encoder()
                self._rows, self._index = RowMap(labels), index
            return self._index, self._rows, self._encoder

    def _query_encoder(self):
        spec = self._spec
        encoder = corpus_bound(
            spec, manifest_encoder(spec, self._directory, f"a {self.tier}-tier encoder"),
            self._generation)
        if not same_encoder(spec, encoder):
            raise EncoderMismatchError(
                f"The {self.tier}-tier encoder of the index at {self._directory} "
                f"(fingerprint {spec['fingerprint']}) differs from the one this machine "
                f"builds from its config ({encoder.fingerprint()}). Rebuild the index with "
                "`retriever index PATH --force`.")
        return encoder

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, rows)`` of the top ``k`` chunks per query by this tier's vectors."""
        index, rows, encoder = self._opened()
        scores, ids = index.search(encoder.encode_queries(list(queries)), k)
        return scores, rows.rows(ids)
