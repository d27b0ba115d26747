"""The dependency rules of DESIGN.md, enforced over every module's imports (top-level and
inside functions alike, parsed, not imported)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("chunking", "encoders", "indexing", "retriever", "eval")

# Package -> project modules it may import besides its own. "retriever.errors" is the one
# module of the facade the lower layers may raise from; indexing may use chunking's Chunk.
ALLOWED = {
    "chunking": {"retriever.errors"},
    "encoders": {"retriever.errors"},
    "indexing": {"retriever.errors", "chunking"},
    "retriever": {"chunking", "encoders", "indexing"},
    "eval": {"chunking", "encoders", "indexing", "retriever"},
}
# retriever may reach eval only from its command line (the `retriever eval` command).
RETRIEVER_MAY_IMPORT_EVAL = ("retriever/cli/",)
# What indexing may take from chunking: the value type and nothing else.
INDEXING_FROM_CHUNKING = {"Chunk"}


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _imports(path: Path) -> list[tuple[str, set[str], int]]:
    """(module, names imported from it, line) for every project import in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, set(), node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, {alias.name for alias in node.names}, node.lineno))
    return [(m, names, line) for m, names, line in found if m.split(".")[0] in PACKAGES]


def _allowed(package: str, module: str) -> bool:
    if module.split(".")[0] == package:
        return True
    return any(module == rule or module.startswith(rule + ".") for rule in ALLOWED[package])


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_follow_the_dependency_table(path: Path) -> None:
    relative = path.relative_to(ROOT).as_posix()
    package = relative.split("/")[0]
    broken = []
    for module, names, line in _imports(path):
        top = module.split(".")[0]
        if package == "retriever" and top == "eval":
            if not relative.startswith(RETRIEVER_MAY_IMPORT_EVAL):
                broken.append(f"{relative}:{line} imports {module} outside the CLI")
            continue
        if not _allowed(package, module):
            broken.append(f"{relative}:{line} imports {module}")
        elif package == "indexing" and top == "chunking" and not (
            module == "chunking" and names <= INDEXING_FROM_CHUNKING
        ):
            broken.append(f"{relative}:{line} takes {sorted(names) or module} from chunking")
    assert not broken, "\n".join(broken)


def test_the_rules_see_every_package() -> None:
    # A rule that matched no file would pass vacuously.
    seen = {p.relative_to(ROOT).parts[0] for p in _modules()}
    assert seen == set(PACKAGES)
    assert any(_imports(p) for p in (ROOT / "retriever").rglob("*.py"))


def test_a_forbidden_import_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from retriever.api import index\n")
    assert _imports(bad) == [("retriever.api", {"index"}, 2)]
    assert not _allowed("indexing", "retriever.api")
    assert _allowed("indexing", "retriever.errors")
