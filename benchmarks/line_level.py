"""Line-level precision of a ranking pipeline: mined queries against their function's lines.

usage:
    python benchmarks/mine_packages.py bm25s sentence_transformers     # to ../bench/mined
    python benchmarks/line_level.py bm25s sentence_transformers --mined ../bench/mined

The mined benchmarks (``eval.miner``: docstring -> query, the function without it -> document)
are BEIR corpora of one document per function, where code priors never apply. This script asks
the same queries of the package's *source tree*, indexed as code (the real chunker, a
lexical-only index, or ``--mode hybrid``), with every Python docstring blanked out (lines kept,
so line numbers stay) so that a query cannot find its own text. A hit counts only when its
lines overlap the function's lines (semble's scorer with line-span targets), so a prior that
trades the right function for another chunk of the right file loses here. It prints NDCG@10
for ``plain`` and the ``code`` preset and writes ``--out``/line-level-MODE.json.
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from locations import scratch_dir  # noqa: E402
from ranking_eval import Repo, answer, score, write_json  # noqa: E402

import retriever  # noqa: E402
from eval.indexes import indexed_spans  # noqa: E402
from eval.repos import RepoQuery, Target  # noqa: E402
from retriever.ranking import code_pipeline  # noqa: E402


def blank_docstrings(source: str) -> str:
    """``source`` with every module, class and function docstring replaced by ``...`` on its
    first line and blank lines after it: the line count, and so every line number, is kept."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source
    lines = source.split("\n")
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                 ast.AsyncFunctionDef)):
            continue
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(
                getattr(body[0], "value", None), ast.Constant) and isinstance(
                body[0].value.value, str):
            first, last = body[0].lineno - 1, body[0].end_lineno - 1
            indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
            lines[first] = indent + "..."
            for row in range(first + 1, last + 1):
                lines[row] = ""
    return "\n".join(lines)


def make_tree(root: Path, tree: Path) -> None:
    """Copy ``root`` to ``tree`` with docstrings blanked (Python files)."""
    if tree.exists():
        shutil.rmtree(tree)
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file() or path.is_symlink():
            continue
        target = tree / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".py":
            # Bytes that are not UTF-8 stay as they are (the chunker reads them the same way).
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
            target.write_text(blank_docstrings(text), encoding="utf-8",
                              errors="surrogateescape")
        else:
            shutil.copyfile(path, target)


def load_queries(folder: Path, name: str) -> list[RepoQuery]:
    """The mined queries of ``folder`` with their function's lines as the one target."""
    texts = {}
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        texts[item["_id"]] = item["text"]
    queries = []
    for row in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, doc, _ = row.split("\t")
        path, span = doc.rsplit(":", 1)
        start, end = (int(x) for x in span.split("-"))
        queries.append(RepoQuery(id=f"{name}/{qid}", repo=name, language="python",
                                 query=texts[qid], relevant=(Target(path, start, end),),
                                 secondary=(), category="line"))
    return queries


def line_repos(packages, mined: Path, work: Path, mode: str = "lexical", *,
               index_options: dict | None = None) -> list[Repo]:
    """One :class:`ranking_eval.Repo` per mined package: its blanked tree indexed as code
    under ``work/NAME`` (rebuilt only when the tree changed) and its line-level queries;
    ``index_options`` go to ``retriever.index`` (an encoder, say: its indexes are kept apart,
    under ``index-MODE-ENCODER-TIER``)."""
    summary = json.loads((mined / "mined.json").read_text())
    repos = []
    for name in packages:
        tree = work / name / "tree"
        if not tree.is_dir():
            make_tree(Path(summary[name]["root"]), tree)
        options = {"lexical_only": True} if mode == "lexical" else dict(index_options or {})
        folder = "-".join([f"index-{mode}", *(str(options[key]) for key in ("encoder", "tier")
                                              if options.get(key))])
        index = retriever.index(tree, index_dir=work / name / folder, cache=False, **options)
        repos.append(Repo(name, "python", index, "", load_queries(mined / name, name),
                          indexed_spans(index)))
    return repos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="+")
    parser.add_argument("--mined", type=Path, default=scratch_dir("mined"))
    parser.add_argument("--work", type=Path, default=scratch_dir("line-level"))
    parser.add_argument("--mode", default="lexical", choices=["lexical", "hybrid", "dense"])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ranking")
    args = parser.parse_args()
    rows = {}
    for repo in line_repos(args.packages, args.mined, args.work, args.mode):
        rows[repo.name] = {"queries": len(repo.queries), "chunks": len(repo.index)}
        for label in ("plain", "code"):
            def make(r, label=label):
                if label == "plain":
                    return r.index.stage(args.mode, depth=100)
                return code_pipeline(r.index, mode=args.mode, depth=100)
            scores = score([repo], answer([repo], make, mode=args.mode))
            rows[repo.name][label] = round(scores.mean, 4)
        print(f"{repo.name}: {rows[repo.name]}", flush=True)
    write_json(args.out / f"line-level-{args.mode}.json", {
        "mode": args.mode, "packages": rows,
        "command": " ".join(["python", "benchmarks/line_level.py", *sys.argv[1:]])})


if __name__ == "__main__":
    main()
