"""The reranker's artifact read back: its manifest checked, the base rebuilt from its own folder
with the LoRA deltas merged in place, and ``(query, text)`` pairs scored
(see :mod:`encoders.train.reranker` for the folder's layout)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from encoders.train.reranker_lora import _torch
from retriever.errors import InputError

__all__ = ["ADAPTER", "MANIFEST", "FORMAT", "VERSION", "quiet_transformers", "read_manifest",
           "load_model", "score_pairs"]


ADAPTER = "adapter.safetensors"
MANIFEST = "reranker.json"
FORMAT = "dense-retriever-reranker"
VERSION = 1


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """A library must not print: transformers warns about a newly made head and draws a bar
    while loading weights. Both are off for the block, then the caller's settings return."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _base_model(path: Path):
    """(BertForSequenceClassification with one label, tokenizer) from a BERT folder."""
    from transformers import AutoConfig, AutoTokenizer, BertForSequenceClassification

    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"The reranker's base {path} has no readable config.json ({exc}). "
                         "Pass a BERT sentence-transformers folder.") from exc
    if config.model_type != "bert":
        raise InputError(f"The reranker's base {path} is a {config.model_type!r} model; this "
                         "reranker is a BERT cross-encoder (all-MiniLM-L6-v2 and the like).")
    config.num_labels = 1
    with quiet_transformers():
        model = BertForSequenceClassification.from_pretrained(
            str(path), config=config, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return model.float(), tokenizer


def _resolve_base(base: str) -> tuple[Path, dict]:
    from encoders.folder import content_digests

    path = Path(base).expanduser()
    if path.is_dir():
        path, name = path.resolve(), path.name  # the name only: no path of this machine
    else:
        from encoders.sentence import resolve_model

        path, name = resolve_model(base), base
    return path, {"model": name, "fingerprint": content_digests(path, [b""])[0]}


def read_manifest(folder: Path) -> dict:
    """``reranker.json`` of an artifact folder, checked; InputError names what is wrong."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{folder / MANIFEST} is unreadable ({exc}). Retrain with `retriever "
                         "train reranker`, or restore the folder.") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{folder / MANIFEST} is not a {FORMAT} manifest.")
    if manifest.get("version") != VERSION:
        raise InputError(f"{folder} holds reranker format version {manifest.get('version')!r}; "
                         f"this release reads version {VERSION}. Retrain it.")
    return manifest


def load_model(folder: Path, *, base: str | None = None, device: str = "cpu"):
    """The merged cross-encoder of an artifact ``folder``: ``(model, tokenizer, manifest)``.

    Args:
        base: the base model (a packaged name or a folder); None: the one the manifest names.
            Its fingerprint must be the one the adapter was trained on.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    torch = _torch()
    manifest = read_manifest(folder)
    path, identity = _resolve_base(base or manifest["base"]["model"])
    if identity["fingerprint"] != manifest["base"].get("fingerprint"):
        raise InputError(
            f"The reranker {folder.name} was trained on a base with fingerprint "
            f"{manifest['base'].get('fingerprint')}, but {identity['model']} has "
            f"{identity['fingerprint']}. Pass base= the model it was trained on.")
    try:
        tensors = load_file(str(folder / ADAPTER))
    except (OSError, SafetensorError) as exc:
        raise InputError(f"{folder / ADAPTER} is missing or corrupt ({exc}). Retrain with "
                         "`retriever train reranker`, or restore the folder.") from exc
    model, tokenizer = _base_model(path)
    scale = float(manifest["lora"]["alpha"]) / int(manifest["lora"]["rank"])
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key, value in tensors.items():
            kind, _, name = key.partition(".")
            if kind == "head" and name in params and params[name].shape == value.shape:
                params[name].copy_(value)
            elif kind == "lora" and name.endswith(".A"):
                layer = modules.get(name[:-2])
                up = tensors.get(f"lora.{name[:-2]}.B")
                if layer is None or up is None or layer.weight.shape != (len(up), value.shape[1]):
                    raise InputError(f"{folder / ADAPTER}: {key} does not fit the base model. "
                                     "Pass base= the model it was trained on.")
                layer.weight += scale * (up.float() @ value.float())
            elif kind not in ("lora", "head") or (kind == "head" and name not in params):
                raise InputError(f"{folder / ADAPTER}: unexpected tensor {key}.")
    model.eval().to(device)
    return model, tokenizer, manifest


def score_pairs(model, tokenizer, query: str, texts: Sequence[str], *, max_length: int,
                batch_size: int = 16) -> np.ndarray:
    """Logits of ``(query, text)`` for each text: ``(len(texts),)`` float32."""
    torch = _torch()
    out = np.empty(len(texts), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            part = list(texts[start:start + batch_size])
            batch = tokenizer([query] * len(part), part, truncation="longest_first",
                              max_length=max_length, padding=True, return_tensors="pt")
            batch = {k: v.to(model.device) for k, v in batch.items()}
            out[start:start + len(part)] = model(**batch).logits[:, 0].float().cpu().numpy()
    return out
