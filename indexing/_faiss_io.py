"""Saving and loading a FAISS structure: the structure's file, then the small JSON file that
describes it (written last), read back with its format, file name, vector count and
memory-mapping flags checked."""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import faiss

from indexing._faiss_search import ivf_of
from indexing.layout import read_bytes

__all__ = ["write_meta", "read_meta", "read_index_file", "mmap_flags", "save_structure",
           "load_structure"]


def write_meta(path: Path, meta: dict) -> None:
    """Write the JSON file describing a saved index (callers write it last)."""
    path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def read_meta(path: Path, format_name: str, version: int) -> dict:
    """Read the JSON file beside a saved index and check its format, version and file name.

    Raises:
        OSError, ValueError, KeyError, AttributeError: the caller turns these into an
            IndexFormatError that names the file.
    """
    meta = json.loads(read_bytes(path, 1 << 20).decode("utf-8"))
    if meta.get("format") != format_name or meta.get("version") != version:
        raise ValueError(
            f"not a {format_name} v{version} manifest "
            f"(format {meta.get('format')!r}, version {meta.get('version')!r})"
        )
    file_name = meta["file"]
    # A bare name only: the metadata must not point outside the index directory.
    if not (isinstance(file_name, str) and file_name == Path(file_name).name):
        raise ValueError(f"bad index file name {file_name!r}")
    return meta


def read_index_file(path: Path, reader: Callable, flags: int, error: Callable):
    """``reader(path, flags)`` (faiss.read_index or read_index_binary); a missing or
    unreadable file raises ``error(path, reason)``."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise error(path, "it is not a regular file (symlinks are never followed)")
        return reader(str(path), flags)
    except (RuntimeError, OSError) as exc:
        reason = "it is missing" if not path.exists() else f"FAISS cannot read it: {exc}"
        raise error(path, reason) from exc


def mmap_flags(index) -> int:
    """FAISS read flags that memory-map the saved ``index`` (decided from its structure when
    it is saved, and recorded in its metadata).

    ``IO_FLAG_MMAP`` maps inverted lists (IVF); ``IO_FLAG_MMAP_IFC`` maps the code arrays of
    flat-code structures (Flat, PQ, SQ, HNSW storage). FAISS reads IVF lists with mmap only
    through a plain file reader, which the second flag replaces, so IVF gets the first alone.
    """
    if ivf_of(index) is not None:
        return faiss.IO_FLAG_MMAP
    return faiss.IO_FLAG_MMAP | faiss.IO_FLAG_MMAP_IFC


_KNOWN_FLAGS = (faiss.IO_FLAG_MMAP, faiss.IO_FLAG_MMAP | faiss.IO_FLAG_MMAP_IFC)


def save_structure(directory: Path, meta_file: str, structure, *, write: Callable,
                   file_name: str, header: dict, config: dict) -> None:
    """Write a FAISS structure and, last, the JSON file that describes it.

    A directory whose save was interrupted therefore has no (new) metadata file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    try:
        write(structure, str(directory / file_name))
    except RuntimeError as exc:
        # FAISS reports a failed write (a full disk, say) as RuntimeError; the writer of the
        # generation turns OSErrors into a StorageError that names the fix.
        reason = str(exc).strip().splitlines()[-1][:200]
        code = errno.ENOSPC if "No space left" in str(exc) else errno.EIO
        raise OSError(code, f"FAISS could not write it ({reason})",
                      str(directory / file_name)) from exc
    write_meta(directory / meta_file, {
        **header, "config": config, "file": file_name, "ntotal": int(structure.ntotal),
        "mmap_flags": mmap_flags(structure),
    })


def load_structure(cls, directory: Path, meta_file: str, header: dict, *, read: Callable,
                   mmap: bool, error: Callable, config: dict):
    """Read what :func:`save_structure` wrote, for the index class ``cls``.

    Returns:
        ``(meta, saved, wanted, structure)``: the metadata, ``cls`` built from the saved
        config, ``cls`` built from ``config`` (the saved one when empty), and the FAISS
        structure, whose vector count is checked against the metadata.

    Raises:
        IndexFormatError (through ``error(path, reason)``): missing, damaged or inconsistent.
        InputError: ``config`` itself is invalid.
    """
    meta_path = directory / meta_file
    try:
        meta = read_meta(meta_path, header["format"], header["version"])
        saved, ntotal, flags = cls(**meta["config"]), meta["ntotal"], meta["mmap_flags"]
        if flags not in _KNOWN_FLAGS or type(ntotal) is not int:
            raise ValueError("bad mmap_flags or ntotal")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise error(meta_path, exc) from exc
    wanted = cls(**config) if config else saved
    path = directory / meta["file"]
    structure = read_index_file(path, read, flags if mmap else 0, error)
    if structure.ntotal != ntotal:
        raise error(path, f"it holds {structure.ntotal} vectors, {meta_file} {ntotal}")
    return meta, saved, wanted, structure
