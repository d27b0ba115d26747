"""The `retriever` command: a thin layer over the public API."""

from __future__ import annotations

import typer

from retriever.cli.cache_cmd import app as cache_app
from retriever.cli.common import ErrorHandlingGroup
from retriever.cli.eval_cmd import app as eval_app
from retriever.cli.index_cmd import index_command
from retriever.cli.info_cmd import info_command
from retriever.cli.mcp_cmd import mcp_command
from retriever.cli.search_cmd import search_command
from retriever.cli.train_cmd import app as train_app
from retriever.cli.watch_cmd import watch_command

__all__ = ["app", "main"]

app = typer.Typer(
    cls=ErrorHandlingGroup,
    help="Dense + lexical code search: index a tree, then search it.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.command("index")(index_command)
app.command("search")(search_command)
app.command("info")(info_command)
app.command("watch")(watch_command)
app.command("mcp")(mcp_command)
app.add_typer(eval_app, name="eval")
app.add_typer(train_app, name="train")
app.add_typer(cache_app, name="cache")


def main() -> None:
    """Console-script entry point."""
    app()
