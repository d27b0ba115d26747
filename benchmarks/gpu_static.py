"""Train static code models (variants of one recipe) on the GPU machine in one call.

What travels is 64 MiB a call with the working tree (about 31 MiB), and what comes back is at
most 8 files of 16 MiB: so the teacher travels with every 2-D weight in int8 (one scale a row;
the smallest cosine to the float32 model over 200 benchmark texts was 0.9987), texts are cut
to what the recipe reads, and at most four tables (one file each) come back with one tar of
their small files.

    # here: teacher, pairs, chunks and vocabularies into CARRY (a git-ignored folder)
    python benchmarks/gpu_static.py pack --data DATA --teacher code-minilm-v1 \\
        --vocab v61k=VOCAB61 --vocab v40k=VOCAB40 --carry .carry-st
    # GPU call: the teacher's pass once, then each variant's table
    python benchmarks/gpu_static.py train --carry .carry-st --work SCRATCH --out $OUT \\
        --budget-s 200
    # here: Model2Vec folders from what came back
    python benchmarks/gpu_static.py unpack --back BACK --carry .carry-st --out MODELS

The variants are :data:`VARIANTS` (``--only NAME`` picks some); each is a
:class:`encoders.train.distill.Recipe` plus the vocabulary it uses.
"""

from __future__ import annotations

import argparse
import json
import lzma
import random
import shutil
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from gpu_code_encoder import _read_xz_json, _unpack_base, _write_xz_json  # noqa: E402

_START = time.monotonic()
# Files of the teacher's folder the recipe never reads (the tokenizer is tokenizer.json).
_TEACHER_SKIPS = {"model.safetensors", "vocab.txt", "README.md", "data_config.json"}

# Ordered by what the run should not miss if time runs out: more and harder negatives (larger
# batches, one BM25-mined negative a pair, both directions); v2's recipe on the new teacher and
# data; more dimensions for fewer code words at the same file size; more weight on the teacher.
_CONTRASTIVE = {"batch_pairs": 4096, "batch_texts": 8192, "hard_negatives": True,
                "symmetric": True, "epochs": 30, "lr": 0.02}
VARIANTS = [
    {"name": "hn4k", "vocab": "v61k", **_CONTRASTIVE},
    {"name": "v2recipe", "vocab": "v61k", "epochs": 20, "lr": 0.02},
    {"name": "hn4k-d384", "vocab": "v40k", **_CONTRASTIVE, "dim": 384},
    {"name": "hn4k-distill3", "vocab": "v61k", **_CONTRASTIVE, "distill_weight": 3.0},
    # Second run: the first four tied with v2 on the semble tune half (0.733-0.738 against
    # 0.736); v2's own table under a tokenizer that cuts identifiers at case changes was the
    # lever left, so v2's recipe on a vocabulary built that way (vocab.CASE_SPLIT).
    {"name": "case", "vocab": "case61k", "epochs": 20, "lr": 0.02},
    {"name": "case-hn1k", "vocab": "case61k", "epochs": 20, "lr": 0.02, "hard_negatives": True},
]


def _say(*parts) -> None:
    print(f"[{time.monotonic() - _START:6.1f}s]", *parts, flush=True)


def _pack_teacher(source: Path, target: Path) -> None:
    """Every 2-D float weight as int8 rows with one float32 scale each; the rest float16."""
    from safetensors.numpy import load_file, save_file

    target.mkdir(parents=True)
    packed = {}
    for name, value in load_file(str(source / "model.safetensors")).items():
        if value.dtype == np.float32 and value.ndim == 2 and value.shape[0] > 2:
            peak = np.abs(value).max(axis=1, keepdims=True)
            scale = np.where(peak > 0, peak / 127.0, 1.0)
            packed[name + "@int8"] = np.clip(np.rint(value / scale), -127, 127).astype(np.int8)
            packed[name + "@scale"] = scale.astype(np.float32)
        else:
            packed[name] = value.astype(np.float16) if value.dtype == np.float32 else value
    save_file(packed, str(target / "model.safetensors"))
    _xz(target / "model.safetensors")  # _unpack_base reads model.safetensors.xz
    for path in source.rglob("*"):
        if path.is_file() and path.name not in _TEACHER_SKIPS and path.suffix != ".py" \
                and "__pycache__" not in path.parts:
            copy = target / path.relative_to(source)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(path.read_bytes())


def _xz(path: Path) -> None:
    """Replace ``path`` by ``path.xz``."""
    with open(path, "rb") as source, lzma.open(path.with_name(path.name + ".xz"), "wb",
                                               preset=6) as sink:
        shutil.copyfileobj(source, sink)
    path.unlink()


def pack(data: Path, teacher: str, vocabs: dict[str, Path], carry: Path, *,
         code_chars: int, chunk_chars: int, max_chunks: int) -> dict:
    """Write CARRY: base/ (the teacher), data.json.xz, vocab-NAME/ folders, manifest.json.

    At most ``max_chunks`` chunks travel, a seeded sample: the chunks are most of the bytes
    (74,414 of them are 13 MB compressed) and the teacher and the tree take the rest.
    """
    from encoders.folder import content_digests
    from encoders.sentence import resolve_model
    from encoders.train.data import data_hash, read_jsonl
    from encoders.train.exclusions import check_sources

    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    rows = list(read_jsonl(data / "pairs.jsonl.xz"))
    check_sources(list(manifest.get("sources", {})) + [row["source"] for row in rows])
    source = resolve_model(teacher)
    shutil.rmtree(carry, ignore_errors=True)
    carry.mkdir(parents=True)
    _pack_teacher(source, carry / "base")
    where = {row["code"]: i for i, row in enumerate(rows)}
    negatives = [next((where[n] for n in row.get("negatives", []) if n in where), -1)
                 for row in rows]
    chunks = [row["text"][:chunk_chars] for row in read_jsonl(data / "chunks.jsonl.xz")]
    total_chunks = len(chunks)
    if len(chunks) > max_chunks:
        keep = sorted(random.Random(0).sample(range(len(chunks)), max_chunks))
        chunks = [chunks[i] for i in keep]
    _write_xz_json(carry / "data.json.xz", {
        "codes": [row["code"][:code_chars] for row in rows],
        "rows": [[row["query"], row["split"], negative] for row, negative in
                 zip(rows, negatives, strict=True)],
        "chunks": chunks})
    for name, folder in vocabs.items():
        shutil.copytree(folder, carry / f"vocab-{name}")
        for path in (carry / f"vocab-{name}").iterdir():
            _xz(path)
    (carry / "manifest.json").write_text(json.dumps({
        "data_hash": data_hash(data), "mined_dataset_hash": manifest.get("data_hash"),
        "teacher": {"name": teacher, "files_digest": content_digests(source, [b""])[0]},
        "cut": {"code_chars": code_chars, "chunk_chars": chunk_chars},
        "pairs": manifest.get("pairs"), "chunks": len(chunks), "chunks_mined": total_chunks,
        "chunk_sample": "random.Random(0).sample"}, indent=1), encoding="utf-8")
    sizes = {p.name: p.stat().st_size for p in carry.rglob("*") if p.is_file()
             and p.stat().st_size > 1 << 20}
    return {"pairs": len(rows), "chunks": len(chunks), "big_files": sizes,
            "bytes": sum(p.stat().st_size for p in carry.rglob("*") if p.is_file())}


def _load(carry: Path, limit: int):
    from encoders.train.static_recipe import StaticData

    packed = _read_xz_json(carry / "data.json.xz")
    manifest = json.loads((carry / "manifest.json").read_text(encoding="utf-8"))
    codes, rows, chunks = packed["codes"], packed["rows"], packed["chunks"]
    keep = range(len(rows))
    if limit:  # a smoke test's sample: every k-th row
        keep = range(0, len(rows), max(1, len(rows) // limit))
        chunks = chunks[:limit]
    train_of = {}
    for i in keep:
        if rows[i][1] == "train":
            train_of[i] = len(train_of)
    train = [(rows[i][0], codes[i], train_of.get(rows[i][2], -1)) for i in train_of]
    dev = [(rows[i][0], codes[i]) for i in keep if rows[i][1] == "dev"]
    return StaticData(train=train, dev=dev, chunks=chunks,
                      data_hash=manifest["data_hash"]), manifest


def train(carry: Path, work: Path, out: Path, *, only: list[str], budget_s: float,
          device: str, limit: int) -> dict:
    """The GPU call: every chosen variant's table to OUT/NAME.safetensors, the rest in a tar."""
    import torch

    from encoders.train.static_recipe import run_variants
    from encoders.train.vocab import Vocabulary

    torch.backends.cuda.matmul.allow_tf32 = True
    work.mkdir(parents=True, exist_ok=True)
    _unpack_base(carry, work / "base")
    data, manifest = _load(carry, limit)
    variants = [v for v in VARIANTS if not only or v["name"] in only]
    vocabularies = {}
    for name in dict.fromkeys(v["vocab"] for v in variants):
        folder = work / f"vocab-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        for packed in (carry / f"vocab-{name}").glob("*.xz"):
            with lzma.open(packed) as source, open(folder / packed.stem, "wb") as sink:
                shutil.copyfileobj(source, sink)
        vocabularies[name] = Vocabulary.load(folder)
    _say("data", len(data.train), "train", len(data.dev), "dev", len(data.chunks), "chunks")
    command = ("python benchmarks/gpu_static.py train --carry CARRY --work WORK --out OUT "
               f"--budget-s {budget_s:g}" + "".join(f" --only {n}" for n in only))
    results = run_variants(
        work / "base", vocabularies, data, variants, out=work / "models", device=device,
        budget_s=budget_s, command=command, log=lambda row: _say(json.dumps(row)),
        teacher_info={**manifest["teacher"], "carried": "2-D weights int8 (one scale a row)"})
    with tarfile.open(out / "models.tar", "w") as tar:
        for result in results:
            folder = Path(result["folder"])
            shutil.copy(folder / "model.safetensors", out / f"{result['name']}.safetensors")
            for path in folder.iterdir():  # the tokenizer is the carried vocabulary's
                if path.name not in ("model.safetensors", "tokenizer.json"):
                    tar.add(path, arcname=f"{result['name']}/{path.name}")
    return {"trained": [{"name": r["name"], "best": r["best"], "seconds": r["seconds"]}
                        for r in results]}


def unpack(back: Path, carry: Path, out: Path) -> dict:
    """Model2Vec folders OUT/NAME from the tables and the tar that came back, each with the
    tokenizer of the carried vocabulary its training.json names (its hash checked)."""
    import hashlib

    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(back / "models.tar") as tar:
        tar.extractall(out, filter="data")
    names = sorted(p.stem for p in back.glob("*.safetensors"))
    for name in names:
        vocabulary = json.loads((out / name / "training.json").read_text())["vocabulary"]
        with lzma.open(carry / f"vocab-{vocabulary['name']}" / "tokenizer.json.xz") as handle:
            tokenizer = handle.read()
        digest = hashlib.blake2b(json.dumps(json.loads(tokenizer)).encode(),
                                 digest_size=16).hexdigest()
        if digest != vocabulary["hash"]:
            raise SystemExit(f"{name}: the carried vocabulary is not the one it was trained on")
        (out / name / "tokenizer.json").write_bytes(tokenizer)
        shutil.copy(back / f"{name}.safetensors", out / name / "model.safetensors")
    return {"models": names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--teacher", default="code-minilm-v1")
    p.add_argument("--vocab", action="append", required=True, help="NAME=FOLDER; repeatable")
    p.add_argument("--carry", type=Path, required=True)
    p.add_argument("--code-chars", type=int, default=3000)
    p.add_argument("--chunk-chars", type=int, default=4000)
    p.add_argument("--max-chunks", type=int, default=27000)
    p = sub.add_parser("train")
    p.add_argument("--carry", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--only", action="append", default=[])
    p.add_argument("--budget-s", type=float, default=200.0,
                   help="start no further variant after this many seconds of the run")
    p.add_argument("--device", default="cuda")
    p.add_argument("--limit", type=int, default=0, help="use about this many rows (smoke)")
    p = sub.add_parser("unpack")
    p.add_argument("--back", type=Path, required=True)
    p.add_argument("--carry", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "pack":
        vocabs = dict(item.split("=", 1) for item in args.vocab)
        result = pack(args.data, args.teacher, {k: Path(v) for k, v in vocabs.items()},
                      args.carry, code_chars=args.code_chars, chunk_chars=args.chunk_chars,
                      max_chunks=args.max_chunks)
    elif args.command == "train":
        args.out.mkdir(parents=True, exist_ok=True)
        result = train(args.carry, args.work, args.out, only=args.only, budget_s=args.budget_s,
                       device=args.device, limit=args.limit)
    else:
        result = unpack(args.back, args.carry, args.out)
    _say(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
