"""Listing a tree's candidate files: from git itself inside a work tree (so its ignore rules
behave exactly as in git), else by walking the folders with :func:`os.scandir`; and the
values a walk returns (:class:`WalkResult`, :class:`Skipped`)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chunking.file_rules import ALWAYS_SKIPPED_DIRS, IgnoreRules, is_dependency_dir
from chunking.reading import SourceFile, os_reason

__all__ = ["Skipped", "WalkResult", "git_toplevel", "git_files", "from_git", "from_scandir"]

# Named as before the split, so a logging setup that names the walker still hears it.
logger = logging.getLogger("chunking.walker")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file or folder left out, and why (``"binary"``, ``"too large (...)"``, ...)."""

    path: str
    reason: str


@dataclass
class WalkResult:
    """What :func:`walk` found: files to index and files skipped, both sorted by path."""

    files: list[SourceFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def git_toplevel(root: Path) -> Path | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True,
            timeout=30, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None  # git is not installed or does not answer: walk the folder ourselves
    if done.returncode != 0 or not done.stdout.strip():
        return None
    return Path(done.stdout.strip())


# git leaves out a folder it cannot open (too long a path, no permission) with a warning
# such as "warning: could not open directory 'a/b/': Permission denied", cut short when long.
_GIT_UNOPENED = re.compile(r"^warning: could not open directory '(.*?)/?(?:': (.*))?$", re.M)
_GIT_REASONS = {"File name too long": "path too long", "Permission denied": "permission denied"}


def git_files(root: Path, toplevel: Path) -> tuple[list[str], list[Skipped]] | None:
    """Files git lists under ``root``, and the folders it warned it could not open."""
    try:
        done = subprocess.run(
            ["git", "-c", "core.quotepath=off", "ls-files", "-z", "--cached", "--others",
             "--exclude-standard"], cwd=root, capture_output=True, timeout=300, check=False,
            env={**os.environ, "LC_ALL": "C"},  # warnings in English, to be read below
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        logger.warning("git ls-files failed in %s; walking the folder instead", root)
        return None
    skipped = []
    # git names those folders from the top of the work tree, and the files from root.
    try:
        below = root.relative_to(toplevel.resolve()).as_posix() + "/"
    except ValueError:
        below = None
    for match in _GIT_UNOPENED.finditer(done.stderr.decode("utf-8", "surrogateescape")):
        message = match[2] or "File name too long"  # only a very long path is cut short
        if below == "./" or (below and match[1].startswith(below)):
            folder = match[1] if below == "./" else match[1][len(below):]
            skipped.append(Skipped(folder, _GIT_REASONS.get(message, message)))
    names = done.stdout.decode("utf-8", "surrogateescape").split("\0")
    return sorted({name for name in names if name}), skipped


def from_git(
    root: Path, listed: Iterable[str], result: WalkResult, include_dependencies: bool,
    extra_ignore: Sequence[str],
) -> list[str]:
    rules = IgnoreRules(root, [".retrieverignore"], extra_ignore)
    loaded: set[str] = set()
    skipped_dirs: dict[str, bool] = {}
    candidates: list[str] = []

    def load(folder: str) -> None:
        if folder not in loaded:
            rules.load(folder, root / folder)
            loaded.add(folder)

    for rel in listed:
        parts = rel.split("/")
        folder_ok = True
        for depth in range(len(parts) - 1):
            folder = "/".join(parts[: depth + 1])
            if folder not in skipped_dirs:
                load("/".join(parts[:depth]))
                name = parts[depth]
                skipped_dirs[folder] = name in ALWAYS_SKIPPED_DIRS or rules.ignored(
                    folder, True) or (not include_dependencies
                                      and is_dependency_dir(root / folder, name))
            if skipped_dirs[folder]:
                folder_ok = False
                break
        if not folder_ok:
            continue
        load("/".join(parts[:-1]))
        if rules.ignored(rel, False):
            continue
        if not os.path.lexists(root / rel):
            continue  # tracked by git but deleted in the work tree
        candidates.append(rel)
    return candidates


def from_scandir(
    root: Path, result: WalkResult, include_dependencies: bool, extra_ignore: Sequence[str],
) -> list[str]:
    rules = IgnoreRules(root, [".gitignore", ".retrieverignore"], extra_ignore)
    seen_dirs: dict[Path, str] = {root: "."}
    candidates: list[str] = []
    # (relative path as listed, real path): a symlinked folder is walked under its own name.
    stack: list[tuple[str, Path]] = [("", root)]
    while stack:
        folder, real_folder = stack.pop()
        rules.load(folder, real_folder)
        try:
            with os.scandir(real_folder) as entries:
                listing = sorted(entries, key=lambda e: e.name)
        except OSError as error:
            result.skipped.append(Skipped(folder or ".", os_reason(error)))
            continue
        for entry in listing:
            rel = f"{folder}/{entry.name}" if folder else entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
                is_link = entry.is_symlink()
            except OSError as error:
                result.skipped.append(Skipped(rel, os_reason(error)))
                continue
            if rules.ignored(rel, is_dir):
                continue
            if not is_dir:
                candidates.append(rel)
                continue
            if entry.name in ALWAYS_SKIPPED_DIRS:
                continue
            real = real_folder / entry.name
            if not include_dependencies and is_dependency_dir(real, entry.name):
                continue
            if is_link:
                try:
                    real = real.resolve(strict=True)
                except (OSError, RuntimeError) as error:
                    result.skipped.append(Skipped(rel, os_reason(error)))
                    continue
                if not real.is_relative_to(root):
                    result.skipped.append(Skipped(rel, "symlink outside root"))
                    continue
            if real in seen_dirs:  # a symlink back into the tree: walking it again would loop
                result.skipped.append(Skipped(rel, f"same folder as {seen_dirs[real]}"))
                continue
            seen_dirs[real] = rel
            stack.append((rel, real))
    return sorted(candidates)
