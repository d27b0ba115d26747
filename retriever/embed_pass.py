"""The embedding pass of a build: fill one encoder's memory-mapped vector set from the
previous generation's vectors, then the user-level vector cache, then the encoder, storing
what it embeds in the cache as it goes (so an interrupted build resumes). An encoder whose
vectors depend on its corpus's token counts gets them bound first (:func:`corpus_slot`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from indexing.layout import CHUNKS, counts_file, vectors_file
from indexing.table import create_vectors, iter_chunk_batches, rows_to_chunks
from retriever.encoder_slots import EncoderSlot, identity_of, same_encoder
from retriever.errors import RetrieverError
from retriever.generation import Generation

__all__ = ["embed_slot", "embed_batch", "corpus_slot"]

# Token counts of the previous generation are kept while the chunk count stays within this
# share of the count they were made from: re-counting changes every weight a little, and so
# every vector, which would re-embed the whole tier on each edit (a watched tree saves often).
# Past it the counts are made again from the current chunks.
_COUNTS_DRIFT = 0.25


# Chunks handed to the encoder per call when it states no preference of its own. An
# encoder with a GPU fast path wants far more (a whole tokenising window: see
# encoders/fast_encode.py), so the build asks it (``preferred_batch``) first.
_EMBED_BATCH = 256


def embed_slot(slot: EncoderSlot, out: Path, previous: Generation | None, to_text, report,
               progress, cache) -> EncoderSlot:
    """Fill ``vectors-<id>.npy``: previous generation, then the cache, then the encoder.
    Returns the slot as built: its encoder bound to the corpus's token counts where it
    wants them (:func:`corpus_slot`)."""
    slot, tokens = corpus_slot(slot, out, previous, to_text, report, progress)
    encoder, dim = slot.encoder, slot.encoder.dim
    fingerprint = encoder.fingerprint()
    old_rows, old_vectors = ({}, None) if previous is None else previous.reusable(
        fingerprint, dim, identity_of(encoder)
    )
    vectors = create_vectors(out / vectors_file(slot.id), report.chunks, dim)
    # An encoder whose vectors are another's turned and cut (a head, dims=) embeds with that
    # one and keeps its vectors in the cache, so trying a head or a cut on a cached tree
    # embeds nothing.
    view = getattr(encoder, "cache_view", None)
    base, cut = (view() if view is not None else None) or (encoder, _unchanged)
    key, key_dim = base.fingerprint(), base.dim
    row = 0
    for number, batch in enumerate(iter_chunk_batches(out / CHUNKS, rows=embed_batch(encoder))):
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
            if tokens is not None:  # tokenized once, while counting
                fresh = encoder.encode_token_ids(*_rows_of(tokens[number], missing))
            else:
                fresh = base.encode_documents([to_text(c) for c in rows_to_chunks(batch, missing)])
            vectors[[row + i for i in missing]] = cut(fresh)
            if cache is not None:
                cache.store(key, [hashes[i] for i in missing], fresh)
            report.embedded += len(missing)
        row += len(hashes)
        if progress:
            progress("embed", row, report.chunks)
    vectors.flush()
    return slot


def _rows_of(tokens: tuple[np.ndarray, np.ndarray], rows: list[int]):
    """The (ids, lengths) of some texts of a batch's :meth:`token_ids`."""
    flat, lengths = tokens
    ends = np.cumsum(lengths)
    starts = ends - lengths
    picked = np.asarray(rows, dtype=np.int64)
    parts = [flat[starts[i] : ends[i]] for i in picked]
    return (np.concatenate(parts) if parts else flat[:0]), lengths[picked]


def corpus_slot(slot: EncoderSlot, out: Path, previous: Generation | None, to_text,
                report, progress) -> tuple[EncoderSlot, list | None]:
    """``(slot, tokens)``: the slot with its encoder bound to the corpus's token counts,
    written to the new generation, when the encoder wants them (``wants_corpus``); the slot
    itself and None otherwise.

    The previous generation's counts are kept when they were made for this same encoder and
    the chunk count has not drifted past ``_COUNTS_DRIFT`` of theirs (so unchanged chunks
    keep their vectors; ``tokens`` is None). Else every chunk is tokenized and counted, and
    ``tokens`` keeps each embedding batch's ids (``token_ids``), so that nothing is tokenized
    twice: counting first doubled the fast tier's embedding time.
    """
    encoder = slot.encoder
    if not getattr(encoder, "wants_corpus", False):
        return slot, None
    kept, tokens = _previous_counts(slot, previous, report.chunks), None
    if kept is not None:
        counts, origin = kept
    else:
        origin, tokens, done = report.chunks, [], 0
        counts = np.zeros(encoder.table_rows, dtype=np.int64)
        for batch in iter_chunk_batches(out / CHUNKS, rows=embed_batch(encoder)):
            flat, lengths = encoder.token_ids(
                [to_text(c) for c in rows_to_chunks(batch, range(batch.num_rows))])
            tokens.append((flat, lengths))
            counts += np.bincount(flat, minlength=len(counts))
            done += batch.num_rows
            if progress:
                progress("count", done, report.chunks)
    bound = encoder.with_counts(counts)
    with open(out / counts_file(slot.id), "wb") as handle:
        np.save(handle, counts, allow_pickle=False)
    return dataclasses.replace(slot, encoder=bound, corpus={"chunks": int(origin)}), tokens


def _previous_counts(slot: EncoderSlot, previous: Generation | None, chunks: int):
    """(counts, chunks they came from) of the previous generation for this slot's encoder,
    or None when it has none, they are damaged, made by another encoder, or drifted."""
    if previous is None:
        return None
    entry = next((e for e in previous.manifest["encoders"] if e["id"] == slot.id), None)
    if entry is None or "corpus" not in entry or entry["name"] != slot.name:
        return None
    origin = entry["corpus"]["chunks"]
    if abs(chunks - origin) > _COUNTS_DRIFT * max(origin, 1):
        return None
    try:
        counts = previous.token_counts(slot.id)
        bound = slot.encoder.with_counts(counts)
    except RetrieverError:  # damaged, or counted for another model's table
        return None
    return (counts, origin) if same_encoder(entry, bound) else None


def _unchanged(vectors: np.ndarray) -> np.ndarray:
    return vectors


def embed_batch(encoder) -> int:
    """Chunks per ``encode_documents`` call: the encoder's ``preferred_batch`` when it
    states a positive integer, else 256. Progress and the vector cache advance per call."""
    preferred = getattr(encoder, "preferred_batch", None)
    if isinstance(preferred, bool) or not isinstance(preferred, int) or preferred < 1:
        return _EMBED_BATCH
    return preferred
