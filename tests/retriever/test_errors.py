"""Bad input gets a clear RetrieverError and never damages an existing index."""

from __future__ import annotations

import json

import numpy as np
import pytest

import retriever
from indexing.store import current_generation


@pytest.fixture()
def tiny(tiny_model_dir):
    from encoders.sentence import SentenceTransformerEncoder

    return SentenceTransformerEncoder(model=str(tiny_model_dir))


@pytest.fixture()
def built(repo, tiny):
    return retriever.index(repo, encoder=tiny)


def _snapshot(index_dir):
    generation = current_generation(index_dir)
    return generation, {p.relative_to(generation): p.read_bytes()
                        for p in generation.rglob("*") if p.is_file()}


def test_missing_path(tmp_path, tiny):
    with pytest.raises(retriever.InputError, match="does not exist"):
        retriever.index(tmp_path / "nope", encoder=tiny)


def test_empty_directory(tmp_path, tiny):
    (tmp_path / "empty").mkdir()
    with pytest.raises(retriever.InputError, match="No indexable files"):
        retriever.index(tmp_path / "empty", encoder=tiny)


def test_only_binary_files(tmp_path, tiny):
    root = tmp_path / "bin"
    root.mkdir()
    (root / "blob.dat").write_bytes(bytes(range(256)) * 10)
    with pytest.raises(retriever.InputError, match="No indexable files"):
        retriever.index(root, encoder=tiny)


def test_invalid_utf8_and_broken_syntax_are_handled(repo, tiny):
    (repo / "bad.py").write_bytes(b"def f():\n    return '\xff\xfe'\n")
    (repo / "broken.py").write_text("def broken(:\n    return [1, 2\nclass Oops\n")
    index = retriever.index(repo, encoder=tiny)
    skipped = dict(index.last_build.skipped)
    assert "bad.py" in skipped
    assert any(hit.path == "broken.py" for hit in index.search("broken oops", k=20,
                                                              mode="lexical"))


def test_failed_rebuild_keeps_the_previous_index(repo, built, tiny):
    before = _snapshot(built.directory)
    for child in list(repo.iterdir()):
        if child.name != ".retriever":
            import shutil

            shutil.rmtree(child) if child.is_dir() else child.unlink()
    with pytest.raises(retriever.InputError):
        retriever.index(repo, encoder=tiny)
    assert _snapshot(built.directory) == before


def test_crash_in_the_middle_of_a_build_keeps_the_previous_index(repo, built, tiny):
    before = _snapshot(built.directory)
    (repo / "new.py").write_text("def fresh():\n    return 1\n")

    class Crash(Exception):
        pass

    def crash(stage, done, total):
        if stage == "embed":
            raise Crash

    with pytest.raises(Crash):
        retriever.index(repo, encoder=tiny, progress=crash)
    assert _snapshot(built.directory) == before
    assert not list(built.directory.glob(".tmp-*"))
    assert retriever.open(built.directory).search("retry backoff", k=1)


def test_corrupt_or_truncated_manifest(built):
    manifest = current_generation(built.directory) / "manifest.json"
    manifest.write_text(manifest.read_text()[:50])
    with pytest.raises(retriever.IndexFormatError, match="corrupt or truncated"):
        retriever.open(built.directory)


def test_unknown_format_version(built):
    manifest = current_generation(built.directory) / "manifest.json"
    data = json.loads(manifest.read_text())
    data["version"] = 42
    manifest.write_text(json.dumps(data))
    with pytest.raises(retriever.IndexFormatError, match="format version 42"):
        retriever.open(built.directory)


def test_vectors_that_do_not_match_the_chunk_table(built):
    vectors = current_generation(built.directory) / "vectors-main.npy"
    np.save(vectors, np.zeros((3, 32), dtype=np.float32))
    with pytest.raises(retriever.IndexFormatError, match="inconsistent"):
        retriever.open(built.directory)


def test_truncated_vectors_file(built):
    vectors = current_generation(built.directory) / "vectors-main.npy"
    vectors.write_bytes(vectors.read_bytes()[:100])
    with pytest.raises(retriever.IndexFormatError):
        retriever.open(built.directory)


def test_index_made_by_a_different_encoder(built, default_encoder):
    with pytest.raises(retriever.EncoderMismatchError, match="rebuild the index"):
        retriever.open(built.directory, encoder=default_encoder)


def test_open_missing_index(tmp_path):
    with pytest.raises(retriever.InputError, match="retriever index"):
        retriever.open(tmp_path / "nowhere")
    with pytest.raises(retriever.IndexFormatError, match="not a dense-retriever index"):
        retriever.open(tmp_path)


def test_unknown_encoder_name_lists_the_registered_ones(repo):
    with pytest.raises(retriever.InputError, match="sentence-transformers"):
        retriever.index(repo, encoder="no-such-encoder")
