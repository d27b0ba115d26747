"""The Ray build decides and refuses as a local build does, before any cluster starts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("ray")

import retriever  # noqa: E402
from retriever import ray_build  # noqa: E402
from retriever.errors import InputError  # noqa: E402

REPO = Path(__file__).resolve().parents[1] / "data" / "repo"


def test_a_symlinked_index_folder_is_refused_by_both_builds(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(REPO, tree)
    outside = tmp_path / "outside"
    outside.mkdir()
    (tree / ".retriever").symlink_to(outside)
    for build in (retriever.index, ray_build.index):
        with pytest.raises(InputError, match="symlink"):
            build(tree, lexical_only=True)
    assert not any(outside.iterdir())  # nothing was written through the link


def test_a_missing_tree_is_refused_with_the_same_message(tmp_path):
    messages = []
    for build in (retriever.index, ray_build.index):
        with pytest.raises(InputError) as caught:
            build(tmp_path / "nowhere", lexical_only=True)
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and "does not exist" in messages[0]


def test_a_setting_of_the_local_build_only_is_refused_before_anything_starts(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(REPO, tree)
    with pytest.raises(TypeError, match="unexpected keyword arguments: cache, workers"):
        ray_build.index(tree, lexical_only=True, workers=2, cache=False)
    assert not (tree / ".retriever").exists()
