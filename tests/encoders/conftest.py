"""Fixtures of the encoder tests: a tiny model with a projection head and a Matryoshka cut."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def projected_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """Tiny BERT (width 32), mean+max pooling (64), Dense to 24, Normalize, truncate_dim 20.

    Every step that changes the output width appears once, so a dimension read from the
    folder's files has to get each of them right to match the loaded model.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers import models

    torch.manual_seed(1)
    word = models.Transformer(str(tiny_model_dir), max_seq_length=64)
    pooling = models.Pooling(32, pooling_mode=("mean", "max"))
    dense = models.Dense(64, 24)
    model = SentenceTransformer(
        modules=[word, pooling, dense, models.Normalize()], device="cpu", truncate_dim=20
    )
    out = tmp_path_factory.mktemp("projected-model") / "st"
    model.save(str(out))
    return out
