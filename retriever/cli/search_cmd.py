"""`retriever search QUERY [PATH]`: answer a query, building or refreshing the index first."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.syntax import Syntax
from rich.table import Table

import retriever
from retriever.cli.common import out, progress_bar

JSON_SCHEMA = "dense-retriever.search/1"
_SNIPPET_LINES = 8


def search_command(
    query: str = typer.Argument(..., help="What to look for, in words or code."),
    path: Path | None = typer.Argument(
        None, help="Source tree; its index is built or refreshed first [.]."
    ),
    index: Path | None = typer.Option(None, "--index", help="Index directory."),
    k: int = typer.Option(10, "-k", "--top", help="Number of results."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid, dense or lexical."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (schema in README)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Search an index. With a PATH (or no --index), the tree's index is refreshed first."""
    if index is not None and path is None:
        opened = retriever.open(index)
    else:
        with progress_bar(not (quiet or as_json)) as progress:
            opened = retriever.index(path or Path("."), index_dir=index, progress=progress)
    hits = opened.search(query, k=k, mode=mode)
    if as_json:
        payload = {
            "schema": JSON_SCHEMA, "query": query, "mode": mode, "k": k,
            "index": str(opened.directory), "hits": [hit.to_dict() for hit in hits],
        }
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    if not hits:
        out.print("No results.")
        return
    table = Table(show_lines=True, expand=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("location", no_wrap=True, style="cyan")
    table.add_column("symbol", style="magenta")
    table.add_column("score", justify="right")
    table.add_column("snippet", ratio=1)
    for rank, hit in enumerate(hits, 1):
        lines = hit.text.splitlines()[:_SNIPPET_LINES]
        lexer = hit.language if hit.language not in ("text", "document") else "text"
        snippet = Syntax("\n".join(lines), lexer, line_numbers=False, word_wrap=True,
                         start_line=hit.start_line, theme="ansi_dark")
        table.add_row(str(rank), f"{hit.path}:{hit.start_line}-{hit.end_line}",
                      hit.symbol or "", f"{hit.score:.3f}", snippet)
    out.print(table)
