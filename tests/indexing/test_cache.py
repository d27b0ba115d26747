"""The vector cache on real files: round trips, concurrent writers, damage, eviction, settings."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from indexing.cache import VectorCache, cache_size_limit, default_cache_dir, open_cache
from indexing.table import text_hash
from retriever.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
DIM = 16
FP = "0123456789abcdef0123456789abcdef"


def vector(i: int, dim: int = DIM) -> np.ndarray:
    """A deterministic vector per id, so any process can say what row i must hold."""
    return np.random.default_rng(i).standard_normal(dim).astype(np.float32)


def batch(ids, dim: int = DIM) -> tuple[list[str], np.ndarray]:
    ids = list(ids)
    return [text_hash(f"text {i}") for i in ids], np.stack([vector(i, dim) for i in ids])


def segments(directory: Path) -> list[Path]:
    return sorted(directory.rglob("seg-*.vec"), key=lambda p: p.stat().st_mtime_ns)


@pytest.fixture()
def cache(tmp_path) -> VectorCache:
    return open_cache(tmp_path / "cache")


def test_round_trip_through_a_fresh_instance(cache):
    hashes, vectors = batch(range(300))
    cache.store(FP, hashes, vectors)
    again = VectorCache(cache.directory)  # what another process sees
    got, found = again.lookup(FP, DIM, hashes)
    assert got.dtype == np.float32 and got.shape == (300, DIM)
    assert found.all() and np.array_equal(got, vectors)
    assert again.problems == [] and cache.problems == []


def test_misses_are_zero_rows_and_not_found(cache):
    hashes, vectors = batch(range(0, 20, 2))
    cache.store(FP, hashes, vectors)
    query, expected = batch(range(20))
    got, found = cache.lookup(FP, DIM, query)
    assert found.tolist() == [i % 2 == 0 for i in range(20)]
    assert np.array_equal(got[found], expected[found])
    assert not got[~found].any()


def test_other_encoder_or_dimension_is_not_found(cache):
    hashes, vectors = batch(range(10))
    cache.store(FP, hashes, vectors)
    assert not cache.lookup("another-encoder", DIM, hashes)[1].any()
    got, found = cache.lookup(FP, DIM * 2, hashes)
    assert got.shape == (10, DIM * 2) and not found.any()
    # The same texts at another dimension live side by side with the first.
    wide_hashes, wide = batch(range(10), dim=DIM * 2)
    cache.store(FP, wide_hashes, wide)
    assert np.array_equal(cache.lookup(FP, DIM * 2, hashes)[0], wide)
    assert np.array_equal(cache.lookup(FP, DIM, hashes)[0], vectors)


def test_store_skips_hashes_already_cached_and_repeats(cache):
    hashes, vectors = batch(range(50))
    cache.store(FP, hashes, vectors)
    before = cache.info()
    cache.store(FP, hashes[:30], vectors[:30] + 1)  # all present: nothing is written
    assert cache.info() == before
    cache.store(FP, hashes[40:] + hashes[40:] + [text_hash("new")],
                np.concatenate([vectors[40:], vectors[40:], vector(999)[None]]))
    info = cache.info()
    assert info["segments"] == 2 and info["vectors"] == 51
    assert np.array_equal(VectorCache(cache.directory).lookup(FP, DIM, hashes)[0], vectors)


def test_any_string_works_as_a_hash(cache):
    hashes = ["not hex at all", "x" * 32, "", "é" * 40, "ab cd" * 6 + "ab", "0" * 32]
    vectors = np.stack([vector(i) for i in range(len(hashes))])
    cache.store(FP, hashes, vectors)
    got, found = VectorCache(cache.directory).lookup(FP, DIM, hashes)
    assert found.all() and np.array_equal(got, vectors)


_WRITER = textwrap.dedent(r"""
    import sys
    import numpy as np
    from indexing.cache import VectorCache
    from indexing.table import text_hash

    directory, fingerprint, start, stop, cap = sys.argv[1:]
    start, stop = int(start), int(stop)
    cache = VectorCache(directory, max_bytes=int(cap) if cap != "-" else None)
    for first in range(start, stop, 100):
        ids = range(first, min(first + 100, stop))
        vectors = np.stack([np.random.default_rng(i).standard_normal(16).astype(np.float32)
                            for i in ids])
        cache.store(fingerprint, [text_hash(f"text {i}") for i in ids], vectors)
    sys.exit("\n".join(cache.problems) if cache.problems else 0)
""")


@pytest.mark.parametrize("cap", [None, 150_000])
def test_two_concurrent_writers_both_succeed(tmp_path, cap):
    directory = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Overlapping ranges: both processes store ids 2000..2999, racing on the same texts.
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(directory), FP, str(a), str(b),
                          str(cap) if cap else "-"], env=env, cwd=ROOT, stderr=subprocess.PIPE)
        for a, b in [(0, 3000), (2000, 5000)]
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr.decode()
    assert not list(directory.rglob(".tmp-*")), "no temporary file may be left behind"
    hashes, expected = batch(range(5000))
    reader = VectorCache(directory)
    got, found = reader.lookup(FP, DIM, hashes)
    assert reader.problems == []
    assert np.array_equal(got[found], expected[found]) and not got[~found].any()
    if cap is None:
        assert found.all()
    else:
        assert 0 < found.sum() < 5000
        assert reader.info()["bytes"] <= cap


def test_truncated_segment_is_reported_and_skipped(cache):
    cache.store(FP, *batch(range(100)))
    cache.store(FP, *batch(range(100, 200)))
    damaged = segments(cache.directory)[1]
    with open(damaged, "r+b") as handle:
        handle.truncate(damaged.stat().st_size - 10)
    reader = VectorCache(cache.directory)
    hashes, expected = batch(range(200))
    got, found = reader.lookup(FP, DIM, hashes)
    assert found.tolist() == [True] * 100 + [False] * 100
    assert np.array_equal(got[:100], expected[:100]) and not got[100:].any()
    assert len(reader.problems) == 1 and damaged.name in reader.problems[0]
    assert "truncated" in reader.problems[0]
    assert reader.info()["damaged"] == 1


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "already-indexed"])
def test_flipped_byte_in_a_vector_drops_only_that_row(cache, warm):
    hashes, expected = batch(range(100))
    cache.store(FP, hashes, expected)
    reader = VectorCache(cache.directory)
    if warm:  # damage after the reader has indexed the segment: rows are checked on read
        assert reader.lookup(FP, DIM, hashes)[1].all()
    (segment,) = segments(cache.directory)
    data = bytearray(segment.read_bytes())
    data[-8 - 4 * DIM + 5] ^= 0x40  # inside the last row's vector, before its checksum
    segment.write_bytes(bytes(data))
    got, found = reader.lookup(FP, DIM, hashes)
    assert found[:-1].all() and not found[-1]
    assert np.array_equal(got[:-1], expected[:-1]) and not got[-1].any()
    assert any("checksum" in problem for problem in reader.problems)


def test_garbage_files_are_reported_and_ignored(cache):
    hashes, expected = batch(range(50))
    cache.store(FP, hashes, expected)
    folder = segments(cache.directory)[0].parent
    (folder / "seg-0-0-garbage.vec").write_bytes(os.urandom(5000))
    (folder / "notes.txt").write_text("not a segment")
    (cache.directory / "stray-file").write_bytes(b"\0" * 100)
    reader = VectorCache(cache.directory)
    got, found = reader.lookup(FP, DIM, hashes)
    assert found.all() and np.array_equal(got, expected)
    assert any("seg-0-0-garbage.vec" in p and "magic" in p for p in reader.problems)
    assert any("notes.txt" in p for p in reader.problems)
    cache.store(FP, *batch(range(50, 60)))  # writing still works beside the garbage
    assert VectorCache(cache.directory).lookup(FP, DIM, batch(range(60))[0])[1].all()


def test_symlinks_in_the_cache_are_never_followed(cache, tmp_path):
    # A valid segment with wrong vectors for ids 0..9, planted through symlinks.
    elsewhere = open_cache(tmp_path / "elsewhere")
    hashes, vectors = batch(range(10))
    elsewhere.store(FP, hashes, vectors + 100)
    (planted,) = segments(elsewhere.directory)
    cache.store(FP, *batch(range(10, 20)))
    folder = segments(cache.directory)[0].parent
    (folder / "seg-1-1-link.vec").symlink_to(planted)
    reader = VectorCache(cache.directory)
    assert not reader.lookup(FP, DIM, hashes)[1].any()
    assert any("seg-1-1-link.vec" in p and "symbolic link" in p for p in reader.problems)
    # A whole encoder folder that is a symlink is refused too, for reading and writing.
    (cache.directory / "linked-encoder").symlink_to(planted.parent, target_is_directory=True)
    other = VectorCache(cache.directory)
    assert not other.lookup("linked-encoder", DIM, hashes)[1].any()
    other.store("linked-encoder", *batch(range(30, 40)))
    assert len(segments(elsewhere.directory)) == 1, "nothing may be written through the link"
    assert any("symbolic link" in p for p in other.problems)


def test_segment_evicted_under_a_reader_is_a_miss(cache):
    hashes, vectors = batch(range(40))
    cache.store(FP, hashes, vectors)
    reader = VectorCache(cache.directory)
    assert reader.lookup(FP, DIM, hashes)[1].all()
    freed = VectorCache(cache.directory).clear()
    assert freed > 0 and not segments(cache.directory)
    got, found = reader.lookup(FP, DIM, hashes)
    assert not found.any() and not got.any() and reader.problems == []


def test_eviction_keeps_under_the_cap_least_recently_used_first(tmp_path):
    probe = open_cache(tmp_path / "probe")
    probe.store(FP, *batch(range(100)))
    segment_bytes = probe.info()["bytes"]
    cache = open_cache(tmp_path / "cache", max_bytes=int(segment_bytes * 3.5))
    groups = [batch(range(100 * g, 100 * g + 100)) for g in range(5)]
    for hashes, vectors in groups[:3]:
        cache.store(FP, hashes, vectors)
    assert cache.lookup(FP, DIM, groups[0][0])[1].all()  # group 0 is now the most recent
    cache.store(FP, *groups[3])
    assert cache.info()["bytes"] <= cache.max_bytes
    found = [VectorCache(cache.directory).lookup(FP, DIM, hashes)[1].all() for hashes, _ in
             groups[:4]]
    assert found == [True, False, True, True]
    # The reads just above touched groups 0, 2, 3 in that order: 0 is now least recent.
    cache.store(FP, *groups[4])
    found = [VectorCache(cache.directory).lookup(FP, DIM, hashes)[1].all() for hashes, _ in
             groups]
    assert found == [False, False, True, True, True]
    assert cache.info()["bytes"] <= cache.max_bytes


def test_environment_moves_and_disables_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DENSE_RETRIEVER_CACHE", str(tmp_path / "moved"))
    assert default_cache_dir() == tmp_path / "moved"
    open_cache().store(FP, *batch(range(5)))
    assert len(segments(tmp_path / "moved")) == 1
    assert (tmp_path / "moved" / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f59")
    for off in ("off", "0", "OFF"):
        monkeypatch.setenv("DENSE_RETRIEVER_CACHE", off)
        cache = open_cache()
        assert default_cache_dir() is None and not cache.enabled
        cache.store(FP, *batch(range(5, 10)))
        assert not cache.lookup(FP, DIM, batch(range(10))[0])[1].any()
        assert cache.info()["enabled"] is False
    assert len(segments(tmp_path / "moved")) == 1
    # An explicit folder wins over the environment.
    assert open_cache(tmp_path / "explicit").enabled
    monkeypatch.delenv("DENSE_RETRIEVER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "dense-retriever" / "vectors"


def test_size_cap_from_environment(monkeypatch):
    monkeypatch.setenv("DENSE_RETRIEVER_CACHE_SIZE", "500M")
    assert VectorCache().max_bytes == 500 * 1024**2
    assert cache_size_limit("2G") == 2 * 1024**3 and cache_size_limit("1048576") == 2**20
    monkeypatch.setenv("DENSE_RETRIEVER_CACHE_SIZE", "lots")
    with pytest.raises(InputError, match="DENSE_RETRIEVER_CACHE_SIZE.*2G"):
        VectorCache()


def test_unusable_folder_disables_the_cache_instead_of_failing(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = open_cache(blocker / "cache")
    assert not cache.enabled
    assert "cannot use" in cache.problems[0]
    cache.store(FP, *batch(range(3)))  # a no-op, not an error


def test_failed_store_is_reported_not_raised(cache):
    cache.directory.joinpath(FP).write_text("a file where the encoder folder should be")
    hashes, vectors = batch(range(5))
    cache.store(FP, hashes, vectors)
    assert any("could not store 5 vectors" in problem for problem in cache.problems)
    assert not cache.lookup(FP, DIM, hashes)[1].any()


def test_bad_arguments_raise_input_errors(cache):
    hashes, vectors = batch(range(4))
    with pytest.raises(InputError, match="one row per hash"):
        cache.store(FP, hashes[:3], vectors)
    with pytest.raises(InputError, match="one row per hash"):
        cache.store(FP, hashes, vectors[0])
    with pytest.raises(InputError, match="fingerprint"):
        cache.lookup("", DIM, hashes)
    with pytest.raises(InputError, match="strings"):
        cache.lookup(FP, DIM, [1, 2])
    with pytest.raises(InputError, match="dimension"):
        cache.lookup(FP, 0, hashes)


def test_info_and_clear_one_encoder(cache):
    cache.store(FP, *batch(range(30)))
    cache.store("other/encoder:v2", *batch(range(20), dim=8))
    info = cache.info()
    assert info["vectors"] == 50 and info["segments"] == 2
    assert info["fingerprints"][FP]["vectors"] == 30
    assert info["fingerprints"]["other/encoder:v2"]["dims"] == [8]
    assert info["bytes"] == sum(p.stat().st_size for p in segments(cache.directory))
    freed = cache.clear("other/encoder:v2")
    assert freed == info["fingerprints"]["other/encoder:v2"]["bytes"]
    assert set(cache.info()["fingerprints"]) == {FP}
    assert cache.lookup(FP, DIM, batch(range(30))[0])[1].all()


def test_clear_leaves_foreign_files_alone(tmp_path):
    home_like = tmp_path / "not-a-cache"
    (home_like / "project").mkdir(parents=True)
    (home_like / "project" / "notes.vec").write_text("mine")
    (home_like / "seg-1-1-a.vec").write_text("top level, not in an encoder folder")
    cache = VectorCache(home_like)
    cache.store(FP, *batch(range(5)))
    assert cache.clear() > 0
    assert (home_like / "project" / "notes.vec").read_text() == "mine"
    assert (home_like / "seg-1-1-a.vec").exists()
    assert not (home_like / FP).exists()
