"""Facts about a sentence-transformers model folder, read from its files without loading it.

Loading a model costs seconds (importing torch alone takes about one); an index's staleness
check, ``info`` and lexical search only need the model's identity and output dimension, which
its files already state. Both answers here cost a directory walk and a few small JSON reads.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path

__all__ = ["MERGE_INPUTS", "content_digests", "embedding_dim", "file_stats", "merge_identity",
           "stat_digest"]

# Files whose bytes define what a model computes; hashed into the fingerprint.
_FINGERPRINT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")

# What a merged adapter folder was made from (encoders.adapter.merged_folder): the adapter's
# inputs digest and its base's identity. Its suffix keeps it out of the fingerprint, so a
# folder merged before it existed keeps its fingerprint when it gains one.
MERGE_INPUTS = "merge.inputs"

# Digests already computed in this process, keyed by the folder's stat signature and the
# prefix hashed before the files. A changed file changes its signature, so a stale entry is
# never returned; an unchanged folder costs a walk and a stat per file instead of a read.
_DIGESTS: dict[tuple, str] = {}
_DIGESTS_LOCK = threading.Lock()


def _model_files(path: Path) -> list[Path]:
    return [
        file
        for file in sorted(path.rglob("*"))
        if file.is_file() and file.suffix in _FINGERPRINT_SUFFIXES
    ]


def file_stats(path: Path, files: list[Path]) -> tuple:
    """``files`` (under ``path``) as a stat key: each one's relative name, size, mtime, ctime
    and inode. Equal keys mean untouched files, so a digest memoised under one stays true."""
    # ctime and inode as well as size and mtime: a same-size rewrite that keeps its mtime
    # (a copy with preserved times, os.replace of a twin) still changes one of them.
    rows = []
    for file in files:
        stat = file.stat()
        rows.append((
            file.relative_to(path).as_posix(), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns,
            stat.st_ino,
        ))
    return (str(path), tuple(rows))


def stat_digest(path: Path, prefix: bytes) -> str:
    """A cheap identity of the folder's files as they are on this disk: blake2b of ``prefix``
    and each model file's (name, size, mtime_ns, ctime_ns, inode), one stat per file.

    Equal stat digests mean the files were not touched (ctime and inode change with any
    rewrite or copy), so a fingerprint recorded beside one can be trusted without reading the
    weights again; a different one says nothing and the content must be hashed.
    """
    files = _model_files(path)
    return hashlib.blake2b(prefix + repr(file_stats(path, files)).encode(),
                           digest_size=16).hexdigest()


def content_digests(
    path: Path, prefixes: Sequence[bytes], *, while_reading: Sequence[bytes] = ()
) -> list[str]:
    """One hex digest per prefix: blake2b-128 of the prefix, then each model file's name and bytes.

    The files are those whose suffix marks weights, configs or vocabularies, in sorted order.
    All missing digests are computed in one read of the files; each is memoised per process
    by the files' (path, size, mtime_ns, ctime_ns, inode), so a repeated call costs a stat.
    ``while_reading``: further prefixes to digest and memoise only if the files get read anyway.
    """
    files = _model_files(path)
    signature = file_stats(path, files)
    with _DIGESTS_LOCK:
        known = {prefix: _DIGESTS.get((signature, prefix)) for prefix in prefixes}
    missing = [prefix for prefix, digest in known.items() if digest is None]
    if missing:
        with _DIGESTS_LOCK:
            missing += [
                prefix for prefix in while_reading
                if prefix not in known and (signature, prefix) not in _DIGESTS
            ]
        hashers = {prefix: hashlib.blake2b(prefix, digest_size=16) for prefix in missing}
        for file in files:
            name = file.relative_to(path).as_posix().encode()
            for hasher in hashers.values():
                hasher.update(name)
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    for hasher in hashers.values():
                        hasher.update(block)
        with _DIGESTS_LOCK:
            for prefix, hasher in hashers.items():
                known[prefix] = _DIGESTS[(signature, prefix)] = hasher.hexdigest()
    return [known[prefix] for prefix in prefixes]


def _read_json(file: Path) -> object:
    """The parsed file, or None where it is missing or not JSON."""
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _positive_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _pooling_dim(config: dict) -> int | None:
    # sentence-transformers 6 writes embedding_dimension and pooling_mode (a name or a list of
    # them); earlier releases wrote word_embedding_dimension and one pooling_mode_* flag per
    # mode, defaulting to mean. Each mode contributes one token-dimension block.
    width = _positive_int(config.get("embedding_dimension", config.get("word_embedding_dimension")))
    if width is None:
        return None
    mode = config.get("pooling_mode")
    if isinstance(mode, str):
        return width
    if isinstance(mode, list):
        return width * len(mode) if mode else None
    flags = [key for key, on in config.items() if key.startswith("pooling_mode_") and on is True]
    return width * max(1, len(flags))


def _transformer_dim(config: dict) -> int | None:
    # Backbones that project (CLIP-style projection_dim, retrieval heads' embedding_dim) or nest
    # a text config report their width in other ways; leave those to the loaded model.
    if any(key in config for key in ("projection_dim", "embedding_dim", "text_config")):
        return None
    return _positive_int(config.get("hidden_size"))


def _module_dim(kind: str, folder: Path) -> tuple[bool, int | None]:
    """(understood, dim) of one module; dim None with understood True: it keeps the width."""
    if kind in ("Normalize", "Dropout"):
        return True, None
    config = _read_json(folder / "config.json")
    if not isinstance(config, dict):
        return False, None
    if kind == "Pooling":
        dim = _pooling_dim(config)
    elif kind == "Dense":
        dim = _positive_int(config.get("out_features"))
    elif kind == "LayerNorm":
        dim = _positive_int(config.get("dimension"))
    elif kind == "Transformer":
        dim = _transformer_dim(config)
    else:
        return False, None
    return dim is not None, dim


def embedding_dim(path: Path) -> int | None:
    """The output dimension that ``modules.json`` and the module configs describe.

    Mirrors sentence-transformers: the last module that states a width decides, and a
    ``truncate_dim`` in ``config_sentence_transformers.json`` (Matryoshka models) cuts it.
    Returns None for a folder this does not understand (no ``modules.json``, a module type
    other than the built-in Transformer, Pooling, Dense, LayerNorm, Normalize, Dropout); the
    caller then loads the model and asks it.
    """
    modules = _read_json(path / "modules.json")
    if not isinstance(modules, list) or not modules:
        return None
    dim = None
    for module in reversed(modules):
        if not isinstance(module, dict) or not isinstance(module.get("type"), str):
            return None
        package, _, kind = module["type"].rpartition(".")
        # Only the library's own modules: a third-party class may share a name, not a meaning.
        if not package.startswith("sentence_transformers"):
            return None
        understood, dim = _module_dim(kind, path / str(module.get("path", "")))
        if not understood:
            return None
        if dim is not None:
            break
    if dim is None:
        return None
    settings = _read_json(path / "config_sentence_transformers.json")
    truncate = _positive_int(settings.get("truncate_dim")) if isinstance(settings, dict) else None
    return min(dim, truncate) if truncate else dim


_IDENTITIES: dict[tuple, str | None] = {}


def _safetensors_header(file: Path) -> bytes:
    """The header of a safetensors file: every tensor's name, dtype, shape and offsets."""
    with file.open("rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        return handle.read(min(size, 1 << 26))


def merge_identity(path: Path) -> str | None:
    """The identity of a merged adapter folder that holds the same on every machine, where the
    fingerprint hashes the merged weights, whose float32 rounding depends on the CPU's BLAS
    kernel: what it was merged from (:data:`MERGE_INPUTS`), every model file but the weights,
    and the weights' header (each tensor's name, dtype and shape). None for a folder without
    the record (not a merge, or one merged before the record existed) and for one whose name
    is not the one its record gives (``NAME-ADAPTER_DIGEST``: a copy, or a stale record).
    Memoised per process by the files' stat."""
    path = Path(path)
    record = path / MERGE_INPUTS
    if not record.is_file():
        return None
    files = _model_files(path)
    try:
        key = (file_stats(path, files), file_stats(path, [record]))
    except OSError:
        return None
    if key in _IDENTITIES:
        return _IDENTITIES[key]
    try:
        written = record.read_bytes()
        inputs = json.loads(written)
        named = isinstance(inputs, dict) and \
            path.name == f"{inputs.get('adapter')}-{inputs.get('adapter_digest')}"
        found = None
        if named:
            hasher = hashlib.blake2b(b"merged:" + written, digest_size=16)
            for file in files:
                name = file.relative_to(path).as_posix()
                hasher.update(name.encode())
                hasher.update(_safetensors_header(file) if name == "model.safetensors"
                              else file.read_bytes())
            found = hasher.hexdigest()
    except (OSError, ValueError):
        return None
    _IDENTITIES[key] = found
    return found
