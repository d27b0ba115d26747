"""dense-retriever: hybrid dense + lexical search over code and text.

    import retriever
    idx = retriever.index("path/to/repo")          # build or refresh PATH/.retriever
    hits = idx.search("how are retries backed off", k=10)
    idx = retriever.open("path/to/repo/.retriever")

Names load lazily, so the lower layers can import ``retriever.errors`` without pulling
in the whole engine (and without import cycles).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__all__ = [
    "index", "index_documents", "open", "is_stale", "Index", "SearchMode", "Hit", "Document",
    "BuildReport", "Results", "Stage", "fuse", "registry", "search_payload", "snippet",
    "RetrieverError", "InputError", "IndexFormatError", "EncoderMismatchError",
    "IndexLockedError", "StorageError", "DatasetError", "MissingDependencyError",
]

_WHERE = {
    "index": "retriever.api", "index_documents": "retriever.api", "open": "retriever.api",
    "is_stale": "retriever.api",
    "Index": "retriever.reader", "SearchMode": "retriever.reader",
    "Hit": "retriever.hits", "Document": "retriever.hits",
    "BuildReport": "retriever.build",
    "Results": "retriever.pipeline", "Stage": "retriever.pipeline", "fuse": "retriever.pipeline",
    "registry": "retriever.registry",
    "search_payload": "retriever.payload", "snippet": "retriever.payload",
    **{name: "retriever.errors" for name in (
        "RetrieverError", "InputError", "IndexFormatError", "EncoderMismatchError",
        "IndexLockedError", "StorageError", "DatasetError", "MissingDependencyError",
    )},
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'retriever' has no attribute {name!r}")
    module = import_module(_WHERE[name])
    value = module if name == "registry" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from retriever import registry
    from retriever.api import index, index_documents, is_stale, open
    from retriever.build import BuildReport
    from retriever.errors import (
        DatasetError,
        EncoderMismatchError,
        IndexFormatError,
        IndexLockedError,
        InputError,
        MissingDependencyError,
        RetrieverError,
        StorageError,
    )
    from retriever.hits import Document, Hit
    from retriever.payload import search_payload, snippet
    from retriever.pipeline import Results, Stage, fuse
    from retriever.reader import Index, SearchMode
