"""Embed the benchmark chunks once on a GPU machine and put the vectors in a local vector cache.

A dense or hybrid build of the 60 semble trees embeds about 73,000 chunks: an hour on two CPU
cores, seconds on a GPU. The GPU machine needs none of the engine's chunking or index code:

    # here: every text our builds would embed, keyed by the hash the builds look up
    python benchmarks/gpu_vectors.py export --trees ../bench/semble-trees \
        --index-root ../bench/rank-index --beir ../shared/data/cosqa --beir ../shared/data/scifact \
        --out CARRY/texts.parquet
    # on the GPU machine (numpy, pyarrow, sentence-transformers only)
    python benchmarks/gpu_vectors.py embed CARRY/texts.parquet --model MODEL_FOLDER --out OUT
    # here, with the shards that came back
    python benchmarks/gpu_vectors.py import OUT --model NAME_OR_FOLDER --cache CACHE_DIR

After the import, any build with ``DENSE_RETRIEVER_CACHE=CACHE_DIR`` (or ``cache=CACHE_DIR``)
and the same model takes those vectors from the cache instead of embedding. The cache is
keyed by the local encoder's fingerprint: ``import`` trusts that the GPU side ran the same
weights (the fp16 copy of a model, computed in float32, differs by about 1e-3 in cosine; the
result JSONs of runs made this way say so).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

_SHARD_BYTES = 15 * 2**20  # what one file may weigh on the way back from the GPU machine


def _cut(texts: list[str], keep_tokens: int) -> list[str]:
    """Each text cut after its first ``keep_tokens`` tokens of the default model's tokenizer.

    The encoder reads at most 256 tokens, so what lies well past them never changes a vector;
    cutting at a token's end more than 40 tokens beyond keeps the first 256 exactly (WordPiece
    only re-splits the word at the cut). It makes the file small enough to travel."""
    from tokenizers import Tokenizer  # noqa: PLC0415

    from encoders.sentence import BASE_MODEL, resolve_model  # noqa: PLC0415

    tokenizer = Tokenizer.from_file(str(Path(resolve_model(BASE_MODEL)) / "tokenizer.json"))
    tokenizer.no_truncation()
    cut = []
    for start in range(0, len(texts), 1024):
        part = texts[start:start + 1024]
        for text, encoding in zip(part, tokenizer.encode_batch(part, add_special_tokens=False),
                                  strict=True):
            offsets = encoding.offsets
            cut.append(text if len(offsets) <= keep_tokens else text[:offsets[keep_tokens][1]])
    return cut


def export(trees: Path, index_root: Path, beir: list[Path], out: Path, *,
           keep_tokens: int = 320) -> dict:
    """Write every distinct text the benchmark builds embed, with its cache hash."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from locations import semble_dir  # noqa: PLC0415
    from ranking_eval import open_repos, scorable  # noqa: PLC0415

    from chunking import embedding_text  # noqa: PLC0415
    from indexing.table import text_hash  # noqa: PLC0415
    from retriever.build import document_text  # noqa: PLC0415

    texts: dict[str, str] = {}
    counts = {}
    annotations = semble_dir() / "annotations"
    names = scorable(annotations, trees)
    for repo in open_repos(annotations, trees, index_root, names):
        before = len(texts)
        for chunk in repo.index.chunks():
            text = embedding_text(chunk)
            texts.setdefault(text_hash(text), text)
        counts[repo.name] = len(texts) - before
    for folder in beir:
        import retriever  # noqa: PLC0415
        from eval.data import load_beir  # noqa: PLC0415
        from eval.runner import corpus_documents  # noqa: PLC0415

        split = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))[0]
        # The Documents eval runs index, so the hashes are the ones their builds look up.
        docs = corpus_documents(load_beir(folder, split))
        index = retriever.index_documents(docs, index_dir=index_root / f"beir-{folder.name}",
                                          lexical_only=True, cache=False)
        before = len(texts)
        for chunk in index.chunks():
            text = document_text(chunk)
            texts.setdefault(text_hash(text), text)
        counts[f"beir:{folder.name}"] = len(texts) - before
    values = _cut(list(texts.values()), keep_tokens) if keep_tokens else list(texts.values())
    table = pa.table({"hash": list(texts), "text": values})
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out, compression="zstd", compression_level=9)
    return {"texts": len(texts), "bytes": out.stat().st_size, "new_per_source": counts}


def embed(texts_file: Path, model: Path, out: Path, *, batch_size: int = 256,
          max_length: int = 256) -> dict:
    """Encode every text the way ``SentenceTransformerEncoder.encode_documents`` does and
    write float16 shards that each fit what comes back from the GPU machine."""
    import torch  # noqa: PLC0415
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415

    table = pq.read_table(texts_file)
    hashes, texts = table.column("hash").to_pylist(), table.column("text").to_pylist()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder = SentenceTransformer(str(model), device=device, local_files_only=True)
    encoder.float()  # weights may come as float16; compute as the CPU encoder does
    encoder.max_seq_length = min(max_length, encoder.max_seq_length or max_length)
    start = time.perf_counter()
    vectors = encoder.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                             convert_to_numpy=True, show_progress_bar=False)
    seconds = time.perf_counter() - start
    vectors = np.asarray(vectors, dtype=np.float16)
    out.mkdir(parents=True, exist_ok=True)
    rows = max(1, _SHARD_BYTES // (vectors.shape[1] * 2))
    shards = 0
    for shard, begin in enumerate(range(0, len(hashes), rows)):
        np.save(out / f"vectors-{shard:02d}.npy", vectors[begin:begin + rows])
        shards += 1
    pq.write_table(pa.table({"hash": hashes}), out / "hashes.parquet", compression="zstd")
    summary = {"texts": len(texts), "dim": int(vectors.shape[1]), "shards": shards,
               "seconds": round(seconds, 2), "texts_per_s": round(len(texts) / seconds, 1),
               "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
               "model": model.name, "max_length": encoder.max_seq_length}
    (out / "embed.json").write_text(json.dumps(summary, indent=2))
    return summary


def load_shards(folder: Path) -> tuple[list[str], np.ndarray]:
    """The hashes and float32 vectors written by :func:`embed`."""
    hashes = pq.read_table(folder / "hashes.parquet").column("hash").to_pylist()
    parts = [np.load(path) for path in sorted(folder.glob("vectors-*.npy"))]
    vectors = np.concatenate(parts).astype(np.float32)
    if len(vectors) != len(hashes):
        raise SystemExit(f"{folder}: {len(hashes)} hashes but {len(vectors)} vectors")
    # Back to unit length after the float16 round trip, as the encoder's rows are.
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return hashes, vectors


def import_vectors(folder: Path, model: str, cache_dir: Path) -> dict:
    """Store the shards in the vector cache at ``cache_dir`` under ``model``'s fingerprint."""
    from encoders.sentence import SentenceTransformerEncoder  # noqa: PLC0415
    from indexing.cache import VectorCache  # noqa: PLC0415

    hashes, vectors = load_shards(folder)
    encoder = SentenceTransformerEncoder(model=model)
    if encoder.dim != vectors.shape[1]:
        raise SystemExit(f"{model} gives {encoder.dim}-d vectors, the shards hold "
                         f"{vectors.shape[1]}-d ones")
    cache = VectorCache(cache_dir)
    step = 4096
    for begin in range(0, len(hashes), step):
        cache.store(encoder.fingerprint(), hashes[begin:begin + step], vectors[begin:begin + step])
    return {"stored": len(hashes), "fingerprint": encoder.fingerprint(), "cache": str(cache_dir)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="write the texts the benchmark builds embed")
    p.add_argument("--trees", type=Path, required=True)
    p.add_argument("--index-root", type=Path, required=True,
                   help="lexical-only indexes, one per repository (built when missing)")
    p.add_argument("--beir", type=Path, action="append", default=[])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--keep-tokens", type=int, default=320,
                   help="cut each text after this many tokens (0: keep whole texts)")
    p = sub.add_parser("embed", help="on the GPU machine: texts -> float16 shards")
    p.add_argument("texts", type=Path)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--batch-size", type=int, default=256)
    p = sub.add_parser("import", help="shards -> the vector cache")
    p.add_argument("shards", type=Path)
    p.add_argument("--model", required=True, help="the local model name or folder")
    p.add_argument("--cache", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "export":
        result = export(args.trees, args.index_root, args.beir, args.out,
                        keep_tokens=args.keep_tokens)
    elif args.command == "embed":
        result = embed(args.texts, args.model, args.out, batch_size=args.batch_size)
    else:
        result = import_vectors(args.shards, args.model, args.cache)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
