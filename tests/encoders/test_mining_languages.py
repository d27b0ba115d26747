"""Training data in many languages (benchmarks/mine_languages.py, mining_pool.py): pairs with
provenance from an npm tarball and a Debian package, the exclusion list, near duplicates, and
BM25 hard negatives that never equal their positive."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from encoders.train.data import data_hash, read_jsonl
from encoders.train.exclusions import excluded_name, excluded_package

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "data" / "mining"
sys.path.insert(0, str(ROOT / "benchmarks"))

import mine_languages  # noqa: E402
import mining_pool  # noqa: E402

TARBALL = FIXTURES / "tiny-strings-1.0.0.tgz"


def _deb(tmp_path: Path, package: str | None = None) -> Path:
    """The Debian-like fixture tree built into a real .deb (optionally under another name)."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES / "deb-tiny", tree)
    if package is not None:
        control = tree / "DEBIAN" / "control"
        control.write_text(control.read_text().replace("golang-github-acme-tiny-dev", package))
    deb = tmp_path / f"{package or 'golang-github-acme-tiny-dev'}_0.2.0-1_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)],
                   check=True, capture_output=True)
    return deb


def test_an_npm_tarball_gives_documented_functions_with_provenance() -> None:
    name, pairs, chunks, counts = mine_languages.mine_archive(TARBALL)
    assert name == "tiny-strings"
    by_symbol = {p.code.split("\n", 1)[0]: p for p in pairs}
    assert set(by_symbol) == {"tiny-strings/lib/strings.js :: camelCase",
                              "tiny-strings/lib/strings.js :: padStart",
                              "tiny-strings/src/words.ts :: countWords"}
    camel = by_symbol["tiny-strings/lib/strings.js :: camelCase"]
    assert camel.query == "Converts a string to camel case, dropping dashes and underscores."
    assert camel.code.split("\n")[1] == "function camelCase(text) {"
    assert "@param" not in camel.code and camel.language == "javascript"
    assert camel.name_words == "camel case"
    assert by_symbol["tiny-strings/src/words.ts :: countWords"].language == "typescript"
    # Tests and minified bundles are not mined; chunks are what the engine embeds.
    assert not any("test/" in p.source or "dist/" in p.source for p in pairs)
    assert chunks and all(c.startswith("tiny-strings/lib/") or c.startswith("tiny-strings/src/")
                          for c in chunks)
    assert counts["version"] == "1.0.0" and counts["licence"] == "MIT"
    assert counts["ecosystem"] == "npm"
    assert counts["sha256"] == hashlib.sha256(TARBALL.read_bytes()).hexdigest()


def test_a_debian_package_gives_go_and_rust_pairs_with_its_licence(tmp_path) -> None:
    deb = _deb(tmp_path)
    name, pairs, _, counts = mine_languages.mine_archive(deb)
    assert name == "golang-github-acme-tiny-dev"
    queries = {p.code.split("\n", 1)[0].split(" :: ")[1]: p.query for p in pairs}
    assert queries == {
        "Reverse": "Reverse returns the string reversed rune by rune, so that multi-byte "
                   "characters survive.",
        "Joiner.JoinWords": "JoinWords joins the non-empty words with the joiner's separator.",
        "parse_duration": "Parses a duration such as `90s` or `2m` into seconds.",
    }
    assert {p.language for p in pairs} == {"go", "rust"}
    assert counts == {**counts, "ecosystem": "debian", "version": "0.2.0-1",
                      "licence": "BSD-3-clause",
                      "sha256": hashlib.sha256(deb.read_bytes()).hexdigest()}


def test_a_benchmark_package_is_refused_whole(tmp_path) -> None:
    deb = _deb(tmp_path, "librust-tokio-util-dev")
    name, pairs, chunks, counts = mine_languages.mine_archive(deb)
    assert (name, pairs, chunks, counts) == ("librust-tokio-util-dev", [], [], None)


@pytest.mark.parametrize("package, hit", [
    ("librust-tokio-util-dev", "tokio"),
    ("golang-github-spf13-cobra-dev", "golang_github_spf13_cobra_dev"),
    ("@trpc/server", "trpc"),
    ("mobx-state-tree", "mobx"),
    ("ruby-kramdown-parser-gfm", "kramdown"),
    ("lodash", None),
    ("golang-github-mitchellh-go-homedir-dev", None),
])
def test_package_names_are_checked_word_by_word(package, hit) -> None:
    assert excluded_package(package) == hit


def test_a_versioned_folder_counts_by_its_name() -> None:
    assert excluded_name("usr/share/cargo/registry/tokio-1.38.0/src/lib.rs") == "tokio"
    assert excluded_name("gems/rack-2.2.4/lib/rack.rb") == "rack"
    assert excluded_name("usr/share/cargo/registry/tinycrate-0.3.1/src/lib.rs") is None


def test_near_duplicates_go_and_different_code_stays() -> None:
    code = ("a.js :: total\nfunction total(items) {\n  let sum = 0;\n  for (const item of items) {"
            "\n    sum += item.price * item.count;\n  }\n  return sum + shipping(items) - "
            "discount(items);\n}")
    pool = mining_pool.NearDuplicates()
    assert pool.add(code) == 0
    assert pool.add(code.replace("  ", "    ")) is None  # whitespace only
    assert pool.add(code.replace("items", "rows").replace("sum", "acc")) is None  # renamed
    edited = code.replace("return sum + shipping(items)", "return sum + shipping(items, true)")
    assert pool.add("b.js :: total\n" + edited.split("\n", 1)[1]) is None  # a small edit
    other = ("c.js :: area\nfunction area(r) {\n  const squared = r ** 2;\n"
             "  return Math.PI * squared;\n}")
    assert pool.add(other) == 1
    assert pool.dropped == {"exact": 1, "shape": 1, "near": 1}


def test_query_styles() -> None:
    assert mine_languages.split_name("Server.ServeHTTP") == "serve http"
    assert mine_languages.split_name("parse_duration") == "parse duration"
    assert mine_languages.web_query("Reads a CSV file into a list of rows.", "python", 0) == \
        "python reads csv file list rows"
    assert mine_languages.web_query("Reads a CSV file into a list.", "go", 1) == \
        "reads csv file list"


def test_the_dataset_has_provenance_and_negatives_never_equal_positives(tmp_path) -> None:
    mined = [mine_languages.mine_archive(TARBALL), mine_languages.mine_archive(_deb(tmp_path))]
    # Distinct functions of one shape family, so BM25 has close candidates to offer.
    extra = [mine_languages.MinedPair(
        query=f"Returns the {word} of the given numbers as a float.",
        code=f"x.go :: {word}\nfunc {word.title()}(xs []float64) float64 {{\n"
             f"\tvar out float64\n{body}\n\treturn out\n}}",
        source="x.go", language="go", style="doc", name_words=word)
        for word, body in [("sum", "\tfor _, x := range xs { out += x }"),
                           ("max", "\tfor _, x := range xs { if x > out { out = x } }"),
                           ("mean", "\tfor _, x := range xs { out += x / float64(len(xs)) }"),
                           ("min", "\tout = xs[0]\n\tfor _, x := range xs "
                                   "{ if x < out { out = x } }")]]
    mined.append(("numbers", extra, [], {"ecosystem": "test", "version": "1", "licence": "MIT",
                                         "sha256": "", "pairs_found": 4, "chunks": 0,
                                         "languages": {"go": 4}}))
    manifest = mining_pool.build_dataset(mined, out=tmp_path / "data", negatives=2)
    rows = list(read_jsonl(tmp_path / "data" / "pairs.jsonl.xz"))
    assert len(rows) == 10 and manifest["pairs"]["train"] + manifest["pairs"]["dev"] == 10
    assert sum(1 for row in rows if row["negatives"]) >= 8
    for row in rows:
        for negative in row["negatives"]:
            assert negative != row["code"]
            assert mining_pool.similarity(mining_pool.signature(negative),
                                          mining_pool.signature(row["code"])) < 0.5
        assert row["style"] in {"doc", "web", "name"} and row["query"]
    assert manifest["sources"]["tiny-strings"]["licence"] == "MIT"
    assert manifest["sources"]["golang-github-acme-tiny-dev"]["version"] == "0.2.0-1"
    assert manifest["data_hash"] == data_hash(tmp_path / "data")
    assert manifest["languages"] == {"javascript": 2, "typescript": 1, "go": 6, "rust": 1}
    saved = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert saved["sources"].keys() == manifest["sources"].keys()
