"""Benchmark value types and loaders: BEIR folders and CodeSearchNet JSONL.

Every loader returns a :class:`Benchmark`: a corpus, the queries to evaluate and graded qrels.
A malformed file raises :class:`~retriever.errors.DatasetError` naming the file and line.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from retriever.errors import DatasetError, InputError

__all__ = ["Benchmark", "Doc", "first_sentence", "load_beir", "load_codesearchnet", "write_beir"]


@dataclass(frozen=True)
class Doc:
    """One corpus document.

    Attributes:
        id: the corpus id (BEIR ``_id``).
        text: the body.
        title: an optional title, indexed with the body.
    """

    id: str
    text: str
    title: str = ""


@dataclass
class Benchmark:
    """A retrieval benchmark in memory.

    Attributes:
        name: a short label (the folder name for BEIR).
        corpus: ``{docid: Doc}`` in file order.
        queries: ``{qid: text}``, only the queries that have qrels.
        qrels: ``{qid: {docid: grade}}``; grade 0 means judged non-relevant.
        categories: optional ``{qid: category}`` for per-category slices.
    """

    name: str
    corpus: dict[str, Doc]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    categories: dict[str, str] = field(default_factory=dict)


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) from a JSON-lines file, plain or gzip."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"{path}:{number}: malformed JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise DatasetError(f"{path}:{number}: expected a JSON object per line")
            yield number, record


def _field(record: dict, key: str, path: Path, number: int) -> str:
    value = record.get(key)
    if value is None or (isinstance(value, str) and not value):
        raise DatasetError(f"{path}:{number}: missing {key!r}")
    return str(value)


def load_beir(folder: str | Path, split: str = "test") -> Benchmark:
    """Load a BEIR folder: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

    Only the queries with at least one qrels row in the split are kept.

    Args:
        folder: the dataset folder.
        split: the qrels split, e.g. ``"test"``, ``"dev"`` or ``"train"``.

    Returns:
        The benchmark, named after the folder.

    Raises:
        DatasetError: a missing file or split (the message lists the available splits), a
            malformed JSON line, a record without ``_id``, a qrels line with the wrong column count
            or a non-integer score, a qrels id absent from the corpus or queries, an empty split.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such dataset folder")
    corpus_path, queries_path = folder / "corpus.jsonl", folder / "queries.jsonl"
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for path in (corpus_path, queries_path):
        if not path.is_file():
            raise DatasetError(
                f"{path}: missing; a BEIR folder holds corpus.jsonl, queries.jsonl, qrels/"
            )
    if not qrels_path.is_file():
        splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise DatasetError(
            f"{qrels_path}: no split {split!r}; available splits: {', '.join(splits) or 'none'}"
        )
    corpus: dict[str, Doc] = {}
    for number, record in _jsonl(corpus_path):
        docid = _field(record, "_id", corpus_path, number)
        corpus[docid] = Doc(docid, str(record.get("text") or ""), str(record.get("title") or ""))
    all_queries = {
        _field(record, "_id", queries_path, number): str(record.get("text") or "")
        for number, record in _jsonl(queries_path)
    }
    qrels = _read_beir_qrels(qrels_path, corpus, all_queries)
    queries = {qid: all_queries[qid] for qid in all_queries if qid in qrels}
    return Benchmark(name=folder.name, corpus=corpus, queries=queries, qrels=qrels)


def _read_beir_qrels(
    path: Path, corpus: dict[str, Doc], queries: dict[str, str]
) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                # Tolerate space-separated files, but only when that yields three columns.
                parts = line.split()
            if number == 1 and parts[:1] == ["query-id"]:
                continue
            if len(parts) != 3:
                raise DatasetError(
                    f"{path}:{number}: expected 3 columns 'query-id corpus-id score', "
                    f"got {len(parts)}"
                )
            qid, docid, grade = (part.strip() for part in parts)
            try:
                value = int(grade)
            except ValueError:
                raise DatasetError(f"{path}:{number}: score {grade!r} is not an integer") from None
            if docid not in corpus:
                raise DatasetError(f"{path}:{number}: corpus-id {docid!r} is not in corpus.jsonl")
            if qid not in queries:
                raise DatasetError(f"{path}:{number}: query-id {qid!r} is not in queries.jsonl")
            qrels.setdefault(qid, {})[docid] = value
    if not qrels:
        raise DatasetError(f"{path}:1: the split has no qrels rows")
    return qrels


def write_beir(benchmark: Benchmark, folder: str | Path, *, split: str = "test") -> Path:
    """Write a benchmark in BEIR layout so that :func:`load_beir` reads it back.

    Args:
        benchmark: what to write.
        folder: the output folder, created if needed; existing files are replaced.
        split: the name of the qrels split.

    Returns:
        The folder.
    """
    folder = Path(folder)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for doc in benchmark.corpus.values():
            row = {"_id": doc.id, "title": doc.title, "text": doc.text}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for qid, text in benchmark.queries.items():
            handle.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    with (folder / "qrels" / f"{split}.tsv").open("w", encoding="utf-8") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for qid, docs in benchmark.qrels.items():
            for docid, grade in docs.items():
                handle.write(f"{qid}\t{docid}\t{grade}\n")
    return folder


# A period after these does not end a sentence.
_ABBREVIATIONS = {"e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "no."}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`'\"(])")


def first_sentence(doc: str) -> str:
    """The first sentence of a documentation comment, whitespace collapsed.

    The first paragraph is taken (up to a blank line or a tag line such as ``@param`` or an
    ``Args:`` section), then cut at the first sentence end (``.``, ``!`` or ``?`` followed by a
    capital or digit; not after ``e.g.``, ``i.e.`` and the like).

    Args:
        doc: the comment text with comment markers already removed.

    Returns:
        The sentence, or ``""`` for an empty comment.
    """
    lines = []
    for line in doc.strip().splitlines():
        stripped = line.strip()
        if not stripped and lines:
            break
        if stripped.startswith(("@", ":param", ":return", ":raises")) or re.match(
            r"^(Args|Arguments|Returns|Raises|Yields|Examples?|Parameters|Notes?):\s*$", stripped
        ):
            break
        if stripped:
            lines.append(stripped)
    paragraph = " ".join(" ".join(lines).split())
    for end in _SENTENCE_END.finditer(paragraph):
        words = paragraph[: end.start()].split()
        if words and words[-1].lower() not in _ABBREVIATIONS:
            return paragraph[: end.start()]
    return paragraph


def _csn_files(source: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.name.endswith((".jsonl", ".jsonl.gz")))
            if not files:
                raise InputError(f"{path}: no .jsonl or .jsonl.gz files inside")
            return files
        return [path]
    return [Path(p) for p in source]


def load_codesearchnet(
    source: str | Path | Iterable[str | Path], *, name: str = "codesearchnet"
) -> Benchmark:
    """Load CodeSearchNet-format JSONL (plain or ``.gz``) as a benchmark.

    Each row is a function: ``code`` (or ``original_string``), ``docstring``, ``func_name``,
    ``path``, ``language`` and optionally ``url``. The query is the first paragraph of the
    docstring (as CodeSearchNet does); the document is the code with a Python docstring removed
    (other languages keep the doc comment outside ``code`` already); qrels map each query to its
    own function with grade 1. Rows without a docstring are skipped.

    Args:
        source: a file, a folder of ``*.jsonl[.gz]`` files, or a list of files.
        name: the benchmark's label.

    Returns:
        The benchmark; ids are the ``url`` when present, else ``path:func_name``
        (with ``#2``, ``#3``... on repeats).

    Raises:
        DatasetError: a missing file, malformed JSON line, or a row without code.
        InputError: a folder without JSONL files.
    """
    from eval.miner import strip_python_docstring

    corpus: dict[str, Doc] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for path in _csn_files(source):
        if not path.is_file():
            raise DatasetError(f"{path}: no such file")
        for number, row in _jsonl(path):
            code = row.get("code") or row.get("original_string")
            if not code:
                raise DatasetError(f"{path}:{number}: row has neither 'code' nor 'original_string'")
            doc = str(row.get("docstring") or "")
            query = " ".join(doc.strip().split("\n\n")[0].split())
            if not query:
                continue
            if str(row.get("language", "")).lower() == "python":
                code = strip_python_docstring(code)
            base = str(
                row.get("url") or f"{row.get('path', path.name)}:{row.get('func_name', number)}"
            )
            base = base.replace(" ", "%20")
            docid, repeat = base, 1
            while docid in corpus:
                repeat += 1
                docid = f"{base}#{repeat}"
            corpus[docid] = Doc(docid, code, str(row.get("func_name") or ""))
            queries[docid] = query
            qrels[docid] = {docid: 1}
    if not qrels:
        raise DatasetError(f"{source}:1: no row with a docstring, so no query to evaluate")
    return Benchmark(name=name, corpus=corpus, queries=queries, qrels=qrels)
