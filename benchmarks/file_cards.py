"""File cards for dense retrieval: does one extra vector per file lift dense-only search?

semble's queries mostly ask for a file ("where are routes matched to handlers"), while a
dense index holds one vector per chunk, so a file competes only through its single best
chunk. A *file card* is a short text per file, its path then the header line of every
definition it holds (``def match(self, path):``, ``func (r *Router) Handle(...) {``), which
the code-trained encoder reads like code. Each row's score becomes its own cosine plus
``weight`` times its file card's cosine (or the mean of its file's chunk vectors, which needs
no card at all). Everything is scored exactly, over every row, so no candidate depth hides a
file.

usage:
    # here: the card texts of every scorable repository (lexical indexes, built when missing)
    python benchmarks/file_cards.py export --trees TREES --index-root IDX --out CARRY/cards.parquet
    # on the GPU machine: chunk texts and cards embedded by the default model
    #   (rerank_bundle.py embed --adapter encoders/weights/code-minilm-v1 --texts ...)
    # here: score the variants; weights chosen on the tune half only
    python benchmarks/file_cards.py score --trees TREES --index-root IDX --chunks CHUNK_SHARDS \\
        --cards CARD_SHARDS --out result.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from gpu_vectors import load_shards  # noqa: E402
from ranking_eval import (  # noqa: E402
    Frozen,
    code_hybrid,
    command_line,
    evaluate,
    halves,
    open_semble,
)

_CARD_CHARS = 1500  # about 300 tokens of code; the encoder reads 256


def card_texts(chunks) -> dict[str, str]:
    """``{path: card}`` for every file of an index's ``chunks``: the path, then each
    definition's header line in file order (duplicates dropped)."""
    from indexing.symbols import definitions_in

    lines: dict[str, list[str]] = {}
    for chunk in chunks:
        seen = lines.setdefault(chunk.path, [])
        text = chunk.text or ""
        rows = text.split("\n")
        for offset, _name, _kind in definitions_in(text, chunk.language):
            line = rows[offset].strip()[:160]
            if line not in seen:
                seen.append(line)
    return {path: f"{path} :: file\n" + "\n".join(found)[:_CARD_CHARS]
            for path, found in lines.items()}


def export(args) -> None:
    from indexing.table import text_hash

    texts: dict[str, str] = {}
    for repo in open_semble(args.trees, args.index_root):
        for card in card_texts(repo.index.chunks()).values():
            texts.setdefault(text_hash(card), card)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"hash": list(texts), "text": list(texts.values())}), args.out,
                   compression="zstd")
    print(json.dumps({"cards": len(texts), "bytes": args.out.stat().st_size}))


def _lookup(folder: Path) -> tuple[dict[str, int], np.ndarray]:
    hashes, vectors = load_shards(folder)
    return {h: i for i, h in enumerate(hashes)}, vectors


def score(args) -> None:
    from chunking import embedding_text
    from encoders.sentence import SentenceTransformerEncoder
    from indexing.table import text_hash
    from retriever.pipeline import Results
    from retriever.ranking.fitted import weights_for

    repos = open_semble(args.trees, args.index_root, args.repo)
    chunk_at, chunk_vectors = _lookup(args.chunks)
    card_at, card_vectors = _lookup(args.cards)
    encoder = SentenceTransformerEncoder(model=args.model)
    prepared = {}
    for repo in repos:
        chunks = repo.index.chunks()
        rows = np.stack([chunk_vectors[chunk_at[text_hash(embedding_text(c))]] for c in chunks])
        paths = sorted({c.path for c in chunks})
        number = {p: i for i, p in enumerate(paths)}
        file_of = np.asarray([number[c.path] for c in chunks])
        cards = card_texts(chunks)
        card_rows = np.stack([card_vectors[card_at[text_hash(cards[p])]] for p in paths])
        means = np.zeros((len(paths), rows.shape[1]), dtype=np.float32)
        np.add.at(means, file_of, rows)
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        queries = encoder.encode_queries([q.query for q in repo.queries])
        prepared[repo.name] = (queries @ rows.T, (queries @ card_rows.T)[:, file_of],
                               (queries @ means.T)[:, file_of])

    weights = weights_for("hybrid")
    depth = int(weights["depth"]) if args.hybrid else args.depth

    def run(card_weight: float, mean_weight: float) -> dict[str, float]:
        def make(repo):
            direct, card, mean = prepared[repo.name]
            scores = direct + card_weight * card + mean_weight * mean
            top = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
            results = Results(np.take_along_axis(scores, top, 1).astype(np.float32),
                              top.astype(np.int64))
            dense = Frozen([q.query for q in repo.queries], results, "dense + file cards")
            if not args.hybrid:
                return dense
            return code_hybrid(repo, dense, weights)
        return halves(evaluate(repos, make, mode="lexical"))

    rows = []
    for card_weight in args.card_weights:
        for mean_weight in args.mean_weights:
            result = run(card_weight, mean_weight)
            rows.append({"card": card_weight, "mean": mean_weight, **result})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "per_repo"}), flush=True)
    best = max(rows, key=lambda r: r["tune"])
    out = {"model": args.model, "hybrid": args.hybrid, "rows": rows,
           "chosen_on_tune": {k: best[k] for k in ("card", "mean", "tune", "check", "all")},
           "command": command_line("file_cards.py")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="the card texts, for the GPU machine to embed")
    p.add_argument("--trees", type=Path, required=True)
    p.add_argument("--index-root", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("score", help="dense-only NDCG@10 with and without file cards")
    p.add_argument("--trees", type=Path, required=True)
    p.add_argument("--index-root", type=Path, required=True)
    p.add_argument("--chunks", type=Path, required=True, help="shards of the chunk texts")
    p.add_argument("--cards", type=Path, required=True, help="shards of the card texts")
    p.add_argument("--model", default="code-minilm-v1", help="the encoder of the queries")
    p.add_argument("--card-weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    p.add_argument("--mean-weights", type=float, nargs="+", default=[0.0, 0.25, 0.5])
    p.add_argument("--depth", type=int, default=50, help="dense-only: rows kept per query")
    p.add_argument("--hybrid", action="store_true",
                   help="score the default hybrid pipeline (BM25 fusion and code priors) "
                        "with this dense side, instead of dense alone")
    p.add_argument("--repo", action="append", default=[])
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    export(args) if args.command == "export" else score(args)


if __name__ == "__main__":
    main()
