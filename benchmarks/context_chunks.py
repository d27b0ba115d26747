"""Chunks embedded with their file's context: does one line naming the file's other definitions
lift dense search?

File cards (``file_cards.py``) lifted dense-only semble search by 0.016 with a second vector
per file. This asks whether the same evidence fits inside the chunk's own vector, with no
index format change: the text an encoder sees becomes the ``path :: symbol`` header, then a
line naming the definitions of the chunk's file (``# in this file: Session, Session.send,
merge_setting ...``, at most ``--names-chars`` characters, the chunk's own first), then the
code. The model reads 256 tokens, so the line costs the chunk some of its own text.

usage:
    # here: the context texts of every scorable repository (lexical indexes)
    python benchmarks/context_chunks.py export --trees TREES --index-root IDX \\
        --out CARRY/context.parquet
    # on the GPU machine: embedded by the default model
    #   (rerank_bundle.py embed --adapter encoders/weights/code-minilm-v1 --texts ...)
    # here: dense only and the default hybrid pipeline, plain texts against context texts
    python benchmarks/context_chunks.py score --trees TREES --index-root IDX \\
        --chunks CHUNK_SHARDS --context CONTEXT_SHARDS --out result.json
    # the context vectors under the plain texts' cache keys, for tune_ranking.py's own builds
    python benchmarks/context_chunks.py remap --trees TREES --index-root IDX \\
        --context CONTEXT_SHARDS --out REMAPPED_SHARDS
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from file_rerank import hybrid_base  # noqa: E402
from ranking_eval import command_line, evaluate, halves, open_semble  # noqa: E402

NAMES_CHARS = 200


def context_texts(chunks, names_chars: int = NAMES_CHARS) -> list[str]:
    """Each chunk's embedding text with a line naming its file's definitions."""
    from chunking import embedding_text
    from indexing.symbols import definitions_in

    names: dict[str, list[str]] = {}
    for chunk in chunks:
        found = names.setdefault(chunk.path, [])
        for _offset, name, _kind in definitions_in(chunk.text or "", chunk.language):
            if name not in found:
                found.append(name)
    out = []
    for chunk in chunks:
        own = [d[1] for d in definitions_in(chunk.text or "", chunk.language)]
        ordered = list(dict.fromkeys(own + names[chunk.path]))
        line = ", ".join(ordered)[:names_chars]
        text = embedding_text(chunk)
        if line:
            header, _, body = text.partition("\n")
            text = f"{header}\n# in this file: {line}\n{body}"
        out.append(text)
    return out


def export(args) -> None:
    from gpu_vectors import _cut

    from indexing.table import text_hash

    texts: dict[str, str] = {}
    for repo in open_semble(args.trees, args.index_root, args.repo):
        for text in context_texts(repo.index.chunks(), args.names_chars):
            texts.setdefault(text_hash(text), text)
    # Keyed by the whole text's hash, as the builds look it up; what travels is cut where the
    # encoder stops reading anyway (gpu_vectors.py export does the same).
    texts = dict(zip(texts, _cut(list(texts.values()), 320), strict=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"hash": list(texts), "text": list(texts.values())}), args.out,
                   compression="zstd")
    print(json.dumps({"texts": len(texts), "bytes": args.out.stat().st_size}))


def _with_cards(repos, shards: Path, text_of, cards: Path, model: str, weights) -> dict:
    """Dense only, each row's cosine plus ``weight`` times its file card's cosine (the cards
    of file_cards.py, embedded by the same model), exact over every row."""
    import numpy as np
    from file_cards import card_texts
    from gpu_vectors import load_shards
    from ranking_eval import Frozen

    from encoders.sentence import SentenceTransformerEncoder
    from indexing.table import text_hash
    from retriever.pipeline import Results

    hashes, vectors = load_shards(shards)
    at = {h: i for i, h in enumerate(hashes)}
    card_hashes, card_vectors = load_shards(cards)
    card_at = {h: i for i, h in enumerate(card_hashes)}
    encoder = SentenceTransformerEncoder(model=model)
    prepared = {}
    for repo in repos:
        chunks = repo.index.chunks()
        rows = np.stack([vectors[at[text_hash(t)]] for t in text_of(chunks)])
        paths = sorted({c.path for c in chunks})
        number = {p: i for i, p in enumerate(paths)}
        file_of = np.asarray([number[c.path] for c in chunks])
        found = card_texts(chunks)
        card_rows = np.stack([card_vectors[card_at[text_hash(found[p])]] for p in paths])
        queries = encoder.encode_queries([q.query for q in repo.queries])
        prepared[repo.name] = (queries @ rows.T, (queries @ card_rows.T)[:, file_of])
    out = {}
    for weight in weights:
        def make(repo, w=weight):
            direct, card = prepared[repo.name]
            scores = direct + w * card
            top = np.argsort(-scores, axis=1, kind="stable")[:, :50]
            return Frozen([q.query for q in repo.queries],
                          Results(np.take_along_axis(scores, top, 1).astype(np.float32),
                                  top.astype(np.int64)), "dense + cards")
        out[weight] = halves(evaluate(repos, make, mode="lexical"))
    return out


def score(args) -> None:
    from chunking import embedding_text

    repos = open_semble(args.trees, args.index_root, args.repo)
    found = {}
    sides = (("plain", args.chunks, lambda chunks: [embedding_text(c) for c in chunks]),
             ("context", args.context,
              lambda chunks: context_texts(chunks, args.names_chars)))
    for label, shards, text_of in sides:
        dense, hybrid = hybrid_base(repos, shards, args.model, text_of=text_of,
                                    dense_too=True)
        for mode, stages in (("dense", dense), ("hybrid", hybrid)):
            found[f"{label} {mode}"] = halves(
                evaluate(repos, lambda repo, s=stages: s[repo.name], mode="lexical"))
            print(label, mode, json.dumps({k: v for k, v in found[f"{label} {mode}"].items()
                                           if k != "per_repo"}), flush=True)
        if args.cards:
            for weight, row in _with_cards(repos, shards, text_of, args.cards, args.model,
                                           args.card_weights).items():
                found[f"{label} dense + {weight:g} card"] = row
                print(label, f"dense + {weight:g} card", json.dumps(
                    {k: v for k, v in row.items() if k != "per_repo"}), flush=True)
    out = {"model": args.model, "names_chars": args.names_chars, "rows": found,
           "command": command_line("context_chunks.py")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


def remap(args) -> None:
    """Shards of the context vectors keyed by the *plain* embedding texts' hashes: imported
    into a vector cache (``gpu_vectors.py import``), they make the engine's own builds use
    the context vectors, so ``tune_ranking.py`` can fit and report the hybrid pipeline on them
    with no change to the product. Where two chunks share a plain text, the first one's
    context vector is kept."""
    import numpy as np
    from gpu_vectors import load_shards

    from chunking import embedding_text
    from indexing.table import text_hash

    hashes, vectors = load_shards(args.context)
    at = {h: i for i, h in enumerate(hashes)}
    rows: dict[str, int] = {}
    for repo in open_semble(args.trees, args.index_root, args.repo):
        chunks = repo.index.chunks()
        for chunk, text in zip(chunks, context_texts(chunks, args.names_chars), strict=True):
            rows.setdefault(text_hash(embedding_text(chunk)), at[text_hash(text)])
    args.out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"hash": list(rows)}), args.out / "hashes.parquet")
    np.save(args.out / "vectors-00.npy", vectors[list(rows.values())].astype(np.float16))
    print(json.dumps({"vectors": len(rows)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("export", "score", "remap"):
        p = sub.add_parser(name)
        p.add_argument("--trees", type=Path, required=True)
        p.add_argument("--index-root", type=Path, required=True)
        p.add_argument("--repo", action="append", default=[])
        p.add_argument("--names-chars", type=int, default=NAMES_CHARS)
        p.add_argument("--out", type=Path, required=True)
        if name == "score":
            p.add_argument("--chunks", type=Path, required=True,
                           help="shards of the plain chunk texts")
            p.add_argument("--model", default="code-minilm-v1")
            p.add_argument("--cards", type=Path,
                           help="shards of the file cards (file_cards.py export), to add "
                                "each row's file card cosine to its own in dense mode")
            p.add_argument("--card-weights", type=float, nargs="+", default=[0.1, 0.25])
        if name != "export":
            p.add_argument("--context", type=Path, required=True,
                           help="shards of the context texts")
    args = parser.parse_args()
    {"export": export, "score": score, "remap": remap}[args.command](args)


if __name__ == "__main__":
    main()
