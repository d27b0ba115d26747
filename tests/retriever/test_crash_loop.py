"""Builds killed with SIGKILL at random moments never leave a broken index (issue 8).

Each round edits a tiny tree, starts ``retriever.index(tree, force=True)`` in a child process,
kills it after a seeded random delay spread over a measured build, then checks that the live
generation opens, searches and holds exactly the chunks of a complete build, and that the
next build succeeds and leaves no temporary folder behind.

Importing torch and loading the model takes seconds, a build of this tree a fraction of one;
so a driver process loads the model once and forks one child per build. The child is killed,
not the driver: SIGKILL at any point of the build itself, never during the model load.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile import QUERY, live_generation, project_env, write_tree

import retriever

pytestmark = pytest.mark.slow

_ROUNDS = 6
_SEED = 8

# Per build: reads "build", answers "pid N"; reads "reap", answers "status S" (os.waitpid's).
# The child is reaped only when told, so the pid the test kills can never be another process's.
_DRIVER = """
import os, sys, traceback
import retriever
import sentence_transformers, torch  # slow imports, done once; no forward pass before fork
from encoders.sentence import SentenceTransformerEncoder

encoder = SentenceTransformerEncoder()
encoder.dim, encoder.fingerprint()
print("ready", flush=True)
while sys.stdin.readline():
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            retriever.index(sys.argv[1], force=True, encoder=encoder)
        except BaseException:
            traceback.print_exc()
            code = 3
        os._exit(code)
    print("pid", pid, flush=True)
    sys.stdin.readline()
    print("status", os.waitpid(pid, 0)[1], flush=True)
"""


class Driver:
    def __init__(self, tree: Path, log: Path) -> None:
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _DRIVER, str(tree)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, text=True, env=project_env())
        assert self._line() == "ready", log.read_text()[-3000:]

    def _line(self) -> str:
        line = self.process.stdout.readline().strip()
        assert line, "the build driver died"
        return line

    def build(self, kill_after: float | None = None) -> tuple[int, float]:
        """Run one build; kill it after ``kill_after`` s. Returns (wait status, seconds)."""
        self._send("build")
        pid = int(self._line().split()[1])
        started = time.perf_counter()
        if kill_after is not None:
            time.sleep(kill_after)
            os.kill(pid, signal.SIGKILL)  # not reaped yet: a finished child is a zombie
        self._send("reap")
        status = int(self._line().split()[1])
        return status, time.perf_counter() - started

    def _send(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)
        self._log.close()


def _edit(tree: Path, round_: int) -> None:
    """One more file of one function: a complete build has exactly one more chunk."""
    (tree / f"step_{round_}.py").write_text(
        f"def step_{round_}(value):\n    return value * {round_ + 2}\n")


def test_builds_killed_at_random_moments_leave_a_working_index(tmp_path, default_encoder):
    tree = write_tree(tmp_path / "tree")
    index_dir = tree / ".retriever"
    driver = Driver(tree, tmp_path / "driver.log")
    try:
        status, duration = driver.build()
        assert status == 0, (tmp_path / "driver.log").read_text()[-3000:]
        complete = len(retriever.open(index_dir, encoder=default_encoder))
        rng = random.Random(_SEED)
        killed = 0
        for round_ in range(_ROUNDS):
            before = live_generation(index_dir).name
            _edit(tree, round_)
            status, _ = driver.build(kill_after=rng.uniform(0, 1.2 * duration))
            killed += os.WIFSIGNALED(status)
            index = retriever.open(index_dir, encoder=default_encoder)
            published = index.generation.name != before
            # The old complete build, or (killed after publishing) the new complete one.
            assert len(index) == complete + published, (round_, status, len(index), complete)
            for mode in ("lexical", "hybrid"):
                assert index.search(QUERY, k=3, mode=mode), (round_, mode)
            status, _ = driver.build()
            assert status == 0, (tmp_path / "driver.log").read_text()[-3000:]
            complete += 1
            assert len(retriever.open(index_dir, encoder=default_encoder)) == complete
            leftovers = [p.name for p in index_dir.iterdir() if p.name.startswith(".tmp-")]
            assert not leftovers, f"round {round_}: temporary folders left: {leftovers}"
        assert killed, f"no build was killed: the builds take {duration:.2f} s"
    finally:
        driver.close()
