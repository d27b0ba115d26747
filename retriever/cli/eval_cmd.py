"""``retriever eval``: run benchmarks, mine one from a tree, compare two runs.

Each command makes one call into the eval API and renders the result with rich. Errors are
RetrieverError subclasses only; the error-handling group prints them and exits 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from retriever.cli.common import ErrorHandlingGroup, progress_bar
from retriever.cli.common import out as out_console
from retriever.cli.index_cmd import _parse_options as parse_index_options
from retriever.cli.index_cmd import encoder_config

app = typer.Typer(
    cls=ErrorHandlingGroup,
    help="Measure retrieval quality (nDCG, MRR, Recall, MAP) and cost on benchmarks.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _metrics_table(title: str, metrics: dict, ci: dict | None = None) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("mean", justify="right")
    if ci:
        table.add_column("95% CI", justify="right")
    for name, value in metrics.items():
        row = [name, f"{value:.4f}"]
        if ci:
            low, high = ci.get(name, (float("nan"), float("nan")))
            row.append(f"[{low:.4f}, {high:.4f}]")
        table.add_row(*row)
    return table


def _cost_line(cost) -> str:
    rate = f", {cost.chunks_per_second:.0f} chunks/s" if cost.chunks_per_second else ""
    return (
        f"index {cost.index_seconds:.1f} s{rate}, {cost.index_bytes / 2**20:.1f} MiB on disk, "
        f"peak RSS {cost.peak_rss_bytes / 2**20:.0f} MiB, query p50 {cost.latency_p50_ms:.1f} ms"
        f" / p95 {cost.latency_p95_ms:.1f} ms"
    )


_MODE_HELP = "hybrid, dense, lexical, a comma list of them, or all (one index serves them all)."
_MODEL_HELP = "encoder model: a packaged model name or a local folder (default: the encoder's)."


_SPEC_HELP = (
    "vector index of every build: auto, Flat, HNSW32,Flat, IVF1024,Flat, SQ8, BFlat, BHNSW32... "
    "(as for `retriever index`; needs mode dense or hybrid)."
)
_OPTION_HELP = (
    "KEY=VALUE option of the vector index, repeatable: dims=128, rescore=int8, nprobe=32 "
    "(as for `retriever index`)."
)
_PIPELINE_HELP = "ranking pipeline: plain, code, code-files (default: the engine's, code)."
_CACHE_HELP = (
    "take vectors from this vector cache folder (filled by benchmarks/gpu_vectors.py, say); "
    "build costs then exclude embedding, and the result says so."
)
_OUT_HELP = (
    "write the results here: result.json, report.md (and run.trec for BEIR) for one mode, "
    "MODE/result.json (MODE/run.trec) and report.md for several."
)


_ENCODER_OPTION_HELP = (
    "KEY=VALUE option of the encoder, repeatable: head=pca, dims=128 (as for `retriever index`)."
)


@app.command()
def beir(
    folder: Annotated[
        Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/.")
    ],
    split: Annotated[str, typer.Option(help="qrels split to evaluate.")] = "test",
    mode: Annotated[str, typer.Option(help=_MODE_HELP)] = "hybrid",
    encoder: Annotated[
        str, typer.Option(help="registered encoder name.")
    ] = "sentence-transformers",
    model: Annotated[str | None, typer.Option(help=_MODEL_HELP)] = None,
    encoder_option: Annotated[
        list[str] | None, typer.Option(help=_ENCODER_OPTION_HELP)
    ] = None,
    index_spec: Annotated[str | None, typer.Option(help=_SPEC_HELP)] = None,
    index_option: Annotated[list[str] | None, typer.Option(help=_OPTION_HELP)] = None,
    pipeline: Annotated[str | None, typer.Option(help=_PIPELINE_HELP)] = None,
    vector_cache: Annotated[Path | None, typer.Option(help=_CACHE_HELP)] = None,
    k: Annotated[int, typer.Option(help="hits per query.")] = 100,
    out: Annotated[Path | None, typer.Option(help=_OUT_HELP)] = None,
) -> None:
    """Index a BEIR corpus, search its queries, report metrics and cost."""
    from eval.runner import run_beir

    with progress_bar() as update:
        results = run_beir(
            folder,
            split,
            encoder=encoder,
            encoder_config=encoder_config(model, encoder_option),
            modes=mode,
            index_spec=index_spec,
            index_options=parse_index_options(index_option) if index_option else None,
            pipeline=pipeline,
            vector_cache=vector_cache,
            k=k,
            progress=update,
            out=out,
        )
    for name, result in results.items():
        out_console.print(
            _metrics_table(f"{result.dataset} ({split}, {name})", result.metrics, result.ci)
        )
        out_console.print(_cost_line(result.cost))
    if out is not None:
        out_console.print(f"written to {out}")


@app.command()
def repos(
    annotations: Annotated[
        Path, typer.Argument(help="semble annotations folder (repos.json beside).")
    ],
    repos_dir: Annotated[
        Path, typer.Option("--repos", help="folder of repository trees, one per name.")
    ],
    mode: Annotated[str, typer.Option(help=_MODE_HELP)] = "hybrid",
    encoder: Annotated[
        str, typer.Option(help="registered encoder name.")
    ] = "sentence-transformers",
    model: Annotated[str | None, typer.Option(help=_MODEL_HELP)] = None,
    encoder_option: Annotated[
        list[str] | None, typer.Option(help=_ENCODER_OPTION_HELP)
    ] = None,
    index_spec: Annotated[str | None, typer.Option(help=_SPEC_HELP)] = None,
    index_option: Annotated[list[str] | None, typer.Option(help=_OPTION_HELP)] = None,
    pipeline: Annotated[str | None, typer.Option(help=_PIPELINE_HELP)] = None,
    vector_cache: Annotated[Path | None, typer.Option(help=_CACHE_HELP)] = None,
    repo: Annotated[
        list[str] | None,
        typer.Option("--repo", help="only these repositories, in this order (repeatable)."),
    ] = None,
    language: Annotated[
        list[str] | None, typer.Option("--language", help="only these languages.")
    ] = None,
    index_root: Annotated[
        Path | None,
        typer.Option(help="keep the indexes here (a rerun reuses their vectors)."),
    ] = None,
    latency_runs: Annotated[
        int, typer.Option(help="search each query this many times, keep the median.")
    ] = 1,
    out: Annotated[
        Path | None, typer.Option(help=_OUT_HELP + " Rewritten after every repository.")
    ] = None,
) -> None:
    """Run the semble repository benchmark (NDCG@10 per repository, language, category)."""
    from eval.runner import run_repo_benchmark

    with progress_bar() as update:
        results = run_repo_benchmark(
            annotations,
            repos_dir,
            encoder=encoder,
            encoder_config=encoder_config(model, encoder_option),
            modes=mode,
            index_spec=index_spec,
            index_options=parse_index_options(index_option) if index_option else None,
            pipeline=pipeline,
            vector_cache=vector_cache,
            repos=repo or None,
            languages=language or None,
            index_root=index_root,
            latency_runs=latency_runs,
            progress=update,
            out=out,
        )
    for name, result in results.items():
        scores = result.scores
        out_console.print(_metrics_table(f"{name}: by language", scores.by_language))
        out_console.print(_metrics_table(f"{name}: by category", scores.by_category))
        out_console.print(
            f"{name}: NDCG@{scores.k} (mean of {len(scores.per_repo)} repositories): "
            f"{scores.mean:.4f}"
        )
        out_console.print(_cost_line(result.cost))
    first = next(iter(results.values()))
    if first.missing:
        out_console.print(f"left out (no tree under {repos_dir}): {', '.join(first.missing)}")
    if out is not None:
        out_console.print(f"written to {out}")


@app.command()
def mine(
    path: Annotated[Path, typer.Argument(help="source tree to mine.")],
    out: Annotated[Path, typer.Option(help="output folder (BEIR layout, split 'test').")],
    language: Annotated[
        list[str] | None, typer.Option("--language", help="only these languages.")
    ] = None,
) -> None:
    """Turn documented functions of a source tree into a query -> function benchmark."""
    from eval.miner import mine as mine_tree

    benchmark = mine_tree(path, languages=language or None, out=out)
    out_console.print(
        f"{len(benchmark.queries)} queries over {len(benchmark.corpus)} functions written to {out}"
    )


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="TREC run file or result.json of system A.")],
    run_b: Annotated[Path, typer.Argument(help="TREC run file or result.json of system B.")],
    qrels: Annotated[
        Path | None, typer.Option(help="qrels (BEIR .tsv or TREC); needed for TREC runs.")
    ] = None,
    method: Annotated[str, typer.Option(help="paired test: randomization or t.")] = "randomization",
) -> None:
    """Compare two runs per metric with a paired significance test."""
    from eval.compare import compare as compare_runs

    result = compare_runs(run_a, run_b, qrels=qrels, method=method)
    table = Table(title=f"A = {result.a}, B = {result.b} ({result.queries} queries, {method})")
    for column in ("metric", "A", "B", "B - A", "p"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for metric, (mean_a, mean_b, p) in result.rows.items():
        table.add_row(
            metric, f"{mean_a:.4f}", f"{mean_b:.4f}", f"{mean_b - mean_a:+.4f}", f"{p:.4f}"
        )
    out_console.print(table)
