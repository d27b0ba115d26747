"""Index folders that fight back (issue 8): planted symlinks, paths leading outside, garbage
pointers, unbounded ``k``, leftovers of crashed writers, permissions and a full disk.

Every case goes through the public API or the CLI, on one real index (default model, real
FAISS and BM25) built once per module and copied before each tampering.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from pathlib import Path

import numpy as np
import pytest
from hostile import (
    PLANTS,
    QUERY,
    assert_clean_cli,
    assert_outside_unchanged,
    cli,
    copy_tree,
    deadline,
    escape,
    find_one,
    git,
    key_paths,
    live_generation,
    memory_cap,
    open_and_search,
    plant,
    project_env,
    replaced,
    secret_token,
    sibling,
    value_at,
    write_tree,
)

import retriever

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def indexed_tree(tmp_path_factory, default_encoder) -> Path:
    tree = write_tree(tmp_path_factory.mktemp("reference") / "tree")
    retriever.index(tree, encoder=default_encoder)
    return tree


@pytest.fixture()
def tree(indexed_tree, tmp_path) -> Path:
    """A private copy of the indexed tree; tmp_path/work is "next to the clone"."""
    return copy_tree(indexed_tree, tmp_path / "work" / "tree")


# 1. Nothing outside the index is written through planted symlinks.

@pytest.mark.parametrize("kind", list(PLANTS))
def test_planted_symlinks_never_write_outside_the_index_api(tree, default_encoder, kind):
    expected = plant(tree, kind)
    problem = escape(lambda: retriever.index(tree, encoder=default_encoder, force=True))
    assert_outside_unchanged(tree, expected)
    assert problem is None, problem


@pytest.mark.parametrize("kind", ["tmp-current", "dangling-lock", "dangling-lock-alone"])
def test_planted_symlinks_never_write_outside_the_index_cli(tree, kind):
    expected = plant(tree, kind)
    result = cli("search", "retry", tree, "-q")
    assert_outside_unchanged(tree, expected)
    assert_clean_cli(result)


def test_search_in_a_cloned_repository_with_planted_symlinks_writes_nothing_outside(tmp_path):
    source = write_tree(tmp_path / "upstream")
    (source / ".retriever").mkdir()
    (source / ".retriever" / "LOCK").write_text("")
    os.symlink("../../somefile", source / ".retriever" / ".tmp-CURRENT")
    git(source, "init", "-q")
    git(source, "add", ".")
    git(source, "commit", "-q", "-m", "innocent")
    work = tmp_path / "work"
    work.mkdir()
    token = secret_token()
    (work / "somefile").write_text(token)
    git(work, "clone", "-q", str(source), "clone")
    assert (work / "clone" / ".retriever" / ".tmp-CURRENT").is_symlink()  # the plant arrived
    result = cli("search", "retry backoff", work / "clone", "-q")
    assert (work / "somefile").read_text() == token
    assert_clean_cli(result)


# 2. Nothing outside the index is read.

def _path_like(generation: Path, value: object) -> bool:
    """A manifest string that names a file or folder of the generation (or part of a name)."""
    names = [p.name for p in generation.rglob("*")]
    return isinstance(value, str) and len(value) >= 3 and any(value in n for n in names)


def test_manifest_paths_leading_outside_are_refused(tree, default_encoder):
    index_dir = tree / ".retriever"
    generation = live_generation(index_dir)
    manifest = json.loads((generation / "manifest.json").read_text())
    token = secret_token()
    note = tree.parent / "outside-note.txt"
    note.write_text(token)
    candidates = [p for p in key_paths(manifest) if _path_like(generation, value_at(manifest, p))]
    assert candidates, "no manifest value names a file of the generation"
    problems = []
    for path in candidates:
        value = value_at(manifest, path)
        targets = [os.path.relpath(note, generation), str(note)]
        if (generation / value).exists():  # a valid copy outside: reading it would "work"
            outside = tree.parent / "outside" / "-".join(map(str, path)) / Path(value).name
            outside.parent.mkdir(parents=True)
            if (generation / value).is_dir():
                shutil.copytree(generation / value, outside)
            else:
                shutil.copy(generation / value, outside)
            targets += [os.path.relpath(outside, generation), str(outside)]
        for target in targets:
            case = copy_tree(index_dir, tree.parent / f"case-{len(problems)}-{uuid.uuid4().hex}")
            (live_generation(case) / "manifest.json").write_text(
                json.dumps(replaced(manifest, path, target)))
            try:
                retriever.open(case, encoder=default_encoder).search(QUERY, k=3)
                problems.append(f"{path} = {target!r}: opened and searched")
            except retriever.IndexFormatError as exc:
                if token in str(exc):
                    problems.append(f"{path} = {target!r}: the message shows the outside file")
            except Exception as exc:  # noqa: BLE001 - reported below
                problems.append(f"{path} = {target!r}: {type(exc).__name__}: {exc}"[:200])
    assert not problems, "\n".join(problems)


def test_generation_symlinked_to_an_outside_copy_is_refused(tree, default_encoder):
    index_dir = tree / ".retriever"
    generation = live_generation(index_dir)
    outside = tree.parent / "outside" / generation.name
    outside.parent.mkdir()
    shutil.move(generation, outside)
    os.symlink(os.path.relpath(outside, index_dir), generation)
    with pytest.raises(retriever.IndexFormatError):
        retriever.open(index_dir, encoder=default_encoder)


@pytest.mark.parametrize("target", ["token-file", "generation-name-file", "etc-hostname"])
def test_current_symlink_is_refused_without_showing_its_target(tree, default_encoder, target):
    index_dir = tree / ".retriever"
    current = index_dir / "CURRENT"
    if target == "etc-hostname":
        outside = Path("/etc/hostname")
        if not outside.is_file():
            pytest.skip("no /etc/hostname here")
        secret = outside.read_text().strip()
    else:
        outside = tree.parent / "pointer.txt"
        secret = secret_token()
        text = live_generation(index_dir).name if target == "generation-name-file" else secret
        outside.write_text(text + "\n")
    current.unlink()
    os.symlink(outside, current)
    with pytest.raises(retriever.IndexFormatError) as caught:
        retriever.open(index_dir, encoder=default_encoder)
    if len(secret) >= 6 and secret not in str(index_dir):
        assert secret not in str(caught.value)


# 3. k is bounded.

@pytest.mark.parametrize("mode", ["hybrid", "lexical", "dense"])
def test_huge_k_returns_at_most_the_index_quickly_and_in_little_memory(
        indexed_tree, default_encoder, mode):
    index = retriever.open(indexed_tree / ".retriever", encoder=default_encoder)
    index.search(QUERY, k=5, mode=mode)  # the model's first pass is not what is measured
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with memory_cap(2 << 30), deadline(5):
            hits = index.search(QUERY, k=10_000_000, mode=mode)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(hits) <= len(index)
    assert time.perf_counter() - started < 5
    assert peak < 200 << 20, f"k=10,000,000 allocated {peak / 2**20:.0f} MiB"


def test_absurd_k_is_capped_or_refused_by_its_maximum(indexed_tree, default_encoder):
    index = retriever.open(indexed_tree / ".retriever", encoder=default_encoder)
    for k in (2**62, 2**63 - 1):
        with memory_cap(2 << 30), deadline(5):
            try:
                hits = index.search(QUERY, k=k)
            except retriever.InputError as exc:
                assert re.search(r"\d", str(exc)), f"the message names no maximum: {exc}"
                continue
        assert len(hits) <= len(index)


def test_cli_huge_k(indexed_tree):
    with memory_cap(2 << 30), deadline(5):
        result = cli("search", QUERY, "--index", indexed_tree / ".retriever",
                     "-k", "1000000000", "--json")
    assert_clean_cli(result)
    if result.exit_code == 0:
        hits = json.loads(result.stdout)["hits"]
        assert len(hits) <= len(retriever.open(indexed_tree / ".retriever"))


# 4. A dangling or garbage CURRENT is repaired by a forced build.

DAMAGED_CURRENT = {
    "garbage-bytes": b"\xff\xfe\x00\x80garbage\n",
    "missing-generation": b"gen-00000000000000000001-deadbeef\n",
    "empty": b"",
    "name-too-long": b"gen-" + b"9" * 300 + b"\n",
    "directory": None,
}


@pytest.mark.parametrize("way", ["api", "cli"])
@pytest.mark.parametrize("damage", list(DAMAGED_CURRENT))
def test_damaged_current_is_repaired_by_force(tree, default_encoder, damage, way):
    current = tree / ".retriever" / "CURRENT"
    current.unlink()
    if DAMAGED_CURRENT[damage] is None:
        current.mkdir()
        (current / "gen-inside").write_text("x")
    else:
        current.write_bytes(DAMAGED_CURRENT[damage])
    if way == "api":
        assert retriever.index(tree, force=True, encoder=default_encoder).last_build.rebuilt
    else:
        result = cli("index", tree, "--force", "-q")
        assert result.exit_code == 0, (result.exception, result.output)
    assert open_and_search(tree / ".retriever", default_encoder) == "ok"


# 6. Smaller ones.

def test_a_source_file_named_current_is_not_an_index(tree):
    token = secret_token()
    (tree / "CURRENT").write_text(f"release notes {token}\n")
    result = cli("info", tree)
    assert result.exit_code == 0, (result.exception, result.output)
    assert ".retriever" in result.output and token not in result.output
    shutil.rmtree(tree / ".retriever")
    result = cli("info", tree)
    assert_clean_cli(result)
    assert result.exit_code == 1 and token not in result.output


def test_decreasing_bm25_offsets_are_refused_at_open(tree, default_encoder):
    indptr_file = find_one(live_generation(tree / ".retriever"), "indptr*.npy")
    indptr = np.load(indptr_file, allow_pickle=False)
    assert len(indptr) > 3
    indptr[1:-1] = indptr[1:-1][::-1].copy()  # same values and ends, no longer sorted
    assert np.any(np.diff(indptr) < 0)
    np.save(indptr_file, indptr, allow_pickle=False)
    with pytest.raises(retriever.IndexFormatError):
        retriever.open(tree / ".retriever", encoder=default_encoder)


def test_a_writer_that_waited_for_the_lock_rechecks_staleness(tree, default_encoder):
    (tree / "extra.py").write_text("def added_later():\n    return 42\n")
    holding = threading.Event()
    reports: dict[str, object] = {}

    def hold(stage, done, total):
        if not holding.is_set():
            holding.set()
            time.sleep(1.5)  # the second writer checks staleness and waits meanwhile

    def first():
        reports["first"] = retriever.index(tree, encoder=default_encoder, progress=hold)

    def second():
        holding.wait(30)
        reports["second"] = retriever.index(tree, encoder=default_encoder, wait=30)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert reports["first"].last_build.rebuilt
    assert reports["second"].last_build.rebuilt is False
    assert reports["second"].generation == reports["first"].generation


def test_build_after_a_crash_keeps_the_live_generation_and_drops_the_orphan(
        tree, default_encoder):
    index_dir = tree / ".retriever"
    live = live_generation(index_dir)
    orphan = sibling(live, 1)  # finished by a writer that died before publishing it
    shutil.copytree(live, orphan)
    half = index_dir / ".tmp-00000000000000000002-00000000"
    half.mkdir()
    (half / "chunks.parquet").write_bytes(b"PAR1")
    (tree / "extra.py").write_text("def added_later():\n    return 42\n")
    assert retriever.index(tree, encoder=default_encoder).last_build.rebuilt
    assert live.is_dir(), "the generation that was live (readers may hold it) was deleted"
    assert not orphan.exists() and not half.exists()


def test_an_up_to_date_refresh_still_prunes_leftovers(tree, default_encoder):
    index_dir = tree / ".retriever"
    live = live_generation(index_dir)
    older = [sibling(live, -2), sibling(live, -1)]
    orphan = sibling(live, 1)
    for copy in (*older, orphan):
        shutil.copytree(live, copy)
    temp = index_dir / ".tmp-00000000000000000002-00000000"
    temp.mkdir()
    assert retriever.index(tree, encoder=default_encoder).last_build.rebuilt is False
    assert live.is_dir() and open_and_search(index_dir, default_encoder) == "ok"
    assert not temp.exists(), "a dead writer's temporary folder was kept"
    assert not orphan.exists(), "an unpublished generation was kept"
    assert sum(p.exists() for p in older) <= 1, "stale generations were kept"


# 7. Privacy.

def test_index_of_a_private_file_is_not_world_readable(tmp_path, default_encoder):
    tree = write_tree(tmp_path / "tree")
    os.chmod(tree / "retry.py", 0o600)
    mask = os.umask(0o022)
    try:
        retriever.index(tree, encoder=default_encoder)
    finally:
        os.umask(mask)
    index_dir = tree / ".retriever"
    if index_dir.stat().st_mode & 0o007:  # others can enter the folder: no file may be readable
        readable = [str(p.relative_to(index_dir)) for p in index_dir.rglob("*")
                    if p.is_file() and p.stat().st_mode & 0o004]
        assert not readable, f"world-readable index files of a 0600 source: {readable}"


def test_the_index_stores_no_absolute_path_of_this_machine(tmp_path, default_encoder):
    tree = write_tree(tmp_path / "tree")
    retriever.index(tree, encoder=default_encoder)
    generation = live_generation(tree / ".retriever")
    manifest = (generation / "manifest.json").read_text()
    for absolute in {str(tree), str(tree.resolve()), str(Path(sys.prefix).resolve())}:
        assert absolute not in manifest
        for path in generation.rglob("*"):
            if path.is_file():
                assert absolute.encode() not in path.read_bytes(), path.name


# 8. A full disk.

# Room left on the disk: 96 KiB holds the chunk tables but not the ~310 KiB of vectors;
# 400 KiB holds the vectors too, but not the FAISS file of the same size written after them.
@pytest.mark.parametrize("room_kib", [96, 400])
def test_a_full_disk_is_an_error_and_keeps_the_previous_index(tmp_path, default_encoder,
                                                               room_kib):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        tree = write_tree(tmp_path / "tree")
        index_dir = disk / "index"
        before = len(retriever.index(tree, index_dir=index_dir, encoder=default_encoder))
        for i in range(200):  # 200 chunks: 300 KiB of vectors
            (tree / f"mod_{i}.py").write_text(f"def handler_{i}(value):\n    return value + {i}\n")
        free = os.statvfs(disk)
        (disk / "filler").write_bytes(b"\0" * (free.f_bavail * free.f_frsize - (room_kib << 10)))
        build = subprocess.run(
            [sys.executable, "-c", "from retriever.cli.app import main; main()",
             "index", str(tree), "--index", str(index_dir), "-q"],
            capture_output=True, text=True, env=project_env(), timeout=120)
        assert build.returncode != -signal.SIGBUS, "the build died of SIGBUS"
        assert build.returncode == 1 and "Traceback" not in build.stderr, build.stderr[-2000:]
        assert re.search(r"^Error: .*(space|full)", build.stderr, re.IGNORECASE | re.MULTILINE), \
            build.stderr[-2000:]
        assert not list(index_dir.glob(".tmp-*")), "the failed build left its temporary folder"
        (disk / "filler").unlink()
        assert len(retriever.open(index_dir, encoder=default_encoder)) == before
        assert open_and_search(index_dir, default_encoder) == "ok"
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
