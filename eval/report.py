"""Reports: JSON, a Markdown table, and PNG plots of quality against cost."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from eval.cost import Cost
from eval.metrics import write_trec
from retriever.errors import InputError, MissingDependencyError

__all__ = ["markdown_table", "plot_tradeoffs", "write_json", "write_markdown", "write_results"]

_EVAL_EXTRA = "pip install 'dense-retriever[eval]'"


class Result(Protocol):
    """What a report needs: a RunResult or a RepoRunResult."""

    name: str
    cost: Cost

    @property
    def metrics(self) -> dict[str, float]: ...

    def to_dict(self, *, with_run: bool = False) -> dict: ...


def write_json(result: Result, path: str | Path, *, with_run: bool = False) -> Path:
    """Write one result as indented JSON (``compare`` reads it back).

    Args:
        result: a RunResult or RepoRunResult.
        path: the file to write; parent folders are created.
        with_run: include the full run (RunResult only), so it can be re-scored later.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = result.to_dict(with_run=with_run)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def markdown_table(results: Sequence[Result]) -> str:
    """One row per result: each metric (with its 95% interval when known) and the cost.

    Args:
        results: RunResult or RepoRunResult objects; the columns are the union of their metrics.

    Returns:
        A GitHub-flavoured Markdown table, ending with a newline.
    """
    if not results:
        raise InputError("markdown_table needs at least one result")
    metrics = list(dict.fromkeys(m for r in results for m in r.metrics))
    head = ["system", *metrics, "index s", "chunks/s", "index size", "peak RSS", "p50 ms", "p95 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result in results:
        ci = getattr(result, "ci", {})
        cells = [result.name]
        for metric in metrics:
            value = result.metrics.get(metric)
            if value is None:
                cells.append("")
            elif metric in ci:
                low, high = ci[metric]
                cells.append(f"{value:.3f} [{low:.3f}, {high:.3f}]")
            else:
                cells.append(f"{value:.3f}")
        c = result.cost
        rate = f"{c.chunks_per_second:.0f}" if c.chunks_per_second else ""
        cells += [
            f"{c.index_seconds:.1f}",
            rate,
            _size(c.index_bytes),
            _size(c.peak_rss_bytes),
            f"{c.latency_p50_ms:.1f}",
            f"{c.latency_p95_ms:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_markdown(results: Sequence[Result], path: str | Path) -> Path:
    """Write :func:`markdown_table` of ``results`` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown_table(results), encoding="utf-8")
    return path


def write_results(results: Mapping[str, Result], out: str | Path) -> list[Path]:
    """Write the results of one run, one entry per search mode, in the layout of ``--out``.

    One mode: ``out/result.json`` (and ``out/run.trec`` for a benchmark with a run); several:
    ``out/MODE/result.json`` (and ``out/MODE/run.trec``) each. Always ``out/report.md``, one
    table row per mode. A result JSON of a corpus benchmark holds its run, so it can be
    re-scored or compared later; a repository benchmark keeps no run.

    Args:
        results: ``{mode: RunResult or RepoRunResult}``, as the runners return with ``modes``.
        out: the output folder; created when missing, files in it replaced.

    Returns:
        The paths written, report last.
    """
    if not results:
        raise InputError("write_results needs at least one result")
    out = Path(out)
    written = []
    for mode, result in results.items():
        folder = out if len(results) == 1 else out / mode
        run = getattr(result, "run", None)
        written.append(write_json(result, folder / "result.json", with_run=bool(run)))
        if run:
            write_trec(run, folder / "run.trec", tag=mode)
            written.append(folder / "run.trec")
    written.append(write_markdown(list(results.values()), out / "report.md"))
    return written


def plot_tradeoffs(
    results: Sequence[Result], out_dir: str | Path, *, metric: str = "ndcg@10"
) -> list[Path]:
    """Plot ``metric`` against query latency (p50) and against index bytes, one point per result.

    The Agg backend is chosen here, not at import, so importing this module changes nothing.

    Args:
        results: the systems to compare.
        out_dir: folder for ``<metric>_vs_latency.png`` and ``<metric>_vs_index_bytes.png``.
        metric: the quality metric on the y axis.

    Returns:
        The two PNG paths.
    """
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError(
            f"Plots need matplotlib, which is not installed; {_EVAL_EXTRA}"
        ) from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [r for r in results if metric in r.metrics]
    if not points:
        raise InputError(f"no result has metric {metric!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    safe = metric.replace("@", "_at_")
    written = []
    axes = [
        ("latency", "query latency p50 (ms)", lambda c: c.latency_p50_ms, False),
        ("index_bytes", "index size on disk (bytes)", lambda c: c.index_bytes, True),
    ]
    for key, label, value, log in axes:
        figure, ax = plt.subplots(figsize=(6, 4))
        for result in points:
            x, y = value(result.cost), result.metrics[metric]
            ax.scatter([x], [y])
            ax.annotate(result.name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        if log and all(value(r.cost) > 0 for r in points):
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        path = out_dir / f"{safe}_vs_{key}.png"
        figure.tight_layout()
        figure.savefig(path, dpi=120)
        plt.close(figure)
        written.append(path)
    return written
