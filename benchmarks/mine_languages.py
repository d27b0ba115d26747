"""Mine (doc comment -> code) training pairs in many languages from npm and Debian packages.

usage:
    npm pack --pack-destination NPM_DIR lodash rxjs ...           # JS/TS tarballs
    apt-get download golang-github-x-y-dev librust-z-dev ...      # Go, Rust, Ruby, PHP, Lua, C
    python benchmarks/mine_languages.py --npm NPM_DIR --deb DEB_DIR \\
        --python-pairs PY_DATA --out DATA [--workers 1]
    # Debian source packages (Java, C#, Kotlin, Scala, Haskell, Elixir, shell: mine_debsrc.py)
    # added to a dataset mined before
    python benchmarks/mine_languages.py --debsrc DEBSRC_DIR --previous OLD_DATA --out DATA
    # Python wheels or sdists (pip download --no-deps ...): function and file pairs
    python benchmarks/mine_languages.py --pypi PYPI_DIR --npm NPM_DIR --deb DEB_DIR --out DATA

Every archive is unpacked (tarfile for npm, ``dpkg-deb -R`` for Debian) into a temporary
folder, refused whole when its package name is on the exclusion list
(:func:`encoders.train.exclusions.excluded_package`), and its files are read with the engine's
own parts: :func:`chunking.detect_language` picks the language, :func:`chunking.outline` gives
the definitions (tree-sitter), and :class:`chunking.CastChunker` cuts the raw chunks the static
model distils on. A definition with a doc comment directly above it (``//``, ``///``, ``/** */``,
``#``, ``--``) becomes a pair: the comment's first sentence and the definition under the
engine's ``path :: symbol`` header. Tests, examples, vendored, generated and minified files are
skipped (:func:`chunking.paths.path_class`), as are TypeScript declaration files.

Every file that opens with a module-level doc also gives file-purpose pairs
(:mod:`mine_files`: the doc's first sentence -> the file's chunks, the doc removed; styles
``file-doc`` and ``file-web``).

Each (doc comment -> definition) pair gets one query style, chosen by a hash of its code: the
doc comment's first sentence (``doc``), a web-style rewrite of it (``web``: lower-cased, no
punctuation, stopwords dropped, sometimes the language name in front: "rust parse duration
string"), or the definition's name split into words (``name``). Python pairs mined earlier
(``encoders.train.data``) join the pool and get the same styles. Then :mod:`mining_pool`
removes exact and near-duplicate code and mines hard negatives with this engine's BM25.

Output (``--out``): ``pairs.jsonl.xz`` (query, code, negatives, source, language, style,
split), ``chunks.jsonl.xz`` (text, source), ``manifest.json`` (per package: ecosystem, version,
licence, sha256 of the archive, counts; totals per language and style; the data hash).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from mine_comments import doc_comment  # noqa: E402

from chunking import CastChunker, detect_language, embedding_text, outline  # noqa: E402
from chunking.paths import path_class  # noqa: E402
from encoders.train.data import first_sentence  # noqa: E402
from encoders.train.exclusions import excluded_name, excluded_package  # noqa: E402

LANGUAGES = ("javascript", "typescript", "tsx", "go", "rust", "ruby", "php", "lua", "c", "cpp",
             # the semble benchmark's other languages (Debian source packages: mine_debsrc.py)
             "java", "csharp", "kotlin", "scala", "swift", "haskell", "elixir", "zig", "bash")
MIN_WORDS = 3
MIN_LINES = 3
MAX_CHARS = 1500  # the engine's chunk budget (non-whitespace characters)
MAX_FILE_BYTES = 200_000  # larger files are bundles or generated tables
MAX_FILES = 400  # files a package, sampled by a hash of their path
MAX_PAIRS = 1500  # pairs a package, so no one package dominates
MAX_CHUNKS = 300  # raw chunks a package
MAX_FILE_LEVEL = 300  # file-purpose pairs a package (mine_files.py)
_DEFINITIONS = {"function", "method", "constructor", "macro"}
_STOP = frozenset(
    "a an the of to in on for with by from into at as is are be been this that these those "
    "it its if or and given specified provided which when whether will can should must may "
    "all any some new current".split()
)


@dataclass(frozen=True)
class Source:
    """One unpacked package: where its files are and where they came from."""

    name: str
    version: str
    licence: str
    ecosystem: str  # "npm" or "debian"
    sha256: str
    root: Path


@dataclass(frozen=True)
class MinedPair:
    query: str
    code: str
    source: str
    language: str
    style: str
    name_words: str


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def npm_source(tarball: Path, workdir: Path) -> Source:
    """Unpack an npm tarball (``package/...``) and read its ``package.json``."""
    dest = workdir / tarball.stem
    with tarfile.open(tarball) as archive:
        archive.extractall(dest, filter="data")
    roots = [p.parent for p in dest.glob("*/package.json")]
    root = roots[0] if roots else dest
    meta = json.loads((root / "package.json").read_text(encoding="utf-8", errors="replace")) \
        if (root / "package.json").is_file() else {}
    licence = meta.get("license") or meta.get("licenses") or "unknown"
    if isinstance(licence, (dict, list)):
        licence = json.dumps(licence)[:80]
    return Source(name=str(meta.get("name") or tarball.stem), version=str(meta.get("version", "")),
                  licence=str(licence)[:80], ecosystem="npm", sha256=_sha256(tarball), root=root)


def debian_source(deb: Path, workdir: Path) -> Source:
    """Unpack a ``.deb`` with its control file (``dpkg-deb -R``) and read its provenance."""
    dest = workdir / deb.stem
    subprocess.run(["dpkg-deb", "-R", str(deb), str(dest)], check=True, capture_output=True)
    return debian_tree(dest, sha256=_sha256(deb))


def debian_tree(root: Path, *, sha256: str = "") -> Source:
    """An unpacked Debian package: ``DEBIAN/control`` names it, ``usr/share/doc/PKG/copyright``
    gives its licence (the first ``License:`` field)."""
    fields = {}
    for line in (root / "DEBIAN" / "control").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        if value and not line.startswith(" "):
            fields[key.strip()] = value.strip()
    name = fields.get("Package", root.name)
    licence = "unknown"
    copyright_file = root / "usr" / "share" / "doc" / name / "copyright"
    if copyright_file.is_file():
        for line in copyright_file.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("License:"):
                licence = line.split(":", 1)[1].strip()[:80] or licence
                break
    return Source(name=name, version=fields.get("Version", ""), licence=licence,
                  ecosystem="debian", sha256=sha256, root=root)


def source_files(source: Source) -> Iterator[tuple[str, str, str]]:
    """``(relative path, language, text)`` of the package's code files worth mining."""
    files = []
    for path in source.root.rglob("*"):
        if not path.is_file() or path.is_symlink() or "DEBIAN" in path.parts:
            continue
        relative = path.relative_to(source.root).as_posix()
        name = path.name
        if name.endswith((".d.ts", ".d.mts", ".d.cts", ".min.js", ".map")) or \
                path.stat().st_size > MAX_FILE_BYTES:
            continue
        language = detect_language(relative)
        if language not in LANGUAGES or path_class(relative) != "source":
            continue
        if excluded_name(relative):
            continue
        files.append((hashlib.blake2b(relative.encode()).digest(), relative, language, path))
    for _, relative, language, path in sorted(files)[:MAX_FILES]:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        # One very long line is minified or generated code, not documentation.
        if max((len(line) for line in text.splitlines()), default=0) > 1000:
            continue
        yield relative, language, text


def split_name(symbol: str) -> str:
    """A definition's own name as lower-case words: ``Server.ServeHTTP`` -> "serve http"."""
    last = re.split(r"[.:#]", symbol)[-1]
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", last))
    return " ".join(w.lower() for w in re.split(r"[\s_$-]+", words) if w)


def web_query(doc: str, language: str, salt: int) -> str:
    """A web-search style rewrite: keywords of the sentence, lower-case, no punctuation."""
    words = [w for w in re.findall(r"[a-z0-9]+", doc.lower()) if w not in _STOP]
    words = words[:8]
    if salt % 2 == 0:  # half of them name the language, as people often type it
        words.insert(0, {"tsx": "typescript", "cpp": "c++"}.get(language, language))
    return " ".join(words)


def pick_style(code: str, doc: str, name_words: str, language: str) -> tuple[str, str]:
    """(style, query) for one pair: doc 50%, web 30%, name 20% (doc when too short)."""
    salt = int(hashlib.blake2b(code.encode(), digest_size=4).hexdigest(), 16)
    bucket = salt % 10
    if bucket >= 8 and len(name_words.split()) >= 2:
        return "name", name_words
    if bucket >= 5:
        query = web_query(doc, language, salt // 10)
        if len(query.split()) >= 3:
            return "web", query
    return "doc", doc


def file_pairs(path: str, language: str, text: str) -> list[MinedPair]:
    """The (doc comment -> definition) pairs of one file."""
    lines = text.splitlines()
    pairs = []
    for kind, symbol, start, end in outline(path, text):
        if kind not in _DEFINITIONS or not symbol:
            continue
        name = re.split(r"[.:#]", symbol)[-1]
        if name.lower().startswith("test") or name.startswith("__"):
            continue
        comment = doc_comment(lines, start - 1, language)
        if comment is None:
            continue
        query = first_sentence(comment)
        body = textwrap.dedent("\n".join(lines[start - 1 : end]))
        if len(query.split()) < MIN_WORDS or len(query) > 300:
            continue
        if sum(1 for c in body if not c.isspace()) > MAX_CHARS or \
                sum(1 for line in body.splitlines() if line.strip()) < MIN_LINES:
            continue
        pairs.append(MinedPair(query=query, code=f"{path} :: {symbol}\n{body}", source=path,
                               language=language, style="doc", name_words=split_name(symbol)))
    return pairs


def mine_source(source: Source, *, max_pairs: int = MAX_PAIRS, file_level: bool = True
                ) -> tuple[list[MinedPair], list[str], dict]:
    """Pairs (at most ``max_pairs``, and with ``file_level`` up to :data:`MAX_FILE_LEVEL`
    file-purpose pairs of ``mine_files``), raw chunks (as the engine embeds them) and counts
    of one package."""
    from mine_files import file_purpose_pairs

    chunker = CastChunker()
    pairs: list[MinedPair] = []
    purpose: list[MinedPair] = []
    chunks: list[str] = []
    languages: dict[str, int] = {}
    prefix = source.name
    for relative, language, text in source_files(source):
        shown = f"{prefix}/{relative}"
        if len(pairs) < max_pairs:
            found = file_pairs(shown, language, text)
            pairs.extend(found[: max_pairs - len(pairs)])
            languages[language] = languages.get(language, 0) + len(found)
        if file_level and len(purpose) < MAX_FILE_LEVEL:  # mine_files: the file's own doc
            purpose.extend(file_purpose_pairs(shown, language, text))
        if len(chunks) < MAX_CHUNKS:
            try:
                for chunk in chunker.chunk(shown, text):
                    if chunk.kind != "window" and len(chunks) < MAX_CHUNKS:
                        chunks.append(embedding_text(chunk))
            except Exception:  # noqa: BLE001 - a file the chunker cannot cut gives no chunks
                pass
    counts = {"ecosystem": source.ecosystem, "version": source.version,
              "licence": source.licence, "sha256": source.sha256,
              "pairs_found": len(pairs), "file_pairs_found": len(purpose),
              "chunks": len(chunks), "languages": languages}
    return pairs + purpose[:MAX_FILE_LEVEL], chunks, counts


def mine_archive(archive: Path) -> tuple[str, list[MinedPair], list[str], dict | None]:
    """Unpack and mine one archive in a temporary folder; None counts for an excluded one."""
    if archive.is_dir():  # a Debian source package fetched by mine_debsrc.py
        from mine_debsrc import mine_package

        return mine_package(archive)
    if archive.name.endswith((".whl", ".tar.gz")):  # a Python wheel or sdist (pip download)
        from mine_files import mine_python_archive

        return mine_python_archive(archive)
    with tempfile.TemporaryDirectory(prefix="mine-") as work:
        if archive.suffix == ".deb":
            package = archive.name.split("_")[0]
            if excluded_package(package):
                return package, [], [], None
            source = debian_source(archive, Path(work))
        else:
            source = npm_source(archive, Path(work))
            if excluded_package(source.name):
                return source.name, [], [], None
        pairs, chunks, counts = mine_source(source)
        return source.name, pairs, chunks, counts


def main(argv: list[str] | None = None) -> int:
    from mining_pool import build_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npm", type=Path, action="append", default=[],
                        help="a folder of npm tarballs (.tgz)")
    parser.add_argument("--deb", type=Path, action="append", default=[],
                        help="a folder of .deb files")
    parser.add_argument("--debsrc", type=Path, action="append", default=[],
                        help="a folder of Debian source packages (mine_debsrc.py fetch)")
    parser.add_argument("--pypi", type=Path, action="append", default=[],
                        help="a folder of Python wheels or sdists (pip download --no-deps)")
    parser.add_argument("--python-pairs", type=Path, default=None,
                        help="a folder mined by `python -m encoders.train mine`")
    parser.add_argument("--previous", type=Path, default=None,
                        help="a dataset this script wrote before: its pairs join the pool "
                             "first, as they are (query styles and splits kept)")
    parser.add_argument("--negatives", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    archives = sorted(p for d in args.npm for p in d.glob("*.tgz")) + \
        sorted(p for d in args.deb for p in d.glob("*.deb")) + \
        sorted(p.parent for d in args.debsrc for p in d.glob("*/fields.json")) + \
        sorted(p for d in args.pypi for p in [*d.glob("*.whl"), *d.glob("*.tar.gz")])
    if args.workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.workers) as pool:
            mined = list(pool.map(mine_archive, archives, chunksize=4))
    else:
        mined = [mine_archive(archive) for archive in archives]
    manifest = build_dataset(mined, out=args.out, python_pairs=args.python_pairs,
                             previous=args.previous, negatives=args.negatives,
                             command=" ".join(sys.argv))
    summary = {k: manifest[k] for k in ("pairs", "languages", "styles", "data_hash")}
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
