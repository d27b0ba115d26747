"""What the CLI commands share: error handling, consoles, progress."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from click import ClickException
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from retriever.errors import RetrieverError
from retriever.text_safety import printable

__all__ = ["ErrorHandlingGroup", "out", "err", "progress_bar"]

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)

_STAGES = {"chunk": "Chunking files", "embed": "Embedding chunks", "index": "Writing indexes",
           "encode": "Encoding", "search": "Searching", "eval": "Evaluating"}


class ErrorHandlingGroup(TyperGroup):
    """Turns a RetrieverError from any command into ``Error: message`` and exit code 1.

    Only the library's own errors are caught: anything else is a bug and keeps its
    traceback. Messages quote paths and arguments, so their control characters are made
    visible first; click's own usage errors get the same treatment before click prints them.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RetrieverError as exc:
            typer.echo(f"Error: {printable(exc)}", err=True)
            raise typer.Exit(1) from None
        except ClickException as exc:
            exc.message = printable(exc.message)
            raise
        except KeyboardInterrupt:
            typer.echo(
                "Interrupted. The previous index, if any, is unchanged; vectors embedded so "
                "far are kept in the vector cache, so running the same command again resumes.",
                err=True,
            )
            raise typer.Exit(130) from None


@contextlib.contextmanager
def progress_bar(enabled: bool = True) -> Iterator:
    """A ``progress(stage, done, total)`` callback drawing rich bars on stderr."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    ) as bars:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(_STAGES.get(stage, stage), total=total or None)
            bars.update(tasks[stage], completed=done, total=total or None)

        yield update
