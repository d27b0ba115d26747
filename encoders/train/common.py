"""What the training recipes share: settings, data checks, the loop, checkpoints, the manifest.

A recipe (``contrastive``, ``matryoshka``, ``hashing``, ``mae``) checks its data, loads the base
model, composes its loss and hands both to :func:`fit`, which runs the steps and writes::

    <out>/
      modules.json, config.json, ...   the sentence-transformers folder (``--model OUT``)
      training.json                    recipe, seed, data hash, base fingerprint, command,
                                       settings, loss, dev metrics: written last, so its
                                       presence means the run finished
      README.md                        the same as a short model card
      lora/                            the LoRA adapter alone (``lora=True`` runs only)
      checkpoints/                     while the run is unfinished: run.json (what must match
                                       to resume) and step-<n>/ (trainable weights, optimizer,
                                       random states); removed when the run finishes

Checkpoints hold only what trains, load with safetensors and ``torch.load(weights_only=True)``,
and restore the random states, so a killed run resumed from its last checkpoint takes the
same steps as one that was never stopped. Library code: progress goes to a callback.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from encoders.sentence import TRAINING_MANIFEST

# The run's types live in settings, the base model in base_model, the loop in fit_loop;
# their names stay importable from here, as before.
from encoders.train.base_model import (  # noqa: F401
    features,
    load_base,
    output_width,
    st_losses,
    st_modules,
)
from encoders.train.fit_loop import fit  # noqa: F401
from encoders.train.settings import (  # noqa: F401
    CHECKPOINTS,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    Job,
    Progress,
    TrainResult,
    TrainSettings,
)
from retriever.errors import InputError

__all__ = [
    "CHECKPOINTS", "MANIFEST_FORMAT", "Job", "Progress", "TrainResult", "TrainSettings",
    "features", "fit", "load_base", "output_width", "prepare_out", "ranking_metrics",
    "st_losses", "st_modules",
]


def prepare_out(out: Path, resume: bool) -> Path:
    """Check ``out`` before any model loads: a new or empty folder, or an unfinished run when
    resuming."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; pass a folder for the trained model.")
    if (out / TRAINING_MANIFEST).exists():
        raise InputError(f"{out} already holds a finished training run ({TRAINING_MANIFEST}). "
                         "Choose another output folder, or delete this one.")
    unfinished = (out / CHECKPOINTS / "run.json").exists()
    if out.exists() and any(out.iterdir()):
        if unfinished and not resume:
            raise InputError(f"{out} holds an unfinished run: pass --resume (resume=True) to "
                             "continue it from its last checkpoint, or choose another folder.")
        if not unfinished:
            raise InputError(f"{out} is not empty and holds no unfinished run to resume. "
                             "Choose a new or empty output folder.")
    return out


def ranking_metrics(queries: np.ndarray, docs: np.ndarray, relevant: np.ndarray,
                    k: int = 10) -> dict[str, float]:
    """nDCG@k, MRR@k and Recall@k with one relevant document a query.

    Args:
        queries: ``(n, d)`` float32 query vectors (or +-1 codes).
        docs: ``(m, d)`` document vectors of the same kind.
        relevant: ``(n,)`` int row of each query's relevant document.

    Ties with the relevant document count half, so codes that tie often are not flattered.
    """
    scores = queries @ docs.T
    own = scores[np.arange(len(queries)), relevant][:, None]
    rank = 1 + (scores > own).sum(1) + ((scores == own).sum(1) - 1) / 2
    hit = rank <= k
    return {
        f"ndcg@{k}": float(np.mean(np.where(hit, 1 / np.log2(rank + 1), 0.0))),
        f"mrr@{k}": float(np.mean(np.where(hit, 1 / rank, 0.0))),
        f"recall@{k}": float(np.mean(hit)),
    }
