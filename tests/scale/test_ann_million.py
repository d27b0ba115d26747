"""benchmarks/ann_million.py at tiny scale: mining windows, the query split, recall, and the
build-then-measure loop over real FAISS kinds in pinned child processes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
ann = pytest.importorskip("ann_million")


def _tree(root: Path) -> None:
    body = "\n".join(f"def function_{i}(value):\n    return value * {i}" for i in range(40))
    (root / "pkg").mkdir()
    (root / "pkg" / "one.py").write_text(body, encoding="utf-8")
    (root / "pkg" / "copy.py").write_text(body, encoding="utf-8")  # the same windows again
    (root / "pkg" / "min.js").write_text("x=" + "1," * 5000 + "\n", encoding="utf-8")  # minified
    (root / "pkg" / "tiny.h").write_text("int a;\n\n\nint b;\n", encoding="utf-8")  # too little
    (root / "pkg" / "notes.md").write_text(
        "\n".join(f"The retry policy doubles the delay, step {i}." for i in range(31)),
        encoding="utf-8")
    (root / "pkg" / "data.csv").write_text("a,b\n" * 100, encoding="utf-8")  # not a suffix kept


def test_mining_keeps_distinct_windows_of_real_text_with_the_path_header(tmp_path):
    _tree(tmp_path)
    texts, paths, stats = ann.mine([tmp_path], target=1000, processes=1)
    # one.py and copy.py: 80 lines -> 3 windows each, the copy's all dropped as duplicates;
    # notes.md: 31 lines -> a 30-line window and a 1-line one (too little text).
    assert stats["duplicates_dropped"] == 3
    assert len(texts) == 4 == len(set(texts))
    assert sorted(set(paths)) in (["pkg/copy.py", "pkg/notes.md"], ["pkg/notes.md", "pkg/one.py"])
    for text, path in zip(texts, paths, strict=True):
        header, body = text.split("\n", 1)
        assert header == path and len(body.splitlines()) <= ann.WINDOW
    limited, _, _ = ann.mine([tmp_path], target=2, processes=1)
    assert len(limited) == 2


def test_queries_are_held_out_and_short_queries_skip_comment_markers():
    held, rest = ann.split_queries([f"t{i}" for i in range(50)], 10)
    assert len(held) == 10 and len(rest) == 40 and not set(held) & set(rest)
    assert ann.short_query("}\n    # Retry the request with backoff\nx = 1") == \
        "Retry the request with backoff"
    assert ann.short_query("  /** Parses the header block. */") == "Parses the header block. */"
    assert ann.short_query("x = 1\ny = 2") == "x = 1"  # no line of three words: the first


def test_recall_counts_the_overlap_with_exact_top_k():
    exact = np.array([list(range(10)), list(range(10, 20))])
    found = np.array([list(range(5)) + [90, 91, 92, 93, 94], list(range(10, 20))[::-1]])
    assert ann.recall_at(found, exact) == pytest.approx((0.5 + 1.0) / 2)
    assert ann.recall_at(np.full((1, 10), -1), exact[:1]) == 0.0


def test_binary_kind_with_every_candidate_rescored_is_the_int8_ranking():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((500, 64)).astype(np.float32)
    queries = rng.standard_normal((5, 64)).astype(np.float32)
    index = ann.BinaryInt8.build(faiss, vectors)
    index.rescore_multiplier = 50  # 10 * 50 = every vector
    scores, ids = index.search(queries, 10)
    expected = (queries * index.scale) @ index.int8.astype(np.float32).T
    np.testing.assert_array_equal(ids, np.argsort(-expected, axis=1)[:, :10])
    np.testing.assert_allclose(scores, np.sort(expected, axis=1)[:, ::-1][:, :10], rtol=1e-5)


def test_extrapolation_states_the_arithmetic():
    row = ann.extrapolate(file_bytes=1_000_000, resident=2_000_000, n=1000, fixed=500_000)
    assert row["bytes_per_vector"] == 1500 and row["file_bytes_per_vector"] == 500
    assert row["extrapolated_10m_gb"] == pytest.approx((500_000 + 1500 * 10_000_000) / 1e9)
    assert ann.fixed_bytes("IVF64,PQ8", 32) == 64 * 32 * 4 + 256 * 32 * 4


def test_measure_all_builds_and_measures_in_pinned_children(tmp_path):
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    np.save(tmp_path / "vectors.npy", vectors)
    for name in ("doc", "short"):
        queries = vectors[rng.choice(3000, 40)] + 0.1 * rng.standard_normal((40, 32))
        np.save(tmp_path / f"queries_{name}.npy", queries.astype(np.float32))
    out = tmp_path / "result.json"
    args = argparse.Namespace(work=str(tmp_path), train=2000, single=40, batches=1, cores=None,
                              kinds=["IVF4096,Flat", "Flat"], nlist=64, budget=60, json=out,
                              reuse=False)
    result = ann.cmd_measure_all(args)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    ivf, flat = result["kinds"]
    assert ivf["spec"] == "IVF64,Flat" and "error" not in ivf, ivf
    recalls = [row["recall_doc"] for row in ivf["settings"]]
    assert recalls[-1] == 1.0 and recalls[0] < 1.0  # 128 of 64 lists: exhaustive
    assert all(row["p50_ms"] > 0 for row in ivf["settings"])
    assert flat["settings"][0]["recall_doc"] == flat["settings"][0]["recall_short"] == 1.0
    assert len(flat["affinity"]) <= 2 and flat["bytes_per_vector"] > 0
    # Measured again from the saved files: nothing built, the same kinds and recall.
    args.reuse, args.json = True, None
    again = ann.cmd_measure_all(args)
    assert [k["build_seconds"] for k in again["kinds"]] == [None, None]
    assert [k["file_bytes"] for k in again["kinds"]] == [ivf["file_bytes"], flat["file_bytes"]]
    assert [r["recall_doc"] for r in again["kinds"][0]["settings"]] == recalls
    assert again["kinds"][0]["single_query_threads"] == 1


def test_embed_takes_the_fastest_exact_variant_this_code_can_run():
    from million_data import pick_settings

    rows = {"fast": [
        {"variant": "previous", "precision": "fp16", "batch_tokens": 1, "half_weights": True,
         "min_cosine": 1.0, "chunks_per_s": 900.0},
        {"variant": "inexact", "precision": "fp16", "batch_tokens": 2, "half_weights": True,
         "min_cosine": 0.9, "chunks_per_s": 800.0},
        {"variant": "pool", "precision": "fp16", "batch_tokens": 3, "half_weights": False,
         "tokenise_workers": 4, "words": True, "compile": True, "min_cosine": 0.9999,
         "chunks_per_s": 700.0},
        {"variant": "thread", "precision": "fp16", "batch_tokens": 4, "half_weights": False,
         "min_cosine": 0.9999, "chunks_per_s": 600.0},
    ]}
    assert pick_settings(rows) == {"precision": "fp16", "batch_tokens": 3, "half_weights": False,
                                   "tokenise_workers": 4, "words": True, "compile": True}
    assert pick_settings(None)["precision"] == "auto"
