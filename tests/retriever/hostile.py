"""Shared by the hostile-index tests: a tiny tree, copies of one built index, tampering helpers,
and the one rule every case ends with: the index works, or a RetrieverError says why; nothing
else (no other exception, no traceback from the CLI).

Nothing here knows the index layout beyond what ``DESIGN.md`` promises (``CURRENT`` names the
live generation folder; the generation holds ``manifest.json``); files inside a generation are
found by name wherever they are, so the tests survive the manifest and folder reshuffles.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import resource
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

import retriever
from retriever.cli.app import app

QUERY = "retry with exponential backoff"

TREE_FILES = {
    "retry.py": (
        "def retry_with_backoff(call, attempts=5):\n"
        '    """Retry a call, doubling the delay after each failure."""\n'
        "    delay = 0.1\n"
        "    for _ in range(attempts):\n"
        "        try:\n"
        "            return call()\n"
        "        except OSError:\n"
        "            delay *= 2\n"
        "    raise TimeoutError(delay)\n"
    ),
    "config.py": (
        "def load_config(path):\n"
        '    """Read KEY=VALUE lines into a dict."""\n'
        "    with open(path) as handle:\n"
        "        return dict(line.strip().split('=', 1) for line in handle if '=' in line)\n"
    ),
    "server.go": (
        "package main\n\n"
        "func handleRequest(path string) string {\n"
        '\treturn "hello " + path\n'
        "}\n"
    ),
    "README.md": "# Tool\n\nInstall it with pip, then run the server.\n",
}

runner = CliRunner()


def write_tree(root: Path) -> Path:
    """A small source tree at ``root`` (created)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in TREE_FILES.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def copy_tree(source: Path, target: Path) -> Path:
    """Copy a tree (and its index) keeping symlinks as symlinks and mtimes as they were, so
    an unchanged copy of an indexed tree is still up to date."""
    shutil.copytree(source, target, symlinks=True)
    return target


def live_generation(index_dir: Path) -> Path:
    """The generation folder ``CURRENT`` names (read here, not through the library)."""
    return index_dir / (index_dir / "CURRENT").read_text(encoding="utf-8").strip()


def find_one(folder: Path, pattern: str) -> Path:
    """The single file under ``folder`` matching ``pattern`` (anywhere below it)."""
    found = sorted(p for p in folder.rglob(pattern) if p.is_file())
    assert len(found) == 1, f"expected one {pattern} under {folder}, found {found}"
    return found[0]


def data_files(index_dir: Path) -> list[Path]:
    """Every file of the live generation, and CURRENT, in a stable order."""
    generation = live_generation(index_dir)
    return [index_dir / "CURRENT",
            *sorted(p for p in generation.rglob("*") if p.is_file() and not p.is_symlink())]


def open_and_search(index_dir: Path, encoder: Any, modes=("lexical", "hybrid")) -> str:
    """Open the index and search it in each mode: ``"ok"``, or ``"refused"`` when a
    RetrieverError says why. Any other exception propagates and fails the test."""
    try:
        index = retriever.open(index_dir, encoder=encoder)
        for mode in modes:
            hits = index.search(QUERY, k=5, mode=mode)
            assert len(hits) <= len(index)
        index.info()
    except retriever.RetrieverError:
        return "refused"
    return "ok"


def escape(action: Callable[[], object]) -> str | None:
    """None when ``action`` returns or raises a RetrieverError; else what escaped."""
    try:
        action()
    except retriever.RetrieverError:
        return None
    except Exception as exc:  # noqa: BLE001 - any other exception is the defect we report
        return f"{type(exc).__name__}: {str(exc)[:160]}"
    return None


def cli(*args: str) -> Result:
    """``retriever ARGS`` in this process (typer's CliRunner)."""
    return runner.invoke(app, [str(a) for a in args])


def cli_escape(result: Result) -> str | None:
    """None for a clean exit: 0, or 1 with an ``Error:`` line; else what went wrong."""
    if result.exit_code == 0 and result.exception is None:
        return None
    if result.exit_code == 1 and isinstance(result.exception, SystemExit) \
            and "Error:" in result.output and "Traceback" not in result.output:
        return None
    return f"exit {result.exit_code}, {result.exception!r}: {result.output[-300:]!r}"


def assert_clean_cli(result: Result) -> None:
    problem = cli_escape(result)
    assert problem is None, problem


# Planted symlinks and crash leftovers.

def secret_token() -> str:
    """A string that appears nowhere unless a test put it there."""
    return f"SECRET-{uuid.uuid4().hex}"


# Symlinks a repository can ship inside .retriever: (name, target relative to it). The targets
# lie next to the tree, as files next to a clone would.
PLANTS = {
    "tmp-current": (".tmp-CURRENT", "../../somefile"),  # with a LOCK file, and no index
    "tmp-current-in-index": (".tmp-CURRENT", "../../somefile"),
    "tmp-current-suffixed": (".tmp-CURRENT-0a1b2c3d", "../../somefile"),
    "dangling-lock": ("LOCK", "../../lock-target"),
    "dangling-lock-alone": ("LOCK", "../../lock-target"),  # and nothing else
    "tmp-dir": (".tmp-00000000000000000001-00000000", "../../outside-dir"),
    "old-generation": ("gen-00000000000000000001-00000000", "../../outside-dir"),
}


def plant(tree: Path, kind: str) -> dict[Path, str | None]:
    """Plant one of PLANTS in tree/.retriever; return outside path -> its expected text
    afterwards (None: must not exist)."""
    index_dir, work = tree / ".retriever", tree.parent
    secret = secret_token()
    somefile, missing, folder = work / "somefile", work / "lock-target", work / "outside-dir"
    somefile.write_text(secret)
    folder.mkdir()
    (folder / "keep.txt").write_text(secret)
    if kind in ("tmp-current", "dangling-lock-alone"):
        shutil.rmtree(index_dir)  # a repository that ships only the planted files
        index_dir.mkdir()
    if kind == "tmp-current":
        (index_dir / "LOCK").write_text("")
    name, target = PLANTS[kind]
    link = index_dir / name
    if os.path.lexists(link):
        link.unlink()
    os.symlink(target, link)
    return {somefile: secret, folder / "keep.txt": secret, missing: None}


def assert_outside_unchanged(tree: Path, expected: dict[Path, str | None]) -> None:
    for path, text in expected.items():
        if text is None:
            assert not os.path.lexists(path), f"{path} was created through a planted symlink"
        else:
            assert path.read_text() == text, f"{path} was overwritten through a planted symlink"
    assert [p.name for p in (tree.parent / "outside-dir").iterdir()] == ["keep.txt"]


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t",
                    "-c", "init.defaultBranch=main", *args],
                   cwd=cwd, check=True, capture_output=True)


def sibling(generation: Path, delta: int) -> Path:
    """A generation name ``delta`` nanoseconds older (negative) or newer than ``generation``."""
    match = re.fullmatch(r"gen-([0-9]+)-([0-9a-f]+)", generation.name)
    assert match, generation.name
    stamp = f"{int(match[1]) + delta:0{len(match[1])}d}"
    return generation.with_name(f"gen-{stamp}-{'f' * len(match[2])}")


# Manifest walking: every key path of the JSON, and a copy with one value replaced.

def key_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path (dict keys and list indices) below ``value``, parents first."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return []
    paths = []
    for key, child in items:
        paths.append((*prefix, key))
        paths.extend(key_paths(child, (*prefix, key)))
    return paths


_DELETE = object()


def replaced(document: Any, path: tuple, value: Any) -> Any:
    """A deep copy of ``document`` with the value at ``path`` replaced (or deleted)."""
    result = copy.deepcopy(document)
    parent = result
    for key in path[:-1]:
        parent = parent[key]
    if value is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return result


def value_at(document: Any, path: tuple) -> Any:
    for key in path:
        document = document[key]
    return document


# One of each JSON type, plus the ints a careless check lets through; "missing" deletes the key.
WRONG_VALUES: dict[str, Any] = {
    "string": "x", "list": [], "dict": {}, "null": None, "true": True, "negative": -1,
    "huge": 10**30, "missing": _DELETE,
}


def _data_segment_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@contextlib.contextmanager
def memory_cap(extra: int) -> Iterator[None]:
    """Let this process allocate at most ``extra`` more bytes of data while the block runs.

    A search that sizes its buffers by an unchecked ``k`` then fails here with MemoryError
    instead of waking the OOM killer on a shared machine. No cap where /proc is missing.
    """
    used = _data_segment_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if used is None:
        yield
        return
    limit = used + extra if hard == resource.RLIM_INFINITY else min(hard, used + extra)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


class TookTooLong(Exception):
    """Raised in the main thread by :func:`deadline`."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Interrupt the block (between Python bytecodes) after ``seconds``, so a search that
    loops over an unbounded ``k`` fails its test in seconds instead of running for minutes.
    Main thread only; without SIGALRM the block runs unbounded."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise TookTooLong(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except TookTooLong:
        # Raised at an arbitrary bytecode; a fresh error keeps pytest's report readable.
        raise AssertionError(f"the block was still running after {seconds} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def project_env() -> dict[str, str]:
    """Environment for a child Python that imports this checkout (not another install)."""
    root = str(Path(retriever.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["HF_HUB_OFFLINE"] = "1"
    return env
