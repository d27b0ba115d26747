"""What the CLI commands share: error handling, consoles, progress, quiet mode."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from retriever.errors import RetrieverError
from retriever.payload import error_payload
from retriever.text_safety import json_text, printable

try:  # typer 0.2x ships its own copy of click; its errors derive from TyperException
    from typer import TyperException as _CommandLineError
except ImportError:  # older typer raises click's own
    from click import ClickException as _CommandLineError

__all__ = ["ErrorHandlingGroup", "out", "err", "progress_bar", "silenced"]

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)

_STAGES = {"chunk": "Chunking files", "count": "Counting tokens", "embed": "Embedding chunks",
           "index": "Writing indexes", "encode": "Encoding", "search": "Searching",
           "eval": "Evaluating"}
# Where the outermost group keeps the raw command line, for the nested ones to read.
_ARGS = "retriever.args"


class ErrorHandlingGroup(TyperGroup):
    """Turns a RetrieverError from any command into ``Error: message`` and exit code 1.

    Only the library's own errors are caught: anything else is a bug and keeps its
    traceback. Messages quote paths and arguments, so their control characters are made
    visible first; click's own usage errors get the same treatment before click prints them.

    A command line with ``--json`` or ``--jsonl`` asked for machine-readable output, so its
    errors are too: one JSON object on stdout (:func:`retriever.payload.error_payload`), exit
    code 1, or click's code (2) for a malformed command line, and nothing on stderr.
    """

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        ctx.meta.setdefault(_ARGS, list(args))  # meta is shared by the nested contexts
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RetrieverError as exc:
            as_json = _json_format(ctx.meta.get(_ARGS, ()))
            if as_json:
                _echo_json_error(error_payload(exc), as_json)
            else:
                typer.echo(f"Error: {printable(exc)}", err=True)
            raise typer.Exit(1) from None
        except _CommandLineError as exc:
            as_json = _json_format(ctx.meta.get(_ARGS, ()))
            if as_json:
                payload = error_payload(exc, kind="UsageError")
                payload["error"]["message"] = exc.format_message()
                _echo_json_error(payload, as_json)
                raise typer.Exit(getattr(exc, "exit_code", 2)) from None
            exc.message = printable(exc.message)
            raise
        except KeyboardInterrupt:
            typer.echo(
                "Interrupted. The previous index, if any, is unchanged; vectors embedded so "
                "far are kept in the vector cache, so running the same command again resumes.",
                err=True,
            )
            raise typer.Exit(130) from None


def _json_format(args: Sequence[str]) -> str | None:
    """``"json"`` or ``"jsonl"`` when the command line asks for it, before any ``--``."""
    chosen = None
    for arg in args:
        if arg == "--":
            break
        if arg in ("--json", "--jsonl"):
            chosen = arg[2:]
    return chosen


def _echo_json_error(payload: dict, as_json: str) -> None:
    typer.echo(json_text(payload, indent=None if as_json == "jsonl" else 2))


@contextlib.contextmanager
def progress_bar(enabled: bool = True) -> Iterator:
    """A ``progress(stage, done, total)`` callback drawing rich bars on stderr.

    Only on a terminal: a log or a pipe gets no bars (nor the blank line they leave).
    """
    if not (enabled and err.is_terminal):
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


@contextlib.contextmanager
def silenced(enabled: bool) -> Iterator[None]:
    """Under ``-q``: the Python warnings and log records of the libraries underneath (torch,
    transformers...) are dropped while the command runs; errors still surface as exceptions.

    Restored on exit, so a command run in-process (tests, an embedding program) leaves the
    caller's warning filters and logging as they were.
    """
    if not enabled:
        yield
        return
    previous = logging.root.manager.disable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)
