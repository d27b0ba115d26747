"""Shards of a Ray build: their keys, their Parquet files, and reading them back.

A shard file holds one group of consecutive files' chunks (the chunk table's columns, in
file order), one vector column and one "has a vector" column per encoder, and in its
schema metadata the format, the encoders (id, fingerprint, dimension) and each file's
chunk count and read error. It is written beside its final name and renamed into place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from chunking import Chunk, SourceFile
from indexing.table import CHUNK_SCHEMA
from retriever.errors import IndexFormatError

__all__ = ["SHARD_FORMAT", "SHARD_VERSION", "ShardVectors", "chunk_from_row", "read_items",
           "shard_groups", "shard_meta", "shard_name", "shard_state", "write_shard"]

SHARD_FORMAT = "dense-retriever-ray-shard"
SHARD_VERSION = 2


def shard_groups(files: list[SourceFile], size: int, chunker_entry: dict,
                 walk_options: dict) -> list[tuple[str, list[SourceFile]]]:
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


def shard_name(key: str) -> str:
    return f"shard-{key}.parquet"


def shard_state(path: Path, wanted: list[dict]) -> str:
    """``"done"`` (usable as it is), ``"missing"``, or ``"refused"`` (made by other encoders,
    or damaged: removed, to be made again)."""
    if not path.exists():
        return "missing"
    try:
        meta = shard_meta(path)
        usable = meta["encoders"] == wanted
    except (IndexFormatError, KeyError, TypeError):
        usable = False
    if not usable:
        path.unlink(missing_ok=True)
        return "refused"
    return "done"


def shard_meta(path: Path) -> dict:
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


def write_shard(path: Path, rows: list[dict], wanted: list[dict]) -> int:
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


def chunk_from_row(row: dict) -> Chunk:
    def plain(value):
        return value.item() if hasattr(value, "item") else value

    return Chunk(id=plain(row["id"]), path=plain(row["path"]), language=plain(row["language"]),
                 start_line=int(row["start_line"]), end_line=int(row["end_line"]),
                 kind=plain(row["kind"]), symbol=plain(row["symbol"]) or None,
                 text=plain(row["text"]))


def read_items(paths: list[Path], skipped: list, notes: list, vectors: ShardVectors
               ) -> Iterator[tuple[dict, Iterable[Chunk]]]:
    """The local build's items, read back from the shards in file order."""
    import pyarrow.parquet as pq

    for path in paths:
        meta = shard_meta(path)
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


class ShardVectors:
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
