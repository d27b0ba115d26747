"""Rerankers on the semble benchmark: NDCG@10 gain and CPU latency of reranking the top 20/50.

- ``candidates``: each repository's ``code``-pipeline candidates (the top 50 rows a query,
  exactly what :class:`retriever.rerankers.Rerank` would read) written to the GPU bundle
  (``candidates.json.xz``), so that the one GPU run scores all of them
  (``benchmarks/rerank_bundle.py gpu``); reranking ~60,000 pairs on 2 shared CPU cores would
  take hours.
- ``score``: replays those scores through the real stage, ``preset >> Rerank(index,
  reranker, depth)`` and ``Index.search_many``, and scores with semble's scorer: tune half,
  check half and all 60 (``benchmarks/ranking_eval.py split``), depth 20 and 50, and the
  depth chosen on the tune half only.
- ``verify``: the shipped model on this CPU against the GPU's scores on a sample of pairs.
- ``latency``: one query's rerank of the top 20 and top 50 on this CPU, threads 1 and 2.

Indexes are opened read-only (``--index-root``: one index folder per repository): the kept
hybrid indexes of the 60 trees, or the lexical-only ones the ranking benchmarks keep.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))  # line_level.py imports its siblings by plain name

import retriever  # noqa: E402
from benchmarks.locations import semble_dir  # noqa: E402
from benchmarks.ranking_eval import (  # noqa: E402
    Frozen,
    Repo,
    answer,
    command_line,
    scorable,
    score,
    split,
    summary,
)
from benchmarks.rerank_bundle import TEXT_CHARS, read_xz, write_xz  # noqa: E402
from eval.indexes import indexed_spans  # noqa: E402
from eval.repos import load_repo_benchmark  # noqa: E402
from retriever.ranking import preset  # noqa: E402
from retriever.rerankers import Rerank  # noqa: E402

DEPTH = 50
DEPTHS = (10, 20, 30, 50)
WEIGHTS = (1.0, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1)


def command() -> str:
    """This run's command line, folders named by their last part (no path of this machine)."""
    return command_line("rerank_eval.py")


def open_repos(index_root: Path, trees: Path, names=None) -> list[Repo]:
    """The kept index of each scorable repository, opened read-only."""
    annotations = semble_dir() / "annotations"
    queries, specs = load_repo_benchmark(annotations)
    repos = []
    for name in names or scorable(annotations, trees):
        index = retriever.open(index_root / name)
        sub = specs[name].benchmark_root if name in specs else None
        prefix = f"{sub.strip('/')}/" if sub else ""
        repos.append(Repo(name, specs[name].language if name in specs else "unknown", index,
                          prefix, [q for q in queries if q.repo == name],
                          indexed_spans(index, prefix)))
    return repos


def first_stage(repo: Repo, mode: str):
    """The ``code`` preset as ``Index.search_many`` builds it for k=10."""
    return preset("code", repo.index, mode=mode, depth=min(100, len(repo.index)), filter=None)


class Table:
    """A reranker that answers from scores computed elsewhere (the GPU run), keyed by the
    query and the text as it travelled; a pair it was not given is an error."""

    def __init__(self, scores: dict, name: str) -> None:
        self.scores = scores
        self.name = name

    def score(self, query, texts):
        return np.asarray([self.scores[(query, t[:TEXT_CHARS])] for t in texts], np.float32)

    def config(self) -> dict:
        return {}


def candidates(args) -> None:
    repos = open_repos(args.index_root, args.trees)
    if args.line:  # the line-level sets too, so one GPU run scores what `line` replays
        from line_level import line_repos

        repos += line_repos(args.line, args.mined, args.line_work, args.mode)
    out = {"mode": args.mode, "depth": DEPTH, "repos": {}}
    pairs = 0
    for repo in repos:
        texts = [q.query for q in repo.queries]
        results = first_stage(repo, args.mode)(texts)
        rows = sorted({int(r) for r in results.ids[:, :DEPTH].ravel() if r >= 0})
        at = {row: i for i, row in enumerate(rows)}
        reader = Rerank(repo.index, Table({}, "texts"), DEPTH)
        chunk_texts = [t[:TEXT_CHARS] for t in reader.texts(rows)]
        out["repos"][repo.name] = {
            "texts": chunk_texts,
            "queries": [[q, [at[int(r)] for r in ids[:DEPTH] if r >= 0]]
                        for q, ids in zip(texts, results.ids, strict=True)]}
        pairs += sum(len(c) for _, c in out["repos"][repo.name]["queries"])
        print(f"{repo.name}: {len(texts)} queries, {len(rows)} texts", flush=True)
    write_xz(args.bundle / "candidates.json.xz", out)
    print(f"{pairs} pairs -> {args.bundle / 'candidates.json.xz'}")


def load_scores(paths) -> dict:
    """``{(query, text): score}`` from one or more scored candidate files."""
    table = {}
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        for repo in read_xz(Path(path))["repos"].values():
            for (query, ids), scores in zip(repo["queries"], repo["scores"], strict=True):
                for i, s in zip(ids, scores, strict=True):
                    table[(query, repo["texts"][i])] = float(s)
    return table


def fill(args) -> None:
    """Score on this CPU the pairs that ``--mode``'s top ``--depth`` need and the scored
    files lack (another mode's candidates overlap most of them)."""
    from retriever.rerankers.stage import texts_of

    table = load_scores(args.scores)
    reranker = retriever.rerankers.load("code-rerank", threads=2)
    out, done = {"mode": args.mode, "depth": args.depth, "repos": {}}, 0
    for repo in open_repos(args.index_root, args.trees):
        texts = [q.query for q in repo.queries]
        results = first_stage(repo, args.mode)(texts)
        rows = texts_of(repo.index)
        wanted = {}
        for query, ids in zip(texts, results.ids, strict=True):
            for row in ids[: args.depth]:
                text = rows[row][:TEXT_CHARS] if row >= 0 else None
                if text is not None and (query, text) not in table:
                    wanted.setdefault(query, []).append(text)
        if not wanted:
            continue
        pool = sorted({t for found in wanted.values() for t in found})
        at = {t: i for i, t in enumerate(pool)}
        entry = out["repos"][repo.name] = {"texts": pool, "queries": [], "scores": []}
        for query, found in wanted.items():
            entry["queries"].append([query, [at[t] for t in found]])
            entry["scores"].append([round(float(x), 5) for x in reranker.score(query, found)])
            done += len(found)
        print(f"{repo.name}: {sum(len(f) for f in wanted.values())} pairs ({done})", flush=True)
    write_xz(args.out_scores, out)


def evaluate(args) -> None:
    """Every (depth, weight) of the grid through the real stage; the best on the tune half."""
    repos = open_repos(args.index_root, args.trees)
    table = Table(load_scores(args.scores), args.reranker)
    tune, check = split([r.name for r in repos])
    halves = {"tune": tune, "check": check, "all": [r.name for r in repos]}
    # The first stage once a repository: a replayed stage answers exactly the same rows.
    frozen = {}
    for repo in repos:
        texts = [q.query for q in repo.queries]
        frozen[repo.name] = Frozen(texts, first_stage(repo, args.mode)(texts), "code")
    rows = {}
    grid = [(0, 1.0)] + [(d, w) for w in WEIGHTS for d in DEPTHS]
    grid = [(d, w) for d, w in grid if d <= max(args.depths)
            and (d == 0 or d in args.depths)]
    for depth, weight in grid:
        def make(repo, depth=depth, weight=weight):
            stage = frozen[repo.name]
            return stage if depth == 0 else stage >> Rerank(repo.index, table, depth,
                                                            weight=weight)
        found = answer(repos, make, mode=args.mode)
        label = "code (no rerank)" if depth == 0 else repr(make(repos[0])).split(">> ")[-1]
        rows[label] = {half: summary(score([r for r in repos if r.name in names], found))
                       for half, names in halves.items()}
        rows[label]["depth"], rows[label]["weight"] = depth, weight
        print(label, {h: rows[label][h]["ndcg@10"] for h in halves}, flush=True)
    tuned = max((label for label in rows if rows[label]["depth"]),
                key=lambda label: rows[label]["tune"]["ndcg@10"])
    report = {"mode": args.mode, "rows": rows, "tuned_on_tune_half": tuned,
              "split": {"tune": tune, "check": check},
              "command": command()}
    print("tuned on the tune half:", tuned, {h: rows[tuned][h]["ndcg@10"] for h in halves})
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"semble-{args.mode}{args.suffix}.json"
    target.write_text(json.dumps(report, indent=1) + "\n")


class Memo:
    """Scores each (query, text) once: several settings over one candidate list."""

    def __init__(self, reranker) -> None:
        self.reranker, self.name, self.known = reranker, reranker.name, {}

    def score(self, query, texts):
        todo = [t for t in dict.fromkeys(texts) if (query, t) not in self.known]
        if todo:
            self.known.update(zip(((query, t) for t in todo), self.reranker.score(query, todo),
                                  strict=True))
        return np.asarray([self.known[(query, t)] for t in texts], np.float32)


def line(args) -> None:
    """The mined line-level set of ``--repo`` (``benchmarks/line_level.py``: a package tree
    with its docstrings blanked, queries against their function's lines), reranked live on
    this CPU. Only packages the reranker never trained on tell anything (bm25s,
    sentence_transformers)."""
    from line_level import load_queries

    from retriever.ranking import code_pipeline

    index = retriever.open(args.index_root / args.repo / f"index-{args.mode}")
    repo = Repo(args.repo, "python", index, "", load_queries(args.mined / args.repo, args.repo),
                indexed_spans(index))
    reranker = Table(load_scores(args.scores), "scored") if args.scores else \
        Memo(retriever.rerankers.load(args.reranker, threads=2))
    found = {"package": args.repo, "queries": len(repo.queries), "chunks": len(index)}
    for depth, weight in ((0, 1.0), (10, 1.0), (10, 0.3), (20, 0.2), (20, 1.0),
                          *((args.depth, w) for w in args.weights or ())):
        def make(r, depth=depth, weight=weight):
            stage = code_pipeline(r.index, mode=args.mode, depth=100)
            return stage if depth == 0 else stage >> Rerank(r.index, reranker, depth,
                                                            weight=weight)
        label = repr(make(repo)).split(">> ")[-1] if depth else "code (no rerank)"
        found[label] = round(score([repo], answer([repo], make, mode=args.mode)).mean, 4)
        print(label, found[label], flush=True)
    found["command"] = command()
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"line-{args.repo}-{args.mode}{args.suffix}.json"
    target.write_text(json.dumps(found, indent=1) + "\n")


def verify(args) -> None:
    """The shipped model on this CPU against the GPU's scores, on ``--pairs`` pairs."""
    table = load_scores(args.scores)
    reranker = retriever.rerankers.load("code-rerank", threads=2)
    keys = sorted(table)[:: max(1, len(table) // args.pairs)][: args.pairs]
    by_query: dict[str, list] = {}
    for query, text in keys:
        by_query.setdefault(query, []).append(text)
    diffs = []
    for query, texts in by_query.items():
        got = reranker.score(query, texts)
        diffs += [abs(float(g) - table[(query, t)]) for g, t in zip(got, texts, strict=True)]
    print(json.dumps({"pairs": len(diffs), "max_abs_diff": round(max(diffs), 4),
                      "mean_abs_diff": round(float(np.mean(diffs)), 5)}))


def latency(args) -> None:
    """p50/p95 of ``Rerank`` over one query's top ``depth`` rows on this CPU."""
    repo = open_repos(args.index_root, args.trees, [args.repo])[0]
    texts = [q.query for q in repo.queries][: args.queries]
    found = {"repo": repo.name, "queries": len(texts), "cpu_cores": __import__("os").cpu_count()}
    for threads in (1, 2):
        reranker = retriever.rerankers.load("code-rerank", threads=threads)
        for depth in (20, 50):
            stage = first_stage(repo, args.mode)
            results = [stage([t]) for t in texts]
            rerank = Rerank(repo.index, reranker, depth)
            rerank([texts[0]], results[0])  # loads the model and the texts
            times = []
            for text, result in zip(texts, results, strict=True):
                started = time.perf_counter()
                rerank([text], result)
                times.append(time.perf_counter() - started)
            times.sort()
            found[f"threads={threads} top{depth}"] = {
                "p50_ms": round(1000 * times[len(times) // 2]),
                "p95_ms": round(1000 * times[min(len(times) - 1, int(0.95 * len(times)))])}
            print(found, flush=True)
    found["command"] = command()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency.json").write_text(json.dumps(found, indent=1) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["candidates", "fill", "score", "line", "verify",
                                           "latency"])
    parser.add_argument("--index-root", type=Path, required=True)
    parser.add_argument("--trees", type=Path, help="the exported semble trees")
    parser.add_argument("--mode", default="hybrid", choices=["lexical", "dense", "hybrid"])
    parser.add_argument("--bundle", type=Path, default=Path(".carry-rerank"))
    parser.add_argument("--scores", type=Path, action="append",
                        help="scored candidates (scores.json.xz from the GPU run; repeatable)")
    parser.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS),
                        help="rerank depths to score (the scored pairs must cover them)")
    parser.add_argument("--depth", type=int, default=20, help="fill: the depth to cover")
    parser.add_argument("--out-scores", type=Path, help="fill: where to write the scores")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "rerank")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--mined", type=Path, help="line: the mined sets (mine_packages.py)")
    parser.add_argument("--repo", default="flask")
    parser.add_argument("--line", action="append", help="candidates: a line-level package too")
    parser.add_argument("--line-work", type=Path, help="candidates: line_level.py's --work")
    parser.add_argument("--reranker", default="code-rerank",
                        help="line: the live reranker; score: its label")
    parser.add_argument("--weights", type=float, nargs="*", help="line: blends at --depth too")
    parser.add_argument("--suffix", default="", help="line, score: added to the result file's name")
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    {"candidates": candidates, "fill": fill, "score": evaluate, "line": line,
     "verify": verify, "latency": latency}[args.action](args)
