"""Train the code-tuned encoder and its static model on the GPU machine, in two warm calls.

What may travel is 64 MiB a call, the working tree included (about 18 MiB), and what comes back
is 64 MiB in at most 8 files; so the work is cut in two calls made back to back, while the
machine stays warm (files under ``--work`` persist between them):

    # here: the base model (word embeddings int8, everything else float16) and the training
    # pairs (codes once, negatives as row numbers) into CARRY1; then `xz -1` the base's
    # model.safetensors (train() reads model.safetensors.xz too) so that CARRY1 and the
    # working tree stay under 64 MiB
    python benchmarks/gpu_code_encoder.py pack --data DATA --texts .bench-carry/texts.parquet \
        --carry1 .carry-e1
    # CARRY2: the mined chunks.jsonl.xz, the static vocabulary (python -m encoders.train
    # vocab) as vocab/, and the benchmark texts (benchmarks/gpu_vectors.py export)
    # GPU call 1: LoRA contrastive training (in-batch + one BM25-mined hard negative)
    python benchmarks/gpu_code_encoder.py train --carry .carry-e1 --work SCRATCH --out $OUT \
        --epochs 2 --lr 2e-4 --rank 32 --batch-size 256 --mini-batch-size 256
    # GPU call 2, right after (the machine stays warm 30 s): benchmark texts embedded with the
    # trained model (int8 rows back), and the static recipe distilled from the trained model
    # (and from the base, time allowing)
    python benchmarks/gpu_code_encoder.py finish --carry .carry-e2 --work SCRATCH --out $OUT \
        --teacher trained --teacher base --static-budget-s 120 [--strength 0.5]
    # here: vectors into a vector cache under the merged model's fingerprint
    python benchmarks/gpu_code_encoder.py unpack --back BACK --texts .bench-carry/texts.parquet \\
        --model MERGED_FOLDER --cache CACHE

When the working tree has grown (30.7 MiB tracked at code-minilm-v2's run), the base (29.8
MiB compressed) and the pairs no longer fit one call: move CARRY1/base into a folder of its own,
carry it alone in a first call that copies it to the machine's /tmp (`cp -r CARRY0/base
/tmp/keep/`), and start the train call with `cp -r /tmp/keep/base CARRY1/`; the three calls
follow each other inside the warm window.

The int8 rows (one float scale a row) of unit vectors differ from the float32 ones by about
1e-4 in cosine; an int8 word-embedding table changes the base model's outputs by less (the
smallest cosine over 200 CoSQA texts was 0.99997, measured here).
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from gpu_code_carry import (  # noqa: E402  (the carry folders: packed here, read there)
    _read_xz_json,
    _unpack_base,
    pack,
    read_pairs,
)

# Re-exported: gpu_static.py and retention_local.py import it from here.
from gpu_code_carry import _write_xz_json as _write_xz_json  # noqa: E402

_START = time.monotonic()


def _say(*parts) -> None:
    print(f"[{time.monotonic() - _START:6.1f}s]", *parts, flush=True)


def train(carry: Path, work: Path, out: Path, *, epochs: int, lr: float, rank: int,
          batch_size: int, mini_batch_size: int, max_steps: int | None = None,
          limit: int = 0) -> dict:
    """GPU call 1: LoRA contrastive training; the adapter and the run's record come back."""
    import torch

    from encoders.train.common import TrainSettings
    from encoders.train.contrastive import train_contrastive

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    work.mkdir(parents=True, exist_ok=True)
    _unpack_base(carry, work / "base")
    codes, rows, train_rows, dev_rows = read_pairs(carry / "pairs.json.xz", limit)
    # The static recipe reads the same pairs in its own layout in call 2.
    static = work / "static-data"
    static.mkdir(parents=True, exist_ok=True)
    with lzma.open(static / "pairs.jsonl.xz", "wt", encoding="utf-8", preset=1) as handle:
        for i, (q, source, split, _) in enumerate(rows):
            handle.write(json.dumps({"query": q, "code": codes[i], "source": source,
                                     "split": split}, ensure_ascii=False) + "\n")
    shutil.copy(carry / "manifest.json", static / "manifest.json")
    _say("pairs", len(train_rows), "dev", len(dev_rows))
    settings = TrainSettings(epochs=epochs, batch_size=batch_size,
                             mini_batch_size=mini_batch_size, lr=lr, warmup=0.1, seed=0,
                             max_length=256, checkpoint_every=100000, lora=True, lora_rank=rank,
                             max_steps=max_steps)
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        if time.monotonic() - last[0] > 15 or done == total:
            last[0] = time.monotonic()
            _say(stage, done, total)

    command = (f"python benchmarks/gpu_code_encoder.py train --epochs {epochs} --lr {lr} "
               f"--rank {rank} --batch-size {batch_size} --mini-batch-size {mini_batch_size}")
    result = train_contrastive(train_rows, dev=dev_rows or None, out=work / "trained",
                               base=str(work / "base"), settings=settings, hard_negatives=1,
                               progress=progress, command=command)
    _say("trained", result.steps, json.dumps(result.manifest["dev_metrics"]))
    with tarfile.open(out / "trained.tar", "w") as tar:
        for path in (work / "trained").rglob("*"):
            if path.is_file() and path.name != "model.safetensors":
                tar.add(path, arcname=str(path.relative_to(work / "trained")))
    return {"steps": result.steps, "dev": result.manifest["dev_metrics"]}


def at_strength(trained: Path, base: Path, target: Path, strength: float) -> Path:
    """The base plus ``strength`` times the trained LoRA change (``trained/lora``), merged as
    ``encoders/adapter.py`` merges a shipped adapter (``lora_alpha`` scaled by ``strength``),
    as a sentence-transformers folder; 1.0 gives the trained model itself."""
    from safetensors.numpy import load_file, save_file

    from encoders.adapter import merge_weights

    if strength == 1.0:
        return trained
    config = json.loads((trained / "lora" / "adapter_config.json").read_text(encoding="utf-8"))
    config = {**config, "lora_alpha": config["lora_alpha"] * strength}
    shutil.copytree(trained, target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("model.safetensors", "lora", "checkpoints"))
    merged = merge_weights(load_file(str(base / "model.safetensors")), config,
                           load_file(str(trained / "lora" / "adapter_model.safetensors")))
    save_file(merged, str(target / "model.safetensors"))
    return target


def embed_texts(carry: Path, work: Path, out: Path, *, strength: float,
                limit: int = 0) -> dict:
    """The benchmark texts (``carry/texts.parquet``) embedded with the trained adapter at
    ``strength``; int8 rows (two files) and their scales to ``out``.

    The trained model is ``work/trained`` (left by ``train`` on a warm machine) or
    ``carry/trained`` (the folder ``trained.tar`` holds, carried to a fresh one); the base is
    ``work/base``, unpacked from ``carry/base`` when absent. So another strength costs one
    call: ``embed --strength 0.4``.
    """
    from gpu_vectors import embed, load_shards

    texts = carry / "texts.parquet"
    work.mkdir(parents=True, exist_ok=True)
    if limit:  # a smoke test's slice
        import pyarrow.parquet as pq

        texts = work / "texts-slice.parquet"
        pq.write_table(pq.read_table(carry / "texts.parquet").slice(0, limit), texts)
    if not (work / "base" / "model.safetensors").is_file():
        _unpack_base(carry, work / "base")
    trained = work / "trained" if (work / "trained").is_dir() else carry / "trained"
    model = at_strength(trained, work / "base", work / f"strength-{strength:g}", strength)
    shutil.rmtree(work / "vectors", ignore_errors=True)
    summary = embed(texts, model, work / "vectors")
    summary["strength"] = strength
    _say("embedded", json.dumps(summary))
    _, vectors = load_shards(work / "vectors")
    scale = np.abs(vectors).max(axis=1, keepdims=True) / 127.0
    quantized = np.clip(np.rint(vectors / scale), -127, 127).astype(np.int8)
    half = len(quantized) // 2
    np.save(out / "vectors-a.npy", quantized[:half])
    np.save(out / "vectors-b.npy", quantized[half:])
    np.save(out / "scales.npy", scale.astype(np.float32))
    (out / "embed.json").write_text(json.dumps(summary))
    return summary


def finish(carry: Path, work: Path, out: Path, *, static_budget_s: float,
           teachers: list[str], device: str = "cuda", limit: int = 0,
           strength: float = 1.0) -> dict:
    """GPU call 2: embed the benchmark texts with the trained adapter at ``strength`` (0.5:
    half the trained change, as code-minilm-v1 ships), then distil static models from the
    teachers (``trained`` is the full-strength model)."""
    summary = embed_texts(carry, work, out, strength=strength, limit=limit)
    static = work / "static-data"
    if (carry / "chunks.jsonl.xz").is_file():  # the mined file as it is
        shutil.copy(carry / "chunks.jsonl.xz", static / "chunks.jsonl.xz")
    else:
        with lzma.open(static / "chunks.jsonl.xz", "wt", encoding="utf-8", preset=1) as handle:
            for text in _read_xz_json(carry / "chunks.json.xz"):
                handle.write(json.dumps({"text": text, "source": "chunks"}) + "\n")
    fingerprint = json.loads((static / "manifest.json").read_text())["base_fingerprint"]
    done = {}
    for teacher in teachers:
        if done and time.monotonic() - _START > static_budget_s:
            _say("skipping static from", teacher, "(time)")
            break
        folder = work / ("trained" if teacher == "trained" else "base")
        target = work / f"static-{teacher}"
        command = [sys.executable, "-m", "encoders.train", "train", "--data", str(static),
                   "--vocab", str(carry / "vocab"), "--teacher", str(folder),
                   "--teacher-name", f"all-MiniLM-L6-v2 ({teacher})",
                   "--teacher-fingerprint", fingerprint, "--out", str(target),
                   "--device", device, "--seed", "0", "--limit", str(limit),
                   "--variant", '{"name": "lr20", "epochs": 20, "lr": 0.02}']
        subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
        model = target / "lr20"
        shutil.copy(model / "model.safetensors", out / f"static-{teacher}.safetensors")
        done[teacher] = str(model)
    with tarfile.open(out / "static.tar", "w") as tar:
        for teacher, model in done.items():
            for name in ("config.json", "training.json"):
                tar.add(Path(model) / name, arcname=f"{teacher}/{name}")
            tar.add(Path(model).parent / "log.jsonl", arcname=f"{teacher}/log.jsonl")
        if done:
            tar.add(Path(next(iter(done.values()))) / "tokenizer.json", arcname="tokenizer.json")
    return {"embedded": summary, "static": list(done)}


def unpack(back: Path, texts: Path, model: str, cache: Path, shards: Path) -> dict:
    """Vectors that came back -> gpu_vectors' shard layout -> the vector cache."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from gpu_vectors import import_vectors

    quantized = np.concatenate([np.load(back / "vectors-a.npy"), np.load(back / "vectors-b.npy")])
    vectors = quantized.astype(np.float32) * np.load(back / "scales.npy")
    hashes = pq.read_table(texts, columns=["hash"]).column("hash").to_pylist()
    if len(hashes) != len(vectors):
        raise SystemExit(f"{len(hashes)} texts but {len(vectors)} vectors came back")
    shards.mkdir(parents=True, exist_ok=True)
    np.save(shards / "vectors-00.npy", vectors.astype(np.float16))
    pq.write_table(pa.table({"hash": hashes}), shards / "hashes.parquet")
    return import_vectors(shards, model, cache)


def paired(a: Path, b: Path, resamples: int = 10000) -> dict:
    """B minus A over the semble repositories of two ``score_dense.py`` results (all 60 and
    each half): the mean difference, its 95% bootstrap interval and the paired randomization
    p (``eval.metrics``), as the RESULTS section reports model differences."""
    from ranking_eval import split

    from eval.metrics import bootstrap_ci, paired_test

    first = json.loads(a.read_text(encoding="utf-8"))["per_repo"]
    second = json.loads(b.read_text(encoding="utf-8"))["per_repo"]
    names = sorted(set(first) & set(second))
    tune, check = split(names)
    result = {}
    for part, keep in (("all", names), ("tune", tune), ("check", check)):
        diffs = [second[n] - first[n] for n in keep]
        low, high = bootstrap_ci(diffs, resamples=resamples)
        result[part] = {"repos": len(keep), "a": round(float(np.mean([first[n] for n in keep])), 4),
                        "b": round(float(np.mean([second[n] for n in keep])), 4),
                        "diff": round(float(np.mean(diffs)), 4),
                        "ci95": [round(low, 4), round(high, 4)],
                        "p": round(paired_test({n: first[n] for n in keep},
                                               {n: second[n] for n in keep},
                                               resamples=resamples), 4)}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--vocab", type=Path, default=None)
    p.add_argument("--texts", type=Path, required=True)
    p.add_argument("--carry1", type=Path, default=None)
    p.add_argument("--carry2", type=Path, default=None)
    p.add_argument("--max-chunks", type=int, default=60000)
    p = sub.add_parser("train")
    p.add_argument("--carry", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--mini-batch-size", type=int, default=256)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--limit", type=int, default=0, help="use only this many rows (smoke)")
    p = sub.add_parser("finish")
    p.add_argument("--carry", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--teacher", action="append", default=[], choices=["trained", "base"])
    p.add_argument("--static-budget-s", type=float, default=200.0,
                   help="start no further static run after this many seconds")
    p.add_argument("--device", default="cuda")
    p.add_argument("--limit", type=int, default=0, help="use only this many texts (smoke)")
    p.add_argument("--strength", type=float, default=1.0,
                   help="embed with the base plus this share of the trained change (0.5: half)")
    p = sub.add_parser("embed")
    p.add_argument("--carry", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--strength", type=float, default=1.0)
    p.add_argument("--limit", type=int, default=0, help="use only this many texts (smoke)")
    p = sub.add_parser("unpack")
    p.add_argument("--back", type=Path, required=True)
    p.add_argument("--texts", type=Path, required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--shards", type=Path, required=True)
    p = sub.add_parser("paired", help="B minus A over two score_dense.py results")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    if args.command == "paired":
        result = paired(args.a, args.b)
    elif args.command == "pack":
        result = pack(args.data, args.vocab, args.texts, args.carry1, args.carry2,
                      max_chunks=args.max_chunks)
    elif args.command == "train":
        result = train(args.carry, args.work, args.out, epochs=args.epochs, lr=args.lr,
                       rank=args.rank, batch_size=args.batch_size,
                       mini_batch_size=args.mini_batch_size, max_steps=args.max_steps,
                       limit=args.limit)
    elif args.command == "finish":
        result = finish(args.carry, args.work, args.out, static_budget_s=args.static_budget_s,
                        teachers=args.teacher or ["trained"], device=args.device,
                        limit=args.limit, strength=args.strength)
    elif args.command == "embed":
        result = embed_texts(args.carry, args.work, args.out, strength=args.strength,
                             limit=args.limit)
    else:
        result = unpack(args.back, args.texts, args.model, args.cache, args.shards)
    _say(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
