"""Mine query -> function benchmarks from installed packages (outside this project).

usage:
    python benchmarks/mine_packages.py bm25s sentence_transformers     # to ../bench/mined
    python benchmarks/run_beir.py mined-bm25s --folder ../bench/mined/bm25s --split test

Each package's source folder is found with importlib (site-packages) and mined with
``eval.miner.mine`` (documented functions: docstring -> query, body without docstring -> doc),
written in BEIR layout under OUT/NAME, split ``test``. Pick packages that are neither in the
semble benchmark nor httpx, jinja2, rich, axios, cobra.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from locations import scratch_dir  # noqa: E402

from eval.miner import mine  # noqa: E402

EXCLUDED = {
    "httpx",
    "jinja2",
    "rich",
    "axios",
    "cobra",
    "aiohttp",
    "fastapi",
    "flask",
    "pydantic",
    "requests",
    "starlette",
    "click",
    "model2vec",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="+")
    parser.add_argument("--out", type=Path, default=scratch_dir("mined"))
    args = parser.parse_args()
    summary = {}
    for name in args.packages:
        if name.lower() in EXCLUDED:
            sys.exit(f"{name} is a benchmark corpus elsewhere; pick another package")
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            sys.exit(f"{name} is not an installed package")
        root = Path(next(iter(spec.submodule_search_locations)))
        version = None
        try:
            from importlib.metadata import version as dist_version

            version = dist_version(name.replace("_", "-"))
        except Exception:  # noqa: BLE001 - a version is only informative
            pass
        bench = mine(root, languages=["python"], out=args.out / name)
        summary[name] = {
            "root": str(root),
            "version": version,
            "queries": len(bench.queries),
            "corpus": len(bench.corpus),
        }
        print(
            f"{name} {version}: {len(bench.queries)} queries over {len(bench.corpus)} "
            f"functions from {root} -> {args.out / name}"
        )
    (args.out / "mined.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
