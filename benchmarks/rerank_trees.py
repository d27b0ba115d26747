"""Reranker training rows mined inside package trees, negatives from this engine's own ranking.

The first code reranker (``code-rerank-minilm-v1``) learned from BM25 negatives drawn from one
pool of 29,492 functions of 325 packages: look-alikes from *other* packages. At search time it
reorders the top rows of *one* repository: the tests that call a function, the module beside
it, its re-export, the file's other chunks. On the semble benchmark it lost 0.13 NDCG@10
alone. This miner asks each package its own questions, the way a search would:

- function queries: a documented function's docstring, as its first sentence, a web-style
  keyword rewrite or the function's split name (``mine_languages.pick_style``) -> the chunk
  that holds the function;
- file queries: a module docstring's first sentence and its keyword rewrite
  (``mine_files.doc_query``) -> any chunk of that file;

against the package's own tree (tests included: they are the look-alikes the reranker must
learn to put lower), indexed by this engine (lexical-only, the ``code`` preset) with every
docstring blanked, so that a query cannot find its own words. A row's negatives are the
best-ranked rows that are not a target (for a file query, any chunk of another file; for a
function query, any chunk that does not overlap the function, its own file's included) and
not a near-duplicate of the positive. Its positive is the best-ranked target, or the target
chunk the pipeline missed.

Packages: every package of the folders given that the exclusion list allows
(``encoders/train/exclusions.py``), minus the six line-level packages of
``benchmarks/line_level.py``, so that those sets stay unseen. Whole packages go to dev
(``encoders.train.data``'s bucket). Output: ``BUNDLE/train.json.xz`` in the layout
``benchmarks/rerank_bundle.py gpu`` trains from.

    python benchmarks/rerank_trees.py --packages-dir SITE_PACKAGES --packages-dir STDLIB \
        --bundle .carry-rerank --work WORK
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from line_level import blank_docstrings  # noqa: E402
from mine_files import doc_query, file_doc  # noqa: E402
from mine_languages import pick_style, split_name, web_query  # noqa: E402
from rerank_bundle import TEXT_CHARS, write_xz  # noqa: E402

import retriever  # noqa: E402
from encoders.train.data import _dev_bucket  # noqa: E402
from encoders.train.exclusions import excluded_name  # noqa: E402
from encoders.train.mining_sources import is_test_path, python_files, roots  # noqa: E402
from encoders.train.python_pairs import MIN_WORDS, first_sentence  # noqa: E402
from retriever.errors import InputError  # noqa: E402
from retriever.ranking import preset  # noqa: E402
from retriever.rerankers.mining import _near, _words  # noqa: E402
from retriever.rerankers.stage import texts_of  # noqa: E402

# The packages behind the line-level sets: kept out of training so they measure unseen code.
LINE_LEVEL = frozenset({"anyio", "fsspec", "packaging", "joblib", "bm25s",
                        "sentence_transformers"})
MAX_FILE_BYTES = 200_000
_GAP = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


def _closed(text: str) -> str:
    """A chunk's text with the blanked docstrings' empty runs cut to one blank line: the
    lines kept their numbers for the spans, but a chunk at search time has no such gaps."""
    return _GAP.sub("\n\n", text)


def _salt(text: str) -> int:
    return int(hashlib.blake2b(text.encode(), digest_size=4).hexdigest(), 16)


def file_queries(relative: str, text: str) -> list[dict]:
    """The queries one (non-test) file asks: its module doc, its documented functions."""
    found = []
    doc = file_doc("python", text)
    query = doc_query(doc[2]) if doc else None
    if query:
        found.append({"style": "file-doc", "q": query, "path": relative})
        web = web_query(query, "python", _salt(relative))
        if len(web.split()) >= 3:
            found.append({"style": "file-web", "q": web, "path": relative})
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return found
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if node.name.startswith("test") or node.name.startswith("__"):
            continue
        docstring = ast.get_docstring(node)
        sentence = first_sentence(docstring) if docstring else ""
        if len(sentence.split()) < MIN_WORDS or len(sentence) > 300:
            continue
        style, query = pick_style(f"{relative}:{node.lineno}", sentence, split_name(node.name),
                                  "python")
        found.append({"style": f"function-{style}", "q": query, "path": relative,
                      "span": [node.lineno, node.end_lineno]})
    return found


def make_tree(root: Path, tree: Path, max_files: int) -> list[dict]:
    """Copy up to ``max_files`` of the package's files (blanked) under ``tree``; its queries."""
    queries = []
    kept = 0
    for file in python_files(root):
        relative = file.relative_to(root.parent)
        if excluded_name(relative) or file.stat().st_size > MAX_FILE_BYTES:
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        target = tree / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(blank_docstrings(text), encoding="utf-8")
        if not is_test_path(relative.parts):
            queries += file_queries(relative.as_posix(), text)
        kept += 1
        if kept >= max_files:
            break
    return queries


def _is_target(query: dict, chunk) -> bool:
    if chunk.path != query["path"]:
        return False
    if "span" not in query:
        return True
    start, end = query["span"]
    return chunk.start_line <= end and chunk.end_line >= start


def package_rows(name: str, root: Path, work: Path, *, max_files: int, max_queries: int,
                 negatives: int, depth: int) -> tuple[list[dict], dict]:
    """One package's rows ``{q, p, n, style}`` (texts, not yet pooled) and its counts."""
    tree = work / name / "tree"
    queries = make_tree(root, tree, max_files)
    # A query shared by two places of one package is ambiguous: neither is its answer.
    counts: dict[str, int] = {}
    for query in queries:
        counts[query["q"].lower()] = counts.get(query["q"].lower(), 0) + 1
    queries = [q for q in queries if counts[q["q"].lower()] == 1]
    queries.sort(key=lambda q: _salt(q["path"] + q["q"]))
    queries = queries[:max_queries]
    if not queries:
        return [], {"queries": 0}
    try:
        index = retriever.index(tree, index_dir=work / name / "index", lexical_only=True,
                                cache=False)
    except InputError as exc:  # generated or otherwise unindexable only: nothing to ask
        return [], {"queries": len(queries), "skipped": str(exc)[:120]}
    chunks, texts = list(index.chunks()), texts_of(index)
    stage = preset("code", index, mode="lexical", depth=min(100, len(index)), filter=None)
    results = stage([q["q"] for q in queries])
    rows, missed = [], 0
    for query, ids in zip(queries, results.ids, strict=True):
        ranked = [int(r) for r in ids[:depth] if r >= 0]
        targets = [r for r in ranked if _is_target(query, chunks[r])]
        if targets:
            positive = targets[0]
        else:
            # Not in the top rows: the target chunk with the most of the function (or the
            # file's first chunk) is still the answer to teach.
            candidates = [r for r, c in enumerate(chunks) if _is_target(query, c)]
            if not candidates:
                continue
            missed += 1
            if "span" in query:
                start, end = query["span"]
                positive = max(candidates, key=lambda r: min(chunks[r].end_line, end)
                               - max(chunks[r].start_line, start))
            else:
                positive = min(candidates, key=lambda r: chunks[r].start_line)
        words = _words(texts[positive])
        negs = [texts[r] for r in ranked
                if not _is_target(query, chunks[r]) and not _near(_words(texts[r]), words)]
        if len(negs) < negatives:
            continue
        rows.append({"q": query["q"], "p": _closed(texts[positive]),
                     "n": [_closed(n) for n in negs[:negatives]],
                     "style": query["style"]})
    return rows, {"queries": len(queries), "rows": len(rows), "chunks": len(chunks),
                  "positive_outside_top": missed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages-dir", type=Path, action="append", required=True)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True, help="scratch: trees and indexes")
    parser.add_argument("--max-files", type=int, default=300)
    parser.add_argument("--max-queries", type=int, default=200)
    parser.add_argument("--negatives", type=int, default=7)
    parser.add_argument("--depth", type=int, default=30)
    args = parser.parse_args(argv)
    started = time.time()
    pool: dict[str, int] = {}

    def at(text: str) -> int:
        return pool.setdefault(text[:TEXT_CHARS], len(pool))

    rows, sources, skipped = [], {}, []
    for name, root, dist in roots(args.packages_dir, []):
        if name in LINE_LEVEL or excluded_name(name) or \
                excluded_name(dist.get("distribution", "")):
            skipped.append(name)
            continue
        found, counts = package_rows(name, root, args.work, max_files=args.max_files,
                                     max_queries=args.max_queries, negatives=args.negatives,
                                     depth=args.depth)
        if not found:
            continue
        split = "dev" if _dev_bucket(name) else "train"
        rows += [{"q": r["q"], "p": at(r["p"]), "n": [at(n) for n in r["n"]],
                  "style": r["style"], "split": split} for r in found]
        sources[name] = {**dist, **counts, "split": split}
        print(f"[{time.time() - started:.0f}s] {name}: {counts}", flush=True)
    if not rows:
        sys.exit("No rows were mined: the folders hold no documented Python packages.")
    styles: dict[str, int] = {}
    for row in rows:
        styles[row["style"]] = styles.get(row["style"], 0) + 1
    digest = hashlib.blake2b(json.dumps([list(pool), rows]).encode(), digest_size=16)
    data = {"source": "documented functions and module docs of Python packages in no "
            "benchmark, asked of their own blanked trees (benchmarks/rerank_trees.py)",
            "input_hash": digest.hexdigest(), "styles": styles,
            "negatives": f"{args.negatives} a query: this engine's lexical `code` preset over "
            f"the package's own tree, top {args.depth}, targets and near-duplicates dropped",
            "packages": sources, "skipped": sorted(skipped),
            "command": "python benchmarks/rerank_trees.py " + " ".join(
                a if not Path(a).is_absolute() else Path(a).name for a in sys.argv[1:])}
    write_xz(args.bundle / "train.json.xz", {"pool": list(pool), "rows": rows, "data": data})
    print(f"{len(rows)} rows ({sum(r['split'] == 'dev' for r in rows)} dev) from "
          f"{len(sources)} packages, {len(pool)} texts, styles {styles}, hash "
          f"{digest.hexdigest()}, {time.time() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
