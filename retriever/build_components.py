"""The components a build writes once the vectors are filled: each encoder's vector index
(updated by label from the previous generation where that is cheaper), BM25, and the kinds
derived from the chunk table alone (the symbol table, ...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexing.layout import CHUNKS, vectors_file
from indexing.table import iter_chunk_batches, open_vectors, rows_to_chunks
from retriever.components import derived_kinds
from retriever.encoder_slots import MAIN, identity_of

__all__ = ["vector_component", "lexical_component", "derived_components"]


def vector_component(slot, config, out, previous, labels, report) -> dict:
    stored = open_vectors(out / vectors_file(slot.id), rows=report.chunks, dim=slot.encoder.dim)
    index = _vector_index(slot, config, previous, stored, labels, report)
    folder = index.folder if slot.id == MAIN else f"{index.folder}-{slot.id}"
    index.save(out / folder)
    return {"name": index.name, "role": index.role, "config": config, "path": folder,
            "encoder": slot.id}


def lexical_component(cls, config, out, to_text) -> dict:
    texts = []
    for batch in iter_chunk_batches(out / CHUNKS, rows=4096):
        texts.extend(to_text(c) for c in rows_to_chunks(batch, range(batch.num_rows)))
    lexical = cls(**config)
    lexical.build(texts)
    del texts
    lexical.save(out / lexical.folder)
    return {"name": lexical.name, "role": lexical.role, "config": lexical.config(),
            "path": lexical.folder}


def derived_components(out: Path) -> list[dict]:
    """Components built from the chunk table alone (the symbol table, ...): every registered
    kind whose role is ``"symbols"``, built with ``cls.from_chunks(chunks_path)``."""
    entries = []
    for cls in derived_kinds():
        component = cls.from_chunks(out / CHUNKS)
        component.save(out / cls.folder)
        entries.append({"name": cls.name, "role": cls.role, "config": component.config(),
                        "path": cls.folder})
    return entries


def _vector_index(slot, config, previous, vectors, labels, report):
    """The new generation's vector index: the previous one updated by label when it has the
    same kind, config and encoder and a trained structure that can remove vectors, else a
    fresh build from all vectors. Updating skips training and re-adding everything: only the
    labels that left are removed and the new ones added (100k x 384 IVF1024,Flat: 48 s to
    build, 0.9 s to swap 1,000 vectors). Flat structures rebuild from the vectors file faster
    than they load and compact (100k x 384: 0.3 s vs 0.7 s), so only trained ones update."""
    cls = slot.dense.create(slot.encoder.dim).__class__
    old = None
    if previous is not None and cls(**config).needs_training:
        old = previous.vector_index(cls.name, config, slot.encoder.fingerprint(),
                                    identity_of(slot.encoder))
    if old is not None and old.can_remove:
        old_labels = previous.labels()
        gone = np.setdiff1d(old_labels, labels, assume_unique=True)
        new_rows = np.flatnonzero(~np.isin(labels, old_labels, assume_unique=True))
        if (old.remove_ids(gone) if len(gone) else 0) == len(gone):
            if len(new_rows):
                old.add(np.asarray(vectors[new_rows]), ids=labels[new_rows])
            if len(old) == len(labels):
                old.attach(vectors, labels)
                report.dense_update = "incremental"
                report.dense_kept = len(labels) - len(new_rows)
                return old
    report.dense_update = "built"
    return cls.build(vectors, ids=labels, **config)
