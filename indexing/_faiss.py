"""What the float and binary FAISS index kinds share: per-call search parameters, stable
labels (``add_with_ids``), training on a sample, argument checks, and the small JSON file
that describes a saved index (searching in :mod:`indexing._faiss_search`, saving and
loading in :mod:`indexing._faiss_io`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import faiss
import numpy as np

# Saving and loading live in _faiss_io, searching in _faiss_search; their names stay
# importable from here, as before.
from indexing._faiss_io import (
    load_structure,
    mmap_flags,
    read_index_file,
    read_meta,
    save_structure,
    write_meta,
)
from indexing._faiss_search import (
    INTERACTIVE_QUERIES,
    innermost,
    ivf_of,
    one_thread,
    search_params,
)
from indexing.quantize import rescore_labels
from retriever.errors import IndexFormatError, InputError

__all__ = [
    "FaissComponent", "spec_file_stem", "describe",
    "check_int", "search_params", "innermost", "ivf_of", "training_sample", "as_labels",
    "sequential_labels", "mmap_flags", "write_meta", "read_meta", "read_index_file",
    "save_structure", "load_structure",
]


class FaissComponent:
    """What the float and binary kinds share as components of a generation: building from
    vectors, removing by label, argument checks, and saving and loading through one metadata
    file. Subclasses hold their FAISS structure in ``_index`` and set the class attributes
    below; ``_adopt`` receives what :meth:`load` read.
    """

    role = "vectors"
    _index = None
    _read_only = False

    def __init_subclass__(cls, *, label: str, meta: tuple[str, str, int], binary: bool,
                          **kwargs: Any) -> None:
        """``label``: "dense" or "binary", for messages; ``meta``: the metadata file's name,
        format name and version; ``binary``: FAISS binary structures (``.faissb``)."""
        super().__init_subclass__(**kwargs)
        cls.label = label
        cls.META_FILE, name, version = meta
        cls.FORMAT = {"format": name, "version": version}
        cls.SUFFIX = ".faissb" if binary else ".faiss"
        cls._read = staticmethod(faiss.read_index_binary if binary else faiss.read_index)
        cls._write = staticmethod(faiss.write_index_binary if binary else faiss.write_index)

    @classmethod
    def parse_error(cls, spec: object, dim: int) -> str | None:
        """None when FAISS parses ``spec`` as this kind over ``dim``-d vectors, else why not:
        a spec string finds its kind by being parsed, never by its spelling."""
        try:
            cls(spec=spec, dim=dim)
        except InputError as exc:
            return str(exc)
        return None

    @property
    def can_remove(self) -> bool:
        """True when vectors can be taken out by label (flat and IVF structures; not HNSW
        graphs, which FAISS cannot remove from)."""
        return self._index is not None and not hasattr(innermost(self._index), "hnsw")

    @classmethod
    def build(cls, vectors: np.ndarray, *, ids: np.ndarray | None = None, **config: Any):
        """A new index holding ``vectors`` (``dim`` taken from them), with them attached for
        rescoring.

        Args:
            vectors: ``(n, dim)`` float32, L2-normalised (a memory-mapped array is fine).
            ids: optional ``(n,)`` int64 stable labels; default the row numbers.
            **config: Constructor arguments other than ``dim``.

        Returns:
            The index, with row ``i`` = ``vectors[i]``.
        """
        if not isinstance(vectors, np.ndarray) or vectors.ndim != 2:
            raise InputError(
                f"{cls.__name__}.build takes a 2-D (n, dim) float32 array, got "
                f"{describe(vectors)}."
            )
        config.pop("dim", None)
        index = cls(dim=vectors.shape[1], **config)
        index.add(vectors, ids=ids)
        index.attach(vectors, ids)
        return index

    def remove_ids(self, ids: np.ndarray) -> int:
        """Remove the vectors labelled ``ids``; returns how many were removed.

        Raises:
            InputError: the structure cannot remove (HNSW: rebuild from the vectors instead),
                or the index is read-only.
        """
        if self._read_only:
            raise InputError(
                f"This {self.label} index was loaded with mmap=True and is read-only; load it "
                "with mmap=False to change it."
            )
        if self._index is None or len(self) == 0:
            return 0
        labels = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).ravel())
        try:
            return int(self._index.remove_ids(labels))
        except RuntimeError as exc:
            raise InputError(
                f"A {self.factory!r} index cannot remove vectors ({exc}); rebuild it from "
                "the vectors file instead."
            ) from exc

    @staticmethod
    def check_search(k: object, **knobs: int | None) -> int:
        """``k`` as an int; InputError for a bad ``k`` or per-call knob."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}.")
        for label, value in knobs.items():
            if value is not None:
                check_int("search", label, value, 1)
        return int(k)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
        rescore_multiplier: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best vectors for each query.

        With rescoring and vectors attached, ``k * rescore_multiplier`` candidates are ranked
        again by the inner product of the float query with the float (or int8) vectors.

        Args:
            queries: ``(nq, dim)`` float32, L2-normalised.
            k: Results per query, >= 1.
            nprobe, ef_search, rescore_multiplier: Per-call overrides of the configured
                values; passed to FAISS as SearchParameters, never set on the shared index.

        Returns:
            ``(scores, ids)``: ``(nq, k)`` float32, best first, and ``(nq, k)`` int64 labels
            (row ids unless other labels were given). When fewer than ``k`` vectors are
            found, ids are padded with ``-1`` and scores with ``-inf``.

        Raises:
            InputError: Bad ``queries`` (as for ``add``), ``k`` or knob.
        """
        queries = self._check_matrix(queries, "queries")
        k = self.check_search(k, nprobe=nprobe, ef_search=ef_search,
                              rescore_multiplier=rescore_multiplier)
        nq = len(queries)
        if self._index is None or len(self) == 0 or nq == 0:
            return np.full((nq, k), -np.inf, np.float32), np.full((nq, k), -1, np.int64)
        fetch = self._fetcher()
        depth = k * (rescore_multiplier or self.rescore_multiplier) if fetch else k
        params, _keep = search_params(self._index, k=depth, ef_search=ef_search or self.ef_search,
                                      nprobe=nprobe or self.nprobe)
        with one_thread(nq <= INTERACTIVE_QUERIES):
            scores, labels = self._raw_search(queries, depth, params)
        labels = labels.astype(np.int64, copy=False)
        if fetch is not None:
            return rescore_labels(queries, labels, self._rows, fetch, k)
        # FAISS pads with -FLT_MAX; -inf says "no result" unambiguously (same as BM25Index).
        scores[labels < 0] = -np.inf
        return scores, labels

    def save(self, directory: Path) -> None:
        """Write the FAISS file and, last, the metadata file into ``directory`` (created if
        needed); files of the same names there are overwritten."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        extra = self._before_save(directory)
        save_structure(
            directory, self.META_FILE, self._index, write=self._write,
            file_name=spec_file_stem(self.factory) + self.SUFFIX, config=self.config(),
            header={**self.FORMAT, **extra},
        )

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = False, vectors: np.ndarray | None = None,
             labels: np.ndarray | None = None, **config: Any):
        """Read an index written by :meth:`save`.

        Args:
            directory: The directory given to :meth:`save`.
            mmap: Memory-map the FAISS file instead of reading it: opening is fast and pages
                are shared between processes. The index is then read-only.
            vectors, labels: Full vectors to rescore with, as for ``attach``.
            **config: Constructor arguments, as stored in the index manifest. When given they
                are checked against the saved index and used for later calls (``ef_search``,
                ...); when absent the saved ones are used.

        Raises:
            IndexFormatError: A file is missing, truncated or corrupt, or the saved index
                does not match ``config``.
            InputError: ``config`` itself is invalid.
        """
        directory = Path(directory)
        meta, saved, index, structure = load_structure(
            cls, directory, cls.META_FILE, cls.FORMAT, read=cls._read, mmap=mmap,
            error=cls.format_error, config=config,
        )
        index._adopt(meta, saved, structure, directory / meta["file"])
        index._index, index._read_only = structure, mmap
        index._attach_loaded(vectors, labels, directory, mmap, meta["ntotal"])
        return index

    @classmethod
    def format_error(cls, path: Path, reason: object) -> IndexFormatError:
        return IndexFormatError(
            f"The {cls.label} index file {path} is unusable: {reason}. Rebuild the index: run "
            "`retriever index PATH --force`; it is derived from the vectors file."
        )


def spec_file_stem(factory: str) -> str:
    """The file name stem for a factory string: ``"HNSW32,Flat"`` -> ``"hnsw32"``.

    A trailing ``,Flat`` (full-precision storage, the default) is left out of the name.
    """
    name = factory.strip().lower()
    if name.endswith(",flat") and name != ",flat":
        name = name[: -len(",flat")]
    return re.sub(r"[^a-z0-9]+", "_", name).strip("_") or "index"


def describe(value: object) -> str:
    """What a caller passed instead of an array, for error messages."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"a {type(value).__name__}"


def check_int(owner: str, label: str, value: object, low: int) -> None:
    """Raise InputError unless ``value`` is an int (not bool) >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"{owner} {label} must be an integer >= {low}, got {value!r}.")


def training_sample(vectors: np.ndarray, wanted: int, *, seed: int = 0) -> np.ndarray:
    """At most ``wanted`` rows of ``vectors``, chosen with a seeded generator, in file order."""
    n = len(vectors)
    if n <= wanted:
        return np.ascontiguousarray(vectors)
    rows = np.sort(np.random.default_rng(seed).choice(n, size=wanted, replace=False))
    return np.ascontiguousarray(vectors[rows])


def as_labels(ids: object, n: int) -> np.ndarray:
    """Check caller-given labels: ``(n,)`` non-negative int64, unique."""
    labels = np.asarray(ids)
    if labels.ndim != 1 or len(labels) != n or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"ids must be a 1-D integer array of length {n}, got {labels.shape}.")
    labels = labels.astype(np.int64, copy=False)
    if n and (labels.min() < 0 or len(np.unique(labels)) != n):
        raise InputError("ids must be unique non-negative integers.")
    return np.ascontiguousarray(labels)


def sequential_labels(start: int, n: int) -> np.ndarray:
    """``start .. start + n - 1`` as int64: the default labels are row numbers."""
    return np.arange(start, start + n, dtype=np.int64)
