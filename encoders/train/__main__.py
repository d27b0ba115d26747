"""The static model's recipe from the command line, step by step.

    python -m encoders.train mine  --packages-dir SITE_PACKAGES ... --out DATA
    python -m encoders.train export-teacher --out TEACHER     # all-MiniLM-L6-v2 in float16
    python -m encoders.train vocab --data DATA --teacher TEACHER --size 61000 --out VOCAB
    python -m encoders.train train --data DATA --vocab VOCAB --teacher TEACHER --out MODELS \\
        --variant '{"name": "code-static-minilm-v2"}' [--device cuda]

``mine`` and ``vocab`` run on a CPU; ``train`` wants a GPU for the teacher (it runs anywhere).
``train`` writes one Model2Vec folder per variant, each with its ``training.json``, and
``log.jsonl`` with every epoch's dev metrics. Everything is seeded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from encoders.train import data
from encoders.train.exclusions import check_sources
from encoders.train.vocab import Vocabulary, build_vocabulary, token_counts


def _pairs(folder: Path) -> tuple[list[dict], list[dict], list[str]]:
    rows = list(data.read_jsonl(folder / "pairs.jsonl.xz"))
    chunks = [row["text"] for row in data.read_jsonl(folder / "chunks.jsonl.xz")]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    # The exclusion list is checked again where the data is used, not only where it was mined.
    check_sources(list(manifest.get("sources", {})) + [row["source"] for row in rows])
    train = [row for row in rows if row["split"] == "train"]
    dev = [row for row in rows if row["split"] == "dev"]
    return train, dev, chunks


def _vocab(args: argparse.Namespace) -> int:
    train, _, chunks = _pairs(args.data)
    texts = chunks + [row["code"] for row in train]
    vocabulary = build_vocabulary(args.teacher / "tokenizer.json", texts, size=args.size,
                                  min_count=args.min_count, split_case=args.split_case)
    vocabulary.save(args.out)
    sys.stdout.write(json.dumps({"tokens": len(vocabulary),
                                 "code_words": vocabulary.code_words}) + "\n")
    return 0


def _train(args: argparse.Namespace) -> int:
    import torch
    from tokenizers import Tokenizer

    from encoders.train.distill import (
        Recipe,
        Teacher,
        distil_table,
        pad_ids,
        retrieval_metrics,
        save_model2vec,
        train_table,
    )
    from encoders.train.static_recipe import teacher_dev_ndcg

    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    log_file = (args.out / "log.jsonl").open("a", encoding="utf-8")

    def log(row: dict) -> None:
        row = {"t": round(time.perf_counter() - start, 1), **row}
        log_file.write(json.dumps(row) + "\n")
        log_file.flush()
        sys.stdout.write(json.dumps(row) + "\n")
        sys.stdout.flush()

    torch.manual_seed(args.seed)
    train, dev, chunks = _pairs(args.data)
    if args.limit:
        train, dev, chunks = train[: args.limit], dev[: args.limit], chunks[: args.limit]
    vocabulary = Vocabulary.load(args.vocab)
    student = Tokenizer.from_str(json.dumps(vocabulary.tokenizer))
    student.no_padding()
    student.no_truncation()
    unk = student.token_to_id(vocabulary.tokenizer["model"]["unk_token"])
    codes = [row["code"] for row in train]
    counts = token_counts(student, chunks + codes, len(vocabulary))
    teacher = Teacher(args.teacher, device=args.device)
    vectors = teacher.token_vectors(vocabulary.sources)
    log({"step": "token vectors", "shape": list(vectors.shape)})
    texts = chunks + codes + [row["query"] for row in train]
    targets = teacher.embed(texts)
    teacher_ndcg = teacher_dev_ndcg(teacher, [(r["query"], r["code"]) for r in dev])
    log({"step": "teacher", "texts": len(texts), "dev_ndcg@10": teacher_ndcg})

    def ids(batch: list[str], width: int):
        rows = [e.ids for e in student.encode_batch(batch, add_special_tokens=False)]
        return pad_ids(rows, unk, width).to(args.device)

    width = 512
    text_ids = ids(texts, width)
    query_ids, code_ids = ids([r["query"] for r in train], 64), ids(codes, width)
    dev_ids = ids([r["query"] for r in dev], 64), ids([r["code"] for r in dev], width)
    log({"step": "tokenized", "texts": len(texts), "pairs": len(train), "dev": len(dev)})
    manifest = json.loads((args.data / "manifest.json").read_text(encoding="utf-8"))
    for spec in args.variant:
        settings = json.loads(spec)
        name = settings.pop("name")
        recipe = Recipe(seed=args.seed, **settings)
        torch.manual_seed(recipe.seed)
        table, head = distil_table(vectors, counts, recipe)
        best, history = train_table(
            table, head, pad=unk, texts=text_ids, targets=targets, queries=query_ids,
            codes=code_ids, recipe=recipe,
            dev=(lambda t: retrieval_metrics(t, unk, *dev_ids)) if dev else None,
            log=lambda row, name=name: log({"variant": name, **row}),
        )
        training = {
            "recipe": {**recipe.__dict__},
            "seed": recipe.seed,
            "data": {"hash": data.data_hash(args.data), "pairs": manifest.get("pairs"),
                     "chunks": manifest.get("chunks")},
            "teacher": {"name": args.teacher_name, "fingerprint": args.teacher_fingerprint,
                        "dev_ndcg@10": teacher_ndcg},
            "vocabulary": vocabulary.card(),
            "history": history,
            "command": " ".join(["python -m encoders.train", *args.argv]),
        }
        save_model2vec(args.out / name, best, vocabulary, training)
        log({"variant": name, "saved": str(args.out / name), "best": max(
            (h for h in history), key=lambda h: h.get("dev_ndcg@10", -1))})
    log_file.close()
    return 0


def _export_teacher(args: argparse.Namespace) -> int:
    # A training machine may take only so many megabytes along: the teacher's transformer in
    # float16 is half the size, and the recipe casts it back to float32 when it loads.
    import numpy as np
    from safetensors.numpy import load_file, save_file

    from encoders.folder import content_digests
    from encoders.sentence import resolve_model

    source = resolve_model(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(source / "model.safetensors"))
    half = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in tensors.items()}
    save_file(half, str(args.out / "model.safetensors"))
    for name in ("config.json", "tokenizer.json"):
        (args.out / name).write_bytes((source / name).read_bytes())
    fingerprint = content_digests(source, [b""])[0]
    (args.out / "teacher.json").write_text(json.dumps(
        {"name": args.model, "files_digest": fingerprint}) + "\n", encoding="utf-8")
    sys.stdout.write(json.dumps({"teacher": args.model, "files_digest": fingerprint}) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m encoders.train")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("mine", help="mine pairs and chunks (see encoders.train.data)",
                        add_help=False)
    vocab = commands.add_parser("vocab", help="build the vocabulary")
    vocab.add_argument("--data", required=True, type=Path)
    vocab.add_argument("--teacher", required=True, type=Path)
    vocab.add_argument("--size", type=int, default=61000)
    vocab.add_argument("--min-count", type=int, default=5)
    vocab.add_argument("--split-case", action="store_true",
                       help="cut identifiers at case changes before lowercasing")
    vocab.add_argument("--out", required=True, type=Path)
    export = commands.add_parser("export-teacher", help="the packaged teacher in float16")
    export.add_argument("--model", default="all-MiniLM-L6-v2")
    export.add_argument("--out", required=True, type=Path)
    train = commands.add_parser("train", help="distil and train variants")
    train.add_argument("--data", required=True, type=Path)
    train.add_argument("--vocab", required=True, type=Path)
    train.add_argument("--teacher", required=True, type=Path)
    train.add_argument("--teacher-name", default="all-MiniLM-L6-v2")
    train.add_argument("--teacher-fingerprint", default=None)
    train.add_argument("--out", required=True, type=Path)
    train.add_argument("--variant", action="append", required=True,
                       help='JSON: {"name": ..., plus Recipe fields}; repeatable')
    train.add_argument("--device", default="cpu")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--limit", type=int, default=0, help="use at most this many rows (smoke)")
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "mine":
        return data.main(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    run = {"vocab": _vocab, "export-teacher": _export_teacher, "train": _train}
    return run[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
