"""Where the benchmark scripts find their data and put their scratch files.

The repository sits beside a folder of shared benchmark data: ``<somewhere>/main`` (this
repository) and ``<somewhere>/shared``, which holds ``data/`` (the BEIR-layout corpora) and
``benchmarks/semble`` (the semble repository benchmark). Point ``DENSE_RETRIEVER_DATA`` at
another folder holding ``data/`` and ``benchmarks/`` to use that instead; every script also
takes the exact folder on its command line. Scratch output that does not belong in the project
(TREC runs, mined benchmarks, exported trees, vector caches) goes to ``<somewhere>/bench``, or
under ``DENSE_RETRIEVER_BENCH`` when that is set.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BENCH_ENV", "DATA_ENV", "data_dir", "scratch_dir", "semble_dir", "shared_dir"]

DATA_ENV = "DENSE_RETRIEVER_DATA"
BENCH_ENV = "DENSE_RETRIEVER_BENCH"
REPOSITORY = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The folder holding ``data/`` and ``benchmarks/``: ``$DENSE_RETRIEVER_DATA``, else
    ``shared`` beside the repository."""
    value = os.environ.get(DATA_ENV)
    return Path(value).expanduser() if value else REPOSITORY.parent / "shared"


def data_dir() -> Path:
    """The BEIR-layout corpora (cosqa, scifact, cranfield), one folder each."""
    return shared_dir() / "data"


def semble_dir() -> Path:
    """The semble benchmark: ``repos.json``, ``annotations/``, ``export.py``."""
    return shared_dir() / "benchmarks" / "semble"


def scratch_dir(*parts: str) -> Path:
    """A folder for output kept outside the project: under ``$DENSE_RETRIEVER_BENCH``, else
    under ``bench`` beside the repository."""
    value = os.environ.get(BENCH_ENV)
    base = Path(value).expanduser() if value else REPOSITORY.parent / "bench"
    return base.joinpath(*parts)
