"""The static model's training data: the benchmark exclusion list and the pair miner."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from encoders.train import data
from encoders.train.exclusions import (
    BENCHMARK_REPOSITORIES,
    ExcludedSourceError,
    check_sources,
    excluded_name,
)
from encoders.train.vocab import split_identifier
from indexing.tokenize import code_tokens
from retriever.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("DENSE_RETRIEVER_DATA", ROOT.parent / "shared"))


def test_every_semble_repository_is_on_the_exclusion_list() -> None:
    repos = SHARED / "benchmarks" / "semble" / "repos.json"
    if not repos.is_file():
        pytest.skip(f"the semble benchmark is not at {repos} (set DENSE_RETRIEVER_DATA)")
    names = {entry["name"] for entry in json.loads(repos.read_text(encoding="utf-8"))}
    assert names - set(BENCHMARK_REPOSITORIES) == set()
    for name in names:
        assert excluded_name(f"site-packages/{name}/module.py") is not None


@pytest.mark.parametrize("path, hit", [
    ("site-packages/requests/api.py", "requests"),
    ("pip/_vendor/rich/console.py", "rich"),
    ("lib/node_modules/axios/index.js", "axios"),
    ("third_party/httpx.py", "httpx"),
    ("httpx.py", "httpx"),
    ("site-packages/pydantic_core/core_schema.py", "pydantic_core"),
    ("lib/sentence-transformers/x.py", "sentence_transformers"),
    ("site-packages/bm25s/tokenization.py", "bm25s"),
    ("site-packages/numpy/core/numeric.py", None),
    ("site-packages/requests_toolbelt/x.py", None),
    ("site-packages/urllib3/util/url.py", None),
])
def test_excluded_names_are_found_on_any_folder_of_a_path(path, hit) -> None:
    assert excluded_name(path) == hit


def test_data_from_an_excluded_package_is_refused_with_its_name() -> None:
    check_sources(["numpy/core/numeric.py", "torch/nn/functional.py"])
    with pytest.raises(ExcludedSourceError, match="'pip/_vendor/requests/api.py'.*requests"):
        check_sources(["numpy/a.py", "pip/_vendor/requests/api.py"])
    assert issubclass(ExcludedSourceError, InputError)


def _package(root: Path, name: str, files: dict[str, str]) -> None:
    for relative, source in files.items():
        path = root / name / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")


FUNCTIONS = '''
def load_settings(path):
    """Read the settings file and return a dictionary.

    Args:
        path: where the file is.
    """
    with open(path) as handle:
        text = handle.read()
    return parse(text)


def helper(values):
    """Same docstring everywhere."""
    total = 0
    for value in values:
        total += value
    return total


def _private_twin(items):
    """Sum the items of a list one by one."""
    count = 0
    for item in items:
        count += item
    return count


def test_something():
    """A test is not training data for queries."""
    assert load_settings
    assert helper
    assert True
'''
OTHER = '''
def other(values):
    """Same docstring everywhere."""
    out = []
    for value in values:
        out.append(value * 2)
    return out


class Store:
    def fetch(self, key, default=None):
        """Look a key up in the store, with a default."""
        value = self.data.get(key)
        if value is None:
            return default
        return value
'''


def test_mining_keeps_documented_functions_and_drops_excluded_duplicate_and_ambiguous(
    tmp_path,
) -> None:
    site = tmp_path / "site-packages"
    _package(site, "goodpkg", {"__init__.py": FUNCTIONS, "more.py": OTHER})
    _package(site, "requests", {"api.py": FUNCTIONS.replace("load_settings", "get")})
    _package(site, "vendoring", {"_vendor/rich/x.py": FUNCTIONS.replace("load", "fetch")})
    cosqa = tmp_path / "cosqa"
    cosqa.mkdir()
    fetch = OTHER.split("class Store:\n")[1]
    undocumented = "\n".join(line for line in textwrap.dedent(fetch).splitlines()
                             if '"""' not in line)
    (cosqa / "corpus.jsonl").write_text(json.dumps({"_id": "1", "text": undocumented}) + "\n")
    manifest = data.mine(tmp_path / "out", packages_dirs=[site], exclude_corpora=[cosqa])
    pairs = list(data.read_jsonl(tmp_path / "out" / "pairs.jsonl.xz"))
    queries = sorted(row["query"] for row in pairs)
    # helper/other share a docstring (ambiguous); _private_twin is helper renamed (same shape);
    # Store.fetch is in the excluded corpus; the test function is a test.
    assert queries == ["Read the settings file and return a dictionary."]
    assert pairs[0]["code"].startswith("goodpkg/__init__.py :: load_settings\ndef load_settings")
    assert '"""' not in pairs[0]["code"]
    assert manifest["skipped_sources"] == ["requests"]
    assert all(excluded_name(row["source"]) is None for row in pairs)
    chunks = [row["text"] for row in data.read_jsonl(tmp_path / "out" / "chunks.jsonl.xz")]
    assert any(chunk.startswith("goodpkg/more.py :: Store\n") for chunk in chunks)
    assert not any("rich" in chunk.split("\n", 1)[0] for chunk in chunks)
    assert manifest["data_hash"] == data.data_hash(tmp_path / "out")


def test_mining_nothing_is_an_input_error(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="Nothing was mined"):
        data.mine(tmp_path / "out", packages_dirs=[tmp_path / "empty"])
    with pytest.raises(InputError, match="not a folder of packages"):
        data.mine(tmp_path / "out", packages_dirs=[tmp_path / "missing"])


@pytest.mark.parametrize("doc, sentence", [
    ("Return the user. More text here.", "Return the user."),
    ("Read the file\n    line by line.\n\n    Args:\n        x: y", "Read the file line by line."),
    ("Compare e.g. two values and return the max", "Compare e.g. two values and return the max"),
    ("Parameters\n----------\nx : int", ""),
])
def test_first_sentence(doc, sentence) -> None:
    assert data.first_sentence(doc) == sentence


@pytest.mark.parametrize("identifier", ["getUserName", "HTTPServerError", "sha256sum",
                                        "parseURLs", "XMLHttpRequest", "max_retries"])
def test_identifiers_split_as_the_lexical_index_splits_them(identifier) -> None:
    # code_tokens also yields the whole lowercased compound; the parts are the rest.
    whole = identifier.lower().strip("_")
    parts = [token for token in code_tokens(identifier) if token != whole]
    assert split_identifier(identifier).split() == parts
