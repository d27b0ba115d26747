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

import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chunking import Chunk, embedding_text
from indexing.layout import CHUNKS, FILES, LABELS
from indexing.manifest import SKIPPED_KEPT, new_manifest, write_manifest
from indexing.store import writer
from indexing.table import ChunkTableWriter, chunk_labels, text_hash, write_files
from retriever.build_components import derived_components, lexical_component, vector_component
from retriever.components import component_class
from retriever.embed_pass import embed_batch, embed_slot  # noqa: F401 - embed_batch re-exported

# The slots and their manifest entries live in encoder_slots, the embedding pass in
# embed_pass; these names stay importable from here, as before.
from retriever.encoder_slots import (  # noqa: F401
    MAIN,
    DenseSpec,
    EncoderSlot,
    identity_of,
    portable_config,
    resolved_config,
    same_encoder,
    stat_signature,
)
from retriever.errors import InputError
from retriever.generation import Generation

__all__ = ["BuildReport", "Progress", "build_generation", "git_commit", "document_text",
           "DenseSpec", "EncoderSlot", "MAIN", "portable_config", "resolved_config",
           "same_encoder"]

# progress(stage, done, total): stage is "chunk", "count" (token counts for a corpus-weighted
# encoder), "embed" or "index".
Progress = Callable[[str, int, int], None]


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
            # Each slot as built: an encoder weighted by its corpus comes back bound to the
            # token counts, whose fingerprint the manifest must record.
            encoders = [embed_slot(slot, out, previous, to_text, report, progress, cache)
                        for slot in encoders]
            report.warnings.extend(getattr(cache, "problems", ()))
            report.timings["embed"] = time.perf_counter() - mark
            mark = time.perf_counter()
            components = []
            for slot, config in zip(encoders, dense_configs, strict=True):
                components.append(vector_component(slot, config, out, previous, labels, report))
            components.append(lexical_component(lexical_cls, lexical_config, out, to_text))
            components.extend(derived_components(out))
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
                    **({"identity": ident} if (ident := identity_of(slot.encoder)) else {}),
                    **({"corpus": slot.corpus} if slot.corpus is not None else {}),
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
