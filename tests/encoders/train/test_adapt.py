"""`retriever adapt`: mine a repository's documented functions, train a LoRA adapter, measure
held-out files before and after (eval.adapt), with the tiny trainable model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from encoders.train.common import TrainSettings
from eval.adapt import adapt, split_files
from retriever.cli.app import app
from retriever.errors import InputError

pytest.importorskip("peft")

NOUNS = ("apple", "river", "castle", "piano", "rocket", "garden", "window", "letter", "candle",
         "bridge", "forest", "mirror", "pencil", "saddle", "tunnel", "violin", "wallet",
         "anchor", "basket", "carpet", "dragon", "engine", "falcon", "ginger", "harbor",
         "island", "jacket", "kettle", "ladder", "magnet", "needle", "orange", "parrot",
         "quartz", "rabbit", "silver", "ticket", "umbrel", "velvet", "walnut", "yogurt",
         "zipper", "banner", "cactus", "donkey", "feather", "glider", "hammer")


def _function(noun: str) -> str:
    return (f"def polish_{noun}(item, times=2):\n"
            f'    """Polish the {noun} a few times until it shines."""\n'
            f"    shine = [item] * times\n"
            f"    label = '{noun}'\n"
            f"    return label, shine\n\n\n")


def _repository(root: Path, nouns=NOUNS, per_file: int = 4) -> Path:
    for start in range(0, len(nouns), per_file):
        part = nouns[start:start + per_file]
        (root / "pkg").mkdir(parents=True, exist_ok=True)
        (root / "pkg" / f"mod_{start // per_file}.py").write_text(
            "".join(_function(n) for n in part), encoding="utf-8")
    return root


_SETTINGS = TrainSettings(epochs=1, batch_size=8, mini_batch_size=8, lr=1e-3, lora=True,
                          lora_rank=4, device="cpu")


def test_adapt_trains_on_some_files_and_measures_the_others(tmp_path, trainable_model_dir):
    root = _repository(tmp_path / "repo")
    result = adapt(root, tmp_path / "out", base=str(trainable_model_dir), settings=_SETTINGS,
                   min_pairs=20)
    assert result.train_pairs + result.dev_pairs == result.corpus == len(NOUNS)
    assert result.dev_pairs >= 10 and result.train_pairs >= 10
    assert set(result.before) == set(result.after) == {"ndcg@10", "mrr@10", "recall@10"}
    assert all(0.0 <= v <= 1.0 for v in [*result.before.values(), *result.after.values()])
    assert result.steps == result.train_pairs // 8
    assert (result.out / "modules.json").is_file() and (result.out / "lora").is_dir()
    manifest = json.loads((result.out / "training.json").read_text())
    assert manifest["settings"]["lora"] is True


def test_held_out_files_are_seeded_and_whole():
    paths = [f"pkg/mod_{i}.py" for i in range(200)]
    held = split_files(paths, 0.2, seed=0)
    assert held == split_files(list(reversed(paths)), 0.2, seed=0)
    assert held != split_files(paths, 0.2, seed=1)
    assert 20 <= len(held) <= 60


def test_a_repository_with_too_few_documented_functions_is_refused(tmp_path,
                                                                    trainable_model_dir):
    root = _repository(tmp_path / "repo", nouns=NOUNS[:5])
    with pytest.raises(InputError, match="only 5 documented functions"):
        adapt(root, tmp_path / "out", base=str(trainable_model_dir), settings=_SETTINGS)
    assert not (tmp_path / "out").exists()


def test_a_missing_folder_is_refused(tmp_path, trainable_model_dir):
    with pytest.raises(InputError, match="not a folder"):
        adapt(tmp_path / "nowhere", tmp_path / "out", base=str(trainable_model_dir))


def test_the_cli_reports_before_and_after_and_the_model_indexes(tmp_path,
                                                                trainable_model_dir):
    import retriever

    root = _repository(tmp_path / "repo")
    out = tmp_path / "adapted"
    result = CliRunner().invoke(app, [
        "adapt", str(root), "--model", str(trainable_model_dir), "--out", str(out),
        "--epochs", "1", "--batch-size", "8", "--lr", "1e-3", "--lora-rank", "4",
        "--device", "cpu", "--json", "-q"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["held_out_pairs"] + payload["train_pairs"] == len(NOUNS)
    assert payload["use"].endswith("--force") and str(out) in payload["use"]
    index = retriever.index(root, index_dir=tmp_path / "idx", cache=False,
                            encoder="sentence-transformers", encoder_config={"model": str(out)})
    hits = index.search("polish the rocket", k=3)
    assert hits and all(hit.path.startswith("pkg/") for hit in hits)
