"""Chunking in worker processes gives what chunking here gives, file for file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import retriever
from chunking import CastChunker, walk
from chunking.pool import auto_workers, chunk_files
from indexing.layout import CHUNKS
from indexing.store import current_generation
from indexing.table import read_table
from retriever.errors import InputError

REPO = Path(__file__).resolve().parent.parent / "data" / "repo"


def test_workers_give_the_serial_chunks_in_file_order() -> None:
    files = walk(REPO).files
    chunker = CastChunker(max_chars=300)
    serial = list(chunk_files(chunker, files, workers=1))
    pooled = list(chunk_files(chunker, files, workers=2, batch_files=3))  # both get batches
    assert [d.file.path for d in pooled] == [f.path for f in files]
    assert [d.chunks for d in pooled] == [d.chunks for d in serial]
    assert sum(len(d.chunks) for d in serial) > len(files)  # the budget really cut them


def test_index_with_workers_writes_the_same_chunk_table(tmp_path: Path) -> None:
    tables = []
    for workers in (1, 2):
        retriever.index(REPO, index_dir=tmp_path / f"w{workers}", lexical_only=True,
                        cache=False, workers=workers)
        tables.append(read_table(current_generation(tmp_path / f"w{workers}") / CHUNKS))
    assert tables[0].num_rows > 0
    assert tables[0].equals(tables[1])


def test_a_file_that_vanished_is_reported_by_the_worker(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(REPO, tree)
    files = walk(tree).files
    gone = files[1]
    (tree / gone.path).unlink()
    done = list(chunk_files(CastChunker(), files, workers=2, batch_files=1))
    assert done[1].chunks == [] and done[1].error
    assert all(d.error is None and d.chunks for i, d in enumerate(done) if i != 1)


@pytest.mark.parametrize("workers", [0, -2, 1.5, True, "2"])
def test_bad_workers_are_refused_before_anything_is_built(tmp_path: Path, workers) -> None:
    with pytest.raises(InputError, match="workers must be a positive integer"):
        retriever.index(REPO, index_dir=tmp_path / "index", lexical_only=True, cache=False,
                        workers=workers)
    assert not (tmp_path / "index").exists()


def test_small_trees_stay_in_this_process() -> None:
    assert auto_workers(walk(REPO).files) == 1


def test_a_worker_over_its_time_limit_is_replaced_and_its_files_cut_by_lines() -> None:
    # No new worker can answer within a millisecond (starting one takes far longer), so the
    # batch times out, each file is retried alone in a new worker and times out again: the
    # build goes on with line windows and a note per file, in file order.
    files = walk(REPO).files[:4]
    done = list(chunk_files(CastChunker(), files, workers=2, timeout=0.001))
    assert [d.file.path for d in done] == [f.path for f in files]
    for result in done:
        assert result.note == "chunking took over 0.001 s; chunked by lines"
        assert result.chunks and {c.kind for c in result.chunks} == {"window"}
    serial = list(chunk_files(CastChunker(), files, workers=1))
    assert [d.note for d in serial] == [None] * len(files)


class _LocalChunker(CastChunker):
    """A chunker holding something no worker can be sent (a lock)."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.lock = threading.Lock()


def test_a_chunker_that_cannot_be_sent_to_workers_runs_here() -> None:
    files = walk(REPO).files
    done = list(chunk_files(_LocalChunker(), files, workers=2, batch_files=1))
    assert [d.chunks for d in done] == [d.chunks for d in chunk_files(CastChunker(), files)]


def test_a_worker_whose_parent_is_gone_exits_quietly() -> None:
    import subprocess
    import sys

    from chunking._worker import write_message

    worker = subprocess.Popen([sys.executable, "-m", "chunking._worker"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    worker.stdout.close()  # the reader is gone before the answer is written
    write_message(worker.stdin, (CastChunker(max_chars=300), walk(REPO).files[:2]))
    write_message(worker.stdin, None)
    worker.stdin.close()
    assert worker.wait(timeout=60) == 0
    assert worker.stderr.read() == b""
