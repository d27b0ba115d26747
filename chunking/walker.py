"""Finding the files of a source tree worth indexing, and reading them.

Inside a git work tree the file list comes from git itself
(``git ls-files --cached --others --exclude-standard``), so ``.gitignore`` files at every
level, ``.git/info/exclude`` and the global excludes file behave exactly as in git. Outside
git, the tree is walked with :func:`os.scandir` and every ``.gitignore`` applies to its own
folder and below, matched by :mod:`pathspec`'s ``GitIgnoreSpec``. Both ways also honour
``.retrieverignore`` files (gitignore syntax) and ``extra_ignore`` patterns, and skip
dependency and build folders, binary, oversized, minified and generated files. Ignore files
themselves are rules, not content, and are never listed.

Names that are not UTF-8. A path is stored as valid UTF-8 (the chunk table holds Arrow
strings), so each byte of a name that does not decode is written as ``\\xNN``, the way
Python's ``backslashreplace`` writes it: the file ``bad_<0xff>.py`` is listed as
``bad_\\xff.py`` (:func:`chunking.chunk.escape_path`; ``unescape_path`` turns it back into
the name on disk). The file is still read through its real name, and a refresh compares the
same escaped name. A name whose escaped form could not be told apart from another file's
is skipped with the reason instead.

Reading is hardened against a tree that changes between the walk and the read: see
:mod:`chunking.reading` (``read_source`` and ``SourceFile`` are re-exported here).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from chunking.chunk import escape_path, unescape_path

# The rules of what is worth indexing live in file_rules, the listing (git or scandir) and
# the result types in listing; these names stay importable from here, as before.
from chunking.file_rules import IGNORE_FILES, content_reason
from chunking.listing import Skipped, WalkResult, from_git, from_scandir, git_files, git_toplevel
from chunking.reading import (
    DecodeError,
    SourceFile,
    UnreadableFile,
    file_kind,
    os_reason,
    read_source,
)
from retriever.errors import InputError

__all__ = ["SourceFile", "Skipped", "WalkResult", "walk", "read_source", "DecodeError",
           "UnreadableFile", "IGNORE_FILES"]


def walk(
    root: Path,
    *,
    max_bytes: int = 1 << 20,
    include_dependencies: bool = False,
    extra_ignore: Sequence[str] = (),
) -> WalkResult:
    """List the files under ``root`` worth indexing, and those skipped with the reason.

    Args:
        root: the folder to index.
        max_bytes: files larger than this are skipped.
        include_dependencies: also walk ``node_modules``, ``.venv``, ``build`` and the like.
        extra_ignore: more gitignore-style patterns, relative to ``root``.

    Returns:
        Files and skipped entries, each sorted by relative path; every path is valid UTF-8
        (see :func:`~chunking.chunk.escape_path`). Unreadable files and folders, paths too
        long for the system, symlink loops, special files and the like are recorded as
        skipped with a short reason, never raised. Ignored paths, ignore files, ``.git``
        and dependency folders are left out without an entry.

    Raises:
        InputError: ``root`` does not exist or is not a folder.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise InputError(f"{root} does not exist; pass the folder of the repository to index")
    if not root.is_dir():
        raise InputError(f"{root} is not a folder; pass the folder that contains it")
    root = root.resolve()
    result = WalkResult()
    toplevel = git_toplevel(root)
    listed = git_files(root, toplevel) if toplevel is not None else None
    # git lists nothing under a folder its repository ignores (a virtualenv, a vendored
    # checkout); the user pointed at it on purpose, so walk it by hand instead.
    if listed and listed[0]:
        result.skipped.extend(listed[1])
        candidates = from_git(root, listed[0], result, include_dependencies, extra_ignore)
    else:
        candidates = from_scandir(root, result, include_dependencies, extra_ignore)
    _accept_all(root, candidates, result, max_bytes)
    _store_names(result)
    result.files.sort(key=lambda f: f.path)
    result.skipped.sort(key=lambda s: s.path)
    return result


def _store_names(result: WalkResult) -> None:
    """Give every file and skipped entry a valid UTF-8 path (see ``escape_path``)."""
    taken = {file.path for file in result.files}
    files = []
    for file in result.files:
        stored = escape_path(file.path)
        if stored != file.path:
            if stored in taken or unescape_path(stored) != file.path:
                result.skipped.append(Skipped(stored, "name is not UTF-8 and its escaped "
                                              "form is ambiguous; rename the file"))
                continue
            taken.add(stored)
            file = SourceFile(stored, file.absolute, file.size, file.mtime_ns, file.root,
                              file.max_bytes)
        files.append(file)
    result.files = files
    result.skipped = [Skipped(escape_path(s.path), s.reason) for s in result.skipped]


def _accept_all(root: Path, candidates: list[str], result: WalkResult, max_bytes: int) -> None:
    """Check candidate files and file each under files or skipped.

    Regular files go first, so a symlink to a file already listed under its own path is
    dropped rather than the file itself; each file (by device and inode) is listed once.
    """
    seen: dict[tuple[int, int], str] = {}
    parents: dict[str, Path | str] = {}
    links: list[str] = []
    for rel in candidates:
        if rel.rsplit("/", 1)[-1] in IGNORE_FILES:
            continue  # rules, not content
        try:
            is_link = (root / rel).is_symlink()
        except OSError:
            is_link = False
        if is_link:
            links.append(rel)
        else:
            _accept(root, rel, result, max_bytes, seen, parents)
    for rel in links:
        _accept(root, rel, result, max_bytes, seen, parents)


def _real_parent(root: Path, parent: str, parents: dict[str, Path | str]) -> Path | str:
    """The real path of folder ``parent`` under root, or the reason it is unusable."""
    if parent not in parents:
        try:
            real = (root / parent).resolve(strict=True)
            parents[parent] = real if real.is_relative_to(root) else "symlink outside root"
        except (OSError, RuntimeError) as error:
            parents[parent] = os_reason(error)
    return parents[parent]


def _accept(
    root: Path, rel: str, result: WalkResult, max_bytes: int,
    seen: dict[tuple[int, int], str], parents: dict[str, Path | str],
) -> None:
    parent, _, name = rel.rpartition("/")
    real = _real_parent(root, parent, parents)
    if isinstance(real, str):
        result.skipped.append(Skipped(rel, real))
        return
    real = real / name
    is_link = False
    try:
        info = os.lstat(real)
        is_link = stat.S_ISLNK(info.st_mode)
        if is_link:
            real = real.resolve(strict=True)
            if not real.is_relative_to(root):
                result.skipped.append(Skipped(rel, "symlink outside root"))
                return
            info = os.stat(real)
    except (OSError, RuntimeError) as error:
        broken = is_link and isinstance(error, FileNotFoundError)
        result.skipped.append(Skipped(rel, "broken symlink" if broken else os_reason(error)))
        return
    if stat.S_ISDIR(info.st_mode):
        # git lists a symlink to a folder, and a submodule, as one entry.
        reason = "symlink to a folder" if is_link else "submodule or nested repository"
        result.skipped.append(Skipped(rel, f"{reason} (not walked)"))
        return
    if not stat.S_ISREG(info.st_mode):
        result.skipped.append(Skipped(rel, f"not a regular file (a {file_kind(info.st_mode)})"))
        return
    identity = (info.st_dev, info.st_ino)
    if identity in seen:
        result.skipped.append(Skipped(rel, f"same file as {escape_path(seen[identity])}"))
        return
    seen[identity] = rel
    reason = content_reason(root, real, name, info.st_size, max_bytes)
    if reason is not None:
        result.skipped.append(Skipped(rel, reason))
        return
    result.files.append(
        SourceFile(rel, real, info.st_size, info.st_mtime_ns, root, max_bytes))
