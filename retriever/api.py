"""The public entry points: build an index from a tree or a corpus, open one."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from chunking import Chunk
from chunking.pool import check_workers, chunk_files
from indexing.store import is_index, tidy
from retriever.build import BuildReport, Progress, build_generation, git_commit
from retriever.corpus_index import index_documents
from retriever.errors import IndexLockedError, InputError
from retriever.reader import Index

# The planning half lives in tree_plan; its names stay importable from here, as before.
from retriever.tree_plan import (  # noqa: F401
    DEFAULT_CHUNKER,
    DEFAULT_ENCODER,
    DEFAULT_INDEX_DIR,
    DEFAULT_TIER,
    FAST,
    FAST_ENCODER,
    SEARCH_TIER,
    TIERS,
    TreePlan,
    _cache,
    _opened,
    is_stale,
    plan_tree,
)

__all__ = ["index", "index_documents", "open", "DEFAULT_INDEX_DIR", "is_stale", "find_root",
           "plan_tree", "TreePlan", "SEARCH_TIER", "tier_hint"]


def index(
    path: str | Path = ".",
    *,
    index_dir: str | Path | None = None,
    encoder: Any = None,
    encoder_config: dict | None = None,
    chunker_config: dict | None = None,
    max_file_bytes: int | None = None,
    include_dependencies: bool | None = None,
    force: bool = False,
    progress: Progress | None = None,
    wait: float = 0.0,
    index_spec: str | None = None,
    index_options: dict | None = None,
    lexical_only: bool | None = None,
    tier: str | None = None,
    fast_model: str | None = None,
    cache: Any = None,
    stale_ok: bool = False,
    workers: int | None = None,
    default_tier: str | None = None,
) -> Index:
    """Index a source tree, or bring its index up to date, and open it.

    Unchanged trees are not rebuilt (that costs a directory walk, and loads no model).
    After edits, only chunks whose text changed are embedded again; deleted files disappear.
    The new index replaces the old one atomically: on any error the previous index stays as
    it was. Settings left as None keep the existing index's (encoder, index kind, walk
    options, lexical-only), so a refresh never silently changes how the index was built.

    Args:
        path: root of the tree.
        index_dir: where the index lives; default ``PATH/.retriever``.
        encoder: a registered encoder name, or an encoder instance. None keeps the encoder
            of the existing index, else ``sentence-transformers`` with the default model.
        encoder_config: keyword arguments for a named encoder.
        chunker_config: keyword arguments for the ``cast`` chunker (e.g. ``max_chars``).
        max_file_bytes: files larger than this are skipped (default 1 MiB).
        include_dependencies: also index node_modules, vendor, virtualenvs, build output.
        force: rebuild even when the index looks up to date; repairs a damaged index.
        progress: ``progress(stage, done, total)`` callback for long builds.
        wait: seconds to wait for another process writing the same index.
        index_spec: the vector index: ``"auto"`` (exact, HNSW from 50k chunks), a FAISS
            factory string (``"Flat"``, ``"HNSW32,Flat"``, ``"IVF1024,PQ48"``, ``"SQ8"``) or a
            binary one rescored in float (``"BFlat"``, ``"BHNSW32"``, ``"BIVF1024"``).
        index_options: further options of that index kind, e.g. ``{"dims": 128}``
            (Matryoshka prefix), ``{"rescore": "int8", "rescore_multiplier": 8}``.
        lexical_only: build BM25 and the chunk table only, no vectors (no model is loaded;
            dense and hybrid search are then refused). The same as ``tier="lexical"``.
        tier: which vector sets to build: ``"lexical"`` (none), ``"fast"`` (a static
            encoder's, milliseconds to embed), ``"dense"`` (the transformer's) or ``"full"``
            (both; search uses the transformer's). None keeps the index's own, else
            ``DEFAULT_TIER``. A ``fast`` index refreshed with ``tier="full"`` embeds only the
            transformer's vectors: the fast ones are reused.
        fast_model: the static encoder's model (a shipped name or a Model2Vec folder) for
            the fast tier; None keeps the index's own, else the shipped default.
        cache: the shared vector cache: None (the user's, see README), False (none), a
            folder, or a :class:`indexing.cache.VectorCache`.
        stale_ok: when another process is writing the index (and ``wait`` runs out), open the
            live generation instead of raising IndexLockedError; ``Index.stale`` is then True.
        workers: processes that read and chunk files: None picks by the tree's size (one
            per core from 8 MiB of files, else this process alone), 1 never starts any. The
            chunk table is the same whatever the number.
        default_tier: the tier a tree with no index gets when ``tier`` is None (None:
            ``DEFAULT_TIER``). ``retriever search`` passes ``SEARCH_TIER`` so that a new
            tree answers in about a second; an existing index keeps its own tier.

    Returns:
        The opened index; ``Index.last_build`` tells what the build did; its ``warnings``
        name the files chunked by lines although they have a grammar, and why.

    Raises:
        InputError: among others, an unknown index spec or one that does not fit the
            encoder's dimension (checked before anything is walked or written).
        IndexLockedError: another process is writing the index (see ``wait``, ``stale_ok``).
    """
    check_workers(workers)
    plan = plan_tree(path, index_dir, encoder=encoder, encoder_config=encoder_config,
                     chunker_config=chunker_config, max_file_bytes=max_file_bytes,
                     include_dependencies=include_dependencies, force=force,
                     index_spec=index_spec, index_options=index_options,
                     lexical_only=lexical_only, tier=tier, fast_model=fast_model,
                     default_tier=default_tier)
    root, index_dir, live, walked = plan.root, plan.index_dir, plan.live, plan.walked
    slots, chunker_obj, stale = plan.slots, plan.chunker, plan.stale
    query_encoder = plan.query_encoder
    walk_options, chunker_entry = plan.walk_options, plan.chunker_entry
    if not stale(live):
        tidy(index_dir)
        return _opened(index_dir, query_encoder, BuildReport(
            rebuilt=False, files=len(walked.files), chunks=live.chunk_count))

    skipped = [(s.path, s.reason) for s in walked.skipped]
    notes: list[str] = []

    def items() -> Iterator[tuple[dict, Iterable[Chunk]]]:
        for done in chunk_files(chunker_obj, walked.files, workers=workers):
            file = done.file
            record = {"path": file.path, "size": file.size, "mtime_ns": file.mtime_ns}
            if done.error is not None:
                # Kept in the file table with no chunks so the tree does not look stale.
                skipped.append((file.path, done.error))
            elif done.note is not None:
                notes.append(f"{file.path}: {done.note}")
            yield record, done.chunks

    try:
        report = build_generation(
            index_dir, items(),
            encoders=slots, chunker_entry=chunker_entry, lexical_config={},
            text_style="code",
            extra_manifest={
                # Relative to the index folder: the manifest names no path of this machine.
                "source": {"root": os.path.relpath(root, index_dir.resolve()),
                           "commit": git_commit(root)},
                "walk": walk_options,
            },
            skipped=skipped, progress=progress, total_files=len(walked.files), wait=wait,
            cache=_cache(cache) if slots else None,
            still_stale=stale,
        )
    except IndexLockedError:
        if not (stale_ok and live is not None):
            raise
        opened = _opened(index_dir, query_encoder, BuildReport(
            rebuilt=False, files=len(walked.files), chunks=live.chunk_count))
        opened.stale = True
        return opened
    report.warnings.extend(notes)
    opened = _opened(index_dir, query_encoder, report)
    if not report.rebuilt:  # another writer brought it up to date while we waited
        report.files, report.chunks = len(walked.files), len(opened)
    return opened


def tier_hint(opened: Index) -> str | None:
    """How to get a better tier than the one that answers, or None when the transformer's
    vectors are there (or the index is a corpus, which ``index_documents`` builds whole).

    ``retriever search`` on a new tree builds the fast tier; this sentence, shown on stderr
    and as ``"hint"`` in ``--json``, says how to add the transformer's vectors.
    """
    root = opened.root
    if root is None or opened.tier != FAST:
        return None
    command = f"retriever index {shlex.quote(str(root))} --tier full"
    directory = Path(opened.directory).resolve()
    if directory != (root / DEFAULT_INDEX_DIR).resolve():
        command += f" --index {shlex.quote(str(directory))}"
    return ("Answered by the fast tier (BM25, symbols and static vectors). For the "
            f"transformer's vectors too, run: {command}")


def find_root(path: str | Path = ".") -> Path | None:
    """The nearest folder at or above ``path`` whose ``.retriever`` holds an index, as git
    finds ``.git``; None when there is none. Searching from a subfolder of an indexed tree
    then uses that index, scoped to the subfolder, instead of building a second one."""
    start = Path(path).expanduser().resolve()
    for folder in (start, *start.parents):
        if is_index(folder / DEFAULT_INDEX_DIR):
            return folder
    return None


def open(directory: str | Path, *, encoder: Any = None) -> Index:  # noqa: A001
    """Open an existing index for searching.

    Args:
        directory: the index directory (``PATH/.retriever`` for a tree indexed with defaults).
        encoder: optional query encoder instance; it must match the one that built the index.
    """
    directory = Path(directory).expanduser()
    if not directory.exists():
        raise InputError(
            f"There is no index at {directory}. Build one with `retriever index PATH`."
        )
    if directory.is_dir() and not is_index(directory) and is_index(directory / DEFAULT_INDEX_DIR):
        directory = directory / DEFAULT_INDEX_DIR
    return Index(directory, encoder=encoder)
