"""The dense vector index: FAISS inner-product search over L2-normalised float32 vectors.

One short string names the index structure, as in FAISS' ``index_factory``: ``"Flat"`` (exact),
``"HNSW32,Flat"`` (graph, approximate), any other factory string FAISS parses, or ``"auto"``:
exact below ``hnsw_threshold`` vectors, ``HNSW32,Flat`` at or above it.

Files written inside the index directory::

    <name>.faiss    the FAISS index, named after its factory string: flat.faiss, hnsw32.faiss
    dense.json      format name and version, config, resolved factory string, file name, counts
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from retriever.errors import IndexFormatError, InputError

__all__ = ["FaissIndex", "spec_file_stem"]

FORMAT_NAME = "dense-retriever-faiss"
FORMAT_VERSION = 1
META_FILE = "dense.json"

AUTO = "auto"
_EXACT = "Flat"
_GRAPH = "HNSW32,Flat"
_SPEC_EXAMPLES = '"auto", "Flat", "HNSW32,Flat", "HNSW64,Flat", "IVF1024,Flat"'


def spec_file_stem(factory: str) -> str:
    """The file name stem for a factory string: ``"HNSW32,Flat"`` -> ``"hnsw32"``.

    A trailing ``,Flat`` (full-precision storage, the default) is left out of the name.
    """
    name = factory.strip().lower()
    if name.endswith(",flat") and name != ",flat":
        name = name[: -len(",flat")]
    return re.sub(r"[^a-z0-9]+", "_", name).strip("_") or "index"


class FaissIndex:
    """Inner-product search over L2-normalised float32 vectors, with FAISS conventions.

    With ``spec="auto"`` the structure follows the number of vectors: an exact ``IndexFlatIP``
    below ``hnsw_threshold`` and ``IndexHNSWFlat`` (M=32) at or above it. The choice is made
    when vectors are added; an ``add`` that takes a flat index over the threshold rebuilds it
    as HNSW from the stored vectors (never the other way).

    The index does not normalise: give it unit vectors and inner product is cosine.

    Args:
        spec: ``"auto"`` or a FAISS factory string such as ``"Flat"`` or ``"HNSW32,Flat"``.
        dim: Vector dimension, >= 1.
        hnsw_threshold: For ``"auto"``: the vector count from which HNSW is used.
        ef_search: HNSW search breadth, set per search call (at least ``k``).
        ef_construction: HNSW build breadth, used when vectors are added.

    Raises:
        InputError: An argument is out of range or FAISS cannot parse ``spec``.
    """

    name = "faiss"

    def __init__(
        self,
        *,
        spec: str = AUTO,
        dim: int,
        hnsw_threshold: int = 50_000,
        ef_search: int = 128,
        ef_construction: int = 200,
    ) -> None:
        for label, value, low in (
            ("dim", dim, 1),
            ("hnsw_threshold", hnsw_threshold, 0),
            ("ef_search", ef_search, 1),
            ("ef_construction", ef_construction, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise InputError(f"FaissIndex {label} must be an integer >= {low}, got {value!r}.")
        if not isinstance(spec, str) or not spec.strip():
            raise InputError(f"FaissIndex spec must be a non-empty string, e.g. {_SPEC_EXAMPLES}.")
        self.spec = spec.strip()
        self.dim = int(dim)
        self.hnsw_threshold = int(hnsw_threshold)
        self.ef_search = int(ef_search)
        self.ef_construction = int(ef_construction)
        self._index: faiss.Index | None = None
        self._factory: str | None = None
        self._read_only = False
        if self.spec != AUTO:
            # Parse now so a bad spec fails at configuration time, not after an hour of encoding.
            self._index = self._new_index(self.spec)
            self._factory = self.spec

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        *,
        spec: str = AUTO,
        hnsw_threshold: int = 50_000,
        ef_search: int = 128,
        ef_construction: int = 200,
    ) -> FaissIndex:
        """A new index holding ``vectors``; ``dim`` is taken from them.

        Args:
            vectors: ``(n, dim)`` float32, L2-normalised.
            spec, hnsw_threshold, ef_search, ef_construction: As for the constructor.

        Returns:
            The index, with row ``i`` = ``vectors[i]``.
        """
        if not isinstance(vectors, np.ndarray) or vectors.ndim != 2:
            raise InputError(
                f"FaissIndex.build takes a 2-D (n, dim) float32 array, got {_describe(vectors)}."
            )
        index = cls(
            spec=spec,
            dim=vectors.shape[1],
            hnsw_threshold=hnsw_threshold,
            ef_search=ef_search,
            ef_construction=ef_construction,
        )
        index.add(vectors)
        return index

    def config(self) -> dict[str, Any]:
        """The constructor arguments: ``FaissIndex(**index.config())`` is an empty twin."""
        return {
            "spec": self.spec,
            "dim": self.dim,
            "hnsw_threshold": self.hnsw_threshold,
            "ef_search": self.ef_search,
            "ef_construction": self.ef_construction,
        }

    @property
    def factory(self) -> str | None:
        """The FAISS factory string in use; ``None`` while an ``"auto"`` index is empty."""
        return self._factory

    def __len__(self) -> int:
        """The number of vectors held (row ids are ``0 .. len - 1``)."""
        return 0 if self._index is None else int(self._index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        """Append vectors; their row ids continue from ``len(self)``.

        Args:
            vectors: ``(n, dim)`` float32, finite, L2-normalised.

        Raises:
            InputError: Wrong type, ndim, dtype or dimension, non-finite values, or an index
                loaded with ``mmap=True`` (read-only).
        """
        vectors = self._check_matrix(vectors, "vectors")
        if self._read_only:
            raise InputError(
                "This FAISS index was loaded with mmap=True and is read-only; "
                "load it with mmap=False to add vectors."
            )
        if not np.isfinite(vectors).all():
            raise InputError("vectors contain NaN or infinite values; cannot index them.")
        if len(vectors) == 0:
            return
        total = len(self) + len(vectors)
        if self.spec == AUTO:
            wanted = _GRAPH if total >= self.hnsw_threshold else _EXACT
            if self._index is None:
                self._index, self._factory = self._new_index(wanted), wanted
            elif wanted != self._factory:
                # Crossed the threshold: rebuild as HNSW from the vectors the flat index holds.
                held = self._index.reconstruct_n(0, self._index.ntotal)
                self._index, self._factory = self._new_index(wanted), wanted
                self._add_to_index(held)
        self._add_to_index(vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest vectors by inner product for each query.

        Args:
            queries: ``(nq, dim)`` float32, L2-normalised.
            k: Results per query, >= 1.

        Returns:
            ``(scores, ids)``: ``(nq, k)`` float32 inner products, best first, and ``(nq, k)``
            int64 row ids. When fewer than ``k`` vectors are found, ids are padded with ``-1``
            and scores with ``-inf``.

        Raises:
            InputError: Bad ``queries`` (as for :meth:`add`) or ``k``.
        """
        queries = self._check_matrix(queries, "queries")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}.")
        k = int(k)
        index = self._index
        if index is None or index.ntotal == 0 or len(queries) == 0:
            return (
                np.full((len(queries), k), -np.inf, dtype=np.float32),
                np.full((len(queries), k), -1, dtype=np.int64),
            )
        params = None
        if hasattr(index, "hnsw"):
            # Per call, not index.hnsw.efSearch = ...: readers in other threads share the index.
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
        scores, ids = index.search(queries, k, params=params)
        ids = ids.astype(np.int64, copy=False)
        # FAISS pads with -FLT_MAX; -inf says "no result" unambiguously (same as BM25Index).
        scores[ids < 0] = -np.inf
        return scores, ids

    def save(self, directory: Path) -> None:
        """Write ``<name>.faiss`` and ``dense.json`` into ``directory`` (created if needed).

        Args:
            directory: Where to write. Files of the same names there are overwritten.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self._index is None:
            # An empty "auto" index: store the structure it would start with.
            self._index, self._factory = self._new_index(_EXACT), _EXACT
        file_name = spec_file_stem(self._factory) + ".faiss"
        faiss.write_index(self._index, str(directory / file_name))
        meta = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "config": self.config(),
            "factory": self._factory,
            "file": file_name,
            "ntotal": len(self),
        }
        # Written last: a directory whose save was interrupted has no (new) manifest.
        (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = False, **config: Any) -> FaissIndex:
        """Read an index written by :meth:`save`.

        Args:
            directory: The directory given to :meth:`save`.
            mmap: Memory-map the stored vectors instead of reading them (read-only index).
            **config: Constructor arguments, as stored in the index manifest. When given they
                are checked against the saved index (``dim``; ``spec`` unless ``"auto"``) and
                used for later calls (``ef_search``, ...); when absent the saved ones are used.

        Returns:
            The index, ready to search.

        Raises:
            IndexFormatError: A file is missing, truncated or corrupt, or the saved index
                does not match ``config`` (dimension, structure, metric, count).
            InputError: ``config`` itself is invalid.
        """
        directory = Path(directory)
        meta_path = directory / META_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT_NAME or meta.get("version") != FORMAT_VERSION:
                raise ValueError(
                    f"not a {FORMAT_NAME} v{FORMAT_VERSION} manifest "
                    f"(format {meta.get('format')!r}, version {meta.get('version')!r})"
                )
            factory, file_name, ntotal = meta["factory"], meta["file"], meta["ntotal"]
            saved_config = meta["config"]
            if not (isinstance(file_name, str) and file_name == Path(file_name).name):
                raise ValueError(f"bad index file name {file_name!r}")
            index = cls(**saved_config)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise _format_error(meta_path, exc) from exc
        if config:
            index = cls(**config)  # InputError if the caller's config is itself invalid
        if index.spec not in (AUTO, factory):
            raise _format_error(
                directory / file_name,
                f"it holds a {factory!r} index but the configuration asks for {index.spec!r}",
            )
        path = directory / file_name
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_MMAP_IFC if mmap else 0
        try:
            loaded = faiss.read_index(str(path), flags)
        except (RuntimeError, OSError) as exc:
            reason = "it is missing" if not path.exists() else f"FAISS cannot read it: {exc}"
            raise _format_error(path, reason) from exc
        if loaded.d != index.dim:
            raise _format_error(
                path, f"its vectors have dimension {loaded.d}, the configuration says {index.dim}"
            )
        if loaded.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise _format_error(path, "it is not an inner-product index")
        if loaded.ntotal != ntotal:
            raise _format_error(path, f"it holds {loaded.ntotal} vectors, {META_FILE} {ntotal}")
        index._index, index._factory, index._read_only = loaded, factory, mmap
        return index

    def _new_index(self, factory: str) -> faiss.Index:
        try:
            index = faiss.index_factory(self.dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise InputError(
                f"FAISS cannot build index spec {factory!r}; use one of {_SPEC_EXAMPLES} "
                "or another FAISS index_factory string."
            ) from exc
        if hasattr(index, "hnsw"):
            index.hnsw.efConstruction = self.ef_construction
        return index

    def _add_to_index(self, vectors: np.ndarray) -> None:
        index = self._index
        if not index.is_trained:
            # Trainable specs (IVF, PQ) learn from the first batch they are given.
            try:
                index.train(vectors)
            except RuntimeError as exc:
                raise InputError(
                    f"FAISS could not train a {self._factory!r} index on {len(vectors)} "
                    f"vectors ({exc}); give it more vectors or use 'auto'/'Flat'."
                ) from exc
        index.add(vectors)

    def _check_matrix(self, array: np.ndarray, label: str) -> np.ndarray:
        if not isinstance(array, np.ndarray) or array.ndim != 2:
            raise InputError(
                f"{label} must be a 2-D (n, {self.dim}) float32 array, got {_describe(array)}."
            )
        if array.dtype != np.float32:
            raise InputError(
                f"{label} must be float32, got {array.dtype}; convert with .astype(np.float32)."
            )
        if array.shape[1] != self.dim:
            raise InputError(
                f"{label} have dimension {array.shape[1]}, this index holds {self.dim}-d vectors."
            )
        return np.ascontiguousarray(array)


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"a {type(value).__name__}"


def _format_error(path: Path, reason: object) -> IndexFormatError:
    return IndexFormatError(
        f"The dense index file {path} is unusable: {reason}. Rebuild the index: run "
        "`retriever index --force` (or re-run indexing); it is derived from vectors.npy."
    )
