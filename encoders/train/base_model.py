"""The base model of a training run, and sentence-transformers' names that moved between
releases (losses, modules, the output width, tokenising a column)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence

import torch

from encoders.folder import content_digests
from encoders.sentence import PACKAGED_MODELS, resolve_model
from encoders.train.settings import TrainSettings
from retriever.errors import InputError, MissingDependencyError

__all__ = ["load_base", "st_losses", "st_modules", "output_width", "features"]


def load_base(base: str, settings: TrainSettings):
    """The base model, float32 on its device, LoRA-wrapped if asked; and its identity."""
    from sentence_transformers import SentenceTransformer

    _seed(settings.seed)  # the modules a recipe adds (a decoder, a head) start seeded too
    path = resolve_model(base)  # MissingDependencyError names the packaged models
    if not (path / "modules.json").is_file():
        raise InputError(f"The base model {base!r} is not a sentence-transformers folder (no "
                         "modules.json). Pass such a folder or a packaged model name.")
    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    with _no_hf_bars():
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
    # Weights stored as fp16 (to fit a transfer) overflow in training: the loss goes to NaN.
    model.float()
    model.max_seq_length = min(settings.max_length, model.max_seq_length or settings.max_length)
    if settings.lora:
        _wrap_lora(model, settings.lora_rank)
    name = base if base in PACKAGED_MODELS else path.name  # no path of this machine
    return model, {"model": name, "fingerprint": content_digests(path, [b""])[0]}


@contextlib.contextmanager
def _no_hf_bars() -> Iterator[None]:
    """transformers draws bars on stderr while loading and saving; a library must not print."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _wrap_lora(model, rank: int) -> None:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise MissingDependencyError(
            "LoRA training needs peft: pip install 'dense-retriever[train]'.") from exc
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05,
                        target_modules="all-linear")
    _set_backbone(model[0], get_peft_model(model[0].auto_model, config))


def _set_backbone(transformer, backbone) -> None:
    # sentence-transformers 6 keeps the transformers model in `model` (`auto_model` is a
    # read-only alias); earlier releases keep it in `auto_model` itself.
    alias = getattr(type(transformer), "auto_model", None)
    setattr(transformer, "model" if isinstance(alias, property) else "auto_model", backbone)


def st_losses():
    """sentence-transformers' losses module (6.x moved it; the old path warns)."""
    try:
        from sentence_transformers.sentence_transformer import losses
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers import losses
    return losses


def st_modules():
    """sentence-transformers' modules (Dense, Pooling...), wherever this release keeps them."""
    try:
        from sentence_transformers.sentence_transformer import modules
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers import models as modules
    return modules


def output_width(model) -> int:
    """The model's output dimension (sentence-transformers 6 renamed the getter)."""
    getter = getattr(model, "get_embedding_dimension", None)
    return int(getter() if getter else model.get_sentence_embedding_dimension())


def features(model, texts: Sequence[str]) -> dict:
    """Tokenised ``texts`` on the model's device, as a loss takes one column."""
    prepare = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers < 6
    batch = prepare(list(texts))
    return {k: v.to(model.device) if hasattr(v, "to") else v for k, v in batch.items()}


def _seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # every device's generator
