"""Re-indexing embeds only what changed; deleted files vanish from results."""

from __future__ import annotations

import retriever


def test_unchanged_tree_embeds_nothing(repo, tiny_model_dir):
    from encoders.sentence import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder(model=str(tiny_model_dir))
    first = retriever.index(repo, encoder=encoder)
    assert first.last_build.rebuilt and first.last_build.embedded == len(first) > 0
    generation = first.generation
    again = retriever.index(repo, encoder=encoder)
    assert not again.last_build.rebuilt
    assert again.generation == generation
    forced = retriever.index(repo, encoder=encoder, force=True)
    assert forced.last_build.rebuilt and forced.last_build.embedded == 0
    assert forced.last_build.reused == len(forced)


def test_edits_reembed_only_changed_chunks_and_deletions_disappear(repo, tiny_model_dir):
    from encoders.sentence import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder(model=str(tiny_model_dir))
    before = retriever.index(repo, encoder=encoder)
    total = len(before)
    slug = repo / "ruby" / "slugify.rb"
    slug.write_text(slug.read_text().replace("hyphens", "dashes"))
    (repo / "c" / "crc32.c").unlink()
    (repo / "python" / "extra.py").write_text("def zebra_stripes():\n    return 'zebra'\n")
    after = retriever.index(repo, encoder=encoder)
    report = after.last_build
    assert report.rebuilt
    # One edited chunk in slugify.rb and one new file; everything else is reused.
    assert 1 <= report.embedded <= 3
    assert report.reused >= total - 3
    paths = {hit.path for hit in after.search("checksum crc32 polynomial", k=50, mode="lexical")}
    assert "c/crc32.c" not in paths
    assert after.search("zebra stripes", k=1, mode="lexical")[0].path == "python/extra.py"
    # Vectors that were reused equal those a fresh build computes.
    fresh = retriever.index(repo, encoder=encoder, index_dir=repo.parent / "fresh")
    import numpy as np

    np.testing.assert_allclose(np.asarray(after.vectors), np.asarray(fresh.vectors), atol=1e-5)
