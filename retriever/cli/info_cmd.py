"""`retriever info [DIR]`: what an index holds."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

import retriever
from retriever.cli.common import out
from retriever.payload import describe, skipped_files
from retriever.text_safety import json_text, printable


def info_command(
    directory: Path = typer.Argument(
        Path(".retriever"), help="Index directory, or a tree with a .retriever index."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the manifest as JSON, with every recorded skipped file."
    ),
) -> None:
    """Show an index's manifest: source, encoders, chunker, components, counts, size, and
    the files the build skipped."""
    info = retriever.open(directory).info()
    if as_json:
        typer.echo(json_text(info, sort_keys=True))
        return
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # long paths wrap rather than being cut
    # Text, not str: rich would read "[...]" in a path or config as markup.
    for label, value in describe(info):
        table.add_row(Text(printable(label)), Text(printable(value)))
    out.print(table)
    shown, more = skipped_files(info)
    if shown or more:
        out.print(Text(f"Skipped {len(shown) + more} files:", style="bold"))
    for path, reason in shown:
        out.print(Text(printable(f"  {path}: {reason}")))
    if more:
        out.print(Text(f"  ... and {more} more"))
