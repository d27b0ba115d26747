"""`retriever search QUERY [PATH]`: answer a query, building or refreshing the index first."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

import retriever
import retriever.api
from retriever.cli.common import err, out, progress_bar
from retriever.payload import search_payload, snippet
from retriever.text_safety import json_text, printable


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
    within = None
    if index is not None and path is None:
        opened = retriever.open(index)
    else:
        target = (path or Path(".")).resolve()
        root = target
        if index is None and target.is_dir():
            # From a subfolder of an indexed tree: that index, scoped to the subfolder.
            root = retriever.api.find_root(target) or target
            within = target.relative_to(root).as_posix() if root != target else None
        with progress_bar(not (quiet or as_json)) as progress:
            opened = retriever.index(root, index_dir=index, progress=progress, stale_ok=True)
    if opened.stale:
        err.print(Text(printable(
            f"Note: another process is refreshing the index at {opened.directory}; these "
            "results come from the live generation, which may be behind the tree."
        )))
    hits = opened.search(query, k=k, mode=mode, within=within)
    payload = search_payload(opened, query, hits, mode=mode, k=k)
    if as_json:
        typer.echo(json_text(payload))
    else:
        _render(payload)


def _render(payload: dict) -> None:
    """One card per hit: location, symbol and score, then the best-matching lines.

    Everything indexed is untrusted text: it goes through ``printable`` so that no
    escape sequence in a file name or its content reaches the terminal.
    """
    if not payload["hits"]:
        out.print(Text(f'No results for "{printable(payload["query"])}".'))
        return
    table = Table(show_lines=True, expand=True, show_header=True)
    table.add_column("#", justify="right", no_wrap=True, style="bold")
    table.add_column("path:lines   symbol   score", ratio=1)
    for rank, hit in enumerate(payload["hits"], 1):
        start, lines = snippet(hit, payload["query"])
        title = Text.assemble(
            (printable(f"{hit['path']}:{hit['start_line']}-{hit['end_line']}"), "bold cyan"),
            "   ", (printable(hit["symbol"] or ""), "magenta"),
            "   ", (f"{hit['score']:.3f}", "dim"),
        )
        language = hit["language"]
        lexer = language if language not in ("text", "document") else "text"
        code = Syntax("\n".join(printable(line) for line in lines), lexer, line_numbers=True,
                      start_line=start, word_wrap=True, theme="ansi_dark")
        table.add_row(str(rank), Group(title, code))
    out.print(table)
