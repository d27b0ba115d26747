"""The public entry points: build an index from a tree or a corpus, open one."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from chunking import Chunk
from chunking.walker import read_source, walk
from indexing.lexical import BM25Index
from indexing.manifest import read_manifest
from indexing.store import current_generation, is_index
from indexing.table import FILES, read_table
from retriever import registry
from retriever.build import BuildReport, DenseSpec, Progress, build_generation, git_commit
from retriever.errors import InputError, RetrieverError
from retriever.hits import Document
from retriever.reader import Index

__all__ = ["index", "index_documents", "open", "DEFAULT_INDEX_DIR", "is_stale"]

DEFAULT_INDEX_DIR = ".retriever"
DEFAULT_ENCODER = "sentence-transformers"
DEFAULT_CHUNKER = "cast"


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


def _existing_encoder(index_dir: Path, config: dict | None) -> tuple[str, dict | None]:
    """The encoder name and config of the index at ``index_dir``, else the default."""
    if config is None and is_index(index_dir):
        try:
            spec = read_manifest(current_generation(index_dir))["encoder"]
            return spec["name"], spec["config"]
        except (RetrieverError, KeyError, TypeError):
            pass  # a damaged index gets rebuilt with the default encoder
    return DEFAULT_ENCODER, config


def _dense_spec(index_dir: Path, spec: str | None, options: dict | None) -> DenseSpec:
    """The vector index to build: the one asked for, else the existing index's, else auto."""
    if is_index(index_dir) and (spec is None or options is None):
        try:
            entry = read_manifest(current_generation(index_dir))["indexes"]["dense"]
            saved = dict(entry["config"])
            saved.pop("dim", None)
            saved_spec = saved.pop("spec")
            if spec is None or spec == saved_spec:
                return DenseSpec(saved_spec, saved if options is None else dict(options))
        except (RetrieverError, KeyError, TypeError):
            pass  # a damaged index gets rebuilt with the default
    return DenseSpec(spec or "auto", dict(options or {}))


def _walk_options(max_file_bytes: int, include_dependencies: bool) -> dict:
    return {"max_file_bytes": max_file_bytes, "include_dependencies": include_dependencies}


def is_stale(index_dir: Path, files: list, *, encoder_name: str, encoder: Any,
             chunker: dict, walk_options: dict, dense_config: dict | None = None) -> bool:
    """True unless the index at ``index_dir`` was built from exactly these files and settings."""
    if not is_index(index_dir):
        return True
    try:
        generation = current_generation(index_dir)
        manifest = read_manifest(generation)
        stored = read_table(generation / FILES, ["path", "size", "mtime_ns"]).to_pylist()
    except RetrieverError:
        return True  # a damaged index is rebuilt
    spec = manifest["encoder"]
    if (spec.get("name"), spec.get("config")) != (encoder_name, encoder.config()):
        return True
    if manifest["chunker"] != chunker or manifest.get("walk") != walk_options:
        return True
    if dense_config is not None and manifest["indexes"].get("dense", {}).get("config") \
            != dense_config:
        return True
    current = {(f.path, f.size, f.mtime_ns) for f in files}
    if current != {(r["path"], r["size"], r["mtime_ns"]) for r in stored}:
        return True
    return spec.get("fingerprint") != encoder.fingerprint()


def index(
    path: str | Path = ".",
    *,
    index_dir: str | Path | None = None,
    encoder: Any = None,
    encoder_config: dict | None = None,
    chunker_config: dict | None = None,
    max_file_bytes: int = 1 << 20,
    include_dependencies: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    wait: float = 0.0,
    index_spec: str | None = None,
    index_options: dict | None = None,
) -> Index:
    """Index a source tree, or bring its index up to date, and open it.

    Unchanged trees are not rebuilt. After edits, only chunks whose text changed are
    embedded again; deleted files disappear. The new index replaces the old one
    atomically: on any error the previous index stays as it was.

    Args:
        path: root of the tree.
        index_dir: where the index lives; default ``PATH/.retriever``.
        encoder: a registered encoder name, or an encoder instance. None keeps the encoder
            of the existing index (so a refresh never silently switches models), else
            ``sentence-transformers`` with the default model.
        encoder_config: keyword arguments for a named encoder.
        chunker_config: keyword arguments for the ``cast`` chunker (e.g. ``max_chars``).
        max_file_bytes: files larger than this are skipped.
        include_dependencies: also index node_modules, vendor, virtualenvs, build output.
        force: rebuild even when the index looks up to date.
        progress: ``progress(stage, done, total)`` callback for long builds.
        wait: seconds to wait for another process writing the same index.
        index_spec: the vector index: ``"auto"`` (exact, HNSW from 50k chunks), a FAISS
            factory string (``"Flat"``, ``"HNSW32,Flat"``, ``"IVF1024,PQ48"``, ``"SQ8"``) or a
            binary one rescored in float (``"BFlat"``, ``"BHNSW32"``, ``"BIVF1024"``). None
            keeps the existing index's, else ``"auto"``.
        index_options: further options of that index kind, e.g. ``{"dims": 128}``
            (Matryoshka prefix), ``{"rescore": "int8", "rescore_multiplier": 8}``,
            ``{"nprobe": 32}``. None keeps the existing index's with an unchanged spec.

    Returns:
        The opened index; ``Index.last_build`` tells what the build did.

    Raises:
        InputError: among others, an unknown index spec or one that does not fit the
            encoder's dimension (checked before anything is written).
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise InputError(f"The path {root} does not exist. Pass the folder to index.")
    if not root.is_dir():
        raise InputError(f"{root} is not a folder. Pass the folder that holds the files.")
    root = root.resolve()
    index_dir = Path(index_dir).expanduser() if index_dir else root / DEFAULT_INDEX_DIR
    if encoder is None:
        encoder, encoder_config = _existing_encoder(index_dir, encoder_config)
    encoder_name, encoder_obj = _encoder(encoder, encoder_config)
    dense = _dense_spec(index_dir, index_spec, index_options)
    dense_config = dense.check(encoder_obj.dim)  # fail fast, before walking or embedding
    chunker_obj = registry.create("chunker", DEFAULT_CHUNKER, chunker_config)
    chunker_entry = {"name": DEFAULT_CHUNKER, "config": chunker_obj.config()}
    walk_options = _walk_options(max_file_bytes, include_dependencies)

    walked = walk(root, max_bytes=max_file_bytes, include_dependencies=include_dependencies)
    if not walked.files:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in walked.skipped[:5])
        detail = f" ({len(walked.skipped)} skipped: {reasons})" if walked.skipped else ""
        raise InputError(
            f"No indexable files under {root}{detail}. Point at a folder with source or text "
            "files, or check its .gitignore and .retrieverignore."
        )
    if not force and not is_stale(index_dir, walked.files, encoder_name=encoder_name,
                                  encoder=encoder_obj, chunker=chunker_entry,
                                  walk_options=walk_options, dense_config=dense_config):
        opened = Index(index_dir, encoder=encoder_obj)
        opened.last_build = BuildReport(rebuilt=False, files=len(walked.files),
                                        chunks=len(opened))
        return opened

    skipped = [(s.path, s.reason) for s in walked.skipped]

    def items() -> Iterator[tuple[dict, Iterable[Chunk]]]:
        for file in walked.files:
            record = {"path": file.path, "size": file.size, "mtime_ns": file.mtime_ns}
            try:
                source = read_source(file)
            except (RetrieverError, OSError, UnicodeError) as exc:
                # Kept in the file table with no chunks so the tree does not look stale.
                skipped.append((file.path, str(exc)))
                yield record, ()
                continue
            yield record, chunker_obj.chunk(file.path, source)

    report = build_generation(
        index_dir, items(),
        encoder=encoder_obj, encoder_name=encoder_name, chunker_entry=chunker_entry,
        dense=dense,
        lexical_factory=_lexical_factory({}),
        text_style="code",
        extra_manifest={
            "source": {"root": str(root), "commit": git_commit(root)},
            "walk": walk_options,
        },
        skipped=skipped, progress=progress, total_files=len(walked.files), wait=wait,
    )
    opened = Index(index_dir, encoder=encoder_obj)
    opened.last_build = report
    return opened


def _lexical_factory(config: dict):
    def build(texts):
        lexical = BM25Index(**config)
        lexical.build(texts)
        return lexical

    return build


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
) -> Index:
    """Index a corpus of documents (BEIR-style), one chunk per document, and open it.

    ``Hit.path`` of a result is the document id. Rebuilding over the same documents
    re-embeds nothing: vectors are reused by content.

    Args:
        documents: :class:`retriever.Document` values (id, text, title); ids must be unique.
        index_dir: where to write the index.
        lexical_config: keyword arguments for the BM25 index.
        total: number of documents, if known, for progress reporting.
        index_spec, index_options: the vector index, as for :func:`index`.
    """
    encoder_name, encoder_obj = _encoder(encoder, encoder_config)
    DenseSpec(index_spec, dict(index_options or {})).check(encoder_obj.dim)
    seen: set[str] = set()

    def items() -> Iterator[tuple[dict, Iterable[Chunk]]]:
        for doc in documents:
            if doc.id in seen:
                raise InputError(f"Duplicate document id {doc.id!r}: ids must be unique.")
            seen.add(doc.id)
            lines = max(1, doc.text.count("\n") + 1)
            chunk = Chunk.make(path=doc.id, language="text", start_line=1, end_line=lines,
                               kind="document", symbol=doc.title or None, text=doc.text)
            yield {"path": doc.id, "size": len(doc.text), "mtime_ns": 0}, (chunk,)

    report = build_generation(
        Path(index_dir), items(),
        encoder=encoder_obj, encoder_name=encoder_name,
        chunker_entry={"name": "document", "config": {}},
        dense=DenseSpec(index_spec or "auto", dict(index_options or {})),
        lexical_factory=_lexical_factory(lexical_config or {}),
        text_style="document",
        extra_manifest={"source": {"root": None, "commit": None}, "walk": None},
        progress=progress, total_files=total, wait=wait,
    )
    opened = Index(index_dir, encoder=encoder_obj)
    opened.last_build = report
    return opened


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
