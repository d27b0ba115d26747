"""The public names are the ones we mean to export."""

from __future__ import annotations

import retriever


def test_public_names():
    assert sorted(retriever.__all__) == sorted([
        "index", "index_documents", "open", "is_stale", "Index", "SearchMode", "Hit",
        "Document", "BuildReport", "Results", "Stage", "fuse", "registry", "search_payload",
        "snippet",
        "RetrieverError", "InputError", "IndexFormatError", "EncoderMismatchError",
        "IndexLockedError", "StorageError", "DatasetError", "MissingDependencyError",
    ])
    for name in retriever.__all__:
        assert getattr(retriever, name) is not None


def test_errors_share_one_base():
    for name in ("InputError", "IndexFormatError", "EncoderMismatchError", "IndexLockedError",
                 "StorageError", "DatasetError", "MissingDependencyError"):
        assert issubclass(getattr(retriever, name), retriever.RetrieverError)


def test_registry_lists_built_ins_and_names_them_in_errors():
    assert "sentence-transformers" in retriever.registry.available("encoder")
    assert "cast" in retriever.registry.available("chunker")
    try:
        retriever.registry.load("encoder", "nope")
    except retriever.InputError as exc:
        assert "sentence-transformers" in str(exc)
    else:
        raise AssertionError("unknown name accepted")
