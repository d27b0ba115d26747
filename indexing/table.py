"""The chunk table, the file table and the vectors file of one index generation.

``chunks.parquet`` row ``i`` describes vector ``i`` of ``vectors.npy``. Both are written in
batches so that building an index streams: memory grows with the batch, not the corpus.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tokenize
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from chunking import Chunk
from indexing.layout import CHUNKS, FILES, LABELS
from retriever.errors import IndexFormatError

__all__ = [
    "CHUNKS", "FILES", "CHUNK_SCHEMA", "FILE_SCHEMA",
    "ChunkTableWriter", "read_table", "iter_chunk_batches", "rows_to_chunks",
    "text_hash", "write_files", "open_vectors", "create_vectors", "LABELS", "chunk_labels",
    "check_chunk_schema", "load_npy", "NPY_ERRORS",
    "open_labels",
]

# The names are indexing.layout's. LABELS: the stable int64 label of each row, derived from
# the chunk id: what the vector index stores, so re-indexing can remove and add by label.

CHUNK_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("path", pa.string()),
    ("language", pa.string()),
    ("start_line", pa.int32()),
    ("end_line", pa.int32()),
    ("kind", pa.string()),
    ("symbol", pa.string()),
    ("text", pa.string()),
    # Hash of the text the encoder saw: equal hashes under the same encoder mean equal
    # vectors, which is what lets re-indexing skip unchanged chunks wherever they moved.
    ("text_hash", pa.string()),
])

FILE_SCHEMA = pa.schema([
    ("path", pa.string()),
    ("size", pa.int64()),
    ("mtime_ns", pa.int64()),
    ("chunks", pa.int32()),
])

_REBUILD = "Rebuild the index with `retriever index PATH --force`."


def text_hash(text: str) -> str:
    """Hash of an embedding text."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class ChunkTableWriter:
    """Appends chunks to ``chunks.parquet`` in row groups."""

    def __init__(self, path: Path, *, batch_rows: int = 4096) -> None:
        self._writer = pq.ParquetWriter(path, CHUNK_SCHEMA, compression="zstd")
        self._rows: list[dict] = []
        self._batch_rows = batch_rows
        self.count = 0

    def add(self, chunk: Chunk, embed_hash: str) -> None:
        """Append one chunk and the hash of its embedding text."""
        self._rows.append({
            "id": chunk.id, "path": chunk.path, "language": chunk.language,
            "start_line": chunk.start_line, "end_line": chunk.end_line, "kind": chunk.kind,
            "symbol": chunk.symbol, "text": chunk.text, "text_hash": embed_hash,
        })
        self.count += 1
        if len(self._rows) >= self._batch_rows:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=CHUNK_SCHEMA))
            self._rows = []

    def close(self) -> None:
        """Write the last rows and the footer."""
        self._flush()
        self._writer.close()


def read_table(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """Read a parquet table, turning damage into IndexFormatError."""
    try:
        # ParquetFile reads one file as read_table does, without importing pyarrow.dataset
        # (which imports pandas: 0.2-0.3 s of a search's cold start).
        return pq.ParquetFile(path, memory_map=True).read(
            columns=list(columns) if columns else None)
    except FileNotFoundError:
        raise IndexFormatError(f"{path} is missing. {_REBUILD}") from None
    except (pa.ArrowException, OSError) as exc:
        raise IndexFormatError(f"{path} is corrupt or truncated ({exc}). {_REBUILD}") from exc


def iter_chunk_batches(path: Path, *, rows: int = 1024) -> Iterator[pa.RecordBatch]:
    """Stream the chunk table in record batches."""
    try:
        yield from pq.ParquetFile(path).iter_batches(batch_size=rows)
    except (pa.ArrowException, OSError) as exc:
        raise IndexFormatError(f"{path} is corrupt or truncated ({exc}). {_REBUILD}") from exc


def rows_to_chunks(table: pa.Table | pa.RecordBatch, rows: Iterable[int]) -> list[Chunk]:
    """The chunks at ``rows`` of a chunk table."""
    if isinstance(rows, range) and rows.step == 1 and 0 <= rows.start <= rows.stop <= \
            table.num_rows:
        # A run of rows (the whole table, a batch) is a slice: the arrow array that take()
        # needs imports pandas as it is built (pyarrow checks its input against pandas'
        # types), 0.2-0.3 s of a search's cold start.
        picked = table.slice(rows.start, len(rows)).to_pydict()
    else:
        rows = list(rows)
        if not rows:
            return []
        picked = table.take(pa.array(rows, type=pa.int64())).to_pydict()
    fields = ("id", "path", "language", "start_line", "end_line", "kind", "symbol", "text")
    return [Chunk(*(picked[name][i] for name in fields)) for i in range(len(rows))]


def write_files(path: Path, files: Iterable[dict]) -> None:
    """Write the file table (path, size, mtime_ns, chunks) used to detect a stale index."""
    pq.write_table(pa.Table.from_pylist(list(files), schema=FILE_SCHEMA), path)


def create_vectors(path: Path, n: int, dim: int) -> np.memmap:
    """A new ``(n, dim)`` float32 ``.npy`` file, memory-mapped for writing in batches.

    The file's blocks are reserved up front: a sparse memory map on a disk that fills up
    kills the process with SIGBUS at the first page it cannot back, with no message; a
    reservation fails now with ENOSPC (an OSError the writer turns into a clear error).
    """
    vectors = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        # EINVAL/EOPNOTSUPP: a file system that cannot reserve; the map stays sparse there.
        if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
            del vectors
            raise
    finally:
        os.close(fd)
    return vectors


def check_chunk_schema(table: pa.Table, path: Path) -> None:
    """IndexFormatError unless ``table`` has the chunk table's columns and types."""
    for field in CHUNK_SCHEMA:
        if field.name not in table.column_names or table.schema.field(field.name).type \
                != field.type:
            raise IndexFormatError(
                f"{path} is not a chunk table of this index (column {field.name!r} is missing "
                f"or of another type). {_REBUILD}"
            )


# What numpy raises on a damaged .npy: a bad header is parsed as a Python literal, so
# truncated or random bytes can surface as SyntaxError or tokenize.TokenError.
NPY_ERRORS = (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError)


def load_npy(path: Path, *, mmap: bool = False) -> np.ndarray:
    """``np.load`` without pickles; IndexFormatError when missing or damaged."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise IndexFormatError(f"{path} is missing. {_REBUILD}") from None
    except NPY_ERRORS as exc:
        raise IndexFormatError(f"{path} is corrupt or truncated ({exc}). {_REBUILD}") from exc


def open_vectors(path: Path, *, rows: int, dim: int) -> np.ndarray:
    """Memory-map ``vectors.npy`` read-only and check it against the chunk table.

    Raises:
        IndexFormatError: missing, unreadable, or a shape that does not match ``rows`` x ``dim``.
    """
    vectors = load_npy(path, mmap=True)
    if vectors.ndim != 2 or vectors.shape != (rows, dim) or vectors.dtype != np.float32:
        raise IndexFormatError(
            f"{path} holds {vectors.dtype} vectors of shape {vectors.shape}, but the chunk table "
            f"has {rows} rows of dimension {dim}: the index is inconsistent. {_REBUILD}"
        )
    return vectors



def chunk_labels(chunks: Path, out: Path) -> np.ndarray:
    """Stable labels for the rows of ``chunks``, written to ``out`` (``labels.npy``).

    A label is 60 bits of a hash of the chunk id and the hash of its embedding text: it
    survives re-indexing wherever the chunk moves in the table, and changes whenever the
    vector may change (a document's title is embedded but not part of its chunk id). Should
    two rows ever share one (duplicate chunks), the row numbers are used instead, which stay
    valid but are not stable across builds.

    Returns:
        ``(n,)`` int64 non-negative, unique.
    """
    table = read_table(chunks, ["id", "text_hash"])
    ids, hashes = table.column("id").to_pylist(), table.column("text_hash").to_pylist()
    labels = np.fromiter(
        (int(hashlib.blake2b(f"{i}\0{h}".encode(), digest_size=8).hexdigest()[:15], 16)
         for i, h in zip(ids, hashes, strict=True)),
        dtype=np.int64, count=len(ids),
    )
    if len(np.unique(labels)) != len(labels):
        labels = np.arange(len(ids), dtype=np.int64)
    np.save(out, labels)
    return labels


def open_labels(path: Path) -> np.ndarray:
    """Read ``labels.npy``; IndexFormatError when missing or damaged."""
    labels = load_npy(path)
    if labels.ndim != 1 or labels.dtype != np.int64:
        raise IndexFormatError(
            f"{path} holds {labels.dtype} {labels.shape}, not labels. {_REBUILD}"
        )
    return labels
