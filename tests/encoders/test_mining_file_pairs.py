"""File-purpose training pairs (benchmarks/mine_files.py): a file's module-level doc becomes
a query whose positive is a chunk of that file without the doc; a file without one gives
none; an excluded package gives none; the control dataset drops exactly those rows."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from encoders.train.data import read_jsonl, write_jsonl_xz

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).resolve().parent / "file_pairs_fixture"
sys.path.insert(0, str(ROOT / "benchmarks"))

import mine_files  # noqa: E402


def _wheel(tmp_path: Path, name: str) -> Path:
    wheel = tmp_path / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as handle:
        for path in (FIXTURE / "tinystate").glob("*.py"):
            handle.write(path, f"{name}/{path.name}")
        handle.writestr(f"{name}-1.0.dist-info/METADATA", "Name: x\nLicense: MIT\n")
    return wheel


def test_module_docstring_becomes_a_pair_without_the_docstring(tmp_path):
    package, pairs, _, counts = mine_files.mine_python_archive(_wheel(tmp_path, "tinystate"))
    assert package == "tinystate" and counts["licence"] == "MIT"
    files = [p for p in pairs if p.style.startswith("file")]
    assert [p.query for p in files if p.style == "file-doc"] == [
        "State extractor for sharing application state across handlers."]
    for pair in files:
        assert pair.source == "tinystate/tinystate/state.py"
        assert pair.code.startswith("tinystate/tinystate/state.py :: ")
        assert "State extractor" not in pair.code and "lives on the application" not in pair.code
    # the file's function pairs are still mined, docstrings removed
    functions = {p.query: p for p in pairs if p.style == "doc"}
    assert "Read the shared state that an application carries for its handlers." in functions
    assert "Count the items that are neither empty nor None in a list." in functions


def test_a_file_without_a_module_doc_gives_no_file_pair():
    text = (FIXTURE / "tinystate" / "plain.py").read_text()
    assert mine_files.file_doc("python", text) is None
    assert mine_files.file_purpose_pairs("p/plain.py", "python", text) == []
    licence_only = "// Copyright 2020 Acme. Licensed under MIT.\n\nfunction f(a) {\n  return a\n}\n"
    assert mine_files.file_purpose_pairs("p/f.js", "javascript", licence_only) == []


def test_rust_inner_doc_and_go_package_comment():
    text = (FIXTURE / "crate" / "src" / "path_router.rs").read_text()
    pairs = mine_files.file_purpose_pairs("crate/src/path_router.rs", "rust", text)
    assert pairs and pairs[0].query == \
        "Router path_router implementation for storing and matching routes."
    assert all("//!" not in p.code for p in pairs)
    go = ("// Package bytefmt converts sizes to and from human-readable strings.\n"
          "package bytefmt\n\nfunc Parse(s string) int {\n\tn := len(s)\n\treturn n\n}\n")
    found = mine_files.file_purpose_pairs("b/bytes.go", "go", go)
    assert found and found[0].query.startswith("Package bytefmt converts sizes")
    assert "// Package" not in found[0].code


def test_an_excluded_package_gives_nothing(tmp_path):
    package, pairs, chunks, counts = mine_files.mine_python_archive(_wheel(tmp_path, "requests"))
    assert (package, pairs, chunks, counts) == ("requests", [], [], None)


def test_control_drops_the_file_rows_and_their_negatives(tmp_path):
    data, out = tmp_path / "b", tmp_path / "a"
    data.mkdir()
    rows = [{"query": "q1", "code": "f1", "style": "doc", "split": "train", "negatives": ["c2"]},
            {"query": "q2", "code": "c2", "style": "file-doc", "split": "train", "negatives": []},
            {"query": "q3", "code": "f3", "style": "web", "split": "dev", "negatives": ["f1"]}]
    write_jsonl_xz(data / "pairs.jsonl.xz", rows)
    write_jsonl_xz(data / "chunks.jsonl.xz", [])
    (data / "manifest.json").write_text('{"data_hash": "h", "pairs": {}}')
    summary = mine_files.control(data, out)
    assert summary["pairs"] == {"train": 1, "dev": 1}
    kept = list(read_jsonl(out / "pairs.jsonl.xz"))
    assert [r["code"] for r in kept] == ["f1", "f3"]
    assert kept[0]["negatives"] == [] and kept[1]["negatives"] == ["f1"]


def _many_modules(tmp_path: Path, count: int) -> Path:
    wheel = tmp_path / "manymods-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as handle:
        for i in range(count):
            handle.writestr(f"manymods/mod_{i:03d}.py",
                            f'"""Module number {i} converts widget sizes to readable text."""\n\n'
                            f"def size_{i}(value):\n    total = value + {i}\n    return total\n")
        handle.writestr("manymods-1.0.dist-info/METADATA", "Name: manymods\nLicense: MIT\n")
    return wheel


def test_python_file_pairs_are_capped_a_package_like_other_languages(tmp_path):
    # Every module opens with its own doc: 320 files would give at least 320 file pairs.
    _, pairs, _, _ = mine_files.mine_python_archive(
        _many_modules(tmp_path, mine_files.MAX_FILE_LEVEL + 20))
    files = [p for p in pairs if p.style.startswith("file")]
    assert len(files) == mine_files.MAX_FILE_LEVEL
    assert len({p.source for p in files}) > 100


def test_the_file_cap_samples_the_package_not_its_first_modules(tmp_path, monkeypatch):
    monkeypatch.setattr(mine_files, "MAX_FILES", 10)
    _, pairs, _, _ = mine_files.mine_python_archive(_many_modules(tmp_path, 100))
    read = sorted({p.source for p in pairs})
    assert len(read) == 10
    # Sorted by path, the first ten would be mod_000 to mod_009.
    assert read != [f"manymods/manymods/mod_{i:03d}.py" for i in range(10)]
    assert max(int(s[-6:-3]) for s in read) > 30
