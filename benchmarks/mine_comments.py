"""Doc comments for ``mine_languages.py``: the comment directly above a definition in each
mined language (``//``, ``///``, ``/** */``, ``#``, ``--``, Haddock, Elixir's ``@doc``), its
markers, tags and inline markup removed, boilerplate (licences, linter pragmas) refused."""

from __future__ import annotations

import re

_NOISE = re.compile(r"copyright|licen[cs]e|spdx|eslint|istanbul|prettier-ignore|@ts-|nolint|"
                    r"todo|fixme|xxx|deprecated|generated|do not edit", re.I)
_ATTRIBUTE = re.compile(r"^\s*(#\[|@[A-Za-z]|\[\[|export\s*$)")
_CSHARP_ATTRIBUTE = re.compile(r"^\s*\[[A-Z][\w.]*(\(.*\))?\]\s*$")
# A Haskell type signature (``add :: Int -> Int``) and its continuation lines sit between
# the ``-- |`` comment and the equation the outline starts at.
_HASKELL_SIGNATURE = re.compile(r"^\s*(\S+\s*::|\s+(::|->|=>))")
_TAG = re.compile(r"^\s*[@\\][a-zA-Z]+")
# Sections that end a doc comment's description: C# XML tags, Swift's markup fields.
_SECTION = re.compile(r"^\s*(<(param|returns?|exception|remarks|example|typeparam|value)\b|"
                      r"- (Parameters?|Returns|Throws|Note|Warning|Complexity)\b)")
# Inline markup kept as its text: Javadoc {@code x} / {@link x}, C# <see cref="x"/>, HTML.
_INLINE_TAG = re.compile(r"\{@\w+\s+([^}]*)\}")
_SEE = re.compile(r"<see\w*\s+\w+=\"(?:[A-Z]:)?([^\"]*)\"\s*/>")
_HTML = re.compile(r"</?[a-zA-Z][^<>]*>")
_ELIXIR_DOC = re.compile(r'^\s*@doc\s+(~[sS])?"""\s*$')
_ELIXIR_LINE_DOC = re.compile(r'^\s*@doc\s+"((?:[^"\\]|\\.)*)"\s*$')


def doc_comment(lines: list[str], start: int, language: str) -> str | None:
    """The comment directly above line ``start`` (0-based), its markers removed, or None.

    Attribute and decorator lines (``#[derive]``, ``@Injectable()``) may sit in between; a
    blank line may not.
    """
    if language == "elixir":
        return elixir_doc(lines, start)
    row = start - 1
    while row >= 0 and (_ATTRIBUTE.match(lines[row]) or (
            language == "csharp" and _CSHARP_ATTRIBUTE.match(lines[row])) or (
            language == "haskell" and _HASKELL_SIGNATURE.match(lines[row]))) and \
            not lines[row].lstrip().startswith("# "):
        row -= 1
    if row < 0:
        return None
    text = lines[row].strip()
    found: list[str] = []
    if text.endswith("*/") or text.endswith("]]"):
        opener = "/*" if text.endswith("*/") else "--[["
        while row >= 0:
            found.insert(0, lines[row])
            if opener in lines[row]:
                break
            row -= 1
        else:
            return None
    else:
        prefixes = {"ruby": ("#",), "lua": ("--",), "php": ("//", "#"), "bash": ("#",),
                    "haskell": ("--",)}.get(language, ("//",))
        while row >= 0 and lines[row].strip().startswith(prefixes) and \
                not lines[row].strip().startswith(("#!", "#[", "#include", "#define", "#if")):
            found.insert(0, lines[row])
            row -= 1
    if not found:
        return None
    cleaned = []
    for line in found:
        line = line.strip()
        line = re.sub(r"^(/\*\*+|/\*!?|--\[\[|---*|///?!?|#+)\s?", "", line)
        line = re.sub(r"\s*(\*+/|\]\])\s*$", "", line)
        line = re.sub(r"^\*+\s?", "", line.strip())
        if language == "haskell":  # Haddock: "-- | Doc", "-- ^ Doc"
            line = re.sub(r"^[|^]\s?", "", line)
        if _TAG.match(line) or _SECTION.match(line) or \
                line.startswith(("```", "# ", "Example", "Examples")):
            break
        cleaned.append(line)
    return _clean_comment("\n".join(cleaned))


def _clean_comment(comment: str) -> str | None:
    """Inline markup reduced to its text; None for an empty or boilerplate comment."""
    comment = _HTML.sub("", _SEE.sub(r"\1", _INLINE_TAG.sub(r"\1", comment))).strip()
    if not comment or _NOISE.search(comment):
        return None
    return comment


def elixir_doc(lines: list[str], start: int) -> str | None:
    """Elixir's ``@doc \"\"\"...\"\"\"`` (or ``@doc "..."``) above ``def`` on line ``start``;
    ``@spec`` and other attributes may sit in between, ``@doc false`` gives None."""
    row = start - 1
    while row >= 0 and lines[row].strip().startswith("@") and \
            not lines[row].strip().startswith("@doc"):
        row -= 1
    if row < 0:
        return None
    single = _ELIXIR_LINE_DOC.match(lines[row])
    if single:
        return _clean_comment(single.group(1))
    if lines[row].strip() != '"""':
        return None
    body: list[str] = []
    row -= 1
    while row >= 0 and not _ELIXIR_DOC.match(lines[row]):
        if lines[row].strip() in ('"""', "end") or lines[row].lstrip().startswith("def"):
            return None  # a heredoc that is not the doc of this definition
        body.insert(0, lines[row].strip())
        row -= 1
    if row < 0:
        return None
    cleaned = []
    for line in body:
        if line.startswith(("## ", "```", "iex>")):
            break
        cleaned.append(line)
    return _clean_comment("\n".join(cleaned))
