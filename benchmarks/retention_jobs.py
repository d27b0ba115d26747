"""One training job of the retention benchmark's GPU call, in its own process (issue 10).

``gpu_retention.py gpu`` starts one ``gpu_retention.py job NAME`` a model, side by side:
``mat2d``, ``hash``, ``contrastive`` and ``mae_contrastive`` (see that module's docstring).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from gpu_code_encoder import _read_xz_json, _say, read_pairs

__all__ = ["job"]


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


def _weights(spec: str) -> dict[int, float] | None:
    """``"3=3,4=1"`` -> ``{3: 3.0, 4: 1.0}``; ``""`` or ``"paper"``: None (the recipe default)."""
    if spec in ("", "paper"):
        return None
    pairs = [part.split("=") for part in spec.split(",")]
    return {int(key): float(value) for key, value in pairs}


# The anchored runs: the dims each trains (None: 384/256/128/64/32 at --dim-weights).
DISTILL_JOBS = {"distill": None, "distill_l3": [384], "distill_fast": [384],
                "distill_lora": [384], "distill_lora64": [384]}
LORA_RANKS = {"distill_lora": 32, "distill_lora64": 64}  # the adapter runs: rank a job


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
    _, _, train_rows, dev_rows = read_pairs(args.pairs, args.limit)
    settings = TrainSettings(epochs=1, batch_size=args.batch_size,
                             mini_batch_size=args.batch_size, lr=args.lr, warmup=0.1, seed=0,
                             max_length=args.max_length, checkpoint_every=10**6)
    command = (f"python benchmarks/gpu_retention.py gpu --batch-size {args.batch_size} "
               f"--lr {args.lr} --max-steps {args.max_steps} --pair-steps {args.pair_steps} "
               f"--mae-steps {args.mae_steps} --mae-batch-size {args.mae_batch_size} "
               f"--gamma {args.gamma} --layer-weights '{args.layer_weights}' "
               f"--dim-weights '{args.dim_weights}' --distill {args.distill} "
               f"--distill-layer-weights '{args.distill_layer_weights}' "
               f"--distill-epochs {args.distill_epochs} --fast-lr {args.fast_lr} "
               f"--lora-lr {args.lora_lr} ({name})")
    if name in DISTILL_JOBS:
        dims = DISTILL_JOBS[name]

        def pair_recipe(**kw):
            return train_matryoshka(
                layers=True, layer_weights=_weights(args.distill_layer_weights), dims=dims,
                dim_weights=_weights(args.dim_weights) if dims is None else None,
                distill=args.distill, **kw)
        # Whole epochs of their own, at their own learning rate; distill_lora trains an
        # adapter (a few MB), which is what a shipped model can be.
        lr = args.lora_lr if name in LORA_RANKS else {"distill_fast": args.fast_lr}.get(
            name, args.lr)
        lora = {"lora": True, "lora_rank": LORA_RANKS[name]} if name in LORA_RANKS else {}
        settings = replace(settings, epochs=args.distill_epochs, lr=lr, **lora)
    else:
        pair_recipe = {"mat2d": lambda **kw: train_matryoshka(
                           layers=True, layer_weights=_weights(args.layer_weights),
                           dim_weights=_weights(args.dim_weights), **kw),
                       "hash": lambda **kw: train_hash(bits=384, gamma=args.gamma, **kw),
                       "contrastive": train_contrastive,
                       "mae_contrastive": train_contrastive}[name]

    began = time.monotonic()

    def every_25(stage: str, done: int, total: int) -> None:  # the log's step times
        if stage == "train" and (done % 25 == 0 or done == total):
            _say(name, f"step {done}/{total}", f"{time.monotonic() - began:.1f} s in the job")

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
                           args.mae_s - 8, args.mae_steps)
        run_mae(replace(mae_settings, max_steps=steps), work / "models" / "mae", every_25,
                False)
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
        cap = args.pair_steps or args.max_steps if "contrastive" in name else args.max_steps
        if name in DISTILL_JOBS:
            cap = None  # every step of --distill-epochs
        steps = _timed_run(lambda s, out, p, dev: run_pairs(base, s, out, p, dev), settings,
                           work / f"probe-{name}", args.probe, budget, cap)
        if name == "contrastive":
            (work / "steps-contrastive.json").write_text(json.dumps({"steps": steps}))
    result = run_pairs(start, replace(settings, max_steps=steps), work / "models" / name,
                       every_25, True)
    _say(name, "done", result.steps, json.dumps(result.manifest["loss"]),
         json.dumps(result.manifest["dev_metrics"]))
