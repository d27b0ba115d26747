"""``retriever train contrastive|matryoshka|hash|mae|reranker``: train a model, one call each.

Each encoder command passes its options to one recipe of :mod:`encoders.train` and renders the
result; the trained folder then works as ``retriever index PATH --model OUT``. ``reranker``
mines hard negatives with this engine's BM25 and trains the code cross-encoder
(:func:`retriever.rerankers.train`); its folder works as ``--rerank OUT``.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from retriever.cli.common import ErrorHandlingGroup, err, out, progress_bar, silenced
from retriever.errors import InputError
from retriever.text_safety import printable

app = typer.Typer(
    cls=ErrorHandlingGroup,
    help="Train encoders (contrastive, Matryoshka, binary hash, MAE pretraining) and the code "
         "reranker.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# Shared by every recipe's command; typer reads these defaults without changing them.
DATA = typer.Option(..., "--data", help="Pairs JSONL ({query, positive, negatives}) or texts "
                    "JSONL ({text}) for mae, .jsonl or .jsonl.xz, or a folder holding "
                    "pairs.jsonl[.xz] / chunks.jsonl[.xz].")
BASE = typer.Option("all-MiniLM-L6-v2", "--base",
                    help="Base model: a packaged name or a sentence-transformers folder.")
OUT = typer.Option(..., "--out", help="Folder for the trained model (new or empty, or an "
                   "unfinished run's with --resume).")
DEV = typer.Option(None, "--dev", help="Dev pairs JSONL [the data's split=dev rows].")
EPOCHS = typer.Option(1, "--epochs", help="Passes over the data.")
BATCH = typer.Option(64, "--batch-size", help="Examples a step (in-batch negatives).")
MINI = typer.Option(32, "--mini-batch-size", help="Texts a forward pass where gradients are "
                    "cached (memory of this, negatives of --batch-size).")
LR = typer.Option(2e-5, "--lr", help="Peak learning rate (warm-up, then linear decay).")
SEED = typer.Option(0, "--seed", help="Seed of data order, dropout and masking.")
MAX_LENGTH = typer.Option(256, "--max-length", help="Token limit a text.")
MAX_STEPS = typer.Option(None, "--max-steps", help="Stop after this many steps.")
EVERY = typer.Option(200, "--checkpoint-every", help="Steps between checkpoints.")
LORA = typer.Option(False, "--lora/--no-lora", help="Train a LoRA adapter (needs peft), "
                    "merged into the saved model and also kept in OUT/lora.")
LORA_RANK = typer.Option(16, "--lora-rank", help="The LoRA adapter's rank.")
RESUME = typer.Option(False, "--resume", help="Continue the unfinished run in --out.")
DEVICE = typer.Option(None, "--device", help="cpu, cuda, cuda:1... [cuda when present].")
QUIET = typer.Option(False, "--quiet", "-q", help="Only the result line.")
NEGATIVES = typer.Option(None, "--hard-negatives", help="Negatives a query [the data's, at "
                         "most 3; missing ones are random other positives].")
SCALE = typer.Option(20.0, "--scale", help="Inverse temperature of the InfoNCE softmax.")
_STAGES = {"train": "Training", "dev": "Dev metrics"}


def _settings(**values):
    from encoders.train.common import TrainSettings

    return TrainSettings(**values)


def _run(ctx: typer.Context, recipe: str, options: dict, common: dict) -> None:
    from encoders.train import contrastive, hashing, mae, matryoshka

    train = {"contrastive": contrastive.train_contrastive, "matryoshka":
             matryoshka.train_matryoshka, "hash": hashing.train_hash, "mae": mae.train_mae}
    quiet, dev = common.pop("quiet"), common.pop("dev")
    data, base, out_dir, resume = (common.pop(k) for k in ("data", "base", "out", "resume"))
    settings = _settings(**common)
    # The raw command line, as the outermost group kept it (retriever.cli.common).
    command = shlex.join(["retriever", *ctx.find_root().meta.get("retriever.args", [])])
    with silenced(quiet), progress_bar(not quiet) as bars:
        progress = None if bars is None else (
            lambda stage, done, total: bars(_STAGES.get(stage, stage), done, total))
        result = train[recipe](data, out=out_dir, base=base, settings=settings, dev=dev,
                               progress=progress, resume=resume, command=command, **options)
    losses = result.manifest["loss"]
    resumed = f", resumed at step {result.resumed_from}" if result.resumed_from else ""
    out.print(Text(printable(
        f"Trained {recipe} for {result.steps} steps{resumed}; loss {losses['first']:.4f} -> "
        f"{losses['last_tenth_mean']:.4f}. Saved to {result.out}; use it with "
        f"`retriever index PATH --model {result.out}`."
    )))
    metrics = result.manifest.get("dev_metrics")
    if metrics and not quiet:
        table = Table(title="Dev metrics")
        for column in ("metric", "base", "trained"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for name, value in metrics["trained"].items():
            table.add_row(name, f"{metrics['base'].get(name, float('nan')):.4f}", f"{value:.4f}")
        err.print(table)


@app.command("contrastive")
def contrastive_command(
    ctx: typer.Context, data: Path = DATA, base: str = BASE, out: Path = OUT,
    dev: Path | None = DEV, epochs: int = EPOCHS, batch_size: int = BATCH,
    mini_batch_size: int = MINI, lr: float = LR, seed: int = SEED, max_length: int = MAX_LENGTH,
    max_steps: int | None = MAX_STEPS, checkpoint_every: int = EVERY, lora: bool = LORA,
    lora_rank: int = LORA_RANK, resume: bool = RESUME, device: str | None = DEVICE,
    quiet: bool = QUIET, hard_negatives: int | None = NEGATIVES, scale: float = SCALE,
) -> None:
    """InfoNCE over in-batch and hard negatives, large batches through gradient caching."""
    common = {k: v for k, v in locals().items() if k not in ("ctx", "hard_negatives", "scale")}
    _run(ctx, "contrastive", {"hard_negatives": hard_negatives, "scale": scale}, common)


@app.command("matryoshka")
def matryoshka_command(
    ctx: typer.Context, data: Path = DATA, base: str = BASE, out: Path = OUT,
    dev: Path | None = DEV, epochs: int = EPOCHS, batch_size: int = BATCH,
    mini_batch_size: int = MINI, lr: float = LR, seed: int = SEED, max_length: int = MAX_LENGTH,
    max_steps: int | None = MAX_STEPS, checkpoint_every: int = EVERY, lora: bool = LORA,
    lora_rank: int = LORA_RANK, resume: bool = RESUME, device: str | None = DEVICE,
    quiet: bool = QUIET, hard_negatives: int | None = NEGATIVES, scale: float = SCALE,
    dims: str | None = typer.Option(None, "--dims", help="Nested dimensions, comma-separated "
                                    "[those of 384,256,128,64,32 that fit, and the full]."),
    layers: bool = typer.Option(False, "--layers/--no-layers",
                                help="Also train every shallower depth (2D Matryoshka)."),
    layer_weights: str | None = typer.Option(
        None, "--layer-weights", help="With --layers: DEPTH=WEIGHT,... of the shallower depths "
        "to train at every step, e.g. 3=3,4=1 (the full depth weighs 1) [a random depth a "
        "step]."),
    dim_weights: str | None = typer.Option(
        None, "--dim-weights", help="DIMS=WEIGHT,... of the nested losses, e.g. 128=1.5,64=2 "
        "[1 each]."),
) -> None:
    """InfoNCE at nested output prefixes (and, with --layers, at every depth)."""
    options = {"hard_negatives": hard_negatives, "scale": scale, "dims": _dims(dims),
               "layers": layers, "layer_weights": _weights("--layer-weights", layer_weights),
               "dim_weights": _weights("--dim-weights", dim_weights)}
    common = {k: v for k, v in locals().items() if k not in ("ctx", "options", *options)}
    _run(ctx, "matryoshka", options, common)


@app.command("hash")
def hash_command(
    ctx: typer.Context, data: Path = DATA, base: str = BASE, out: Path = OUT,
    dev: Path | None = DEV, epochs: int = EPOCHS, batch_size: int = BATCH,
    mini_batch_size: int = MINI, lr: float = LR, seed: int = SEED, max_length: int = MAX_LENGTH,
    max_steps: int | None = MAX_STEPS, checkpoint_every: int = EVERY, lora: bool = LORA,
    lora_rank: int = LORA_RANK, resume: bool = RESUME, device: str | None = DEVICE,
    quiet: bool = QUIET, hard_negatives: int | None = NEGATIVES, scale: float = SCALE,
    bits: int | None = typer.Option(None, "--bits", help="Code length, a multiple of 8 "
                                    "[the base model's width]."),
    margin: float = typer.Option(2.0, "--margin", help="Binary ranking margin (2: one bit)."),
) -> None:
    """BPR-style hash layer: sign bits for the binary indexes (--index-spec BFlat)."""
    options = {"hard_negatives": hard_negatives, "scale": scale, "bits": bits, "margin": margin}
    common = {k: v for k, v in locals().items() if k not in ("ctx", "options", *options)}
    _run(ctx, "hash", options, common)


@app.command("mae")
def mae_command(
    ctx: typer.Context, data: Path = DATA, base: str = BASE, out: Path = OUT,
    dev: Path | None = DEV, epochs: int = EPOCHS, batch_size: int = BATCH,
    mini_batch_size: int = MINI, lr: float = LR, seed: int = SEED, max_length: int = MAX_LENGTH,
    max_steps: int | None = MAX_STEPS, checkpoint_every: int = EVERY, lora: bool = LORA,
    lora_rank: int = LORA_RANK, resume: bool = RESUME, device: str | None = DEVICE,
    quiet: bool = QUIET,
    encoder_mask: float = typer.Option(0.3, "--encoder-mask", help="Share of tokens masked "
                                       "for the encoder."),
    decoder_mask: float = typer.Option(0.5, "--decoder-mask", help="Share of tokens each "
                                       "decoder position may not see."),
) -> None:
    """RetroMAE pretraining over raw texts (code chunks); only the encoder is saved."""
    options = {"encoder_mask": encoder_mask, "decoder_mask": decoder_mask}
    common = {k: v for k, v in locals().items() if k not in ("ctx", "options", *options)}
    _run(ctx, "mae", options, common)


def _dims(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--dims takes comma-separated integers such as 384,256,128; got "
                         f"{text!r}.") from None


def _weights(option: str, text: str | None) -> dict[int, float] | None:
    """``{int: float}`` from ``"3=3,4=1.5"``; None when the option is not given."""
    if text is None:
        return None
    found = {}
    for part in (p.strip() for p in text.split(",")):
        key, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError(part)
            found[int(key)] = float(value)
        except ValueError:
            raise InputError(f"{option} takes KEY=WEIGHT pairs separated by commas, such as "
                             f"3=3,4=1; got {text!r}.") from None
    return found


RERANK_DATA = typer.Option(..., "--data", help="Pairs JSONL ({query, positive[, negatives]}), "
                           ".jsonl or .jsonl.xz, or a folder holding pairs.jsonl[.xz].")
RERANK_OUT = typer.Option(..., "--out", help="A new or empty folder for the reranker.")


@app.command("reranker")
def reranker_command(
    ctx: typer.Context, data: Path = RERANK_DATA, base: str = BASE, out: Path = RERANK_OUT,
    dev: Path | None = DEV, epochs: int = EPOCHS,
    batch_size: int = typer.Option(32, "--batch-size", help="Queries a step, each with its "
                                   "positive and negatives."),
    negatives: int = typer.Option(7, "--negatives", help="Hard negatives a query (the data's "
                                  "first, then BM25-mined)."),
    mine_depth: int = typer.Option(30, "--mine-depth", help="BM25 hits looked at a query when "
                                   "mining negatives."),
    lr: float = typer.Option(2e-4, "--lr", help="Peak learning rate (warm-up, then linear "
                             "decay)."),
    seed: int = SEED, max_length: int = MAX_LENGTH, max_steps: int | None = MAX_STEPS,
    lora_rank: int = typer.Option(32, "--lora-rank", help="Rank of the LoRA deltas."),
    device: str | None = DEVICE, quiet: bool = QUIET,
) -> None:
    """Code cross-encoder: LoRA over the base, listwise loss over BM25-mined hard negatives."""
    from encoders.train.reranker import RerankSettings
    from retriever.rerankers import train

    settings = RerankSettings(epochs=epochs, batch_size=batch_size, negatives=negatives, lr=lr,
                              seed=seed, max_length=max_length, max_steps=max_steps,
                              rank=lora_rank, alpha=2.0 * lora_rank, device=device)
    command = shlex.join(["retriever", *ctx.find_root().meta.get("retriever.args", [])])
    with silenced(quiet), progress_bar(not quiet) as bars:
        progress = None if bars is None else (
            lambda stage, done, total: bars({"mine": "Mining negatives"}.get(
                stage, _STAGES.get(stage, stage)), done, total))
        manifest = train(data, out=out, base=base, settings=settings, dev=dev,
                         depth=mine_depth, progress=progress, command=command)
    _report_reranker(manifest, out, quiet)


def _report_reranker(manifest: dict, out_dir: Path, quiet: bool) -> None:
    record = manifest["training"]
    out.print(Text(printable(
        f"Trained the reranker for {record['steps']} steps; loss {record['loss']['first']:.4f} "
        f"-> {record['loss']['last_tenth_mean']:.4f}. Saved to {out_dir}; use it with "
        f"`retriever search QUERY --rerank {out_dir}`."
    )))
    if record.get("dev") and not quiet:
        table = Table(title="Dev (positive among its hard negatives)")
        for column in ("metric", "base", "trained"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for name in ("mrr", "acc@1"):
            table.add_row(name, f"{record['dev']['base'][name]:.4f}",
                          f"{record['dev']['trained'][name]:.4f}")
        err.print(table)


@app.command("head")
def head_command(
    data: Path = typer.Option(..., "--data", help="Pairs JSONL or a folder holding "
                              "pairs.jsonl[.xz]; training rows only (the dev split is left)."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for KIND.npz; a local model's "
                                 "heads/ folder makes them available by name."),
    kind: list[str] = typer.Option(["pca", "itq"], "--kind", help="pca (prefixes for dims=), "
                                   "itq (sign bits for the binary index kinds) or prefix (PCA "
                                   "then InfoNCE at nested prefixes); repeatable. layer: the "
                                   "map of a --layers cut to the full depth (alone)."),
    layers: int | None = typer.Option(None, "--layers", help="With --kind layer: the depth "
                                      "the head is for (the model's first N layers)."),
    model: str | None = typer.Option(None, "--model", help="The model the heads are for "
                                     "[the default model]."),
    pairs: int = typer.Option(3000, "--pairs", help="Training pairs embedded (each gives its "
                              "query's and its code's vector)."),
    seed: int = SEED,
    vectors: Path | None = typer.Option(None, "--vectors", help="An .npz keeping the embedded "
                                        "pairs: reused when it holds them, else written."),
    force: bool = typer.Option(False, "--force", help="Replace existing head files in --out."),
    quiet: bool = QUIET,
) -> None:
    """Fit linear heads on a model's vectors (the model is not trained; no GPU); use one with
    `retriever index PATH --encoder-option head=FILE`."""
    from encoders.sentence import DEFAULT_MODEL
    from encoders.train.heads import fit_heads, fit_layer_head

    if ("layer" in kind) != (layers is not None) or ("layer" in kind and len(set(kind)) > 1):
        raise InputError("--kind layer goes alone and with --layers N (the depth it maps to the "
                         "full one); --layers needs --kind layer.")
    files = [f"layer{layers}" if k == "layer" else k for k in kind]
    there = [out_dir / f"{k}.npz" for k in files if (out_dir / f"{k}.npz").exists()]
    if there and not force:
        raise InputError(f"{', '.join(map(str, there))} exists; pass --force to replace it, or "
                         "another --out.")
    name = model or DEFAULT_MODEL
    with silenced(quiet), progress_bar(not quiet) as bars:
        progress = None if bars is None else (
            lambda stage, done, total: bars(f"Embedding {stage}", done, total))
        if layers is not None:
            heads = {f"layer{layers}": fit_layer_head(data, out=out_dir, model=name,
                                                      layers=layers, count=pairs, seed=seed,
                                                      progress=progress)}
        else:
            heads = fit_heads(data, out=out_dir, kinds=kind, model=name, count=pairs,
                              seed=seed, vectors=vectors, progress=progress)
    cut = "" if layers is None else f" --encoder-option layers={layers}"
    for fitted, head in heads.items():
        path = out_dir / f"{fitted}.npz"
        out.print(Text(printable(
            f"Fitted the {fitted} head for {name} on {head.info['vectors']:,} vectors: {path}; "
            f"use it with `retriever index PATH --model {name}{cut} --encoder-option "
            f"head={path}`."
        )))
