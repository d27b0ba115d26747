"""`retriever watch [PATH]`: keep a tree's index up to date as its files change."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from retriever.cli.common import err, out
from retriever.text_safety import printable
from retriever.watch import DEFAULT_DEBOUNCE_MS, watch


def watch_command(
    path: Path = typer.Argument(Path("."), help="Folder to watch and index."),
    index: Path | None = typer.Option(None, "--index", help="Index directory [PATH/.retriever]."),
    debounce_ms: int = typer.Option(
        DEFAULT_DEBOUNCE_MS, "--debounce-ms", help="Quiet time before changes are indexed."
    ),
    lexical_only: bool | None = typer.Option(
        None, "--lexical-only/--with-vectors",
        help="BM25 only, no vectors and no model [the index's own, else with vectors].",
    ),
    tier: str | None = typer.Option(
        None, "--tier",
        help="Vectors to build: lexical, fast, dense or full [the index's own, else dense].",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print errors only."),
) -> None:
    """Index PATH, then re-index it after every batch of changes (Ctrl-C stops)."""

    def updated(opened) -> None:
        report = opened.last_build
        if quiet or not report.rebuilt:
            return
        out.print(Text(printable(
            f"Indexed {report.files} files into {report.chunks} chunks in "
            f"{report.seconds:.1f}s (embedded {report.embedded}, reused {report.reused})."
        )))
        out.file.flush()  # a long-running command: each line as it happens, even in a pipe

    def failed(exc: Exception) -> None:
        err.print(Text(printable(f"Error: {exc} (still watching)")))

    if not quiet:
        err.print(Text(printable(f"Watching {path.resolve()}; Ctrl-C stops.")))
    try:
        watch(path, index_dir=index, debounce_ms=debounce_ms, on_update=updated,
              on_error=failed, lexical_only=lexical_only, tier=tier)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
