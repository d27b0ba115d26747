"""The stat signature stands in for the fingerprint only while the files are untouched."""

from __future__ import annotations

import shutil

from encoders.sentence import SentenceTransformerEncoder


def test_signature_is_stable_until_a_file_is_rewritten_or_copied(tiny_model_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    encoder = SentenceTransformerEncoder(model=str(model))
    first = encoder.stat_signature()
    assert SentenceTransformerEncoder(model=str(model)).stat_signature() == first
    # Settings that change vectors change it, as they change the fingerprint.
    assert SentenceTransformerEncoder(model=str(model), query_prompt="q: ").stat_signature() \
        != first
    config = model / "config.json"
    config.write_bytes(config.read_bytes())  # same bytes, rewritten: ctime moves
    assert encoder.stat_signature() != first
    copy = tmp_path / "copy"
    shutil.copytree(model, copy)  # a copy has other inodes
    assert SentenceTransformerEncoder(model=str(copy)).stat_signature() != \
        encoder.stat_signature()
    assert SentenceTransformerEncoder(model=str(copy)).fingerprint() == encoder.fingerprint()
