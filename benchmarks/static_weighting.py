"""Corpus-adaptive token weights for a static model: dense-only NDCG@10 on the semble benchmark.

A static vector is a weighted mean of token rows, and the model's weights are global (SIF over
the training code, then whatever training made of the row norms). Inside one repository some
tokens are in nearly every chunk (``self``, ``err``, the package's own name) and tell chunks
apart no better than punctuation. This experiment re-weights each token's row by a function of
its document frequency in the repository being searched, and scores the dense stage with the
benchmark's own evaluation (``ranking_eval.evaluate``: the engine's hit assembly, semble's
scorer).

usage:
    python benchmarks/static_weighting.py --trees TREES --index-root IDX \\
        --model code-static-minilm-v2 --repo NAME ... --out weighting.json
    # the fast tier with ranking: the engine's hybrid pipeline over the re-weighted dense side
    python benchmarks/static_weighting.py ... --pipeline code --out hybrid.json
    # a BEIR set, its whole corpus as the collection whose frequencies weigh
    python benchmarks/static_weighting.py --beir DATA/cosqa --split dev --out cosqa.json

``IDX`` holds static (or hybrid) indexes of the trees, opened read-only: only their chunk
tables are read; vectors are pooled here from the model's tokenizer and table, exactly as
:class:`encoders.static.StaticEncoder` pools them (checked against the index's own vectors for
the unweighted setting).

Weightings (``g(token)`` multiplies the row; ``df`` = chunks holding the token, ``N`` =
chunks, ``p`` = the token's share of all tokens of the repository):

- ``idf``: ``log(1 + N / df) ** a`` (a token no chunk holds gets ``log(1 + N)``);
- ``sif``: ``s / (s + p)``, SIF with the repository's own frequencies.

Each is applied to both sides (``both``: documents and queries) and to queries only
(``query``: documents unchanged, so index vectors stay cacheable).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import sparse

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from locations import semble_dir  # noqa: E402
from ranking_eval import evaluate, open_repos, scorable, split  # noqa: E402

from chunking import embedding_text  # noqa: E402
from retriever.pipeline import Results, Stage  # noqa: E402

DEPTH = 100
MAX_TOKENS = 512


class StaticTable:
    """A static model's tokenizer and float32 table (rows scaled by their weights), read and
    cut by the encoder's own code (:mod:`encoders.static`), so the counts pool to its vectors."""

    def __init__(self, model: str) -> None:
        from encoders.static_table import _Model, resolve_static_model

        self._model = _Model(resolve_static_model(model))
        self.table = self._model.table

    def counts(self, texts: list[str]) -> sparse.csr_matrix:
        """(len(texts), rows) token counts, cut and filtered as the encoder does."""
        from encoders.static import _token_ids

        unk = self._model.unk_id
        rows, cols = [], []
        for i, ids in enumerate(_token_ids(self._model, texts, MAX_TOKENS)):
            ids = [t for t in ids if t != unk]
            rows.extend([i] * len(ids))
            cols.extend(ids)
        data = np.ones(len(cols), dtype=np.float32)
        return sparse.csr_matrix((data, (rows, cols)), shape=(len(texts), len(self.table)))


def pooled(counts: sparse.csr_matrix, table: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Unit rows of the weighted sums (zero rows for texts without a known token)."""
    if weights is not None:
        counts = counts @ sparse.diags(weights.astype(np.float32))
    out = np.asarray(counts @ table, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


class Exact(Stage):
    """Exact inner-product ranking of fixed query vectors against fixed document vectors."""

    def __init__(self, queries: list[str], query_vectors: np.ndarray, docs: np.ndarray) -> None:
        self.queries, self.query_vectors, self.docs = queries, query_vectors, docs

    def __call__(self, queries, results=None) -> Results:
        if list(queries) != self.queries:
            raise ValueError("an Exact stage answers only the queries it was made for")
        scores = self.query_vectors @ self.docs.T
        k = min(DEPTH, scores.shape[1])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return Results(np.take_along_axis(scores, top, 1).astype(np.float32), top.astype(np.int64))


class DenseSwap:
    """An opened index whose dense stage is a given one: everything else (lexical stage,
    chunk table, symbols) is the index's, so the engine's ranking pipeline runs over the
    re-weighted dense side (``--pipeline code``: the fast tier with ranking)."""

    def __init__(self, index) -> None:
        self._index = index
        self.dense: Stage | None = None

    def __getattr__(self, name):
        return getattr(self._index, name)

    def __len__(self) -> int:
        return len(self._index)

    def stage(self, mode="hybrid", *, depth: int = DEPTH, **options) -> Stage:
        if getattr(mode, "value", mode) == "dense":
            return self.dense % min(depth, DEPTH)
        return self._index.stage(mode, depth=depth, **options)


def corpus_weights(doc_counts: sparse.csr_matrix, kind: str, value: float) -> np.ndarray:
    """Per-token multipliers from the repository's own statistics."""
    n = doc_counts.shape[0]
    if kind == "idf":
        df = np.asarray((doc_counts > 0).sum(0)).ravel().astype(np.float64)
        idf = np.log1p(n / np.maximum(df, 1.0))
        idf[df == 0] = np.log1p(n)
        return (idf ** value).astype(np.float32)
    if kind == "sif":
        freq = np.asarray(doc_counts.sum(0)).ravel().astype(np.float64)
        p = freq / max(freq.sum(), 1.0)
        return (value / (value + p)).astype(np.float32)
    raise ValueError(kind)


def beir_rows(model: StaticTable, folder: Path, split: str, sif: Sequence[float]) -> dict:
    """nDCG@10 of a BEIR set, dense, unweighted and with corpus SIF on both sides (the corpus's
    own frequencies): each document is one text, ``title`` then body (the engine's
    ``document_text``), ranked exactly against all documents."""
    from eval.data import load_beir
    from eval.metrics import evaluate as beir_evaluate

    bench = load_beir(folder, split)
    ids = list(bench.corpus)
    docs = model.counts([f"{d.title}\n{d.text}" if d.title else d.text
                         for d in bench.corpus.values()])
    qids = list(bench.queries)
    queries = model.counts([bench.queries[q] for q in qids])
    out = {}
    for value in [0.0, *sif]:
        weights = corpus_weights(docs, "sif", value) if value else None
        stage = Exact([], pooled(queries, model.table, weights),
                      pooled(docs, model.table, weights))
        results = stage([])
        run = {qid: {ids[j]: float(score) for j, score in zip(row_ids, row_scores, strict=True)}
               for qid, row_ids, row_scores in zip(qids, results.ids, results.scores,
                                                   strict=True)}
        out["none" if not value else f"sif {value}"] = round(
            beir_evaluate(bench.qrels, run, ["ndcg@10"]).mean["ndcg@10"], 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=Path)
    parser.add_argument("--index-root", type=Path)
    parser.add_argument("--model", default="code-static-minilm-v2")
    parser.add_argument("--repo", action="append", default=[])
    parser.add_argument("--idf", type=float, nargs="*", default=[0.25, 0.5, 0.75, 1.0, 1.5])
    parser.add_argument("--sif", type=float, nargs="*", default=[1e-3, 3e-3, 1e-2, 3e-2])
    parser.add_argument("--sides", nargs="*", default=["both", "query"],
                        choices=["both", "query"])
    parser.add_argument("--pipeline", choices=["plain", "code"], default="plain",
                        help="plain: the dense stage alone; code: the engine's hybrid "
                        "ranking pipeline (lexical fusion and code priors) over it")
    parser.add_argument("--beir", type=Path, default=None,
                        help="score this BEIR folder instead of the semble trees")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.beir is not None:
        started = time.monotonic()
        rows = beir_rows(StaticTable(args.model), args.beir, args.split, args.sif)
        result = {"model": args.model, "beir": args.beir.name, "split": args.split,
                  "ndcg@10": rows, "seconds": round(time.monotonic() - started, 1),
                  "command": " ".join(sys.argv)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        print(json.dumps(rows))
        return
    if args.trees is None or args.index_root is None:
        parser.error("--trees and --index-root are needed (or --beir FOLDER)")
    annotations = semble_dir() / "annotations"
    names = args.repo or scorable(annotations, args.trees)
    started = time.monotonic()
    repos = open_repos(annotations, args.trees, args.index_root, names, vectors=True,
                       open_only=True)
    model = StaticTable(args.model)
    data = {}
    for repo in repos:
        chunks = repo.index.chunks()
        docs = model.counts([embedding_text(c) for c in chunks])
        texts = [q.query for q in repo.queries]
        data[repo.name] = (docs, model.counts(texts), texts)
    settings = [("none", "both", 0.0)]
    settings += [(kind, side, v) for kind, grid in (("idf", args.idf), ("sif", args.sif))
                 for v in grid for side in args.sides]
    rows = []
    check_cos = None
    swapped = {repo.name: DenseSwap(repo.index) for repo in repos}
    for kind, side, value in settings:
        made: dict[str, Exact] = {}
        for repo in repos:
            docs, queries, texts = data[repo.name]
            weights = None if kind == "none" else corpus_weights(docs, kind, value)
            doc_vectors = pooled(docs, model.table, weights if side == "both" else None)
            if kind == "none":
                # The unweighted pooling must be the encoder's own (the index's vectors).
                own = np.asarray(repo.index.vectors, dtype=np.float32)
                cos = np.einsum("ij,ij->i", own, doc_vectors)[np.linalg.norm(own, axis=1) > 0]
                check_cos = min(check_cos or 1.0, float(cos.min()))
            made[repo.name] = Exact(texts, pooled(queries, model.table, weights), doc_vectors)
        if args.pipeline == "plain":
            scores = evaluate(repos, lambda r, made=made: made[r.name], mode="dense")
        else:
            from retriever.ranking import code_pipeline

            for name, stage in made.items():
                swapped[name].dense = stage
            scores = evaluate(repos, lambda r: code_pipeline(
                swapped[r.name], mode="hybrid", depth=min(DEPTH, len(r.index))), mode="hybrid")
        row = {"weighting": kind, "side": side, "value": value,
               "ndcg@10": round(scores.mean, 4),
               "per_repo": {k: round(v, 4) for k, v in sorted(scores.per_repo.items())}}
        tune, check = split(list(scores.per_repo)) if len(names) == 60 else (names, [])
        if check:
            row["tune"] = round(statistics.fmean(scores.per_repo[n] for n in tune), 4)
            row["check"] = round(statistics.fmean(scores.per_repo[n] for n in check), 4)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "per_repo"}), flush=True)
    result = {"model": args.model, "pipeline": args.pipeline, "repos": len(repos),
              "unweighted_min_cosine_to_index": check_cos, "rows": rows,
              "seconds": round(time.monotonic() - started, 1),
              "command": " ".join(sys.argv)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
