"""The encoders of a generation: the slot a build fills (an encoder and the vector index on
its vectors) and the manifest entry that records it (portable paths, the check that an encoder
is the one that made a set of vectors)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retriever.components import new_vector_index

__all__ = ["MAIN", "DenseSpec", "EncoderSlot", "stat_signature", "identity_of", "same_encoder",
           "corpus_bound", "portable_config", "resolved_config"]


MAIN = "main"


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
        corpus: for an encoder bound to its corpus's token counts (``wants_corpus``), what
            the manifest records of them (``{"chunks": N}``, the chunks they were counted
            over); None otherwise.
    """

    id: str
    name: str
    encoder: Any
    dense: DenseSpec
    tier: str = "dense"
    corpus: dict | None = None


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
    # The same merged model on another CPU: its weights round differently, its inputs not.
    # Asked before the fingerprint, which hashes the weights (90 MB) in every new process there.
    if entry.get("identity") is not None and entry["identity"] == identity_of(encoder):
        return True
    return entry["fingerprint"] == encoder.fingerprint()


def identity_of(encoder) -> str | None:
    """The encoder's machine-independent identity where its fingerprint is not one (a merged
    adapter's), else None."""
    method = getattr(encoder, "identity", None)
    return method() if callable(method) else None


def corpus_bound(entry: dict, encoder, generation):
    """``encoder`` bound to the token counts a generation stored for the manifest encoder
    ``entry``, when its vectors depend on its corpus (``wants_corpus``) and it has none
    bound yet; else ``encoder`` itself. Queries must be weighted as the documents were, and
    the fingerprint that proves it covers the counts."""
    if (not getattr(encoder, "wants_corpus", False) or encoder.counts_digest is not None
            or "corpus" not in entry):
        return encoder
    return encoder.with_counts(generation.token_counts(entry["id"]))


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
