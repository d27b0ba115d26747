"""The pool of mined pairs: query styles, duplicates removed, hard negatives, the dataset files.

Used by ``benchmarks/mine_languages.py``. Duplicates go in three steps: the same code up to
whitespace, the same code up to identifiers (one function copied under other names), and near
duplicates (MinHash over token 3-grams, 16 bands of 4 rows, kept out when the estimated Jaccard
similarity with a kept pair reaches :data:`NEAR_DUPLICATE`). A query that several different
pairs share is ambiguous, and all of them go.

Hard negatives come from this engine's BM25: every code of the pool is indexed as one document
(``retriever.index_documents(..., lexical_only=True)``), each query searches it, and the first
hits that are neither the positive, nor a near duplicate of it, nor a pair with the same query
become that row's negatives (so a negative never equals its positive).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from encoders.train.data import data_hash, read_jsonl, write_jsonl_xz
from encoders.train.exclusions import check_sources, excluded_names

NEAR_DUPLICATE = 0.8  # estimated Jaccard at or above which two codes are the same code
NEGATIVE_TOO_CLOSE = 0.5  # a negative this similar to its positive may be a copy of it
_BANDS, _ROWS = 16, 4
_PRIME = (1 << 61) - 1
_draw = np.random.default_rng(20240601)
_A = _draw.integers(1, 1 << 32, _BANDS * _ROWS, dtype=np.uint64)
_B = _draw.integers(0, 1 << 32, _BANDS * _ROWS, dtype=np.uint64)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def body_of(code: str) -> str:
    """The code without its ``path :: symbol`` header line."""
    return code.split("\n", 1)[-1]


def exact_key(code: str) -> str:
    return hashlib.blake2b(" ".join(body_of(code).split()).encode(), digest_size=12).hexdigest()


def shape_key(code: str) -> str:
    shape = _IDENTIFIER.sub("x", "".join(body_of(code).split()))
    return hashlib.blake2b(shape.encode(), digest_size=12).hexdigest()


def signature(code: str) -> np.ndarray:
    """MinHash signature (64 uint64) of the code's token 3-grams."""
    tokens = _TOKEN.findall(body_of(code))
    grams = {"\x00".join(tokens[i : i + 3]) for i in range(max(1, len(tokens) - 2))}
    hashes = np.fromiter((zlib.crc32(g.encode()) for g in grams), dtype=np.uint64,
                         count=len(grams))
    mixed = (hashes[:, None] * _A[None, :] % _PRIME + _B[None, :]) % _PRIME
    return mixed.min(axis=0)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures."""
    return float(np.mean(a == b))


class NearDuplicates:
    """Keeps codes unless one like it (exact, same shape, or MinHash-near) was kept before."""

    def __init__(self) -> None:
        self.exact: set[str] = set()
        self.shapes: set[str] = set()
        self.bands: dict[tuple[int, bytes], list[int]] = {}
        self.signatures: list[np.ndarray] = []
        self.dropped = {"exact": 0, "shape": 0, "near": 0}

    def add(self, code: str) -> int | None:
        """The kept code's number, or None when it duplicates a kept one."""
        key, shape = exact_key(code), shape_key(code)
        if key in self.exact:
            self.dropped["exact"] += 1
            return None
        if shape in self.shapes:
            self.dropped["shape"] += 1
            return None
        sig = signature(code)
        keys = [(b, sig[b * _ROWS : (b + 1) * _ROWS].tobytes()) for b in range(_BANDS)]
        for band in keys:
            for other in self.bands.get(band, ()):
                if similarity(sig, self.signatures[other]) >= NEAR_DUPLICATE:
                    self.dropped["near"] += 1
                    return None
        number = len(self.signatures)
        self.exact.add(key)
        self.shapes.add(shape)
        self.signatures.append(sig)
        for band in keys:
            self.bands.setdefault(band, []).append(number)
        return number


def _dev_package(package: str) -> bool:
    # Whole packages go to dev, so dev code is unseen code (as encoders.train.data does).
    return int(hashlib.blake2b(package.encode(), digest_size=4).hexdigest(), 16) % 25 == 0


def _python_rows(folder: Path) -> tuple[list[dict], dict]:
    from mine_languages import split_name

    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    rows = []
    for row in read_jsonl(folder / "pairs.jsonl.xz"):
        header = row["code"].split("\n", 1)[0]
        symbol = header.split(" :: ", 1)[1] if " :: " in header else ""
        rows.append({"query": row["query"], "code": row["code"], "source": row["source"],
                     "language": "python", "split": row["split"],
                     "name_words": split_name(symbol), "package": row["source"].split("/")[0]})
    return rows, manifest


def hard_negatives(rows: list[dict], signatures: list[np.ndarray], count: int,
                   depth: int = 10, batch: int = 2000) -> list[list[str]]:
    """Up to ``count`` BM25-mined negatives a row (codes of other rows, best first)."""
    import retriever

    documents = [retriever.Document(id=str(i), text=row["code"]) for i, row in enumerate(rows)]
    by_query: dict[str, set[int]] = {}
    for i, row in enumerate(rows):
        by_query.setdefault(row["query"].lower(), set()).add(i)
    negatives: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="negatives-") as work:
        index = retriever.index_documents(documents, index_dir=Path(work) / "index",
                                          lexical_only=True, total=len(documents))
        # The bare BM25 stage: ranked chunk rows, without the hit objects a search builds.
        stage = index.stage("lexical", depth=depth)
        document_of = [int(chunk.path) for chunk in index.chunks()]
        for start in range(0, len(rows), batch):
            queries = [row["query"] for row in rows[start : start + batch]]
            ranked = stage(queries).ids
            for offset, found in enumerate(ranked):
                i = start + offset
                same_query = by_query[rows[i]["query"].lower()]
                picked = []
                for row_id in found:
                    if row_id < 0:
                        break
                    j = document_of[row_id]
                    if j == i or j in same_query or rows[j]["code"] == rows[i]["code"]:
                        continue
                    if similarity(signatures[i], signatures[j]) >= NEGATIVE_TOO_CLOSE:
                        continue
                    picked.append(rows[j]["code"])
                    if len(picked) == count:
                        break
                negatives.append(picked)
    return negatives


def _previous_rows(folder: Path) -> tuple[list[dict], list[dict], dict]:
    """A dataset written before: its pairs (styled already), chunks and manifest."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    rows = [{"query": row["query"], "code": row["code"], "source": row["source"],
             "language": row["language"], "split": row["split"], "style": row["style"],
             "name_words": "", "package": row["source"].split("/")[0]}
            for row in read_jsonl(folder / "pairs.jsonl.xz")]
    return rows, list(read_jsonl(folder / "chunks.jsonl.xz")), manifest


def build_dataset(mined: Iterable[tuple[str, list, list[str], dict | None]], *, out: Path,
                  python_pairs: Path | None = None, previous: Path | None = None,
                  negatives: int = 3, command: str = "") -> dict:
    """Styles, duplicates, negatives; write ``out`` and return its manifest.

    Args:
        mined: ``(package, pairs, chunks, counts)`` per archive, as
            ``mine_languages.mine_archive`` returns them (counts None: excluded package).
        out: the folder to write.
        python_pairs: a folder mined by ``python -m encoders.train mine``, added to the pool.
        previous: a folder this function wrote before; its pairs enter the pool first (so a
            new pair that duplicates one of them goes) with their query style and split, and
            its chunks and sources are kept. Its hard negatives are mined again over the
            whole pool.
        negatives: hard negatives a row at most (0: none mined).
    """
    from mine_languages import pick_style

    candidates: list[dict] = []
    chunks: list[dict] = []
    sources: dict[str, dict] = {}
    skipped: list[str] = []
    previous_hash = None
    if previous is not None:
        rows, chunks, previous_manifest = _previous_rows(previous)
        candidates.extend(rows)
        sources.update(previous_manifest.get("sources", {}))
        skipped.extend(previous_manifest.get("excluded_packages_skipped", []))
        previous_hash = previous_manifest.get("data_hash")
    for package, pairs, package_chunks, counts in mined:
        if counts is None:
            skipped.append(package)
            continue
        split = "dev" if _dev_package(package) else "train"
        for pair in pairs:
            row = {"query": pair.query, "code": pair.code, "source": pair.source,
                   "language": pair.language, "split": split,
                   "name_words": pair.name_words, "package": package}
            if pair.style.startswith("file"):  # file-purpose pairs come styled (mine_files)
                row["style"] = pair.style
            candidates.append(row)
        chunks.extend({"text": text, "source": package} for text in package_chunks)
        sources[package] = {**counts, "split": split}
    if python_pairs is not None:
        python_rows, python_manifest = _python_rows(python_pairs)
        candidates.extend(python_rows)
        for name, info in python_manifest.get("sources", {}).items():
            sources[name] = {**info, "ecosystem": "python", "languages": {"python": info.get(
                "pairs", 0)}}
    check_sources(row["source"] for row in candidates)
    check_sources(sources)
    seen = NearDuplicates()
    kept: list[dict] = []
    signatures: list[np.ndarray] = []
    for row in candidates:
        number = seen.add(row["code"])
        if number is None:
            continue
        if "style" not in row:  # rows of a previous dataset keep theirs
            row["style"], row["query"] = pick_style(row["code"], row["query"],
                                                    row["name_words"], row["language"])
        kept.append(row)
        signatures.append(seen.signatures[number])
    by_query: dict[str, int] = {}
    for row in kept:
        by_query[row["query"].lower()] = by_query.get(row["query"].lower(), 0) + 1
    unique = [i for i, row in enumerate(kept) if by_query[row["query"].lower()] == 1]
    kept, signatures = [kept[i] for i in unique], [signatures[i] for i in unique]
    mined_negatives = hard_negatives(kept, signatures, negatives) if negatives else \
        [[] for _ in kept]
    out.mkdir(parents=True, exist_ok=True)
    fields = ("query", "code", "source", "language", "style", "split")
    write_jsonl_xz(out / "pairs.jsonl.xz", ({**{k: row[k] for k in fields}, "negatives": negs}
                                       for row, negs in zip(kept, mined_negatives, strict=True)))
    write_jsonl_xz(out / "chunks.jsonl.xz", chunks)
    languages: dict[str, int] = {}
    styles: dict[str, int] = {}
    for row in kept:
        languages[row["language"]] = languages.get(row["language"], 0) + 1
        styles[row["style"]] = styles.get(row["style"], 0) + 1
    manifest = {
        "format": "dense-retriever multi-language training data", "version": 1,
        "pairs": {"train": sum(r["split"] == "train" for r in kept),
                  "dev": sum(r["split"] == "dev" for r in kept)},
        "chunks": len(chunks), "languages": languages, "styles": styles,
        "with_negatives": sum(1 for n in mined_negatives if n),
        "duplicates_dropped": seen.dropped,
        "ambiguous_queries_dropped": len(candidates) - sum(seen.dropped.values()) - len(kept),
        "excluded_packages_skipped": sorted(skipped),
        "excluded_names": sorted(excluded_names()),
        "sources": sources, "command": command, "previous_data_hash": previous_hash,
        "data_hash": data_hash(out),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest

