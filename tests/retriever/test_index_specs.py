"""Index specs through the public API: recorded in the manifest, checked before anything is
written, updated by label on re-indexing, damaged files refused, per-query knobs, and readers
in other processes undisturbed while a third process re-indexes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import retriever
from indexing.store import current_generation
from retriever.errors import IndexFormatError, InputError

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray").split()


def documents(n: int, *, seed: int = 0, prefix: str = "d") -> list:
    rng = np.random.default_rng(seed)
    return [
        retriever.Document(id=f"{prefix}{i}", title=f"doc {i}",
                           text=" ".join(rng.choice(WORDS, size=12)) + f" item{i}")
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def encoder():
    """The real model (a random-weight one maps these texts to near-identical vectors), with
    each text encoded once for the whole module: these tests build many small indexes."""
    from encoders.sentence import SentenceTransformerEncoder

    model = SentenceTransformerEncoder()
    encode, seen = model.encode_documents, {}

    def encode_documents(texts, **kwargs):
        missing = [t for t in dict.fromkeys(texts) if t not in seen]
        if missing:
            seen.update(zip(missing, encode(missing), strict=True))
        if not texts:
            return encode(texts)
        return np.stack([seen[t] for t in texts]).astype(np.float32)

    model.encode_documents = encode_documents
    return model


def own_top1(index, docs) -> float:
    vectors = np.asarray(index.vectors)
    _, rows = index.search_vectors(vectors, 1)
    return float((rows[:, 0] == np.arange(len(docs))).mean())


@pytest.mark.parametrize(
    ("spec", "options", "kind", "folder"),
    [
        ("Flat", None, "faiss", "dense"),
        ("HNSW32,Flat", None, "faiss", "dense"),
        ("IVF4,Flat", {"nprobe": 4}, "faiss", "dense"),
        ("BFlat", None, "faiss-binary", "binary"),
        ("BFlat", {"rescore": "int8"}, "faiss-binary", "binary"),
        ("Flat", {"dims": 16, "rescore": "float"}, "faiss", "dense"),
    ],
)
def test_spec_is_recorded_and_searches(tmp_path, encoder, spec, options, kind, folder):
    docs = documents(120)
    index = retriever.index_documents(docs, index_dir=tmp_path / "i", encoder=encoder,
                                      index_spec=spec, index_options=options)
    [entry] = [c for c in index.manifest["components"] if c["role"] == "vectors"]
    assert entry["name"] == kind and entry["config"]["spec"] == spec
    assert entry["path"] == folder and (index.generation / folder).is_dir()
    assert entry["encoder"] == "main" and (index.generation / "labels.npy").is_file()
    assert own_top1(index, docs) >= 0.95
    hits = index.search(docs[7].text, k=3, mode="dense")
    assert len(hits) == 3 and hits[0].path == "d7"
    reopened = retriever.open(tmp_path / "i")
    assert [h.path for h in reopened.search(docs[7].text, k=3, mode="dense")] == \
        [h.path for h in hits]


def test_per_query_knobs(tmp_path, encoder):
    docs = documents(200)
    index = retriever.index_documents(docs, index_dir=tmp_path / "i", encoder=encoder,
                                      index_spec="IVF8,Flat", index_options={"nprobe": 8})
    wide = index.search_vectors(np.asarray(index.vectors[:50]), 5)[1]
    narrow = index.search_vectors(np.asarray(index.vectors[:50]), 5, nprobe=1)[1]
    assert not np.array_equal(wide, narrow)
    np.testing.assert_array_equal(index.search_vectors(np.asarray(index.vectors[:50]), 5)[1],
                                  wide)
    assert index.search("alpha bravo", k=2, mode="dense", nprobe=2)
    with pytest.raises(InputError, match="nprobe"):
        index.search_vectors(np.asarray(index.vectors[:2]), 5, nprobe=0)


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        ("Bogus", None, "cannot build index spec"),
        ("IVF4,PQ5", None, "PQ's M must divide"),
        ("BFlat", {"dims": 12}, "multiple of 8"),
        ("Flat", {"colour": "red"}, "Bad option"),
    ],
)
def test_bad_spec_fails_before_anything_is_written(tmp_path, encoder, spec, options, message):
    index_dir = tmp_path / "i"
    fresh = tmp_path / "fresh"
    with pytest.raises(InputError, match=message):
        retriever.index_documents(documents(20), index_dir=fresh, encoder=encoder,
                                  index_spec=spec, index_options=options)
    assert not fresh.exists()
    retriever.index_documents(documents(20), index_dir=index_dir, encoder=encoder)
    before = current_generation(index_dir)
    listing = sorted(p.name for p in index_dir.iterdir())
    with pytest.raises(InputError, match=message):
        retriever.index_documents(documents(30, seed=1), index_dir=index_dir, encoder=encoder,
                                  index_spec=spec, index_options=options)
    assert current_generation(index_dir) == before
    assert sorted(p.name for p in index_dir.iterdir()) == listing


@pytest.mark.parametrize(
    ("spec", "options", "update"),
    [("IVF4,Flat", {"nprobe": 4}, "incremental"), ("BIVF4", {"nprobe": 4}, "incremental"),
     ("SQ8", None, "incremental"), ("Flat", None, "built"), ("BFlat", None, "built")],
)
def test_reindex_updates_the_vector_index_by_label(tmp_path, encoder, spec, options, update):
    """Trained structures are updated by label; flat ones are cheaper to rebuild."""
    docs = documents(100)
    first = retriever.index_documents(docs, index_dir=tmp_path / "i", encoder=encoder,
                                      index_spec=spec, index_options=options)
    assert first.last_build.dense_update == "built"
    changed = docs[5:] + documents(4, seed=9, prefix="new")
    changed[0] = retriever.Document(id="d5", title="doc 5", text="entirely new words here")
    # Same id and text, new title: the embedded text changes, so its vector must too.
    changed[1] = retriever.Document(id="d6", title="zebra crossing", text=docs[6].text)
    second = retriever.index_documents(changed, index_dir=tmp_path / "i", encoder=encoder,
                                       index_spec=spec, index_options=options)
    report = second.last_build
    assert report.dense_update == update
    if update == "incremental":
        assert report.dense_kept == len(changed) - 6  # 4 new documents and 2 changed
    assert len(second) == len(changed)
    fresh = retriever.index_documents(changed, index_dir=tmp_path / "fresh", encoder=encoder,
                                      index_spec=spec, index_options=options)
    queries = np.asarray(fresh.vectors[:40])
    got, want = second.search_vectors(queries, 5), fresh.search_vectors(queries, 5)
    if spec != "SQ8":  # SQ8 keeps the value ranges it learnt first: scores drift a little
        np.testing.assert_allclose(got[0], want[0], atol=1e-5)
    assert (got[1][:, 0] == want[1][:, 0]).mean() >= 0.95
    assert {h.path for h in second.search("entirely new words here", k=1, mode="dense")} \
        == {"d5"}


def test_damaged_vector_index_or_vectors_are_refused(tmp_path, encoder):
    index_dir = tmp_path / "i"
    built = retriever.index_documents(documents(40), index_dir=index_dir, encoder=encoder,
                                      index_spec="Flat")
    generation = built.generation
    faiss_file = generation / "dense" / "flat.faiss"
    original = faiss_file.read_bytes()
    faiss_file.write_bytes(original[: len(original) // 2])
    with pytest.raises(IndexFormatError, match="flat.faiss.*Rebuild"):
        retriever.open(index_dir)
    faiss_file.write_bytes(original)
    vectors = generation / "vectors-main.npy"
    np.save(vectors, np.zeros((40, 7), np.float32))
    with pytest.raises(IndexFormatError, match="vectors-main.npy.*shape"):
        retriever.open(index_dir)
    # A rebuild over a damaged generation works and replaces it.
    rebuilt = retriever.index_documents(documents(40), index_dir=index_dir, encoder=encoder)
    assert len(rebuilt) == 40 and rebuilt.generation != generation


_READER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    import retriever
    # No model here: queries are vectors taken from the index itself (dense) and words (BM25).
    stop, deadline = Path(sys.argv[3]), time.monotonic() + 240
    searches = errors = 0
    generations = set()
    while not stop.exists() and time.monotonic() < deadline:
        try:
            index = retriever.open(sys.argv[1])
            generations.add(index.generation.name)
            for row in range(3):
                scores, rows = index.search_vectors(np.asarray(index.vectors[row : row + 1]), 5)
                assert rows[0, 0] == row and (rows >= 0).all(), rows
                assert len(index.search("alpha bravo item3", k=5, mode="lexical")) == 5
                searches += 1
            time.sleep(0.01)  # leave the writer some CPU on small machines
            if searches == 3:
                Path(sys.argv[3] + ".ready" + sys.argv[4]).touch()
        except Exception as exc:
            errors += 1
            print("ERROR", type(exc).__name__, exc, flush=True)
    print("DONE", searches, errors, len(generations), flush=True)
""")



@pytest.mark.slow
def test_readers_in_other_processes_never_see_a_half_written_index(tmp_path, encoder):
    """Two reader processes open and search in a loop while this process re-indexes."""
    spec = "BFlat"
    index_dir = tmp_path / "i"
    retriever.index_documents(documents(60), index_dir=index_dir, encoder=encoder,
                              index_spec=spec)
    root = Path(__file__).parents[2]
    stop = tmp_path / "stop"
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", _READER, str(index_dir), "-", str(stop), str(i)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=root,
        )
        for i in range(2)
    ]
    deadline = time.monotonic() + 120
    while not all(Path(f"{stop}.ready{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline and all(r.poll() is None for r in readers)
        time.sleep(0.2)
    # This process is the third: it re-indexes (new documents each time) while they read.
    for round_ in range(4):
        retriever.index_documents(documents(60, seed=round_ + 1), index_dir=index_dir,
                                  encoder=encoder, index_spec=spec, wait=60)
        time.sleep(0.5)
    stop.touch()
    outputs = [reader.communicate(timeout=300)[0] for reader in readers]
    for reader, output in zip(readers, outputs, strict=True):
        assert reader.returncode == 0, output[-2000:]
        assert "ERROR" not in output, output[-2000:]
        done = [line for line in output.splitlines() if line.startswith("DONE")][0].split()
        assert int(done[1]) > 0 and int(done[2]) == 0
    # The readers saw more than one generation: they kept working across the swaps.
    assert any(int(o.splitlines()[-1].split()[3]) > 1 for o in outputs)
