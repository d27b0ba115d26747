"""The plan of a tree's build, decided before anything is written: the arguments checked, the
tree walked, the encoder slots and the chunker chosen, and whether the live generation is stale
(shared by :func:`retriever.api.index` and the Ray build, so both refuse and decide alike);
and the two helpers every build entry point shares (the vector cache, the opened result)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chunking.walker import walk
from indexing.layout import FILES
from indexing.store import current_generation, is_index
from indexing.table import read_table
from retriever import registry
from retriever.build import (
    MAIN,
    BuildReport,
    DenseSpec,
    EncoderSlot,
    resolved_config,
    same_encoder,
)
from retriever.encoder_slots import corpus_bound
from retriever.errors import InputError, RetrieverError
from retriever.generation import Generation
from retriever.reader import Index

__all__ = ["plan_tree", "TreePlan", "is_stale", "DEFAULT_INDEX_DIR", "SEARCH_TIER", "TIERS",
           "DEFAULT_TIER"]


DEFAULT_INDEX_DIR = ".retriever"
DEFAULT_ENCODER = "sentence-transformers"
FAST_ENCODER = "static"
FAST = "fast"
# The corpus SIF weighting of a source tree's fast tier (encoders.static): s = 0.005 was the
# best of eight on the semble benchmark's tune half (dense-only 0.736 -> 0.772; check half
# 0.669 -> 0.684). Document corpora keep the model's own weights: CoSQA lost 0.026 with it.
TREE_CORPUS_SIF = 0.005
TIERS = ("lexical", "fast", "dense", "full")
# What a new index gets when no tier is asked for.
DEFAULT_TIER = "dense"
# What `retriever search` builds for a tree with no index: an answer in about a second (a
# static encoder's vectors embed thousands of chunks a second; the transformer, tens).
SEARCH_TIER = FAST
DEFAULT_CHUNKER = "cast"
_MAX_FILE_BYTES = 1 << 20


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
    try:
        return not all(same_encoder(entry, corpus_bound(entry, slot.encoder, generation))
                       for entry, slot in zip(manifest["encoders"], encoders, strict=True))
    except RetrieverError:
        return True  # damaged token counts: rebuilt


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
        slots.append(_fast_slot(live, fast_model, TREE_CORPUS_SIF))
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


def _fast_slot(live: Generation | None, model: str | None,
               corpus_sif: float = 0.0) -> EncoderSlot:
    """The static encoder's vector set: the model asked for, else the index's own static
    encoder (its settings kept), else the shipped one; a new one weights tokens by the
    corpus with ``corpus_sif`` (:mod:`encoders.static`)."""
    saved = None if live is None or model is not None else next(
        (e for e in live.manifest["encoders"] if e["id"] == FAST), None)
    config = resolved_config(saved, live.path.parent) if saved else {
        **({"model": str(model)} if model is not None else {}),
        **({"corpus_sif": corpus_sif} if corpus_sif else {})}
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
