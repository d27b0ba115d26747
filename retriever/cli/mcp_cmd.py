"""`retriever mcp [PATH]`: serve the index of a tree to agents over MCP (stdio)."""

from __future__ import annotations

from pathlib import Path

import typer

from retriever.errors import MissingDependencyError
from retriever.watch import DEFAULT_DEBOUNCE_MS


def mcp_command(
    path: Path | None = typer.Argument(
        None, help="Tree to serve [the indexed tree at or above the working folder]."
    ),
    index: Path | None = typer.Option(None, "--index", help="Index directory [PATH/.retriever]."),
    watch: bool = typer.Option(
        False, "--watch/--no-watch", help="Re-index on every change (the watch extra)."
    ),
    debounce_ms: int = typer.Option(
        DEFAULT_DEBOUNCE_MS, "--debounce-ms", help="Quiet time before changes are indexed."
    ),
    lexical_only: bool | None = typer.Option(
        None, "--lexical-only/--with-vectors",
        help="Build without vectors when there is no index yet [the index's own, else with "
             "vectors].",
    ),
    tier: str | None = typer.Option(
        None, "--tier",
        help="Vectors to build: lexical, fast, dense or full [the index's own, else dense].",
    ),
) -> None:
    """Serve search, open, find_related and status to an MCP client over stdio.

    Stdout carries the protocol; nothing else is printed there.
    """
    try:
        from retriever.mcp_server import serve
    except ImportError as exc:
        raise MissingDependencyError(
            f"The MCP server needs the mcp package ({exc.name} is missing): "
            "pip install 'dense-retriever[mcp]'."
        ) from None
    serve(path, index_dir=index, watch=watch, debounce_ms=debounce_ms,
          lexical_only=lexical_only, tier=tier)
