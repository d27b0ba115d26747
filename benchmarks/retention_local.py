"""The retention benchmark's steps that run here, not on the GPU (issue 10): the export of
queries, row maps and MAE texts; code-minilm-v1's own rankings from its cached vectors; and the
scores of every ranking, as the dense benchmarks score them.

``gpu_retention.py export|baseline|score`` run these; that module's docstring has the commands.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from gpu_code_encoder import _read_xz_json, _say, _write_xz_json
from gpu_retention import PLAN, load_ret, rank_views, write_rankings

__all__ = ["baseline", "compare", "export", "fit_vectors", "score"]


def export(trees: Path, repo_index: Path, beir_index: Path, beir: list[str], texts: Path,
           chunks: Path | None, out: Path, mae_texts: int) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from locations import semble_dir
    from ranking_eval import open_repos, scorable

    import retriever
    from chunking import embedding_text
    from eval.data import load_beir
    from indexing.table import text_hash
    from retriever.build import document_text

    where = {h: i for i, h in enumerate(
        pq.read_table(texts, columns=["hash"]).column("hash").to_pylist())}
    out.mkdir(parents=True, exist_ok=True)
    rows, order, query_rows = {}, [], {"group": [], "qid": [], "text": []}

    def add(name: str, chunk_texts: list[str], queries: list[tuple[str, str]]) -> None:
        missing = [t for t in chunk_texts if text_hash(t) not in where]
        if missing:
            raise SystemExit(f"{name}: {len(missing)} chunk texts are not in {texts}")
        rows[name] = np.array([where[text_hash(t)] for t in chunk_texts], dtype=np.int32)
        order.append(name)
        for qid, text in queries:
            query_rows["group"].append(name)
            query_rows["qid"].append(qid)
            query_rows["text"].append(text)

    annotations = semble_dir() / "annotations"
    for repo in open_repos(annotations, trees, repo_index, scorable(annotations, trees),
                           vectors=True, open_only=True):
        add(repo.name, [embedding_text(c) for c in repo.index.chunks()],
            [(q.id, q.query) for q in repo.queries])
    for spec in beir:
        folder, split = spec.rsplit(":", 1)
        bench = load_beir(folder, split)
        index = retriever.open(beir_index / f"beir-{Path(folder).name}")
        add(f"beir:{Path(folder).name}:{split}", [document_text(c) for c in index.chunks()],
            list(bench.queries.items()))
    np.savez(out / "groups.npz", **rows)
    (out / "groups.json").write_text(json.dumps({"order": order}))
    pq.write_table(pa.table(query_rows), out / "queries.parquet", compression="zstd")
    summary = {"groups": len(order), "queries": len(query_rows["text"])}
    if chunks is not None:
        from encoders.train.data import read_jsonl

        pool = [row["text"] for row in read_jsonl(chunks)]
        picked = random.Random(0).sample(pool, min(mae_texts, len(pool)))
        _write_xz_json(out / "mae.json.xz", picked)
        summary["mae_texts"] = len(picked)
    summary["bytes"] = sum(p.stat().st_size for p in out.iterdir())
    return summary


def baseline(args) -> dict:
    """code-minilm-v1's rankings from the vectors its GPU embedding left in a vector cache."""
    import pyarrow.parquet as pq
    import torch

    from encoders.head import read_head
    from encoders.sentence import SentenceTransformerEncoder
    from encoders.train.heads import itq, pca
    from indexing.cache import VectorCache

    encoder = SentenceTransformerEncoder(model=args.model)
    hashes = pq.read_table(args.texts, columns=["hash"]).column("hash").to_pylist()
    docs, found = VectorCache(args.cache).lookup(encoder.fingerprint(), encoder.dim, hashes)
    _, query_texts, groups = load_ret(args.ret)
    needed = np.unique(np.concatenate([rows for _, _, rows in groups]))
    if not found[needed].all():
        raise SystemExit(f"{int((~found[needed]).sum())} benchmark texts are not in {args.cache}")
    queries = encoder.encode_queries(query_texts)
    plain = [(qs, rows) for _, qs, rows in groups]
    ranked = {"": rank_views(torch.from_numpy(docs), torch.from_numpy(queries), plain,
                             PLAN["base"][0][1])}
    info = {"model": "base-cpu", "cache": True}
    if args.fit_pairs is not None:
        # Heads fitted on training pairs: a centre, ITQ's rotation (codes), PCA (prefixes).
        fitted, info["fit"] = fit_vectors(encoder, args.fit_pairs, args.fit)
        mean, rotation = itq(fitted, iterations=50, seed=info["fit"]["seed"])
        info["fit"]["itq_iterations"] = 50
        heads = {"center_": (np.eye(len(mean), dtype=np.float32), ("codes", "codes_asym")),
                 "itq_": (rotation, ("codes", "codes_asym")),
                 "pca_": (pca(fitted), ("f384", "f256", "f128", "f64", "f32"))}
        for prefix, (turn, views) in heads.items():
            moved = [_unit((vectors - mean) @ turn) for vectors in (docs, queries)]
            ranked[prefix] = rank_views(*map(torch.from_numpy, moved), plain, views)
    for path in args.head:
        # A head file as `retriever train head` writes it and the encoder applies it
        # (encoders/head.py): its views are those of `SentenceTransformerEncoder(head=...)`.
        head = read_head(path)
        views = ("f384", "f256", "f128", "f64", "f32", "codes", "codes_asym")
        moved = [head.apply(vectors) for vectors in (docs, queries)]
        ranked[f"head_{path.stem}_"] = rank_views(*map(torch.from_numpy, moved), plain, views)
        info.setdefault("heads", {})[path.stem] = {"file": path.name, "digest": head.digest,
                                                   **head.info}
    write_rankings(args.out, ranked, info)
    return {"queries": len(queries), "views": sum(len(v) for v in ranked.values())}


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def fit_vectors(encoder, pairs: Path, count: int, seed: int = 0) -> tuple[np.ndarray, dict]:
    """``encoder``'s vectors of ``count`` random training pairs (their queries and code; no
    benchmark text), ``(2 * count, d)`` float32, and what they are."""
    packed = _read_xz_json(pairs)
    train = [i for i, row in enumerate(packed["rows"]) if row[2] == "train"]
    picked = sorted(random.Random(seed).sample(train, min(count, len(train))))
    vectors = np.concatenate([
        encoder.encode_queries([packed["rows"][i][0] for i in picked]),
        encoder.encode_documents([packed["codes"][i] for i in picked])])
    return vectors, {"pairs": len(picked), "seed": seed}


def _beir_run(ids: np.ndarray, scores: np.ndarray, qids: list[str], paths: list[str]) -> dict:
    """``{qid: {docid: score}}``: a document keeps its best-ranked row (eval's corpus_run)."""
    run = {}
    for qid, row_ids, row_scores in zip(qids, ids, scores, strict=True):
        docs: dict[str, float] = {}
        for row, value in zip(row_ids.tolist(), row_scores.tolist(), strict=True):
            if row >= 0:
                docs.setdefault(paths[row], float(value))
        run[qid] = docs
    return run


COMPARISONS = "comparisons"


def compare(paired: dict, a: str, b: str) -> dict:
    """Model ``a`` minus model ``b`` at every view both were ranked under (or view ``a`` minus
    view ``b``, each named ``model/view``): the difference of
    the means (semble: over repositories, its headline; CoSQA, SciFact: over queries), its 95%
    bootstrap interval and the paired randomization test's p over those units."""
    from eval.metrics import bootstrap_ci, paired_test

    out = {}
    if "/" in a and "/" in b:  # two named views: "model/view"
        pairs = [(f"{a} - {b}", paired[a], paired[b])]
    else:
        views = sorted({k.split("/", 1)[1] for k in paired if k.startswith(a + "/")}
                       & {k.split("/", 1)[1] for k in paired if k.startswith(b + "/")})
        pairs = [(f"{a} - {b} ({v})", paired[f"{a}/{v}"], paired[f"{b}/{v}"]) for v in views]
    for label, first, second in pairs:
        entry = {}
        for name in first:
            units = sorted(set(first[name]) & set(second[name]))
            diffs = [first[name][u] - second[name][u] for u in units]
            low, high = bootstrap_ci(diffs)
            entry[name] = {"difference": round(float(np.mean(diffs)), 4),
                           "ci95": [round(low, 4), round(high, 4)], "units": len(units),
                           "p": round(paired_test(first[name], second[name]), 4)}
        out[label] = entry
        _say("compare", label, json.dumps(entry))
    return out


def score(args) -> dict:
    import statistics

    import pyarrow.parquet as pq
    from locations import semble_dir
    from ranking_eval import Frozen, evaluate, open_repos, split

    import retriever
    from eval.data import load_beir
    from eval.metrics import evaluate as beir_evaluate
    from retriever.pipeline import Results

    names, texts, groups = load_ret(args.ret)
    qids = pq.read_table(args.ret / "queries.parquet", columns=["qid"]).column("qid").to_pylist()
    semble = [g for g in groups if not g[0].startswith("beir:")]
    annotations = semble_dir() / "annotations"
    repos = open_repos(annotations, args.trees, args.repo_index, [g[0] for g in semble],
                       vectors=True, open_only=True)
    where = {g[0]: g[1] for g in groups}
    for repo in repos:
        if [q.query for q in repo.queries] != texts[where[repo.name]]:
            raise SystemExit(f"{repo.name}: the exported queries differ from the benchmark's")
    corpora = {}
    for spec in args.beir:
        folder, part = spec.rsplit(":", 1)
        name = f"beir:{Path(folder).name}:{part}"
        index = retriever.open(args.beir_index / f"beir-{Path(folder).name}")
        corpora[name] = (load_beir(folder, part).qrels, [c.path for c in index.chunks()])
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    paired: dict[str, dict[str, dict[str, float]]] = {}  # "model/view" -> set -> per unit
    for path in args.rankings:
        data = np.load(path)
        model = json.loads(bytes(data["info"]).decode())["model"]
        views = sorted({key.rsplit(".", 1)[0] for key in data.files if key != "info"})
        for view in views:
            ids, values = data[f"{view}.ids"], data[f"{view}.scores"].astype(np.float32)
            frozen = {}
            for repo in repos:
                qs = where[repo.name]
                frozen[repo.name] = Frozen(texts[qs], Results(values[qs], ids[qs].astype(
                    np.int64)), view)
            scored = evaluate(repos, lambda repo, f=frozen: f[repo.name], mode="dense")
            tune, check = split(scored.per_repo)
            paired[f"{model}/{view}"] = {"semble": scored.per_repo}
            entry = {"semble": round(scored.mean, 4),
                     "tune": round(statistics.fmean(scored.per_repo[n] for n in tune), 4),
                     "check": round(statistics.fmean(scored.per_repo[n] for n in check), 4),
                     "by_language": {k: round(v, 4) for k, v in
                                     sorted(scored.by_language.items())}}
            for name, (qrels, paths) in corpora.items():
                qs = where[name]
                run = _beir_run(ids[qs], values[qs], qids[qs], paths)
                measured = beir_evaluate(qrels, run, ["ndcg@10"])
                entry[name.removeprefix("beir:")] = round(measured.mean["ndcg@10"], 4)
                paired[f"{model}/{view}"][name.removeprefix("beir:")] = \
                    measured.per_query["ndcg@10"]
            results.setdefault(model, {})[view] = entry
            _say(model, view, json.dumps({k: v for k, v in entry.items()
                                          if k != "by_language"}))
    for spec in args.compare:
        results.setdefault(COMPARISONS, {}).update(compare(paired, *spec.split(":")))
    for model, views in results.items():  # retention: a view against the model's full vectors
        if model == COMPARISONS:
            continue
        full = views.get("f384")
        for entry in views.values():
            if full:
                entry["retention"] = {k: round(entry[k] / full[k], 4) for k in full
                                      if isinstance(full[k], float) and full[k] > 0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return {m: len(v) for m, v in results.items()}
