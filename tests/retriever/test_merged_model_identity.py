"""An index built with a merged adapter (the default model) stays usable on a machine whose
BLAS kernel rounds the merge differently: the weights' fingerprint differs there, the record
of what was merged does not. Another adapter is still refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

import retriever
from encoders.folder import MERGE_INPUTS
from encoders.sentence import SentenceTransformerEncoder, resolve_model

SOURCE = '''def parse_duration(text):
    """Turn "1h30m" into seconds."""
    hours, _, rest = text.partition("h")
    return int(hours) * 3600 + int(rest.rstrip("m") or 0) * 60


def read_config(path):
    with open(path) as handle:
        return handle.read()
'''


@pytest.fixture
def built(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # a merge of our own
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "timeparse.py").write_text(SOURCE)
    retriever.index(tree, index_dir=tmp_path / "idx", cache=False)
    return tmp_path / "idx"


def _another_cpus_merge(folder):
    """The merged weights as another CPU's BLAS kernel rounds them: one weight one ulp off."""
    from safetensors.numpy import load_file, save_file

    weights = load_file(str(folder / "model.safetensors"))
    key = next(k for k in sorted(weights) if k.endswith("query.weight"))
    changed = weights[key].copy()
    changed.flat[0] = np.nextafter(changed.flat[0], np.float32(np.inf))
    save_file({**weights, key: changed}, str(folder / "model.safetensors"))


def test_the_index_records_the_merges_identity(built):
    merged = resolve_model("code-minilm-v1")
    inputs = json.loads((merged / MERGE_INPUTS).read_text())
    assert inputs["adapter"] == "code-minilm-v1" and inputs["base"] == "all-MiniLM-L6-v2"
    entry = retriever.open(built).manifest["encoders"][0]
    assert entry["identity"] == SentenceTransformerEncoder(model="code-minilm-v1").identity()


def test_another_cpus_merge_still_searches_the_index(built):
    before = retriever.open(built).manifest["encoders"][0]["fingerprint"]
    _another_cpus_merge(resolve_model("code-minilm-v1"))
    assert SentenceTransformerEncoder(model="code-minilm-v1").fingerprint() != before
    hits = retriever.open(built).search("convert a duration string to seconds", k=2,
                                        mode="dense")
    assert hits and hits[0].path == "timeparse.py"


def test_another_adapter_is_still_refused(built):
    merged = resolve_model("code-minilm-v1")
    _another_cpus_merge(merged)
    record = json.loads((merged / MERGE_INPUTS).read_text())
    (merged / MERGE_INPUTS).write_text(json.dumps({**record, "adapter_digest": "0" * 16}))
    with pytest.raises(retriever.EncoderMismatchError, match="fingerprint"):
        retriever.open(built).search("convert a duration string to seconds", k=2,
                                     mode="dense")


def test_a_folder_merged_before_the_record_gains_it_and_keeps_its_fingerprint(built):
    merged = resolve_model("code-minilm-v1")
    record = (merged / MERGE_INPUTS).read_text()
    (merged / MERGE_INPUTS).unlink()  # as a merge made by an earlier version left it
    assert resolve_model("code-minilm-v1") == merged  # found in the cache, not merged again
    assert (merged / MERGE_INPUTS).read_text() == record
    entry = retriever.open(built).manifest["encoders"][0]
    assert SentenceTransformerEncoder(model="code-minilm-v1").fingerprint() == entry["fingerprint"]


def test_a_refresh_on_another_cpu_keeps_the_vectors_it_has(built, tmp_path):
    kept = len(retriever.open(built))
    _another_cpus_merge(resolve_model("code-minilm-v1"))
    (tmp_path / "tree" / "adding.py").write_text("def add(a, b):\n    return a + b\n")
    report = retriever.index(tmp_path / "tree", index_dir=built, cache=False).last_build
    assert report.rebuilt and report.reused == kept  # none of the old chunks embedded again
    assert report.embedded == report.chunks - kept > 0
    entry = retriever.open(built).manifest["encoders"][0]
    assert entry["fingerprint"] == SentenceTransformerEncoder(model="code-minilm-v1").fingerprint()


def test_the_calibration_knows_the_default_model_by_its_identity(built):
    from retriever.ranking import calibration

    assert SentenceTransformerEncoder(model="code-minilm-v1").identity() == calibration.IDENTITY
    assert calibration.fitted_model({"fingerprint": "another cpu's",
                                     "identity": calibration.IDENTITY})
    assert not calibration.fitted_model({"fingerprint": "another model's"})


def test_the_identity_follows_the_settings_the_files_and_the_name(built, tmp_path):
    import shutil

    from safetensors.numpy import load_file, save_file

    from encoders.folder import content_digests, merge_identity

    merged = resolve_model("code-minilm-v1")
    plain = SentenceTransformerEncoder(model="code-minilm-v1").identity()
    assert SentenceTransformerEncoder(model="code-minilm-v1", dims=128).identity() != plain
    # The record stays out of the fingerprint: a copy without it digests the same.
    bare = tmp_path / "bare" / merged.name
    shutil.copytree(merged, bare, ignore=shutil.ignore_patterns(MERGE_INPUTS))
    assert content_digests(bare, [b""])[0] == content_digests(merged, [b""])[0]
    # A copy under another name has no identity; one whose weights changed dtype another.
    renamed = tmp_path / "renamed"
    shutil.copytree(merged, renamed)
    assert merge_identity(renamed) is None
    recast = tmp_path / "recast" / merged.name
    shutil.copytree(merged, recast)
    weights = load_file(str(recast / "model.safetensors"))
    save_file({k: v.astype(np.float16) for k, v in weights.items()},
              str(recast / "model.safetensors"))
    assert merge_identity(recast) not in (None, merge_identity(merged))


def test_a_stacked_merge_keeps_its_identity_when_its_base_rounds_otherwise(built):
    import shutil

    first = SentenceTransformerEncoder(model="code-minilm-mat-v1").identity()
    assert first is not None
    mat = resolve_model("code-minilm-mat-v1")
    _another_cpus_merge(resolve_model("code-minilm-v1"))
    shutil.rmtree(mat)  # merged again, over the other CPU's base
    assert SentenceTransformerEncoder(model="code-minilm-mat-v1").identity() == first
