"""The shared vector cache: re-indexing a copy of a tree in another folder embeds nothing.

Three builds of the same files, each in a fresh process (so no model or memo is shared
between them), all with the default model and one fresh cache folder:

1. the tree itself (a cold cache: everything is embedded);
2. a copy of the tree in another folder (no index there; the cache holds every vector);
3. the same copy rebuilt with ``--no-cache`` and ``--force`` in a third folder: the baseline a
   build without the cache pays.

    python benchmarks/cache_reuse.py [TREE] [--json benchmarks/results/cache_reuse.json]

Reported per build: chunks, chunks embedded, chunks read from the cache, wall time of the
``retriever index`` command (model load included).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]


def _build(tree: Path, cache: Path, *extra: str) -> dict:
    env = {**os.environ, "DENSE_RETRIEVER_CACHE": str(cache)}
    code = (
        "import json, sys, retriever\n"
        "extra = json.loads(sys.argv[2])\n"
        "r = retriever.index(sys.argv[1], **extra).last_build\n"
        "print(json.dumps({'chunks': r.chunks, 'embedded': r.embedded, 'cached': r.cached,"
        " 'reused': r.reused}))\n"
    )
    options = {"cache": False, "force": True} if "--no-cache" in extra else {}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, str(tree), json.dumps(options)],
                         env=env, capture_output=True, text=True, check=True, cwd=_REPO)
    seconds = time.perf_counter() - started
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "seconds": round(seconds, 2)}


def _copy(tree: Path, target: Path) -> Path:
    shutil.copytree(tree, target, ignore=shutil.ignore_patterns(".retriever", ".git"))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", nargs="?", default=str(_REPO), help="tree to index [this repo]")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        original = _copy(Path(args.tree), tmp / "original")
        rows = {
            "first build (cold cache)": _build(original, cache),
            "copy in another folder": _build(_copy(original, tmp / "copy"), cache),
            "copy, --no-cache (baseline)": _build(_copy(original, tmp / "copy2"), cache,
                                                  "--no-cache"),
        }
    base = rows["copy, --no-cache (baseline)"]["seconds"]
    print("| build | chunks | embedded | from cache | wall s | vs no cache |")
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['chunks']} | {row['embedded']} | {row['cached']} | "
              f"{row['seconds']} | {row['seconds'] / base:.2f}x |")
    if args.json:
        Path(args.json).write_text(json.dumps({"tree": Path(args.tree).name, "builds": rows},
                                              indent=2) + "\n")


if __name__ == "__main__":
    main()
