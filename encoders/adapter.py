"""LoRA adapters over a packaged sentence-transformers model: shipped small, merged once.

A full MiniLM is 87 MiB, too large for the repository; its LoRA adapter is a few MB. A shipped
adapter is a folder (``encoders/weights/NAME/``) holding::

    adapter.json               {"format": "dense-retriever-adapter", "version": 1,
                                "base": "all-MiniLM-L6-v2", "base_fingerprint": ...}
    adapter_config.json        peft's LoraConfig as training saved it (r, lora_alpha, ...)
    adapter_model.safetensors  peft's lora_A / lora_B matrices
    MODEL.md                   recipe, data, command, metrics
    training.json              (optional) the training manifest: Matryoshka dims and layers

The base may be a packaged model or another shipped adapter (merged first), so an adapter can
stack on the default model. Over a packaged model, ``base_fingerprint`` is the content digest
of its files. Over another adapter, ``base_adapter`` is the digest of that adapter's inputs
(:func:`adapter_digest`) instead: a merged folder's weights are ``W + B @ A`` in float32, and
the BLAS kernel numpy picks for the CPU (AVX2 or AVX-512) rounds that product differently,
so the merged files' digest of the same adapter differs between machines.

:func:`merged_folder` adds ``lora_alpha / r * B @ A`` to each adapted weight of the base's
float32 weights (numpy and safetensors: neither peft nor torch), writes a complete
sentence-transformers folder into a cache, written in a temporary sibling and published with
``os.replace``, and returns it; a later call finds it there. The folder is then an ordinary
model for :class:`encoders.sentence.SentenceTransformerEncoder` (its fingerprint is that of the
merged files). The base must be the model the adapter was trained on: its fingerprint is
checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from retriever.errors import InputError

__all__ = ["ADAPTER_MANIFEST", "WEIGHTS", "is_adapter", "merged_folder", "shipped_adapters"]

ADAPTER_MANIFEST = "adapter.json"
FORMAT = "dense-retriever-adapter"
WEIGHTS = Path(__file__).resolve().parent / "weights"
# An adapter's own training manifest (optional): copied into the merged folder, where the
# encoder reads the Matryoshka dims and layers it was trained for (encoders.cuts).
TRAINING = "training.json"
_PEFT_PREFIX = "base_model.model."
# The merge arithmetic's version, in each merge record: a change to merge_weights (a LoRA
# variant it learns to read, say) must give merged folders another identity.
MERGE_VERSION = 1


def is_adapter(folder: Path) -> bool:
    """Whether ``folder`` holds an adapter in the layout above."""
    return (Path(folder) / ADAPTER_MANIFEST).is_file()


def shipped_adapters() -> dict[str, Path]:
    """Adapters that ship in ``encoders/weights``, by folder name."""
    if not WEIGHTS.is_dir():
        return {}
    return {p.name: p for p in sorted(WEIGHTS.iterdir()) if is_adapter(p)}


def _default_cache() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "dense-retriever" / "models"


_ADAPTER_DIGESTS: dict[tuple, str] = {}


def adapter_digest(folder: Path) -> str:
    """The digest of an adapter's inputs (manifest, LoRA config and weights, training record):
    the key its merged folder is cached under, and what an adapter stacked on it records as
    ``base_adapter``. Memoised per process by the files' stat (every encoder construction
    asks)."""
    from encoders.folder import file_stats

    names = (ADAPTER_MANIFEST, "adapter_config.json", "adapter_model.safetensors", TRAINING)
    key = file_stats(folder, [folder / name for name in names if (folder / name).is_file()])
    found = _ADAPTER_DIGESTS.get(key)
    if found is None:
        found = _ADAPTER_DIGESTS[key] = _adapter_digest(folder)
    return found


def _adapter_digest(folder: Path) -> str:
    hasher = hashlib.blake2b(digest_size=8)
    for name in (ADAPTER_MANIFEST, "adapter_config.json", "adapter_model.safetensors"):
        hasher.update(name.encode())
        hasher.update((folder / name).read_bytes())
    if (folder / TRAINING).is_file():  # absent from older adapters: their digests stay
        hasher.update(TRAINING.encode())
        hasher.update((folder / TRAINING).read_bytes())
    return hasher.hexdigest()


def _read_adapter(folder: Path) -> tuple[dict, dict]:
    """The adapter's manifest and LoRA config, checked (its weights are read only to merge)."""
    missing = [name for name in (ADAPTER_MANIFEST, "adapter_config.json",
                                 "adapter_model.safetensors") if not (folder / name).is_file()]
    if missing:
        raise InputError(f"{folder} is not a LoRA adapter folder: it lacks {', '.join(missing)}. "
                         "Pass a folder written by `python benchmarks/gpu_code_encoder.py` or a "
                         "shipped adapter's name.")
    manifest = json.loads((folder / ADAPTER_MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT or manifest.get("version") != 1:
        raise InputError(f"{folder / ADAPTER_MANIFEST}: not a {FORMAT} version 1 manifest.")
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("use_dora") or config.get("fan_in_fan_out"):
        raise InputError(f"{folder}: DoRA and fan-in-fan-out adapters are not supported; "
                         "train a plain LoRA adapter.")
    return manifest, config


def merge_weights(base: dict[str, np.ndarray], config: dict,
                  adapter: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The base's weights with each adapted one plus ``lora_alpha / r * B @ A`` (float32).

    Raises:
        InputError: an adapter matrix names a weight the base lacks, or shapes disagree.
    """
    scale = float(config["lora_alpha"]) / float(config["r"])
    merged = dict(base)
    pairs = 0
    for key, a in adapter.items():
        if ".lora_A." not in key:
            continue
        stem = key.removeprefix(_PEFT_PREFIX).split(".lora_A.")[0]
        b = adapter.get(key.replace(".lora_A.", ".lora_B."))
        target = f"{stem}.weight"
        if b is None or target not in base:
            raise InputError(f"The adapter's {key!r} has no matching base weight {target!r} "
                             "(or no lora_B): it was trained on another base model.")
        delta = b.astype(np.float32) @ a.astype(np.float32) * scale
        if delta.shape != base[target].shape:
            raise InputError(f"The adapter's {stem!r} is {delta.shape}, the base weight is "
                             f"{base[target].shape}: it was trained on another base model.")
        merged[target] = (base[target].astype(np.float32) + delta).astype(np.float32)
        pairs += 1
    if not pairs:
        raise InputError("The adapter holds no lora_A/lora_B matrices.")
    return merged


def _write_atomic(path: Path, text: str) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(name, 0o644)
        os.replace(name, path)
    finally:
        Path(name).unlink(missing_ok=True)


def merged_folder(adapter: str | Path, *, cache_dir: str | Path | None = None) -> Path:
    """The merged sentence-transformers folder of an adapter, built on first use.

    Args:
        adapter: a shipped adapter's name (:func:`shipped_adapters`) or an adapter folder.
        cache_dir: where merged folders live (default ``$XDG_CACHE_HOME/dense-retriever/models``).

    Raises:
        InputError: not an adapter, or trained on another base than the one installed.
        MissingDependencyError: the base model's package is not installed.
    """
    from safetensors.numpy import load_file, save_file

    from encoders.folder import MERGE_INPUTS, content_digests, merge_identity
    from encoders.sentence import resolve_model

    shipped = shipped_adapters()
    folder = shipped[str(adapter)] if str(adapter) in shipped else Path(adapter).expanduser()
    manifest, config = _read_adapter(folder)
    base = resolve_model(manifest["base"])
    stacked = manifest.get("base_adapter")
    if stacked:
        found = shipped.get(manifest["base"])
        if found is None or adapter_digest(found) != stacked:
            raise InputError(f"The adapter {folder.name} was trained on the {manifest['base']} "
                             f"adapter whose inputs digest is {stacked}; the installed one "
                             f"{'is missing' if found is None else 'differs'}. Install the "
                             "version the adapter names in its MODEL.md.")
    expected = None if stacked else manifest.get("base_fingerprint")
    if expected and content_digests(base, [b""])[0] != expected:
        raise InputError(f"The adapter {folder.name} was trained on a {manifest['base']} whose "
                         f"files digest is {expected}; the installed one differs. Install the "
                         "base model version the adapter names in its MODEL.md.")
    cache = Path(cache_dir) if cache_dir is not None else _default_cache()
    digest = adapter_digest(folder)
    target = cache / f"{folder.name}-{digest}"

    def inputs() -> str | None:
        """The merge record, or None when the base has no identity to record (a merged base
        without a record of its own)."""
        base_identity = merge_identity(base) if is_adapter(base) else \
            content_digests(base, [b""])[0]
        if base_identity is None:
            return None
        return json.dumps({"adapter": folder.name, "adapter_digest": digest,
                           "base": manifest["base"], "base_identity": base_identity,
                           "merge": MERGE_VERSION}, sort_keys=True) + "\n"

    if (target / "modules.json").is_file():
        if not (target / MERGE_INPUTS).is_file() and (record := inputs()) is not None:
            # Merged before the record existed. A cache this process cannot write keeps
            # working as before, without the record (the fingerprint alone decides then).
            with contextlib.suppress(OSError):
                _write_atomic(target / MERGE_INPUTS, record)
        return target
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache))
    work.chmod(0o755)  # mkdtemp makes it private; the published folder is an ordinary one
    try:
        for path in base.rglob("*"):
            relative = path.relative_to(base)
            if path.is_file() and "__pycache__" not in relative.parts and path.suffix != ".py" \
                    and relative.as_posix() != "model.safetensors":
                (work / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, work / relative)
        # The adapter's weights are read here only: a merged folder already cached needs none.
        weights = load_file(str(folder / "adapter_model.safetensors"))
        tensors = merge_weights(load_file(str(base / "model.safetensors")), config, weights)
        save_file(tensors, str(work / "model.safetensors"))
        shutil.copyfile(folder / ADAPTER_MANIFEST, work / ADAPTER_MANIFEST)
        if (record := inputs()) is not None:
            (work / MERGE_INPUTS).write_text(record, encoding="utf-8")
        if (folder / TRAINING).is_file():
            shutil.copyfile(folder / TRAINING, work / TRAINING)
        else:  # the base's own record (a stacked adapter's base) says nothing of this model
            (work / TRAINING).unlink(missing_ok=True)
        try:
            os.replace(work, target)
        except OSError:  # another process published it first: theirs is the same merge
            if not (target / "modules.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
