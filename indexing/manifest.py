"""The manifest: what an index generation holds and how to rebuild its components.

Format version 2::

    {
      "format": "dense-retriever-index", "version": 2,
      "created_by": "dense-retriever 0.1.0", "created_at": "2026-12-01T10:00:00+00:00",
      "source": {"root": "..", "commit": "..."},   # root relative to the index folder
      "walk": {...} | null, "text_style": "code" | "document",
      "chunker": {"name": "cast", "config": {...}},
      "encoders": [{"id": "main", "name": "sentence-transformers", "config": {...},
                    "dim": 384, "fingerprint": "...", "tier": "full"}],
      "components": [{"name": "faiss", "role": "vectors", "config": {...}, "path": "dense",
                      "encoder": "main"},
                     {"name": "bm25", "role": "lexical", "config": {...}, "path": "lexical"}],
      "counts": {"files": 12, "chunks": 140, "skipped": 1},
      "skipped": [{"path": "big.bin", "reason": "binary"}]
    }

Every field is checked on read, so a damaged or hand-edited manifest is an IndexFormatError
naming the field, never a traceback later on.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from indexing.layout import MANIFEST, SEGMENT, read_small
from retriever.errors import IndexFormatError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "MANIFEST", "new_manifest", "read_manifest",
           "write_manifest", "package_version", "SKIPPED_KEPT"]

FORMAT_NAME = "dense-retriever-index"
FORMAT_VERSION = 2
# Skipped files listed by name in the manifest (the count is always exact).
SKIPPED_KEPT = 1000
_LIMIT = 64 << 20
_REBUILD = "Rebuild it with `retriever index PATH --force`."


def package_version() -> str:
    """The installed dense-retriever version, or "unknown" when run from a bare checkout."""
    try:
        return version("dense-retriever")
    except PackageNotFoundError:
        return "unknown"


def new_manifest(**fields: Any) -> dict[str, Any]:
    """A manifest dict with format, version, created_by and created_at filled in."""
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "created_by": f"dense-retriever {package_version()}",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    manifest.update(fields)
    return manifest


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` into ``directory`` (flushed to disk before returning)."""
    _check(manifest, directory / MANIFEST)  # a writer bug must not produce an unreadable index
    path = directory / MANIFEST
    with path.open("x", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_manifest(directory: Path) -> dict[str, Any]:
    """Read and check ``manifest.json``.

    Raises:
        IndexFormatError: missing, unparsable, truncated or too deeply nested, another
            format, another format version, or a field missing or of the wrong type. The
            message says how to rebuild.
    """
    path = directory / MANIFEST
    raw = read_small(path, _LIMIT)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise IndexFormatError(
            f"The index manifest {path} is corrupt or truncated ({reason}). {_REBUILD}"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{path} is not a dense-retriever index manifest. {_REBUILD}")
    found = manifest.get("version")
    if type(found) is not int or found != FORMAT_VERSION:
        newer = type(found) is int and found > FORMAT_VERSION
        raise IndexFormatError(
            f"The index at {directory.parent} has format version {found!r}, but this "
            f"dense-retriever ({package_version()}) reads version {FORMAT_VERSION}. "
            + ("Upgrade dense-retriever, or rebuild it with `retriever index PATH --force`."
               if newer else f"{_REBUILD} (its chunks are re-embedded once).")
        )
    _check(manifest, path)
    return manifest


def _check(manifest: dict, path: Path) -> None:
    def fail(field: str, wanted: str) -> None:
        raise IndexFormatError(
            f"The index manifest {path} is damaged: {field} should be {wanted}. {_REBUILD}"
        )

    def need(obj: dict, key: str, types: tuple, where: str, wanted: str):
        value = obj.get(key)
        # bool is an int to Python, never to us.
        if key not in obj or not isinstance(value, types) or (
            isinstance(value, bool) and bool not in types
        ):
            fail(f"{where}{key}", wanted)
        return value

    def count(obj: dict, key: str, where: str) -> None:
        if need(obj, key, (int,), where, "a count") < 0:
            fail(f"{where}{key}", "a count >= 0")

    for key in ("created_by", "created_at"):
        need(manifest, key, (str,), "", "a string")
    chunker = need(manifest, "chunker", (dict,), "", "an object")
    need(chunker, "name", (str,), "chunker.", "a name")
    need(chunker, "config", (dict,), "chunker.", "an object")
    if manifest.get("text_style") not in ("code", "document"):
        fail("text_style", '"code" or "document"')
    source = need(manifest, "source", (dict,), "", "an object")
    for key in ("root", "commit"):
        if key not in source or not isinstance(source[key], (str, type(None))):
            fail(f"source.{key}", "a string or null")
    if not isinstance(manifest.get("walk"), (dict, type(None))):
        fail("walk", "an object or null")
    counts = need(manifest, "counts", (dict,), "", "an object")
    for key in ("files", "chunks", "skipped"):
        count(counts, key, "counts.")
    ids = set()
    for i, encoder in enumerate(need(manifest, "encoders", (list,), "", "a list")):
        where = f"encoders[{i}]."
        if not isinstance(encoder, dict):
            fail(f"encoders[{i}]", "an object")
        ids.add(_segment(need(encoder, "id", (str,), where, "an id"), f"{where}id", fail))
        for key in ("name", "fingerprint"):
            need(encoder, key, (str,), where, "a string")
        if encoder.get("tier") not in ("dense", "fast"):
            fail(f"{where}tier", '"dense" or "fast"')
        need(encoder, "config", (dict,), where, "an object")
        if not isinstance(encoder.get("signature", ""), str):
            fail(f"{where}signature", "a string")
        if not isinstance(encoder.get("identity", ""), str):
            fail(f"{where}identity", "a string")
        if not isinstance(encoder.get("relative", []), list):
            fail(f"{where}relative", "a list of config keys")
        corpus = encoder.get("corpus")
        if corpus is not None and not (isinstance(corpus, dict) and isinstance(
                corpus.get("chunks"), int) and not isinstance(corpus["chunks"], bool)
                and corpus["chunks"] >= 0):
            fail(f"{where}corpus", "an object with the chunk count its token counts came from")
        if need(encoder, "dim", (int,), where, "a dimension") < 1:
            fail(f"{where}dim", "a dimension >= 1")
    paths = set()
    for i, component in enumerate(need(manifest, "components", (list,), "", "a list")):
        where = f"components[{i}]."
        if not isinstance(component, dict):
            fail(f"components[{i}]", "an object")
        need(component, "name", (str,), where, "a string")
        if component.get("role") not in ("vectors", "lexical", "symbols"):
            fail(f"{where}role", '"vectors", "lexical" or "symbols"')
        need(component, "config", (dict,), where, "an object")
        folder = _segment(need(component, "path", (str,), where, "a folder"), where + "path", fail)
        if folder in paths:
            fail(f"{where}path", "a folder no other component uses")
        paths.add(folder)
        if component["role"] == "vectors" and component.get("encoder") not in ids:
            fail(f"{where}encoder", "the id of one of the encoders")
    used = {c.get("encoder") for c in manifest["components"] if c["role"] == "vectors"}
    if used != ids:
        fail("components", "one vector component for each encoder, and no other")
    skipped = manifest.get("skipped", [])
    if not isinstance(skipped, list):
        fail("skipped", "a list")
    for i, entry in enumerate(skipped):
        if not (isinstance(entry, dict) and isinstance(entry.get("path"), str)
                and isinstance(entry.get("reason"), str)):
            fail(f"skipped[{i}]", "an object with a path and a reason")


def _segment(value: str, field: str, fail) -> str:
    if not SEGMENT.fullmatch(value):
        fail(field, "a plain lower-case name (it must not lead outside the index)")
    return value
