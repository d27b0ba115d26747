"""The one GPU run behind the shipped code reranker: what is prepared here, what runs there.

The GPU machine has torch and transformers but not this engine's BM25, FAISS or tree-sitter,
and what travels there is limited to 64 MiB. So the engine's work happens here and plain files
travel in ``BUNDLE`` (a git-ignored folder):

- ``mine``: hard negatives for the mined (docstring -> code) pairs with this engine's BM25
  (:func:`retriever.rerankers.mine_negatives`); written as a pool of distinct texts and rows
  of indices into it (``train.json.xz``).
- ``base``: the packaged MiniLM as fp16 with only the word-embedding rows that any carried
  text uses (the embeddings are frozen and an unused row is never read, so training is the
  same; the full matrix is rebuilt there with zeros elsewhere).
- ``gpu`` (there): rebuild the base, train with :func:`encoders.train.reranker.
  train_reranker` (the steps that fit ``--seconds``, measured on the first steps), score the
  benchmark candidates of ``candidates.json.xz`` (``benchmarks/rerank_eval.py candidates``)
  and write the adapter, the manifest and the scores to ``$OUT``.

    python benchmarks/rerank_bundle.py mine --data .train-carry/mined --bundle .carry-rerank
    python benchmarks/rerank_eval.py candidates --bundle .carry-rerank
    python benchmarks/rerank_bundle.py base --bundle .carry-rerank
    (device) python benchmarks/rerank_bundle.py gpu --bundle .carry-rerank --out $OUT
"""

from __future__ import annotations

import argparse
import json
import lzma
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

# Texts are cut to this many characters before they travel: the model reads at most 256
# tokens of query and text together, about 1,000 characters of code.
TEXT_CHARS = 1200


def write_xz(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with lzma.open(path, "wt", encoding="utf-8", preset=9) as handle:
        json.dump(data, handle, ensure_ascii=False)


def read_xz(path: Path):
    with lzma.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def mine(args) -> None:
    from encoders.train.inputs import load_pairs, rows_hash
    from retriever.rerankers import mine_negatives
    from retriever.rerankers.mining import NEAR_DUPLICATE

    started = time.time()
    rows, dev = load_pairs(args.data)
    every = [*rows, *(dev or [])]
    mined = mine_negatives(every, count=args.negatives, depth=args.depth,
                           progress=lambda _s, done, total: print(f"mined {done}/{total} "
                                                                 f"{time.time() - started:.0f}s",
                                                                 flush=True)
                           if done % 5120 == 0 or done == total else None)
    pool: dict[str, int] = {}

    def at(text: str) -> int:
        return pool.setdefault(text[:TEXT_CHARS], len(pool))

    out = [{"q": q, "p": at(p), "n": [at(n) for n in negs],
            "split": "dev" if i >= len(rows) else "train"}
           for i, (q, p, negs) in enumerate(mined)]
    manifest = json.loads((Path(args.data) / "manifest.json").read_text())
    write_xz(Path(args.bundle) / "train.json.xz", {
        "pool": list(pool), "rows": out,
        "data": {"source": "mined (docstring -> code) pairs of 325 Python packages in no "
                 "benchmark (encoders/train/data.py)", "data_hash": manifest.get("data_hash"),
                 "input_hash": rows_hash(every),
                 "negatives": f"{args.negatives} a query: this engine's BM25 over the "
                 f"{len(pool)} distinct texts, top {args.depth}, near-duplicates (Jaccard >= "
                 f"{NEAR_DUPLICATE}) and same-query positives dropped"}})
    counts = [len(r["n"]) for r in out]
    print(f"{len(out)} rows, {len(pool)} texts, negatives a row: min {min(counts)} mean "
          f"{sum(counts) / len(counts):.2f}, {time.time() - started:.0f}s")


def base(args) -> None:
    """The packaged MiniLM, fp16, word-embedding rows of the tokens the carried texts use."""
    import numpy as np
    from safetensors.numpy import load_file, save_file
    from tokenizers import Tokenizer

    from encoders.folder import content_digests
    from encoders.sentence import resolve_model

    bundle = Path(args.bundle)
    source = resolve_model("all-MiniLM-L6-v2")
    texts = []
    if (bundle / "train.json.xz").is_file():  # a scoring-only bundle has no training rows
        train = read_xz(bundle / "train.json.xz")
        texts += train["pool"] + [row["q"] for row in train["rows"]]
    missing = [path for path in args.candidates or [] if not Path(path).is_file()]
    if missing:  # its tokens would be zero rows in the base, and its scores wrong
        raise SystemExit(f"--candidates {missing[0]}: no such file")
    for found in [bundle / "candidates.json.xz", *(args.candidates or [])]:
        if Path(found).is_file():
            for repo in read_xz(Path(found))["repos"].values():
                texts += repo["texts"] + [query for query, _ in repo["queries"]]
    for extra in args.texts or []:  # what `embed` will encode there (gpu_vectors export)
        import pyarrow.parquet as pq

        texts += pq.read_table(extra).column("text").to_pylist()
    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    tokenizer.no_truncation()
    used = set(range(104))  # [PAD], [unused*], [UNK], [CLS], [SEP], [MASK]
    for start in range(0, len(texts), 4096):
        for encoding in tokenizer.encode_batch(texts[start:start + 4096]):
            used.update(encoding.ids)
    ids = np.asarray(sorted(used), dtype=np.int32)
    weights = load_file(str(source / "model.safetensors"))
    out = {k: v.astype(np.float16) for k, v in weights.items()
           if k != "embeddings.word_embeddings.weight" and v.dtype == np.float32}
    out["embeddings.word_embeddings.rows"] = \
        weights["embeddings.word_embeddings.weight"][ids].astype(np.float16)
    out["embeddings.word_embeddings.ids"] = ids
    target = bundle / "base"
    target.mkdir(parents=True, exist_ok=True)
    save_file(out, str(target / "pruned.safetensors"))
    # Every small file of the sentence-transformers folder (its pooling config too), so that
    # the rebuilt base is an encoder as well as a cross-encoder's starting point.
    _copy_configs(source, target)
    identity = {"model": "all-MiniLM-L6-v2",
                "fingerprint": content_digests(source, [b""])[0],
                "vocab_rows": int(weights["embeddings.word_embeddings.weight"].shape[0])}
    (target / "identity.json").write_text(json.dumps(identity) + "\n")
    print(f"{len(ids)} of {identity['vocab_rows']} token rows used by {len(texts)} texts")


def _copy_configs(source: Path, target: Path, skip: str | None = None) -> None:
    """The ``.json`` and ``.txt`` files of a model folder, subfolders kept."""
    for path in source.rglob("*"):
        relative = path.relative_to(source)
        if path.is_file() and path.suffix in (".json", ".txt") and path.name != skip and \
                "__pycache__" not in relative.parts:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            (target / relative).write_bytes(path.read_bytes())


def _rebuild_base(bundle: Path, target: Path, adapter: Path | None = None) -> dict:
    """The carried base as a float32 folder at ``target``; with ``adapter`` (a shipped LoRA
    folder such as ``encoders/weights/code-minilm-v1``) merged into it, as
    :func:`encoders.adapter.merged_folder` merges it here."""
    import torch
    from safetensors.torch import load_file, save_file

    source = bundle / "base"
    identity = json.loads((source / "identity.json").read_text())
    weights = load_file(str(source / "pruned.safetensors"))
    ids, rows = weights.pop("embeddings.word_embeddings.ids"), \
        weights.pop("embeddings.word_embeddings.rows")
    table = torch.zeros(identity["vocab_rows"], rows.shape[1], dtype=torch.float32)
    table[ids.long()] = rows.float()
    weights = {k: v.float() for k, v in weights.items()}
    weights["embeddings.word_embeddings.weight"] = table
    if adapter is not None:
        from safetensors.numpy import load_file as load_numpy

        from encoders.adapter import merge_weights

        config = json.loads((adapter / "adapter_config.json").read_text())
        merged = merge_weights({k: v.numpy() for k, v in weights.items()}, config,
                               load_numpy(str(adapter / "adapter_model.safetensors")))
        weights = {k: torch.from_numpy(v).contiguous() for k, v in merged.items()}
        identity = {**identity, "merged_adapter": adapter.name}
    target.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(target / "model.safetensors"))
    _copy_configs(source, target, skip="identity.json")
    return identity


def embed(args) -> None:
    """(device) The carried base with ``--adapter`` merged, as an encoder: every text of
    ``--texts`` embedded by :func:`gpu_vectors.embed` (shards for ``gpu_vectors.py import``)."""
    from gpu_vectors import embed as embed_texts

    work = Path(tempfile.mkdtemp(prefix="embed-"))
    identity = _rebuild_base(Path(args.bundle), work / "model", Path(args.adapter))
    summary = embed_texts(Path(args.texts), work / "model", Path(args.out))
    print(json.dumps({**summary, "base": identity}), flush=True)


def _step_seconds(base_dir: Path, groups: list, settings) -> float:
    """Seconds a training step takes here, from a few steps of a throwaway copy."""
    import torch

    from encoders.train.reranker import ListwiseLoss, _base_model, add_lora

    model, tokenizer = _base_model(base_dir)
    add_lora(model, settings.rank, settings.alpha, settings.dropout)
    model.to(settings.device).train()
    cuda = settings.device.startswith("cuda")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    loss_fn, times = ListwiseLoss(1 + settings.negatives), []
    for step in range(6):
        chosen = groups[step * settings.batch_size:(step + 1) * settings.batch_size]
        queries = [g[0] for g in chosen for _ in g[1:]]
        texts = [t for g in chosen for t in g[1:]]
        if cuda:
            torch.cuda.synchronize()
        started = time.time()
        batch = tokenizer(queries, texts, truncation="longest_first",
                          max_length=settings.max_length, padding=True, return_tensors="pt")
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            batch = {k: v.to(settings.device) for k, v in batch.items()}
            loss = loss_fn(model(**batch).logits[:, 0])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.time() - started)
    del model
    return float(sorted(times[1:])[len(times[1:]) // 2])


def gpu(args) -> None:
    """(device) Train within ``--seconds``, then score the benchmark candidates."""
    from encoders.train.reranker import RerankSettings, train_reranker

    started = time.time()
    bundle, out = Path(args.bundle), Path(args.out)
    work = Path(tempfile.mkdtemp(prefix="rerank-"))
    base_dir = work / "base"
    identity = _rebuild_base(bundle, base_dir, args.init_adapter)
    data = read_xz(bundle / "train.json.xz")
    pool = data["pool"]
    rows = [(r["q"], pool[r["p"]], tuple(pool[n] for n in r["n"])) for r in data["rows"]
            if r["split"] == "train"]
    dev = [(r["q"], pool[r["p"]], tuple(pool[n] for n in r["n"])) for r in data["rows"]
           if r["split"] == "dev"]
    settings = RerankSettings(epochs=args.epochs, batch_size=args.batch_size,
                              negatives=args.negatives, lr=args.lr, seed=0,
                              max_length=args.max_length, rank=args.rank,
                              alpha=2.0 * args.rank, device=args.device)
    groups = [[q, p, *n] for q, p, n in rows if len(n) >= settings.negatives]
    per_step = _step_seconds(base_dir, groups, settings)
    steps = min(args.epochs * (len(rows) // settings.batch_size),
                int(args.seconds / per_step))
    print(f"[{time.time() - started:.0f}s] {per_step:.3f} s a step; {steps} steps "
          f"({steps * settings.batch_size / len(rows):.2f} epochs)", flush=True)
    settings = RerankSettings(**{**settings.__dict__, "max_steps": steps})
    last = [0.0]

    def progress(stage, done, total):
        if time.time() - last[0] > 20 or done == total:
            last[0] = time.time()
            print(f"[{time.time() - started:.0f}s] {stage} {done}/{total}", flush=True)

    artifact = work / "artifact"
    manifest = train_reranker(
        rows, out=artifact, base=str(base_dir), settings=settings, dev=dev, progress=progress,
        data=data["data"], command="python benchmarks/rerank_bundle.py " + " ".join(sys.argv[1:]))
    print(f"[{time.time() - started:.0f}s] trained: {json.dumps(manifest['training']['loss'])} "
          f"dev {json.dumps(manifest['training']['dev'])}", flush=True)
    manifest["base_used_for_training"] = manifest["base"]
    manifest["base"] = {"model": identity["model"], "fingerprint": identity["fingerprint"]}
    if identity.get("merged_adapter"):  # trained from the base with this adapter merged in
        manifest["base"]["merged_adapter"] = identity["merged_adapter"]
    (out / "reranker.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (out / "adapter.safetensors").write_bytes((artifact / "adapter.safetensors").read_bytes())
    if (bundle / "candidates.json.xz").is_file():
        score_file(artifact, base_dir, bundle / "candidates.json.xz", out / "scores.json.xz",
                   device=args.device, max_length=settings.max_length)
        print(f"[{time.time() - started:.0f}s] scored the candidates", flush=True)


def score_file(artifact: Path, base_dir: Path, candidates: Path, out: Path, *, device: str,
               max_length: int) -> None:
    """Every (query, text) of a ``candidates`` file scored by the trained ``artifact``."""
    import torch

    from encoders.train.reranker import load_model, score_pairs

    torch.backends.cuda.matmul.allow_tf32 = False  # score as the CPU will: float32
    model, tokenizer, _ = load_model(artifact, base=str(base_dir), device=device)
    found = read_xz(candidates)
    for repo in found["repos"].values():
        repo["scores"] = [score_pairs(model, tokenizer, query, [repo["texts"][i] for i in ids],
                                      max_length=max_length,
                                      batch_size=128).astype(float).round(5).tolist()
                          for query, ids in repo["queries"]]
    write_xz(out, found)


def score(args) -> None:
    """(device) Score ``--candidates`` with an adapter a ``gpu`` run wrote (``--artifact``)."""
    work = Path(tempfile.mkdtemp(prefix="score-"))
    _rebuild_base(Path(args.bundle), work / "base", args.init_adapter)
    # The folder names the packaged base it merges into on the CPU; here it meets the carried
    # copy it was trained on, whose fingerprint its manifest keeps beside.
    artifact = work / "artifact"
    artifact.mkdir()
    manifest = json.loads((Path(args.artifact) / "reranker.json").read_text())
    manifest["base"] = manifest["base_used_for_training"]
    if args.rebase:
        # A base pruned over more texts than the training run's (a later `base --texts`)
        # differs only in word rows the training never read; the candidates' tokens keep
        # their packaged values, as on the CPU, where the full base is used. The identity is
        # the one load_model computes for a base folder: its name and content digest.
        from encoders.folder import content_digests

        manifest["base"] = {"model": "base",
                            "fingerprint": content_digests((work / "base").resolve(), [b""])[0]}
    (artifact / "reranker.json").write_text(json.dumps(manifest))
    (artifact / "adapter.safetensors").write_bytes(
        (Path(args.artifact) / "adapter.safetensors").read_bytes())
    score_file(artifact, work / "base", Path(args.candidates), Path(args.out),
               device=args.device, max_length=args.max_length)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("mine")
    p.add_argument("--data", required=True)
    p.add_argument("--bundle", required=True)
    p.add_argument("--negatives", type=int, default=7)
    p.add_argument("--depth", type=int, default=30)
    p = commands.add_parser("base")
    p.add_argument("--bundle", required=True)
    p.add_argument("--texts", action="append", help="a gpu_vectors.py export to cover too")
    p.add_argument("--candidates", action="append",
                   help="another candidates file (rerank_eval.py, file_rerank.py) to cover")
    p = commands.add_parser("embed")
    p.add_argument("--bundle", required=True)
    p.add_argument("--adapter", required=True)
    p.add_argument("--texts", required=True)
    p.add_argument("--out", required=True)
    p = commands.add_parser("gpu")
    p.add_argument("--bundle", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--seconds", type=float, default=150.0, help="training time budget")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--negatives", type=int, default=7)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--init-adapter", type=Path,
                   help="a LoRA folder merged into the base before training")
    p = commands.add_parser("score")
    p.add_argument("--bundle", required=True)
    p.add_argument("--rebase", action="store_true",
                   help="score on the carried base even if it was pruned over other texts "
                        "than the training base (its fingerprint then differs)")
    p.add_argument("--artifact", required=True, help="the adapter folder a gpu run wrote")
    p.add_argument("--candidates", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--init-adapter", type=Path,
                   help="the adapter the gpu run merged into its base")
    args = parser.parse_args()
    {"mine": mine, "base": base, "gpu": gpu, "embed": embed,
     "score": score}[args.command](args)
