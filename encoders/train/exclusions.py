"""What training data must never come from: the code of every benchmark we report on.

A model trained on a benchmark's own code would score well on it for the wrong reason. The
semble benchmark indexes 63 repositories (``benchmarks/semble/repos.json`` of the shared data);
several of them are also installed as packages (``psf/requests`` installs as ``requests``,
``pallets/click`` as ``click``), and package managers vendor some of them inside others
(``pip/_vendor/requests``, ``node_modules/axios``). So the rule works on names: a source file
is excluded when any folder on its path (or its own module name) is a name a benchmark
repository installs as. Over-excluding an unrelated folder of the same name costs a little
data; under-excluding would leak a benchmark.

The shared data README names further corpora that are benchmarks too (httpx, jinja2, rich,
axios, cobra, url, mobx, cordova-android, kramdown, zopfli), and ``benchmarks/`` mines query
sets from installed packages (bm25s, sentence_transformers): those are excluded as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePath

from retriever.errors import InputError

__all__ = [
    "BENCHMARK_REPOSITORIES",
    "OTHER_BENCHMARK_PACKAGES",
    "ExcludedSourceError",
    "check_sources",
    "excluded_name",
    "excluded_names",
    "excluded_package",
    "excluded_url",
]

# semble benchmark repository (its repos.json "name") -> the names its code installs or is
# vendored as: Python import names, npm/crate/gem/Debian package names, Go module paths' last
# parts. A test checks that every repository of repos.json has an entry here.
BENCHMARK_REPOSITORIES: dict[str, tuple[str, ...]] = {
    "aiohttp": ("aiohttp",),
    "fastapi": ("fastapi",),
    "flask": ("flask",),
    "httpx": ("httpx", "httpx2", "httpcore", "httpcore2"),
    "model2vec": ("model2vec",),
    "pydantic": ("pydantic", "pydantic_core", "pydantic-core"),
    "requests": ("requests",),
    "starlette": ("starlette",),
    "click": ("click",),
    "axios": ("axios",),
    "express": ("express",),
    "redux": ("redux", "@reduxjs"),
    "gin": ("gin", "gin-gonic", "golang-github-gin-gonic-gin-dev"),
    "cobra": ("cobra", "golang-github-spf13-cobra-dev"),
    "chi": ("chi", "go-chi", "golang-github-go-chi-chi-dev"),
    "gson": ("gson", "libgoogle-gson-java"),
    "commons-lang": ("commons-lang", "commons-lang3", "lang3", "libcommons-lang3-java"),
    "jackson-databind": ("jackson-databind", "databind", "libjackson2-databind-java"),
    "guzzle": ("guzzle", "guzzlehttp", "php-guzzlehttp-guzzle"),
    "monolog": ("monolog", "php-monolog"),
    "laravel-framework": ("laravel", "illuminate", "laravel-framework"),
    "sinatra": ("sinatra", "ruby-sinatra"),
    "rack": ("rack", "ruby-rack"),
    "rails": ("rails", "railties", "ruby-rails", "ruby-railties"),
    "tokio": ("tokio", "librust-tokio-dev"),
    "trpc": ("trpc", "@trpc"),
    "messagepack-csharp": ("messagepack", "messagepack-csharp"),
    "ktor": ("ktor",),
    "cats": ("cats",),
    "alamofire": ("alamofire",),
    "serde": ("serde", "serde_derive", "serde-derive", "librust-serde-dev"),
    "zod": ("zod",),
    "nlohmann-json": ("nlohmann", "nlohmann-json", "nlohmann-json3-dev"),
    "phoenix": ("phoenix",),
    "axum": ("axum", "librust-axum-dev"),
    "vitest": ("vitest", "@vitest"),
    "newtonsoft-json": ("newtonsoft", "newtonsoft.json", "newtonsoft-json"),
    "dapper": ("dapper",),
    "kotlinx-coroutines": ("kotlinx-coroutines", "kotlinx.coroutines", "coroutines"),
    "exposed": ("exposed",),
    "circe": ("circe",),
    "http4s": ("http4s",),
    "vapor": ("vapor",),
    "snapkit": ("snapkit",),
    "plug": ("plug",),
    "ecto": ("ecto",),
    "abseil-cpp": ("abseil", "absl", "abseil-cpp", "libabsl-dev"),
    "fmtlib": ("fmt", "fmtlib", "libfmt-dev"),
    "curl": ("curl", "libcurl", "libcurl4-openssl-dev"),
    "redis": ("redis",),
    "libuv": ("libuv", "uv", "libuv1-dev"),
    "bats-core": ("bats", "bats-core"),
    "aeson": ("aeson", "libghc-aeson-dev"),
    "telescope.nvim": ("telescope", "telescope.nvim"),
    "lazy.nvim": ("lazy", "lazy.nvim"),
    "zig": ("zig",),
    "nvm": ("nvm",),
    "bash-it": ("bash-it", "bash_it"),
    "pandoc": ("pandoc",),
    "xmonad": ("xmonad",),
    "mini.nvim": ("mini", "mini.nvim"),
    "zls": ("zls",),
    "zig-clap": ("clap", "zig-clap"),
}

# Benchmarks beyond semble: the shared data README's list, and the packages benchmarks/
# mines query sets from (benchmarks/mine_packages.py; RESULTS.md reports them).
OTHER_BENCHMARK_PACKAGES: tuple[str, ...] = (
    "httpx", "jinja2", "rich", "axios", "cobra", "url", "librust-url-dev", "mobx",
    "cordova-android", "kramdown", "ruby-kramdown", "zopfli",
    "bm25s", "sentence_transformers", "sentence-transformers",
)


# Where the benchmark corpora live upstream ("owner/name" of their repositories): a Debian source
# package's Homepage and Vcs-* fields, or an npm package's repository, point at these. A test
# checks that every URL of repos.json is here. Compared case-insensitively, on any host, so a
# mirror (salsa.debian.org/java-team/gson) is caught by its name too (see excluded_url).
BENCHMARK_UPSTREAMS: tuple[str, ...] = (
    "aio-libs/aiohttp", "fastapi/fastapi", "pallets/flask", "encode/httpx", "MinishLab/model2vec",
    "pydantic/pydantic", "psf/requests", "encode/starlette", "axios/axios", "expressjs/express",
    "reduxjs/redux", "gin-gonic/gin", "spf13/cobra", "go-chi/chi", "google/gson",
    "apache/commons-lang", "FasterXML/jackson-databind", "guzzle/guzzle", "Seldaek/monolog",
    "laravel/framework", "sinatra/sinatra", "rack/rack", "rails/rails", "tokio-rs/tokio",
    "trpc/trpc", "neuecc/MessagePack-CSharp", "ktorio/ktor", "typelevel/cats",
    "Alamofire/Alamofire", "pallets/click", "serde-rs/serde", "colinhacks/zod", "nlohmann/json",
    "phoenixframework/phoenix", "tokio-rs/axum", "vitest-dev/vitest", "JamesNK/Newtonsoft.Json",
    "DapperLib/Dapper", "Kotlin/kotlinx.coroutines", "JetBrains/Exposed", "circe/circe",
    "http4s/http4s", "vapor/vapor", "SnapKit/SnapKit", "elixir-plug/plug", "elixir-ecto/ecto",
    "abseil/abseil-cpp", "fmtlib/fmt", "curl/curl", "redis/redis", "libuv/libuv",
    "bats-core/bats-core", "haskell/aeson", "nvim-telescope/telescope.nvim", "folke/lazy.nvim",
    "ziglang/zig", "nvm-sh/nvm", "Bash-it/bash-it", "jgm/pandoc", "xmonad/xmonad",
    "echasnovski/mini.nvim", "zigtools/zls", "Hejsil/zig-clap",
    # the shared data README's other corpora
    "pallets/jinja", "Textualize/rich", "servo/rust-url", "mobxjs/mobx", "apache/cordova-android",
    "gettalong/kramdown", "google/zopfli",
)
_URL_PATH = re.compile(r"^(?:[a-z+]+://|git@)?(?:[^/@]+@)?([^/:]+)[/:](.*)$", re.I)


# Folders that hold packages side by side, where a single file can be a whole package.
_CONTAINERS = frozenset({
    "site_packages", "dist_packages", "_vendor", "vendor", "vendored", "third_party",
    "node_modules", "lib", "src",
})


# A folder named for a release of a package (Debian's cargo registry ``tokio-1.38.0``,
# rubygems' ``rack-2.2.4``): the name before the version counts too.
_VERSIONED = re.compile(r"^(.+?)[-_]v?\d+(?:\.\d+)*(?:[-+.~][\w.+~-]*)?$")
# Words of a package name: ``librust-tokio-util-dev`` is tokio's own repository
# (tokio-util lives in it), ``@reduxjs/toolkit`` is redux's.
_WORDS = re.compile(r"[-_.@/+]+")


def _normal(name: str) -> str:
    # Python spells distribution names with "-" and import names with "_"; compare both alike.
    return name.strip().lower().replace("-", "_")


def excluded_names() -> frozenset[str]:
    """Every excluded name, lowercased with ``-`` as ``_``."""
    names = {name for names in BENCHMARK_REPOSITORIES.values() for name in names}
    names.update(BENCHMARK_REPOSITORIES)
    names.update(OTHER_BENCHMARK_PACKAGES)
    return frozenset(_normal(name) for name in names)


def excluded_name(path: str | PurePath) -> str | None:
    """The excluded name a source path lies under, or None where it is free to use.

    Every folder on the path counts, so vendored copies are caught too, and a file's own name
    without its suffix where the file can be a whole package (``_vendor/six.py``).

    Args:
        path: a file path, absolute or relative, with ``/`` or the platform's separators.
    """
    names = excluded_names()
    parts = PurePath(path).parts
    for index, part in enumerate(parts):
        candidates = {_normal(part)}
        versioned = _VERSIONED.match(part)
        if versioned:
            candidates.add(_normal(versioned.group(1)))
        # A module file counts by its name only where a whole package can be one file: at the
        # top, or straight inside a folder of packages (``_vendor/six.py``), not deep inside a
        # package (``urllib3/util/url.py`` is no copy of the url crate).
        top = index == 0 or _normal(parts[index - 1]) in _CONTAINERS
        if index == len(parts) - 1 and "." in part and top:
            candidates.add(_normal(part.rsplit(".", 1)[0]))
        hit = candidates & names
        if hit:
            return hit.pop()
    return None


def excluded_package(name: str) -> str | None:
    """The excluded name a package's name contains, or None where the package is free to use.

    Stricter than :func:`excluded_name` on purpose: a package is refused when its whole name or
    any word of it is excluded (``librust-tokio-util-dev``, ``golang-github-spf13-cobra-dev``,
    ``@trpc/server``, ``mobx-state-tree``), because the repositories of the benchmark hold more
    packages than their main one, and a few unrelated packages lost cost little.

    Args:
        name: an npm, Debian, crate or gem package name.
    """
    names = excluded_names()
    whole = _normal(name)
    if whole in names:
        return whole
    for word in _WORDS.split(name.lower()):
        if word and _normal(word) in names:
            return _normal(word)
    return None


def excluded_url(url: str) -> str | None:
    """The benchmark a repository or project URL points at, or None where it is free to use.

    A URL is refused when its ``owner/name`` is a benchmark's upstream (:data:`BENCHMARK_UPSTREAMS`,
    any host) or when its last path part is an excluded package name by
    :func:`excluded_package` (``salsa.debian.org/java-team/gson.git``,
    ``github.com/someone/bats-core-fork``). Debian's ``Vcs-Git`` may carry `` -b BRANCH``
    and ``Vcs-Browser`` a ``/tree/...`` tail: both are ignored.

    Args:
        url: a Homepage, Vcs-Git, Vcs-Browser or npm repository URL; empty gives None.
    """
    url = url.strip().split()[0] if url.strip() else ""
    match = _URL_PATH.match(url)
    if not match:
        return None
    full = [p.removesuffix(".git") for p in match.group(2).split("?")[0].split("/") if p]
    parts = full
    for marker in ("tree", "blob", "-", "src"):  # browser views of a branch or a file
        if marker in parts[2:]:
            parts = parts[: parts.index(marker, 2)]
    upstreams = {u.lower() for u in BENCHMARK_UPSTREAMS}
    for first in range(len(parts) - 1):
        pair = f"{parts[first]}/{parts[first + 1]}".lower()
        if pair in upstreams:
            return pair
    # The repository's own name, and the folder a view points into (a team repository's
    # ``.../tree/master/p/haskell-aeson`` is the aeson package).
    for name in dict.fromkeys(p[-1] for p in (parts, full) if p):
        hit = excluded_package(name)
        if hit is not None:
            return hit
    return None


class ExcludedSourceError(InputError):
    """Training data that came from a benchmark's code."""


def check_sources(sources: Iterable[str]) -> None:
    """Refuse data whose recorded sources include a benchmark's code.

    Args:
        sources: package names or source paths, as a dataset manifest records them.

    Raises:
        ExcludedSourceError: naming the first offending source and the benchmark name.
    """
    for source in sources:
        hit = excluded_name(source)
        if hit is not None:
            raise ExcludedSourceError(
                f"The training data includes {source!r}, which is benchmark code ({hit!r} is "
                "on the exclusion list in encoders/train/exclusions.py). Mine the data again "
                "without it: `python -m encoders.train.data mine` skips excluded packages."
            )
