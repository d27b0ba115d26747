"""Debian source packages as training data (benchmarks/mine_debsrc.py): picking by language,
refusing benchmark projects by name, binary, Homepage or Vcs, fetching with sha256 checks, the
doc-comment rules of the new languages, and the merge with a dataset mined before."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from encoders.train.data import read_jsonl
from encoders.train.exclusions import BENCHMARK_UPSTREAMS, excluded_url

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "benchmarks"))

import mine_debsrc  # noqa: E402
import mine_languages  # noqa: E402
import mining_pool  # noqa: E402

# One documented definition a language, each with a body of at least three lines.
UPSTREAM = {
    "src/main/java/org/acme/Ranges.java": """\
        package org.acme;

        public final class Ranges {
            /**
             * Returns the {@code overlap} of two closed integer ranges.
             * @param a the first range
             */
            @Deprecated
            public static int overlap(int a, int b, int c, int d) {
                int low = Math.max(a, c);
                int high = Math.min(b, d);
                return Math.max(0, high - low);
            }
        }
        """,
    "src/Data/Ranges.hs": """\
        module Data.Ranges where

        -- | Clamps a value into the closed range given by its bounds.
        clamp :: Int -> Int
              -> Int -> Int
        clamp low high x =
          let y = max low x
          in min high y
        """,
    "cs/Ranges.cs": """\
        namespace Acme {
          public static class Ranges {
            /// <summary>
            /// Splits a <see cref="T:System.String"/> range into its two bounds.
            /// </summary>
            /// <param name="text">the range</param>
            [Pure]
            public static int[] Bounds(string text) {
                var parts = text.Split('-');
                return new[] { int.Parse(parts[0]), int.Parse(parts[1]) };
            }
          }
        }
        """,
    "lib/ranges.ex": '''\
        defmodule Acme.Ranges do
          @doc """
          Merges overlapping ranges of a sorted list into one range each.

          ## Examples

              iex> Acme.Ranges.merge([1..3, 2..5])
          """
          @spec merge([Range.t()]) :: [Range.t()]
          def merge(ranges) do
            ranges
            |> Enum.reduce([], &join/2)
            |> Enum.reverse()
          end

          @doc false
          def join(range, acc) do
            [range | acc]
            |> Enum.uniq()
          end
        end
        ''',
    "scripts/ranges.sh": """\
        #!/bin/bash
        # Prints every number of an inclusive range, one a line.
        print_range() {
            local i
            for ((i = $1; i <= $2; i++)); do echo "$i"; done
        }
        """,
    "src/test/java/org/acme/RangesTest.java": """\
        public class RangesTest {
            /** Checks that the overlap of disjoint ranges is zero. */
            public void testOverlap() {
                int x = 1;
                assert x == 1;
            }
        }
        """,
}


def _tar_xz(path: Path, files: dict[str, str], top: str) -> bytes:
    with tarfile.open(path, "w:xz") as archive:
        for name, text in files.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path.read_bytes()


def _paragraph(package: str, files: dict[str, bytes], **fields: str) -> str:
    lines = [f"Package: {package}", "Version: 1.2-1", "Directory: pool/main/a/" + package]
    lines += [f"{key.replace('_', '-')}: {value}" for key, value in fields.items()]
    lines.append("Checksums-Sha256:")
    lines += [f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}"
              for name, data in files.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, Path]:
    """A file:// mirror with a Sources index: one usable Java package and packages that name
    a benchmark in each field that is checked, one too large, one of no wanted language."""
    pool = tmp_path / "mirror" / "pool" / "main" / "a"
    paragraphs = []
    specs = {
        "libacme-ranges-java": {"Build_Depends": "debhelper-compat (= 13), default-jdk, ant",
                                "Binary": "libacme-ranges-java"},
        "bats": {"Build_Depends": "debhelper-compat (= 13)", "Section": "shells"},
        "bash-helpers": {"Build_Depends": "debhelper", "Section": "shells",
                         "Homepage": "https://github.com/bats-core/bats-core"},
        "haskell-acme": {"Build_Depends": "haskell-devscripts, ghc",
                         "Binary": "libghc-acme-dev, libghc-aeson-acme-dev"},
        "acme-shell-tools": {"Build_Depends": "debhelper",
                             "Vcs_Git": "https://salsa.debian.org/debian/nvm.git -b main"},
        "libhuge-java": {"Build_Depends": "default-jdk", "size": "big"},
        "acme-c": {"Build_Depends": "debhelper, gcc"},
    }
    for package, spec in specs.items():
        folder = pool / package
        folder.mkdir(parents=True)
        top = f"{package}-1.2"
        files = {f"{package}_1.2.orig.tar.xz": _tar_xz(folder / f"{package}_1.2.orig.tar.xz",
                                                       UPSTREAM, top)}
        copyright_text = "Format: x\n\nFiles: *\nCopyright: Acme\nLicense: Apache-2.0\n"
        files[f"{package}_1.2-1.debian.tar.xz"] = _tar_xz(
            folder / f"{package}_1.2-1.debian.tar.xz", {"copyright": copyright_text}, "debian")
        paragraph = _paragraph(package, files, **{k: v for k, v in spec.items() if k != "size"})
        if spec.get("size") == "big":  # the index says it is over the cap
            paragraph = paragraph.replace(f" {len(files[f'{package}_1.2.orig.tar.xz'])} ",
                                          " 999999999 ")
        paragraphs.append(paragraph)
    sources = tmp_path / "Sources"
    sources.write_text("\n".join(paragraphs), encoding="utf-8")
    return sources, tmp_path / "mirror"


def test_pick_takes_languages_by_build_dependency_and_refuses_benchmark_projects(
        mirror) -> None:
    sources, _ = mirror
    plan = mine_debsrc.pick(sources, {"java": 5, "haskell": 5, "bash": 5},
                            max_bytes=1_000_000)
    assert [(f["Package"], f["language"]) for f in plan["packages"]] == [
        ("libacme-ranges-java", "java")]
    # bats-core is packaged as `bats`: refused by its name; the others by a binary's name,
    # the Homepage and the Vcs-Git URL.
    assert plan["refused"] == {
        "bats": "bats: bats",
        "bash-helpers": "Homepage https://github.com/bats-core/bats-core: bats-core/bats-core",
        "haskell-acme": "libghc-aeson-acme-dev: aeson",
        "acme-shell-tools": "Vcs-Git https://salsa.debian.org/debian/nvm.git -b main: nvm",
    }
    assert plan["available"] == {"java": 1, "haskell": 0, "bash": 0}  # libhuge-java: too big


@pytest.mark.parametrize("url, hit", [
    ("https://github.com/bats-core/bats-core.git", "bats-core/bats-core"),
    ("git@github.com:JamesNK/Newtonsoft.Json.git", "jamesnk/newtonsoft.json"),
    ("https://gitlab.com/mirrors/nlohmann/json/-/tree/develop", "nlohmann/json"),
    ("https://salsa.debian.org/java-team/libgoogle-gson-java.git", "libgoogle_gson_java"),
    ("https://salsa.debian.org/haskell-team/DHG_packages/tree/master/p/haskell-aeson", "aeson"),
    ("https://hackage.haskell.org/package/pandoc", "pandoc"),
    ("https://salsa.debian.org/haskell-team/DHG_packages/tree/master/p/haskell-text", None),
    ("https://github.com/nlohmann/other", None),
    ("https://kotlinlang.org", None),
    ("", None),
])
def test_urls_are_refused_by_upstream_or_by_name(url, hit) -> None:
    assert excluded_url(url) == hit


def test_every_semble_repository_url_is_an_excluded_upstream() -> None:
    repos = SHARED / "benchmarks" / "semble" / "repos.json"
    if not repos.is_file():
        pytest.skip(f"the semble benchmark is not at {repos}")
    urls = [entry["url"] for entry in json.loads(repos.read_text(encoding="utf-8"))]
    assert {u.lower() for u in BENCHMARK_UPSTREAMS} >= {
        u.split("github.com/")[1].removesuffix(".git").lower() for u in urls}
    assert all(excluded_url(url) is not None for url in urls)


def test_fetch_checks_sha256_and_mining_gives_pairs_in_every_new_language(
        mirror, tmp_path) -> None:
    sources, folder = mirror
    plan = mine_debsrc.pick(sources, {"java": 5}, max_bytes=1_000_000)
    fetched = mine_debsrc.fetch(plan, tmp_path / "debsrc", mirror=folder.as_uri())
    assert fetched == {"fetched": 1, "failed": {}}
    name, pairs, chunks, counts = mine_languages.mine_archive(
        tmp_path / "debsrc" / "libacme-ranges-java")
    assert name == "libacme-ranges-java"
    queries = {p.code.split("\n", 1)[0]: (p.query, p.language) for p in pairs}
    top = "libacme-ranges-java/"
    assert queries == {
        top + "src/main/java/org/acme/Ranges.java :: Ranges.overlap":
            ("Returns the overlap of two closed integer ranges.", "java"),
        top + "src/Data/Ranges.hs :: clamp":
            ("Clamps a value into the closed range given by its bounds.", "haskell"),
        top + "cs/Ranges.cs :: Acme.Ranges.Bounds":
            ("Splits a System.String range into its two bounds.", "csharp"),
        top + "lib/ranges.ex :: Acme.Ranges.merge":
            ("Merges overlapping ranges of a sorted list into one range each.", "elixir"),
        top + "scripts/ranges.sh :: print_range":
            ("Prints every number of an inclusive range, one a line.", "bash"),
    }  # the test file is skipped, and `@doc false` hides join
    assert chunks
    orig = tmp_path / "debsrc" / "libacme-ranges-java" / "libacme-ranges-java_1.2.orig.tar.xz"
    assert counts["sha256"] == hashlib.sha256(orig.read_bytes()).hexdigest()
    assert (counts["ecosystem"], counts["version"], counts["licence"]) == \
        ("debian-source", "1.2-1", "Apache-2.0")

    # A corrupted download is refused, not mined.
    plan["packages"][0]["Checksums-Sha256"] = plan["packages"][0]["Checksums-Sha256"].replace(
        counts["sha256"], "0" * 64)
    failed = mine_debsrc.fetch(plan, tmp_path / "other", mirror=folder.as_uri())
    assert failed["fetched"] == 0 and "sha256" in failed["failed"]["libacme-ranges-java"]


def test_a_fetched_folder_naming_a_benchmark_is_refused_when_mined(mirror, tmp_path) -> None:
    sources, folder = mirror
    plan = mine_debsrc.pick(sources, {"java": 5}, max_bytes=1_000_000)
    mine_debsrc.fetch(plan, tmp_path / "debsrc", mirror=folder.as_uri())
    fields_file = tmp_path / "debsrc" / "libacme-ranges-java" / "fields.json"
    fields = json.loads(fields_file.read_text())
    fields["Homepage"] = "https://github.com/Bash-it/bash-it"
    fields_file.write_text(json.dumps(fields))
    assert mine_languages.mine_archive(fields_file.parent) == \
        ("libacme-ranges-java", [], [], None)


def test_new_pairs_merge_into_a_previous_dataset(mirror, tmp_path) -> None:
    sources, folder = mirror
    previous_pairs = [mine_languages.MinedPair(
        query=f"Returns the {word} of the given numbers as a float.",
        code=f"x.go :: {word}\nfunc {word.title()}(xs []float64) float64 {{\n"
             f"\tvar out float64\n{body}\n\treturn out\n}}",
        source=f"numbers/x{word}.go", language="go", style="doc", name_words=word)
        for word, body in [("sum", "\tfor _, x := range xs { out += x }"),
                           ("max", "\tfor _, x := range xs { if x > out { out = x } }")]]
    counts = {"ecosystem": "test", "version": "1", "licence": "MIT", "sha256": "",
              "pairs_found": 2, "chunks": 1, "languages": {"go": 2}}
    old = mining_pool.build_dataset([("numbers", previous_pairs, ["a chunk"], counts)],
                                    out=tmp_path / "old", negatives=0)
    old_rows = list(read_jsonl(tmp_path / "old" / "pairs.jsonl.xz"))
    plan = mine_debsrc.pick(sources, {"java": 5}, max_bytes=1_000_000)
    mine_debsrc.fetch(plan, tmp_path / "debsrc", mirror=folder.as_uri())
    mined = [mine_languages.mine_archive(tmp_path / "debsrc" / "libacme-ranges-java")]
    # The same Go code again from another package is a duplicate of a previous pair.
    mined.append(("copies", previous_pairs[:1], [], {**counts, "languages": {"go": 1}}))
    manifest = mining_pool.build_dataset(mined, out=tmp_path / "new",
                                         previous=tmp_path / "old", negatives=1)
    rows = list(read_jsonl(tmp_path / "new" / "pairs.jsonl.xz"))
    for row in old_rows:  # kept as they were: query style, query and split
        assert {k: row[k] for k in ("query", "code", "style", "split")} in [
            {k: r[k] for k in ("query", "code", "style", "split")} for r in rows]
    assert manifest["languages"] == {"go": 2, "java": 1, "haskell": 1, "csharp": 1,
                                     "elixir": 1, "bash": 1}
    assert manifest["duplicates_dropped"]["exact"] == 1
    assert manifest["previous_data_hash"] == old["data_hash"]
    assert set(manifest["sources"]) == {"numbers", "libacme-ranges-java", "copies"}
    assert manifest["sources"]["libacme-ranges-java"]["licence"] == "Apache-2.0"
    chunks = list(read_jsonl(tmp_path / "new" / "chunks.jsonl.xz"))
    assert chunks[0] == {"text": "a chunk", "source": "numbers"} and len(chunks) > 1


@pytest.mark.parametrize("path, text, symbol", [
    ("A.kt", """\
        class A {
            /**
             * Returns the sum of the two values given.
             */
            fun add(a: Int, b: Int): Int {
                val c = a + b
                return c
            }
        }
        """, "A.add"),
    ("A.scala", """\
        object A {
          /** Returns the sum of the two values given.
            *
            * @param a first
            */
          def add(a: Int, b: Int): Int = {
            val c = a + b
            c
          }
        }
        """, "A.add"),
    ("A.swift", """\
        struct A {
            /// Returns the sum of the two values given.
            /// - Parameter a: first
            @discardableResult
            func add(a: Int, b: Int) -> Int {
                let c = a + b
                return c
            }
        }
        """, "A.add"),
    ("a.zig", """\
        /// Returns the sum of the two values given.
        pub fn add(a: i32, b: i32) i32 {
            const c = a + b;
            return c;
        }
        """, "add"),
])
def test_doc_comments_of_kotlin_scala_swift_and_zig(path, text, symbol) -> None:
    language = mine_languages.detect_language(path)
    pairs = mine_languages.file_pairs(path, language, textwrap.dedent(text))
    assert [(p.query, p.code.split("\n", 1)[0]) for p in pairs] == [
        ("Returns the sum of the two values given.", f"{path} :: {symbol}")]
