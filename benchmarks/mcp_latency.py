"""Warm `search` latency of `retriever mcp` through a real MCP client (the SDK's stdio client).

    python benchmarks/mcp_latency.py TREE [--kinds lexical,fast,default] [--rounds 3]
        [--json benchmarks/results/mcp_latency.json]

TREE is a repository, e.g. one of the semble benchmark's exported trees (aiohttp is the
median by file count). It is copied to a temporary folder (its own files stay untouched),
indexed once per kind (not timed): ``lexical`` (BM25 only, answered in lexical mode),
``fast`` (the static encoder's tier, ``retriever.index(tier="fast")``, hybrid) and ``default``
(the default model's vectors, hybrid). Then a server is spawned
on the copy, warmed up (status and a few searches, so the query encoder is loaded), and every
query is sent ``--rounds`` times; each timing is one `tools/call` round trip as the client
sees it (JSON-RPC over pipes, the search, the payload and its token budget). The queries are
the tree's semble annotations when found (``--annotations``, else the shared benchmark's
``annotations/<tree name>.json``), else a fixed list. The goal is p50 <= 50 ms.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from locations import semble_dir  # noqa: E402

import retriever  # noqa: E402

# What each kind of index is built with.
_KINDS = {"lexical": {"lexical_only": True}, "fast": {"tier": "fast"}, "default": {}}
_FALLBACK = ["how is a request retried", "parse the configuration file", "open a connection",
             "where are errors logged", "serialize a response to JSON", "read the headers"]


def _queries(tree: Path, annotations: Path | None) -> list[str]:
    path = annotations or semble_dir() / "annotations" / f"{tree.name}.json"
    if path.is_file():
        return [entry["query"] for entry in json.loads(path.read_text())]
    return list(_FALLBACK)


def _command() -> list[str]:
    found = shutil.which("retriever", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-c",
                                  "from retriever.cli.app import main; main()"]


async def _measure(tree: Path, queries: list[str], rounds: int) -> dict:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    command = _command()
    params = StdioServerParameters(command=command[0], args=[*command[1:], "mcp", str(tree)],
                                   env={"HF_HUB_OFFLINE": "1", **{
                                       k: v for k, v in os.environ.items()
                                       if k.startswith("DENSE_RETRIEVER_")}})
    started = time.perf_counter()
    async with stdio_client(params) as streams, ClientSession(*streams) as session:
        await session.initialize()
        first = time.perf_counter() - started
        status = json.loads((await session.call_tool("status", {})).content[0].text)
        for query in queries[:3]:  # warm: the encoder loads, pages are mapped
            await session.call_tool("search", {"query": query, "k": 5})
        seconds = []
        for _ in range(rounds):
            for query in queries:
                began = time.perf_counter()
                result = await session.call_tool("search", {"query": query, "k": 5})
                seconds.append(time.perf_counter() - began)
                if result.is_error:
                    raise SystemExit(f"search failed: {result.content[0].text}")
    ordered = sorted(seconds)
    return {"chunks": status["chunks"], "modes": status["modes"], "calls": len(seconds),
            "startup_s": round(first, 3),
            "p50_ms": round(1000 * statistics.median(seconds), 2),
            "p90_ms": round(1000 * ordered[int(0.9 * (len(ordered) - 1))], 2),
            "p99_ms": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 2),
            "mean_ms": round(1000 * statistics.fmean(seconds), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path, help="repository to serve (copied first)")
    parser.add_argument("--kinds", default="lexical,default",
                        help="comma list of lexical, fast and default")
    parser.add_argument("--rounds", type=int, default=3, help="times each query is sent")
    parser.add_argument("--annotations", type=Path, help="semble annotations of the tree")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    tree = args.tree.expanduser().resolve()
    queries = _queries(tree, args.annotations)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for kind in args.kinds.split(","):
            if kind not in _KINDS:
                parser.error(f"unknown kind {kind!r}: choose from {', '.join(_KINDS)}")
            if kind == "fast" and "tier" not in inspect.signature(retriever.index).parameters:
                parser.error("this version of retriever.index has no tier= (no fast tier)")
            copy = Path(scratch) / kind / tree.name
            shutil.copytree(tree, copy, symlinks=True,
                            ignore=shutil.ignore_patterns(".retriever", ".git"))
            began = time.perf_counter()
            built = retriever.index(copy, **_KINDS[kind])
            build_s = time.perf_counter() - began
            results[kind] = {"build_s": round(build_s, 1), "files": built.last_build.files,
                             **anyio.run(_measure, copy, queries, args.rounds)}
    print("| index | chunks | modes | calls | p50 ms | p90 ms | p99 ms | startup s |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, row in results.items():
        print(f"| {kind} | {row['chunks']} | {row['modes'][0]} | {row['calls']} | "
              f"{row['p50_ms']} | {row['p90_ms']} | {row['p99_ms']} | {row['startup_s']} |")
    if args.json:
        args.json.write_text(json.dumps({"tree": tree.name, "queries": len(queries),
                                         "rounds": args.rounds, "kinds": results}, indent=2)
                             + "\n")


if __name__ == "__main__":
    main()
