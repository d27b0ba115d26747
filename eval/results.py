"""What a benchmark run returns: search modes, and the result of one mode on one benchmark."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from eval.cost import Cost
from eval.repos import RepoScores
from retriever.errors import InputError

__all__ = ["ALL_MODES", "Progress", "RepoRunResult", "RunResult", "encoder_label", "parse_modes"]

#: The search modes one index serves, in the order reports list them.
ALL_MODES = ("lexical", "dense", "hybrid")

#: Called as ``progress(stage, done, total)`` so a CLI can draw a bar; the library never prints.
Progress = Callable[[str, int, int], None]


def parse_modes(value: str | Sequence[str]) -> tuple[str, ...]:
    """Search modes from ``"all"``, one name, a comma list (``"lexical,dense"``) or a sequence.

    Returns:
        The modes, duplicates dropped, in the order given (``"all"``: :data:`ALL_MODES`).

    Raises:
        InputError: an unknown mode, or none at all.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    found: list[str] = []
    for item in (str(i).strip().lower() for i in items):
        if not item:
            continue
        if item == "all":
            found += ALL_MODES
        elif item in ALL_MODES:
            found.append(item)
        else:
            raise InputError(
                f"Unknown search mode {item!r}; choose from {', '.join(ALL_MODES)}, "
                "a comma list of them, or all."
            )
    if not found:
        raise InputError(f"No search mode given; choose from {', '.join(ALL_MODES)} or all.")
    return tuple(dict.fromkeys(found))


def encoder_label(encoder: str, encoder_config: Mapping | None) -> str:
    """``encoder``, or ``encoder:model`` when a model was named, then any other options in
    brackets (``sentence-transformers:code-minilm-v1 [dims=64, head=pca]``), so runs that
    differ by an option say so."""
    config = dict(encoder_config or {})
    model = config.pop("model", None)
    label = f"{encoder}:{model}" if model else encoder
    if config:
        label += " [" + ", ".join(f"{k}={config[k]}" for k in sorted(config)) + "]"
    return label


@dataclass
class RunResult:
    """Quality and cost of one system on one benchmark.

    Attributes:
        name: a label for reports, e.g. ``"scifact hybrid"``.
        dataset: the benchmark name; ``split``: its qrels split.
        mode, encoder: how the engine searched.
        metrics: ``{metric: mean}``; ``ci``: ``{metric: (low, high)}`` 95% bootstrap intervals.
        per_query: ``{metric: {qid: score}}``.
        by_category: ``{metric: {category: mean}}`` when the benchmark has categories.
        cost: build time, bytes, memory and latency.
        run: ``{qid: {docid: score}}``, ready for :func:`eval.metrics.write_trec`.
        build_modes: the modes served by the same index build (its cost is shared by them).
        index: the vector index spec and options the build was given (``{"spec": ...,
            "options": {...}}``); empty for the engine's defaults.
    """

    name: str
    dataset: str
    split: str
    mode: str
    encoder: str
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    per_query: dict[str, dict[str, float]]
    cost: Cost
    run: dict[str, dict[str, float]] = field(default_factory=dict)
    by_category: dict[str, dict[str, float]] = field(default_factory=dict)
    build_modes: list[str] = field(default_factory=list)
    index: dict = field(default_factory=dict)

    def to_dict(self, *, with_run: bool = False) -> dict:
        """A JSON-ready dict; the run itself only when ``with_run`` (it can be large)."""
        data = {
            "name": self.name,
            "dataset": self.dataset,
            "split": self.split,
            "mode": self.mode,
            "encoder": self.encoder,
            "metrics": self.metrics,
            "ci": {key: list(value) for key, value in self.ci.items()},
            "by_category": self.by_category,
            "cost": self.cost.to_dict(),
            "build_modes": self.build_modes,
            "per_query": self.per_query,
        }
        if self.index:  # absent for default builds, so their files stay as they always were
            data["index"] = self.index
        if with_run:
            data["run"] = self.run
        return data


@dataclass
class RepoRunResult:
    """A repository benchmark run: semble-protocol scores plus cost.

    Attributes:
        name: a label for reports.
        mode, encoder: how the engine searched.
        scores: the NDCG scores (see :class:`eval.repos.RepoScores`).
        cost: totals over repositories (build seconds, chunks, bytes summed; peak RSS the
            highest; latencies over every query).
        per_repo_cost: ``{repo: Cost}``.
        missing: repositories whose tree was not under ``repos_dir`` (left out of every mean).
        ndcg5: NDCG@5 over the same results, averaged the same way (when ``k`` > 5).
        build_modes: the modes served by the same index builds (their cost is shared).
        index: the vector index spec and options the builds were given; empty for defaults.
    """

    name: str
    mode: str
    encoder: str
    scores: RepoScores
    cost: Cost
    per_repo_cost: dict[str, Cost]
    missing: list[str]
    ndcg5: float | None = None
    build_modes: list[str] = field(default_factory=list)
    index: dict = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        """``{"ndcg@k": mean over repositories}`` (and ``ndcg@5``, which semble also reports)."""
        found = {f"ndcg@{self.scores.k}": self.scores.mean}
        if self.ndcg5 is not None:
            found["ndcg@5"] = self.ndcg5
        return found

    def to_dict(self, *, with_run: bool = False) -> dict:
        """A JSON-ready dict (``with_run`` is accepted for symmetry: no run is kept here)."""
        s = self.scores
        data = {
            "name": self.name,
            "mode": self.mode,
            "encoder": self.encoder,
            "metrics": self.metrics,
            "cost": self.cost.to_dict(),
            "per_repo": s.per_repo,
            "by_language": s.by_language,
            "by_category": s.by_category,
            "per_query": {f"ndcg@{s.k}": s.per_query},
            "missing": self.missing,
            "build_modes": self.build_modes,
            "per_repo_cost": {repo: c.to_dict() for repo, c in self.per_repo_cost.items()},
        }
        if self.index:
            data["index"] = self.index
        return data
