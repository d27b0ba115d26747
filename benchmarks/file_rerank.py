"""File-level cross-encoder evidence fused with the default ranking: does it lift semble?

semble's targets are mostly whole files, and the chunk reranker judges one piece of a file at
a time: alone at depth 10 it scores 0.78 against the default pipeline's 0.88, and no blend of
the two scores beat the pipeline. Three reranker terms are tried here, each fused with the
pipeline's own score over its top ``depth`` rows (every term min-max normalised over those
rows; weights chosen on the tune half only):

- ``chunk``: the reranker's score of the row itself;
- ``file``: the best reranker score among the candidate rows of the row's file, so a file
  that holds one convincing chunk lifts all its rows (the pipeline's file coherence, judged
  by the cross-encoder);
- ``card``: the reranker reading the row's *file card* instead of the chunk:
  :func:`file_cards.card_texts` (the path, then every definition's header line) with the
  file's module doc (Python docstring, Rust ``//!``, Go package comment, a leading JS/C/PHP/
  Ruby/Lua comment that is no licence) after the path. Every query is scored against every
  card of its repository.

usage:
    # here: the (query, card) pairs and the pipeline's top-50 (query, chunk) pairs, each a
    #   rerank_bundle candidates file (CHUNK_SHARDS: the chunk vectors of the default model,
    #   rerank_bundle.py embed)
    python benchmarks/file_rerank.py cards --trees TREES --index-root IDX --out CARDS.json.xz
    python benchmarks/file_rerank.py candidates --trees TREES --index-root IDX \\
        --chunks CHUNK_SHARDS --out CHUNKS.json.xz
    # on the GPU machine, with the shipped reranker, for each of the two files
    python benchmarks/rerank_bundle.py score --rebase --bundle BUNDLE \\
        --artifact encoders/weights/code-rerank-minilm-v2 --candidates FILE --out SCORED
    # here: the grid, chosen on the tune half
    python benchmarks/file_rerank.py fuse --trees TREES --index-root IDX --chunks CHUNK_SHARDS \\
        --card-scores SCORED_CARDS --chunk-scores SCORED_CHUNKS --out result.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from file_cards import card_texts  # noqa: E402
from gpu_vectors import load_shards  # noqa: E402
from mine_files import file_doc  # noqa: E402
from ranking_eval import (  # noqa: E402
    Frozen,
    code_hybrid,
    command_line,
    evaluate,
    halves,
    open_semble,
)
from rerank_bundle import TEXT_CHARS, read_xz, write_xz  # noqa: E402

from retriever.pipeline import Results, Stage  # noqa: E402

_DOC_CHARS = 400  # the doc's first few sentences; the header lines follow
DEPTH = 50  # candidate rows a query scored on the GPU machine


def cards_of(chunks) -> dict[str, str]:
    """``{path: card}`` of one index's chunks: the path, the module doc, the header lines."""
    found = card_texts(chunks)
    first: dict[str, object] = {}
    for chunk in chunks:
        if chunk.path not in first or chunk.start_line < first[chunk.path].start_line:
            first[chunk.path] = chunk
    out = {}
    for path, card in found.items():
        chunk = first[path]
        doc = file_doc(chunk.language, chunk.text) if chunk.start_line == 1 else None
        head, _, rest = card.partition("\n")
        text = " ".join(doc[2].split())[:_DOC_CHARS] if doc else ""
        out[path] = f"{head}\n{text}\n{rest}" if text else card
    return out


def cards(args) -> None:
    out, total = {"texts": "file cards", "repos": {}}, 0
    for repo in open_semble(args.trees, args.index_root, args.repo):
        found = cards_of(repo.index.chunks())
        paths = sorted(found)
        every = list(range(len(paths)))
        out["repos"][repo.name] = {"paths": paths,
                                   "texts": [found[p][:TEXT_CHARS] for p in paths],
                                   "queries": [[q.query, every] for q in repo.queries]}
        total += len(paths) * len(repo.queries)
    write_xz(args.out, out)
    print(json.dumps({"pairs": total, "repos": len(out["repos"])}))


def hybrid_base(repos, chunk_shards: Path, model: str, *, text_of=None, dense_too=False):
    """Each repository's default hybrid pipeline output for its queries, computed once, with
    the dense side from ``chunk_shards`` (exact inner product over every row): ``{repo:
    Frozen}``, or ``(dense, hybrid)`` two such dicts with ``dense_too``. ``text_of(chunks)``
    gives the texts whose vectors the shards hold (the embedding texts by default)."""
    from chunking import embedding_text
    from encoders.sentence import SentenceTransformerEncoder
    from indexing.table import text_hash
    from retriever.ranking.fitted import weights_for

    hashes, vectors = load_shards(chunk_shards)
    at = {h: i for i, h in enumerate(hashes)}
    encoder = SentenceTransformerEncoder(model=model)
    depth = int(weights_for("hybrid")["depth"])
    base, dense_only = {}, {}
    for repo in repos:
        chunks = repo.index.chunks()
        embedded = text_of(chunks) if text_of else [embedding_text(c) for c in chunks]
        rows = np.stack([vectors[at[text_hash(t)]] for t in embedded])
        texts = [q.query for q in repo.queries]
        dense = encoder.encode_queries(texts) @ rows.T
        top = np.argsort(-dense, axis=1, kind="stable")[:, :depth]
        frozen = Frozen(texts, Results(np.take_along_axis(dense, top, 1).astype(np.float32),
                                       top.astype(np.int64)), "dense")
        base[repo.name] = Frozen(texts, code_hybrid(repo, frozen)(texts), "code hybrid")
        dense_only[repo.name] = frozen
    return (dense_only, base) if dense_too else base


def candidates(args) -> None:
    from retriever.rerankers.stage import texts_of

    repos = open_semble(args.trees, args.index_root, args.repo)
    base = hybrid_base(repos, args.chunks, args.model)
    out, total = {"mode": "hybrid", "depth": DEPTH, "repos": {}}, 0
    for repo in repos:
        results = base[repo.name].results
        rows = sorted({int(r) for r in results.ids[:, :DEPTH].ravel() if r >= 0})
        at = {row: i for i, row in enumerate(rows)}
        every = texts_of(repo.index)
        out["repos"][repo.name] = {
            "rows": rows, "texts": [every[r][:TEXT_CHARS] for r in rows],
            "queries": [[q.query, [at[int(r)] for r in ids[:DEPTH] if r >= 0]]
                        for q, ids in zip(repo.queries, results.ids, strict=True)]}
        total += sum(len(ids) for _, ids in out["repos"][repo.name]["queries"])
    write_xz(args.out, out)
    print(json.dumps({"pairs": total, "repos": len(out["repos"])}))


def _minmax(values: np.ndarray) -> np.ndarray:
    span = float(values.max() - values.min())
    return np.zeros_like(values) if span == 0 else (values - values.min()) / span


class FileFusion(Stage):
    """Re-scores each query's top ``depth`` rows: pipeline + chunk + file + card terms."""

    def __init__(self, index, chunk_score: dict, card_score: dict, weights: tuple,
                 depth: int) -> None:
        self.paths = [c.path for c in index.chunks()]
        self.chunk_score, self.card_score = chunk_score, card_score
        self.weights, self.depth = weights, depth

    def __call__(self, queries, results=None) -> Results:
        w_chunk, w_file, w_card = self.weights
        scores, ids = results.scores.astype(np.float32, copy=True), results.ids.copy()
        for q, query in enumerate(queries):
            top = [j for j in range(min(self.depth, ids.shape[1])) if ids[q, j] >= 0]
            if len(top) < 2:
                continue
            rows = [int(ids[q, j]) for j in top]
            new = _minmax(scores[q, top])
            if w_chunk or w_file:
                chunk = _minmax(np.asarray([self.chunk_score[query][r] for r in rows],
                                           dtype=np.float32))
                best: dict[str, float] = {}
                for r, s in zip(rows, chunk, strict=True):
                    best[self.paths[r]] = max(best.get(self.paths[r], 0.0), float(s))
                new = new + w_chunk * chunk + w_file * np.asarray(
                    [best[self.paths[r]] for r in rows], dtype=np.float32)
            if w_card:
                new = new + w_card * _minmax(np.asarray(
                    [self.card_score[query][self.paths[r]] for r in rows], dtype=np.float32))
            order = np.argsort(-new, kind="stable")
            below = scores[q, len(top):]
            below = below[np.isfinite(below)]
            ids[q, :len(top)] = ids[q, top][order]
            # the rows below keep their order, under the re-scored ones
            scores[q, :len(top)] = new[order] + 4.0 + (below.max() if below.size else 0.0)
        return Results(scores, ids, results.query_ids)

    def __repr__(self) -> str:
        return f"file_fusion{self.weights} % {self.depth}"


class Oracle(Stage):
    """The headroom of re-ordering: each query's top ``depth`` rows with, first, the
    best-ranked row of every target the rows reach (a target is a file, or a file's line
    span, matched as semble's scorer matches it), the other rows after them in their order.
    A greedy estimate: a row that hits two targets takes both, where two rows could earn two
    positions; no query of the benchmark has two targets in one file."""

    def __init__(self, repo, depth: int) -> None:
        self.spans = [(repo.prefix + c.path, c.start_line, c.end_line)
                      for c in repo.index.chunks()]
        self.queries = repo.queries
        self.depth = depth

    def __call__(self, queries, results=None) -> Results:
        from eval.repos import target_matches

        if list(queries) != [q.query for q in self.queries]:
            raise ValueError("the oracle answers its repository's queries, in their order")
        scores, ids = results.scores.astype(np.float32, copy=True), results.ids.copy()
        for q, query in enumerate(self.queries):
            top = [j for j in range(min(self.depth, ids.shape[1])) if ids[q, j] >= 0]
            left, first = list(query.targets), []
            for j in top:
                found = [t for t in left if target_matches(self.spans[ids[q, j]], t)]
                if found:
                    first.append(j)
                    left = [t for t in left if t not in found]
            order = first + [j for j in top if j not in first]
            ids[q, :len(top)] = ids[q, order]
            scores[q, :len(top)] = np.sort(scores[q, top])[::-1]
        return Results(scores, ids, results.query_ids)


def oracle(args) -> None:
    repos = open_semble(args.trees, args.index_root, args.repo)
    base = hybrid_base(repos, args.chunks, args.model)
    rows = []
    for depth in [0, *args.depths]:
        found = evaluate(repos, lambda repo, d=depth: base[repo.name] if d == 0 else
                         base[repo.name] >> Oracle(repo, d), mode="lexical")
        row = halves(found)
        del row["per_repo"]
        rows.append({"depth": depth, **row})
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model, "rows": rows,
                                    "command": command_line("file_rerank.py")}, indent=1) + "\n")


def _scored(path: Path | None, key: str) -> dict:
    """``{repo: {query: {row or path: score}}}`` from a scored candidates file."""
    if path is None:
        return {}
    out = {}
    for name, repo in read_xz(path)["repos"].items():
        keys = repo[key]
        table = out.setdefault(name, {})
        for (query, ids), values in zip(repo["queries"], repo["scores"], strict=True):
            table.setdefault(query, {}).update(
                {keys[i]: float(v) for i, v in zip(ids, values, strict=True)})
    return out


def fuse(args) -> None:
    repos = open_semble(args.trees, args.index_root, args.repo)
    base = hybrid_base(repos, args.chunks, args.model)
    chunk_score = _scored(args.chunk_scores, "rows")
    card_score = _scored(args.card_scores, "paths")

    def run(weights: tuple, depth: int) -> dict:
        def make(repo):
            if not any(weights):
                return base[repo.name]
            return base[repo.name] >> FileFusion(repo.index, chunk_score.get(repo.name),
                                                 card_score.get(repo.name), weights, depth)
        return {"chunk": weights[0], "file": weights[1], "card": weights[2], "depth": depth,
                **halves(evaluate(repos, make, mode="lexical"))}

    rows = [run((0.0, 0.0, 0.0), 0)]
    print(json.dumps({k: v for k, v in rows[-1].items() if k != "per_repo"}), flush=True)
    chunk_grid = args.chunk_weights if chunk_score else [0.0]
    file_grid = args.file_weights if chunk_score else [0.0]
    card_grid = args.card_weights if card_score else [0.0]
    for depth in args.depths:
        for weights in itertools.product(chunk_grid, file_grid, card_grid):
            if not any(weights):
                continue
            rows.append(run(weights, depth))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "per_repo"}),
                  flush=True)
    best = max(rows, key=lambda r: r["tune"])
    out = {"model": args.model, "rows": rows,
           "chosen_on_tune": {k: best[k] for k in ("chunk", "file", "card", "depth", "tune",
                                                     "check", "all")},
           "command": command_line("file_rerank.py")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"chosen_on_tune": out["chosen_on_tune"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, chunks: bool) -> None:
        p.add_argument("--trees", type=Path, required=True)
        p.add_argument("--index-root", type=Path, required=True)
        p.add_argument("--repo", action="append", default=[])
        if chunks:
            p.add_argument("--chunks", type=Path, required=True,
                           help="shards of the chunk vectors (rerank_bundle.py embed)")
            p.add_argument("--model", default="code-minilm-v1",
                           help="the encoder of the queries")

    p = sub.add_parser("cards", help="every (query, card) pair, for the GPU machine to score")
    common(p, False)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("candidates", help="the default pipeline's top-50 (query, chunk) pairs")
    common(p, True)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("fuse", help="the default hybrid pipeline with the file-level terms")
    common(p, True)
    p.add_argument("--chunk-scores", type=Path, help="the scored candidates file")
    p.add_argument("--card-scores", type=Path, help="the scored cards file")
    p.add_argument("--chunk-weights", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3])
    p.add_argument("--file-weights", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.5])
    p.add_argument("--card-weights", type=float, nargs="+", default=[0.0, 0.1, 0.2])
    p.add_argument("--depths", type=int, nargs="+", default=[10, 20, 50])
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("oracle", help="the best NDCG@10 any re-ordering of the top rows gets")
    common(p, True)
    p.add_argument("--depths", type=int, nargs="+", default=[10, 20, 50])
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    {"cards": cards, "candidates": candidates, "fuse": fuse, "oracle": oracle}[args.command](args)


if __name__ == "__main__":
    main()
