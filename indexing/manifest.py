"""The manifest: what an index generation holds and how to rebuild its components."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from retriever.errors import IndexFormatError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "MANIFEST", "new_manifest", "read_manifest",
           "write_manifest", "package_version"]

FORMAT_NAME = "dense-retriever-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

_REQUIRED = ("format", "version", "encoder", "chunker", "indexes", "counts")


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
    path = directory / MANIFEST
    with path.open("w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_manifest(directory: Path) -> dict[str, Any]:
    """Read and check ``manifest.json``.

    Raises:
        IndexFormatError: missing, unparsable or truncated, another format, a newer
            format version, or missing fields. The message says how to rebuild.
    """
    path = directory / MANIFEST
    rebuild = "Rebuild it with `retriever index PATH --force`."
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IndexFormatError(f"The index manifest {path} is missing. {rebuild}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"Cannot read the index manifest {path}: {exc}. {rebuild}") from exc
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IndexFormatError(
            f"The index manifest {path} is corrupt or truncated ({exc}). {rebuild}"
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{path} is not a dense-retriever index manifest. {rebuild}")
    found = manifest.get("version")
    if not isinstance(found, int) or found > FORMAT_VERSION or found < 1:
        raise IndexFormatError(
            f"The index at {directory} has format version {found!r}, but this dense-retriever "
            f"({package_version()}) reads version {FORMAT_VERSION}. Upgrade dense-retriever, "
            f"or {rebuild[0].lower()}{rebuild[1:]}"
        )
    missing = [key for key in _REQUIRED if key not in manifest]
    if missing:
        raise IndexFormatError(
            f"The index manifest {path} lacks {', '.join(missing)}. {rebuild}"
        )
    return manifest
