"""Tiers: lexical, fast (a static encoder), dense (the transformer), full (both)."""

from __future__ import annotations

from pathlib import Path

import pytest

import encoders
import retriever

STATIC = Path(__file__).resolve().parents[1] / "data" / "static_model"


def test_fast_tier_then_full_keeps_the_chunks_and_embeds_only_the_transformer(repo,
                                                                            tiny_model_dir):
    encoders.clear_model_cache()
    before = encoders.model_loads()
    fast = retriever.index(repo, tier="fast", fast_model=str(STATIC))
    # One load: the static table. No transformer is loaded for a fast build.
    assert fast.tier == "fast" and encoders.model_loads() == before + 1
    assert [e["id"] for e in fast.manifest["encoders"]] == ["fast"]
    assert fast.search("retry backoff", k=3, mode="hybrid")
    chunks = [c.id for c in fast.chunks()]

    full = retriever.index(repo, tier="full", encoder_config={"model": str(tiny_model_dir)})
    assert full.tier == "dense"
    assert sorted(e["id"] for e in full.manifest["encoders"]) == ["fast", "main"]
    assert [c.id for c in full.chunks()] == chunks
    report = full.last_build
    assert report.reused == len(chunks)  # the fast vectors, from the fast generation
    assert report.embedded == len(chunks)  # the transformer's, once
    payload = retriever.search_payload(full, "retry", full.search("retry", k=2), mode="hybrid",
                                       k=2)
    assert payload["tier"] == "dense"
    # A refresh without a tier keeps both, and is up to date.
    again = retriever.index(repo)
    assert not again.last_build.rebuilt and again.tier == "dense"


def test_unknown_tier_and_contradictions_are_clear(repo):
    with pytest.raises(retriever.InputError, match="Unknown tier 'turbo'"):
        retriever.index(repo, tier="turbo")
    with pytest.raises(retriever.InputError, match="contradicts"):
        retriever.index(repo, tier="fast", lexical_only=True)
    with pytest.raises(retriever.MissingDependencyError):
        retriever.index(repo, tier="fast", fast_model=str(repo / "no-such-model"))
    assert not (repo / ".retriever" / "CURRENT").exists()
