"""The Ray side of a build: chunking tasks, encoder actors, and gathering rows by shard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from chunking import SourceFile, embedding_text
from chunking.pool import chunk_file
from indexing.table import text_hash
from retriever import registry
from retriever.errors import IndexFormatError
from retriever.ray_build.actor_shares import actor_config, actor_share, hosts_of
from retriever.ray_build.shards import chunk_from_row, shard_name, write_shard

__all__ = ["Embedder", "chunk_shard", "run_cluster"]


def file_row(file: SourceFile) -> dict:
    return {"path": file.path, "absolute": str(file.absolute), "size": file.size,
            "mtime_ns": file.mtime_ns, "root": None if file.root is None else str(file.root),
            "max_bytes": file.max_bytes}


def chunk_shard(row: dict, *, chunker_entry: dict) -> list[dict]:
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


class Embedder:
    """Ray actor: the vectors of each encoder of the build for a batch of chunk rows, but
    for the texts in ``known`` (their vectors are in the live generation already)."""

    def __init__(self, encoders: list[tuple[str, str, dict]], known: dict[str, list[str]],
                 batch_workers: int | None = None) -> None:
        # batch_workers: this actor's share of its host's batch workers (see actor_shares.py).
        self.encoders = [(i, registry.create("encoder", name,
                                             actor_config(name, config, batch_workers)),
                          set(known.get(i, ()))) for i, name, config in encoders]

    def __call__(self, batch: dict) -> dict:
        hashes = [str(h) for h in batch["text_hash"]]
        chunks = np.asarray(batch["seq"]) >= 0
        for encoder_id, encoder, known in self.encoders:
            need = [i for i in np.flatnonzero(chunks) if hashes[i] not in known]
            vectors = np.zeros((len(hashes), encoder.dim), dtype=np.float32)
            if need:
                texts = [embedding_text(chunk_from_row({k: batch[k][i] for k in FIELDS}))
                         for i in need]
                vectors[need] = encoder.encode_documents(texts)
            has = np.zeros(len(hashes), dtype=bool)
            has[need] = True
            batch[f"vectors_{encoder_id}"] = vectors
            batch[f"has_{encoder_id}"] = has
        return batch


FIELDS = ("id", "path", "language", "start_line", "end_line", "kind", "symbol", "text")


def run_cluster(ray, address, pending, work, slots, wanted, chunker_entry, known, embed_batch,
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
        items = [{"shard": key, "files": json.dumps([file_row(f) for f in files])}
                 for key, files in pending]
        dataset = data.from_items(items, override_num_blocks=len(items)).flat_map(
            chunk_shard, fn_kwargs={"chunker_entry": chunker_entry})
        if slots:
            gpus = int(ray.cluster_resources().get("GPU", 0))
            actors = embedders or max(1, gpus)
            gpu_actors = gpus >= actors
            share = actor_share(hosts_of(ray.nodes()), actors, gpu_actors=gpu_actors)
            dataset = dataset.map_batches(
                Embedder, batch_size=embed_batch, batch_format="numpy",
                fn_constructor_kwargs={
                    "encoders": [(s.id, s.name, s.encoder.config()) for s in slots],
                    "known": known,
                    # Only an actor with a GPU: on the CPU the fast path starts no batch
                    # workers unless asked, and that default stays.
                    "batch_workers": share.batch_workers if gpu_actors else None},
                concurrency=actors, num_gpus=1 if gpu_actors else 0, num_cpus=share.num_cpus)
        gathered: dict[str, list[dict]] = {}
        embedded = 0
        batches = iter(dataset.iter_batches(batch_size=embed_batch, batch_format="numpy"))
        try:
            for batch in batches:
                for key, rows in split_by_shard(batch).items():
                    gathered.setdefault(key, []).extend(rows)
                    if len(gathered[key]) == rows[0]["total"]:
                        embedded += write_shard(work / shard_name(key), gathered.pop(key),
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


def split_by_shard(batch: dict) -> dict[str, list[dict]]:
    names = list(batch)
    out: dict[str, list[dict]] = {}
    for i in range(len(batch["seq"])):
        row = {name: batch[name][i] for name in names}
        out.setdefault(str(row["shard"]), []).append(row)
    return out


