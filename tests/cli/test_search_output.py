"""What `retriever search` shows people and tools: clickable locations, links on a terminal
only, marked query words, snippet sizes, JSON Lines, filters; on a real lexical-only index."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from cli_terminal import foreign_controls, in_terminal, links, piped, plain, styled
from typer.testing import CliRunner

import retriever
from indexing.tokenize import code_tokens
from retriever.cli.app import app

runner = CliRunner(env={"COLUMNS": "200"})

CLEAR = "\x1b[2J"
# The query's words sit near the end of a long function: the snippet window has to move there.
LONG = "def schedule(call, attempts=5):\n" + "".join(
    f"    note_{i} = call.record({i})  # routine bookkeeping\n" for i in range(12)
) + "    delay = exponential_backoff(attempts)  # then retry\n    return call.again(delay)\n"
TREE = {
    "src/retry.py": LONG,
    "src/server.go": "package server\n\n// Route the request.\nfunc routeRequest(path string)"
                     " string {\n\tif path == \"\" {\n\t\treturn \"retry later\"\n\t}\n"
                     "\treturn path\n}\n",
    "src/hostile.py": f"def numbat_quoll():\n    # numbat {CLEAR} quoll\n    return 1\n",
    f"src/evil{CLEAR}.py": "def wallaby_jump():\n    return 'wallaby'\n",
    "src/separators.py": "def wombat():\n    # wombat\u2028burrow\n    return 2\n",
    "tests/test_retry.py": "def test_retry_with_backoff():\n    assert retry_with_backoff(len)\n",
    "docs/guide.md": "# Retry guide\n\nRetry with exponential backoff when the call fails.\n",
}
QUERY = "retry exponential backoff"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("output") / "tree"
    for name, text in TREE.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(text)
    result = runner.invoke(app, ["index", str(tree), "--lexical-only", "-q"])
    assert result.exit_code == 0, result.output
    return tree


def _search(*args: str, cwd: Path | None = None, monkeypatch=None):
    if cwd is not None:
        monkeypatch.chdir(cwd)
    result = runner.invoke(app, ["search", *args])
    assert result.exit_code == 0, result.output
    return result


def _json_hits(*args: str) -> list[dict]:
    return json.loads(runner.invoke(app, ["search", *args, "--json"]).stdout)["hits"]


@pytest.mark.parametrize("where", ["root", "subfolder", "outside"])
def test_each_title_starts_with_a_path_and_line_this_shell_can_open(root, monkeypatch, tmp_path,
                                                                    where):
    args = {"root": [QUERY, "--mode", "lexical"],
            "subfolder": [QUERY, "--mode", "lexical"],
            "outside": [QUERY, "--index", str(root / ".retriever"), "--mode", "lexical"]}[where]
    cwd = {"root": root, "subfolder": root / "src", "outside": tmp_path}[where]
    monkeypatch.chdir(cwd)
    hits = _json_hits(*args)
    assert hits and (where != "subfolder" or all(h["path"].startswith("src/") for h in hits))
    shown = _search(*args, "--no-snippet").stdout.splitlines()
    assert len(shown) == len(hits)  # --no-snippet: one title line per hit, nothing else
    for line, hit in zip(shown, hits, strict=True):
        location, rest = line.split("  ", 1)
        file, number = location.rsplit(":", 1)
        assert (cwd / file).resolve() == (root / hit["path"]).resolve(), line
        assert int(number) == hit["start_line"]
        assert Path(file).is_absolute() == (where == "outside")
        assert f"lines {hit['start_line']}-{hit['end_line']}" in rest
        assert (hit["symbol"] or "") in rest


def test_piped_output_has_no_escape_sequence_at_all(root):
    result = piped("search", QUERY, "--mode", "lexical", cwd=root)
    assert result.returncode == 0, result.stderr
    assert b"\x1b" not in result.stdout
    first = _json_hits(QUERY, "--index", str(root / ".retriever"), "--mode", "lexical")[0]
    assert result.stdout.decode().startswith(f"{first['path']}:{first['start_line']}  ")


def test_a_terminal_gets_file_links_and_marked_query_words(root):
    code, out, err = in_terminal("search", QUERY, "--mode", "lexical", "-k", "3", cwd=root)
    assert code == 0, err
    text = out.decode()
    hits = _json_hits(QUERY, "--index", str(root / ".retriever"), "--mode", "lexical", "-k", "3")
    linked = links(text)
    assert len(linked) == len(hits)
    for (uri, label), hit in zip(linked, hits, strict=True):
        parts = urlsplit(uri)
        assert parts.scheme == "file" and Path(unquote(parts.path)) == root / hit["path"]
        assert label == f"{hit['path']}:{hit['start_line']}"
    wanted = set(code_tokens(QUERY))
    marked = styled(text, "7")  # reverse video
    assert {"backoff", "exponential_backoff", "retry_with_backoff", "retry"} & set(marked)
    for word in marked:  # every mark is a query word as the tokenizer reads it
        assert wanted & set(code_tokens(word)), word
    assert not foreign_controls(text)

    code, out, _ = in_terminal("search", QUERY, "--mode", "lexical", "-k", "3", "--no-links",
                               cwd=root)
    assert code == 0
    assert not links(out.decode()) and b"\x1b]8;" not in out
    assert styled(out.decode(), "7"), "--no-links keeps the colours and marks"


def test_marks_and_links_never_let_indexed_controls_through(root):
    code, out, err = in_terminal("search", "numbat quoll wallaby", "--mode", "lexical",
                                 cwd=root)
    assert code == 0, err
    text = out.decode()
    assert not foreign_controls(text), "a raw control character reached the terminal"
    shown = plain(text)
    assert "# numbat \\x1b[2J quoll" in shown and "src/evil\\x1b[2J.py:1" in shown
    assert {"numbat", "quoll", "wallaby"} <= set(styled(text, "7"))
    uris = [uri for uri, _ in links(text)]
    assert any(uri.endswith("/src/evil%1B%5B2J.py") for uri in uris), uris


def _cards(output: str) -> list[list[tuple[int, str]]]:
    """The numbered code lines under each title line of the human output."""
    cards: list[list[tuple[int, str]]] = []
    for line in output.splitlines():
        numbered = re.fullmatch(r"\s+(\d+)(?: (.*))?", line)
        if numbered:
            cards[-1].append((int(numbered.group(1)), (numbered.group(2) or "").rstrip()))
        elif line.strip():
            cards.append([])
    return cards


@pytest.mark.parametrize("lines", [None, 3, 1])
def test_snippet_lines_sets_the_window_and_shows_the_files_own_lines(root, monkeypatch, lines):
    args = [QUERY, "--mode", "lexical"] + ([] if lines is None else ["--snippet-lines",
                                                                     str(lines)])
    cards = _cards(_search(*args, cwd=root, monkeypatch=monkeypatch).stdout)
    hits = _json_hits(*args)
    assert len(cards) == len(hits)
    size = lines or 8
    for card, hit in zip(cards, hits, strict=True):
        length = hit["end_line"] - hit["start_line"] + 1
        assert len(card) == min(size, length), hit["path"]
        source = (root / hit["path"]).read_text().split("\n")
        for number, shown in card:
            assert hit["start_line"] <= number <= hit["end_line"]
            assert shown == source[number - 1].expandtabs(4).rstrip()
    long_card = cards[[h["path"] for h in hits].index("src/retry.py")]
    if size < 14:  # the window moved to the words asked for, near the function's end
        assert any("exponential_backoff" in shown for _, shown in long_card)


@pytest.mark.parametrize("value", ["0", "-2"])
def test_snippet_lines_must_be_positive(root, value):
    result = runner.invoke(app, ["search", QUERY, "--index", str(root / ".retriever"),
                                 "--mode", "lexical", "--snippet-lines", value])
    assert result.exit_code == 1
    assert "--snippet-lines" in result.stderr and "--no-snippet" in result.stderr


def test_jsonl_is_one_hit_per_line_with_the_query(root):
    index_dir = str(root / ".retriever")
    for query in (QUERY, "wombat burrow"):
        args = ["search", query, "--index", index_dir, "--mode", "lexical"]
        hits = _json_hits(*args[1:])
        result = runner.invoke(app, [*args, "--jsonl"])
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()  # splitlines also breaks on U+2028
        assert len(lines) == len(hits) >= 1
        assert [json.loads(line) for line in lines] == [{"query": query, **h} for h in hits]
    separators = [json.loads(line) for line in result.stdout.splitlines()
                  if json.loads(line)["path"] == "src/separators.py"]
    assert separators and "\u2028" in separators[0]["text"]  # the exact text, escaped
    nothing = runner.invoke(app, ["search", "zzyzx", "--index", index_dir, "--mode", "lexical",
                                  "--jsonl"])
    assert nothing.exit_code == 0 and nothing.stdout == ""


@pytest.mark.parametrize("flags, check", [
    (["--path", "src/**/*.py"], lambda h: h["path"].startswith("src/")
     and h["path"].endswith(".py")),
    (["--language", "go"], lambda h: h["language"] == "go"),
    (["--exclude", "test", "--exclude", "docs"],
     lambda h: not h["path"].startswith(("tests/", "docs/"))),
])
def test_filters_answer_as_the_python_api_does(root, flags, check):
    index_dir = root / ".retriever"
    query = "retry path request backoff"
    hits = _json_hits(query, "--index", str(index_dir), "--mode", "lexical", "-k", "3", *flags)
    everything = _json_hits(query, "--index", str(index_dir), "--mode", "lexical", "-k", "20")
    assert hits and all(check(h) for h in hits)
    assert any(not check(h) for h in everything), "the filter must leave something out"
    options = {"paths": [], "languages": [], "exclude": []}
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        options[{"--path": "paths", "--language": "languages", "--exclude": "exclude"}[flag]] \
            .append(value)
    expected = retriever.open(index_dir).search(
        query, k=3, mode="lexical", **{key: value for key, value in options.items() if value})
    assert hits == [hit.to_dict() for hit in expected]


@pytest.fixture()
def damaged(root, tmp_path) -> Path:
    """A copy of the index whose manifest is cut short."""
    copy = tmp_path / "damaged"
    shutil.copytree(root / ".retriever", copy)
    manifest = copy / (copy / "CURRENT").read_text().strip() / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    return copy


ERROR_CASES = [
    (["search", "x", "--index", "{missing}"], "InputError", "no index", 1),
    (["search", "   ", "--index", "{index}"], "InputError", "query is empty", 1),
    (["search", "x", "--index", "{index}", "--mode", "bogus"], "InputError",
     "unknown search mode", 1),
    (["search", "x", "--index", "{index}", "--language", "klingon"], "InputError",
     "unknown language", 1),
    (["search", "x", "--index", "{index}", "--mode", "dense"], "InputError", "lexical", 1),
    (["search", "x", "--index", "{index}", "--snippet-lines", "0"], "InputError",
     "--snippet-lines", 1),
    (["search", "x", "--index", "{damaged}"], "IndexFormatError", "corrupt", 1),
    (["search", "x", "--index", "{index}", "-k", "many"], "UsageError", "-k", 2),
    (["search", "x", "--index", "{index}", "--bogus"], "UsageError", "--bogus", 2),
]


@pytest.mark.parametrize("args, kind, message, code, as_json", [
    *[(*case, flag) for case in ERROR_CASES for flag in ("--json", "--jsonl")],
    (["info", "{missing}"], "InputError", "no index", 1, "--json"),
    (["info", "{damaged}"], "IndexFormatError", "corrupt", 1, "--json"),
])
def test_machine_output_gets_errors_as_one_json_object(root, damaged, tmp_path, args, kind,
                                                       message, code, as_json):
    places = {"{missing}": str(tmp_path / "nowhere"), "{index}": str(root / ".retriever"),
              "{damaged}": str(damaged)}
    result = runner.invoke(app, [places.get(a, a) for a in args] + [as_json])
    assert result.exit_code == code, result.output
    assert result.stderr == ""
    if as_json == "--jsonl":
        assert len(result.stdout.splitlines()) == 1
    payload = json.loads(result.stdout)
    assert payload["schema"] == "dense-retriever.error/1"
    assert set(payload) == {"schema", "error"} and set(payload["error"]) == {"type", "message"}
    assert payload["error"]["type"] == kind
    assert message in payload["error"]["message"].lower()
    if kind != "UsageError":  # the type names a class Python callers catch
        assert isinstance(getattr(retriever, kind), type)


def test_without_json_errors_stay_text_on_stderr(root, tmp_path):
    result = runner.invoke(app, ["search", "x", "--index", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: ") and "no index" in result.stderr.lower()
    # A query that only looks like the flag is a query: "--" ends the options.
    quoted = runner.invoke(app, ["search", "--index", str(tmp_path / "nowhere"), "--",
                                 "--json"])
    assert quoted.exit_code == 1 and quoted.stderr.startswith("Error: ")
