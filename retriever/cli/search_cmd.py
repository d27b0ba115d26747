"""`retriever search QUERY [PATH]`: answer a query, building or refreshing the index first.

A tree with no index gets the fast tier (BM25, symbols, static vectors: about a second for a
typical repository); ``retriever index PATH --tier full`` adds the transformer's vectors.
Rendering (rich's Syntax, pygments) is imported only for the human table, so ``--json``
pays for neither.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import typer
from rich.style import Style
from rich.text import Text

import retriever
import retriever.api
from retriever.cli.common import err, out, progress_bar, silenced
from retriever.payload import SNIPPET_LINES, highlights, hit_records, search_payload, snippet
from retriever.ranking.calibration import CONFIDENT, check_min_score
from retriever.text_safety import json_text, printable

if TYPE_CHECKING:
    from rich.syntax import Syntax

# A reverse-video mark reads on any theme and on top of any syntax colour.
MATCH = Style(bold=True, reverse=True)
TAB_SIZE = 4


def search_command(
    query: str = typer.Argument(..., help="What to look for, in words or code."),
    path: Path | None = typer.Argument(
        None, help="Source tree; its index is built or refreshed first [.]."
    ),
    index: Path | None = typer.Option(None, "--index", help="Index directory."),
    k: int = typer.Option(10, "-k", "--top", help="Number of results."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid, dense or lexical."),
    globs: list[str] = typer.Option(
        [], "--path", metavar="GLOB",
        help="Only files matching this gitignore-style glob, repeatable: 'src/**/*.py', '*.go'.",
    ),
    languages: list[str] = typer.Option(
        [], "--language", metavar="NAME",
        help="Only chunks in this language, repeatable: python, go, ...",
    ),
    exclude: list[str] = typer.Option(
        [], "--exclude", metavar="CLASS",
        help="Leave out a path class, repeatable: test, example, benchmark, docs, generated, "
             "vendored.",
    ),
    min_score: float | None = typer.Option(
        None, "--min-score", metavar="X",
        help=f"Only hits whose relevance (0-1) is at least X; {CONFIDENT:.2f} keeps confident "
             "ones.",
    ),
    pipeline: str | None = typer.Option(
        None, "--pipeline", metavar="NAME", help="Ranking preset: code (default), code-files, "
        "plain."),
    rerank: str | None = typer.Option(
        None, "--rerank", metavar="NAME", help="Re-score the top hits with this reranker (a "
        "name or a folder)."),
    rerank_depth: int = typer.Option(
        20, "--rerank-depth", metavar="N", help="Candidates the reranker scores."),
    snippet_lines: int = typer.Option(
        SNIPPET_LINES, "--snippet-lines", metavar="N", help="Lines of each hit to show."),
    no_snippet: bool = typer.Option(False, "--no-snippet", help="Only the hits' title lines."),
    no_links: bool = typer.Option(
        False, "--no-links", help="No clickable file:// links, even on a terminal."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (schema in README)."),
    as_jsonl: bool = typer.Option(
        False, "--jsonl", help="Print one JSON object per hit per line (schema in README)."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Only the results: no progress bars, notes or warnings."),
) -> None:
    """Search an index. With a PATH (or no --index), the tree's index is refreshed first.

    A tree with no index gets the fast tier; `retriever index PATH --tier full` adds the
    transformer's vectors.
    """
    if snippet_lines < 1:
        raise retriever.InputError(
            f"--snippet-lines takes a positive number of lines, got {snippet_lines}; "
            "use --no-snippet to show none."
        )
    if as_json and as_jsonl:
        raise retriever.InputError("Choose one of --json and --jsonl.")
    check_min_score(min_score)  # before any indexing: a bad threshold fails at once
    machine = as_json or as_jsonl
    within = None
    with silenced(quiet):
        if index is not None and path is None:
            opened = retriever.open(index)
        else:
            target = (path or Path(".")).resolve()
            root = target
            if index is None and target.is_dir():
                # From a subfolder of an indexed tree: that index, scoped to the subfolder.
                root = retriever.api.find_root(target) or target
                within = target.relative_to(root).as_posix() if root != target else None
            with progress_bar(not (quiet or machine)) as progress:
                opened = retriever.index(root, index_dir=index, progress=progress, stale_ok=True,
                                         default_tier=retriever.api.SEARCH_TIER)
        if opened.stale and not quiet:
            err.print(Text(printable(
                f"Note: another process is refreshing the index at {opened.directory}; these "
                "results come from the live generation, which may be behind the tree."
            )))
        hits = opened.search(query, k=k, mode=mode, within=within, paths=globs or None,
                             languages=languages or None, exclude=exclude or None,
                             pipeline=pipeline, rerank=rerank, rerank_depth=rerank_depth,
                             min_score=min_score)
    payload = search_payload(opened, query, hits, mode=mode, k=k)
    hint = retriever.api.tier_hint(opened)
    if hint is not None:
        payload["hint"] = hint  # an added field: schema version 1 allows those
    if as_json:
        typer.echo(json_text(payload))
    elif as_jsonl:
        for record in hit_records(payload):
            typer.echo(json_text(record, indent=None))
    else:
        links = not no_links and _is_terminal(sys.stdout)
        _render(payload, opened.root, None if no_snippet else snippet_lines, links, min_score)
        if hint is not None and not quiet:
            sys.stdout.flush()  # after the answer, also when both streams are one terminal
            err.print(Text(printable(hint)), soft_wrap=True)


def _render(payload: dict, root: Path | None, lines: int | None, links: bool,
            min_score: float | None = None) -> None:
    """Each hit as a title line that starts with ``path:line`` (which terminals and editors
    open on click), then the lines that best match the query, its words marked. An answer
    without a confident match says so first, and its low hits are marked ``low``.

    Everything indexed is untrusted text: it goes through ``printable`` so that no
    escape sequence in a file name or its content reaches the terminal; marks and links are
    rich styles, whose escapes rich writes itself around that text.
    """
    query = payload["query"]
    if not payload["hits"]:
        floor = "" if min_score is None else f" with relevance >= {min_score:g}"
        out.print(Text(f'No results{floor} for "{printable(query)}".'))
        return
    if payload.get("confident") is False:
        best = max(hit["relevance"] for hit in payload["hits"])
        out.print(Text(f'No confident match for "{printable(query)}" (best relevance '
                       f"{best:.2f}, below {CONFIDENT:.2f}); the hits below are low.",
                       style="yellow"), soft_wrap=True)
    cwd = Path.cwd().resolve()
    for number, hit in enumerate(payload["hits"]):
        shown, uri = _location(hit["path"], root, cwd)
        title = Text.assemble(
            (printable(f"{shown}:{hit['start_line']}"),
             Style(bold=True, color="cyan", link=uri if links else None)),
            "  ", (printable(hit["symbol"] or ""), "magenta"),
            "  ", (f"lines {hit['start_line']}-{hit['end_line']}", "dim"),
            "  ", _relevance(hit.get("relevance")),
            "  ", (f"score {hit['score']:.3f}", "dim"),
        )
        if number and lines is not None:
            out.print()
        out.print(title, soft_wrap=True)  # never folded: a cut path is not clickable
        if lines is not None:
            out.print(_snippet(hit, query, lines))


def _relevance(value: float | None) -> Text:
    """``relevance 0.82``, or ``relevance 0.12 low`` under the confidence threshold."""
    if value is None:
        return Text("")
    if value < CONFIDENT:
        return Text.assemble((f"relevance {value:.2f}", "dim"), " ", ("low", "yellow"))
    return Text(f"relevance {value:.2f}", style="green")


def _snippet(hit: dict, query: str, lines: int) -> Syntax:
    from rich.syntax import Syntax  # pulls in pygments: only the table needs it

    first, rows = snippet(hit, query, lines)
    # Tabs expanded here, as Syntax would, so that the marks' offsets are the shown columns.
    rows = [printable(row).expandtabs(TAB_SIZE) for row in rows]
    language = hit["language"]
    lexer = language if language not in ("text", "document") else "text"
    code = Syntax("\n".join(rows), lexer, line_numbers=True, start_line=first,
                  word_wrap=True, theme="ansi_dark", tab_size=TAB_SIZE)
    for number, row in enumerate(rows, 1):  # stylize_range counts the code's own lines
        for start, end in highlights(row, query):
            code.stylize_range(MATCH, (number, start), (number, end))
    return code


def _location(path: str, root: Path | None, cwd: Path) -> tuple[str, str | None]:
    """The hit's file as this shell can open it (relative to the working folder when under
    it, else absolute) and its ``file://`` URI; a corpus document id is shown as is."""
    if root is None:
        return path, None
    file = root / path
    try:
        shown = file.relative_to(cwd).as_posix()
    except ValueError:
        shown = str(file)
    # Percent-encoded bytes: pure ASCII whatever the name holds, so no name can end the link.
    return shown, "file://" + quote(os.fsencode(file))


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False
