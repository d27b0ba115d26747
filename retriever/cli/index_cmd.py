"""`retriever index PATH`: build or refresh an index."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.text import Text

import retriever
import retriever.api
from retriever.cli.common import err, out, progress_bar, silenced
from retriever.text_safety import printable


def index_command(
    path: Path = typer.Argument(Path("."), help="Folder to index."),
    index: Path | None = typer.Option(None, "--index", help="Index directory [PATH/.retriever]."),
    encoder: str | None = typer.Option(
        None, "--encoder",
        help="Registered encoder name [the index's own, else sentence-transformers].",
    ),
    model: str | None = typer.Option(
        None, "--model", help="Model for the encoder: a packaged name or a local folder."
    ),
    force: bool = typer.Option(
        False, "--force", help="Rebuild even if up to date; repairs a damaged index."
    ),
    include_deps: bool | None = typer.Option(
        None, "--include-deps/--no-include-deps",
        help="Also index node_modules, vendor, virtualenvs, build output [the index's own "
             "setting, else no].",
    ),
    max_file_bytes: int | None = typer.Option(
        None, "--max-file-bytes", help="Skip larger files [the index's own, else 1 MiB]."
    ),
    tier: str | None = typer.Option(
        None, "--tier",
        help="Vectors to build: lexical (none), fast (a static encoder), dense (the "
             "transformer) or full (both) [the index's own, else dense]. `retriever search` "
             "on a tree with no index builds fast; --tier full adds the transformer's.",
    ),
    fast_model: str | None = typer.Option(
        None, "--fast-model", help="Static model for the fast tier: a shipped name or a folder."
    ),
    lexical_only: bool | None = typer.Option(
        None, "--lexical-only/--with-vectors",
        help="BM25 only, no vectors and no model [the index's own, else with vectors].",
    ),
    no_cache: bool = typer.Option(
        False, "--no-cache", help="Neither read nor fill the shared vector cache."
    ),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir",
        help="Vector cache folder [$DENSE_RETRIEVER_CACHE, else the user's cache folder].",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q",
        help="Only the result line: no progress bars, warnings or skipped-file lists.",
    ),
    index_spec: str | None = typer.Option(
        None, "--index-spec",
        help="Vector index: auto, Flat, HNSW32,Flat, IVF1024,Flat, IVF4096,PQ48, SQ8, or binary "
             "BFlat, BHNSW32, BIVF1024 (rescored in float) [the index's own, else auto].",
    ),
    index_option: list[str] = typer.Option(
        [], "--index-option",
        help="KEY=VALUE option of the vector index, repeatable: dims=128, rescore=int8, "
             "rescore=null, rescore_multiplier=8, nprobe=32, ef_search=256.",
    ),
    encoder_option: list[str] = typer.Option(
        [], "--encoder-option",
        help="KEY=VALUE option of the encoder, repeatable: head=pca (a fitted head shipped "
             "with the model, or a head file's path), dims=128, layers=3.",
    ),
    wait: float = typer.Option(
        0.0, "--wait", help="Seconds to wait for another process writing this index."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1,
        help="Processes that read and chunk files [by the tree's size; 1 starts none].",
    ),
    ray: str | None = typer.Option(
        None, "--ray", metavar="auto|ADDRESS",
        help="Build on a Ray cluster: auto (the running one, else a local one) or its "
             "address. Needs the ray extra: pip install 'dense-retriever[ray]'.",
    ),
) -> None:
    """Index a source tree: chunk, embed, and write dense and lexical indexes."""
    config = encoder_config(model, encoder_option)
    options = _parse_options(index_option) if index_option else None
    if config and encoder is None:
        encoder = "sentence-transformers"
    settings = dict(
        index_dir=index, encoder=encoder, encoder_config=config, force=force,
        include_dependencies=include_deps, max_file_bytes=max_file_bytes,
        index_spec=index_spec, index_options=options, wait=wait,
        lexical_only=lexical_only, tier=tier, fast_model=fast_model,
    )
    if ray is not None and (workers is not None or no_cache or cache_dir is not None):
        raise retriever.InputError(
            "--ray chunks on the cluster's workers and keeps its vectors in shards: leave out "
            "--workers, --no-cache and --cache-dir with it."
        )
    with silenced(quiet), progress_bar(not quiet) as progress:
        if ray is not None:
            from retriever.ray_build import index as ray_index

            opened = ray_index(path, ray=ray, progress=progress, **settings)
        else:
            opened = retriever.index(
                path, progress=progress, cache=False if no_cache else cache_dir,
                workers=workers, **settings,
            )
    report = opened.last_build
    hint = None if quiet else retriever.api.tier_hint(opened)
    # Text(printable(...)): file names are untrusted, neither markup nor terminal escapes.
    if not report.rebuilt:
        out.print(Text(printable(
            f"Index at {opened.directory} is up to date ({report.chunks} chunks)."
        )))
        if hint:
            err.print(Text(printable(hint)), soft_wrap=True)
        return
    out.print(Text(printable(
        f"Indexed {report.files} files into {report.chunks} chunks at {opened.directory} "
        f"in {report.seconds:.1f}s (embedded {report.embedded}, reused {report.reused}, "
        f"from the vector cache {report.cached})."
    )))
    if quiet:
        return
    if hint:
        err.print(Text(printable(hint)), soft_wrap=True)
    for warning in report.warnings:
        err.print(Text(printable(f"Warning: {warning}")))
    if report.skipped:
        err.print(f"Skipped {len(report.skipped)} files (see `retriever info`):")
        for path_, reason in report.skipped[:10]:
            err.print(Text(printable(f"  {path_}: {reason}")))


def encoder_config(model: str | None, options: list[str] | None) -> dict | None:
    """``--model`` and ``--encoder-option`` pairs as one encoder config; None when neither."""
    config = {"model": model} if model else {}
    config.update(_parse_options(options or [], "--encoder-option"))
    return config or None


def _parse_options(pairs: list[str], flag: str = "--index-option") -> dict:
    """``["dims=128", "rescore=int8"]`` -> ``{"dims": 128, "rescore": "int8"}`` (JSON values,
    else strings)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise retriever.InputError(
                f"{flag} takes KEY=VALUE, e.g. dims=128; got {pair!r}."
            )
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options
