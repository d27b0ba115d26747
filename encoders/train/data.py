"""Training data for the static code encoder: (docstring -> code) pairs and code chunks.

Mined from Python source folders with the standard library's ``ast`` (no tree-sitter, so the
same code runs on a bare training machine), and read from BEIR folders that ``retriever eval
mine`` wrote for other languages. Every source is checked against the exclusion list
(:mod:`encoders.train.exclusions`); duplicates go (exact, and the same code with other
names); a query shared by different functions is ambiguous and goes too.

A pair's document is what the engine embeds for a chunk: a ``path :: symbol`` header line, then
the function without its docstring (the query is its docstring's first sentence). Chunks are
functions and classes as they are, docstrings kept, with the same header.

Output folder (``mine``): ``pairs.jsonl.xz`` (``query``, ``code``, ``source``, ``split``),
``chunks.jsonl.xz`` (``text``, ``source``), ``manifest.json`` (sources with version and licence,
counts, the exclusion list, a content hash of both files).

    python -m encoders.train.data mine --packages-dir SITE_PACKAGES --out DATA_DIR
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from encoders.train.exclusions import check_sources, excluded_name, excluded_names
from encoders.train.mining_sources import is_test_path, python_files, roots

# One file's pairs and chunks live in python_pairs; these names stay importable from here.
from encoders.train.python_pairs import (  # noqa: F401
    MAX_CHUNK_CHARS,
    MIN_LINES,
    MIN_WORDS,
    Pair,
    first_sentence,
    python_items,
)
from retriever.errors import InputError

__all__ = ["Pair", "data_hash", "first_sentence", "mine", "python_items", "read_jsonl",
           "write_jsonl_xz"]


_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def _code_key(code: str) -> str:
    body = code.split("\n", 1)[-1]
    return hashlib.blake2b(" ".join(body.split()).encode(), digest_size=12).hexdigest()


def _shape_key(code: str) -> str:
    # The same function under other names (transformers copies one model's code into the
    # next with the class names changed): identifiers and whitespace do not count.
    body = code.split("\n", 1)[-1]
    shape = _IDENTIFIER.sub("x", "".join(body.split()))
    return hashlib.blake2b(shape.encode(), digest_size=12).hexdigest()


def _corpus_keys(folder: Path) -> set[str]:
    """Code keys of a BEIR corpus that must not appear in the training data."""
    keys = set()
    for row in read_jsonl(folder / "corpus.jsonl"):
        keys.add(_code_key("\n" + str(row.get("text", ""))))
    return keys


def read_jsonl(path: Path) -> Iterator[dict]:
    """Rows of a ``.jsonl`` or ``.jsonl.xz`` file."""
    opener = lzma.open if path.suffix == ".xz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError as exc:
                        raise InputError(f"{path}:{number}: not a JSON line ({exc}).") from exc
    except (OSError, lzma.LZMAError) as exc:
        raise InputError(f"{path}: cannot read training data ({exc}).") from exc


def _beir_pairs(folder: Path) -> list[Pair]:
    corpus = {row["_id"]: row.get("text", "") for row in read_jsonl(folder / "corpus.jsonl")}
    queries = {row["_id"]: row.get("text", "") for row in read_jsonl(folder / "queries.jsonl")}
    pairs = []
    for qrels in sorted((folder / "qrels").glob("*.tsv")):
        for line in qrels.read_text(encoding="utf-8").splitlines()[1:]:
            query_id, doc_id, *_ = line.split("\t")
            if query_id in queries and doc_id in corpus:
                # Mined doc ids are "path:start-end"; the path is the source to check.
                path = doc_id.rsplit(":", 1)[0]
                header = f"{folder.name}/{path}\n"
                pairs.append(Pair(queries[query_id], header + corpus[doc_id],
                                  f"{folder.name}/{path}"))
    return pairs


def data_hash(folder: Path) -> str:
    """blake2b-128 of the data files' bytes, as the manifest records it."""
    hasher = hashlib.blake2b(digest_size=16)
    for name in ("pairs.jsonl.xz", "chunks.jsonl.xz"):
        hasher.update(name.encode())
        hasher.update((folder / name).read_bytes())
    return hasher.hexdigest()


def _dev_bucket(package: str) -> bool:
    # Whole packages go to dev, so dev code is unseen code, not a twin of a training function.
    return int(hashlib.blake2b(package.encode(), digest_size=4).hexdigest(), 16) % 25 == 0


def mine(
    out: Path,
    *,
    packages_dirs: Iterable[Path] = (),
    packages: Iterable[Path] = (),
    beir: Iterable[Path] = (),
    exclude_corpora: Iterable[Path] = (),
    max_pairs: int = 12000,
    max_chunks: int = 3000,
) -> dict:
    """Mine pairs and chunks into ``out`` and return its manifest.

    Args:
        out: the folder to write (created).
        packages_dirs: folders of packages (a ``site-packages``, a ``lib/python3.X``): each
            child folder or module is one source.
        packages: single package folders.
        beir: BEIR folders written by ``retriever eval mine`` (other languages).
        exclude_corpora: BEIR corpora whose code must not be trained on (CoSQA).
        max_pairs: cap on the pairs of one source, so no one package dominates.
        max_chunks: cap on the chunks of one source.

    Raises:
        InputError: a folder is missing, or nothing was mined.
    """
    blocked = set()
    for corpus in exclude_corpora:
        blocked |= _corpus_keys(Path(corpus))
    seen_code: set[str] = set(blocked)
    seen_shape: set[str] = set()
    by_query: dict[str, list[tuple[Pair, str]]] = {}
    chunks: list[tuple[str, str]] = []
    sources: dict[str, dict] = {}
    skipped: dict[str, int] = {}
    for name, root, dist in roots(map(Path, packages_dirs), map(Path, packages)):
        hit = excluded_name(name) or excluded_name(dist.get("distribution", ""))
        if hit:
            skipped[name] = skipped.get(name, 0) + 1
            continue
        n_pairs = n_chunks = 0
        split = "dev" if _dev_bucket(name) else "train"
        for file in python_files(root):
            relative = file.relative_to(root.parent)
            if excluded_name(relative) or is_test_path(relative.parts):
                continue
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            file_pairs, file_chunks = python_items(relative.as_posix(), text)
            for pair in file_pairs:
                key, shape = _code_key(pair.code), _shape_key(pair.code)
                if n_pairs < max_pairs and key not in seen_code and shape not in seen_shape:
                    seen_code.add(key)
                    seen_shape.add(shape)
                    by_query.setdefault(pair.query.lower(), []).append((pair, split))
                    n_pairs += 1
            for chunk in file_chunks:
                key = _code_key(chunk)
                if n_chunks < max_chunks and key not in seen_code and key not in blocked:
                    seen_code.add(key)
                    chunks.append((chunk, name))
                    n_chunks += 1
        if n_pairs or n_chunks:
            sources[name] = {**dist, "pairs": n_pairs, "chunks": n_chunks, "split": split}
    for folder in map(Path, beir):
        pairs = _beir_pairs(folder)
        for pair in pairs:
            if excluded_name(pair.source):
                skipped[pair.source.split("/")[1]] = 1
            elif _code_key(pair.code) not in seen_code:
                seen_code.add(_code_key(pair.code))
                by_query.setdefault(pair.query.lower(), []).append((pair, "train"))
        sources[folder.name] = {"pairs": len(pairs), "chunks": 0, "split": "train",
                                "from": "retriever eval mine"}
    # A query that several different functions answer teaches nothing but noise.
    kept = [entries[0] for entries in by_query.values() if len(entries) == 1]
    if not kept:
        raise InputError("Nothing was mined: no documented Python functions in the folders given.")
    check_sources(pair.source for pair, _ in kept)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl_xz(out / "pairs.jsonl.xz", (
        {"query": p.query, "code": p.code, "source": p.source, "split": s} for p, s in kept))
    write_jsonl_xz(out / "chunks.jsonl.xz", ({"text": t, "source": s} for t, s in chunks))
    manifest = {
        "format": "dense-retriever static training data", "version": 1,
        "pairs": {"train": sum(s == "train" for _, s in kept),
                  "dev": sum(s == "dev" for _, s in kept)},
        "chunks": len(chunks),
        "ambiguous_queries_dropped": sum(len(e) for e in by_query.values() if len(e) > 1),
        "excluded_names": sorted(excluded_names()),
        "skipped_sources": sorted(skipped),
        "exclude_corpora": [Path(c).name for c in exclude_corpora],
        "sources": sources,
        "data_hash": data_hash(out),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def write_jsonl_xz(path: Path, rows: Iterable[dict]) -> None:
    """Write ``rows`` as xz-compressed JSON lines (the layout :func:`read_jsonl` reads)."""
    # preset 6 without the extreme flag: reproducible bytes across runs of one xz version.
    with lzma.open(path, "wb", preset=6) as raw, io.TextIOWrapper(raw, encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m encoders.train.data")
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("mine", help="mine pairs and chunks from Python folders")
    cmd.add_argument("--packages-dir", action="append", default=[], type=Path)
    cmd.add_argument("--package", action="append", default=[], type=Path)
    cmd.add_argument("--beir", action="append", default=[], type=Path)
    cmd.add_argument("--exclude-corpus", action="append", default=[], type=Path)
    cmd.add_argument("--max-pairs", type=int, default=12000, help="pairs per source at most")
    cmd.add_argument("--max-chunks", type=int, default=3000, help="chunks per source at most")
    cmd.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    manifest = mine(args.out, packages_dirs=args.packages_dir, packages=args.package,
                    beir=args.beir, exclude_corpora=args.exclude_corpus,
                    max_pairs=args.max_pairs, max_chunks=args.max_chunks)
    summary = {k: manifest[k] for k in ("pairs", "chunks", "data_hash")}
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
