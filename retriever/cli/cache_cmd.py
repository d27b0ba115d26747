"""``retriever cache info|clear``: the vector cache that index builds share.

Each command makes one call on :class:`indexing.cache.VectorCache` and renders the result.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from indexing.cache import ENV_DIR, VectorCache
from retriever.cli.common import ErrorHandlingGroup, out

app = typer.Typer(
    cls=ErrorHandlingGroup,
    help="The vector cache index builds share, so nothing is embedded twice.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

_DIR_HELP = f"Cache folder (default: ${ENV_DIR}, else $XDG_CACHE_HOME/dense-retriever/vectors)."


def _size(count: int) -> str:
    if count < 1024:
        return f"{count:,} B"
    power = min(4, (count.bit_length() - 1) // 10)
    return f"{count / 1024**power:.1f} {('KiB', 'MiB', 'GiB', 'TiB')[power - 1]}"


@app.command("info")
def info_command(
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help=_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Show where the cache is, its size and cap, and how many vectors each encoder has."""
    info = VectorCache(cache_dir).info()
    if as_json:
        typer.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    if not info["enabled"]:
        out.print(f"The vector cache is off (${ENV_DIR}=off). Unset it, or pass --cache-dir.")
        return
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("cache", info["directory"])
    table.add_row("size", f"{_size(info['bytes'])} of {_size(info['max_bytes'])} "
                          "(least recently used dropped first)")
    table.add_row("segments", f"{info['segments']:,}"
                  + (f" ({info['damaged']} damaged, ignored)" if info["damaged"] else ""))
    table.add_row("vectors", f"{info['vectors']:,}")
    out.print(table)
    if info["fingerprints"]:
        encoders = Table("encoder fingerprint", "dim", "vectors", "segments", "size")
        for fingerprint, row in sorted(info["fingerprints"].items()):
            encoders.add_row(fingerprint, ",".join(map(str, row["dims"])), f"{row['vectors']:,}",
                             f"{row['segments']:,}", _size(row["bytes"]))
        out.print(encoders)


@app.command("clear")
def clear_command(
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help=_DIR_HELP),
    fingerprint: str | None = typer.Option(
        None, "--fingerprint", help="Only the vectors of this encoder (see `cache info`)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete cached vectors (all, or one encoder's); builds then embed everything again."""
    cache = VectorCache(cache_dir)
    if not cache.enabled:
        out.print(f"The vector cache is off (${ENV_DIR}=off): nothing to clear.")
        return
    what = f"the vectors of encoder {fingerprint}" if fingerprint else "all cached vectors"
    if not yes:
        typer.confirm(f"Delete {what} in {cache.directory}?", abort=True)
    freed = cache.clear(fingerprint)
    out.print(f"Freed {_size(freed)} from {cache.directory}.")
