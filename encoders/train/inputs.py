"""Training inputs: ``(query, positive[, negatives])`` pairs and texts, checked, from plain
iterables or from JSONL files (as DESIGN.md has it, mining happens above the recipes; this only
reads what was mined).

A pairs file (``.jsonl`` or ``.jsonl.xz``) holds one object a line: ``query``, ``positive`` (or
``code``, as ``encoders.train.data`` mines them), optional ``negatives`` (a list of strings),
``split`` (``"dev"`` rows become the dev set) and ``source`` (checked against the benchmark
exclusion list). A texts file holds ``{"text": ...}`` lines. A folder stands for the
``pairs.jsonl[.xz]`` or ``chunks.jsonl[.xz]`` inside it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from retriever.errors import InputError

__all__ = ["Pair", "check_pairs", "check_texts", "load_dev", "load_pairs", "load_texts",
           "rows_hash"]

Pair = tuple[str, str, tuple[str, ...]]


def check_pairs(pairs: Iterable, label: str = "training") -> list[Pair]:
    """``(query, positive[, negatives])`` items as tuples of strings; InputError otherwise."""
    rows: list[Pair] = []
    for number, item in enumerate(pairs, 1):
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or \
                len(item) not in (2, 3):
            raise InputError(f"{label} pair {number} must be (query, positive) or (query, "
                             f"positive, negatives), not {item!r:.80}.")
        query, positive = item[0], item[1]
        negatives = item[2] if len(item) == 3 and item[2] is not None else ()
        if not isinstance(negatives, (list, tuple)) or not all(
                isinstance(n, str) for n in negatives):
            raise InputError(f"{label} pair {number}: negatives must be a list of strings.")
        if not isinstance(query, str) or not isinstance(positive, str) or \
                not query.strip() or not positive.strip():
            raise InputError(f"{label} pair {number}: query and positive must be non-empty "
                             "strings.")
        rows.append((query, positive, tuple(negatives)))
    if label != "dev" and len(rows) < 2:
        raise InputError(f"The {label} data holds {len(rows)} pairs; contrastive training "
                         "needs at least 2 (the other pairs of a batch are the negatives).")
    if not rows:
        raise InputError(f"The {label} data holds no pairs; pass some, or none at all.")
    return rows


def check_texts(texts: Iterable, label: str = "training") -> list[str]:
    """Non-empty strings, at least 2 of them; InputError otherwise."""
    rows = []
    for number, text in enumerate(texts, 1):
        if not isinstance(text, str):
            raise InputError(f"{label} text {number} must be a string, not {text!r:.80}.")
        if text.strip():
            rows.append(text)
    if len(rows) < 2:
        raise InputError(f"The {label} data holds {len(rows)} non-empty texts; pass at least 2.")
    return rows


def load_pairs(data, dev=None) -> tuple[list[Pair], list[Pair] | None]:
    """Training and dev pairs from iterables, or from pairs files or folders (see above);
    the data file's ``"dev"`` rows are the dev set unless ``dev`` is given."""
    dev_rows = load_dev(dev)
    if isinstance(data, (str, Path)):
        data, held = _file_pairs(Path(data))
        if dev_rows is None and held:
            dev_rows = check_pairs(held, "dev")
    return check_pairs(data), dev_rows


def load_dev(dev) -> list[Pair] | None:
    """Dev pairs from an iterable or a pairs file or folder (every row of it, whatever its
    split); None stays None."""
    if dev is None:
        return None
    if isinstance(dev, (str, Path)):
        dev = [pair for part in _file_pairs(Path(dev)) for pair in part]
    return check_pairs(dev, "dev")


def _file_pairs(path: Path) -> tuple[list[tuple], list[tuple]]:
    """(training rows, dev rows) of a pairs file, unchecked."""
    from encoders.train.exclusions import check_sources

    rows = _rows(path, "pairs")
    check_sources(row["source"] for row in rows if isinstance(row.get("source"), str))
    train, held = [], []
    for row in rows:
        item = (row.get("query"), row.get("positive", row.get("code")), row.get("negatives") or ())
        (held if row.get("split") == "dev" else train).append(item)
    return train, held


def load_texts(data) -> list[str]:
    """Texts from an iterable, or from a texts file or folder (see above)."""
    if isinstance(data, (str, Path)):
        data = [row.get("text") for row in _rows(Path(data), "chunks")]
    return check_texts(data)


def _rows(path: Path, kind: str) -> list[dict]:
    from encoders.train.data import read_jsonl

    path = path.expanduser()
    if path.is_dir():
        found = [path / f"{kind}{suffix}" for suffix in (".jsonl.xz", ".jsonl")]
        found = [file for file in found if file.is_file()]
        if not found:
            raise InputError(f"The data folder {path} holds no {kind}.jsonl.xz or {kind}.jsonl; "
                             "pass such a file or a folder that holds one.")
        path = found[0]
    elif not path.is_file():
        raise InputError(f"The training data {path} does not exist; pass a JSONL file or a "
                         "folder that holds one.")
    rows = list(read_jsonl(path))
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise InputError(f"{path}: row {number} is not a JSON object.")
    if not rows:
        raise InputError(f"The training data {path} is empty; it needs one JSON object a line.")
    return rows


def rows_hash(rows: Sequence) -> str:
    """blake2b-128 of the rows as JSON lines: the data hash ``training.json`` records."""
    hasher = hashlib.blake2b(digest_size=16)
    for row in rows:
        hasher.update(json.dumps(row, ensure_ascii=False).encode())
        hasher.update(b"\n")
    return hasher.hexdigest()
