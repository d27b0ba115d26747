"""A tree's fast tier weights tokens by the tree's own counts (corpus SIF): the counts are
stored with the vectors, bound at query time, kept across small edits and remade after large
ones; damaged counts are a clear error and a rebuild."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import retriever
from chunking import embedding_text
from encoders.static import StaticEncoder
from indexing.store import current_generation
from retriever.tree_plan import TREE_CORPUS_SIF

STATIC = str(Path(__file__).resolve().parents[1] / "data" / "static_model")


def _fast(repo: Path):
    return retriever.index(repo, tier="fast", fast_model=STATIC, cache=False)


def _counts_file(repo: Path) -> Path:
    return current_generation(repo / ".retriever") / "token-counts-fast.npy"


def test_fast_tier_vectors_are_weighted_by_the_trees_own_counts(repo):
    index = _fast(repo)
    entry = index.manifest["encoders"][0]
    assert entry["config"]["corpus_sif"] == TREE_CORPUS_SIF
    assert entry["corpus"] == {"chunks": len(index)}
    texts = [embedding_text(c) for c in index.chunks()]
    encoder = StaticEncoder(model=STATIC, corpus_sif=TREE_CORPUS_SIF)
    counts = encoder.count_tokens(texts)
    assert np.array_equal(np.load(_counts_file(repo)), counts)
    bound = encoder.with_counts(counts)
    assert np.array_equal(np.asarray(index.vectors), bound.encode_documents(texts))
    # Another process opens the index and queries with the same weights.
    reopened = retriever.Index(repo / ".retriever")
    assert reopened.encoder.counts_digest == bound.counts_digest
    assert np.array_equal(reopened.encoder.encode_queries(["retry backoff"]),
                          bound.encode_queries(["retry backoff"]))
    assert reopened.search("retry backoff", k=3, mode="dense")
    # An unbound encoder handed in is bound to the index's counts; another s is refused.
    reopened.use_encoder(encoder)
    assert reopened.encoder.counts_digest == bound.counts_digest
    with pytest.raises(retriever.EncoderMismatchError):
        reopened.use_encoder(StaticEncoder(model=STATIC, corpus_sif=0.01))
    # Unchanged tree: up to date, nothing rebuilt.
    assert not _fast(repo).last_build.rebuilt


def test_a_small_edit_keeps_the_counts_and_the_other_vectors(repo):
    first = _fast(repo)
    digest = first.encoder.counts_digest
    target = next(p for p in sorted(repo.rglob("*.py")) if ".retriever" not in p.parts)
    target.write_text(target.read_text() + "\n\ndef added_helper():\n    return 1\n")
    second = _fast(repo)
    report = second.last_build
    assert report.rebuilt and second.encoder.counts_digest == digest
    assert report.embedded >= 1 and report.reused >= len(second) - report.embedded - 1
    assert report.reused > 0
    assert second.manifest["encoders"][0]["corpus"] == {"chunks": len(first)}


def test_a_large_change_counts_again(repo):
    first = _fast(repo)
    extra = repo / "extra"
    extra.mkdir()
    for i in range(len(first)):  # about doubles the chunks: past the drift allowance
        (extra / f"mod_{i}.py").write_text(
            f"def parse_json_{i}(x):\n    return read_file(x, {i})\n")
    second = _fast(repo)
    assert second.encoder.counts_digest != first.encoder.counts_digest
    assert second.manifest["encoders"][0]["corpus"] == {"chunks": len(second)}
    assert second.last_build.reused == 0  # every weight moved, so every vector


@pytest.mark.parametrize("damage", ["corrupt", "missing", "wrong length"])
def test_damaged_counts_are_a_clear_error_and_a_rebuild_mends_them(repo, damage):
    _fast(repo)
    path = _counts_file(repo)
    if damage == "corrupt":
        path.write_bytes(b"not a numpy file")
    elif damage == "missing":
        path.unlink()
    else:
        np.save(path, np.zeros(3, dtype=np.int64))
    opened = retriever.Index(repo / ".retriever")
    with pytest.raises(retriever.RetrieverError, match="rebuild|Rebuild"):
        opened.search("retry", k=2, mode="dense")
    mended = _fast(repo)
    assert mended.last_build.rebuilt and mended.search("retry", k=2, mode="dense")


def test_document_corpora_keep_the_models_own_weights(tmp_path):
    docs = [retriever.Document(id=f"d{i}", text=f"def parse_{i}(self):\n    return self.read()")
            for i in range(5)]
    index = retriever.index_documents(docs, index_dir=tmp_path / "idx", tier="fast",
                                      cache=False)
    entry = index.manifest["encoders"][0]
    assert "corpus_sif" not in entry["config"] and "corpus" not in entry
