"""The `retriever` command: a thin layer over the public API.

Each subcommand's module is imported when that subcommand runs (or when help lists them):
``retriever search`` does not pay for the imports of ``eval``, ``train`` or ``cache``, which
is a good part of a cold start on a busy machine.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping

import typer

from retriever.cli.common import ErrorHandlingGroup

__all__ = ["app", "main"]

# name -> (module, attribute): a command function, or a typer.Typer of subcommands. In the
# order `retriever --help` lists them.
COMMANDS = {
    "index": ("retriever.cli.index_cmd", "index_command"),
    "search": ("retriever.cli.search_cmd", "search_command"),
    "info": ("retriever.cli.info_cmd", "info_command"),
    "watch": ("retriever.cli.watch_cmd", "watch_command"),
    "mcp": ("retriever.cli.mcp_cmd", "mcp_command"),
    "eval": ("retriever.cli.eval_cmd", "app"),
    "train": ("retriever.cli.train_cmd", "app"),
    "cache": ("retriever.cli.cache_cmd", "app"),
    "adapt": ("retriever.cli.adapt_cmd", "adapt_command"),
}


def _load(name: str) -> typer.core.TyperCommand | typer.core.TyperGroup:
    """The click command of one subcommand, built from its module on first use."""
    module, attribute = COMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class _LazyCommands(MutableMapping):
    """The group's ``commands`` mapping: every name is known at once, each command is built
    when it is first looked up (click and typer only ever reach commands through it)."""

    def __init__(self, loaded: MutableMapping) -> None:
        self._loaded = dict(loaded)

    def __getitem__(self, name: str):
        if name not in self._loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            self._loaded[name] = _load(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS or name in self._loaded

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._loaded if name not in COMMANDS)

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._loaded))


class LazyGroup(ErrorHandlingGroup):
    """The top-level group: :class:`ErrorHandlingGroup` whose subcommands load lazily."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _LazyCommands(self.commands)

    def list_commands(self, ctx) -> list[str]:
        return list(self.commands)


app = typer.Typer(
    cls=LazyGroup,
    help="Dense + lexical code search: index a tree, then search it.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Dense + lexical code search: index a tree, then search it."""


def main() -> None:
    """Console-script entry point."""
    app()
