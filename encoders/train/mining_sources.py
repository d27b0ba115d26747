"""The sources a mining run reads: the packages of a ``site-packages`` (with each one's
distribution, version and licence from its ``*.dist-info``), single package folders, and the
Python files of each, test code left out."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from retriever.errors import InputError

__all__ = ["is_test_path", "python_files", "distribution_info", "roots"]


def is_test_path(parts: tuple[str, ...]) -> bool:
    name = parts[-1]
    folders = {p.lower() for p in parts[:-1]}
    return bool(folders & {"test", "tests", "testing", "_testing", "benchmarks"}) or \
        name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def python_files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    # In a fixed pseudo-random order, so the per-package cap samples the whole package
    # rather than its alphabetically first modules.
    files = [f for f in root.rglob("*.py") if f.is_file() and not f.is_symlink()]
    key = lambda f: hashlib.blake2b(f.relative_to(root).as_posix().encode()).digest()  # noqa: E731
    yield from sorted(files, key=key)


def distribution_info(packages_dir: Path) -> dict[str, dict]:
    """Import name -> {distribution, version, licence}, read from ``*.dist-info`` folders."""
    info: dict[str, dict] = {}
    for dist in sorted(packages_dir.glob("*.dist-info")):
        meta: dict[str, str] = {}
        try:
            text = (dist / "METADATA").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.split("\n\n", 1)[0].splitlines():
            key, _, value = line.partition(": ")
            if key in ("Name", "Version", "License-Expression") or (
                key == "License" and "License" not in meta
            ):
                meta[key] = value.strip()[:80]
        tops: set[str] = set()
        try:
            tops.update((dist / "top_level.txt").read_text().split())
        except OSError:
            pass
        try:
            for row in (dist / "RECORD").read_text(errors="replace").splitlines():
                first = row.split(",", 1)[0].split("/", 1)[0]
                if first and not first.endswith((".dist-info", ".data")) and first != "..":
                    tops.add(first.removesuffix(".py"))
        except OSError:
            pass
        for top in tops:
            info.setdefault(top, {
                "distribution": meta.get("Name", dist.name.split("-")[0]),
                "version": meta.get("Version", "unknown"),
                "licence": meta.get("License-Expression") or meta.get("License") or "unknown",
            })
    return info


def roots(packages_dirs: Iterable[Path], packages: Iterable[Path]) -> list[tuple[str, Path, dict]]:
    found: list[tuple[str, Path, dict]] = []
    for folder in packages_dirs:
        if not folder.is_dir():
            raise InputError(f"{folder}: not a folder of packages to mine.")
        dists = distribution_info(folder)
        for child in sorted(folder.iterdir()):
            name = child.name.removesuffix(".py")
            if child.name.startswith((".", "_")) or child.name.endswith(
                ("-info", ".data", "-packages")
            ):
                continue
            if child.is_dir() or child.suffix == ".py":
                found.append((name, child, dists.get(name, {})))
    for child in packages:
        if not child.exists():
            raise InputError(f"{child}: no such package folder to mine.")
        found.append((child.name.removesuffix(".py"), child, {}))
    return found
