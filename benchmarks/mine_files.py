"""File-purpose training pairs: a file's own module-level doc -> chunks of that file.

semble's queries describe what a file does ("State extractor for sharing application state
across handlers" -> ``extract/state.rs``) and its targets are files, while the (doc comment ->
function) pairs of ``mine_languages.py`` teach "a function's doc -> that function". This module
reads the doc a file opens with: a Python module docstring, Rust ``//!`` inner docs, Go's
``// Package x ...`` comment, a leading JSDoc or header comment in JS/TS, C/C++, PHP, Ruby and
Lua (licence headers and linter pragmas skipped), Elixir's ``@moduledoc``. The doc is removed
from the file, the rest is cut by the engine's own chunker (:class:`chunking.CastChunker`),
and the chunks under their ``path :: symbol`` header become the positives: the chunk holding
the most definitions gets the doc's first sentence (style ``file-doc``), the next one, when
there is one, the web-style rewrite of it (``file-web``). A file without such a doc gives
nothing; the caller refuses excluded packages before any file is read.

Python packages come as wheels or sdists (``pip download --no-deps``): :func:`python_source`
unpacks one; :func:`mine_python_archive` mines its function pairs (``encoders.train
.python_pairs``) and file pairs the same way ``mine_languages.mine_archive`` does for npm and
Debian archives.

    python benchmarks/mine_languages.py --pypi PYPI --npm NPM --deb DEB --out DATA_B
    python benchmarks/mine_files.py control --data DATA_B --out DATA_A   # function pairs only
"""

from __future__ import annotations

import ast
import re
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mine_comments import _NOISE  # noqa: E402
from mine_languages import (
    MAX_CHARS,
    MAX_FILE_BYTES,
    MAX_FILE_LEVEL,
    MAX_FILES,
    MAX_PAIRS,
    MIN_LINES,
    MIN_WORDS,
    MinedPair,
    Source,
    _sha256,
    split_name,
    web_query,
)

from chunking import CastChunker, embedding_text, outline
from encoders.train.data import first_sentence
from encoders.train.exclusions import excluded_name, excluded_package

MAX_FILE_PAIRS = 2  # rows a file: the doc sentence and its web-style rewrite
_DEFINITIONS = {"function", "method", "constructor", "macro", "class", "struct", "enum",
                "interface", "trait", "impl", "type", "module"}
_PREAMBLE = re.compile(r"^\s*(#!|<\?php|['\"]use strict['\"]|#\s*-\*-|#\s*frozen_string_literal|"
                       r"#\s*(typed|encoding|coding)[:=]|#!\[|// *@ts-|/\* *eslint|// *eslint)")
_TAG_LEAD = re.compile(r"^@(file|fileoverview|overview|module|summary|description)\b\s*\S*?\s*",
                       re.I)
_MARKUP = re.compile(r"^\s*(\[!\[|!\[|<img|<p |<div|={3,}|-{3,})")
_LICENCE = re.compile(r"copyright|licen[cs]e|spdx|all rights reserved|permission is hereby|"
                      r"generated|do not edit|@flow|jshint|global ", re.I)


def _block_at(lines: list[str], row: int, language: str) -> tuple[int, int, str] | None:
    """The comment block starting at ``row``: (first, last) rows and its text, markers off."""
    first = lines[row].strip()
    if first.startswith("/*"):
        end = row
        while end < len(lines) and "*/" not in lines[end][(2 if end == row else 0):]:
            end += 1
        if end == len(lines):
            return None
        body = [re.sub(r"^\s*(/\*+!?|\*+(?!/))\s?", "", line) for line in lines[row:end + 1]]
        body[-1] = body[-1].split("*/")[0]
        return row, end, "\n".join(body)
    if language == "lua" and first.startswith("--[["):
        end = row
        while end < len(lines) and "]]" not in lines[end]:
            end += 1
        if end == len(lines):
            return None
        body = [lines[row].strip()[4:]] + lines[row + 1:end + 1]
        body[-1] = body[-1].split("]]")[0]
        return row, end, "\n".join(body)
    prefix = {"ruby": "#", "lua": "--", "python": "#"}.get(language, "//")
    if language == "php" and first.startswith("#"):
        prefix = "#"
    if not first.startswith(prefix) or first.startswith(("#!", "#[")):
        return None
    end = row
    while end + 1 < len(lines) and lines[end + 1].strip().startswith(prefix):
        end += 1
    body = [re.sub(r"^\s*(//+!?|-{2,}|#+)\s?", "", line) for line in lines[row:end + 1]]
    return row, end, "\n".join(body)


def _header_comment(lines: list[str], language: str) -> tuple[int, int, str] | None:
    """The first comment at the top of a file (after shebangs and pragmas) that is not a
    licence, followed by a blank line (so it is not the first definition's own doc)."""
    row = 0
    for _ in range(4):  # a licence block, then the file's own doc
        while row < len(lines) and (not lines[row].strip() or _PREAMBLE.match(lines[row])):
            row += 1
        if row >= len(lines):
            return None
        block = _block_at(lines, row, language)
        if block is None:
            return None
        first, last, text = block
        if not _LICENCE.search(text):
            after = lines[last + 1] if last + 1 < len(lines) else ""
            if after.strip() and language not in ("php",):
                return None
            return first, last, text
        row = last + 1
    return None


def _python_doc(text: str) -> tuple[int, int, str] | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return None
    doc = ast.get_docstring(tree, clean=True)
    if not doc or not tree.body:
        return None
    node = tree.body[0]
    return node.lineno - 1, node.end_lineno - 1, doc


def _rust_doc(lines: list[str]) -> tuple[int, int, str] | None:
    rows = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("//!"):
            rows.append(i)
        elif rows and stripped and not stripped.startswith("//"):
            break
        elif not rows and stripped and not stripped.startswith(("//", "#![")):
            return None
    if not rows:
        return None
    body = [re.sub(r"^\s*//!\s?", "", lines[i]) for i in rows]
    return rows[0], rows[-1], "\n".join(body)


def _go_doc(lines: list[str]) -> tuple[int, int, str] | None:
    for i, line in enumerate(lines):
        if re.match(r"^package\s+\w+", line):
            end = i - 1
            if end < 0 or not lines[end].strip().startswith(("//", "*/")):
                return None
            start = end
            if lines[end].strip().endswith("*/"):
                while start > 0 and "/*" not in lines[start]:
                    start -= 1
            else:
                while start > 0 and lines[start - 1].strip().startswith("//"):
                    start -= 1
            block = _block_at(lines, start, "go")
            if block is None or not re.match(r"\s*Package\s", block[2]):
                return None
            return start, end, block[2]
    return None


def _elixir_doc(lines: list[str]) -> tuple[int, int, str] | None:
    for i, line in enumerate(lines):
        if re.match(r'^\s*@moduledoc\s+(~[sS])?"""\s*$', line):
            for j in range(i + 1, len(lines)):
                if lines[j].strip() == '"""':
                    return i, j, "\n".join(lines[i + 1:j])
            return None
    return None


def file_doc(language: str, text: str) -> tuple[int, int, str] | None:
    """The module-level doc of one file: ``(first row, last row, doc text)``, 0-based rows of
    the lines to remove, or None when the file has none."""
    lines = text.splitlines()
    if language == "python":
        return _python_doc(text)
    if language == "rust":
        return _rust_doc(lines)
    if language == "go":
        return _go_doc(lines)
    if language == "elixir":
        return _elixir_doc(lines)
    if language in ("javascript", "typescript", "tsx", "c", "cpp", "php", "ruby", "lua"):
        return _header_comment(lines, language)
    return None


def doc_query(doc: str) -> str | None:
    """The doc's first sentence, headings, badges, JSDoc file tags and markup dropped; None
    when it is too short, too long or boilerplate."""
    kept: list[str] = []
    lines = doc.strip().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        underline = i + 1 < len(lines) and re.fullmatch(r"[=\-~^#*]{3,}", lines[i + 1].strip())
        if not kept and (not stripped or stripped.startswith("#") or _MARKUP.match(stripped)
                         or underline or re.fullmatch(r"[=\-~^#*]{3,}", stripped)
                         or re.fullmatch(r"@module\s+\S+", stripped)):
            continue  # a title, a badge, a bare @module line before the description
        kept.append(_TAG_LEAD.sub("", stripped) if not kept else line)
    query = first_sentence("\n".join(kept))
    query = re.sub(r"`([^`]*)`", r"\1", re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", query))
    query = re.sub(r"\[`?([^\]`]*)`?\]", r"\1", query).strip()
    if len(query.split()) < MIN_WORDS or len(query) > 300 or _NOISE.search(query):
        return None
    return query


def _definitions(spans: list[tuple[int, int]], start: int, end: int) -> int:
    return sum(1 for s, _ in spans if start <= s <= end)


def file_purpose_pairs(path: str, language: str, text: str) -> list[MinedPair]:
    """The file-purpose pairs of one file (``path`` as the header shows it)."""
    found = file_doc(language, text)
    if found is None:
        return []
    first, last, doc = found
    query = doc_query(doc)
    if query is None:
        return []
    lines = text.splitlines()
    # The doc's lines become blank, so every other line keeps its number.
    rest = "\n".join(lines[:first] + [""] * (last - first + 1) + lines[last + 1:]) + "\n"
    try:
        chunks = [c for c in CastChunker().chunk(path, rest) if c.kind != "window"]
        spans = [(start, end) for kind, _, start, end in outline(path, rest)
                 if kind in _DEFINITIONS]
    except Exception:  # noqa: BLE001 - a file the chunker cannot cut gives no pairs
        return []
    scored = []
    for chunk in chunks:
        body = chunk.text
        if sum(1 for c in body if not c.isspace()) > MAX_CHARS or \
                sum(1 for line in body.splitlines() if line.strip()) < MIN_LINES:
            continue
        scored.append((-_definitions(spans, chunk.start_line, chunk.end_line),
                       -len(body), chunk.start_line, chunk))
    scored.sort(key=lambda item: item[:3])
    salt = int.from_bytes(path.encode()[-4:].rjust(4, b"\0"), "big")
    queries = [("file-doc", query), ("file-web", web_query(query, language, salt))]
    pairs = []
    for (style, q), (_, _, _, chunk) in zip(queries[:MAX_FILE_PAIRS], scored, strict=False):
        if len(q.split()) < MIN_WORDS:
            continue
        pairs.append(MinedPair(query=q, code=embedding_text(chunk), source=path,
                               language=language, style=style,
                               name_words=split_name(chunk.symbol or "")))
    return pairs


def python_source(archive: Path, workdir: Path) -> Source:
    """Unpack a wheel (a zip of the sources) or an sdist (``.tar.gz``); name and version from
    the file name, licence from the metadata's ``License:`` field when there is one."""
    dest = workdir / "unpacked"
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(dest)
        stem = archive.name.split("-")
    else:
        with tarfile.open(archive) as handle:
            handle.extractall(dest, filter="data")
        stem = archive.name.removesuffix(".tar.gz").rsplit("-", 1)
    licence = "unknown"
    for meta in list(dest.glob("*.dist-info/METADATA")) + list(dest.glob("*/PKG-INFO")):
        for line in meta.read_text(encoding="utf-8", errors="replace").splitlines():
            value = line.split(":", 1)[1].strip() if ":" in line else ""
            if line.startswith(("License-Expression:", "License:")) and value:
                licence = value[:80]
                break
            if line.startswith("Classifier: License ::"):
                licence = line.rsplit("::", 1)[1].strip()[:80]
        break
    return Source(name=stem[0].replace("_", "-").lower(), version=stem[1] if len(stem) > 1 else "",
                  licence=licence, ecosystem="pypi", sha256=_sha256(archive), root=dest)


def mine_python(source: Source) -> tuple[list[MinedPair], list[str], dict]:
    """Function pairs (docstring -> function) and file pairs of one Python package."""
    from encoders.train.mining_sources import is_test_path, python_files
    from encoders.train.python_pairs import python_items

    pairs: list[MinedPair] = []
    purpose: list[MinedPair] = []
    files = 0
    # In mining_sources' seeded hash order, so the caps sample the whole package rather than
    # its alphabetically first modules (as mine_languages caps every other language).
    for path in python_files(source.root):
        if files >= MAX_FILES or len(pairs) >= MAX_PAIRS:
            break  # no later file would be read
        relative = path.relative_to(source.root)
        if is_test_path(relative.parts) or excluded_name(relative.as_posix()) or \
                any(p.endswith((".dist-info", ".egg-info")) for p in relative.parts):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if len(text) > MAX_FILE_BYTES:
            continue
        files += 1
        shown = f"{source.name}/{relative.as_posix()}"
        found, _ = python_items(shown, text)
        for pair in found:
            header = pair.code.split("\n", 1)[0]
            symbol = header.split(" :: ", 1)[1] if " :: " in header else ""
            pairs.append(MinedPair(query=pair.query, code=pair.code, source=shown,
                                   language="python", style="doc",
                                   name_words=split_name(symbol)))
        if len(purpose) < MAX_FILE_LEVEL:  # file pairs capped as mine_languages caps them
            purpose.extend(file_purpose_pairs(shown, "python", text))
    counts = {"ecosystem": source.ecosystem, "version": source.version,
              "licence": source.licence, "sha256": source.sha256,
              "pairs_found": len(pairs), "file_pairs_found": len(purpose), "chunks": 0,
              "languages": {"python": len(pairs) + len(purpose)}}
    pairs = pairs[:MAX_PAIRS] + purpose[:MAX_FILE_LEVEL]
    return pairs, [], counts


def mine_python_archive(archive: Path) -> tuple[str, list[MinedPair], list[str], dict | None]:
    """``mine_languages.mine_archive`` for a wheel or sdist; None counts for an excluded one."""
    name = archive.name.split("-")[0].replace("_", "-").lower()
    if excluded_package(name):
        return name, [], [], None
    with tempfile.TemporaryDirectory(prefix="mine-py-") as work:
        source = python_source(archive, Path(work))
        if excluded_package(source.name):
            return source.name, [], [], None
        return (source.name, *mine_python(source))


def control(data: Path, out: Path) -> dict:
    """The control dataset: ``data`` without its file-purpose rows (styles ``file-*``), so a
    model trained on it and one trained on ``data`` differ by those pairs alone."""
    import json

    from encoders.train.data import data_hash, read_jsonl, write_jsonl_xz

    rows = [row for row in read_jsonl(data / "pairs.jsonl.xz")
            if not row["style"].startswith("file")]
    kept = {row["code"] for row in rows}
    for row in rows:  # negatives that were file-purpose chunks are not in the control's pool
        row["negatives"] = [n for n in row.get("negatives", []) if n in kept]
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl_xz(out / "pairs.jsonl.xz", rows)
    (out / "chunks.jsonl.xz").write_bytes((data / "chunks.jsonl.xz").read_bytes())
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(pairs={"train": sum(r["split"] == "train" for r in rows),
                           "dev": sum(r["split"] == "dev" for r in rows)},
                    control_of=manifest["data_hash"], data_hash=data_hash(out))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return {"pairs": manifest["pairs"], "data_hash": manifest["data_hash"]}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("control", help="a dataset without its file-purpose pairs")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(control(args.data, args.out)) + "\n")
    return 0


__all__ = ["control", "doc_query", "file_doc", "file_purpose_pairs", "mine_python",
           "mine_python_archive", "python_source"]

if __name__ == "__main__":
    raise SystemExit(main())
