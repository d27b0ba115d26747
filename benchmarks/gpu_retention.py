"""Matryoshka, hash and MAE runs on the code model, ranked on the GPU, scored here (issue 10).

Starting from code-minilm-v1 (its merged folder, carried as ``gpu_code_encoder.py`` packs a
base), one GPU call trains up to four models side by side on the 59k (doc -> code) pairs, each
with the same settings and ``--max-steps`` steps (or, with ``--probe``, as many as its share of
the time allows, timed on four probe steps; that overestimated the step time 2.7x under four
jobs' start-up, so the measured runs fix the steps): ``mat2d`` (Matryoshka over
384/256/128/64/32 dims and every depth), ``hash`` (BPR codes of 384 bits), ``contrastive``
(InfoNCE alone, the control) and ``mae_contrastive`` (RetroMAE over mined chunks for a fixed
share of the time, then exactly the control's contrastive steps).
Then every benchmark text and query is embedded with each model (the engine's own
``SentenceTransformerEncoder`` on CUDA), and each query's top 100 rows of its repository or
corpus are ranked there under every view (a dims prefix, the first 3 layers, sign codes,
codes rescored); only those rankings come back. Here they are scored exactly as the benchmarks
score the dense stage: semble through ``Index.search_many`` with the rankings as a frozen
first stage (hit assembly and semble's scorer), CoSQA dev and SciFact train by documents.

The defaults are the measured run's (learning rate 2e-5, float32): a first run at 1e-4 with
bf16 autocast (``--lr 1e-4 --bf16``) ruined every model (benchmarks/RESULTS.md, retention).

    # here: queries, row maps of the kept indexes and a sample of mined chunks
    python benchmarks/gpu_retention.py export --trees TREES --repo-index IDX_HALF_HYB \\
        --beir-index RANK_IDX --beir DATA/cosqa:dev --beir DATA/scifact:train \\
        --texts .bench-carry/texts.parquet --chunks CHUNKS.jsonl.xz --out .carry-ret
    # GPU call 1 (carry .carry-half): the base, unpacked to float32 where call 2 finds it
    python benchmarks/gpu_retention.py unpack --carry .carry-half --work SCRATCH
    # GPU call 2, right after (carry .carry-ret, .carry-e1/pairs.json.xz, texts)
    python benchmarks/gpu_retention.py gpu --ret .carry-ret --pairs .carry-e1/pairs.json.xz \\
        --texts .bench-carry/texts.parquet --work SCRATCH --out $OUT --jobs mat2d hash \\
        --max-steps 80 --no-dev --skip-base --train-s 110 --grace-s 15
    # here: code-minilm-v1's own rankings from its cached vectors, then the scores
    python benchmarks/gpu_retention.py baseline --ret .carry-ret --texts ... --cache CACHE \\
        --out BACK/rank-base-cpu.npz
    python benchmarks/gpu_retention.py score --ret .carry-ret --trees TREES \\
        --repo-index IDX_HALF_HYB --beir-index RANK_IDX --rankings BACK/rank-*.npz \\
        --out benchmarks/results/retention/retention.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
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

from gpu_code_encoder import _read_xz_json, _say, _unpack_base, _write_xz_json  # noqa: E402

DEPTH = 100  # the dense stage's depth in search_many (retriever.reader._FUSION_DEPTH)
RESCORE = 4  # the binary index's default rescore_multiplier (indexing/binary.py)
JOBS = ("mat2d", "hash", "contrastive", "mae_contrastive")
# What each model is ranked under: (layers, views); views name a dims prefix ("f128"), sign
# codes ("codes"), codes whose 400 Hamming candidates are rescored with float query x float
# document ("codes_rescore", the binary index's rescore="float") or float query x document
# code ("codes_asym", BPR's reranking: no float document vectors kept).
ALL_DIMS = ("f384", "f256", "f128", "f64", "f32")
CODES = ("codes", "codes_rescore", "codes_asym")
PLAN = {
    "base": ((None, ALL_DIMS + CODES), (3, ("f384",))),
    "mat2d": ((None, ALL_DIMS + CODES), (3, ("f384", "f128"))),
    "hash": ((None, ("f384",) + CODES),),
    "contrastive": ((None, ("f384", "f128", "f64") + CODES),),
    "mae_contrastive": ((None, ("f384", "f128", "f64") + CODES),),
}


# ---------------------------------------------------------------- ranking (GPU and here)

def rank_views(docs, queries, groups: list[tuple[slice, np.ndarray]], views, *,
               k: int = DEPTH) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each query's top ``k`` rows of its group under each view.

    Args:
        docs: ``(n, d)`` float32 unit rows of every text (a torch tensor, any device).
        queries: ``(q, d)`` float32 unit rows of every query, grouped as ``groups`` says.
        groups: ``(query slice, text rows of the group's chunk table in row order)``.
        views: names as in :data:`PLAN`.

    Returns:
        ``{view: (ids, scores)}``: ``(q, k)`` int32 positions in the group's rows (-1 padding)
        and float16 scores. Code scores tie often: ties go to the lower row.
    """
    import torch

    out = {v: (np.full((len(queries), k), -1, np.int32), np.zeros((len(queries), k), np.float16))
           for v in views}
    for qs, rows in groups:
        d_all = docs[torch.as_tensor(rows, device=docs.device, dtype=torch.long)]
        q_all = queries[qs]
        n = len(rows)
        order = torch.arange(n, device=docs.device, dtype=torch.float64)
        for view in views:
            if view.startswith("f"):
                dims = int(view[1:])
                qv = torch.nn.functional.normalize(q_all[:, :dims], dim=1)
                dv = torch.nn.functional.normalize(d_all[:, :dims], dim=1)
                scores, ids = torch.topk(qv @ dv.T, min(k, n), dim=1)
            else:
                qc, dc = (q_all > 0).float() * 2 - 1, (d_all > 0).float() * 2 - 1
                hamming = qc @ dc.T  # bits agreeing minus bits differing: exact integers
                # Ties to the lower row: float64 keys hold score * (n + 1) - row exactly.
                keys = hamming.double() * (n + 1) - order
                depth = min(k if view == "codes" else k * RESCORE, n)
                _, ids = torch.topk(keys, depth, dim=1)
                scores = torch.gather(hamming, 1, ids)
                if view != "codes":
                    other = d_all if view == "codes_rescore" else dc / dc.shape[1] ** 0.5
                    exact = torch.einsum("qd,qcd->qc", q_all, other[ids])
                    scores, pick = torch.topk(exact, min(k, depth), dim=1)
                    ids = torch.gather(ids, 1, pick)
            width = ids.shape[1]
            out[view][0][qs, :width] = ids.int().cpu().numpy()
            out[view][1][qs, :width] = scores.float().cpu().numpy().astype(np.float16)
    return out


def load_ret(ret: Path) -> tuple[list[str], list[str], list[tuple[str, slice, np.ndarray]]]:
    """The exported queries (group, text) and groups (name, query slice, text rows)."""
    import pyarrow.parquet as pq

    table = pq.read_table(ret / "queries.parquet").to_pydict()
    names, texts = table["group"], table["text"]
    maps = np.load(ret / "groups.npz")
    groups, start = [], 0
    for name in json.loads((ret / "groups.json").read_text())["order"]:
        count = sum(1 for _ in range(start, len(names)) if names[_] == name)
        if names[start:start + count] != [name] * count:
            raise SystemExit(f"queries of {name} are not contiguous in queries.parquet")
        groups.append((name, slice(start, start + count), maps[name]))
        start += count
    return names, texts, groups


def write_rankings(path: Path, ranked: dict[str, dict[str, tuple]], info: dict) -> None:
    arrays = {}
    for prefix, views in ranked.items():
        for view, (ids, scores) in views.items():
            arrays[f"{prefix}{view}.ids"], arrays[f"{prefix}{view}.scores"] = ids, scores
    arrays["info"] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
    np.savez_compressed(path, **arrays)


# ---------------------------------------------------------------- export (here)

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


# ---------------------------------------------------------------- training (GPU)

def _pairs(pairs: Path, limit: int = 0):
    packed = _read_xz_json(pairs)
    codes, rows = packed["codes"], packed["rows"]
    if limit:  # a smoke test's sample, every k-th row
        rows = rows[:: max(1, len(rows) // limit)][:limit]
    train = [(q, codes[i], tuple(codes[n] for n in negs))
             for i, (q, _, split, negs) in enumerate(rows) if split == "train"]
    dev = [(q, codes[i]) for i, (q, _, split, _) in enumerate(rows) if split == "dev"]
    return train, dev


def _autocast(device: str, enabled: bool):
    import contextlib

    import torch

    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=torch.bfloat16)


def _timed_run(run, settings, out: Path, probe: bool, budget_s: float, cap: int) -> int:
    """Steps that fit ``budget_s``: four probe steps timed (the last two intervals), unless
    ``probe`` is off (then ``cap``)."""
    from dataclasses import replace

    if not probe:
        return cap
    shutil.rmtree(out, ignore_errors=True)
    stamps = []
    run(replace(settings, max_steps=4), out, lambda stage, done, total: stamps.append(
        time.monotonic()) if stage == "train" else None, False)
    step_s = (stamps[-1] - stamps[-3]) / 2
    steps = max(10, min(cap, int(budget_s / step_s)))
    _say(out.name, f"{step_s:.3f} s a step -> {steps} steps")
    return steps


def job(name: str, args) -> None:
    """One training run in its own process (see the module docstring)."""
    from dataclasses import replace

    import torch

    from encoders.train.common import TrainSettings
    from encoders.train.contrastive import train_contrastive
    from encoders.train.hashing import train_hash
    from encoders.train.mae import train_mae
    from encoders.train.matryoshka import train_matryoshka

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    work, base = args.work, str(args.work / "base")
    train_rows, dev_rows = _pairs(args.pairs, args.limit)
    settings = TrainSettings(epochs=1, batch_size=args.batch_size,
                             mini_batch_size=args.batch_size, lr=args.lr, warmup=0.1, seed=0,
                             max_length=args.max_length, checkpoint_every=10**6)
    command = (f"python benchmarks/gpu_retention.py gpu --train-s {args.train_s} "
               f"--batch-size {args.batch_size} --lr {args.lr} ({name})")
    pair_recipe = {"mat2d": lambda **kw: train_matryoshka(layers=True, **kw),
                   "hash": lambda **kw: train_hash(bits=384, gamma=args.gamma, **kw),
                   "contrastive": train_contrastive,
                   "mae_contrastive": train_contrastive}[name]

    def run_pairs(start: str, s, out: Path, progress, dev: bool):
        with _autocast(device, args.bf16):
            return pair_recipe(data=train_rows, dev=dev_rows if dev and args.dev else None,
                               out=out,
                               base=start, settings=s, hard_negatives=1, progress=progress,
                               command=command)

    for stale in [name] + (["mae"] if name == "mae_contrastive" else []):
        shutil.rmtree(work / "models" / stale, ignore_errors=True)  # a rerun, warm machine
    reserve = 25.0  # dev metrics before and after, saving
    deadline = args.deadline
    start = base
    if name == "mae_contrastive":
        texts = _read_xz_json(args.ret / "mae.json.xz")
        if args.limit:
            texts = texts[: args.limit]
        mae_settings = replace(settings, epochs=50, batch_size=args.mae_batch_size, lr=args.lr)

        def run_mae(s, out, progress, dev):
            with _autocast(device, args.bf16):
                return train_mae(texts, out=out, base=base, settings=s,
                                 dev=dev_rows if dev else None, progress=progress,
                                 command=command.replace("(mae_contrastive)", "(mae)"))
        steps = _timed_run(run_mae, mae_settings, work / "probe-mae", args.probe,
                           args.mae_s - 8, args.max_steps)
        run_mae(replace(mae_settings, max_steps=steps), work / "models" / "mae", None, False)
        start = str(work / "models" / "mae")
        wanted = work / "steps-contrastive.json"
        while not wanted.exists():  # the control's count: the same contrastive steps
            time.sleep(0.5)
        steps = json.loads(wanted.read_text())["steps"]
    else:
        # The control leaves the MAE job time for its pretraining (and that job's probe and
        # loads) before the same number of contrastive steps.
        mae_share = args.mae_s + 15 if name == "contrastive" else 0
        budget = deadline - time.time() - reserve - mae_share
        steps = _timed_run(lambda s, out, p, dev: run_pairs(base, s, out, p, dev), settings,
                           work / f"probe-{name}", args.probe, budget, args.max_steps)
        if name == "contrastive":
            (work / "steps-contrastive.json").write_text(json.dumps({"steps": steps}))
    result = run_pairs(start, replace(settings, max_steps=steps), work / "models" / name,
                       None, True)
    _say(name, "done", result.steps, json.dumps(result.manifest["loss"]),
         json.dumps(result.manifest["dev_metrics"]))


# ---------------------------------------------------------------- the GPU call

def gpu(args) -> dict:
    import torch

    started = time.time()
    args.work.mkdir(parents=True, exist_ok=True)
    if not (args.work / "base" / "model.safetensors").exists():
        _unpack_base(args.carry, args.work / "base")
    deadline = started + args.train_s
    common = ["--ret", str(args.ret), "--pairs", str(args.pairs), "--work", str(args.work),
              "--deadline", str(deadline), "--train-s", str(args.train_s),
              "--batch-size", str(args.batch_size), "--lr", str(args.lr),
              "--mae-s", str(args.mae_s), "--mae-batch-size", str(args.mae_batch_size),
              "--gamma", str(args.gamma), "--max-steps", str(args.max_steps),
              "--max-length", str(args.max_length), "--limit", str(args.limit),
              "--threads", str(args.threads)]
    common += ["--bf16"] if args.bf16 else []
    common += ["--probe"] if args.probe else []
    common += [] if args.dev else ["--no-dev"]
    logs = args.work / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    (args.work / "steps-contrastive.json").unlink(missing_ok=True)
    procs = {}
    for name in args.jobs:
        log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed when the job ends
        procs[name] = (subprocess.Popen([sys.executable, __file__, "job", name, *common],
                                        stdout=log, stderr=subprocess.STDOUT), log)
    while any(p.poll() is None for p, _ in procs.values()):
        if time.time() > deadline + args.grace_s:
            for name, (p, _) in procs.items():
                if p.poll() is None:
                    _say("killing", name, "(past the deadline)")
                    p.kill()
            break
        time.sleep(1)
    for name, (p, log) in procs.items():
        p.wait()
        log.close()
        _say(name, "exit", p.returncode, (logs / f"{name}.log").read_text()[-1500:])
    _say("training done")
    models = {} if args.skip_base else {"base": args.work / "base"}
    models.update({n: args.work / "models" / n for n in args.jobs
                   if (args.work / "models" / n / "training.json").exists()})
    summary = embed_and_rank(models, args.texts, args.ret, args.out, args.limit)
    summary["seconds"] = round(time.time() - started, 1)
    summary["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    (logs / "summary.json").write_text(json.dumps(summary, indent=1))
    # At most 8 files come back: five rankings, the hash codes, this archive and the log.
    with tarfile.open(args.out / "runs.tar", "w") as tar:
        for name, folder in models.items():
            if (folder / "training.json").exists():
                tar.add(folder / "training.json", arcname=f"{name}/training.json")
        if (args.work / "models" / "mae" / "training.json").exists():
            tar.add(args.work / "models" / "mae" / "training.json", arcname="mae/training.json")
        for log in logs.iterdir():
            tar.add(log, arcname=f"logs/{log.name}")
    return summary


def embed_and_rank(models: dict[str, Path], texts_file: Path, ret: Path, out: Path,
                   limit: int) -> dict:
    """Embed the texts and queries with each model (and its first layers), rank every view."""
    import pyarrow.parquet as pq
    import torch

    from encoders.sentence import SentenceTransformerEncoder
    from encoders.train.hashing import pack_codes

    device = "cuda" if torch.cuda.is_available() else "cpu"
    _, query_texts, groups = load_ret(ret)
    if limit:  # a smoke test: the three smallest groups
        groups = sorted(groups, key=lambda g: len(g[2]))[:3]
    needed = np.unique(np.concatenate([rows for _, _, rows in groups]))
    column = pq.read_table(texts_file).column("text")
    texts = [column[int(i)].as_py() for i in needed] if limit else column.to_pylist()
    if not limit and len(needed) != len(texts):
        raise SystemExit(f"the groups use {len(needed)} of the {len(texts)} texts")
    plain = [(qs, np.searchsorted(needed, rows)) for _, qs, rows in groups]
    summary = {"groups": [g[0] for g in groups], "texts": len(texts), "models": {}}
    for name, folder in models.items():
        ranked = {}
        for layers, views in PLAN[name]:
            began = time.monotonic()
            encoder = SentenceTransformerEncoder(model=str(folder), device=device, layers=layers,
                                                 batch_size=256, query_threads=None)
            docs = encoder.encode_documents(texts)
            queries = encoder.encode_queries(query_texts)
            if name == "hash" and layers is None:
                np.savez_compressed(out / "hash-codes.npz", rows=needed,
                                    codes=pack_codes(docs))
            ranked[f"L{layers}_" if layers else ""] = rank_views(
                torch.from_numpy(docs).to(device), torch.from_numpy(queries).to(device),
                plain, views)
            summary["models"][f"{name}@{layers or 'all'}"] = round(time.monotonic() - began, 1)
            _say("ranked", name, layers, summary["models"][f"{name}@{layers or 'all'}"])
        write_rankings(out / f"rank-{name}.npz", ranked,
                       {"model": name, "groups": summary["groups"]})
    return summary


# ---------------------------------------------------------------- here: baseline and scores

def baseline(args) -> dict:
    """code-minilm-v1's rankings from the vectors its GPU embedding left in a vector cache."""
    import pyarrow.parquet as pq
    import torch

    from encoders.sentence import SentenceTransformerEncoder
    from indexing.cache import VectorCache

    encoder = SentenceTransformerEncoder(model=args.model)
    hashes = pq.read_table(args.texts, columns=["hash"]).column("hash").to_pylist()
    docs, found = VectorCache(args.cache).lookup(encoder.fingerprint(), encoder.dim, hashes)
    _, query_texts, groups = load_ret(args.ret)
    needed = np.unique(np.concatenate([rows for _, _, rows in groups]))
    if not found[needed].all():
        raise SystemExit(f"{int((~found[needed]).sum())} benchmark texts are not in {args.cache}")
    queries = encoder.encode_queries(query_texts)
    ranked = rank_views(torch.from_numpy(docs), torch.from_numpy(queries),
                        [(qs, rows) for _, qs, rows in groups], PLAN["base"][0][1])
    write_rankings(args.out, {"": ranked}, {"model": "base-cpu", "cache": True})
    return {"queries": len(queries), "views": len(ranked)}


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
            entry = {"semble": round(scored.mean, 4),
                     "tune": round(statistics.fmean(scored.per_repo[n] for n in tune), 4),
                     "check": round(statistics.fmean(scored.per_repo[n] for n in check), 4),
                     "by_language": {k: round(v, 4) for k, v in
                                     sorted(scored.by_language.items())}}
            for name, (qrels, paths) in corpora.items():
                qs = where[name]
                run = _beir_run(ids[qs], values[qs], qids[qs], paths)
                entry[name.removeprefix("beir:")] = round(
                    beir_evaluate(qrels, run, ["ndcg@10"]).mean["ndcg@10"], 4)
            results.setdefault(model, {})[view] = entry
            _say(model, view, json.dumps({k: v for k, v in entry.items()
                                          if k != "by_language"}))
    for views in results.values():  # retention: a view against the same model's full vectors
        full = views.get("f384")
        for entry in views.values():
            if full:
                entry["retention"] = {k: round(entry[k] / full[k], 4) for k in full
                                      if isinstance(full[k], float) and full[k] > 0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return {m: sorted(v) for m, v in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export")
    p.add_argument("--trees", type=Path, required=True)
    p.add_argument("--repo-index", type=Path, required=True)
    p.add_argument("--beir-index", type=Path, required=True)
    p.add_argument("--beir", action="append", default=[], help="FOLDER:SPLIT")
    p.add_argument("--texts", type=Path, required=True)
    p.add_argument("--chunks", type=Path, default=None)
    p.add_argument("--mae-texts", type=int, default=16000)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("unpack")
    p.add_argument("--carry", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    for name in ("gpu", "job"):
        p = sub.add_parser(name)
        if name == "job":
            p.add_argument("name", choices=JOBS)
            p.add_argument("--deadline", type=float, required=True)
        p.add_argument("--ret", type=Path, required=True)
        p.add_argument("--pairs", type=Path, required=True)
        p.add_argument("--texts", type=Path, default=None)
        p.add_argument("--carry", type=Path, default=None, help="the packed base (fallback)")
        p.add_argument("--work", type=Path, required=True)
        p.add_argument("--out", type=Path, default=None)
        p.add_argument("--jobs", nargs="*", default=list(JOBS), choices=JOBS)
        p.add_argument("--train-s", type=float, default=150.0,
                       help="seconds from the start by which training should end")
        p.add_argument("--grace-s", type=float, default=25.0,
                       help="seconds past that before a job still running is killed")
        p.add_argument("--mae-s", type=float, default=45.0, help="seconds of MAE pretraining")
        p.add_argument("--batch-size", type=int, default=256)
        p.add_argument("--mae-batch-size", type=int, default=128)
        p.add_argument("--lr", type=float, default=2e-5)
        p.add_argument("--gamma", type=float, default=0.5)
        p.add_argument("--max-steps", type=int, default=80)
        p.add_argument("--max-length", type=int, default=256)
        p.add_argument("--threads", type=int, default=4)
        p.add_argument("--limit", type=int, default=0, help="use only this many rows (smoke)")
        p.add_argument("--bf16", action="store_true", help="train under bf16 autocast")
        p.add_argument("--probe", action="store_true",
                       help="time four steps first and train as many as the time allows "
                            "(at most --max-steps) instead of --max-steps")
        p.add_argument("--no-dev", dest="dev", action="store_false",
                       help="no dev metrics before and after (saves their time)")
        p.add_argument("--skip-base", action="store_true",
                       help="rank no views of the untrained base (a rerun has them)")
    p = sub.add_parser("baseline")
    p.add_argument("--ret", type=Path, required=True)
    p.add_argument("--texts", type=Path, required=True)
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--model", default="code-minilm-v1")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("score")
    p.add_argument("--ret", type=Path, required=True)
    p.add_argument("--trees", type=Path, required=True)
    p.add_argument("--repo-index", type=Path, required=True)
    p.add_argument("--beir-index", type=Path, required=True)
    p.add_argument("--beir", action="append", default=[], help="FOLDER:SPLIT")
    p.add_argument("--rankings", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "export":
        result = export(args.trees, args.repo_index, args.beir_index, args.beir, args.texts,
                        args.chunks, args.out, args.mae_texts)
    elif args.command == "unpack":
        started = time.monotonic()
        _unpack_base(args.carry, args.work / "base")
        result = {"seconds": round(time.monotonic() - started, 1)}
    elif args.command == "job":
        job(args.name, args)
        return 0
    elif args.command == "gpu":
        result = gpu(args)
    elif args.command == "baseline":
        result = baseline(args)
    else:
        result = score(args)
    _say(json.dumps(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    raise SystemExit(main())
