"""`retriever search QUERY [PATH]`: answer a query, building or refreshing the index first."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

import retriever
from indexing.tokenize import code_tokens
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
    table = Table(show_lines=True, expand=True, show_header=True)
    table.add_column("#", justify="right", no_wrap=True, style="bold")
    table.add_column("path:lines   symbol   score", ratio=1)
    for rank, hit in enumerate(hits, 1):
        start, lines = _snippet(hit, query)
        title = Text.assemble(
            (f"{hit.path}:{hit.start_line}-{hit.end_line}", "bold cyan"), "   ",
            (hit.symbol or "", "magenta"), "   ", (f"{hit.score:.3f}", "dim"),
        )
        lexer = hit.language if hit.language not in ("text", "document") else "text"
        code = Syntax("\n".join(lines), lexer, line_numbers=True, start_line=start,
                      word_wrap=True, theme="ansi_dark")
        table.add_row(str(rank), Group(title, code))
    out.print(table)


def _snippet(hit, query: str) -> tuple[int, list[str]]:
    """The window of the hit's lines that shares most words with the query.

    Returns the window's first line number and its lines.
    """
    lines = hit.text.splitlines() or [""]
    if len(lines) <= _SNIPPET_LINES:
        return hit.start_line, lines
    wanted = set(code_tokens(query))
    marks = [len(wanted.intersection(code_tokens(line))) for line in lines]
    best = max(range(len(lines) - _SNIPPET_LINES + 1),
               key=lambda i: (sum(marks[i : i + _SNIPPET_LINES]), -i))
    return hit.start_line + best, lines[best : best + _SNIPPET_LINES]
