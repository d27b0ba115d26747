"""``retriever cache info|clear`` through typer's CliRunner, on a real cache folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from indexing.cache import VectorCache
from retriever.cli.app import app

runner = CliRunner()
FP = "fedcba9876543210fedcba9876543210"


@pytest.fixture()
def filled(tmp_path):
    """A cache folder with 120 vectors of one encoder and 10 of another."""
    cache = VectorCache(tmp_path / "cache")
    rng = np.random.default_rng(0)
    cache.store(FP, [f"text {i}" for i in range(120)], rng.random((120, 8), dtype=np.float32))
    cache.store("static-encoder", [f"text {i}" for i in range(10)],
                rng.random((10, 4), dtype=np.float32))
    return cache.directory


def _info(*args: str) -> dict:
    result = runner.invoke(app, ["cache", "info", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_info_json_counts_what_was_stored(filled):
    info = _info("--cache-dir", str(filled))
    assert info["enabled"] and info["directory"] == str(filled)
    assert info["vectors"] == 130 and info["segments"] == 2 and info["damaged"] == 0
    assert info["fingerprints"][FP]["vectors"] == 120
    assert info["fingerprints"]["static-encoder"]["dims"] == [4]
    on_disk = sum(f.stat().st_size for f in filled.rglob("*.vec"))
    assert info["bytes"] == on_disk > 0


def test_info_human_view_lists_encoders(filled):
    result = runner.invoke(app, ["cache", "info", "--cache-dir", str(filled)])
    assert result.exit_code == 0, result.output
    assert "130" in result.output and FP in result.output and "static-encoder" in result.output
    assert "of 2.0 GiB" in result.output


def test_info_uses_the_environment_folder(filled, monkeypatch):
    monkeypatch.setenv("DENSE_RETRIEVER_CACHE", str(filled))
    assert _info()["vectors"] == 130
    monkeypatch.setenv("DENSE_RETRIEVER_CACHE", "off")
    assert _info()["enabled"] is False
    result = runner.invoke(app, ["cache", "info"])
    assert result.exit_code == 0 and "off" in result.output
    result = runner.invoke(app, ["cache", "clear", "--yes"])
    assert result.exit_code == 0 and "nothing to clear" in result.output


def test_clear_asks_first_and_keeps_everything_on_no(filled):
    result = runner.invoke(app, ["cache", "clear", "--cache-dir", str(filled)], input="n\n")
    assert result.exit_code == 1
    assert _info("--cache-dir", str(filled))["vectors"] == 130
    result = runner.invoke(app, ["cache", "clear", "--cache-dir", str(filled)], input="y\n")
    assert result.exit_code == 0, result.output
    assert "Freed" in result.output
    assert _info("--cache-dir", str(filled))["vectors"] == 0


def test_clear_one_encoder_with_yes(filled):
    before = _info("--cache-dir", str(filled))
    result = runner.invoke(app, ["cache", "clear", "--cache-dir", str(filled), "--yes",
                                 "--fingerprint", "static-encoder"])
    assert result.exit_code == 0, result.output
    after = _info("--cache-dir", str(filled))
    assert set(after["fingerprints"]) == {FP}
    assert after["bytes"] == before["fingerprints"][FP]["bytes"]


def test_a_file_as_cache_folder_is_a_clear_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("")
    for command in (["info"], ["clear", "--yes"]):
        result = runner.invoke(app, ["cache", *command, "--cache-dir", str(target)])
        assert result.exit_code == 1
        assert "Error: " in result.output and "not a folder" in result.output
    assert os.path.getsize(target) == 0


def test_cache_group_lists_its_commands():
    result = runner.invoke(app, ["cache"])
    assert "info" in result.output and "clear" in result.output


def test_a_copy_of_a_repository_embeds_nothing_and_damage_is_survived(repo, tiny_model_dir,
                                                                     tmp_path):
    import retriever
    from encoders.sentence import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder(model=str(tiny_model_dir))
    first = retriever.index(repo, encoder=encoder)
    chunks = len(first)
    assert first.last_build.embedded == chunks > 0
    assert _info()["vectors"] == chunks  # the per-test cache folder from conftest

    bare = shutil.ignore_patterns(".retriever")  # the tree without its index
    copy = shutil.copytree(repo, tmp_path / "copy", ignore=bare)
    second = retriever.index(copy, encoder=encoder)
    assert second.last_build.embedded == 0 and second.last_build.cached == chunks
    query = "least recently used cache"
    hits = [(h.path, h.start_line) for h in first.search(query, k=5, mode="dense")]
    assert [(h.path, h.start_line) for h in second.search(query, k=5, mode="dense")] == hits

    # One flipped byte in one cached vector: that chunk is embedded again, nothing else.
    segment = max(Path(_info()["directory"]).rglob("seg-*.vec"), key=lambda p: p.stat().st_size)
    data = bytearray(segment.read_bytes())
    data[-8 - 5] ^= 0x01
    segment.write_bytes(bytes(data))
    third = retriever.index(shutil.copytree(repo, tmp_path / "third", ignore=bare), encoder=encoder)
    assert third.last_build.embedded == 1 and third.last_build.cached == chunks - 1
    assert any("checksum" in warning for warning in third.last_build.warnings)
    assert [(h.path, h.start_line) for h in third.search(query, k=5, mode="dense")] == hits
