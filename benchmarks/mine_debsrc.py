"""Debian source packages as training data in the languages the binary packages lack.

Java, Kotlin, Scala, C#, Haskell, Elixir and shell code is rarely in a binary ``.deb`` as
source, but Debian's source packages carry it: ``Sources.xz`` lists every one with its
``Binary:``, ``Build-Depends:``, ``Homepage:``, ``Vcs-*:`` fields and its files.

usage:
    curl -o Sources.xz http://deb.debian.org/debian/dists/bookworm/main/source/Sources.xz
    python benchmarks/mine_debsrc.py pick --sources Sources.xz --out PLAN.json \\
        --per-language java=250 --per-language haskell=250 ... [--max-bytes 20000000]
    python benchmarks/mine_debsrc.py fetch --plan PLAN.json --out DEBSRC
    python benchmarks/mine_languages.py --debsrc DEBSRC --previous OLD_DATA --out DATA

``pick`` tells a package's language by its build dependencies (:data:`LANGUAGE_RULES`), refuses
every package whose name, any binary's name, its Homepage or its Vcs fields name a benchmark
(:func:`refusal`: :func:`encoders.train.exclusions.excluded_package` and
:func:`~encoders.train.exclusions.excluded_url`), drops those whose upstream tarball is over
``--max-bytes``, and draws a seeded sample a language. ``fetch`` downloads each chosen
package's upstream tarball and its ``debian.tar`` (for ``debian/copyright``), checks both
against the sha256 the index states, and writes one folder a package: the two files and
``fields.json``. ``mine_languages.py --debsrc`` mines those folders with
:func:`mine_package` (the same pair and chunk rules as every other source).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import random
import re
import sys
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from mine_languages import MinedPair, Source, mine_source  # noqa: E402

from encoders.train.exclusions import excluded_package, excluded_url  # noqa: E402

MIRROR = "http://deb.debian.org/debian"
_BUILD_FIELDS = ("Build-Depends", "Build-Depends-Indep", "Build-Depends-Arch")

# language -> a pattern over the build dependencies (or, for shell, the package's name and
# section). Checked in this order; the first that matches names the package's language.
LANGUAGE_RULES: dict[str, re.Pattern[str]] = {
    "elixir": re.compile(r"(^|[\s,])elixir\b"),
    "kotlin": re.compile(r"(^|[\s,])kotlin\b"),
    "scala": re.compile(r"(^|[\s,])(scala|sbt)\b"),
    "csharp": re.compile(r"(^|[\s,])(mono-devel|mono-mcs|mono-xbuild|cli-common-dev|dh-dotnet)\b"),
    "haskell": re.compile(r"(^|[\s,])(haskell-devscripts(-minimal)?|ghc)\b"),
    "java": re.compile(r"(^|[\s,])(default-jdk(-headless)?|javahelper|maven-debian-helper|"
                       r"gradle-debian-helper|maven-repo-helper)\b"),
}
# Pairs a package at most: Java packages are many and large, and the benchmark's weak
# languages should not drown in Java (measured on a sample: a large Java package gives
# 1,000-1,300 documented methods, a Haskell one 0-100).
MAX_PAIRS = {"java": 50}
MAX_PAIRS_OTHER = 600
_SHELL_NAME = re.compile(r"(bash|shell|-completion|-scripts$|^sh-)")
# Languages whose own compiler or standard library is the package (it cannot build-depend
# on itself): Elixir's standard library is its best documented code.
_BY_NAME = {"elixir-lang": "elixir", "kotlin": "kotlin", "scala": "scala"}


def read_sources(path: Path) -> Iterator[dict[str, str]]:
    """The paragraphs of a Debian ``Sources`` index (``.xz`` or plain) as field dicts;
    continuation lines are kept, joined with newlines."""
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        fields: dict[str, str] = {}
        key = None
        for line in handle:
            line = line.rstrip("\n")
            if not line.strip():
                if fields:
                    yield fields
                fields, key = {}, None
            elif line[0] in " \t":
                if key is not None:
                    fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def package_language(fields: dict[str, str]) -> str | None:
    """The language a source package is written in, by its build dependencies; None if none
    of :data:`LANGUAGE_RULES` matches (shell: its name or the ``shells`` section)."""
    if fields.get("Package") in _BY_NAME:
        return _BY_NAME[fields["Package"]]
    depends = " ".join(fields.get(key, "") for key in _BUILD_FIELDS)
    for language, rule in LANGUAGE_RULES.items():
        if rule.search(depends):
            return language
    if fields.get("Section") == "shells" or _SHELL_NAME.search(fields.get("Package", "")):
        return "bash"
    return None


def refusal(fields: dict[str, str]) -> str | None:
    """Why a source package may not be used (the benchmark name it hits), or None.

    Its own name, every binary package it builds, its Homepage and its Vcs-* URLs are checked:
    Debian packages benchmark projects under other names (bats-core is ``bats``; gson's
    binary is ``libgoogle-gson-java``; pandoc's Haskell library is ``haskell-pandoc``).
    """
    names = [fields.get("Package", "")]
    names += [b.strip() for b in fields.get("Binary", "").replace("\n", " ").split(",")]
    for name in names:
        if name and (hit := excluded_package(name)):
            return f"{name}: {hit}"
    for key in ("Homepage", "Vcs-Git", "Vcs-Browser"):
        if fields.get(key) and (hit := excluded_url(fields[key])):
            return f"{key} {fields[key]}: {hit}"
    return None


def package_files(fields: dict[str, str]) -> dict[str, tuple[str, int]]:
    """``{"orig": (file, bytes), "debian": (file, bytes)}`` from ``Checksums-Sha256``; a
    native package's one tarball counts as ``orig``."""
    found: dict[str, tuple[str, int]] = {}
    for line in fields.get("Checksums-Sha256", "").splitlines():
        parts = line.split()
        if len(parts) != 3 or ".tar." not in parts[2] or parts[2].endswith(".asc"):
            continue
        kind = "debian" if ".debian.tar." in parts[2] else "orig"
        if kind == "orig" and "orig-" in parts[2]:  # extra component tarballs: not needed
            continue
        found.setdefault(kind, (parts[2], int(parts[1])))
    return found


def sha256_of(fields: dict[str, str], name: str) -> str:
    for line in fields.get("Checksums-Sha256", "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return parts[0]
    return ""


def pick(sources: Path, per_language: dict[str, int], *, max_bytes: int, seed: int = 0) -> dict:
    """A seeded sample of usable source packages a language, and what was refused and why."""
    chosen: dict[str, list[dict]] = {language: [] for language in per_language}
    refused: dict[str, str] = {}
    seen: set[str] = set()
    for fields in read_sources(sources):
        name = fields.get("Package", "")
        language = package_language(fields)
        if language not in per_language or name in seen:
            continue  # the index lists some packages twice (a point release): the first
        seen.add(name)
        why = refusal(fields)
        if why is not None:
            refused[name] = why
            continue
        files = package_files(fields)
        if "orig" not in files or files["orig"][1] > max_bytes:
            continue
        chosen[language].append({key: fields[key] for key in (
            "Package", "Version", "Binary", "Directory", "Checksums-Sha256", "Homepage",
            "Vcs-Git", "Vcs-Browser", "Section") if key in fields} | {"language": language})
    draw = random.Random(seed)
    plan = []
    for language, count in per_language.items():
        pool = sorted(chosen[language], key=lambda f: f["Package"])
        plan.extend(draw.sample(pool, min(count, len(pool))))
    return {"packages": plan, "refused": refused, "max_bytes": max_bytes, "seed": seed,
            "available": {language: len(pool) for language, pool in chosen.items()}}


def fetch(plan: dict, out: Path, *, mirror: str = MIRROR) -> dict:
    """Download each planned package into ``out/PACKAGE/`` (checked by sha256)."""
    fetched, failed = 0, {}
    for fields in plan["packages"]:
        folder = out / fields["Package"]
        if (folder / "fields.json").is_file():
            fetched += 1
            continue
        folder.mkdir(parents=True, exist_ok=True)
        try:
            for name, _ in package_files(fields).values():
                target = folder / name
                with urllib.request.urlopen(f"{mirror}/{fields['Directory']}/{name}",
                                            timeout=60) as response:
                    target.write_bytes(response.read())
                if hashlib.sha256(target.read_bytes()).hexdigest() != sha256_of(fields, name):
                    raise OSError(f"{name}: sha256 differs from the index")
        except OSError as error:
            failed[fields["Package"]] = str(error)
            continue
        (folder / "fields.json").write_text(json.dumps(fields, indent=1), encoding="utf-8")
        fetched += 1
    return {"fetched": fetched, "failed": failed}


def _licence(debian_tar: Path | None) -> str:
    """The first ``License:`` of ``debian/copyright`` in the packaging tarball."""
    if debian_tar is None:
        return "unknown"
    with tarfile.open(debian_tar) as archive:
        for member in archive:
            if member.isfile() and member.name.endswith("debian/copyright"):
                text = archive.extractfile(member).read().decode("utf-8", "replace")
                for line in text.splitlines():
                    if line.startswith("License:") and line.split(":", 1)[1].strip():
                        return line.split(":", 1)[1].strip()[:80]
                break
    return "unknown"


def debsrc_source(folder: Path, workdir: Path) -> Source:
    """Unpack a fetched package's upstream tarball; its provenance from ``fields.json``."""
    fields = json.loads((folder / "fields.json").read_text(encoding="utf-8"))
    files = package_files(fields)
    orig = folder / files["orig"][0]
    debian = folder / files["debian"][0] if "debian" in files else None
    dest = workdir / fields["Package"]
    with tarfile.open(orig) as archive:
        archive.extractall(dest, filter="data")
    tops = [p for p in dest.iterdir()]
    root = tops[0] if len(tops) == 1 and tops[0].is_dir() else dest
    return Source(name=fields["Package"], version=fields.get("Version", ""),
                  licence=_licence(debian), ecosystem="debian-source",
                  sha256=sha256_of(fields, orig.name), root=root)


def mine_package(folder: Path) -> tuple[str, list[MinedPair], list[str], dict | None]:
    """``mine_languages.mine_archive`` for a fetched source package folder: refused whole
    (None counts) when any of its fields names a benchmark, checked again here so a folder
    made by hand cannot slip past ``pick``."""
    import tempfile

    fields = json.loads((folder / "fields.json").read_text(encoding="utf-8"))
    if refusal(fields) is not None:
        return fields["Package"], [], [], None
    with tempfile.TemporaryDirectory(prefix="mine-") as work:
        source = debsrc_source(folder, Path(work))
        limit = MAX_PAIRS.get(fields.get("language", ""), MAX_PAIRS_OTHER)
        pairs, chunks, counts = mine_source(source, max_pairs=limit)
        counts["language_picked"] = fields.get("language")
        return source.name, pairs, chunks, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pick")
    p.add_argument("--sources", type=Path, required=True)
    p.add_argument("--per-language", action="append", required=True, help="LANGUAGE=COUNT")
    p.add_argument("--max-bytes", type=int, default=20_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("fetch")
    p.add_argument("--plan", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "pick":
        counts = {k: int(v) for k, v in (item.split("=", 1) for item in args.per_language)}
        plan = pick(args.sources, counts, max_bytes=args.max_bytes, seed=args.seed)
        args.out.write_text(json.dumps(plan, indent=1), encoding="utf-8")
        result = {"chosen": len(plan["packages"]), "available": plan["available"],
                  "refused": len(plan["refused"])}
    else:
        result = fetch(json.loads(args.plan.read_text(encoding="utf-8")), args.out)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
