"""Encoding speed of a 2D-Matryoshka model cut to fewer layers, against its full depth, in one run.

The shipped ``code-minilm-mat-v1`` was trained so that its first 3 of 6 layers make an
encoder of their own (with the ``layer3`` head, :mod:`encoders.head`). This script measures
what the cut buys on the CPU: both encoders are built once in this process (loading and a
warm-up are not timed), torch is pinned to ``--threads`` intra-op threads, and the two are
timed side by side under the same load, alternating which goes first:

- documents: every text encoded by each variant in ``--rounds`` rounds (one call of
  ``encode_documents`` per variant a round); throughput in texts/s (wall and CPU time of the
  process, all threads), the median over rounds, and the ratio full/cut of the medians
  and the median of the per-round ratios (the same round, moments apart: steadier under a
  changing load);
- queries: ``--query-passes`` passes over a fixed list of short natural-language queries,
  one ``encode_queries([q])`` call per query and variant (an interactive search), the
  variant order alternating per query; p50/p95 of wall time, p50 of CPU time, the ratio
  full/cut of the p50s and the median of the per-query ratios.

As a sanity number it ranks the documents for every query with both variants (inner
product, top 10) and reports the mean overlap@10 of the cut's ranking with the full depth's,
with the head (what is timed) and without it (one more, untimed pass).

Documents are the engine's own chunks (:func:`chunking.walk`, the default ``CastChunker``,
:func:`chunking.embedding_text`: what an index embeds) of ``--tree``, by default the
engine's ``retriever/`` folder; ``--max-texts`` keeps an evenly spaced sample of them.
The absolute numbers depend on the machine's load (the load average is recorded before and
after); the ratios are what this measures.

Examples::

    python benchmarks/layer_speed.py                       # the engine's retriever/ folder
    python benchmarks/layer_speed.py --tree . --max-texts 2000 \\
        --out benchmarks/results/retention/layer_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(HERE))

from query_latency import percentile  # noqa: E402

# Short natural-language queries of the kind a code search gets; none depends on the tree.
QUERIES = [
    "parse command line arguments", "read a json file", "write a file atomically",
    "compute a hash of a file", "walk a directory tree", "skip ignored files",
    "split source code into chunks", "detect the programming language of a file",
    "encode texts into vectors", "normalise vectors to unit length", "load model weights",
    "cache loaded models", "search the index for a query", "rank results by score",
    "merge two ranked lists", "reciprocal rank fusion", "bm25 scoring of documents",
    "tokenise a query into words", "build an inverted index", "open an existing index",
    "lock the index while writing", "retry when the file is locked", "rebuild a stale index",
    "check that the index matches the encoder", "watch files for changes",
    "report progress during a long build", "limit the number of threads",
    "start worker processes", "send messages between processes", "handle a timeout",
    "raise an error for bad user input", "format an error message", "print a table of results",
    "serve search over a protocol", "filter results by path", "exclude test files",
    "compute the line numbers of a chunk", "find the definition of a function",
    "extract symbol names from a syntax tree", "approximate nearest neighbour search",
    "quantise vectors to bits", "rescore candidates with exact vectors",
    "store vectors on disk", "memory map a large array", "read a configuration dictionary",
    "rebuild an object from its config", "register plugins by name",
    "measure query latency", "rerank the top results", "truncate long texts to a token limit",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=REPOSITORY / "retriever",
                        help="folder of source code whose chunks are the documents "
                             "(default: the engine's retriever/ folder)")
    parser.add_argument("--max-texts", type=int, default=2000,
                        help="keep an evenly spaced sample of at most this many chunks")
    parser.add_argument("--model", default="code-minilm-mat-v1")
    parser.add_argument("--layers", type=int, default=3, help="the cut variant's depth")
    parser.add_argument("--head", default="layer3",
                        help="head of the cut variant ('' for none)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--query-threads", type=int, default=1,
                        help="the encoders' query_threads (the cap of a single query's call; "
                             "1 is the encoder's default, what search uses)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=3, help="document rounds per variant")
    parser.add_argument("--query-passes", type=int, default=4,
                        help="passes over the query list (single-query calls)")
    parser.add_argument("--out", type=Path, default=None, help="JSON results")
    args = parser.parse_args()
    for label in ("max_texts", "layers", "threads", "query_threads", "rounds", "query_passes"):
        if getattr(args, label) < 1:
            parser.error(f"--{label.replace('_', '-')} must be at least 1")

    import torch

    torch.set_num_threads(args.threads)
    texts, total = document_texts(args.tree, args.max_texts)
    if not texts:
        raise SystemExit(f"No chunks under {args.tree}; pass a folder of source code.")
    encoders, load_s = build_encoders(args, texts)
    load_before = os.getloadavg()
    documents = time_documents(encoders, texts, args.rounds)
    queries = time_queries(encoders, QUERIES, args.query_passes)
    load_after = os.getloadavg()
    agreement = overlap(encoders, texts, documents.pop("vectors"))
    summary = {
        "model": args.model, "cut": {"layers": args.layers, "head": args.head or None},
        "texts": len(texts), "chunks_in_tree": total, "queries": len(QUERIES),
        "query_calls_per_variant": len(QUERIES) * args.query_passes,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "query_threads": args.query_threads, "device": args.device,
        "cpus": len(os.sched_getaffinity(0)), "load_seconds": load_s,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "documents": documents["summary"], "queries_single": queries["summary"],
        "agreement": agreement,
    }
    result = {"summary": summary, "document_rounds": documents["rounds"],
              "query_ms": queries["ms"], "query_cpu_ms": queries["cpu_ms"],
              "command": " ".join(["python", "benchmarks/layer_speed.py", *sys.argv[1:]])}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


def document_texts(tree: Path, limit: int) -> tuple[list[str], int]:
    """Embedding texts of the tree's chunks (an evenly spaced sample of at most ``limit``)
    and how many chunks the tree has."""
    import retriever
    from chunking import CastChunker, embedding_text, read_source, walk

    chunker = CastChunker()
    texts = []
    for file in walk(tree).files:
        try:
            source = read_source(file)
        except (OSError, UnicodeError, retriever.RetrieverError):
            continue  # unreadable files are skipped by a build too
        texts.extend(embedding_text(chunk) for chunk in chunker.chunk(file.path, source))
    if len(texts) <= limit:
        return texts, len(texts)
    picked = np.linspace(0, len(texts) - 1, limit).round().astype(int)
    return [texts[i] for i in picked], len(texts)


def build_encoders(args, texts: list[str]) -> tuple[dict, dict]:
    """The full and the cut encoder, loaded and warmed up (seconds of each load returned)."""
    from encoders.sentence import SentenceTransformerEncoder

    common = {"model": args.model, "device": args.device, "query_threads": args.query_threads}
    cut_name = f"layers{args.layers}" + ("+head" if args.head else "")
    encoders = {
        "full": SentenceTransformerEncoder(**common),
        cut_name: SentenceTransformerEncoder(**common, layers=args.layers,
                                             head=args.head or None),
    }
    seconds = {}
    for name, encoder in encoders.items():
        started = time.perf_counter()
        encoder.encode_documents(texts[:64])
        for query in QUERIES[:5]:
            encoder.encode_queries([query])
        encoder.encode_queries(QUERIES[:8])
        seconds[name] = round(time.perf_counter() - started, 2)
    return encoders, seconds


def time_documents(encoders: dict, texts: list[str], rounds: int) -> dict:
    names = list(encoders)
    per_round, vectors = [], {}
    for number in range(rounds):
        order = names if number % 2 == 0 else names[::-1]
        row: dict = {"order": order, "load": round(os.getloadavg()[0], 2)}
        for name in order:
            started, cpu = time.perf_counter(), time.process_time()
            encoded = encoders[name].encode_documents(texts)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            row[name] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                         "texts_per_s": round(len(texts) / wall, 2),
                         "texts_per_cpu_s": round(len(texts) / cpu, 2)}
            vectors.setdefault(name, encoded)
        per_round.append(row)
    full, cut = names
    summary: dict = {"rounds": rounds}
    for name in names:
        summary[name] = {key: round(statistics.median(r[name][key] for r in per_round), 2)
                         for key in ("texts_per_s", "texts_per_cpu_s")}
    summary["speedup_wall"] = round(summary[cut]["texts_per_s"] / summary[full]["texts_per_s"], 3)
    summary["speedup_cpu"] = round(
        summary[cut]["texts_per_cpu_s"] / summary[full]["texts_per_cpu_s"], 3)
    summary["median_paired_speedup_wall"] = round(statistics.median(
        r[full]["wall_s"] / r[cut]["wall_s"] for r in per_round), 3)
    return {"summary": summary, "rounds": per_round, "vectors": vectors}


def time_queries(encoders: dict, queries: list[str], passes: int) -> dict:
    names = list(encoders)
    ms: dict[str, list[float]] = {n: [] for n in names}
    cpu_ms: dict[str, list[float]] = {n: [] for n in names}
    step = 0
    for _ in range(passes):
        for query in queries:
            # Alternate who goes first, so neither always runs right after the other.
            order = names if step % 2 == 0 else names[::-1]
            step += 1
            for name in order:
                started, cpu = time.perf_counter(), time.process_time()
                encoders[name].encode_queries([query])
                ms[name].append((time.perf_counter() - started) * 1000)
                cpu_ms[name].append((time.process_time() - cpu) * 1000)
    full, cut = names
    summary: dict = {}
    for name in names:
        summary[name] = {"p50_ms": round(statistics.median(ms[name]), 3),
                         "p95_ms": round(percentile(ms[name], 0.95), 3),
                         "cpu_p50_ms": round(statistics.median(cpu_ms[name]), 3)}
    summary["speedup_p50"] = round(summary[full]["p50_ms"] / summary[cut]["p50_ms"], 3)
    summary["speedup_cpu_p50"] = round(
        summary[full]["cpu_p50_ms"] / summary[cut]["cpu_p50_ms"], 3)
    summary["median_paired_speedup"] = round(statistics.median(
        f / c for f, c in zip(ms[full], ms[cut], strict=True)), 3)
    return {"summary": summary, "ms": ms, "cpu_ms": cpu_ms}


def overlap(encoders: dict, texts: list[str], documents: dict[str, np.ndarray]) -> dict:
    """Mean overlap@10 of the cut variant's document ranking with the full depth's, over the
    queries; also of the cut without its head (an untimed pass of the bare cut)."""
    full, cut = encoders
    k = min(10, len(texts))

    def top(queries: np.ndarray, docs: np.ndarray) -> np.ndarray:
        return np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :k]

    reference = top(encoders[full].encode_queries(QUERIES), documents[full])

    def mean_overlap(ranked: np.ndarray) -> float:
        shared = [len(set(a) & set(b)) / k for a, b in zip(reference, ranked, strict=True)]
        return round(float(np.mean(shared)), 4)

    found = {"k": k, f"{cut}_vs_full": mean_overlap(
        top(encoders[cut].encode_queries(QUERIES), documents[cut]))}
    view = encoders[cut].cache_view()
    if view is not None and encoders[cut].head is not None:
        bare = view[0]  # the same loaded model without the head
        found[f"{cut.removesuffix('+head')}_bare_vs_full"] = mean_overlap(
            top(bare.encode_queries(QUERIES), bare.encode_documents(texts)))
    return found


if __name__ == "__main__":
    main()
