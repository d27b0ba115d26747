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


def _index(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
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
        else:
            assert {"SessionStore", "sign_cookie"} <= set(names)
            assert "load_config" not in names  # another file's definition
        assert rest.split("\n", 1)[1] == chunk.text  # the code follows, whole


def test_the_context_line_is_cut_to_its_budget(tmp_path):
    chunks = _index(tmp_path).chunks()
    for text in context_texts(chunks, names_chars=12):
        if "# in this file: " in text:
            assert len(text.split("\n")[1].removeprefix("# in this file: ")) <= 12


def test_the_oracle_puts_each_targets_best_row_first(tmp_path):
    index = _index(tmp_path)
    query = RepoQuery("toy/0", "toy", "python", "session cookie signing",
                      (Target("sessions.py"),), (Target("config.py", 1, 2),), "semantic")
    repo = Repo("toy", "python", index, "", [query], [])
    results = index.stage("lexical", depth=10)([query.query])
    before = [index.chunks()[i].path for i in results.ids[0] if i >= 0]
    assert before[0] == "NOTES.txt" and "sessions.py" in before  # the target is not first
    reordered = Oracle(repo, depth=10)([query.query], results)
    after = [index.chunks()[i].path for i in reordered.ids[0] if i >= 0]
    targets = [p for p in before if p in ("sessions.py", "config.py")]
    assert after[:len(targets)] == targets  # each target's best row, in their order
    assert after[len(targets):] == [p for p in before if p not in targets]  # the rest kept
    assert list(reordered.scores[0]) == sorted(reordered.scores[0], reverse=True)
