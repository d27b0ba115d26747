"""Damaged index files (issue 8): whatever is broken, opening and searching either works or
raises a RetrieverError, and the CLI prints ``Error: ...`` and exits 1, never a traceback.

Seeded and bounded, so a failure names its case and reproduces:

- every key path of the manifest given a value of the wrong type (the issue's list of
  tracebacks, written generically so it follows the manifest as it changes), and the hostile
  files the issue names (deep nesting, foreign parquet, another bm25s backend...);
- every file of a generation, and CURRENT, truncated, overwritten with random bytes, emptied,
  or (JSON files) replaced by random JSON.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hostile import (
    QUERY,
    WRONG_VALUES,
    assert_clean_cli,
    cli,
    cli_escape,
    copy_tree,
    data_files,
    deadline,
    escape,
    find_one,
    key_paths,
    live_generation,
    memory_cap,
    open_and_search,
    replaced,
    write_tree,
)

import retriever

pytestmark = pytest.mark.slow

# Sized so the file runs in about half a minute on two busy cores.
_CLI_CASES = 14
_SEED = 8


@pytest.fixture(scope="module")
def reference(tmp_path_factory, default_encoder) -> Path:
    """The index directory of a small tree, built once; tests tamper with copies."""
    tree = write_tree(tmp_path_factory.mktemp("fuzz") / "tree")
    retriever.index(tree, encoder=default_encoder)
    return tree / ".retriever"


class Cases:
    """Fresh copies of the reference index, one per case."""

    def __init__(self, reference: Path, root: Path) -> None:
        self.reference, self.root, self.count = reference, root, 0

    def copy(self) -> Path:
        self.count += 1
        return copy_tree(self.reference, self.root / f"case-{self.count}")


@pytest.fixture()
def cases(reference, tmp_path) -> Cases:
    return Cases(reference, tmp_path)


def _check(index_dir: Path, encoder) -> str | None:
    """What escaped opening and searching ``index_dir`` (None: worked or RetrieverError)."""
    with memory_cap(2 << 30), deadline(20):
        return escape(lambda: open_and_search(index_dir, encoder))


def _manifest(index_dir: Path) -> Path:
    return live_generation(index_dir) / "manifest.json"


# The manifest, field by field.

def _manifest_cases(manifest: dict, rng: random.Random) -> list[tuple[tuple, str]]:
    """(key path, wrong-value label): every label for top-level keys, one for nested ones."""
    chosen = []
    for path in key_paths(manifest):
        labels = list(WRONG_VALUES) if len(path) == 1 else [rng.choice(list(WRONG_VALUES))]
        chosen.extend((path, label) for label in labels)
    return chosen


def test_every_manifest_field_of_the_wrong_type_is_refused_or_harmless(
        reference, cases, default_encoder):
    manifest = json.loads(_manifest(reference).read_text())
    rng = random.Random(_SEED)
    chosen = _manifest_cases(manifest, rng)
    problems, written = [], []
    for path, label in chosen:
        index_dir = cases.copy()
        _manifest(index_dir).write_text(json.dumps(replaced(manifest, path, WRONG_VALUES[label])))
        written.append((path, label, index_dir))
        # Encoder fields matter where the encoder is rebuilt from them: let it be.
        encoder = None if str(path[0]).startswith("encoder") else default_encoder
        problem = _check(index_dir, encoder)
        if problem:
            problems.append(f"api {'.'.join(map(str, path))} = {label}: {problem}")
    for path, label, index_dir in rng.sample(written, min(_CLI_CASES, len(written))):
        with memory_cap(2 << 30), deadline(20):
            problem = cli_escape(cli("search", QUERY, "--index", index_dir))
        if problem:
            problems.append(f"cli {'.'.join(map(str, path))} = {label}: {problem}")
    assert not problems, f"{len(problems)} of {len(chosen)} cases:\n" + "\n".join(problems)


# The hostile files the issue names.

def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _damage(index_dir: Path, damage: str) -> None:
    generation = live_generation(index_dir)
    manifest_file = generation / "manifest.json"
    if damage == "deep-manifest":
        manifest_file.write_text(_deep(100_000))
    elif damage == "deep-field":
        text = json.dumps(json.loads(manifest_file.read_text()))
        manifest_file.write_text(text[:-1] + ', "zzz": ' + _deep(100_000) + "}")
    elif damage == "version-true":
        manifest = json.loads(manifest_file.read_text())
        manifest_file.write_text(json.dumps({**manifest, "version": True}))
    elif damage in ("foreign-chunks", "retyped-chunks"):
        chunks = find_one(generation, "chunks.parquet")
        rows = pq.read_metadata(chunks).num_rows
        if damage == "foreign-chunks":
            table = pa.table({"unrelated": list(range(rows))})
        else:  # the right column names, every one of the wrong type
            names = pq.read_schema(chunks).names
            table = pa.table({name: list(range(rows)) for name in names})
        pq.write_table(table, chunks)
    elif damage.startswith("bm25-backend"):
        params_file = find_one(generation, "params*.json")
        params = json.loads(params_file.read_text())
        params["backend"] = "numba" if damage == "bm25-backend-numba" else "no-such-backend"
        params_file.write_text(json.dumps(params))
    else:
        raise AssertionError(damage)


@pytest.mark.parametrize("damage", [
    "deep-manifest", "deep-field", "version-true", "foreign-chunks", "retyped-chunks",
    "bm25-backend-numba", "bm25-backend-unknown",
])
def test_hostile_index_files_are_refused_or_harmless(cases, default_encoder, damage):
    index_dir = cases.copy()
    _damage(index_dir, damage)
    assert _check(index_dir, default_encoder) is None
    with memory_cap(2 << 30), deadline(20):
        result = cli("search", QUERY, "--index", index_dir)
    assert_clean_cli(result)


def test_a_dangling_index_symlink_in_the_tree(tmp_path, default_encoder):
    tree = write_tree(tmp_path / "work" / "tree")
    os.symlink("../nowhere", tree / ".retriever")
    assert escape(lambda: retriever.index(tree, encoder=default_encoder)) is None
    for args in (("search", QUERY, tree, "-q"), ("search", QUERY, "--index", tree / ".retriever"),
                 ("info", tree)):
        assert_clean_cli(cli(*args))
    assert not os.path.lexists(tmp_path / "work" / "nowhere"), "created through the symlink"


# Every file, damaged at random.

def _random_json(rng: random.Random, depth: int = 0):
    kinds = ["str", "int", "float", "bool", "null", "huge", "negative"]
    if depth < 3:
        kinds += ["list", "dict"]
    kind = rng.choice(kinds)
    if kind == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "dict":
        return {rng.choice(["format", "version", "config", "file", "path", "x"]):
                _random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return {"str": rng.choice(["", "x", "../../etc", "gen-1", "\x00"]),
            "int": rng.randint(0, 5), "float": rng.choice([0.5, -1e308, float("nan")]),
            "bool": rng.random() < 0.5, "null": None, "huge": 2**rng.choice([31, 63, 64, 100]),
            "negative": -rng.randint(1, 2**40)}[kind]


def _damaged_versions(data: bytes, is_json: bool, kind: str, rng: random.Random) -> list[bytes]:
    if kind == "truncate":
        return [data[: rng.randrange(len(data))] for _ in range(3)] if data else []
    if kind == "overwrite":
        versions = []
        for _ in range(4):
            start = rng.randrange(max(1, len(data)))
            size = rng.randint(1, 32)
            versions.append(data[:start] + rng.randbytes(size) + data[start + size:])
        return versions
    if kind == "empty":
        return [b""]
    if not is_json:
        return []
    document = json.loads(data)
    versions = [json.dumps(_random_json(rng)).encode() for _ in range(2)]
    paths = key_paths(document)
    for path in rng.sample(paths, min(2, len(paths))):
        versions.append(json.dumps(replaced(document, path, _random_json(rng))).encode())
    return versions


@pytest.mark.parametrize("kind", ["truncate", "overwrite", "empty", "json"])
def test_every_damaged_file_is_refused_or_harmless(reference, cases, default_encoder, kind):
    rng = random.Random(f"{_SEED}-{kind}")
    problems, total = [], 0
    for original in data_files(reference):
        name = original.relative_to(reference)
        for version in _damaged_versions(original.read_bytes(), original.suffix == ".json",
                                         kind, rng):
            total += 1
            index_dir = cases.copy()
            (index_dir / name).write_bytes(version)
            problem = _check(index_dir, default_encoder)
            if problem:
                problems.append(f"{name} ({kind}, {len(version)} bytes): {problem}")
    assert total, "no case was generated"
    assert not problems, f"{len(problems)} of {total} cases:\n" + "\n".join(problems)
