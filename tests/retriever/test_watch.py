"""`retriever.watch.watch` and `retriever watch`: a real watcher (watchfiles) over a copy of
the fixture repository, indexed lexical-only (no model loads), stopped through its event.

Each test waits for the index to reach a state, polling with a deadline, rather than
sleeping for a guessed time.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import retriever
from retriever.errors import InputError

pytest.importorskip("watchfiles")
from retriever.watch import watch  # noqa: E402 - after the skip: needs watchfiles

DEADLINE = 30.0


class Watcher:
    """``watch()`` on a thread, its updates and errors collected."""

    def __init__(self, root: Path, **options) -> None:
        self.root = root
        self.stop = threading.Event()
        self.updates: queue.Queue = queue.Queue()
        self.errors: list[Exception] = []
        self.builds = 0
        self.thread = threading.Thread(target=self._run, kwargs=options, daemon=True)

    def _run(self, **options) -> None:
        watch(self.root, stop_event=self.stop, debounce_ms=options.pop("debounce_ms", 50),
              on_update=self._updated, on_error=self.errors.append, lexical_only=True,
              **options)

    def _updated(self, index) -> None:
        self.builds += index.last_build.rebuilt
        self.updates.put(index)

    def __enter__(self) -> Watcher:
        self.thread.start()
        self.updates.get(timeout=DEADLINE)  # the first refresh
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "the watcher did not stop"

    def until(self, check) -> None:
        """Wait for an update after which ``check(paths of the live index)`` holds."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if check(_indexed(self.root)):
                return
            try:
                self.updates.get(timeout=0.2)
            except queue.Empty:
                pass
        raise AssertionError(f"the index never reached the state; errors: {self.errors}")


def _indexed(root: Path) -> set[str]:
    return {chunk.path for chunk in retriever.open(root).chunks()}


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and ".retriever" not in p.parts}


def test_edits_renames_and_deletions_are_indexed(repo):
    with Watcher(repo) as watcher:
        target = repo / "python" / "netkit" / "retry.py"
        target.write_text(target.read_text() + "\n\ndef wombat_backoff():\n    return 7\n")
        watcher.until(lambda _: retriever.open(repo).search(
            "wombat_backoff", k=1, mode="lexical")[0].path == "python/netkit/retry.py")
        target.rename(repo / "python" / "netkit" / "retrying.py")
        watcher.until(lambda paths: "python/netkit/retrying.py" in paths
                      and "python/netkit/retry.py" not in paths)
        (repo / "c" / "crc32.c").unlink()
        watcher.until(lambda paths: "c/crc32.c" not in paths)
    assert not watcher.errors


def test_a_mass_rename_and_a_burst_are_indexed_in_few_builds(repo):
    with Watcher(repo, debounce_ms=300) as watcher:
        builds_before = watcher.builds
        (repo / "python").rename(repo / "py")  # every file under it moves at once
        for n in range(40):
            (repo / "py" / f"generated_{n}.py").write_text(f"def generated_{n}():\n    pass\n")
        watcher.until(lambda paths: paths == _tree(repo))
        assert not any(path.startswith("python/") for path in _indexed(repo))
        # 40 new files and a renamed folder: a handful of builds, not one per event.
        assert watcher.builds - builds_before <= 5
    assert not watcher.errors


def test_a_branch_switch_with_git_is_indexed(repo):
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}

    def run(*args):
        subprocess.run([git, *args], cwd=repo, env=env, check=True, capture_output=True)

    run("init", "-q", "-b", "main")
    run("add", "-A")
    run("commit", "-q", "-m", "main")
    run("checkout", "-q", "-b", "feature")
    shutil.rmtree(repo / "java")
    for n in range(30):
        (repo / "docs" / f"note_{n}.md").write_text(f"# Note {n}\n\nFeature branch note.\n")
    run("add", "-A")
    run("commit", "-q", "-m", "feature")
    run("checkout", "-q", "main")
    with Watcher(repo) as watcher:
        run("checkout", "-q", "feature")
        watcher.until(lambda paths: "docs/note_29.md" in paths
                      and not any(p.startswith("java/") for p in paths))
        run("checkout", "-q", "main")
        watcher.until(lambda paths: "java/org/demo/Matrix.java" in paths
                      and "docs/note_0.md" not in paths)
    assert not watcher.errors


def test_files_that_vanish_mid_read_do_not_stop_the_watch(repo):
    with Watcher(repo, debounce_ms=20) as watcher:
        churn = repo / "churn"
        churn.mkdir()
        # Files created and deleted while builds run: some vanish between walk and read.
        for round_ in range(30):
            for n in range(5):
                (churn / f"f{n}.py").write_text(f"def churn_{round_}_{n}():\n    pass\n")
            for n in range(5):
                (churn / f"f{n}.py").unlink()
            time.sleep(0.01)
        churn.rmdir()
        (repo / "docs" / "after.md").write_text("# After the churn\n")
        watcher.until(lambda paths: "docs/after.md" in paths
                      and not any(p.startswith("churn/") for p in paths))
    assert not watcher.errors


def test_concurrent_searches_never_fail_or_see_half_an_index(repo):
    failures: list[BaseException] = []
    seen: list[int] = []
    done = threading.Event()

    def search_in_a_loop() -> None:
        while not done.is_set():
            try:
                index = retriever.open(repo)
                hits = index.search("generated function retry", k=5, mode="lexical")
                paths = {chunk.path for chunk in index.chunks()}
                # A whole generation: its hits are its own chunks, its counts its size.
                assert all(hit.path in paths for hit in hits)
                assert len(index) == index.manifest["counts"]["chunks"]
                seen.append(len(index))
            except BaseException as exc:  # noqa: BLE001 - any failure fails the test
                failures.append(exc)
                return

    with Watcher(repo, debounce_ms=30) as watcher:
        readers = [threading.Thread(target=search_in_a_loop) for _ in range(3)]
        for reader in readers:
            reader.start()
        for n in range(60):
            (repo / "python" / f"generated_{n}.py").write_text(
                f"def generated_function_{n}():\n    return retry({n})\n")
            if n % 10 == 9:
                time.sleep(0.1)  # let several builds publish while the readers read
        watcher.until(lambda paths: "python/generated_59.py" in paths)
        done.set()
        for reader in readers:
            reader.join(DEADLINE)
    assert not failures, failures[0]
    assert len(set(seen)) > 1  # the readers did cross published generations


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        watch(tmp_path / "nope", stop_event=threading.Event())
    with pytest.raises(InputError, match="debounce_ms"):
        watch(tmp_path, debounce_ms=0)


def test_errors_go_to_on_error_and_the_watch_goes_on(tmp_path):
    empty = tmp_path / "tree"
    empty.mkdir()
    watcher = Watcher(empty)
    watcher.thread.start()
    try:
        deadline = time.monotonic() + DEADLINE
        while not watcher.errors and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "No indexable files" in str(watcher.errors[0])
        (empty / "notes.md").write_text("# Notes\n\nNow there is something to index.\n")
        watcher.updates.get(timeout=DEADLINE)
        assert _indexed(empty) == {"notes.md"}
    finally:
        watcher.__exit__()


def _lines(stream) -> queue.Queue:
    """The lines of ``stream`` as they come, read on a thread (a read never blocks a test)."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


def test_the_cli_watches_until_interrupted(repo, tmp_path):
    command = [shutil.which("retriever", path=os.path.dirname(sys.executable)) or "retriever",
               "watch", str(repo), "--lexical-only", "--debounce-ms", "50"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    # stderr goes to a file: progress output of a slow build (a loaded CI machine) would fill
    # an undrained pipe and block the watcher, which then never sees the interrupt.
    errors = open(tmp_path / "stderr.txt", "w+")  # noqa: SIM115 - closed below
    # SIGINT back to its default in the child: a suite started in the background by a
    # non-interactive shell inherits SIGINT ignored, and the watcher would never see it.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors,
                               env=env, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        printed = _lines(process.stdout)
        assert "Indexed" in printed.get(timeout=DEADLINE)  # the first build
        (repo / "docs" / "NEW.md").write_text("# New\n\nA new page about otters.\n")
        assert "Indexed" in printed.get(timeout=DEADLINE)  # the change
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=DEADLINE) == 0
        errors.seek(0)
        assert "Traceback" not in errors.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        errors.close()
    assert "docs/NEW.md" in _indexed(repo)
