"""Mining and embedding for benchmarks/ann_million.py: windows of the machine's own files.

Chunks: windows of 30 lines (stride 30) of the machine's own source and documentation files
(site-packages and standard library, /usr/include, CUDA headers, /usr/share/doc), files in
a seeded random order, exact duplicate windows dropped; the embedded text is the engine's
window text, ``path`` header then the lines. Queries: 1,000 held-out windows (never indexed),
each as two queries: its whole text (``doc``) and its first line of three or more words,
comment markers stripped (``short``). Run through ``ann_million.py mine`` and ``embed``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import sysconfig
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

WINDOW = 30
SUFFIXES = {".py", ".pyi", ".pyx", ".pxd", ".h", ".hh", ".hpp", ".hxx", ".cuh", ".inl", ".c",
            ".cc", ".cpp", ".cxx", ".cu", ".js", ".mjs", ".ts", ".java", ".go", ".rs", ".rb",
            ".pl", ".pm", ".sh", ".cmake", ".md", ".rst", ".tex", ".lua", ".f90", ".proto",
            ".txt", ".html", ".css", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".xml", ".json",
            ".in", ".def", ".inc", ".td", ".s", ".S", ".cs", ".php", ".swift", ".kt", ".scala",
            ".m", ".mm", ".jsx", ".tsx", ".el", ".hs", ".ml", ".r", ".R", ".jl", ".mk", ".am",
            ".ac", ".m4", ".tcc", ".tpp", ".ipp", ".cl", ".sql", ".bzl", ".gradle", ".pyf"}
MAX_FILE_BYTES = 4 << 20
QUERIES = 1000
_WORDS = re.compile(r"[A-Za-z]{2,}")
_COMMENT = re.compile(r"^\s*(#+|//+|/\*+|\*+|--|\"\"\"|'''|;+)\s*")

# ---- mining ---------------------------------------------------------------------------

def default_roots() -> list[Path]:
    paths = sysconfig.get_paths()
    roots = [paths["stdlib"], paths["purelib"], paths["platlib"], "/usr/include",
             "/usr/local/include", "/usr/local/cuda/include", "/usr/share/doc"]
    seen, found = set(), []
    for root in roots:
        real = os.path.realpath(root)
        if os.path.isdir(real) and real not in seen:
            seen.add(real)
            found.append(Path(real))
    return found


def source_files(roots: list[Path]) -> list[tuple[str, str]]:
    """(root, relative path) of every file with a wanted suffix, outside excluded packages."""
    from encoders.train.exclusions import excluded_name

    found, seen = [], set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if os.path.splitext(name)[1] not in SUFFIXES:
                    continue
                full = os.path.join(dirpath, name)
                real = os.path.realpath(full)
                relative = os.path.relpath(full, root)
                if real in seen or excluded_name(relative) is not None:
                    continue
                seen.add(real)
                found.append((str(root), relative))
    return found


def windows_of(job: tuple[str, str, int]) -> list[tuple[str, str]]:
    """(relative path, window lines) of one file: 30-line windows holding real text, the
    first starting at line ``offset`` + 1."""
    root, relative, offset = job
    path = Path(root, relative)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return []
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError, ValueError):
        return []
    lines = source.splitlines()
    if not lines or sum(map(len, lines)) / len(lines) > 200:  # minified or data
        return []
    found = []
    for start in range(offset, len(lines), WINDOW):
        piece = lines[start : start + WINDOW]
        body = "\n".join(piece)
        if sum(1 for line in piece if line.strip()) >= 5 and len("".join(body.split())) >= 100:
            found.append((relative, body))
    return found


def short_query(body: str) -> str:
    """The first line of three or more words, comment markers stripped; else the first line."""
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    for line in lines:
        text = _COMMENT.sub("", line).strip()
        if len(_WORDS.findall(text)) >= 3:
            return text[:200]
    return lines[0][:200] if lines else body[:200]


def mine(roots: list[Path], target: int, *, seed: int = 0, processes: int | None = None,
         seconds: float | None = None, offsets: tuple[int, ...] = (0,)
         ) -> tuple[list[str], list[str], dict]:
    """``target`` distinct window texts (``path`` header, then the lines) and their paths."""
    started = time.perf_counter()
    files = source_files(roots)
    random.Random(seed).shuffle(files)
    texts, paths, seen = [], [], set()
    duplicates, by_offset = 0, {}
    # A second pass, windows shifted by half a window, only if the first falls short: each
    # such window shares 15 lines with two of the first pass (the result says how many).
    for offset in offsets:
        if len(texts) >= target:
            break
        before = len(texts)
        jobs = [(root, relative, offset) for root, relative in files]
        # In slices, stopping between them: terminating a pool in the middle of an imap
        # hung a 16-process run on the GPU machine past its time limit.
        with Pool(processes or min(16, os.cpu_count() or 1)) as pool:
            for first in range(0, len(jobs), 4096):
                if len(texts) >= target or (seconds and time.perf_counter() - started > seconds):
                    break
                for found in pool.map(windows_of, jobs[first : first + 4096], chunksize=32):
                    for relative, body in found:
                        key = hashlib.blake2b(body.encode("utf-8"), digest_size=16).digest()
                        if key in seen:
                            duplicates += 1
                            continue
                        seen.add(key)
                        texts.append(f"{relative}\n{body}")
                        paths.append(relative)
        by_offset[offset] = len(texts) - before
    stats = {"roots": [str(r) for r in roots], "files_listed": len(files), "texts": len(texts),
             "windows_by_offset": by_offset,
             "duplicates_dropped": duplicates, "seconds": time.perf_counter() - started,
             "mean_chars": float(np.mean([len(t) for t in texts])) if texts else 0.0}
    return texts[:target], paths[:target], stats


def split_queries(texts: list[str], count: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of the held-out queries and of the indexed rest (both sorted)."""
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(len(texts), size=min(count, len(texts) // 2), replace=False))
    rest = np.setdiff1d(np.arange(len(texts)), held)
    return held, rest


def cmd_mine(args) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    roots = [Path(r) for r in args.roots] if args.roots else default_roots()
    texts, paths, stats = mine(roots, args.target, processes=args.processes,
                               seconds=args.seconds, offsets=tuple(args.offsets))
    held, rest = split_queries(texts, args.queries)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"text": [texts[i] for i in rest], "path": [paths[i] for i in rest]}),
                   work / "chunks.parquet")
    bodies = [texts[i].split("\n", 1)[1] for i in held]
    pq.write_table(pa.table({"doc": [texts[i] for i in held],
                             "short": [short_query(b) for b in bodies]}),
                   work / "queries.parquet")
    suffixes: dict[str, int] = {}
    for path in paths:
        suffix = os.path.splitext(path)[1]
        suffixes[suffix] = suffixes.get(suffix, 0) + 1
    return {**stats, "indexed": len(rest), "queries": len(held),
            "by_suffix": dict(sorted(suffixes.items(), key=lambda kv: -kv[1])[:12])}


# ---- embedding (GPU machine, or the CPU at tiny scale) --------------------------------

# FastEncoder's settings a gpu_encode.py row may state (older rows state the first three).
_SETTINGS = ("precision", "batch_tokens", "half_weights", "tokenise_workers", "words", "compile",
             "batch_workers", "forward", "kernels")


def pick_settings(gpu_encode: dict | None) -> dict:
    """The fastest fast-path variant whose vectors stay within cosine 0.999 of fp32 (the
    ``previous`` row measures an older version of the code, which this one cannot run)."""
    rows = [r for r in (gpu_encode or {}).get("fast", [])
            if r["min_cosine"] >= 0.999 and r.get("variant") != "previous"]
    if not rows:
        return {"precision": "auto", "batch_tokens": None, "half_weights": None}
    best = max(rows, key=lambda r: r["chunks_per_s"])
    return {k: best[k] for k in _SETTINGS if k in best}


def cmd_embed(args) -> dict:
    import pyarrow.parquet as pq
    import torch
    from gpu_encode import _load

    from encoders.fast_encode import FastEncoder

    work = Path(args.work)
    measured = Path(args.settings) if args.settings else None
    settings = pick_settings(json.loads(measured.read_text())
                             if measured and measured.is_file() else None)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = _load(args.model, device)
    encoder = FastEncoder(model, **settings)
    texts = pq.read_table(work / "chunks.parquet", columns=["text"]).column("text").to_pylist()
    queries = pq.read_table(work / "queries.parquet")
    encoder.encode(texts[:2048])
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    sync()
    seconds = time.perf_counter() - started
    np.save(work / "vectors.npy", vectors)
    for column in ("doc", "short"):
        np.save(work / f"queries_{column}.npy",
                encoder.encode(queries.column(column).to_pylist()))
    return {"device": device, "settings": settings, "vectors": int(len(vectors)),
            "dim": int(vectors.shape[1]), "seconds": seconds,
            "chunks_per_s": len(texts) / seconds}
