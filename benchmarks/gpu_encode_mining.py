"""The chunks ``gpu_encode.py --mine N`` encodes: the Python sources of the installed packages
and the standard library, top-level functions and classes cut at 1,500 characters as the cAST
chunker cuts them, with its ``path :: symbol`` header, skipping every package a benchmark
indexes (``encoders/train/exclusions.py``)."""

from __future__ import annotations

import ast
import os
import sysconfig
from multiprocessing import Pool
from pathlib import Path

from encoders.train.exclusions import excluded_name

__all__ = ["MAX_CHARS", "mine"]

MAX_CHARS = 1500


def _source_roots() -> list[Path]:
    paths = sysconfig.get_paths()
    roots = {Path(paths["stdlib"]), Path(paths["purelib"]), Path(paths["platlib"])}
    return sorted(root for root in roots if root.is_dir())


def _python_files(roots: list[Path]) -> list[tuple[str, str]]:
    """(root, relative path) of every .py file outside the excluded packages, sorted."""
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            # Another root's packages (site-packages under the stdlib) are walked from there.
            dirnames[:] = sorted(d for d in dirnames
                                 if d not in ("site-packages", "dist-packages", "__pycache__"))
            for name in sorted(filenames):
                if not name.endswith(".py"):
                    continue
                relative = os.path.relpath(os.path.join(dirpath, name), root)
                if excluded_name(relative) is None:
                    found.append((str(root), relative))
    return found


def _chunks_of(job: tuple[str, str]) -> list[str]:
    """Embedding texts of one file: each top-level definition (a class over the budget by
    its methods), other statements in runs, any piece over the budget cut by lines."""
    root, relative = job
    try:
        source = Path(root, relative).read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (OSError, UnicodeError, SyntaxError, ValueError, RecursionError):
        return []
    lines = source.splitlines()
    texts: list[str] = []

    def emit(symbol: str | None, start: int, end: int) -> None:
        piece, size = [], 0
        header = relative if not symbol else f"{relative} :: {symbol}"
        for line in lines[start - 1 : end]:
            if piece and size + len(line) > MAX_CHARS:
                texts.append(header + "\n" + "\n".join(piece))
                piece, size = [], 0
            piece.append(line)
            size += len(line.strip())
        if any(p.strip() for p in piece):
            texts.append(header + "\n" + "\n".join(piece))

    def chars(start: int, end: int) -> int:
        return sum(len(line.strip()) for line in lines[start - 1 : end])

    def visit(nodes, scope: str | None) -> None:
        # As cAST does: small neighbours merge up to the budget, a class over it is cut by
        # its members, anything else over it by lines.
        group: list[tuple[int, int, str | None]] = []
        size = 0

        def flush() -> None:
            if group:
                emit(group[0][2] if len(group) == 1 else scope, group[0][0], group[-1][1])
                group.clear()

        for node in nodes:
            definition = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            name = (f"{scope}.{node.name}" if scope else node.name) if definition else scope
            decorators = getattr(node, "decorator_list", [])
            start = min([d.lineno for d in decorators] + [node.lineno])
            weight = chars(start, node.end_lineno)
            if weight > MAX_CHARS:
                flush()
                size = 0
                if isinstance(node, ast.ClassDef):
                    visit(node.body, name)
                else:
                    emit(name, start, node.end_lineno)
                continue
            if size + weight > MAX_CHARS:
                flush()
                size = 0
            group.append((start, node.end_lineno, name))
            size += weight
        flush()

    visit(tree.body, None)
    return texts


def mine(limit: int) -> list[str]:
    files = _python_files(_source_roots())
    texts: list[str] = []
    with Pool(min(16, os.cpu_count() or 1)) as pool:
        for chunks in pool.imap(_chunks_of, files, chunksize=64):
            texts.extend(chunks)
            if len(texts) >= limit:
                break
    return texts[:limit]
