"""The walker and read_source on trees that fight back: odd names, special files, very long
paths, and files changed between the walk and the read."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from chunking import DecodeError, read_source, walk
from chunking.chunk import escape_path, unescape_path
from chunking.walker import UnreadableFile, WalkResult
from retriever.errors import InputError

# Walking a handful of files takes milliseconds; opening a FIFO without O_NONBLOCK, forever.
_TIMEOUT = 30


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=root, check=True, capture_output=True,
    )


def _unblock_fifos(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_fifo():
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass


def guarded(root: Path, action):
    """Run ``action()`` in a thread; a hang (on a FIFO) fails the test instead of CI."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = action()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(_TIMEOUT)
    if worker.is_alive():
        _unblock_fifos(root)
        pytest.fail(f"did not finish within {_TIMEOUT} s (blocked on a FIFO?)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def guarded_walk(root: Path, **options) -> WalkResult:
    return guarded(root, lambda: walk(root, **options))


def check_stored_paths(result: WalkResult, root: Path) -> None:
    """Every listed or skipped path is UTF-8; every reason is short and names no machine path."""
    for path in [f.path for f in result.files] + [s.path for s in result.skipped]:
        path.encode("utf-8")
    for entry in result.skipped:
        assert entry.reason and str(root) not in entry.reason


def make_repo(root: Path, in_git: bool) -> None:
    if in_git:
        git(root, "init", "-q")


IN_AND_OUT_OF_GIT = pytest.mark.parametrize("in_git", [False, True], ids=["plain", "git"])


@IN_AND_OUT_OF_GIT
def test_names_that_are_not_utf8_are_listed_escaped_and_read_back(tmp_path, in_git):
    raw = os.fsencode(tmp_path)
    os.mkdir(raw + b"/dir_\xfe")
    for name, content in ((b"/bad_\xff.py", b"x = 1\n"), (b"/dir_\xfe/inner.py", b"y = 2\n"),
                          (b"/img_\xfa.png", b"\x89PNG\0")):
        with open(raw + name, "wb") as handle:
            handle.write(content)
    (tmp_path / "good.py").write_text("z = 3\n")
    make_repo(tmp_path, in_git)
    result = guarded_walk(tmp_path)
    by_path = {f.path: f for f in result.files}
    assert sorted(by_path) == ["bad_\\xff.py", "dir_\\xfe/inner.py", "good.py"]
    assert read_source(by_path["bad_\\xff.py"]) == "x = 1\n"
    assert read_source(by_path["dir_\\xfe/inner.py"]) == "y = 2\n"
    assert os.fsencode(by_path["bad_\\xff.py"].absolute) == raw + b"/bad_\xff.py"
    assert [(s.path, s.reason) for s in result.skipped] == [("img_\\xfa.png", "binary")]
    check_stored_paths(result, tmp_path)
    # The stored name turns back into the name on disk.
    assert os.path.exists(tmp_path / unescape_path("dir_\\xfe/inner.py"))


def test_escaped_name_that_would_collide_with_a_real_name_is_skipped(tmp_path):
    with open(os.fsencode(tmp_path) + b"/bad_\xff.py", "wb") as handle:
        handle.write(b"x = 1\n")
    (tmp_path / "bad_\\xff.py").write_text("literal = 1\n")  # a valid name, backslash and all
    result = guarded_walk(tmp_path)
    assert [f.path for f in result.files] == ["bad_\\xff.py"]
    assert read_source(result.files[0]) == "literal = 1\n"
    assert "not UTF-8" in result.skipped[0].reason
    check_stored_paths(result, tmp_path)


def test_escape_path_round_trips_and_leaves_valid_names_alone():
    for name in ("plain.py", "dé/jà.py", "back\\slash.py"):
        assert escape_path(name) == name
    name = os.fsdecode(b"a\xff/b\xc3.py")
    assert escape_path(name) == "a\\xff/b\\xc3.py"
    assert unescape_path(escape_path(name)) == name


def _deep_tree(root: Path, total_bytes: int) -> None:
    """Nest folders below ``root`` until the full path is ``total_bytes`` long, with a file
    at every level, using folder descriptors (a plain path that long cannot be opened)."""
    name = "d" * 200
    length = len(os.fsencode(root))
    folder = os.open(root, os.O_RDONLY)
    while length < total_bytes:
        os.mkdir(name, dir_fd=folder)
        inner = os.open(name, os.O_RDONLY, dir_fd=folder)
        os.close(folder)
        folder = inner
        length += len(name) + 1
        handle = os.open("f.py", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=folder)
        os.write(handle, b"x = 1\n")
        os.close(handle)
    os.close(folder)


@IN_AND_OUT_OF_GIT
def test_paths_longer_than_path_max_are_skipped_not_raised(tmp_path, in_git):
    path_max = os.pathconf(tmp_path, "PC_PATH_MAX")
    (tmp_path / "top.py").write_text("t = 1\n")
    _deep_tree(tmp_path, path_max + 1000)
    make_repo(tmp_path, in_git)
    result = guarded_walk(tmp_path)
    files = [f.path for f in result.files]
    assert "top.py" in files and len(files) > 5
    # Every file that was listed can be read; the deepest ones were skipped with a reason.
    for file in result.files:
        assert read_source(file) in ("t = 1\n", "x = 1\n")
    assert any(s.reason == "path too long" for s in result.skipped)
    assert all(len(os.fsencode(f.absolute)) < path_max for f in result.files)
    check_stored_paths(result, tmp_path)


@IN_AND_OUT_OF_GIT
def test_special_files_are_skipped_with_a_reason_and_never_opened(tmp_path, monkeypatch, in_git):
    (tmp_path / "a.py").write_text("a = 1\n")
    os.mkfifo(tmp_path / "pipe.py")
    os.mkfifo(tmp_path / ".retrieverignore")  # ignore rules are read without blocking too
    if not in_git:
        # git itself blocks on a FIFO .gitignore (git 2.39), until the walk's git timeout.
        os.mkfifo(tmp_path / ".gitignore")
    monkeypatch.chdir(tmp_path)  # a socket's path must be short
    server = socket.socket(socket.AF_UNIX)
    server.bind("sock.py")
    os.symlink("loop_b.py", tmp_path / "loop_a.py")
    os.symlink("loop_a.py", tmp_path / "loop_b.py")
    os.symlink("missing.py", tmp_path / "dangling.py")
    make_repo(tmp_path, in_git)
    try:
        result = guarded_walk(tmp_path)
    finally:
        server.close()
    assert [f.path for f in result.files] == ["a.py"]
    reasons = {s.path: s.reason for s in result.skipped}
    if not in_git:  # git does not list special files at all
        assert reasons["pipe.py"] == "not a regular file (a FIFO)"
        assert reasons["sock.py"] == "not a regular file (a socket)"
    assert reasons["loop_a.py"] == reasons["loop_b.py"] == "symlink loop"
    assert reasons["dangling.py"] == "broken symlink"
    check_stored_paths(result, tmp_path)


@IN_AND_OUT_OF_GIT
def test_ignore_files_are_rules_not_content(tmp_path, in_git):
    (tmp_path / "pkg").mkdir()
    (tmp_path / ".gitignore").write_text("*.log\n")
    (tmp_path / ".retrieverignore").write_text("skip.py\n")
    (tmp_path / "pkg" / ".retrieverignore").write_text("*.txt\n")
    (tmp_path / "pkg" / ".gitignore").write_text("local.py\n")
    for name in ("a.py", "skip.py", "x.log", "pkg/b.py", "pkg/n.txt", "pkg/local.py"):
        (tmp_path / name).write_text("v = 1\n")
    make_repo(tmp_path, in_git)
    assert [f.path for f in guarded_walk(tmp_path).files] == ["a.py", "pkg/b.py"]


def test_git_symlink_to_a_folder_is_reported(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("m = 1\n")
    os.symlink("pkg", tmp_path / "alias")
    git(tmp_path, "init", "-q")
    result = guarded_walk(tmp_path)
    assert [f.path for f in result.files] == ["pkg/m.py"]
    assert {s.path: s.reason for s in result.skipped} == {
        "alias": "symlink to a folder (not walked)"}


def _walked(root: Path, files: dict[str, str], **options):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return {f.path: f for f in walk(root, **options).files}


def test_read_source_refuses_a_file_swapped_for_a_symlink(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("secret = 1\n")
    files = _walked(root, {"a.py": "a = 1\n"})
    (root / "a.py").unlink()
    os.symlink(outside / "secret.py", root / "a.py")
    with pytest.raises(UnreadableFile, match="a.py was not read: became a symlink") as caught:
        read_source(files["a.py"])
    assert "symlink" in caught.value.reason and isinstance(caught.value, InputError)
    assert isinstance(caught.value, OSError)  # what callers caught before it existed


def test_read_source_refuses_a_folder_swapped_for_a_symlink(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (outside / "pkg").mkdir(parents=True)
    (outside / "pkg" / "m.py").write_text("secret = 1\n")
    files = _walked(root, {"pkg/m.py": "m = 1\n"})
    (root / "pkg" / "m.py").unlink()
    (root / "pkg").rmdir()
    os.symlink(outside / "pkg", root / "pkg")
    with pytest.raises(UnreadableFile, match="symlink"):
        read_source(files["pkg/m.py"])


def test_read_source_does_not_block_on_a_fifo(tmp_path):
    files = _walked(tmp_path, {"a.py": "a = 1\n"})
    (tmp_path / "a.py").unlink()
    os.mkfifo(tmp_path / "a.py")
    with pytest.raises(UnreadableFile, match=r"not a regular file \(a FIFO\)"):
        guarded(tmp_path, lambda: read_source(files["a.py"]))
    with pytest.raises(UnreadableFile, match="FIFO"):
        guarded(tmp_path, lambda: read_source(tmp_path / "a.py"))  # a plain path too


def test_read_source_refuses_a_vanished_file_and_one_grown_past_the_cap(tmp_path):
    files = _walked(tmp_path, {"a.py": "a = 1\n", "b.py": "b = 1\n"}, max_bytes=100)
    (tmp_path / "a.py").unlink()
    with pytest.raises(UnreadableFile) as caught:
        read_source(files["a.py"])
    assert caught.value.reason == "vanished after the walk"
    (tmp_path / "b.py").write_text("b = 1\n" * 100)
    with pytest.raises(UnreadableFile, match="too large"):
        read_source(files["b.py"])
    assert read_source(files["b.py"], max_bytes=1000) == "b = 1\n" * 100


def test_read_source_follows_in_tree_symlinks_found_by_the_walk(tmp_path):
    _walked(tmp_path, {"real/m.py": "m = 1\n", "hidden/h.py": "h = 1\n",
                       ".gitignore": "real/\nhidden/\n"})
    os.symlink("real", tmp_path / "linked")
    os.symlink("hidden/h.py", tmp_path / "alias.py")
    os.symlink("linked/m.py", tmp_path / "again.py")
    result = walk(tmp_path)
    files = {f.path: f for f in result.files}
    assert sorted(files) == ["alias.py", "linked/m.py"]
    assert read_source(files["alias.py"]) == "h = 1\n"
    assert read_source(files["linked/m.py"]) == "m = 1\n"
    assert files["linked/m.py"].absolute == tmp_path.resolve() / "real" / "m.py"
    assert {s.path: s.reason for s in result.skipped} == {"again.py": "same file as linked/m.py"}


def test_decode_error_is_still_an_input_and_unicode_error(tmp_path):
    files = _walked(tmp_path, {"a.py": "a = 1\n"})
    (tmp_path / "a.py").write_bytes(b"x = '\xe9'\n")
    with pytest.raises(DecodeError) as caught:
        read_source(files["a.py"])
    assert isinstance(caught.value, UnicodeError) and isinstance(caught.value, InputError)
    assert caught.value.reason == "not UTF-8 text (invalid byte 0xe9 at offset 5)"
