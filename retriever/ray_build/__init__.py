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

import inspect
import os
import shutil
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from indexing.store import writer
from retriever.build import BuildReport, Progress, build_generation, git_commit
from retriever.encoder_slots import identity_of
from retriever.errors import InputError, MissingDependencyError
from retriever.ray_build.cluster import run_cluster
from retriever.ray_build.shards import (
    ShardVectors,
    read_items,
    shard_groups,
    shard_name,
    shard_state,
)
from retriever.reader import Index
from retriever.tree_plan import _opened, plan_tree

__all__ = ["RayBuildReport", "WORK_FOLDER", "index"]

WORK_FOLDER = "ray-work"
_INSTALL = "pip install 'dense-retriever[ray]'"
_PLAN_SETTINGS = frozenset(inspect.signature(plan_tree).parameters) - {"path"}


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
    progress: Progress | None = None,
    wait: float = 0.0,
    shard_files: int = 64,
    embed_batch: int = 256,
    embedders: int | None = None,
    work_dir: str | Path | None = None,
    **settings: Any,
) -> Index:
    """Index a source tree on Ray, or bring its index up to date, and open it.

    The result is the index a local build of the tree makes with the same settings.

    Args:
        ray: ``"auto"`` (the Ray runtime this process already started, else a cluster
            found the way ``ray.init()`` finds one, else a new local one) or a cluster
            address (``"ray://host:10001"``, ``"host:6379"``).
        progress, wait: as for :func:`retriever.index`.
        shard_files: files per shard on average, the unit that is kept and resumed.
        embed_batch: chunks per batch handed to an encoder actor.
        embedders: encoder actors; None: one per GPU of the cluster, else one.
        work_dir: where shards are written; default ``<index_dir>/ray-work``.
        **settings: what the index is: the keyword arguments of
            :func:`retriever.api.plan_tree` (``index_dir``, ``encoder``, ``tier``,
            ``force``...), meaning what they mean for :func:`retriever.index` (left as None,
            the existing index's are kept). The local build's ``cache``, ``workers`` and
            ``stale_ok`` do not apply here.

    Returns:
        The opened index; ``last_build`` is a :class:`RayBuildReport`.

    Raises:
        TypeError: a keyword that is none of the above.
        MissingDependencyError: Ray is not installed.
        InputError: bad settings (checked before Ray starts), or a tree with nothing to index.
    """
    # The names the tree plan takes are the settings: one list, kept by plan_tree itself.
    unknown = sorted(set(settings) - _PLAN_SETTINGS)
    if unknown:
        raise TypeError(f"index() got unexpected keyword arguments: {', '.join(unknown)}")
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
    plan = plan_tree(path, **settings)
    root, index_dir, live, walked = plan.root, plan.index_dir, plan.live, plan.walked
    slots, stale, query_encoder = plan.slots, plan.stale, plan.query_encoder
    # An encoder weighted by its corpus's token counts (the fast tier's static one) needs
    # every chunk counted before it can embed one, and embeds thousands of chunks a second
    # on one core: the assembling build embeds it, the cluster the others.
    everything, slots = slots, [s for s in slots if not getattr(s.encoder, "wants_corpus", False)]
    walk_options, chunker_entry = plan.walk_options, plan.chunker_entry
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
    shards = shard_groups(walked.files, shard_files, chunker_entry, walk_options)
    ray_report = RayBuildReport(shards=len(shards))
    pending = []
    for key, files in shards:
        state = shard_state(work / shard_name(key), wanted)
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
                       else live.reusable(entry["fingerprint"], entry["dim"],
                                          identity_of(slot.encoder)))
            known[slot.id] = sorted(rows)
        ray_report.cluster_embedded = run_cluster(
            ray_module, ray, pending, work, slots, wanted, chunker_entry, known, embed_batch,
            embedders, progress, len(shards) - len(pending), len(shards))
    cluster_seconds = time.perf_counter() - started

    skipped = [(s.path, s.reason) for s in walked.skipped]
    notes: list[str] = []
    vectors = ShardVectors(wanted)
    report = build_generation(
        index_dir, read_items([work / shard_name(key) for key, _ in shards], skipped, notes,
                          vectors),
        encoders=everything, chunker_entry=chunker_entry, lexical_config={}, text_style="code",
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


