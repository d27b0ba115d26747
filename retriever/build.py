"""Building an index generation: chunk, embed and write in batches.

Two passes keep memory bounded by the batch size rather than the corpus: the first pass
chunks every file into ``chunks.parquet`` row groups; the second streams that table back
in batches and, for each encoder of the generation, fills a memory-mapped vector set from
(1) the previous generation's vectors of the same encoder, (2) the user-level vector cache,
(3) the encoder, in that order, storing what it embeds in the cache as it goes (so an
interrupted build resumes). Then every component (vector indexes, BM25) is built through
the registry and the manifest is written last.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chunking import Chunk, embedding_text
from indexing.layout import CHUNKS, FILES, LABELS, vectors_file
from indexing.manifest import SKIPPED_KEPT, new_manifest, write_manifest
from indexing.store import writer
from indexing.table import (
    ChunkTableWriter,
    chunk_labels,
    create_vectors,
    iter_chunk_batches,
    open_vectors,
    rows_to_chunks,
    text_hash,
    write_files,
)
from retriever.components import component_class, derived_kinds, new_vector_index
from retriever.errors import InputError
from retriever.generation import Generation

__all__ = ["BuildReport", "Progress", "build_generation", "git_commit", "document_text",
           "DenseSpec", "EncoderSlot", "MAIN", "portable_config", "resolved_config",
           "same_encoder"]

# progress(stage, done, total): stage is "chunk", "embed" or "index".
Progress = Callable[[str, int, int], None]

MAIN = "main"
# Chunks handed to the encoder per call when it states no preference of its own. An
# encoder with a GPU fast path wants far more (a whole tokenising window: see
# encoders/fast_encode.py), so the build asks it (``preferred_batch``) first.
_EMBED_BATCH = 256


@dataclass
class BuildReport:
    """What a build did.

    Attributes:
        files: files indexed.
        chunks: chunks in the new index.
        embedded: chunks sent to an encoder (0 when nothing changed).
        reused: chunk vectors copied from the previous generation.
        cached: chunk vectors read from the shared vector cache.
        skipped: (path, reason) for files left out.
        seconds: wall time of the build.
        timings: seconds spent chunking, embedding (including vector reuse) and writing
            the indexes.
        rebuilt: False when the index was already up to date and nothing was written.
        dense_update: ``"built"`` (the vector index was built from all vectors),
            ``"incremental"`` (the previous generation's index was updated by label), or
            ``"none"`` (a lexical-only index).
        dense_kept: vectors the incremental update kept from the previous index.
        warnings: problems met and survived (e.g. a damaged vector-cache file skipped).
    """

    files: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    cached: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    rebuilt: bool = True
    dense_update: str = "none"
    dense_kept: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DenseSpec:
    """The vector index a build writes: a spec string and the kind's further options.

    Attributes:
        spec: ``"auto"``, a FAISS factory string (``"IVF1024,PQ48"``) or a binary one
            (``"BFlat"``); see :mod:`retriever.components`.
        options: constructor arguments of the kind (``dims``, ``rescore``, ``nprobe``...).
    """

    spec: str = "auto"
    options: dict = field(default_factory=dict)

    def create(self, dim: int):
        """An empty index of this spec; InputError for an unknown or unfit spec."""
        return new_vector_index(self.spec, dim=dim, **self.options)

    def check(self, dim: int) -> dict:
        """The full config for ``dim``-d vectors; InputError for an unknown or unfit spec."""
        return self.create(dim).config()


@dataclass(frozen=True)
class EncoderSlot:
    """One vector set of a generation: an encoder and the vector index built on it.

    Attributes:
        id: a short lower-case id; names the vectors file (``vectors-<id>.npy``).
        name: the encoder's registered name.
        encoder: the encoder instance (``encode_documents``, ``dim``, ``config()``,
            ``fingerprint()``).
        dense: the vector index to build on its vectors.
        tier: ``"dense"`` (a transformer) or ``"fast"`` (a static encoder).
    """

    id: str
    name: str
    encoder: Any
    dense: DenseSpec
    tier: str = "dense"


class UpToDate(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside a build when, holding the lock, the index turns out to be current."""


def document_text(chunk: Chunk) -> str:
    """Embedding text of a corpus document: its title (kept in ``symbol``) and its text."""
    return f"{chunk.symbol}\n{chunk.text}" if chunk.symbol else chunk.text


_TEXT_STYLES = {"code": embedding_text, "document": document_text}


def git_commit(root: Path) -> str | None:
    """HEAD of the git work tree at ``root``, or None."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def build_generation(
    index_dir: Path,
    items: Iterable[tuple[dict, Iterable[Chunk]]],
    *,
    encoders: Sequence[EncoderSlot],
    chunker_entry: dict,
    lexical_config: dict,
    text_style: str,
    extra_manifest: dict,
    skipped: list[tuple[str, str]] | None = None,
    progress: Progress | None = None,
    total_files: int = 0,
    wait: float = 0.0,
    cache=None,
    still_stale: Callable[[Generation | None], bool] | None = None,
) -> BuildReport:
    """Write a new generation of ``index_dir`` from ``items`` and publish it atomically.

    Args:
        items: one ``(file_record, chunks)`` pair per file; file_record has path, size and
            mtime_ns. Chunks are consumed lazily, file by file.
        encoders: the vector sets to build; empty for a lexical-only index. Each spec is
            checked against its encoder's dimension before anything is written.
        lexical_config: keyword arguments of the BM25 index.
        text_style: ``"code"`` (path and scope header) or ``"document"`` (title and text).
        extra_manifest: fields merged into the manifest (source, walk options).
        skipped: (path, reason) pairs that ``items`` appends to as it skips files; read
            after the items are consumed.
        cache: a vector cache (``lookup``/``store``, see :mod:`indexing.cache`) or None.
        still_stale: called with the live generation (opened, or None when there is none or
            it is damaged) once the writer lock is held; when it
            returns False (another writer just brought the index up to date) nothing is
            written and the report says ``rebuilt=False``.
    """
    started = time.perf_counter()
    report = BuildReport()
    to_text = _TEXT_STYLES[text_style]
    dense_configs = [slot.dense.check(slot.encoder.dim) for slot in encoders]  # fail fast
    lexical_cls = component_class("bm25")
    lexical_cls(**lexical_config)
    try:
        with writer(index_dir, wait=wait) as generation:
            # Opened once: the staleness re-check and the reuse of vectors both read it.
            previous = Generation.open_quietly(generation.previous)
            if still_stale is not None and not still_stale(previous):
                raise UpToDate
            out = generation.path
            file_rows = _chunk(items, out, to_text, report, progress, total_files)
            write_files(out / FILES, file_rows)
            report.timings["chunk"] = time.perf_counter() - started
            mark = time.perf_counter()
            labels = chunk_labels(out / CHUNKS, out / LABELS)
            for slot in encoders:
                _embed(slot, out, previous, to_text, report, progress, cache)
            report.warnings.extend(getattr(cache, "problems", ()))
            report.timings["embed"] = time.perf_counter() - mark
            mark = time.perf_counter()
            components = []
            for slot, config in zip(encoders, dense_configs, strict=True):
                components.append(_vector_component(slot, config, out, previous, labels, report))
            components.append(_lexical_component(lexical_cls, lexical_config, out, to_text))
            components.extend(_derived_components(out))
            if progress:
                progress("index", 1, 1)
            listed = list(skipped or ())
            manifest = new_manifest(
                chunker=chunker_entry,
                encoders=[{
                    "id": slot.id, "name": slot.name,
                    **portable_config(slot.encoder.config(), Path(index_dir)),
                    "dim": slot.encoder.dim, "fingerprint": slot.encoder.fingerprint(),
                    "tier": slot.tier,
                    **({"signature": sig} if (sig := stat_signature(slot.encoder)) else {}),
                } for slot in encoders],
                components=components,
                counts={"files": report.files, "chunks": report.chunks, "skipped": len(listed)},
                skipped=[{"path": p, "reason": r} for p, r in listed[:SKIPPED_KEPT]],
                text_style=text_style,
                **extra_manifest,
            )
            write_manifest(out, manifest)
            report.timings["index"] = time.perf_counter() - mark
    except UpToDate:
        report.rebuilt = False
    report.skipped = list(skipped or ())
    report.seconds = time.perf_counter() - started
    return report


def stat_signature(encoder) -> str | None:
    """The encoder's cheap stand-in for its fingerprint on this machine, if it has one."""
    method = getattr(encoder, "stat_signature", None)
    return method() if callable(method) else None


def same_encoder(entry: dict, encoder) -> bool:
    """True when ``encoder`` is the one that made the vectors of a manifest encoder entry.

    An unchanged stat signature proves it without hashing the weights; otherwise the
    fingerprints decide.
    """
    if entry["dim"] != encoder.dim:
        return False
    signature = stat_signature(encoder)
    if signature is not None and entry.get("signature") == signature:
        return True
    return entry["fingerprint"] == encoder.fingerprint()


def portable_config(config: dict, index_dir: Path) -> dict:
    """``{"config": ..., "relative": [keys]}``: absolute paths in an encoder's config (a local
    model folder) stored relative to the index folder, so the manifest names no path of this
    machine and a copied tree with its model beside it still opens. :func:`resolved_config`
    undoes it."""
    config, relative = dict(config), []
    base = os.path.abspath(index_dir)
    for key, value in config.items():
        if isinstance(value, str) and os.path.isabs(value):
            config[key] = os.path.relpath(value, base)
            relative.append(key)
    return {"config": config, "relative": relative} if relative else {"config": config}


def resolved_config(entry: dict, index_dir: Path) -> dict:
    """An encoder entry's config with the paths :func:`portable_config` made relative
    resolved against ``index_dir``."""
    config = dict(entry["config"])
    for key in entry.get("relative", ()):
        if isinstance(config.get(key), str):
            config[key] = os.path.normpath(os.path.join(os.path.abspath(index_dir), config[key]))
    return config


def _chunk(items, out: Path, to_text, report: BuildReport, progress, total_files) -> list[dict]:
    table = ChunkTableWriter(out / CHUNKS)
    file_rows = []
    try:
        for done, (record, chunks) in enumerate(items, 1):
            count = 0
            for chunk in chunks:
                table.add(chunk, text_hash(to_text(chunk)))
                count += 1
            file_rows.append({**record, "chunks": count})
            if progress:
                progress("chunk", done, total_files)
    finally:
        table.close()
    report.files = len(file_rows)
    report.chunks = table.count
    if report.chunks == 0:
        raise InputError(
            "Nothing to index: the files found hold no text. Point at a folder with "
            "source or text files."
        )
    return file_rows


def _embed(slot: EncoderSlot, out: Path, previous: Generation | None, to_text, report,
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


def _vector_component(slot, config, out, previous, labels, report) -> dict:
    stored = open_vectors(out / vectors_file(slot.id), rows=report.chunks, dim=slot.encoder.dim)
    index = _vector_index(slot, config, previous, stored, labels, report)
    folder = index.folder if slot.id == MAIN else f"{index.folder}-{slot.id}"
    index.save(out / folder)
    return {"name": index.name, "role": index.role, "config": config, "path": folder,
            "encoder": slot.id}


def _lexical_component(cls, config, out, to_text) -> dict:
    texts = []
    for batch in iter_chunk_batches(out / CHUNKS, rows=4096):
        texts.extend(to_text(c) for c in rows_to_chunks(batch, range(batch.num_rows)))
    lexical = cls(**config)
    lexical.build(texts)
    del texts
    lexical.save(out / lexical.folder)
    return {"name": lexical.name, "role": lexical.role, "config": lexical.config(),
            "path": lexical.folder}


def _derived_components(out: Path) -> list[dict]:
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
        old = previous.vector_index(cls.name, config, slot.encoder.fingerprint())
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
