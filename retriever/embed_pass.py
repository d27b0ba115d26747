"""The embedding pass of a build: fill one encoder's memory-mapped vector set from the
previous generation's vectors, then the user-level vector cache, then the encoder, storing
what it embeds in the cache as it goes (so an interrupted build resumes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexing.layout import CHUNKS, vectors_file
from indexing.table import create_vectors, iter_chunk_batches, rows_to_chunks
from retriever.encoder_slots import EncoderSlot
from retriever.generation import Generation

__all__ = ["embed_slot", "embed_batch"]


# Chunks handed to the encoder per call when it states no preference of its own. An
# encoder with a GPU fast path wants far more (a whole tokenising window: see
# encoders/fast_encode.py), so the build asks it (``preferred_batch``) first.
_EMBED_BATCH = 256


def embed_slot(slot: EncoderSlot, out: Path, previous: Generation | None, to_text, report,
               progress, cache) -> None:
    """Fill ``vectors-<id>.npy``: previous generation, then the cache, then the encoder."""
    encoder, dim = slot.encoder, slot.encoder.dim
    fingerprint = encoder.fingerprint()
    old_rows, old_vectors = ({}, None) if previous is None else previous.reusable(
        fingerprint, dim
    )
    vectors = create_vectors(out / vectors_file(slot.id), report.chunks, dim)
    # An encoder whose vectors are another's turned and cut (a head, dims=) embeds with that
    # one and keeps its vectors in the cache, so trying a head or a cut on a cached tree
    # embeds nothing.
    view = getattr(encoder, "cache_view", None)
    base, cut = (view() if view is not None else None) or (encoder, _unchanged)
    key, key_dim = base.fingerprint(), base.dim
    row = 0
    for batch in iter_chunk_batches(out / CHUNKS, rows=embed_batch(encoder)):
        hashes = batch.column("text_hash").to_pylist()
        missing = []
        for i, h in enumerate(hashes):
            old = old_rows.get(h)
            if old is not None:
                vectors[row + i] = old_vectors[old]
            else:
                missing.append(i)
        report.reused += len(hashes) - len(missing)
        if missing and cache is not None:
            found_vectors, found = cache.lookup(key, key_dim, [hashes[i] for i in missing])
            hits = np.flatnonzero(found)
            if len(hits):
                vectors[[row + missing[j] for j in hits]] = cut(found_vectors[hits])
            report.cached += int(found.sum())
            missing = [i for i, hit in zip(missing, found, strict=True) if not hit]
        if missing:
            texts = [to_text(c) for c in rows_to_chunks(batch, missing)]
            fresh = base.encode_documents(texts)
            vectors[[row + i for i in missing]] = cut(fresh)
            if cache is not None:
                cache.store(key, [hashes[i] for i in missing], fresh)
            report.embedded += len(missing)
        row += len(hashes)
        if progress:
            progress("embed", row, report.chunks)
    vectors.flush()


def _unchanged(vectors: np.ndarray) -> np.ndarray:
    return vectors


def embed_batch(encoder) -> int:
    """Chunks per ``encode_documents`` call: the encoder's ``preferred_batch`` when it
    states a positive integer, else 256. Progress and the vector cache advance per call."""
    preferred = getattr(encoder, "preferred_batch", None)
    if isinstance(preferred, bool) or not isinstance(preferred, int) or preferred < 1:
        return _EMBED_BATCH
    return preferred
