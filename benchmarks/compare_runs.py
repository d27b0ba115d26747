"""Check that two benchmark result JSON files hold the same metrics, value by value.

usage:
    python benchmarks/compare_runs.py BASELINE.json NEW.json [--tolerance 0] [--show 20]
    python benchmarks/compare_runs.py scifact.json new/scifact.json --part modes.lexical

Meant for refactors that must not change results: rerun a benchmark after the change and compare
its JSON with the one written before. Every metric value is compared (means, 95% intervals,
per-query, per-repository, per-language and per-category scores, binary nDCG, grade tables),
wherever it sits in the file, so the same script reads ``run_beir.py``, ``run_semble.py`` and
``retriever eval ... --out`` results. Cost and machine facts are skipped (build time, bytes,
memory, latency, wall time, thread counts, data folders): they differ between any two runs.

Chunk counts are cost fields too, but a change in them means the indexes hold different text:
they are listed as notes (never failing the comparison), so that an unchanged score over a
changed corpus is seen.

Exit status: 0 when every compared value is equal (within ``--tolerance``), 1 on any difference
or on a value present in one file only, 2 when a file cannot be read or lacks ``--part``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

# Keys whose values are cost or facts of the machine and the moment, never quality.
SKIPPED = frozenset({
    "cost",
    "per_repo_cost",
    "wall_seconds",
    "wall_seconds_so_far",
    "torch_threads",
    "folder",
    "tree_bytes",
    "run",
    "build_modes",  # which modes shared the build: a fact of the run, not of its quality
})


def leaves(value: object, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    """Yield ``(path, value)`` for every scalar under ``value``, skipping :data:`SKIPPED` keys.

    Lists are compared as whole values when they hold only scalars (an interval, a list of
    repositories), element by element otherwise.
    """
    if isinstance(value, dict):
        for key in sorted(value):
            if key not in SKIPPED:
                yield from leaves(value[key], (*path, str(key)))
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for i, item in enumerate(value):
            yield from leaves(item, (*path, str(i)))
    else:
        yield path, value


def _equal(a: object, b: object, tolerance: float) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y, tolerance) for x, y in zip(a, b, strict=True))
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return abs(a - b) <= tolerance
    return a == b


def differences(
    baseline: object, new: object, *, tolerance: float = 0.0
) -> tuple[int, list[str]]:
    """Compare two parsed result files.

    Returns:
        How many values were compared, and one line per difference (sorted by path).
    """
    left, right = dict(leaves(baseline)), dict(leaves(new))
    found = []
    for path in sorted(set(left) | set(right)):
        name = ".".join(path) or "(top level)"
        if path not in right:
            found.append(f"{name}: only in the baseline ({left[path]!r})")
        elif path not in left:
            found.append(f"{name}: only in the new file ({right[path]!r})")
        elif not _equal(left[path], right[path], tolerance):
            found.append(f"{name}: {left[path]!r} -> {right[path]!r}")
    return len(set(left) & set(right)), found


def chunk_counts(value: object, path: tuple[str, ...] = ()) -> dict[str, object]:
    """``{dotted path: count}`` of every ``chunks`` field, wherever it sits (cost included)."""
    found: dict[str, object] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "chunks" and not isinstance(item, (dict, list)):
                found[".".join((*path, key))] = item
            else:
                found.update(chunk_counts(item, (*path, str(key))))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.update(chunk_counts(item, (*path, str(i))))
    return found


def _fail(message: str) -> NoReturn:
    print(f"compare_runs: {message}", file=sys.stderr)
    sys.exit(2)


def _load(path: Path, part: str | None) -> object:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        _fail(f"cannot read {path}: {error}")
    for key in part.split(".") if part else ():
        if not isinstance(data, dict) or key not in data:
            _fail(f"{path} has no {part!r} (missing {key!r})")
        data = data[key]
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path, help="result JSON written before the change")
    parser.add_argument("new", type=Path, help="result JSON written after the change")
    parser.add_argument(
        "--tolerance", type=float, default=0.0, help="largest allowed numeric gap (default 0)"
    )
    parser.add_argument("--show", type=int, default=20, help="differences to list (default 20)")
    parser.add_argument(
        "--part",
        default=None,
        help="compare only this dotted key of both files, e.g. modes.lexical (a run_beir.py "
        "file of all modes against one of a single mode)",
    )
    args = parser.parse_args()
    baseline, new = _load(args.baseline, args.part), _load(args.new, args.part)
    compared, found = differences(baseline, new, tolerance=args.tolerance)
    before, after = chunk_counts(baseline), chunk_counts(new)
    notes = [f"{k}: {before.get(k)} -> {after.get(k)}" for k in sorted(set(before) | set(after))
             if before.get(k) != after.get(k)]
    if notes:
        print(f"note: {len(notes)} chunk counts differ (not compared):")
        for line in notes[: args.show]:
            print(f"  {line}")
    if not found:
        print(f"identical: {compared} values compared (cost and timings skipped)")
        return
    print(f"{len(found)} differences in {compared} values compared:")
    for line in found[: args.show]:
        print(f"  {line}")
    if len(found) > args.show:
        print(f"  ... and {len(found) - args.show} more (--show N lists more)")
    sys.exit(1)


if __name__ == "__main__":
    main()
