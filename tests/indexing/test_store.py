from __future__ import annotations

import json
import multiprocessing
import os
import time

import pytest

from indexing.manifest import FORMAT_VERSION, new_manifest, read_manifest, write_manifest
from indexing.store import CURRENT, current_generation, is_index, writer
from retriever.errors import IndexFormatError, IndexLockedError, InputError


def _publish(index_dir, payload: str):
    with writer(index_dir) as generation:
        (generation.path / "data.txt").write_text(payload)
    return current_generation(index_dir)


def test_publish_swaps_current_atomically(tmp_path):
    index_dir = tmp_path / "idx"
    first = _publish(index_dir, "one")
    assert is_index(index_dir)
    assert (first / "data.txt").read_text() == "one"
    second = _publish(index_dir, "two")
    assert second != first
    assert (current_generation(index_dir) / "data.txt").read_text() == "two"
    # The previous generation is kept for readers that opened it a moment ago.
    assert first.exists()
    third = _publish(index_dir, "three")
    assert not first.exists() and second.exists() and third.exists()


def test_failed_build_leaves_previous_generation_and_no_debris(tmp_path):
    index_dir = tmp_path / "idx"
    live = _publish(index_dir, "good")
    with pytest.raises(RuntimeError):
        with writer(index_dir) as generation:
            (generation.path / "data.txt").write_text("half")
            raise RuntimeError("simulated crash")
    assert current_generation(index_dir) == live
    assert (live / "data.txt").read_text() == "good"
    assert not list(index_dir.glob(".tmp-*"))


def _die_while_writing(index_dir):
    with writer(index_dir) as generation:
        (generation.path / "data.txt").write_text("half")
        os._exit(1)  # a killed writer: no cleanup code runs


def test_killed_writer_leaves_index_intact_and_lock_recoverable(tmp_path):
    index_dir = tmp_path / "idx"
    live = _publish(index_dir, "good")
    process = multiprocessing.get_context("fork").Process(target=_die_while_writing,
                                                          args=(index_dir,))
    process.start()
    process.join(30)
    assert process.exitcode == 1
    assert current_generation(index_dir) == live
    assert list(index_dir.glob(".tmp-*"))  # debris of the dead writer...
    newest = _publish(index_dir, "after")  # ...is cleaned by the next one, lock is free
    assert (newest / "data.txt").read_text() == "after"
    assert not list(index_dir.glob(".tmp-*"))


def _hold_lock(index_dir, ready, release):
    with writer(index_dir):
        ready.set()
        release.wait(30)


def test_second_writer_gets_a_clear_error(tmp_path):
    index_dir = tmp_path / "idx"
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(index_dir, ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        started = time.monotonic()
        with pytest.raises(IndexLockedError, match="Another process is writing"):
            with writer(index_dir, wait=0.3):
                pass
        assert time.monotonic() - started >= 0.3
    finally:
        release.set()
        holder.join(30)


def test_refuses_to_write_into_a_foreign_nonempty_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(InputError, match="not an index"):
        with writer(tmp_path):
            pass
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_missing_or_dangling_current(tmp_path):
    with pytest.raises(IndexFormatError, match="no index"):
        current_generation(tmp_path / "nope")
    (tmp_path / CURRENT).write_text("gen-missing\n")
    with pytest.raises(IndexFormatError, match="does not name a generation"):
        current_generation(tmp_path)


def _manifest():
    return new_manifest(
        chunker={"name": "cast", "config": {}}, text_style="code",
        source={"root": "..", "commit": None}, walk=None,
        encoders=[{"id": "main", "name": "e", "config": {}, "dim": 4, "fingerprint": "f",
                   "tier": "dense"}],
        components=[{"name": "bm25", "role": "lexical", "config": {}, "path": "lexical"},
                    {"name": "faiss", "role": "vectors", "config": {}, "path": "dense",
                     "encoder": "main"}],
        counts={"files": 0, "chunks": 0, "skipped": 0},
    )


def test_manifest_round_trip(tmp_path):
    write_manifest(tmp_path, _manifest())
    manifest = read_manifest(tmp_path)
    assert manifest["version"] == FORMAT_VERSION
    assert manifest["created_by"].startswith("dense-retriever")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_text(p.read_text()[:40]), "corrupt or truncated"),
        (lambda p: p.write_text(""), "corrupt or truncated"),
        (lambda p: p.unlink(), "missing"),
        (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "version": 99})),
         "format version 99"),
        (lambda p: p.write_text(json.dumps({"format": "other"})), "not a dense-retriever"),
    ],
)
def test_damaged_manifest_is_refused(tmp_path, damage, message):
    write_manifest(tmp_path, _manifest())
    damage(tmp_path / "manifest.json")
    with pytest.raises(IndexFormatError, match=message):
        read_manifest(tmp_path)
