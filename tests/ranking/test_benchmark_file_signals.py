"""benchmarks/context_chunks.py and benchmarks/file_rerank.py on a real lexical index: the
context line names the chunk's file's definitions (its own first), and the re-ordering oracle
puts every target's best-ranked row first and keeps the other rows."""

from __future__ import annotations

import sys
from pathlib import Path

import retriever
from eval.repos import RepoQuery, Target

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from context_chunks import context_texts  # noqa: E402
from file_rerank import Oracle  # noqa: E402
from ranking_eval import Repo  # noqa: E402

SESSIONS = '''class SessionStore:
    """Keeps sessions."""

    def open_session(self, request):
        return self.load(request.cookies.get("session"))

    def save_session(self, session, response):
        response.set_cookie("session", session.sign())


def sign_cookie(value, key):
    return hmac_digest(key, value)
'''

CONFIG = '''def load_config(path):
    """Read the settings file."""
    with open(path) as handle:
        return parse_settings(handle.read())
'''


def _long_module() -> str:
    """Enough functions that the chunker cuts the file into several chunks."""
    return "\n\n".join(
        f"def step_{i}(values):\n" + "".join(f"    values = [v * {i} + {j} for v in values]\n"
                                              for j in range(12)) + "    return values\n"
        for i in range(8))


def _index(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "steps.py").write_text(_long_module())
    (tree / "sessions.py").write_text(SESSIONS)
    (tree / "config.py").write_text(CONFIG)
    (tree / "NOTES.txt").write_text("Session cookies are signed with the secret key.\n")
    return retriever.index(tree, index_dir=tmp_path / "idx", lexical_only=True, cache=False)


def test_the_context_line_names_the_files_definitions_own_first(tmp_path):
    chunks = _index(tmp_path).chunks()
    texts = dict(zip([c.path + f":{c.start_line}" for c in chunks], context_texts(chunks),
                     strict=True))
    for chunk in chunks:
        text = texts[chunk.path + f":{chunk.start_line}"]
        header, _, rest = text.partition("\n")
        assert header == (f"{chunk.path} :: {chunk.symbol}" if chunk.symbol else chunk.path)
        if chunk.path == "NOTES.txt":  # no definitions: the plain embedding text
            assert "# in this file:" not in text
            continue
        line = rest.split("\n", 1)[0]
        assert line.startswith("# in this file: ")
        names = line.removeprefix("# in this file: ").split(", ")
        assert len(names) == len(set(names))
        if chunk.path == "config.py":
            assert names == ["load_config"]
        elif chunk.path == "sessions.py":
            assert {"SessionStore", "sign_cookie"} <= set(names)
            assert "load_config" not in names  # another file's definition
        else:  # steps.py, cut into several chunks: its own definitions first, then the rest
            own = [n for n in names if f"def {n}(" in chunk.text]
            assert own and names[:len(own)] == own
            assert set(names[len(own):]) <= {f"step_{i}" for i in range(8)} - set(own)
        assert rest.split("\n", 1)[1] == chunk.text  # the code follows, whole
    assert sum(c.path == "steps.py" for c in chunks) >= 2  # the fixture does split


def test_the_context_line_is_cut_to_its_budget(tmp_path):
    chunks = _index(tmp_path).chunks()
    lines = [text.split("\n")[1] for text in context_texts(chunks, names_chars=12)
             if "# in this file: " in text]
    assert lines
    assert all(len(line.removeprefix("# in this file: ")) <= 12 for line in lines)


def test_the_oracle_puts_each_targets_best_row_first(tmp_path):
    index = _index(tmp_path)
    text = "session cookie values step"
    results = index.stage("lexical", depth=10)([text])
    chunks = index.chunks()
    rows = [int(i) for i in results.ids[0] if i >= 0]
    assert len(rows) >= 4 and chunks[rows[-1]].path != chunks[rows[0]].path
    last, middle = chunks[rows[-1]], chunks[rows[len(rows) // 2]]
    # a file target (the last row's file) and a line-span target (the middle row's lines)
    query = RepoQuery("toy/0", "toy", "python", text, (Target(last.path),),
                      (Target(middle.path, middle.start_line, middle.end_line),), "semantic")
    reordered = Oracle(Repo("toy", "python", index, "", [query], []), depth=10)([text], results)
    after = [int(i) for i in reordered.ids[0] if i >= 0]
    first_of_file = next(r for r in rows if chunks[r].path == last.path)
    span_row = next(r for r in rows if chunks[r].path == middle.path
                    and chunks[r].start_line <= middle.end_line
                    and chunks[r].end_line >= middle.start_line)
    wanted = [r for r in rows if r in (first_of_file, span_row)]  # in their incoming order
    assert after[:len(wanted)] == wanted and after[:len(wanted)] != rows[:len(wanted)]
    assert after[len(wanted):] == [r for r in rows if r not in wanted]  # the rest kept
    assert list(reordered.scores[0]) == sorted(reordered.scores[0], reverse=True)
