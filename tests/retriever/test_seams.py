"""The seams other features stand on: lexical-only builds, no model where none is needed,
the shared vector cache, scoped search from a subfolder, stale answers under a busy writer,
composable stages, remembered build options, and the old format refused."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

import encoders
import retriever
from indexing.store import current_generation, writer
from retriever.cli.app import app
from retriever.pipeline import Results


def test_lexical_only_index_has_no_vectors_and_loads_no_model(repo):
    before = encoders.model_loads()
    built = retriever.index(repo, lexical_only=True)
    assert built.manifest["encoders"] == []
    assert [c["role"] for c in built.manifest["components"]] == ["lexical", "symbols"]
    assert not built.has_vectors and built.last_build.embedded == 0
    hit = built.search("exponential backoff retry", k=1, mode="lexical")[0]
    assert hit.path == "python/netkit/retry.py"
    with pytest.raises(retriever.InputError, match="lexical only"):
        built.search("retry", mode="hybrid")
    # A refresh keeps it lexical-only and is up to date.
    again = retriever.index(repo)
    assert not again.last_build.rebuilt and not again.has_vectors
    assert encoders.model_loads() == before


def test_refresh_and_lexical_search_of_an_unchanged_tree_load_no_model(repo):
    retriever.index(repo)
    encoders.clear_model_cache()
    before = encoders.model_loads()
    again = retriever.index(repo)
    assert not again.last_build.rebuilt
    assert again.search("checksum of a byte buffer", k=1, mode="lexical")[0].path == "c/crc32.c"
    assert retriever.open(repo).info()["counts"]["chunks"] == len(again)
    assert encoders.model_loads() == before
    again.search("checksum of a byte buffer", k=1, mode="dense")
    assert encoders.model_loads() == before + 1


def test_a_copy_of_a_tree_embeds_nothing_twice(repo, tmp_path):
    first = retriever.index(repo).last_build
    assert first.embedded == first.chunks > 0
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns(".retriever"))
    second = retriever.index(copy).last_build
    assert second.rebuilt and second.embedded == 0 and second.cached == second.chunks
    # Without the cache the same copy is embedded again.
    third = retriever.index(copy, force=True, cache=False).last_build
    assert third.embedded == 0 and third.reused == third.chunks  # from its own generation
    other = tmp_path / "third"
    shutil.copytree(repo, other, ignore=shutil.ignore_patterns(".retriever"))
    assert retriever.index(other, cache=False).last_build.embedded == first.chunks


def test_search_from_a_subfolder_uses_the_enclosing_index_scoped_to_it(repo):
    retriever.index(repo, lexical_only=True)
    runner = CliRunner()
    sub = repo / "python"
    result = runner.invoke(app, ["search", "retry the request", str(sub), "--mode", "lexical",
                                 "--json", "-k", "5"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    assert hits and all(h["path"].startswith("python/") for h in hits)
    assert not (sub / ".retriever").exists()


def test_a_filter_applies_before_the_top_k(repo):
    built = retriever.index(repo, lexical_only=True)
    query = "retry with exponential backoff, or wait for the user to stop typing"
    everywhere = built.search(query, k=1, mode="lexical")
    assert everywhere[0].path == "python/netkit/retry.py"
    scoped = built.search(query, k=1, mode="lexical", within="js")
    assert [h.path for h in scoped] == ["js/debounce.js"]


def test_a_busy_writer_gets_a_stale_answer_not_a_failure(repo):
    retriever.index(repo, lexical_only=True)
    (repo / "python" / "new_module.py").write_text("def zqxwvu():\n    pass\n")
    with pytest.raises(RuntimeError, match="abandon"), writer(repo / ".retriever"):
        with pytest.raises(retriever.IndexLockedError, match="--wait"):
            retriever.index(repo)
        answered = retriever.index(repo, stale_ok=True)
        assert answered.stale and not answered.last_build.rebuilt
        assert answered.search("zqxwvu", mode="lexical") == []
        raise RuntimeError("abandon the held generation")
    assert retriever.index(repo).search("zqxwvu", k=1, mode="lexical")


def test_index_folder_ignores_itself_and_is_private(repo):
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    retriever.index(repo, lexical_only=True)
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"],
                            capture_output=True, text=True, check=True).stdout
    assert ".retriever" not in status
    assert (repo / ".retriever").stat().st_mode & 0o077 == 0
    manifest = (current_generation(repo / ".retriever") / "manifest.json").read_text()
    assert str(repo) not in manifest


def test_build_options_are_remembered(repo):
    (repo / "node_modules" / "lib").mkdir(parents=True)
    (repo / "node_modules" / "lib" / "dep.js").write_text("function leftPad(s) { return s }\n")
    built = retriever.index(repo, lexical_only=True, include_dependencies=True)
    assert any(c.path.startswith("node_modules/") for c in built.chunks())
    again = retriever.index(repo)
    assert not again.last_build.rebuilt
    assert again.manifest["walk"]["include_dependencies"] is True


def test_index_stages_compose_and_print(repo):
    built = retriever.index(repo, lexical_only=True)

    def reverse(queries, results: Results) -> Results:
        return Results(results.scores[:, ::-1], results.ids[:, ::-1], results.query_ids)

    pipeline = built.stage("lexical", depth=4) >> reverse
    assert repr(pipeline) == "lexical % 4 >> reverse"
    forward = built.stage("lexical", depth=4)(["retry backoff"])
    backward = pipeline(["retry backoff"])
    assert backward.ids[0].tolist() == forward.ids[0].tolist()[::-1]


def test_an_index_of_the_old_format_is_refused_with_the_fix(repo):
    built = retriever.index(repo, lexical_only=True)
    path = built.generation / "manifest.json"
    old = json.loads(path.read_text())
    old["version"] = 1
    path.write_text(json.dumps(old))
    with pytest.raises(retriever.IndexFormatError, match="version 1.*index PATH --force"):
        retriever.open(repo)
    rebuilt = retriever.index(repo, force=True)
    assert rebuilt.manifest["version"] == 2


def test_an_interrupted_build_keeps_its_vectors_and_the_next_run_resumes(tmp_path,
                                                                          tiny_model_dir):
    docs = [retriever.Document(id=f"d{i}", text=f"document number {i} about topic {i % 7}")
            for i in range(600)]

    def interrupt(stage, done, total):
        if stage == "embed" and done >= 256:
            raise KeyboardInterrupt

    config = {"model": str(tiny_model_dir)}
    with pytest.raises(KeyboardInterrupt):
        retriever.index_documents(docs, index_dir=tmp_path / "i", encoder_config=config,
                                  progress=interrupt)
    assert not (tmp_path / "i" / "CURRENT").exists()
    resumed = retriever.index_documents(docs, index_dir=tmp_path / "i", encoder_config=config)
    assert resumed.last_build.cached == 256
    assert resumed.last_build.embedded == 600 - 256


def test_filters_by_glob_language_and_path_class(repo):
    (repo / "tests").mkdir()
    (repo / "tests" / "test_retry.py").write_text("def test_retry_backoff():\n    retry()\n")
    built = retriever.index(repo, lexical_only=True)
    query = "retry backoff"
    assert {h.path for h in built.search(query, k=20, mode="lexical")} >= {
        "python/netkit/retry.py", "tests/test_retry.py"}
    no_tests = built.search(query, k=20, mode="lexical", exclude=["test"])
    assert no_tests and "tests/test_retry.py" not in {h.path for h in no_tests}
    only_tests = built.search(query, k=1, mode="lexical", paths=["tests/**"])
    assert [h.path for h in only_tests] == ["tests/test_retry.py"]
    go = built.search("match a route handler", k=5, mode="lexical", languages=["go"])
    assert go and {h.language for h in go} == {"go"}
    with pytest.raises(retriever.InputError, match="Unknown language 'klingon'"):
        built.search(query, languages=["klingon"])
    with pytest.raises(retriever.InputError, match="Cannot exclude 'source'"):
        built.search(query, exclude="source")
    with pytest.raises(retriever.InputError, match="leaves the indexed root"):
        built.search(query, within="../elsewhere")


def test_index_documents_takes_dicts_and_says_what_it_wants(tmp_path):
    docs = [{"id": "a", "text": "retry with backoff", "title": "Retry"},
            {"id": "b", "text": "parse a config file"}]
    built = retriever.index_documents(docs, index_dir=tmp_path / "i", lexical_only=True)
    assert built.search("backoff", k=1, mode="lexical")[0].path == "a"
    for bad in (["just a string"], [{"id": 1, "text": "x"}], [("a", "text")]):
        with pytest.raises(retriever.InputError, match="retriever.Document"):
            retriever.index_documents(bad, index_dir=tmp_path / "j", lexical_only=True)
