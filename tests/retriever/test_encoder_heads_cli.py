"""`retriever train head` and `retriever index --encoder-option head=...`, end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from retriever.cli.app import app

runner = CliRunner()


def _model_with_heads(tiny_model_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    rows = [{"query": f"compute value {i} of the cache", "code": f"def value_{i}():\n"
             f"    return {i}\n", "source": "toy"} for i in range(12)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    fitted = runner.invoke(app, ["train", "head", "--data", str(data), "--out",
                                 str(model / "heads"), "--model", str(model), "-q"])
    assert fitted.exit_code == 0, fitted.output
    assert "Fitted the pca head" in fitted.output and "Fitted the itq head" in fitted.output
    again = runner.invoke(app, ["train", "head", "--data", str(data), "--out",
                                str(model / "heads"), "--model", str(model), "-q"])
    assert again.exit_code == 1 and "--force" in again.output  # nothing overwritten silently
    return model


def test_an_index_built_with_a_head_records_it_and_searches(repo, tiny_model_dir, tmp_path):
    model = _model_with_heads(tiny_model_dir, tmp_path)
    built = runner.invoke(app, ["index", str(repo), "--model", str(model), "-q",
                                "--encoder-option", "head=itq", "--index-spec", "BFlat"])
    assert built.exit_code == 0, built.output
    info = json.loads(runner.invoke(app, ["info", str(repo), "--json"]).stdout)
    [encoder] = info["encoders"]
    assert encoder["config"]["head"] == "itq"
    # The query side must use the same head, or the index refuses the encoder's fingerprint.
    found = runner.invoke(app, ["search", "least recently used cache", str(repo), "--json",
                                "--mode", "dense", "-k", "3"])
    assert found.exit_code == 0, found.output
    assert len(json.loads(found.stdout)["hits"]) == 3
    again = runner.invoke(app, ["index", str(repo), "-q"])
    assert again.exit_code == 0 and "up to date" in again.output
    plain = runner.invoke(app, ["index", str(repo), "--model", str(model), "-q"])
    assert plain.exit_code == 0 and "Indexed" in plain.output  # no head: new vectors


def test_bad_encoder_options_fail_cleanly(repo, tiny_model_dir, tmp_path):
    model = _model_with_heads(tiny_model_dir, tmp_path)
    for args, message in ((["--encoder-option", "head=nope"], "No head 'nope'"),
                          (["--encoder-option", "head"], "--encoder-option takes KEY=VALUE")):
        result = runner.invoke(app, ["index", str(repo), "--model", str(model), "-q", *args])
        assert result.exit_code == 1, result.output
        assert "Error:" in result.output and message in " ".join(result.output.split())
    assert not (repo / ".retriever").exists()


def test_a_head_on_a_cached_tree_embeds_nothing_and_gives_the_same_vectors(
        repo, tiny_model_dir, tmp_path):
    import numpy as np

    import retriever

    model = _model_with_heads(tiny_model_dir, tmp_path)
    cache = tmp_path / "cache"
    plain = retriever.index(repo, index_dir=tmp_path / "plain", cache=cache,
                            encoder_config={"model": str(model)})
    assert plain.last_build.embedded == plain.last_build.chunks
    config = {"model": str(model), "head": "pca", "dims": 8}
    cached = retriever.index(repo, index_dir=tmp_path / "cached", cache=cache,
                             encoder_config=config)
    assert cached.last_build.embedded == 0 and cached.last_build.cached == cached.last_build.chunks
    fresh = retriever.index(repo, index_dir=tmp_path / "fresh", cache=False, encoder_config=config)
    assert fresh.last_build.embedded == fresh.last_build.chunks
    [one], [two] = ([np.load(f) for f in Path(i.directory).glob("**/vectors-*.npy")]
                    for i in (cached, fresh))
    assert one.shape == two.shape == (cached.last_build.chunks, 8)
    assert np.allclose(one, two, atol=1e-5)
    query = "least recently used cache"
    assert [h.chunk_id for h in cached.search(query, k=3, mode="dense")] == \
        [h.chunk_id for h in fresh.search(query, k=3, mode="dense")]


def test_a_layer_head_fits_from_the_cli_and_indexes_at_its_depth(repo, tiny_model_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    rows = [{"query": f"compute value {i} of the cache", "code": f"def value_{i}(x):\n"
             f"    return x * {i} + {i % 7}\n", "source": "toy"} for i in range(40)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    fitted = runner.invoke(app, ["train", "head", "--data", str(data), "--out",
                                 str(model / "heads"), "--model", str(model), "--kind", "layer",
                                 "--layers", "1", "--pairs", "40", "-q"])
    assert fitted.exit_code == 0, fitted.output
    assert "Fitted the layer1 head" in fitted.output and "layers=1" in fitted.output
    assert (model / "heads" / "layer1.npz").is_file()
    built = runner.invoke(app, ["index", str(repo), "--model", str(model), "-q",
                                "--encoder-option", "layers=1", "--encoder-option",
                                "head=layer1"])
    assert built.exit_code == 0, built.output
    wrong = runner.invoke(app, ["index", str(repo), "--model", str(model), "-q", "--force",
                                "--encoder-option", "head=layer1"])
    assert wrong.exit_code == 1 and "fitted for layers=1" in " ".join(wrong.output.split())
    for args in (["--kind", "layer"], ["--layers", "1"], ["--kind", "layer", "--kind", "pca",
                                                          "--layers", "1"]):
        bad = runner.invoke(app, ["train", "head", "--data", str(data), "--out",
                                  str(tmp_path / "other"), "--model", str(model), "-q", *args])
        assert bad.exit_code == 1 and "--kind layer goes alone" in " ".join(bad.output.split())
