"""The carry folders of ``gpu_code_encoder.py`` (its docstring says what travels in which
call): packed here (the base model with int8 word embeddings and float16 for the rest, the
training pairs with codes stored once), read back on the GPU machine (the base unpacked to
float32, the pairs as train and dev rows), and the xz-compressed JSON both sides use."""

from __future__ import annotations

import json
import lzma
import shutil
from pathlib import Path

import numpy as np

EMBEDDINGS = "embeddings.word_embeddings.weight"


def _read_xz_json(path: Path):
    with lzma.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def _write_xz_json(path: Path, value) -> None:
    with lzma.open(path, "wt", encoding="utf-8", preset=9) as handle:
        json.dump(value, handle, ensure_ascii=False, separators=(",", ":"))


def pack(data: Path, vocab: Path | None, texts: Path, carry1: Path | None, carry2: Path | None,
         base: str = "all-MiniLM-L6-v2", max_chunks: int = 60000) -> dict:
    """Write the two carry folders (see the module docstring); None skips one."""

    from encoders.sentence import resolve_model
    from encoders.train.data import read_jsonl

    source = resolve_model(base)
    summary = {}
    if carry1 is not None:
        summary.update(_pack_training(data, source, carry1))
    if carry2 is not None:
        shutil.rmtree(carry2, ignore_errors=True)
        carry2.mkdir(parents=True)
        chunks = [row["text"] for row in read_jsonl(data / "chunks.jsonl.xz")]
        summary["chunks_mined"] = len(chunks)
        if len(chunks) > max_chunks:  # a seeded sample, so every source keeps its share
            import random

            keep = sorted(random.Random(0).sample(range(len(chunks)), max_chunks))
            chunks = [chunks[i] for i in keep]
        _write_xz_json(carry2 / "chunks.json.xz", chunks)
        shutil.copytree(vocab, carry2 / "vocab")
        shutil.copy(texts, carry2 / "texts.parquet")
        summary["chunks"] = len(chunks)
    for name, folder in (("carry1_bytes", carry1), ("carry2_bytes", carry2)):
        if folder is not None:
            summary[name] = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return summary


def _pack_training(data: Path, source: Path, carry1: Path) -> dict:
    from safetensors.numpy import load_file, save_file

    from encoders.folder import content_digests
    from encoders.train.data import read_jsonl

    model_out = carry1 / "base"
    shutil.rmtree(carry1, ignore_errors=True)
    model_out.mkdir(parents=True)
    tensors = load_file(str(source / "model.safetensors"))
    packed = {}
    for name, value in tensors.items():
        if name.endswith(EMBEDDINGS):
            scale = np.abs(value).max(axis=1, keepdims=True) / 127.0
            packed[name + "@int8"] = np.clip(np.rint(value / scale), -127, 127).astype(np.int8)
            packed[name + "@scale"] = scale.astype(np.float32)
        else:
            packed[name] = value.astype(np.float16) if value.dtype == np.float32 else value
    save_file(packed, str(model_out / "model.safetensors"))
    for path in source.rglob("*"):
        if path.is_file() and path.name != "model.safetensors" and "__pycache__" not in path.parts \
                and path.suffix != ".py":
            target = model_out / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    rows = list(read_jsonl(data / "pairs.jsonl.xz"))
    codes = [row["code"] for row in rows]
    where = {code: i for i, code in enumerate(codes)}
    compact = [[row["query"], row["source"], row["split"],
                [where[n] for n in row.get("negatives", []) if n in where][:1]] for row in rows]
    _write_xz_json(carry1 / "pairs.json.xz", {"codes": codes, "rows": compact})
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    (carry1 / "manifest.json").write_text(json.dumps(
        {"sources": manifest["sources"], "pairs": manifest["pairs"],
         "data_hash": manifest["data_hash"],
         "base_fingerprint": content_digests(source, [b""])[0]}), encoding="utf-8")
    return {"pairs": len(rows)}


def _unpack_base(carry: Path, target: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(carry / "base", target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("model.safetensors*"))
    packed = carry / "base" / "model.safetensors"
    if not packed.exists():  # carried xz-compressed (`xz -1`) to fit the transfer
        with lzma.open(packed.with_name("model.safetensors.xz")) as source, \
                open(target / "packed.safetensors", "wb") as sink:
            shutil.copyfileobj(source, sink)
        packed = target / "packed.safetensors"
    tensors = load_file(str(packed))
    full = {}
    for name, value in tensors.items():
        if name.endswith("@int8"):
            stem = name[: -len("@int8")]
            full[stem] = value.float() * tensors[stem + "@scale"].float()
        elif not name.endswith("@scale"):
            full[name] = value.float() if value.is_floating_point() else value
    save_file({k: v.contiguous() for k, v in full.items()}, str(target / "model.safetensors"))
    (target / "packed.safetensors").unlink(missing_ok=True)
    del torch


def read_pairs(path: Path, limit: int = 0) -> tuple[list, list, list, list]:
    """The packed pairs as ``(codes, rows, train, dev)``: train rows ``(query, code,
    negatives)``, dev rows ``(query, code)``; ``limit`` keeps every k-th row (a smoke test)."""
    packed = _read_xz_json(path)
    codes, rows = packed["codes"], packed["rows"]
    if limit:
        rows = rows[:: max(1, len(rows) // limit)][:limit]
    train = [(q, codes[i], tuple(codes[n] for n in negs))
             for i, (q, _, split, negs) in enumerate(rows) if split == "train"]
    dev = [(q, codes[i]) for i, (q, _, split, _) in enumerate(rows) if split == "dev"]
    return codes, rows, train, dev
