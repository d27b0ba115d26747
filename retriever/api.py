"""The public entry points: build an index from a tree or a corpus, open one."""

from __future__ import annotations

import itertools
import os
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chunking import Chunk
from chunking.pool import check_workers, chunk_files
from chunking.walker import walk
from indexing.layout import FILES
from indexing.store import current_generation, is_index, tidy
from indexing.table import read_table
from retriever import registry
from retriever.build import (
    MAIN,
    BuildReport,
    DenseSpec,
    EncoderSlot,
    Progress,
    build_generation,
    git_commit,
    resolved_config,
    same_encoder,
)
from retriever.errors import IndexLockedError, InputError, RetrieverError
from retriever.generation import Generation
from retriever.hits import Document
from retriever.ranking.context import mostly_code
from retriever.reader import Index

__all__ = ["index", "index_documents", "open", "DEFAULT_INDEX_DIR", "is_stale", "find_root",
           "plan_tree", "TreePlan", "SEARCH_TIER", "tier_hint"]

DEFAULT_INDEX_DIR = ".retriever"
DEFAULT_ENCODER = "sentence-transformers"
FAST_ENCODER = "static"
FAST = "fast"
TIERS = ("lexical", "fast", "dense", "full")
# What a new index gets when no tier is asked for.
DEFAULT_TIER = "dense"
# What `retriever search` builds for a tree with no index: an answer in about a second (a
# static encoder's vectors embed thousands of chunks a second; the transformer, tens).
SEARCH_TIER = FAST
DEFAULT_CHUNKER = "cast"
_MAX_FILE_BYTES = 1 << 20
# Documents a corpus's kind (source code or prose) is decided from, as at search time.
_KIND_SAMPLE = 400


def _encoder(encoder: Any, config: dict | None) -> tuple[str, Any]:
    """(registered name, instance) for a name or an instance."""
    if isinstance(encoder, str):
        return encoder, registry.create("encoder", encoder, config)
    for name in registry.available("encoder"):
        if type(encoder) is registry.load("encoder", name):
            return name, encoder
    raise InputError(
        f"{type(encoder).__name__} is not a registered encoder, so an index could not rebuild "
        "it at query time. Register it under the 'retriever.encoders' entry-point group. "
        f"Registered: {', '.join(registry.available('encoder'))}."
    )


def _live(index_dir: Path) -> Generation | None:
    """The live generation with a valid manifest, or None (none yet, or damaged: a damaged
    index is rebuilt with the defaults)."""
    if not is_index(index_dir):
        return None
    try:
        return Generation.open_quietly(current_generation(index_dir))
    except RetrieverError:
        return None


def _main_encoder(live: Generation | None) -> dict | None:
    if live is None:
        return None
    for entry in live.manifest["encoders"]:
        if entry["id"] == MAIN:
            return entry
    return None


def _dense_spec(live: Generation | None, spec: str | None, options: dict | None) -> DenseSpec:
    """The vector index to build: the one asked for, else the existing index's, else auto."""
    entries = [] if live is None else [
        e for e in live.components("vectors") if e.get("encoder") == MAIN
    ]
    if entries and (spec is None or options is None):
        saved = dict(entries[0]["config"])
        saved.pop("dim", None)
        saved_spec = saved.pop("spec", "auto")
        if spec is None or spec == saved_spec:
            return DenseSpec(saved_spec, saved if options is None else dict(options))
    return DenseSpec(spec or "auto", dict(options or {}))


def is_stale(generation: Generation | Path | None, files: list, *, encoders: list[EncoderSlot],
             chunker: dict, walk_options: dict, dense_configs: list[dict] | None = None) -> bool:
    """True unless ``generation`` was built from exactly these files and settings.

    Cheap: compares the file table's (path, size, mtime) and the manifest's settings; the
    encoders' fingerprints come from their files, so no model is loaded.
    """
    if generation is None:
        return True
    if not isinstance(generation, Generation):
        generation = Generation.open_quietly(Path(generation))
        if generation is None:
            return True
    manifest = generation.manifest
    # Name and fingerprint, not the whole config: the fingerprint covers every setting that
    # changes vectors, and settings that do not (threads, batch size) must not force a build.
    wanted = [(s.id, s.name, s.encoder.dim) for s in encoders]
    if [(e["id"], e["name"], e["dim"]) for e in manifest["encoders"]] != wanted:
        return True
    if manifest["chunker"] != chunker or manifest.get("walk") != walk_options:
        return True
    if dense_configs is not None and [
        e["config"] for e in generation.components("vectors")
    ] != dense_configs:
        return True
    try:
        stored = read_table(generation.path / FILES, ["path", "size", "mtime_ns"]).to_pylist()
    except RetrieverError:
        return True  # a damaged index is rebuilt
    current = {(f.path, f.size, f.mtime_ns) for f in files}
    if current != {(r["path"], r["size"], r["mtime_ns"]) for r in stored}:
        return True
    return not all(same_encoder(entry, slot.encoder)
                   for entry, slot in zip(manifest["encoders"], encoders, strict=True))


def _cache(cache: Any):
    """The vector cache a build uses: None or True for the user's (unless the environment
    turns it off), False for none, a folder, or a cache object."""
    from indexing.cache import open_cache

    if cache is None or cache is True:
        return open_cache()
    if cache is False:
        return open_cache(enabled=False)
    if isinstance(cache, (str, Path)):
        return open_cache(Path(cache))
    return cache


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



@dataclass
class TreePlan:
    """What a build of a tree will be, decided before anything is written: the folders, the
    live generation, the walk, the encoder slots and the chunker (shared by :func:`index` and
    the Ray build, so both refuse and decide alike)."""

    root: Path
    index_dir: Path
    live: Generation | None
    walk_options: dict
    tier: str
    slots: list[EncoderSlot]
    dense_configs: list
    chunker: Any
    chunker_entry: dict
    walked: Any
    force: bool = False

    def stale(self, generation) -> bool:
        """Whether ``generation`` (or None) must be rebuilt for this plan."""
        return self.force or is_stale(
            generation, self.walked.files, encoders=self.slots, chunker=self.chunker_entry,
            walk_options=self.walk_options, dense_configs=self.dense_configs)

    @property
    def query_encoder(self):
        """The encoder that answers queries: the transformer's when there is one."""
        return next((s.encoder for s in self.slots if s.id == MAIN),
                    self.slots[0].encoder if self.slots else None)


def plan_tree(path: str | Path, index_dir: str | Path | None = None, *, encoder: Any = None,
              encoder_config: dict | None = None, chunker_config: dict | None = None,
              max_file_bytes: int | None = None, include_dependencies: bool | None = None,
              force: bool = False, index_spec: str | None = None,
              index_options: dict | None = None, lexical_only: bool | None = None,
              tier: str | None = None, fast_model: str | None = None,
              default_tier: str | None = None) -> TreePlan:
    """Check the arguments of :func:`index`, walk the tree and decide the build (nothing is
    written). Raises the errors :func:`index` documents for bad input."""
    root = Path(path).expanduser()
    if not root.exists():
        raise InputError(f"The path {root} does not exist. Pass the folder to index.")
    if not root.is_dir():
        raise InputError(f"{root} is not a folder. Pass the folder that holds the files.")
    root = root.resolve()
    if index_dir is None:
        index_dir = root / DEFAULT_INDEX_DIR
        if index_dir.is_symlink():
            # A cloned repository can ship one; following it would write outside the tree.
            raise InputError(
                f"{index_dir} is a symlink; refusing to write an index through it. Remove it, "
                "or pass the index folder explicitly with --index DIR."
            )
    index_dir = Path(index_dir).expanduser()
    live = _live(index_dir)
    walk_options = _walk_options(live, max_file_bytes, include_dependencies)
    tier = _tier(live, tier, lexical_only, encoder, default_tier or DEFAULT_TIER)
    slots = []
    if tier in ("fast", "full"):
        slots.append(_fast_slot(live, fast_model))
    if tier in ("dense", "full"):
        slots.append(_main_slot(live, encoder, encoder_config, index_spec, index_options))
    dense_configs = [slot.dense.check(slot.encoder.dim) for slot in slots]  # fail fast
    chunker = registry.create("chunker", DEFAULT_CHUNKER, chunker_config)
    chunker_entry = {"name": DEFAULT_CHUNKER, "config": chunker.config(),
                     "version": getattr(chunker, "version", 1)}

    walked = walk(root, max_bytes=walk_options["max_file_bytes"],
                  include_dependencies=walk_options["include_dependencies"])
    if not walked.files:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in walked.skipped[:5])
        detail = f" ({len(walked.skipped)} skipped: {reasons})" if walked.skipped else ""
        raise InputError(
            f"No indexable files under {root}{detail}. Point at a folder with source or text "
            "files, or check its .gitignore and .retrieverignore."
        )

    return TreePlan(root, index_dir, live, walk_options, tier, slots, dense_configs, chunker,
                    chunker_entry, walked, force)

def _opened(index_dir: Path, encoder, report: BuildReport) -> Index:
    opened = Index(index_dir)
    if encoder is not None and opened.has_vectors:
        opened.use_encoder(encoder)
    opened.last_build = report
    return opened


def _tier(live: Generation | None, tier: str | None, lexical_only: bool | None,
          encoder: Any, default: str = DEFAULT_TIER) -> str:
    """The tier to build: the one asked for, else the existing index's, else ``default``."""
    if default not in TIERS:
        raise InputError(f"Unknown default tier {default!r}; choose one of: {', '.join(TIERS)}.")
    tier = _asked_tier(tier, lexical_only)
    if lexical_only:
        return tier
    if tier is None and lexical_only is False:
        tier = "dense" if live is None or not live.manifest["encoders"] else None
    if tier is None and encoder is not None:
        tier = "dense"  # naming an encoder asks for its vectors
    if tier is None:
        if live is None:
            return default
        ids = {e["id"] for e in live.manifest["encoders"]}
        return {frozenset(): "lexical", frozenset({FAST}): "fast", frozenset({MAIN}): "dense",
                frozenset({FAST, MAIN}): "full"}.get(frozenset(ids), default)
    return tier


def _asked_tier(tier: str | None, lexical_only: bool | None) -> str | None:
    """The tier the caller asked for, checked: ``"lexical"`` with ``lexical_only``, None when
    neither says."""
    if lexical_only:
        if tier not in (None, "lexical"):
            raise InputError(f"lexical_only=True contradicts tier={tier!r}; give one of them.")
        return "lexical"
    if tier is not None and tier not in TIERS:
        raise InputError(f"Unknown tier {tier!r}; choose one of: {', '.join(TIERS)}.")
    return tier


def _fast_slot(live: Generation | None, model: str | None) -> EncoderSlot:
    """The static encoder's vector set: the model asked for, else the index's own static
    encoder, else the shipped one."""
    saved = None if live is None or model is not None else next(
        (e for e in live.manifest["encoders"] if e["id"] == FAST), None)
    config = resolved_config(saved, live.path.parent) if saved else (
        {"model": str(model)} if model is not None else None)
    name, obj = _encoder(saved["name"] if saved else FAST_ENCODER, config)
    return EncoderSlot(FAST, name, obj, DenseSpec("Flat"), tier="fast")


def _walk_options(live: Generation | None, max_file_bytes: int | None,
                  include_dependencies: bool | None) -> dict:
    """The walk options asked for, else the existing index's, else the defaults."""
    saved = (live.manifest.get("walk") if live is not None else None) or {}
    options = {
        "max_file_bytes": max_file_bytes if max_file_bytes is not None
        else saved.get("max_file_bytes", _MAX_FILE_BYTES),
        "include_dependencies": include_dependencies if include_dependencies is not None
        else saved.get("include_dependencies", False),
    }
    if isinstance(options["max_file_bytes"], bool) or not isinstance(
        options["max_file_bytes"], int
    ) or options["max_file_bytes"] < 1:
        raise InputError(f"max_file_bytes must be a positive integer, got "
                         f"{options['max_file_bytes']!r}.")
    options["include_dependencies"] = bool(options["include_dependencies"])
    return options


def _main_slot(live, encoder, encoder_config, index_spec, index_options) -> EncoderSlot:
    """The transformer vector set: the encoder asked for, else the index's, else the default."""
    saved = _main_encoder(live)
    if encoder is None:
        if saved is not None and encoder_config is None:
            encoder, encoder_config = saved["name"], resolved_config(saved, live.path.parent)
        else:
            encoder = DEFAULT_ENCODER
    name, obj = _encoder(encoder, encoder_config)
    return EncoderSlot(MAIN, name, obj, _dense_spec(live, index_spec, index_options))


def index_documents(
    documents: Iterable[Document],
    *,
    index_dir: str | Path,
    encoder: Any = DEFAULT_ENCODER,
    encoder_config: dict | None = None,
    lexical_config: dict | None = None,
    progress: Progress | None = None,
    total: int = 0,
    wait: float = 0.0,
    index_spec: str = "auto",
    index_options: dict | None = None,
    lexical_only: bool = False,
    cache: Any = None,
    tier: str | None = None,
) -> Index:
    """Index a corpus of documents (BEIR-style), one chunk per document, and open it.

    ``Hit.path`` of a result is the document id. Rebuilding over the same documents
    re-embeds nothing: vectors are reused by content.

    Args:
        documents: :class:`retriever.Document` values (id, text, title); ids must be unique.
        index_dir: where to write the index.
        lexical_config: keyword arguments for the BM25 index.
        total: number of documents, if known, for progress reporting.
        tier: ``"dense"`` (the encoder's vectors), ``"full"`` (those and the fast tier's
            static vectors, which hybrid search over source code fuses as a third side),
            ``"fast"`` (static vectors only) or ``"lexical"`` (none). None: ``"full"`` with
            the default encoder and model when most of the first 400 documents are source
            code, else ``"dense"`` (``"lexical"`` with ``lexical_only``).
        index_spec, index_options, lexical_only, cache: as for :func:`index`.
    """
    documents = iter(documents)
    head = list(itertools.islice(documents, _KIND_SAMPLE))
    tier = _documents_tier(tier, lexical_only, encoder, encoder_config, head)
    documents = itertools.chain(head, documents)
    slots = []
    if tier in ("fast", "full"):
        slots.append(_fast_slot(None, None))
    if tier in ("dense", "full"):
        name, obj = _encoder(encoder, encoder_config)
        slots.append(EncoderSlot(MAIN, name, obj,
                                 DenseSpec(index_spec or "auto", dict(index_options or {}))))
    seen: set[str] = set()

    def items() -> Iterator[tuple[dict, Iterable[Chunk]]]:
        for doc in documents:
            doc = _as_document(doc)
            if doc.id in seen:
                raise InputError(f"Duplicate document id {doc.id!r}: ids must be unique.")
            seen.add(doc.id)
            lines = max(1, doc.text.count("\n") + 1)
            chunk = Chunk.make(path=doc.id, language="text", start_line=1, end_line=lines,
                               kind="document", symbol=doc.title or None, text=doc.text)
            yield {"path": doc.id, "size": len(doc.text), "mtime_ns": 0}, (chunk,)

    report = build_generation(
        Path(index_dir), items(),
        encoders=slots, chunker_entry={"name": "document", "config": {}},
        lexical_config=dict(lexical_config or {}),
        text_style="document",
        extra_manifest={"source": {"root": None, "commit": None}, "walk": None},
        progress=progress, total_files=total, wait=wait,
        cache=_cache(cache) if slots else None,
    )
    # The query encoder is the best tier's: the transformer's when there is one.
    return _opened(Path(index_dir), slots[-1].encoder if slots else None, report)


def _documents_tier(tier: str | None, lexical_only: bool, encoder: Any,
                    encoder_config: dict | None, head: list) -> str:
    """The vector sets a documents corpus gets (see :func:`index_documents`): both for
    source code with the default model, the one the three-side weights were fitted with."""
    tier = _asked_tier(tier, lexical_only)
    if tier is not None:
        return tier
    from encoders.sentence import DEFAULT_MODEL  # here: a lexical-only caller never needs it

    default_model = (encoder_config or {}).get("model") in (None, DEFAULT_MODEL)
    if encoder == DEFAULT_ENCODER and default_model and mostly_code(
            [_as_document(doc).text for doc in head]):
        return "full"
    return "dense"


def _as_document(doc: Any) -> Document:
    """``doc`` as a Document; a plain mapping with ``id`` and ``text`` (and ``title``) is
    accepted, anything else is an InputError saying what is wanted."""
    if isinstance(doc, Document):
        return doc
    if isinstance(doc, dict) and isinstance(doc.get("id"), str) and isinstance(
        doc.get("text"), str
    ):
        title = doc.get("title") or ""
        if not isinstance(title, str):
            raise InputError(f"Document {doc['id']!r} has a title that is not a string.")
        return Document(id=doc["id"], text=doc["text"], title=title)
    raise InputError(
        "index_documents() takes retriever.Document(id=..., text=..., title=...) values or "
        f"dicts with string 'id' and 'text' (and 'title'); got {type(doc).__name__} "
        f"{str(doc)[:80]!r}."
    )


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
