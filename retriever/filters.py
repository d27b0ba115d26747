"""Which chunks a search may return: folders, path globs, languages, excluded path classes.

A filter becomes a boolean mask over the index's rows once per search, and each first stage
answers only from allowed rows, asking for deeper lists until it has ``k`` of them (see
``retriever.reader``): a filter applied after the top k would return too few results.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pathspec

from chunking.languages import EXTENSIONS, TEXT_LANGUAGES
from chunking.paths import PATH_CLASSES, path_class
from retriever.errors import InputError

__all__ = ["Filter", "KNOWN_LANGUAGES"]

KNOWN_LANGUAGES = frozenset(EXTENSIONS.values()) | TEXT_LANGUAGES | {"document"}


@dataclass(frozen=True)
class Filter:
    """What a search may return; every part given must hold.

    Attributes:
        within: a folder of the indexed root (``"src/app"``): only files under it.
        paths: gitignore-style globs (``"src/**/*.py"``, ``"*.go"``): a file matching any.
        languages: language names (``"python"``, ``"go"``...): a chunk in any of them.
        exclude: path classes to leave out: ``"test"``, ``"example"``, ``"benchmark"``,
            ``"docs"``, ``"generated"``, ``"vendored"`` (see :mod:`chunking.paths`).
    """

    within: str | None = None
    paths: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def make(cls, *, within: str | None = None, paths: Iterable[str] | str | None = None,
             languages: Iterable[str] | str | None = None,
             exclude: Iterable[str] | str | None = None) -> Filter | None:
        """A checked filter, or None when nothing is asked for.

        Raises:
            InputError: an unknown language or path class (the message lists the known ones),
                a folder that leaves the root, or a glob that is not a string.
        """
        paths, languages, exclude = (_strings(v, label) for v, label in (
            (paths, "paths"), (languages, "languages"), (exclude, "exclude")))
        if within is not None:
            if not isinstance(within, str):
                raise InputError(f"within must be a folder path, not {within!r}.")
            within = within.replace("\\", "/").strip("/")
            if within.startswith("../") or within == ".." or "/../" in f"/{within}/":
                raise InputError(f"within={within!r} leaves the indexed root.")
            within = None if within in ("", ".") else within
        unknown = sorted(set(languages) - KNOWN_LANGUAGES)
        if unknown:
            raise InputError(
                f"Unknown language {', '.join(map(repr, unknown))}; known languages include: "
                f"{', '.join(sorted(KNOWN_LANGUAGES)[:40])}, ..."
            )
        bad = sorted({c for c in exclude if c not in PATH_CLASSES or c == "source"})
        if bad:
            known = ", ".join(c for c in PATH_CLASSES if c != "source")
            raise InputError(f"Cannot exclude {', '.join(map(repr, bad))}; choose from: {known}.")
        made = cls(within, paths, languages, exclude)
        return None if made == cls() else made

    def mask(self, paths: Sequence[str], languages: Sequence[str]) -> np.ndarray:
        """``(n,)`` bool: which of the rows (their file paths and languages) are allowed."""
        allowed = np.ones(len(paths), dtype=bool)
        if self.within:
            prefix = self.within + "/"
            allowed &= np.fromiter((p.startswith(prefix) for p in paths), bool, len(paths))
        if self.paths:
            spec = pathspec.GitIgnoreSpec.from_lines(list(self.paths))
            allowed &= np.fromiter((spec.match_file(p) for p in paths), bool, len(paths))
        if self.languages:
            wanted = set(self.languages)
            allowed &= np.fromiter((lang in wanted for lang in languages), bool, len(paths))
        if self.exclude:
            dropped = set(self.exclude)
            allowed &= np.fromiter((path_class(p) not in dropped for p in paths), bool,
                                   len(paths))
        return allowed


def _strings(value: Iterable[str] | str | None, label: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    values = tuple(value)
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise InputError(f"{label} must be non-empty strings, got {values!r}.")
    return tuple(v.strip() for v in values)
