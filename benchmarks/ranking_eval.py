"""The evaluation loop behind tune_ranking.py: kept indexes, the tune/check split, scoring.

- :func:`split`: the fixed rule. The scorable semble repositories sorted by name; the 1st,
  3rd, 5th... are the **tune** half, the 2nd, 4th, 6th... the **check** half. Weights are fitted
  on the tune half only.
- :func:`open_repos`: one index per repository under ``--index-root`` (built once with
  ``retriever.index(..., lexical_only=True)`` and reused while the tree and the chunker are
  unchanged: a refresh of an unchanged tree rebuilds nothing), its queries and the spans it
  covers.
- :func:`first_stage`: each repository's first-stage results, computed once; a
  :class:`Frozen` stage replays them, so a tuning evaluation runs the priors only.
- :func:`evaluate`: answers every query through ``Index.search_many(..., pipeline=stage)``
  (the engine's own hit assembly) and scores them with ``eval.repos.score_repo_benchmark``,
  the benchmark's scorer.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import retriever  # noqa: E402
from eval.indexes import indexed_spans  # noqa: E402
from eval.repos import RepoScores, load_repo_benchmark, score_repo_benchmark  # noqa: E402
from retriever.pipeline import Results, Stage  # noqa: E402

__all__ = ["LEFT_OUT", "Repo", "split", "open_repos", "open_semble", "first_stage", "Frozen",
           "answer", "score", "evaluate", "summary", "halves", "code_hybrid", "scorable",
           "command_line"]

# As in run_semble.py: mirrors that predate the annotated layout, and one too large to mirror.
LEFT_OUT = ("jackson-databind", "messagepack-csharp", "zig")


def split(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """(tune, check): sorted by name, alternating, the first name going to tune."""
    ordered = sorted(names)
    return ordered[0::2], ordered[1::2]


@dataclass
class Repo:
    """One benchmark repository, opened."""

    name: str
    language: str
    index: object
    prefix: str
    queries: list
    spans: list
    cache: dict = field(default_factory=dict)


def scorable(annotations: Path, trees: Path) -> list[str]:
    """The repositories with annotations and an exported tree, minus :data:`LEFT_OUT`."""
    names = sorted(p.stem for p in annotations.glob("*.json"))
    return [n for n in names if n not in LEFT_OUT and (trees / n).is_dir()]


def open_repos(annotations: Path, trees: Path, index_root: Path, names: Sequence[str], *,
               vectors: bool = False, progress: Callable[[str], None] | None = None,
               index_options: dict | None = None, open_only: bool = False) -> list[Repo]:
    """Open (building when missing or stale, unless ``open_only``) one index per repository
    of ``names``; ``index_options`` go to ``retriever.index`` (an encoder, say)."""
    queries, specs = load_repo_benchmark(annotations)
    repos = []
    for name in names:
        sub = specs[name].benchmark_root if name in specs else None
        root = trees / name / sub if sub else trees / name
        prefix = f"{sub.strip('/')}/" if sub else ""
        # Vectors come from the user-level cache when one is set (DENSE_RETRIEVER_CACHE:
        # benchmarks/gpu_vectors.py fills one on a GPU machine); lexical builds need none.
        options = {} if vectors else {"lexical_only": True, "cache": False}
        if open_only:
            index = retriever.open(index_root / name)
        else:
            index = retriever.index(root, index_dir=index_root / name,
                                    **options, **(index_options or {}))
        if progress is not None:
            progress(f"{name}: {len(index)} chunks"
                     + (" (built)" if index.last_build and index.last_build.rebuilt else ""))
        mine = [q for q in queries if q.repo == name]
        repos.append(Repo(name, specs[name].language if name in specs else "unknown", index,
                          prefix, mine, indexed_spans(index, prefix)))
    return repos


class Frozen(Stage):
    """Replays results computed once for exactly these queries (tuning runs only the
    stages after it)."""

    def __init__(self, queries: Sequence[str], results: Results, name: str) -> None:
        self.queries = list(queries)
        self.results = results
        self.name = name

    def __call__(self, queries, results=None) -> Results:
        if list(queries) != self.queries:
            raise ValueError("a Frozen stage answers only the queries it was made for")
        return self.results

    def __repr__(self) -> str:
        return f"{self.name} (cached)"


def open_semble(trees: Path, index_root: Path, names: Sequence[str] = ()) -> list[Repo]:
    """The semble benchmark's repositories of ``names`` (every scorable one when empty), each
    index opened from ``index_root`` (built when missing), with the shared annotations."""
    from locations import semble_dir

    annotations = semble_dir() / "annotations"
    return open_repos(annotations, trees, index_root,
                      list(names) or scorable(annotations, trees))


def command_line(script: str) -> str:
    """This run's command line for a result file: ``python benchmarks/SCRIPT ...``, absolute
    paths by their last part (no path of this machine)."""
    parts = [Path(a).name if Path(a).is_absolute() else a for a in sys.argv[1:]]
    return " ".join(["python", f"benchmarks/{script}", *map(shlex.quote, parts)])


def first_stage(repo: Repo, mode: str, depth: int) -> Frozen | None:
    """The repository's first-stage results for its queries, computed once and kept
    (``mode="fast"``: the fast tier's vectors of a ``full`` index, None when it has none)."""
    key = (mode, depth)
    if key not in repo.cache:
        texts = [q.query for q in repo.queries]
        if mode == "fast":
            stage = repo.index.tier_stage("fast", depth=depth)
            if stage is None:
                return None
        else:
            stage = repo.index.stage(mode, depth=depth)
        repo.cache[key] = Frozen(texts, stage(texts), f"{mode} % {depth}")
    return repo.cache[key]


def answer(repos: Sequence[Repo], make: Callable[[Repo], Stage], *, mode: str = "lexical",
           k: int = 10) -> dict[str, list[tuple[str, int, int]]]:
    """``{query id: [(path, start, end), ...]}`` from the stage ``make(repo)`` on each
    repository, through ``Index.search_many(..., pipeline=...)``."""
    results = {}
    for repo in repos:
        texts = [q.query for q in repo.queries]
        hits = repo.index.search_many(texts, k=k, mode=mode, pipeline=make(repo))
        for query, found in zip(repo.queries, hits, strict=True):
            results[query.id] = [(repo.prefix + h.path, h.start_line, h.end_line)
                                 for h in found]
    return results


def score(repos: Sequence[Repo], results: dict, *, k: int = 10) -> RepoScores:
    """semble's scores of ``results`` over ``repos`` (means per repository, category,
    language)."""
    queries = [q for repo in repos for q in repo.queries]
    return score_repo_benchmark(queries, results, {r.name: r.spans for r in repos}, k=k)


def evaluate(repos: Sequence[Repo], make: Callable[[Repo], Stage], *, mode: str = "lexical",
             k: int = 10) -> RepoScores:
    """Score the stage ``make(repo)`` on every repository (semble's scorer)."""
    return score(repos, answer(repos, make, mode=mode, k=k), k=k)


def summary(scores: RepoScores) -> dict:
    """The headline numbers of one scored run, rounded for a table."""
    return {"repos": len(scores.per_repo), "queries": len(scores.per_query),
            "ndcg@10": round(scores.mean, 4),
            "by_category": {c: round(v, 4) for c, v in scores.by_category.items()},
            "by_language": {c: round(v, 4) for c, v in scores.by_language.items()}}


def halves(scores: RepoScores) -> dict:
    """One scored run as the experiment scripts record it: all 60, the tune and check halves,
    per category and per repository."""
    import statistics

    tune, check = split(scores.per_repo)
    return {"all": round(scores.mean, 4),
            "tune": round(statistics.fmean(scores.per_repo[n] for n in tune), 4),
            "check": round(statistics.fmean(scores.per_repo[n] for n in check), 4),
            "by_category": {k: round(v, 4) for k, v in sorted(scores.by_category.items())},
            "per_repo": {k: round(v, 4) for k, v in sorted(scores.per_repo.items())}}


def code_hybrid(repo: Repo, dense: Stage, weights: dict | None = None) -> Stage:
    """The default hybrid pipeline of a source tree with ``dense`` as its dense side: fused
    with the repository's BM25 (computed once and kept), then the code priors, as
    ``retriever.ranking.code_pipeline`` builds it for a tree (trees get the ``code`` weights;
    the fast tier's third side is for corpora of documents only)."""
    from retriever.ranking import code_priors
    from retriever.ranking.fitted import weights_for
    from retriever.ranking.fusion import Blend

    weights = weights_for("hybrid") if weights is None else weights
    lexical = first_stage(repo, "lexical", int(weights["depth"]))
    return Blend(dense, lexical, **weights["fusion"]) >> code_priors(repo.index, weights)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
