"""`retriever info [DIR]`: what an index holds."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

import retriever
from retriever.cli.common import out


def info_command(
    directory: Path = typer.Argument(
        Path(".retriever"), help="Index directory, or a tree with a .retriever index."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Show an index's manifest: source, encoder, chunker, counts and size."""
    info = retriever.open(directory).info()
    if as_json:
        typer.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    encoder = info["encoder"]
    source = info.get("source") or {}
    rows = [
        ("index", f"{info['directory']} ({info['generation']})"),
        ("format", f"{info['format']} v{info['version']}, {info.get('created_by', '')}"),
        ("created", info.get("created_at", "")),
        ("source", f"{source.get('root')} @ {source.get('commit') or '-'}"),
        ("encoder", f"{encoder['name']} {json.dumps(encoder['config'])} dim={encoder['dim']}"),
        ("chunker", f"{info['chunker']['name']} {json.dumps(info['chunker']['config'])}"),
        ("vectors", _vector_index(info["indexes"].get("dense", {}))),
        ("indexes", ", ".join(f"{k}={v['name']} {json.dumps(v['config'])}"
                               for k, v in info["indexes"].items())),
        ("counts", ", ".join(f"{k}={v}" for k, v in info["counts"].items())),
        ("bytes", f"{info['bytes']:,}"),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    out.print(table)


def _vector_index(entry: dict) -> str:
    """``BFlat (faiss-binary, rescore=float x4) in binary/`` for the human view."""
    config = entry.get("config", {})
    extras = []
    if config.get("dims"):
        extras.append(f"dims={config['dims']}")
    if config.get("rescore"):
        extras.append(f"rescore={config['rescore']} x{config.get('rescore_multiplier')}")
    detail = ", ".join([entry.get("name", "?"), *extras])
    return f"{config.get('spec', '?')} ({detail}) in {entry.get('path', 'dense')}/"
