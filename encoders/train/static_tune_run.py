"""Command line of :mod:`encoders.train.static_tune`: a Model2Vec folder and a pairs file in,
a tuned Model2Vec folder out.

usage:
    python -m encoders.train.static_tune_run --model code-static-minilm-v2 \\
        --pairs PAIRS.jsonl.xz --out FOLDER [--epochs 4 --lr 1e-3 --anchor 1.0 ...]

The pairs file is the mined multi-language data (one JSON object a line: ``query``, ``code``,
``source`` = ``package/path``, ``split``); the train split trains, the dev split picks the
epoch. A pair's package is its source's first folder. The tokenizer and config files are copied
from the starting folder unchanged, so the tuned table pools exactly as the original does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from encoders.train.exclusions import check_sources
from encoders.train.static_tune import TuneRecipe, package_metrics, tune_table
from retriever.errors import InputError

__all__ = ["load_pairs", "load_table", "save_table", "token_rows"]

MAX_TOKENS = 512


def load_table(folder: Path):
    """(float32 table with rows scaled by their weights, tokenizer) of a Model2Vec folder."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    tensors = load_file(str(folder / "model.safetensors"))
    table = tensors["embeddings"].astype(np.float32)
    if "weights" in tensors:
        table *= tensors["weights"].astype(np.float32)[:, None]
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return table, tokenizer


def token_rows(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids as the static encoder reads them: the character cut, the first 512 tokens,
    unknown tokens dropped."""
    unk_token = getattr(tokenizer.model, "unk_token", None)
    unk = tokenizer.token_to_id(unk_token) if isinstance(unk_token, str) else None
    median = max(1, int(np.median([len(t) for t in tokenizer.get_vocab()])))
    cut = MAX_TOKENS * median
    encodings = tokenizer.encode_batch_fast([t[:cut] for t in texts], add_special_tokens=False)
    return [[i for i in e.ids[:MAX_TOKENS] if i != unk] for e in encodings]


def load_pairs(path: Path) -> dict[str, list[dict]]:
    """The pairs of each split; refuses data from a benchmark's code (exclusions)."""
    opener = lzma.open if path.suffix == ".xz" else open
    splits: dict[str, list[dict]] = {}
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            pair = json.loads(line)
            splits.setdefault(pair["split"], []).append(pair)
    check_sources(pair["source"] for pairs in splits.values() for pair in pairs)
    if not splits.get("train") or not splits.get("dev"):
        raise InputError(f"{path} needs pairs of both a 'train' and a 'dev' split.")
    return splits


def save_table(folder: Path, table: np.ndarray, source: Path, training: dict) -> None:
    """int8 rows with one float32 scale each (as ``distill.save_model2vec``), the source's
    tokenizer and config, and ``training.json``."""
    from safetensors.numpy import save_file

    peak = np.abs(table).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    quantized = np.clip(np.rint(table / scale[:, None]), -127, 127).astype(np.int8)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": quantized, "weights": scale}, str(folder / "model.safetensors"))
    for name in ("tokenizer.json", "config.json"):
        shutil.copyfile(source / name, folder / name)
    (folder / "training.json").write_text(json.dumps(training, indent=1) + "\n",
                                          encoding="utf-8")


def _digest(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def main(argv: list[str] | None = None) -> None:
    from encoders.static import resolve_static_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="code-static-minilm-v2")
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    defaults = TuneRecipe()
    for name, value in defaults.config().items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    recipe = TuneRecipe(**{k: getattr(args, k) for k in defaults.config()})
    source = resolve_static_model(args.model)
    started = time.monotonic()
    table, tokenizer = load_table(source)
    splits = load_pairs(args.pairs)
    prepared = {}
    for split in ("train", "dev"):
        pairs = splits[split]
        queries = token_rows(tokenizer, [p["query"] for p in pairs])
        codes = token_rows(tokenizer, [p["code"] for p in pairs])
        keep = [i for i in range(len(pairs)) if queries[i] and codes[i]]
        prepared[split] = ([queries[i] for i in keep], [codes[i] for i in keep],
                           [pairs[i]["source"].split("/")[0] for i in keep])
    dev_q, dev_c, dev_p = prepared["dev"]

    def log(row: dict) -> None:
        sys.stderr.write(json.dumps({**row, "s": round(time.monotonic() - started)}) + "\n")

    train_q, train_c, train_p = prepared["train"]
    best, history = tune_table(table, queries=train_q, codes=train_c, packages=train_p,
                               dev=lambda t: package_metrics(t, dev_q, dev_c, dev_p,
                                                              recipe.corpus_sif),
                               recipe=recipe, log=log)
    training = {
        "recipe": "encoders.train.static_tune (one package a batch, self-distillation anchor)",
        "settings": recipe.config(), "start_model": args.model,
        "start_table_blake2b": _digest(source / "model.safetensors"),
        "pairs_blake2b": _digest(args.pairs),
        "pairs": {"train": len(train_q), "dev": len(dev_q),
                  "train_packages": len(set(train_p)), "dev_packages": len(set(dev_p))},
        "history": history, "seconds": round(time.monotonic() - started, 1),
        "command": "python -m encoders.train.static_tune_run " + " ".join(
            a if not Path(a).is_absolute() else Path(a).name for a in sys.argv[1:]),
    }
    save_table(args.out, best, source, training)


if __name__ == "__main__":
    main()
