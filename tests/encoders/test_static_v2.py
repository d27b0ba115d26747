"""The shipped static model that replaced code-static-minilm-v1."""

from __future__ import annotations

import json

import numpy as np
import pytest

from encoders.static import DEFAULT_STATIC_MODEL, StaticEncoder, resolve_static_model
from retriever.errors import MissingDependencyError


def test_the_retired_name_says_what_replaced_it_and_how_to_rebuild() -> None:
    with pytest.raises(MissingDependencyError,
                       match=r"replaced by 'code-static-minilm-v2'.*retriever index PATH --force"):
        resolve_static_model("code-static-minilm-v1")


def test_the_default_is_v2_and_its_card_records_the_recipe() -> None:
    folder = resolve_static_model(DEFAULT_STATIC_MODEL)
    assert folder.name == "code-static-minilm-v2"
    assert (folder / "model.safetensors").stat().st_size <= 16_000_000
    training = json.loads((folder / "training.json").read_text())
    assert training["data"]["pairs"] == {"train": 57294, "dev": 2087}
    assert training["teacher"]["base_fingerprint"] == "5bc008060d9af3c43328de27f2c1fcba"
    assert (folder / "MODEL.md").is_file()


def test_a_query_finds_its_function_among_others() -> None:
    encoder = StaticEncoder()
    codes = [
        "io/csv.py :: read_rows\ndef read_rows(path):\n    with open(path) as f:\n"
        "        return list(csv.reader(f))",
        "net/http.go :: Retry\nfunc Retry(n int, f func() error) error {\n\tfor i := 0; i < n;"
        " i++ {\n\t\tif err := f(); err == nil {\n\t\t\treturn nil\n\t\t}\n"
        "\t\ttime.Sleep(backoff(i))\n\t}\n\treturn ErrGaveUp\n}",
        "src/color.rs :: hex_to_rgb\npub fn hex_to_rgb(hex: &str) -> (u8, u8, u8) {\n    let v ="
        " u32::from_str_radix(hex, 16).unwrap();\n"
        "    ((v >> 16) as u8, (v >> 8) as u8, v as u8)\n}",
    ]
    queries = ["read a csv file into a list of rows", "retry a function with backoff",
               "convert hex colour string to rgb"]
    scores = encoder.encode_queries(queries) @ encoder.encode_documents(codes).T
    assert scores.shape == (3, 3)
    assert list(np.argmax(scores, axis=1)) == [0, 1, 2]
