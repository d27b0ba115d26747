"""Reading the chunk table: a run of rows and a list of rows give the same chunks, and a search
on an existing fast-tier index imports no pandas (pyarrow imports it when it builds an array
or reads through pyarrow.dataset; 0.2-0.3 s of a cold process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chunking import Chunk
from indexing.table import ChunkTableWriter, read_table, rows_to_chunks, text_hash

ROOT = Path(__file__).resolve().parents[2]


def _table(tmp_path: Path, n: int = 5):
    path = tmp_path / "chunks.parquet"
    writer = ChunkTableWriter(path, batch_rows=2)  # several row groups
    for i in range(n):
        text = f"def f{i}():\n    return {i}\n"
        writer.add(Chunk(id=f"c{i}", path=f"src/m{i % 2}.py", language="python",
                         start_line=1 + 3 * i, end_line=2 + 3 * i, kind="function",
                         symbol=None if i == 3 else f"f{i}", text=text), text_hash(text))
    writer.close()
    return read_table(path)


def test_a_run_of_rows_reads_as_the_same_rows_listed(tmp_path):
    table = _table(tmp_path)
    whole = rows_to_chunks(table, range(table.num_rows))
    assert [c.id for c in whole] == [f"c{i}" for i in range(5)]
    assert whole == rows_to_chunks(table, list(range(5)))
    assert rows_to_chunks(table, range(1, 4)) == rows_to_chunks(table, [1, 2, 3])
    assert whole[3].symbol is None and whole[4].start_line == 13
    assert rows_to_chunks(table, range(2, 2)) == [] == rows_to_chunks(table, [])
    assert rows_to_chunks(table, range(4, -1, -2)) == [whole[4], whole[2], whole[0]]
    with pytest.raises(IndexError):  # past the end: refused, not cut short
        rows_to_chunks(table, range(3, 9))


def test_a_search_on_an_existing_fast_index_imports_no_pandas(repo):
    import retriever

    retriever.index(repo, tier="fast", cache=False)
    code = (
        "import json, sys\n"
        "from retriever.cli.app import main\n"
        f"sys.argv = ['retriever', 'search', 'debounce typing', {str(repo)!r}, '--json']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print(json.dumps('pandas' in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    payload = json.loads(done.stdout)
    assert payload["tier"] == "fast" and payload["hits"][0]["path"] == "js/debounce.js"
    assert json.loads(done.stderr.strip().splitlines()[-1]) is False
