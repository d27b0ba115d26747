"""Matryoshka, hash and MAE runs on the code model, ranked on the GPU, scored here (issue 10).

Starting from code-minilm-v1 (its merged folder, carried as ``gpu_code_encoder.py`` packs a
base), one GPU call trains up to four models side by side on the 59k (doc -> code) pairs, each
with the same settings and fixed steps (or, with ``--probe``, as many as its share of the time
allows, timed on four probe steps; that overestimated the step time 2.7x under four jobs'
start-up, so the measured runs fix the steps): ``mat2d`` (Matryoshka over 384/256/128/64/32
dims and every depth, ``--layer-weights`` and ``--dim-weights``) and ``hash`` (BPR codes of 384
bits) for ``--max-steps``; ``contrastive`` (InfoNCE alone, the control) and
``mae_contrastive`` (``--mae-steps`` of RetroMAE over mined chunks, then exactly the control's
contrastive steps) for ``--pair-steps``. The jobs run in ``retention_jobs.py``; the steps that
run here (export, baseline, score) in ``retention_local.py``.
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
    # GPU call 2, right after (carry .carry-ret, .carry-e1/pairs.json.xz, texts): one epoch
    # (223 steps) of mat2d and hash, 160 contrastive steps of the MAE pair after 250 MAE steps
    python benchmarks/gpu_retention.py gpu --ret .carry-ret --pairs .carry-e1/pairs.json.xz \\
        --texts .bench-carry/texts.parquet --work SCRATCH --out $OUT --max-steps 223 \\
        --pair-steps 160 --mae-steps 250 --no-dev --skip-base --train-s 250 --grace-s 25
    # run 4: the distillation anchor (encoders/train/depth_distill.py), three jobs of 2 epochs
    python benchmarks/gpu_retention.py gpu --ret .carry-ret --pairs .carry-e1/pairs.json.xz \\
        --texts .bench-carry/texts.parquet --carry .carry-e1 --work SCRATCH --out $OUT \\
        --jobs distill distill_l3 distill_lora --no-dev --train-s 400 --grace-s 40
    # run 5: two LoRA anchored runs (rank 32 and 64) for 4 epochs, depth 3 weighted 2, and
    # each depth 3 also through an affine layer head fitted on 4,000 training pairs' texts
    python benchmarks/gpu_retention.py gpu --ret .carry-ret --pairs .carry-e1/pairs.json.xz \\
        --texts .bench-carry/texts.parquet --carry .carry-e1 --work SCRATCH --out $OUT \\
        --jobs distill_lora distill_lora64 --distill-epochs 4 --distill-layer-weights 3=2 \\
        --layer-head 4000 --skip-base --no-dev --train-s 500 --grace-s 15 --threads 4
    # a dry run of the same on the CPU: a random-weight 6-layer BERT of width 384 saved as
    # SCRATCH/base (so nothing is unpacked), a few rows, the three smallest groups
    python benchmarks/gpu_retention.py gpu ... --work SCRATCH --max-steps 3 --pair-steps 2 \\
        --mae-steps 3 --batch-size 8 --mae-batch-size 8 --max-length 32 --limit 64 --no-dev
    # here: code-minilm-v1's own rankings from its cached vectors (with --fit-pairs also the
    # codes of a centre and ITQ rotation and the PCA prefixes fitted on 3,000 training pairs),
    # then the scores, and paired differences of models or views
    python benchmarks/gpu_retention.py baseline --ret .carry-ret --texts ... --cache CACHE \\
        --fit-pairs .carry-e1/pairs.json.xz --fit 3000 --out BACK/rank-base-cpu-heads.npz
    python benchmarks/gpu_retention.py score --ret .carry-ret --trees TREES \\
        --repo-index IDX_HALF_HYB --beir-index RANK_IDX --rankings BACK/rank-*.npz \\
        --compare mae_contrastive:contrastive --compare base-cpu/pca_f128:base-cpu/f128 \\
        --out benchmarks/results/retention/retention.json
"""

from __future__ import annotations

import argparse
import json
import os
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

from gpu_code_encoder import _say, _unpack_base  # noqa: E402

DEPTH = 100  # the dense stage's depth in search_many (retriever.reader._FUSION_DEPTH)
RESCORE = 4  # the binary index's default rescore_multiplier (indexing/binary.py)
JOBS = ("mat2d", "hash", "contrastive", "mae_contrastive", "distill", "distill_l3",
        "distill_fast", "distill_lora", "distill_lora64")
DEFAULT_JOBS = JOBS[:4]
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
    "distill": ((None, ALL_DIMS + CODES), (3, ("f384", "f128"))),
    "distill_l3": ((None, ("f384",) + CODES), (3, ("f384",))),
    "distill_fast": ((None, ("f384",) + CODES), (3, ("f384",))),
    "distill_lora": ((None, ("f384",) + CODES), (3, ("f384",))),
    "distill_lora64": ((None, ("f384",) + CODES), (3, ("f384",))),
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
              "--pair-steps", str(args.pair_steps), "--mae-steps", str(args.mae_steps),
              "--layer-weights", args.layer_weights, "--dim-weights", args.dim_weights,
              "--distill", str(args.distill), "--distill-layer-weights",
              args.distill_layer_weights, "--distill-epochs", str(args.distill_epochs),
              "--fast-lr", str(args.fast_lr), "--lora-lr", str(args.lora_lr),
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
    fit = None
    if args.layer_head:
        import random

        from gpu_code_carry import read_pairs
        _, _, train_rows, _ = read_pairs(args.pairs, args.limit)
        picked = random.Random(0).sample(train_rows, min(args.layer_head, len(train_rows)))
        fit = [q for q, _, _ in picked] + [code for _, code, _ in picked]
    summary = embed_and_rank(models, args.texts, args.ret, args.out, args.limit, fit)
    summary["seconds"] = round(time.time() - started, 1)
    summary["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    (logs / "summary.json").write_text(json.dumps(summary, indent=1))
    # Files come back at most 16 MiB each: a LoRA run's adapter (5 MB at rank 32, 11 MB at
    # 64) and layer head go in an archive of their own, the rest in runs.tar.
    with tarfile.open(args.out / "runs.tar", "w") as tar:
        for name, folder in models.items():
            if (folder / "training.json").exists():
                tar.add(folder / "training.json", arcname=f"{name}/training.json")
            own = [(folder / "lora", f"{name}/lora"),
                   (args.out / f"layer-head-{name}.npz", f"{name}/layer-head.npz")]
            own = [(path, arc) for path, arc in own if path.exists()]
            if own:
                with tarfile.open(args.out / f"runs-{name}.tar", "w") as mine:
                    for path, arc in own:
                        mine.add(path, arcname=arc)
                (args.out / f"layer-head-{name}.npz").unlink(missing_ok=True)
        if (args.work / "models" / "mae" / "training.json").exists():
            tar.add(args.work / "models" / "mae" / "training.json", arcname="mae/training.json")
        for log in logs.iterdir():
            tar.add(log, arcname=f"logs/{log.name}")
    return summary


def fit_layer_head(shallow: np.ndarray, full: np.ndarray, ridge: float = 1e-2) -> np.ndarray:
    """The affine map ``[x, 1] @ W`` nearest (least squares, a small ridge) from the shallow
    vectors of some training texts to the same model's full-depth vectors of them:
    ``(d + 1, d)`` float32."""
    x = np.hstack([shallow, np.ones((len(shallow), 1), shallow.dtype)]).astype(np.float64)
    gram = x.T @ x + ridge * np.eye(x.shape[1])
    return np.linalg.solve(gram, x.T @ full.astype(np.float64)).astype(np.float32)


def apply_layer_head(vectors: np.ndarray, head: np.ndarray) -> np.ndarray:
    moved = vectors @ head[:-1] + head[-1]
    return (moved / np.maximum(np.linalg.norm(moved, axis=1, keepdims=True), 1e-12)).astype(
        np.float32)


def embed_and_rank(models: dict[str, Path], texts_file: Path, ret: Path, out: Path,
                   limit: int, fit: list[str] | None = None) -> dict:
    """Embed the texts and queries with each model (and its first layers), rank every view.

    With ``fit`` (training texts, no benchmark text), a model's shallow depth is also ranked
    through a layer head (:func:`fit_layer_head`) fitted on those texts: view ``L3h_f384``."""
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
            if fit and layers is None:
                fit_full = encoder.encode_documents(fit)
            elif fit and layers:
                head = fit_layer_head(encoder.encode_documents(fit), fit_full)
                np.savez(out / f"layer-head-{name}.npz", head=head, layers=layers)
                ranked[f"L{layers}h_"] = rank_views(
                    *(torch.from_numpy(apply_layer_head(v, head)).to(device)
                      for v in (docs, queries)), plain, ("f384",))
            summary["models"][f"{name}@{layers or 'all'}"] = round(time.monotonic() - began, 1)
            _say("ranked", name, layers, summary["models"][f"{name}@{layers or 'all'}"])
        write_rankings(out / f"rank-{name}.npz", ranked,
                       {"model": name, "groups": summary["groups"]})
    return summary


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
        p.add_argument("--jobs", nargs="*", default=list(DEFAULT_JOBS), choices=JOBS)
        p.add_argument("--train-s", type=float, default=150.0,
                       help="seconds from the start by which training should end")
        p.add_argument("--grace-s", type=float, default=25.0,
                       help="seconds past that before a job still running is killed")
        p.add_argument("--mae-s", type=float, default=45.0, help="seconds of MAE pretraining")
        p.add_argument("--batch-size", type=int, default=256)
        p.add_argument("--mae-batch-size", type=int, default=128)
        p.add_argument("--lr", type=float, default=2e-5)
        p.add_argument("--gamma", type=float, default=0.5)
        p.add_argument("--max-steps", type=int, default=223,
                       help="steps of mat2d and hash (223: one epoch of the 57,294 train pairs)")
        p.add_argument("--pair-steps", type=int, default=0,
                       help="contrastive steps of contrastive and mae_contrastive, the same "
                            "for both (0: --max-steps)")
        p.add_argument("--mae-steps", type=int, default=250,
                       help="MAE pretraining steps of mae_contrastive (--mae-batch-size each)")
        p.add_argument("--layer-weights", default="3=3,4=1,5=1,1=0.5,2=0.5",
                       help="mat2d: DEPTH=WEIGHT of the shallower depths trained every step "
                            "(the full depth weighs 1); 'paper': one random depth a step")
        p.add_argument("--dim-weights", default="128=1.5,64=2",
                       help="mat2d: DIMS=WEIGHT of the nested losses ('' : all 1)")
        p.add_argument("--distill", type=float, default=8.0,
                       help="distill jobs: the anchor's weight at each trained depth")
        p.add_argument("--distill-layer-weights", default="3=1",
                       help="distill jobs: DEPTH=WEIGHT of the shallower depths")
        p.add_argument("--distill-epochs", type=int, default=2)
        p.add_argument("--fast-lr", type=float, default=6e-5,
                       help="distill_fast's learning rate (the others take --lr)")
        p.add_argument("--lora-lr", type=float, default=2e-4,
                       help="distill_lora's learning rate (LoRA rank 32)")
        p.add_argument("--max-length", type=int, default=256)
        p.add_argument("--threads", type=int, default=4)
        p.add_argument("--limit", type=int, default=0, help="use only this many rows (smoke)")
        p.add_argument("--bf16", action="store_true", help="train under bf16 autocast")
        p.add_argument("--probe", action="store_true",
                       help="time four steps first and train as many as the time allows "
                            "(at most --max-steps) instead of --max-steps")
        p.add_argument("--no-dev", dest="dev", action="store_false",
                       help="no dev metrics before and after (saves their time)")
        p.add_argument("--layer-head", type=int, default=0, metavar="PAIRS",
                       help="also rank each shallow depth through an affine head fitted on "
                            "this many training pairs' texts (0: none)")
        p.add_argument("--skip-base", action="store_true",
                       help="rank no views of the untrained base (a rerun has them)")
    p = sub.add_parser("baseline")
    p.add_argument("--ret", type=Path, required=True)
    p.add_argument("--texts", type=Path, required=True)
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--model", default="code-minilm-v1")
    p.add_argument("--fit-pairs", type=Path, default=None,
                   help="also rank the codes of a centre and an ITQ rotation fitted on these "
                        "training pairs (views center_codes, itq_codes...)")
    p.add_argument("--fit", type=int, default=3000, help="training pairs to fit them on")
    p.add_argument("--head", type=Path, action="append", default=[], metavar="FILE",
                   help="also rank the views of this head file (`retriever train head`), "
                        "named head_STEM_VIEW; repeatable")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("score")
    p.add_argument("--ret", type=Path, required=True)
    p.add_argument("--trees", type=Path, required=True)
    p.add_argument("--repo-index", type=Path, required=True)
    p.add_argument("--beir-index", type=Path, required=True)
    p.add_argument("--beir", action="append", default=[], help="FOLDER:SPLIT")
    p.add_argument("--rankings", type=Path, nargs="+", required=True)
    p.add_argument("--compare", action="append", default=[], metavar="A:B",
                   help="model A minus model B at every view both have, or MODEL/VIEW minus "
                        "MODEL/VIEW (paired over repositories and queries)")
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "export":
        from retention_local import export

        result = export(args.trees, args.repo_index, args.beir_index, args.beir, args.texts,
                        args.chunks, args.out, args.mae_texts)
    elif args.command == "unpack":
        started = time.monotonic()
        _unpack_base(args.carry, args.work / "base")
        result = {"seconds": round(time.monotonic() - started, 1)}
    elif args.command == "job":
        from retention_jobs import job

        job(args.name, args)
        return 0
    elif args.command == "gpu":
        result = gpu(args)
    elif args.command == "baseline":
        from retention_local import baseline

        result = baseline(args)
    else:
        from retention_local import score

        result = score(args)
    _say(json.dumps(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    raise SystemExit(main())
