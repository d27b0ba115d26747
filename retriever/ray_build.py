"""Building an index on a Ray cluster: chunk on CPU workers, embed on GPU (or CPU) actors.

The tree is walked here, on the driver, and its files cut into shards of consecutive files.
Ray Data reads and chunks each shard with the engine's chunker (``flat_map``, CPU tasks) and
embeds the chunks with encoder actors (``map_batches``, one GPU each where the cluster has
GPUs); the driver gathers the rows of each shard and writes them, chunks and vectors, as one
Parquet file in a work folder (written beside, then renamed: a shard file is whole or
absent). Once every shard is there, one generation is assembled from them with
:func:`retriever.build.build_generation`, the local build's own writer: the same chunk
table, manifest, fingerprints, components and atomic publish, the shards' vectors served to
it as a vector cache, so it embeds nothing itself.

Resuming: a shard's file name is a hash of its files (path, size, mtime) and the chunker and
walk settings; its metadata records the encoders (id, fingerprint, dimension) that made its
vectors. A build that dies (a worker, the driver, a bad input) leaves the previous generation
live and its finished shards in the work folder; the next build reuses those, and refuses
(re-makes) any made by a different encoder. The work folder goes once the generation is live.

Workers read the files by their absolute paths, so a cluster of several machines needs the
tree on a shared file system; a local cluster (``ray="auto"`` with none running) always can.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from chunking import Chunk, SourceFile, embedding_text
from chunking.pool import chunk_file
from chunking.walker import walk
from indexing.store import writer
from indexing.table import CHUNK_SCHEMA, text_hash
from retriever import registry
from retriever.api import (
    DEFAULT_CHUNKER,
    DEFAULT_INDEX_DIR,
    _fast_slot,
    _live,
    _main_slot,
    _opened,
    _tier,
    _walk_options,
    is_stale,
)
from retriever.build import MAIN, BuildReport, Progress, build_generation, git_commit
from retriever.errors import IndexFormatError, InputError, MissingDependencyError
from retriever.reader import Index

__all__ = ["RayBuildReport", "WORK_FOLDER", "index"]

WORK_FOLDER = "ray-work"
SHARD_FORMAT = "dense-retriever-ray-shard"
SHARD_VERSION = 2
_INSTALL = "pip install 'dense-retriever[ray]'"


@dataclass
class RayBuildReport(BuildReport):
    """A :class:`~retriever.build.BuildReport` plus what the cluster did.

    Attributes:
        shards: shards of the tree.
        shards_reused: finished shards found in the work folder and used as they were.
        shards_refused: shards found there made by another encoder (or damaged), made again.
        cluster_embedded: chunks the cluster's actors embedded (per encoder, summed); chunks
            the live generation already has vectors for are not embedded again.
    """

    shards: int = 0
    shards_reused: int = 0
    shards_refused: int = 0
    cluster_embedded: int = 0


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401 - the Data library is what the build needs
    except ImportError as exc:
        raise MissingDependencyError(
            f"Building on Ray needs the ray extra, which is not installed: {_INSTALL}"
        ) from exc
    return ray


def index(
    path: str | Path = ".",
    *,
    ray: str = "auto",
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
    shard_files: int = 64,
    embed_batch: int = 256,
    embedders: int | None = None,
    work_dir: str | Path | None = None,
) -> Index:
    """Index a source tree on Ray, or bring its index up to date, and open it.

    The settings mean what they mean for :func:`retriever.index` (left as None, the existing
    index's are kept); the result is the index a local build of the tree makes.

    Args:
        ray: ``"auto"`` (the Ray runtime this process already started, else a cluster
            found the way ``ray.init()`` finds one, else a new local one) or a cluster
            address (``"ray://host:10001"``, ``"host:6379"``).
        shard_files: files per shard on average, the unit that is kept and resumed.
        embed_batch: chunks per batch handed to an encoder actor.
        embedders: encoder actors; None: one per GPU of the cluster, else one.
        work_dir: where shards are written; default ``<index_dir>/ray-work``.

    Returns:
        The opened index; ``last_build`` is a :class:`RayBuildReport`.

    Raises:
        MissingDependencyError: Ray is not installed.
        InputError: bad settings (checked before Ray starts), or a tree with nothing to index.
    """
    ray_module = _ray()
    for label, value in (("shard_files", shard_files), ("embed_batch", embed_batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{label} must be a positive integer, not {value!r}.")
    if embedders is not None and (
        isinstance(embedders, bool) or not isinstance(embedders, int) or embedders < 1
    ):
        raise InputError(f"embedders must be a positive integer or None, not {embedders!r}.")
    if not isinstance(ray, str) or not ray.strip():
        raise InputError(f"ray must be 'auto' or a cluster address, not {ray!r}.")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InputError(f"{root} is not a folder. Pass the folder that holds the files.")
    root = root.resolve()
    index_dir = Path(index_dir).expanduser() if index_dir is not None else root / DEFAULT_INDEX_DIR
    live = _live(index_dir)
    walk_options = _walk_options(live, max_file_bytes, include_dependencies)
    tier = _tier(live, tier, lexical_only, encoder)
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
        raise InputError(
            f"No indexable files under {root}. Point at a folder with source or text files, "
            "or check its .gitignore and .retrieverignore."
        )

    def stale(generation) -> bool:
        return force or is_stale(generation, walked.files, encoders=slots,
                                 chunker=chunker_entry, walk_options=walk_options,
                                 dense_configs=dense_configs)

    query_encoder = next((s.encoder for s in slots if s.id == MAIN),
                         slots[0].encoder if slots else None)
    if not stale(live):
        return _opened(index_dir, query_encoder, RayBuildReport(
            rebuilt=False, files=len(walked.files), chunks=live.chunk_count))

    started = time.perf_counter()
    if work_dir is None:
        _claim(index_dir, wait)
    work = Path(work_dir).expanduser() if work_dir is not None else index_dir / WORK_FOLDER
    work.mkdir(parents=True, exist_ok=True)
    wanted = [{"id": s.id, "fingerprint": s.encoder.fingerprint(), "dim": s.encoder.dim}
              for s in slots]
    shards = _shards(walked.files, shard_files, chunker_entry, walk_options)
    ray_report = RayBuildReport(shards=len(shards))
    pending = []
    for key, files in shards:
        state = _shard_state(work / _shard_name(key), wanted)
        if state == "done":
            ray_report.shards_reused += 1
        else:
            ray_report.shards_refused += state == "refused"
            pending.append((key, files))
    if pending:
        # Vectors the live generation holds are reused by the assembling build (it looks
        # there before the shards), so the actors skip those texts.
        known = {}
        for slot, entry in zip(slots, wanted, strict=True):
            rows, _ = (({}, None) if live is None
                       else live.reusable(entry["fingerprint"], entry["dim"]))
            known[slot.id] = sorted(rows)
        ray_report.cluster_embedded = _run_cluster(
            ray_module, ray, pending, work, slots, wanted, chunker_entry, known, embed_batch,
            embedders, progress, len(shards) - len(pending), len(shards))
    cluster_seconds = time.perf_counter() - started

    skipped = [(s.path, s.reason) for s in walked.skipped]
    notes: list[str] = []
    vectors = _ShardVectors(wanted)
    report = build_generation(
        index_dir, _items([work / _shard_name(key) for key, _ in shards], skipped, notes,
                          vectors),
        encoders=slots, chunker_entry=chunker_entry, lexical_config={}, text_style="code",
        extra_manifest={
            "source": {"root": os.path.relpath(root, index_dir.resolve()),
                       "commit": git_commit(root)},
            "walk": walk_options,
        },
        skipped=skipped, progress=progress, total_files=len(walked.files), wait=wait,
        cache=vectors if slots else None, still_stale=stale,
    )
    report.warnings.extend(notes)
    for item in fields(BuildReport):
        setattr(ray_report, item.name, getattr(report, item.name))
    ray_report.timings["cluster"] = cluster_seconds
    ray_report.seconds += cluster_seconds
    if report.rebuilt:
        shutil.rmtree(work, ignore_errors=True)
    return _opened(index_dir, query_encoder, ray_report)


class _Claimed(Exception):  # noqa: N818 - a signal, not an error
    pass


def _claim(index_dir: Path, wait: float) -> None:
    """Make ``index_dir`` an index folder (its LOCK and .gitignore) before the work folder
    goes inside it, through the writer itself: a writer that raises publishes nothing."""
    try:
        with writer(index_dir, wait=wait):
            raise _Claimed
    except _Claimed:
        pass


def _shards(files: list[SourceFile], size: int, chunker_entry: dict, walk_options: dict
            ) -> list[tuple[str, list[SourceFile]]]:
    """Consecutive groups of about ``size`` files, each with a key naming its content.

    A group ends after a file whose path hashes to 0 modulo ``size`` (or at four times the
    size), so boundaries depend on the paths around them only: adding or removing a file
    changes its own shard's key, not every later one's, and a refresh reuses the others.
    """
    import hashlib

    settings = json.dumps([SHARD_VERSION, chunker_entry, walk_options], sort_keys=True)
    groups: list[list[SourceFile]] = [[]]
    for file in files:
        groups[-1].append(file)
        mark = int.from_bytes(hashlib.blake2b(file.path.encode("utf-8", "surrogatepass"),
                                              digest_size=8).digest(), "big")
        if mark % size == 0 or len(groups[-1]) >= 4 * size:
            groups.append([])
    shards = []
    for group in (g for g in groups if g):
        digest = hashlib.blake2b(settings.encode(), digest_size=16)
        for file in group:
            digest.update(json.dumps([file.path, file.size, file.mtime_ns]).encode())
        shards.append((digest.hexdigest(), group))
    return shards


def _shard_name(key: str) -> str:
    return f"shard-{key}.parquet"


def _shard_state(path: Path, wanted: list[dict]) -> str:
    """``"done"`` (usable as it is), ``"missing"``, or ``"refused"`` (made by other encoders,
    or damaged: removed, to be made again)."""
    if not path.exists():
        return "missing"
    try:
        meta = _shard_meta(path)
        usable = meta["encoders"] == wanted
    except (IndexFormatError, KeyError, TypeError):
        usable = False
    if not usable:
        path.unlink(missing_ok=True)
        return "refused"
    return "done"


def _shard_meta(path: Path) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        raw = (pq.read_schema(path).metadata or {}).get(b"dense_retriever")
        meta = json.loads(raw) if raw else None
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise IndexFormatError(f"The shard {path} is damaged: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != SHARD_FORMAT or meta.get(
            "version") != SHARD_VERSION:
        raise IndexFormatError(f"{path} is not a shard this version wrote.")
    return meta


def _file_row(file: SourceFile) -> dict:
    return {"path": file.path, "absolute": str(file.absolute), "size": file.size,
            "mtime_ns": file.mtime_ns, "root": None if file.root is None else str(file.root),
            "max_bytes": file.max_bytes}


def _chunk_shard(row: dict, *, chunker_entry: dict) -> list[dict]:
    """Ray task: read and chunk one shard's files. One row per chunk, and a last row (the
    trailer, ``seq == -1``) carrying the files' chunk counts and read errors."""
    chunker = registry.create("chunker", chunker_entry["name"], chunker_entry["config"])
    rows, files, notes = [], [], []
    for spec in json.loads(row["files"]):
        file = SourceFile(path=spec["path"], absolute=Path(spec["absolute"]), size=spec["size"],
                          mtime_ns=spec["mtime_ns"],
                          root=None if spec["root"] is None else Path(spec["root"]),
                          max_bytes=spec["max_bytes"])
        done = chunk_file(chunker, file)
        files.append({"path": file.path, "size": file.size, "mtime_ns": file.mtime_ns,
                      "chunks": len(done.chunks), "error": done.error})
        if done.note is not None:
            notes.append(f"{file.path}: {done.note}")
        for chunk in done.chunks:
            rows.append({"id": chunk.id, "path": chunk.path, "language": chunk.language,
                         "start_line": chunk.start_line, "end_line": chunk.end_line,
                         "kind": chunk.kind, "symbol": chunk.symbol, "text": chunk.text,
                         "text_hash": text_hash(embedding_text(chunk))})
    total = len(rows) + 1
    out = [{**r, "shard": row["shard"], "seq": i, "total": total, "trailer": ""}
           for i, r in enumerate(rows)]
    out.append({"id": "", "path": "", "language": "", "start_line": 0, "end_line": 0,
                "kind": "", "symbol": None, "text": "", "text_hash": "",
                "shard": row["shard"], "seq": -1,
                "total": total, "trailer": json.dumps({"files": files, "notes": notes})})
    return out


class _Embedder:
    """Ray actor: the vectors of each encoder of the build for a batch of chunk rows, but
    for the texts in ``known`` (their vectors are in the live generation already)."""

    def __init__(self, encoders: list[tuple[str, str, dict]], known: dict[str, list[str]]
                 ) -> None:
        self.encoders = [(i, registry.create("encoder", name, config), set(known.get(i, ())))
                         for i, name, config in encoders]

    def __call__(self, batch: dict) -> dict:
        hashes = [str(h) for h in batch["text_hash"]]
        chunks = np.asarray(batch["seq"]) >= 0
        for encoder_id, encoder, known in self.encoders:
            need = [i for i in np.flatnonzero(chunks) if hashes[i] not in known]
            vectors = np.zeros((len(hashes), encoder.dim), dtype=np.float32)
            if need:
                vectors[need] = encoder.encode_documents(
                    [embedding_text(_chunk({k: batch[k][i] for k in _FIELDS})) for i in need])
            has = np.zeros(len(hashes), dtype=bool)
            has[need] = True
            batch[f"vectors_{encoder_id}"] = vectors
            batch[f"has_{encoder_id}"] = has
        return batch


_FIELDS = ("id", "path", "language", "start_line", "end_line", "kind", "symbol", "text")


def _run_cluster(ray, address, pending, work, slots, wanted, chunker_entry, known, embed_batch,
                 embedders, progress, done, total) -> int:
    """Chunk and embed the pending shards on the cluster; write each shard as it completes.
    Returns how many vectors the actors computed."""
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=None if address == "auto" else address, log_to_driver=False,
                 include_dashboard=False, configure_logging=False)
    try:
        from ray import data

        context = data.DataContext.get_current()
        context.enable_progress_bars = False  # a library never prints
        items = [{"shard": key, "files": json.dumps([_file_row(f) for f in files])}
                 for key, files in pending]
        dataset = data.from_items(items, override_num_blocks=len(items)).flat_map(
            _chunk_shard, fn_kwargs={"chunker_entry": chunker_entry})
        if slots:
            gpus = int(ray.cluster_resources().get("GPU", 0))
            actors = embedders or max(1, gpus)
            dataset = dataset.map_batches(
                _Embedder, batch_size=embed_batch, batch_format="numpy",
                fn_constructor_kwargs={"encoders": [(s.id, s.name, s.encoder.config())
                                                    for s in slots], "known": known},
                concurrency=actors, num_gpus=1 if gpus >= actors else 0)
        gathered: dict[str, list[dict]] = {}
        embedded = 0
        batches = iter(dataset.iter_batches(batch_size=embed_batch, batch_format="numpy"))
        try:
            for batch in batches:
                for key, rows in _split_by_shard(batch).items():
                    gathered.setdefault(key, []).extend(rows)
                    if len(gathered[key]) == rows[0]["total"]:
                        embedded += _write_shard(work / _shard_name(key), gathered.pop(key),
                                                 wanted)
                        done += 1
                        if progress:
                            progress("shards", done, total)
        finally:
            # Stops the streaming execution now (its actors hold the cluster's CPUs or GPUs)
            # rather than whenever the iterator is collected.
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        if gathered:
            raise IndexFormatError(f"Ray returned {len(gathered)} shards incomplete; run again.")
        return embedded
    finally:
        if started_here:
            ray.shutdown()


def _split_by_shard(batch: dict) -> dict[str, list[dict]]:
    names = list(batch)
    out: dict[str, list[dict]] = {}
    for i in range(len(batch["seq"])):
        row = {name: batch[name][i] for name in names}
        out.setdefault(str(row["shard"]), []).append(row)
    return out


def _write_shard(path: Path, rows: list[dict], wanted: list[dict]) -> int:
    """One shard's chunks (in file order) and vectors as Parquet, published by rename.
    Returns how many vectors it holds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    trailer = next(r for r in rows if int(r["seq"]) < 0)
    rows = sorted((r for r in rows if int(r["seq"]) >= 0), key=lambda r: int(r["seq"]))
    columns = {}
    for name in CHUNK_SCHEMA.names:
        values = [r[name] for r in rows]
        if name == "symbol":
            values = [v or None for v in values]
        columns[name] = pa.array([v.item() if hasattr(v, "item") else v for v in values],
                                 type=CHUNK_SCHEMA.field(name).type)
    held = 0
    for entry in wanted:
        flat = np.stack([r[f"vectors_{entry['id']}"] for r in rows]).astype(np.float32) \
            if rows else np.zeros((0, entry["dim"]), dtype=np.float32)
        columns[f"vectors_{entry['id']}"] = pa.FixedSizeListArray.from_arrays(
            pa.array(flat.reshape(-1)), entry["dim"])
        has = [bool(r[f"has_{entry['id']}"]) for r in rows]
        columns[f"has_{entry['id']}"] = pa.array(has, type=pa.bool_())
        held += sum(has)
    meta = {"format": SHARD_FORMAT, "version": SHARD_VERSION, "encoders": wanted,
            **json.loads(str(trailer["trailer"]))}
    table = pa.table(columns).replace_schema_metadata({"dense_retriever": json.dumps(meta)})
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return held


def _chunk(row: dict) -> Chunk:
    def plain(value):
        return value.item() if hasattr(value, "item") else value

    return Chunk(id=plain(row["id"]), path=plain(row["path"]), language=plain(row["language"]),
                 start_line=int(row["start_line"]), end_line=int(row["end_line"]),
                 kind=plain(row["kind"]), symbol=plain(row["symbol"]) or None,
                 text=plain(row["text"]))


def _items(paths: list[Path], skipped: list, notes: list, vectors: _ShardVectors
           ) -> Iterator[tuple[dict, Iterable[Chunk]]]:
    """The local build's items, read back from the shards in file order."""
    import pyarrow.parquet as pq

    for path in paths:
        meta = _shard_meta(path)
        ids = [e["id"] for e in meta["encoders"]]
        read = pq.read_table(path, columns=list(CHUNK_SCHEMA.names) + [f"has_{i}" for i in ids])
        table = read.to_pylist()
        vectors.add(path, [row["text_hash"] for row in table],
                    {i: read.column(f"has_{i}").to_numpy(zero_copy_only=False) for i in ids})
        notes.extend(meta.get("notes", ()))
        at = 0
        for file in meta["files"]:
            record = {"path": file["path"], "size": file["size"], "mtime_ns": file["mtime_ns"]}
            if file["error"] is not None:
                skipped.append((file["path"], file["error"]))
            rows = table[at : at + file["chunks"]]
            at += file["chunks"]
            yield record, [Chunk(**{k: row[k] for k in Chunk.__slots__}) for row in rows]


class _ShardVectors:
    """The shards' vectors as a vector cache (``lookup``/``store``/``problems``) for the
    assembling build: per encoder, hash -> (shard, row) of the rows that hold a vector;
    vectors are read one shard at a time (the build asks in table order)."""

    def __init__(self, wanted: list[dict]) -> None:
        self._ids = {(e["fingerprint"], e["dim"]): e["id"] for e in wanted}
        self.problems: list[str] = []
        self._where: dict[str, dict[str, tuple[int, int]]] = {e["id"]: {} for e in wanted}
        self._paths: list[Path] = []
        self._loaded: tuple[tuple[int, str], np.ndarray] | None = None

    def add(self, path: Path, hashes: list[str], held: dict[str, np.ndarray]) -> None:
        shard = len(self._paths)
        self._paths.append(path)
        for encoder_id, mask in held.items():
            where = self._where.setdefault(encoder_id, {})
            for row in np.flatnonzero(mask):
                where.setdefault(hashes[row], (shard, int(row)))

    def _vectors(self, shard: int, encoder_id: str) -> np.ndarray:
        import pyarrow.parquet as pq

        if self._loaded is None or self._loaded[0] != (shard, encoder_id):
            column = pq.read_table(self._paths[shard], columns=[f"vectors_{encoder_id}"])
            array = column.column(0).combine_chunks()
            flat = array.values.to_numpy(zero_copy_only=False)
            self._loaded = ((shard, encoder_id), flat.reshape(len(array), -1))
        return self._loaded[1]

    def lookup(self, fingerprint: str, dim: int, hashes) -> tuple[np.ndarray, np.ndarray]:
        encoder_id = self._ids.get((fingerprint, dim))
        out = np.zeros((len(hashes), dim), dtype=np.float32)
        found = np.zeros(len(hashes), dtype=bool)
        if encoder_id is None:
            return out, found
        where = self._where.get(encoder_id, {})
        for i, value in enumerate(hashes):
            at = where.get(value)
            if at is not None:
                out[i] = self._vectors(at[0], encoder_id)[at[1]]
                found[i] = True
        return out, found

    def store(self, fingerprint: str, hashes, vectors) -> None:
        """Nothing is kept: what the assembling build embeds itself is already in its table."""
