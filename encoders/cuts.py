"""What cuts or turns a sentence-transformers model's output: Matryoshka dimensions and layers
(checked against what training recorded) and fitted linear heads (:mod:`encoders.head`).

Split from :mod:`encoders.sentence`, which applies them; none of these loads a model.
"""

from __future__ import annotations

import json
from pathlib import Path

from encoders.folder import embedding_dim
from retriever.errors import InputError

__all__ = ["TRAINING_MANIFEST", "keep_layers", "layer_count", "load_head", "trained_matryoshka"]

# Written by encoders.train beside a trained model's files; a Matryoshka run records there
# which output dimensions and layer depths it trained, and dims=/layers= are checked against it.
TRAINING_MANIFEST = "training.json"


def trained_matryoshka(path: Path) -> dict[str, list[int]]:
    """The Matryoshka dimensions and layer depths a model folder was trained for.

    Read from the folder's training manifest: ``{"dims": [...], "layers": [...]}``, either key
    absent when the run did not train that axis; empty for a folder without one (a model we did
    not train states nothing to check against).
    """
    try:
        manifest = json.loads((path / TRAINING_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    section = manifest.get("matryoshka") if isinstance(manifest, dict) else None
    if not isinstance(section, dict):
        return {}
    found = {}
    for key in ("dims", "layers"):
        values = section.get(key)
        if isinstance(values, list) and values and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
        ):
            found[key] = sorted(values, reverse=True)
    return found


def load_head(head: str, model: str, path: Path):
    """The head named ``head`` for ``model`` (folder ``path``): shipped heads of an adapter live
    in its folder under ``encoders/weights``, of a local model in that folder."""
    from encoders.adapter import shipped_adapters
    from encoders.head import read_head, resolve_head

    home = shipped_adapters().get(model, path)
    loaded = read_head(resolve_head(head, home, model))
    described = embedding_dim(path)
    if described is not None and loaded.dim != described:
        raise InputError(
            f"The head {head!r} turns {loaded.dim}-d vectors, but the model {model!r} produces "
            f"{described}-d ones; fit a head for this model with `retriever train head`."
        )
    return loaded


def layer_count(path: Path) -> int | None:
    """``num_hidden_layers`` of the folder's transformer config, None where it states none."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    count = config.get("num_hidden_layers") if isinstance(config, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def keep_layers(model, layers: int, path: Path) -> None:
    """Cut the loaded model's transformer to its first ``layers`` layers, in place.

    The stack is the one ``torch.nn.ModuleList`` as long as the config's layer count (BERT's
    ``encoder.layer``, other families name it otherwise); a model with none is refused.
    """
    import torch

    auto = getattr(model[0], "auto_model", None)
    count = getattr(getattr(auto, "config", None), "num_hidden_layers", None)
    stacks = [
        (name, module) for name, module in (auto.named_modules() if auto is not None else ())
        if isinstance(module, torch.nn.ModuleList) and len(module) == count
    ]
    if not stacks:
        raise InputError(
            f"layers= cannot cut the model at {path}: its transformer has no layer stack of "
            f"the configured {count} layers. Leave layers unset for this model."
        )
    name, stack = stacks[0]
    parent_name, _, attribute = name.rpartition(".")
    parent = auto.get_submodule(parent_name) if parent_name else auto
    setattr(parent, attribute, torch.nn.ModuleList(list(stack)[:layers]))
    auto.config.num_hidden_layers = layers
