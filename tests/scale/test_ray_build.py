"""The Ray build on a local 2-CPU cluster: the same index as a local build, resumable."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import retriever
from retriever.errors import InputError, MissingDependencyError
from retriever.generation import Generation

ray = pytest.importorskip("ray")
ray_build = pytest.importorskip("retriever.ray_build")


class Interrupted(Exception):
    """Raised from the progress callback once a shard is written: the build stops there,
    as it would if the driver or a worker died."""


def _stop_after_first_shard(stage: str, done: int, total: int) -> None:
    if stage == "shards":
        raise Interrupted


@pytest.fixture(scope="module")
def cluster():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


def _same_index(built, expected) -> None:
    a, b = Generation(built.generation), Generation(expected.generation)
    assert a.chunk_table().equals(b.chunk_table())
    manifests = [dict(g.manifest) for g in (a, b)]
    for manifest in manifests:
        manifest.pop("created_at")
    assert manifests[0] == manifests[1]
    if expected.has_vectors:
        np.testing.assert_allclose(built.vectors, expected.vectors, atol=1e-5)
        query = "retry with exponential backoff"
        assert [h.path for h in built.search(query, k=5)] == [
            h.path for h in expected.search(query, k=5)]


def test_ray_build_equals_the_local_build(cluster, repo, tmp_path, tiny_model_dir):
    settings = {"encoder": "sentence-transformers",
                "encoder_config": {"model": str(tiny_model_dir)}}
    local = retriever.index(repo, index_dir=tmp_path / "local", cache=False, **settings)
    built = ray_build.index(repo, index_dir=tmp_path / "ray", shard_files=3, **settings)
    report = built.last_build
    assert report.rebuilt and report.shards >= 2 and report.embedded == 0
    assert report.cached == report.chunks == len(local)  # every vector came from a shard
    _same_index(built, local)
    assert not (tmp_path / "ray" / ray_build.WORK_FOLDER).exists()  # gone once published
    again = ray_build.index(repo, index_dir=tmp_path / "ray")
    assert not again.last_build.rebuilt  # up to date: nothing runs on the cluster
    # A refresh: the actors embed only the texts the live generation has no vectors for.
    (repo / "python" / "added.py").write_text("def added_helper():\n    return 42\n")
    refreshed = ray_build.index(repo, index_dir=tmp_path / "ray", shard_files=3)
    added = [c for c in refreshed.chunks() if c.path == "python/added.py"]
    assert added and refreshed.last_build.cluster_embedded == len(added)
    assert refreshed.last_build.reused == len(refreshed) - len(added)
    _same_index(refreshed, retriever.index(repo, index_dir=tmp_path / "local", cache=False))


def test_an_interrupted_build_keeps_the_live_index_and_the_next_reuses_its_shards(
        cluster, repo, tmp_path, tiny_model_dir):
    index_dir = tmp_path / "index"
    settings = {"encoder": "sentence-transformers",
                "encoder_config": {"model": str(tiny_model_dir)}}
    first = ray_build.index(repo, index_dir=index_dir, lexical_only=True, shard_files=3)
    live = first.generation
    (repo / "python" / "added.py").write_text("def added_helper():\n    return 42\n")
    with pytest.raises(Interrupted):
        ray_build.index(repo, index_dir=index_dir, shard_files=3,
                        progress=_stop_after_first_shard, **settings)
    still = retriever.open(index_dir)
    assert still.generation == live and not still.has_vectors  # the old one answers
    assert still.search("retry backoff", k=3, mode="lexical")
    kept = list((index_dir / ray_build.WORK_FOLDER).glob("shard-*.parquet"))
    assert len(kept) == 1
    resumed = ray_build.index(repo, index_dir=index_dir, shard_files=3, **settings)
    assert resumed.last_build.shards_reused == 1 and resumed.last_build.shards_refused == 0
    local = retriever.index(repo, index_dir=tmp_path / "local", cache=False, **settings)
    _same_index(resumed, local)


def test_shards_made_by_another_encoder_are_refused(cluster, repo, tmp_path, tiny_model_dir):
    work = tmp_path / "work"
    model = str(tiny_model_dir)
    prompted = {"model": model, "document_prompt": "passage: "}  # another fingerprint
    with pytest.raises(Interrupted):
        ray_build.index(repo, index_dir=tmp_path / "a", encoder="sentence-transformers",
                        encoder_config=prompted, shard_files=3, work_dir=work,
                        progress=_stop_after_first_shard)
    assert len(list(work.glob("shard-*.parquet"))) == 1
    built = ray_build.index(repo, index_dir=tmp_path / "b", encoder="sentence-transformers",
                            encoder_config={"model": model}, shard_files=3, work_dir=work)
    assert built.last_build.shards_refused == 1 and built.last_build.shards_reused == 0
    local = retriever.index(repo, index_dir=tmp_path / "local", encoder="sentence-transformers",
                            encoder_config={"model": model}, cache=False)
    _same_index(built, local)


def test_without_ray_the_error_names_the_extra(repo, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'dense-retriever\[ray\]'"):
        ray_build.index(repo, lexical_only=True)


@pytest.mark.parametrize("bad", [{"shard_files": 0}, {"embed_batch": -1}, {"embedders": 0},
                                 {"ray": ""}])
def test_bad_settings_are_refused_before_anything_starts(repo, bad):
    with pytest.raises(InputError, match=next(iter(bad))):
        ray_build.index(repo, lexical_only=True, **bad)
    assert not (repo / ".retriever").exists()


def test_cli_index_with_ray_builds_what_a_local_build_does(cluster, repo, tmp_path):
    from typer.testing import CliRunner

    from retriever.cli.app import app

    runner = CliRunner()
    local = retriever.index(repo, index_dir=tmp_path / "local", lexical_only=True)
    result = runner.invoke(app, ["index", str(repo), "--ray", "auto", "--lexical-only",
                                 "--index", str(tmp_path / "ray"), "-q"])
    assert result.exit_code == 0, result.output
    assert f"into {len(local)} chunks" in result.output
    _same_index(retriever.open(tmp_path / "ray"), local)
    mixed = runner.invoke(app, ["index", str(repo), "--ray", "auto", "--workers", "2"])
    assert mixed.exit_code == 1 and "leave out --workers" in mixed.output


def test_ray_build_of_both_tiers_equals_the_local_build(cluster, repo, tmp_path,
                                                        tiny_model_dir):
    # The fast tier's static encoder weights tokens by the tree's counts, which only the
    # whole chunk table gives: the assembling build embeds it, the cluster the transformer.
    settings = {"encoder": "sentence-transformers", "tier": "full",
                "encoder_config": {"model": str(tiny_model_dir)},
                "fast_model": str(Path(__file__).resolve().parents[1] / "data" / "static_model")}
    local = retriever.index(repo, index_dir=tmp_path / "local", cache=False, **settings)
    built = ray_build.index(repo, index_dir=tmp_path / "ray", shard_files=3, **settings)
    report = built.last_build
    assert report.rebuilt and report.cached == len(local)  # the transformer's, from shards
    assert report.embedded == len(local)  # the static vectors, in the assembling build
    _same_index(built, local)
    fast = Generation(built.generation)
    np.testing.assert_array_equal(fast.vectors("fast"),
                                  Generation(local.generation).vectors("fast"))
    assert "corpus" in fast.encoder("fast")
