"""One published generation folder, opened read-only: its checked manifest and its parts.

Both the reader and the next build (which reuses vectors and trained indexes) open
generations through this class, so every path they take from index files is checked the
same way: one plain segment resolving to a real file or folder inside the generation
(:func:`indexing.layout.inside`), and no symlink or special file anywhere in it.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import numpy as np

from indexing.layout import CHUNKS, LABELS, counts_file, inside, read_small, vectors_file
from indexing.manifest import read_manifest
from indexing.table import check_chunk_schema, open_labels, open_vectors, read_table
from retriever.components import component_class
from retriever.errors import IndexFormatError, RetrieverError

__all__ = ["Generation"]

_REBUILD = "Rebuild the index with `retriever index PATH --force`."
# A token-count file holds one int64 per row of a static model's table (61,000 rows: 0.5 MB).
_COUNTS_LIMIT = 64 << 20


class Generation:
    """A generation folder with a valid manifest.

    Args:
        path: the ``gen-*`` folder (as :func:`indexing.store.current_generation` gives it).

    Raises:
        IndexFormatError: the manifest is missing or damaged, or the folder holds a symlink
            or a special file (a planted link would make a reader read outside the index).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        _refuse_links(self.path)
        self.manifest = read_manifest(self.path)
        for entry in self.manifest["components"]:
            self._kind(entry)  # every component a registered kind of its role, read or not

    @classmethod
    def open_quietly(cls, path: Path | None) -> Generation | None:
        """The generation at ``path``, or None when there is none or it is damaged (a build
        then simply reuses nothing from it)."""
        if path is None:
            return None
        try:
            return cls(path)
        except RetrieverError:
            return None

    @property
    def chunk_count(self) -> int:
        return self.manifest["counts"]["chunks"]

    def chunk_table(self, columns=None):
        """The chunk table, checked against the manifest's row count and the schema."""
        path = inside(self.path, CHUNKS, kind="file")
        table = read_table(path, columns)
        if columns is None:
            check_chunk_schema(table, path)
        if table.num_rows != self.chunk_count:
            raise IndexFormatError(
                f"The chunk table at {self.path} has {table.num_rows} rows but the manifest "
                f"records {self.chunk_count}. {_REBUILD}"
            )
        return table

    def encoder(self, encoder_id: str) -> dict:
        for entry in self.manifest["encoders"]:
            if entry["id"] == encoder_id:
                return entry
        raise IndexFormatError(f"The index at {self.path} has no encoder {encoder_id!r}.")

    def vectors(self, encoder_id: str) -> np.ndarray:
        """The memory-mapped ``(chunks, dim)`` float32 vectors of one encoder."""
        dim = self.encoder(encoder_id)["dim"]
        path = inside(self.path, vectors_file(encoder_id), kind="file")
        return open_vectors(path, rows=self.chunk_count, dim=dim)

    def token_counts(self, encoder_id: str) -> np.ndarray:
        """The int64 token counts one encoder's vectors were weighted by (its manifest entry
        says ``corpus``); IndexFormatError when the file is missing or not such an array."""
        path = inside(self.path, counts_file(encoder_id), kind="file")
        try:
            counts = np.load(io.BytesIO(read_small(path, _COUNTS_LIMIT)), allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise IndexFormatError(
                f"{path} is not a token-count array ({exc}). {_REBUILD}") from exc
        if counts.ndim != 1 or counts.dtype != np.int64 or (len(counts) and counts.min() < 0):
            raise IndexFormatError(
                f"{path} holds {counts.dtype} of shape {counts.shape}, not one non-negative "
                f"int64 count per token. {_REBUILD}")
        return counts

    def labels(self) -> np.ndarray:
        labels = open_labels(inside(self.path, LABELS, kind="file"))
        if len(labels) != self.chunk_count:
            raise IndexFormatError(f"{self.path / LABELS} does not match the chunks. {_REBUILD}")
        return labels

    def components(self, role: str) -> list[dict]:
        """The manifest entries of the components of ``role`` (``"vectors"``, ``"lexical"``)."""
        return [entry for entry in self.manifest["components"] if entry["role"] == role]

    def load(self, entry: dict, **arguments):
        """Load the component a manifest entry describes, through the registry."""
        cls = self._kind(entry)
        folder = inside(self.path, entry["path"], kind="dir")
        try:
            return cls.load(folder, **arguments)
        except TypeError as exc:
            raise IndexFormatError(
                f"The {entry['name']} component at {folder} has a configuration this version "
                f"cannot use ({exc}). {_REBUILD}"
            ) from exc

    def _kind(self, entry: dict) -> type:
        cls = component_class(entry["name"])
        if getattr(cls, "role", None) != entry["role"]:
            raise IndexFormatError(
                f"The index at {self.path} lists {entry['name']} as a {entry['role']} "
                f"component, which it is not. {_REBUILD}"
            )
        return cls

    def reusable(self, fingerprint: str, dim: int,
                 identity: str | None = None) -> tuple[dict, np.ndarray | None]:
        """Map embedding-text hash -> row of vectors made by the encoder ``fingerprint`` (or
        of the same ``identity``: the same merged model merged on another CPU), and those
        vectors; empty when there are none or they are damaged."""
        for entry in self.manifest["encoders"]:
            if entry["dim"] == dim and _same_model(entry, fingerprint, identity):
                try:
                    hashes = self.chunk_table(["text_hash"]).column("text_hash").to_pylist()
                    vectors = self.vectors(entry["id"])
                except RetrieverError:
                    return {}, None
                return {h: row for row, h in enumerate(hashes)}, vectors
        return {}, None

    def vector_index(self, name: str, config: dict, fingerprint: str,
                     identity: str | None = None):
        """The writable vector index of kind ``name`` and ``config`` built on the encoder
        ``fingerprint`` (or ``identity``, as in :meth:`reusable`), for an update by label;
        None when there is none or it is damaged."""
        encoders = {e["id"]: e for e in self.manifest["encoders"]}
        for entry in self.components("vectors"):
            encoder = encoders.get(entry.get("encoder"))
            if (entry["name"], entry["config"]) == (name, config) and encoder is not None \
                    and _same_model(encoder, fingerprint, identity):
                try:
                    return self.load(entry, **config)
                except RetrieverError:
                    return None
        return None


def _same_model(entry: dict, fingerprint: str, identity: str | None) -> bool:
    return entry["fingerprint"] == fingerprint or (
        identity is not None and entry.get("identity") == identity)


def _refuse_links(path: Path) -> None:
    """IndexFormatError when the generation folder holds a symlink or a special file."""
    try:
        mode = os.lstat(path).st_mode
        if not stat.S_ISDIR(mode):
            raise IndexFormatError(f"{path} is not a plain folder. {_REBUILD}")
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                entry = os.lstat(os.path.join(root, name)).st_mode
                if not (stat.S_ISREG(entry) or stat.S_ISDIR(entry)):
                    raise IndexFormatError(
                        f"{os.path.join(root, name)} is a symlink or a special file; an index "
                        f"never holds one, so it has been tampered with. {_REBUILD}"
                    )
    except OSError as exc:
        raise IndexFormatError(f"Cannot read the index folder {path}: {exc.strerror}.") from exc
