"""benchmarks/rerank_trees.py: reranker rows asked of a package's own tree, through the real
chunker, lexical index and ``code`` preset."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import rerank_trees  # noqa: E402

MODULE = '''"""Parse and render colour values for terminal themes."""


def parse_hex_colour(text):
    """Parse a hexadecimal colour string into its red, green and blue parts."""
    text = text.lstrip("#")
    return tuple(int(text[i:i + 2], 16) for i in (0, 2, 4))


def blend_colours(first, second, share):
    """Blend two colours by mixing their channels with the given share."""
    return tuple(round(a * (1 - share) + b * share) for a, b in zip(first, second))
'''

OTHER = '''"""Read theme files from the user's configuration folder."""


def load_theme_file(path):
    """Load a theme file and return the colour table it defines."""
    with open(path) as handle:
        return dict(line.split("=", 1) for line in handle if "=" in line)


def save_theme_file(path, table):
    """Save a colour table as a theme file, one colour a line."""
    with open(path, "w") as handle:
        handle.writelines(f"{k}={v}\\n" for k, v in table.items())
'''

TEST = '''from palette.colours import parse_hex_colour, blend_colours


def test_parse_hex_colour():
    assert parse_hex_colour("#ff0000") == (255, 0, 0)
    assert blend_colours((0, 0, 0), (255, 255, 255), 0.5) == (128, 128, 128)
'''


def _package(root: Path) -> Path:
    package = root / "palette"
    (package / "tests").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "colours.py").write_text(MODULE)
    (package / "themes.py").write_text(OTHER)
    (package / "tests" / "test_colours.py").write_text(TEST)
    return package


def test_rows_point_at_their_function_and_take_negatives_elsewhere(tmp_path):
    package = _package(tmp_path / "site")
    rows, counts = rerank_trees.package_rows("palette", package, tmp_path / "work",
                                             max_files=50, max_queries=50, negatives=1,
                                             depth=30)
    assert counts["queries"] >= 4 and rows
    by_style = {row["style"].split("-")[0] for row in rows}
    assert by_style == {"file", "function"}
    for row in rows:
        # The docstrings were blanked in the indexed tree: no text repeats the query.
        assert row["q"] not in row["p"]
        assert all(row["q"] not in n for n in row["n"])
        assert len(row["n"]) == 1 and row["p"] not in row["n"]
    parse = [r for r in rows if r["q"].startswith("Parse a hexadecimal")]
    assert parse and "def parse_hex_colour" in parse[0]["p"]
    # The test that calls the function is the look-alike the reranker must put lower.
    assert parse[0]["n"][0].startswith("palette/tests/test_colours.py")


def test_file_queries_target_any_chunk_of_their_file():
    queries = rerank_trees.file_queries("palette/colours.py", MODULE)
    files = [q for q in queries if q["style"].startswith("file")]
    assert files and all(q["path"] == "palette/colours.py" and "span" not in q for q in files)
    functions = [q for q in queries if q["style"].startswith("function")]
    assert {tuple(q["span"]) for q in functions} == {(4, 7), (10, 12)}


def test_test_files_ask_nothing_but_stay_in_the_tree(tmp_path):
    package = _package(tmp_path / "site")
    queries = rerank_trees.make_tree(package, tmp_path / "tree", 50)
    assert (tmp_path / "tree" / "palette" / "tests" / "test_colours.py").is_file()
    assert all("tests/" not in q["path"] for q in queries)
