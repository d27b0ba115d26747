"""What role a file plays in its repository, judged from its relative path alone.

:func:`path_class` names one of :data:`PATH_CLASSES`: ``"test"``, ``"example"``,
``"benchmark"``, ``"docs"``, ``"generated"``, ``"vendored"`` or ``"source"``. It is pure string
work (no I/O, cached), so ranking priors can call it for every hit. The evidence is tables, not
code: folder names, folder-name suffixes, file names and file-name patterns across languages.

When several kinds of evidence apply, the first class in this order wins:

1. ``generated``: protobuf/gRPC output (``*_pb2.py``, ``*.pb.go``), ``*.g.dart``, lockfiles,
   minified bundles, ``__generated__/`` folders. Nobody wrote these by hand.
2. ``vendored``: ``vendor/``, ``third_party/``, ``node_modules/``, ``deps/``, ``_vendor/``...
   Somebody else's code, whatever it looks like inside (tests of a vendored library included).
3. ``test``: ``tests/``, ``__tests__/``, ``spec/``, ``testdata/``, ``src/test/java``,
   ``FooTests/`` (Swift, C#), and file names such as ``test_*.py``, ``*_test.go``,
   ``*.spec.ts``, ``*_spec.rb``, ``FooTest.java``, ``conftest.py``, ``*.bats``.
4. ``benchmark``: ``benchmarks/``, ``benches/`` (Rust), ``jmh/``, ``bench_*.py``, ``*.bench.ts``.
5. ``example``: ``examples/``, ``samples/``, ``demo/``, ``docs_src/``, ``example_*.py``.
6. ``docs``: ``docs/``, ``documentation/``, prose files (``.md``, ``.rst``, ``.adoc``),
   ``README``, ``LICENSE``, ``CHANGELOG`` and their kin.
7. ``source``: everything else.

Test fixtures under ``tests/`` stay tests even when they are Markdown, and an example's README
is part of the example: the folder says more about why a file exists than its extension does.
"""

from __future__ import annotations

import functools
import re
from enum import Enum

__all__ = ["PATH_CLASSES", "PathClass", "is_test_path", "path_class"]


class PathClass(str, Enum):
    """The classes :func:`path_class` returns; each member equals its string value."""

    # As StrEnum (Python 3.11+) does; this package supports 3.10.
    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    TEST = "test"
    EXAMPLE = "example"
    BENCHMARK = "benchmark"
    DOCS = "docs"
    GENERATED = "generated"
    VENDORED = "vendored"
    SOURCE = "source"


#: Every class, as plain strings, in no particular precedence.
PATH_CLASSES = tuple(c.value for c in PathClass)

# --- folders (compared lowercased, except the CamelCase suffixes) --------------------------

_FOLDERS: dict[PathClass, frozenset[str]] = {
    PathClass.GENERATED: frozenset({"__generated__", "generated", "autogen", "_generated"}),
    PathClass.VENDORED: frozenset({
        "vendor", "vendors", "vendored", "_vendor", "third_party", "third-party", "thirdparty",
        "3rdparty", "3rd_party", "3rd-party", "node_modules", "bower_components",
        "site-packages", "deps", "extern", "external", "externals", "pods", "carthage",
        "jspm_packages",
    }),
    PathClass.TEST: frozenset({
        "test", "tests", "testing", "__tests__", "__test__", "spec", "specs", "testdata",
        "test_data", "test-data", "fixtures", "__fixtures__", "__mocks__", "__snapshots__",
        "e2e", "cypress", "unittest", "unittests", "unit_tests", "unit-tests",
        "integration_tests", "integration-tests", "test_utils", "testutils", "testutil",
        "androidtest", "testfixtures", "t",
    }),
    PathClass.BENCHMARK: frozenset({
        "bench", "benches", "benchmark", "benchmarks", "benchmarking", "jmh", "asv_bench",
    }),
    PathClass.EXAMPLE: frozenset({
        "example", "examples", "_examples", "sample", "samples", "demo", "demos", "docs_src",
        "tutorial", "tutorials", "cookbook", "playground", "showcase",
    }),
    PathClass.DOCS: frozenset({
        "doc", "docs", "_docs", "documentation", "man", "manual", "wiki", "website",
        "javadoc", "apidocs", "api-docs",
    }),
}
# Folder names ending this way, case-sensitively: ``AlamofireTests``, ``Dapper.Tests``,
# ``MessagePack.Tests``, ``ktor-server-tests``, ``Benchmarks.Runner`` is not (it is a prefix).
_FOLDER_SUFFIXES: dict[PathClass, re.Pattern[str]] = {
    PathClass.TEST: re.compile(r"(?:[a-z0-9]|[._-])(?:Tests?|Specs?|UnitTests|IntegrationTests)$"
                               r"|[._-](?:tests?|specs?)$"),
    PathClass.BENCHMARK: re.compile(r"(?:[a-z0-9]|[._-])Benchmarks?$|[._-]bench(?:marks?)?$"),
    PathClass.EXAMPLE: re.compile(r"(?:[a-z0-9]|[._-])(?:Examples?|Samples?)$"
                                  r"|[._-](?:examples?|samples?)$"),
}

# --- file names --------------------------------------------------------------------------

_FILE_NAMES: dict[PathClass, frozenset[str]] = {
    PathClass.GENERATED: frozenset({
        "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "cargo.lock", "poetry.lock",
        "pipfile.lock", "composer.lock", "gemfile.lock", "go.sum", "uv.lock", "pdm.lock",
        "bun.lockb", "mix.lock", "pubspec.lock", "podfile.lock", "flake.lock",
        "packages.lock.json", "npm-shrinkwrap.json",
    }),
    PathClass.TEST: frozenset({"conftest.py", "tests.py", "test.py", "pytest.ini", "tox.ini",
                               "jest.config.js", "jest.config.ts", "karma.conf.js"}),
    PathClass.DOCS: frozenset({
        "readme", "license", "licence", "copying", "notice", "authors", "contributors",
        "changelog", "changes", "history", "news", "contributing", "code_of_conduct",
        "security", "maintainers", "codeowners", "mkdocs.yml",
    }),
}
# Stems (the name before any extension) of prose files that carry an extension elsewhere:
# README.txt, LICENSE.md, CHANGES.rst...
_PROSE_STEMS = _FILE_NAMES[PathClass.DOCS]

# Case matters for the CamelCase conventions (FooTest.java, not latest.java); generated and
# prose names are matched ignoring case (Main.Designer.cs, README.MD).
_FILE_PATTERNS: dict[PathClass, re.Pattern[str]] = {
    PathClass.GENERATED: re.compile(
        r"(?:_pb2(?:_grpc)?\.pyi?|\.pb\.(?:go|cc|h|swift|dart)|\.pb\.gw\.go|_grpc\.pb\.go"
        r"|\.pb(?:js)?\.(?:js|ts)|_pb\.(?:js|ts|d\.ts)|_generated\.\w+|\.generated\.\w+"
        r"|\.g\.(?:dart|cs)|\.freezed\.dart|\.designer\.cs|zz_generated[\w.]*\.go"
        r"|\.gen\.(?:go|ts|js)|[.-]min\.(?:js|css|mjs)|\.bundle\.js|\.map)$",
        re.IGNORECASE,
    ),
    PathClass.TEST: re.compile(
        # Python, Ruby, C and C++: test_foo.py, test_helper.rb, test_parser.c
        r"^test_\w[\w.-]*\.(?:py|rb|c|cc|cpp|h|zig)$"
        # Go, Python, Ruby, Elixir, C/C++, Dart, Zig, Clojure, Erlang: foo_test.go, foo_test.exs
        r"|_(?:test|tests|unittest|spec)\.(?:go|py|rb|exs|ex|c|cc|cpp|cxx|dart|zig|clj|cljs"
        r"|erl|lua|rs|swift|kt|php|nim|ml|hs|sh)$"
        # JavaScript and TypeScript: foo.test.ts, foo.spec.jsx, foo.e2e-spec.ts, foo.cy.ts
        r"|\.(?:test|spec|e2e|e2e-spec|cy|test-d)\.(?:[cm]?[jt]sx?|vue|svelte)$"
        # Java, Kotlin, Scala, C#, Swift, PHP, Groovy, Haskell: FooTest.java, FooSpec.scala
        r"|[a-z0-9](?:Test|Tests|TestCase|Spec|Specs|IT|Suite)\.(?:java|kt|kts|scala|cs|fs"
        r"|swift|php|groovy|hs|m|mm)$"
        r"|^Test[A-Z]\w*\.(?:java|kt|scala|cs|php|swift|groovy)$"
        # Shell: Bats test files
        r"|\.bats$"
    ),
    PathClass.BENCHMARK: re.compile(
        r"^bench(?:mark)?s?_\w[\w.-]*\.\w+$"
        r"|_bench(?:mark)?s?\.(?:go|py|rs|c|cc|cpp|zig|exs|rb)$"
        r"|\.bench\.(?:[cm]?[jt]sx?)$"
        r"|[a-z0-9]Benchmarks?\.(?:java|kt|scala|cs|swift)$"
    ),
    PathClass.EXAMPLE: re.compile(
        r"^(?:example|demo|sample)s?_\w[\w.-]*\.\w+$"
        r"|_(?:example|demo|sample)s?\.\w+$"
        r"|\.(?:example|sample)(?:\.\w+)?$"
    ),
    PathClass.DOCS: re.compile(
        r"\.(?:md|mdx|markdown|rst|adoc|asciidoc|rdoc|pod|texi|texinfo|man|[1-9])$",
        re.IGNORECASE,
    ),
}

# Which class wins when several apply (see the module docstring).
_PRECEDENCE = (
    PathClass.GENERATED,
    PathClass.VENDORED,
    PathClass.TEST,
    PathClass.BENCHMARK,
    PathClass.EXAMPLE,
    PathClass.DOCS,
)


@functools.lru_cache(maxsize=1 << 14)  # folder names repeat across a tree's paths
def _folder_classes(folder: str) -> frozenset[PathClass]:
    found = {cls for cls, names in _FOLDERS.items() if folder.lower() in names}
    found.update(cls for cls, pattern in _FOLDER_SUFFIXES.items() if pattern.search(folder))
    return frozenset(found)


def _file_classes(name: str) -> set[PathClass]:
    lowered = name.lower()
    found = {cls for cls, names in _FILE_NAMES.items() if lowered in names}
    found.update(cls for cls, pattern in _FILE_PATTERNS.items() if pattern.search(name))
    stem = lowered.split(".", 1)[0]
    if stem in _PROSE_STEMS and lowered.endswith((".txt", ".md", ".rst", ".adoc")):
        found.add(PathClass.DOCS)
    return found


def _parts(relative_path: str) -> list[str]:
    path = relative_path.replace("\\", "/")
    return [part for part in path.split("/") if part and part != "."]


@functools.lru_cache(maxsize=1 << 16)
def path_class(relative_path: str) -> PathClass:
    """Classify a file by its path relative to the repository root.

    Args:
        relative_path: ``/`` (or ``\\``) separated, relative to the indexed root, e.g.
            ``"src/test/java/com/acme/ParserTest.java"``. Only names are read; the file
            need not exist.

    Returns:
        A :class:`PathClass` (a ``str``: ``path_class(p) == "test"`` works), one of
        :data:`PATH_CLASSES`; ``"source"`` when no rule applies or the path is empty.
    """
    parts = _parts(relative_path)
    if not parts:
        return PathClass.SOURCE
    found = _file_classes(parts[-1])
    for folder in parts[:-1]:
        found |= _folder_classes(folder)
    for cls in _PRECEDENCE:
        if cls in found:
            return cls
    return PathClass.SOURCE


def is_test_path(relative_path: str) -> bool:
    """Whether :func:`path_class` calls this path a test (fixtures and test data included)."""
    return path_class(relative_path) is PathClass.TEST
