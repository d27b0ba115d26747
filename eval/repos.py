"""The semble repository benchmark: annotations, its exact NDCG@10 scorer, and a runner.

The protocol is the one of semble's own benchmark scripts (MinishLab/semble,
``benchmarks/run_benchmark.py``, ``benchmarks/data.py``, ``benchmarks/metrics.py``):

1. Each repository's ``benchmark_root`` is indexed; each query takes the top 10 chunks.
2. Targets are ``relevant + secondary``, each with gain 1: secondary targets count exactly like
   relevant ones. A target is a path (any chunk of that file matches) or a path with a line span
   (a chunk of that file must overlap the span, lines 1-based inclusive).
3. Paths match when equal or when one ends with the other at a ``/`` boundary (semble's
   ``path_matches``), so annotation paths relative to the repository root or to the benchmark root
   both work.
4. A target's rank is the rank of the first matching chunk. The DCG puts a 1 at each rank found;
   two targets found by the same chunk set that position once (semble's ``_ndcg_at_k``).
5. The ideal DCG is that of ``min(k, n)`` ones, where n counts the targets that some chunk of the
   index covers; a query with n = 0 scores 0 and still counts in the averages.
6. NDCG@10 is averaged per repository, then over repositories (the headline). Per language: the
   mean of its repositories' means. Per category: each repository's mean over its queries of that
   category, averaged over the repositories that have the category (semble's ablation script).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from retriever.errors import DatasetError, InputError

__all__ = [
    "RepoQuery",
    "RepoScores",
    "RepoSpec",
    "Target",
    "load_repo_benchmark",
    "ndcg_at_k",
    "path_matches",
    "target_matches",
    "score_repo_benchmark",
]

Span = tuple[str, int, int]


@dataclass(frozen=True)
class Target:
    """A relevant location: a file, or a line span of a file (1-based, inclusive)."""

    path: str
    start_line: int | None = None
    end_line: int | None = None


@dataclass(frozen=True)
class RepoSpec:
    """One repository of repos.json.

    Attributes:
        name: the benchmark name, also the annotation file's stem.
        language: the repository's main language.
        url: its git url.
        revision: the pinned commit.
        benchmark_root: the folder to index, relative to the repository root (None: the root).
    """

    name: str
    language: str
    url: str = ""
    revision: str = ""
    benchmark_root: str | None = None


@dataclass(frozen=True)
class RepoQuery:
    """One annotated query.

    Attributes:
        id: ``repo/index`` (index of the item in its annotation file, from 0).
        repo: the repository name.
        language: the repository's language (from repos.json, ``"unknown"`` without it).
        query: the query text.
        relevant: primary targets.
        secondary: secondary targets (scored exactly as primary ones, as semble does).
        category: ``semantic``, ``architecture`` or ``symbol``.
    """

    id: str
    repo: str
    language: str
    query: str
    relevant: tuple[Target, ...]
    secondary: tuple[Target, ...]
    category: str

    @property
    def targets(self) -> tuple[Target, ...]:
        """All targets, relevant then secondary."""
        return self.relevant + self.secondary


def _infer_category(query: str) -> str:
    # semble's fallback for items without a category.
    if " " not in query.strip():
        return "symbol"
    if query.lower().startswith("how "):
        return "architecture"
    return "semantic"


def _target(raw: object, where: str) -> Target:
    if isinstance(raw, str) and raw:
        return Target(raw)
    if isinstance(raw, dict) and isinstance(raw.get("path"), str):
        start, end = raw.get("start_line"), raw.get("end_line")
        try:
            start = int(start) if start is not None else None
            end = int(end) if end is not None else None
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: target lines must be integers: {raw!r}") from None
        return Target(raw["path"], start, end)
    raise DatasetError(f"{where}: a target is a path or {{path, start_line, end_line}}: {raw!r}")


def load_repo_specs(path: str | Path) -> dict[str, RepoSpec]:
    """Read repos.json: a list of ``{name, language, url, revision, benchmark_root}``.

    Raises:
        DatasetError: malformed JSON or an entry without name or language.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}:{error.lineno}: malformed JSON ({error.msg})") from None
    specs = {}
    for number, item in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(item, dict) or "name" not in item or "language" not in item:
            raise DatasetError(f"{path}: entry {number} needs 'name' and 'language'")
        keys = ("name", "language", "url", "revision", "benchmark_root")
        specs[item["name"]] = RepoSpec(**{key: item[key] for key in keys if key in item})
    return specs


def load_repo_benchmark(
    annotations: str | Path, *, repos_json: str | Path | None = None
) -> tuple[list[RepoQuery], dict[str, RepoSpec]]:
    """Load semble annotations: a folder of ``NAME.json`` files or one such file.

    Args:
        annotations: the annotations folder or a single ``NAME.json``.
        repos_json: repos.json; by default the one beside the annotations folder.

    Returns:
        ``(queries, specs)``: every annotated query in file order, and the repository specs.

    Raises:
        DatasetError: a missing or malformed file (names the file and line or item).
    """
    annotations = Path(annotations)
    if annotations.is_dir():
        files = sorted(annotations.glob("*.json"))
        base = annotations.parent
    elif annotations.is_file():
        files, base = [annotations], annotations.parent.parent
    else:
        raise DatasetError(f"{annotations}: no such annotations folder or file")
    if not files:
        raise DatasetError(f"{annotations}: no NAME.json annotation files")
    specs_path = Path(repos_json) if repos_json is not None else base / "repos.json"
    specs = load_repo_specs(specs_path) if specs_path.is_file() else {}
    queries: list[RepoQuery] = []
    for path in files:
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DatasetError(f"{path}:{error.lineno}: malformed JSON ({error.msg})") from None
        if not isinstance(items, list):
            raise DatasetError(f"{path}:1: expected a JSON list of queries")
        for number, item in enumerate(items):
            where = f"{path}: item {number}"
            if not isinstance(item, dict) or not isinstance(item.get("query"), str):
                raise DatasetError(f"{where}: needs a 'query' string")
            repo = item.get("repo", path.stem)
            relevant = tuple(_target(t, where) for t in item.get("relevant", []))
            secondary = tuple(_target(t, where) for t in item.get("secondary", []))
            category = item.get("category")
            queries.append(
                RepoQuery(
                    id=f"{repo}/{number}",
                    repo=repo,
                    language=specs[repo].language if repo in specs else "unknown",
                    query=item["query"],
                    relevant=relevant,
                    secondary=secondary,
                    category=category
                    if isinstance(category, str)
                    else _infer_category(item["query"]),
                )
            )
    return queries, specs


def path_matches(file_path: str, target_path: str) -> bool:
    """semble's rule: equal paths, or one ends with the other at a ``/`` boundary."""
    a, b = file_path.replace("\\", "/"), target_path.replace("\\", "/")
    return a == b or a.endswith(f"/{b}") or b.endswith(f"/{a}")


def target_matches(span: Span | str, target: Target) -> bool:
    """Whether an indexed ``(path, start, end)`` span (or a bare path, the whole file) hits a
    target: the paths match (:func:`path_matches`) and, for a target with both line bounds,
    the lines overlap."""
    if isinstance(span, str):
        # A bare indexed path stands for chunks covering the whole file.
        return path_matches(span, target.path)
    path, start, end = span
    if not path_matches(path, target.path):
        return False
    if target.start_line is None or target.end_line is None:
        return True
    return not (end < target.start_line or start > target.end_line)


def ndcg_at_k(ranks: Iterable[int], n_relevant: int, k: int = 10) -> float:
    """semble's NDCG@k: binary gains at the given 1-based ranks over the ideal of min(k, n) ones.

    Args:
        ranks: the rank of each target found (repeats set their position once).
        n_relevant: targets present in the index.
        k: the cut-off.

    Returns:
        The score in [0, 1]; 0 when ``n_relevant`` is 0.
    """
    if n_relevant <= 0:
        return 0.0
    hit = {rank for rank in ranks if 1 <= rank <= k}
    dcg = sum(1 / math.log2(rank + 1) for rank in hit)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, n_relevant)))
    return dcg / ideal


@dataclass
class RepoScores:
    """NDCG of a repository benchmark run.

    Attributes:
        per_query: ``{qid: ndcg@k}``.
        per_repo: ``{repo: mean over its queries}``.
        mean: the mean over repositories (semble's headline).
        by_language: ``{language: mean of its repositories}``.
        by_category: ``{category: mean over repositories of their category mean}``.
        k: the cut-off.
    """

    per_query: dict[str, float]
    per_repo: dict[str, float]
    mean: float
    by_language: dict[str, float]
    by_category: dict[str, float]
    k: int = 10


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def score_repo_benchmark(
    queries: Sequence[RepoQuery],
    results: Mapping[str, Sequence[Span]],
    indexed: Mapping[str, Iterable[Span | str]],
    *,
    k: int = 10,
) -> RepoScores:
    """Score ranked chunks with semble's protocol (see the module docstring).

    Args:
        queries: the annotated queries.
        results: ``{qid: [(path, start_line, end_line), ...]}`` best first; paths relative to the
            repository root. Only the first ``k`` count; a query without results scores 0.
        indexed: ``{repo: chunks of its index}``, each a ``(path, start, end)`` span or a bare
            path (meaning the whole file is covered); decides which targets count in the ideal.
        k: the cut-off (semble reports 10 and 5).

    Returns:
        Per-query, per-repository, per-language and per-category scores.

    Raises:
        InputError: ``k`` below 1 or no queries.
    """
    if k < 1 or not queries:
        raise InputError("score_repo_benchmark needs k >= 1 and at least one query")
    per_query: dict[str, float] = {}
    coverage = {repo: list(spans) for repo, spans in indexed.items()}
    for query in queries:
        top = list(results.get(query.id, ()))[:k]
        ranks = []
        for target in query.targets:
            rank = next((i for i, span in enumerate(top, 1) if target_matches(span, target)), None)
            if rank is not None:
                ranks.append(rank)
        chunks = coverage.get(query.repo, [])
        present = sum(1 for t in query.targets if any(target_matches(span, t) for span in chunks))
        per_query[query.id] = ndcg_at_k(ranks, present, k)
    repo_of = {query.id: query for query in queries}
    per_repo: dict[str, list[float]] = {}
    for qid, score in per_query.items():
        per_repo.setdefault(repo_of[qid].repo, []).append(score)
    repo_mean = {repo: _mean(scores) for repo, scores in sorted(per_repo.items())}
    language_of = {query.repo: query.language for query in queries}
    languages: dict[str, list[float]] = {}
    for repo, score in repo_mean.items():
        languages.setdefault(language_of[repo], []).append(score)
    cells: dict[tuple[str, str], list[float]] = {}
    for qid, score in per_query.items():
        cells.setdefault((repo_of[qid].category, repo_of[qid].repo), []).append(score)
    categories: dict[str, list[float]] = {}
    for (category, _), scores in sorted(cells.items()):
        categories.setdefault(category, []).append(_mean(scores))
    return RepoScores(
        per_query=per_query,
        per_repo=repo_mean,
        mean=_mean(repo_mean.values()),
        by_language={name: _mean(v) for name, v in sorted(languages.items())},
        by_category={name: _mean(v) for name, v in sorted(categories.items())},
        k=k,
    )
