"""Trees that fight back: odd names and files swapped between the walk and the read.

Every build goes through ``retriever.index`` with the real walker, chunker and BM25;
lexical-only, since what is read (not how it is embedded) is under test, and no model loads.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

import retriever

# A lexical build of a handful of files takes well under a second; a hang on a FIFO takes forever.
_BUILD_TIMEOUT = 60


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=root, check=True, capture_output=True,
    )


def _index_with_timeout(root: Path, **options) -> retriever.Index:
    """``retriever.index`` in a thread, so that a build that hangs fails the test."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["index"] = retriever.index(root, lexical_only=True, **options)
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(_BUILD_TIMEOUT)
    if worker.is_alive():
        # Release a reader blocked on a FIFO, so the thread (and its lock) goes away.
        for fifo in root.rglob("*"):
            if fifo.is_fifo():
                try:
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass
        pytest.fail(f"retriever.index did not finish within {_BUILD_TIMEOUT} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["index"]


def _lexical_paths(index: retriever.Index, query: str) -> set[str]:
    return {hit.path for hit in index.search(query, k=20, mode="lexical")}


def test_files_swapped_after_the_walk_are_skipped_not_followed(tmp_path):
    root = tmp_path / "tree"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.py").write_text("def leaked():\n    return 'zanzibarsecret'\n")
    # Sorted by path, so a.py is read first and b_, c_ only after the swap below.
    (root / "a.py").write_text("def alpha():\n    return 'alphatoken'\n")
    (root / "b_link.py").write_text("def beta():\n    return 'betatoken'\n")
    (root / "c_fifo.py").write_text("def gamma():\n    return 'gammatoken'\n")
    (root / "d.py").write_text("def delta():\n    return 'deltatoken'\n")
    swapped = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "chunk" and not swapped:
            (root / "b_link.py").unlink()
            os.symlink(outside / "secret.py", root / "b_link.py")
            (root / "c_fifo.py").unlink()
            os.mkfifo(root / "c_fifo.py")
            swapped.append(done)

    index = _index_with_timeout(root, progress=progress)
    assert swapped == [1]
    assert _lexical_paths(index, "zanzibarsecret") == set()
    assert _lexical_paths(index, "alphatoken") == {"a.py"}
    assert _lexical_paths(index, "deltatoken") == {"d.py"}
    reasons = dict(index.last_build.skipped)
    assert "b_link.py" in reasons and "symlink" in reasons["b_link.py"]
    assert "c_fifo.py" in reasons and "not a regular file" in reasons["c_fifo.py"]


def test_file_that_vanishes_after_the_walk_is_skipped(tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    (root / "a.py").write_text("def alpha():\n    return 'alphatoken'\n")
    (root / "b.py").write_text("def beta():\n    return 'betatoken'\n")

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "chunk" and done == 1:
            (root / "b.py").unlink()

    index = _index_with_timeout(root, progress=progress)
    assert _lexical_paths(index, "betatoken") == set()
    assert "vanished" in dict(index.last_build.skipped)["b.py"]


def _bad_name_tree(root: Path) -> Path:
    root.mkdir()
    (root / "good.py").write_text("def good():\n    return 'goodtoken'\n")
    bad = os.fsencode(root) + b"/bad_\xff.py"
    with open(bad, "wb") as handle:
        handle.write(b"def bad():\n    return 'badnametoken'\n")
    return Path(os.fsdecode(bad))


@pytest.mark.parametrize("in_git", [False, True], ids=["plain", "git"])
def test_file_name_that_is_not_utf8_is_indexed_under_an_escaped_name(
    tmp_path, in_git
):
    root = tmp_path / "tree"
    bad = _bad_name_tree(root)
    if in_git:
        _git(root, "init", "-q")
        _git(root, "add", ".")
        _git(root, "commit", "-q", "-m", "init")
    index = _index_with_timeout(root)
    assert _lexical_paths(index, "badnametoken") == {"bad_\\xff.py"}
    assert _lexical_paths(index, "goodtoken") == {"good.py"}
    # Stored paths are plain UTF-8 strings.
    for path, _reason in index.last_build.skipped:
        path.encode("utf-8")

    # A refresh of the unchanged tree compares the escaped name and rebuilds nothing.
    again = _index_with_timeout(root)
    assert not again.last_build.rebuilt

    # An edit of the badly named file is found and read again through its real name.
    bad.write_bytes(b"def bad():\n    return 'editedtoken'\n")
    os.utime(bad, ns=(1, 10**18))
    edited = _index_with_timeout(root)
    assert edited.last_build.rebuilt
    assert _lexical_paths(edited, "editedtoken") == {"bad_\\xff.py"}
    assert _lexical_paths(edited, "badnametoken") == set()
