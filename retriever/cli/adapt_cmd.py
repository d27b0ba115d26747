"""`retriever adapt PATH`: fit the encoder to one repository with zero labels.

The repository's documented functions become (doc sentence -> code) pairs; a LoRA adapter
trains on those of most files and is measured on the functions of the files held out, each
ranked against every mined function, before and after (:func:`eval.adapt.adapt`).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import typer
from rich.table import Table

from retriever.cli.common import err, out, progress_bar, silenced

_DEFAULT_OUT = Path(".retriever") / "adapted"


def adapt_command(
    path: Path = typer.Argument(Path("."), help="The repository to adapt to."),
    output: Path | None = typer.Option(None, "--out", help="Model folder to write (default: "
                                       "PATH/.retriever/adapted; it must be new or empty)."),
    model: str | None = typer.Option(None, "--model", help="Base model: a packaged name or a "
                                     "sentence-transformers folder (default: the default "
                                     "model)."),
    epochs: int = typer.Option(3, "--epochs", help="Passes over the mined pairs."),
    batch_size: int = typer.Option(32, "--batch-size", help="Pairs a step."),
    lr: float = typer.Option(1e-4, "--lr", help="Peak learning rate."),
    lora_rank: int = typer.Option(16, "--lora-rank", help="The adapter's rank."),
    dev_share: float = typer.Option(0.2, "--dev-share", help="Share of files held out for "
                                    "the before/after measure."),
    max_pairs: int = typer.Option(20_000, "--max-pairs", help="Train on at most this many "
                                  "pairs (a seeded sample)."),
    seed: int = typer.Option(0, "--seed", help="Seeds the split, the order and the adapter."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda... (default: CUDA "
                                      "when present)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress, no library logs."),
) -> None:
    """Mine PATH's documented functions, train a LoRA adapter on them, and report the held-out
    functions' nDCG@10 / MRR@10 / Recall@10 before and after. Use the result with
    `retriever index PATH --model OUT --force`."""
    from encoders.sentence import DEFAULT_MODEL
    from encoders.train.common import TrainSettings
    from eval.adapt import adapt

    target = output if output is not None else path / _DEFAULT_OUT
    settings = TrainSettings(epochs=epochs, batch_size=batch_size,
                             mini_batch_size=min(batch_size, 32), lr=lr, seed=seed, lora=True,
                             lora_rank=lora_rank, device=device)
    with silenced(quiet), progress_bar(not quiet) as progress:
        result = adapt(path, target, base=model or DEFAULT_MODEL, settings=settings,
                       dev_share=dev_share, max_pairs=max_pairs, progress=progress)
    use = f"retriever index {shlex.quote(str(path))} --model {shlex.quote(str(result.out))} --force"
    if as_json:
        typer.echo(json.dumps({
            "out": str(result.out), "base": result.base, "train_pairs": result.train_pairs,
            "held_out_pairs": result.dev_pairs, "corpus": result.corpus,
            "before": result.before, "after": result.after, "steps": result.steps,
            "seconds": result.seconds, "use": use}, indent=2))
        return
    table = Table("held-out functions", "before", "after")
    for key in result.before:
        table.add_row(key, f"{result.before[key]:.4f}", f"{result.after[key]:.4f}")
    out.print(f"Mined {result.train_pairs + result.dev_pairs} documented functions: "
              f"{result.train_pairs} trained on, {result.dev_pairs} held out (ranked among "
              f"all {result.corpus}); {result.steps} steps, {result.seconds:.0f} s.")
    out.print(table)
    if result.after.get("ndcg@10", 0) <= result.before.get("ndcg@10", 0):
        err.print("The adapter did not beat the base model on the held-out functions; keep "
                  "the base model.")
    out.print(f"Model written to {result.out}. Use it with: {use}")
