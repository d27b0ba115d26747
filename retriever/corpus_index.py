"""Build an index of a corpus of documents (BEIR-style): one chunk per document."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from chunking import Chunk
from retriever.build import MAIN, DenseSpec, EncoderSlot, Progress, build_generation
from retriever.errors import InputError
from retriever.hits import Document
from retriever.ranking.context import mostly_code
from retriever.reader import Index
from retriever.tree_plan import (
    DEFAULT_ENCODER,
    _asked_tier,
    _cache,
    _encoder,
    _fast_slot,
    _opened,
)

__all__ = ["index_documents"]


# Documents a corpus's kind (source code or prose) is decided from, as at search time.
_KIND_SAMPLE = 400


def index_documents(
    documents: Iterable[Document],
    *,
    index_dir: str | Path,
    encoder: Any = DEFAULT_ENCODER,
    encoder_config: dict | None = None,
    lexical_config: dict | None = None,
    progress: Progress | None = None,
    total: int = 0,
    wait: float = 0.0,
    index_spec: str = "auto",
    index_options: dict | None = None,
    lexical_only: bool = False,
    cache: Any = None,
    tier: str | None = None,
) -> Index:
    """Index a corpus of documents (BEIR-style), one chunk per document, and open it.

    ``Hit.path`` of a result is the document id. Rebuilding over the same documents
    re-embeds nothing: vectors are reused by content.

    Args:
        documents: :class:`retriever.Document` values (id, text, title); ids must be unique.
        index_dir: where to write the index.
        lexical_config: keyword arguments for the BM25 index.
        total: number of documents, if known, for progress reporting.
        tier: ``"dense"`` (the encoder's vectors), ``"full"`` (those and the fast tier's
            static vectors, which hybrid search over source code fuses as a third side),
            ``"fast"`` (static vectors only) or ``"lexical"`` (none). None: ``"full"`` with
            the default encoder and model when most of the first 400 documents are source
            code, else ``"dense"`` (``"lexical"`` with ``lexical_only``).
        index_spec, index_options, lexical_only, cache: as for :func:`index`.
    """
    documents = iter(documents)
    head = list(itertools.islice(documents, _KIND_SAMPLE))
    tier = _documents_tier(tier, lexical_only, encoder, encoder_config, head)
    documents = itertools.chain(head, documents)
    slots = []
    if tier in ("fast", "full"):
        slots.append(_fast_slot(None, None))
    if tier in ("dense", "full"):
        name, obj = _encoder(encoder, encoder_config)
        slots.append(EncoderSlot(MAIN, name, obj,
                                 DenseSpec(index_spec or "auto", dict(index_options or {}))))
    seen: set[str] = set()

    def items() -> Iterator[tuple[dict, Iterable[Chunk]]]:
        for doc in documents:
            doc = _as_document(doc)
            if doc.id in seen:
                raise InputError(f"Duplicate document id {doc.id!r}: ids must be unique.")
            seen.add(doc.id)
            lines = max(1, doc.text.count("\n") + 1)
            chunk = Chunk.make(path=doc.id, language="text", start_line=1, end_line=lines,
                               kind="document", symbol=doc.title or None, text=doc.text)
            yield {"path": doc.id, "size": len(doc.text), "mtime_ns": 0}, (chunk,)

    report = build_generation(
        Path(index_dir), items(),
        encoders=slots, chunker_entry={"name": "document", "config": {}},
        lexical_config=dict(lexical_config or {}),
        text_style="document",
        extra_manifest={"source": {"root": None, "commit": None}, "walk": None},
        progress=progress, total_files=total, wait=wait,
        cache=_cache(cache) if slots else None,
    )
    # The query encoder is the best tier's: the transformer's when there is one.
    return _opened(Path(index_dir), slots[-1].encoder if slots else None, report)


def _documents_tier(tier: str | None, lexical_only: bool, encoder: Any,
                    encoder_config: dict | None, head: list) -> str:
    """The vector sets a documents corpus gets (see :func:`index_documents`): both for
    source code with the default model, the one the three-side weights were fitted with."""
    tier = _asked_tier(tier, lexical_only)
    if tier is not None:
        return tier
    from encoders.sentence import DEFAULT_MODEL  # here: a lexical-only caller never needs it

    default_model = (encoder_config or {}).get("model") in (None, DEFAULT_MODEL)
    if encoder == DEFAULT_ENCODER and default_model and mostly_code(
            [_as_document(doc).text for doc in head]):
        return "full"
    return "dense"


def _as_document(doc: Any) -> Document:
    """``doc`` as a Document; a plain mapping with ``id`` and ``text`` (and ``title``) is
    accepted, anything else is an InputError saying what is wanted."""
    if isinstance(doc, Document):
        return doc
    if isinstance(doc, dict) and isinstance(doc.get("id"), str) and isinstance(
        doc.get("text"), str
    ):
        title = doc.get("title") or ""
        if not isinstance(title, str):
            raise InputError(f"Document {doc['id']!r} has a title that is not a string.")
        return Document(id=doc["id"], text=doc["text"], title=title)
    raise InputError(
        "index_documents() takes retriever.Document(id=..., text=..., title=...) values or "
        f"dicts with string 'id' and 'text' (and 'title'); got {type(doc).__name__} "
        f"{str(doc)[:80]!r}."
    )
