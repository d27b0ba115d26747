"""The error tree of dense-retriever.

Library code raises these with a message that says what to do; the CLI catches only the base
class, prints ``Error: message`` and exits 1. Anything else escaping is a bug.

::

    RetrieverError
     ├── InputError            bad user input: missing path, empty tree, empty query, bad option
     ├── IndexFormatError      an index directory that is corrupt, truncated, of an unknown
     │                         format version, or inconsistent (vectors vs. chunk table)
     ├── EncoderMismatchError  querying an index with an encoder other than the one that built it
     ├── IndexLockedError      another writer holds the index
     ├── StorageError          the file system refused a read or write (full disk, read-only,
     │                         permissions), with the path and what to do
     ├── DatasetError          a malformed benchmark file (names the file and line)
     └── MissingDependencyError  an optional package or a local model is not available

This module imports nothing from the project, so the lower layers (chunking, encoders,
indexing) can raise these without depending on the facade.
"""

from __future__ import annotations

__all__ = [
    "RetrieverError",
    "InputError",
    "IndexFormatError",
    "EncoderMismatchError",
    "IndexLockedError",
    "StorageError",
    "DatasetError",
    "MissingDependencyError",
]


class RetrieverError(Exception):
    """Base class of every error this library raises on purpose."""


class InputError(RetrieverError, ValueError):
    """The caller gave something unusable: a missing path, an empty query, a bad option."""


class IndexFormatError(RetrieverError):
    """An index directory is corrupt, truncated, inconsistent or of an unknown format version."""


class EncoderMismatchError(RetrieverError):
    """The encoder offered for queries is not the one whose vectors the index holds."""


class IndexLockedError(RetrieverError):
    """Another process is writing this index."""


class StorageError(RetrieverError, OSError):
    """The file system refused to store or read an index: full, read-only, no permission."""


class DatasetError(RetrieverError):
    """A benchmark dataset file is malformed; the message names the file and line."""


class MissingDependencyError(RetrieverError, ImportError):
    """An optional dependency or a local model is not installed."""
