"""The dense vector index: FAISS inner-product search over L2-normalised float32 vectors.

One short string names the index structure, as in FAISS' ``index_factory``: ``"Flat"`` (exact),
``"HNSW32,Flat"`` (graph), ``"IVF4096,PQ48"``, ``"SQ8"``, ``"OPQ48,IVF4096,PQ48"`` (compressed),
any other factory string FAISS parses, or ``"auto"``: exact below ``hnsw_threshold`` vectors,
``HNSW32,Flat`` at or above it. Trainable structures (IVF, PQ, SQ, OPQ) train on a seeded sample.

``dims`` builds the index on the first ``dims`` components of each vector, re-normalised
(Matryoshka truncation). With ``rescore="float"`` and the full vectors attached, a search takes
``k * rescore_multiplier`` candidates from the short prefix and ranks them with the full vectors
(a funnel; it only pays with Matryoshka-trained encoders).

Labels: rows are added with stable int64 labels (``add(vectors, ids=...)``; by default the
row numbers ``len(self) ..``) and can be removed by label (``remove_ids``) where the structure
supports it (Flat, IVF, PQ, SQ; not HNSW). Non-IVF structures are wrapped in ``IndexIDMap``.

Files written inside the index directory::

    <name>.faiss    the FAISS index, named after its factory string: flat.faiss, hnsw32.faiss
    dense.json      format name and version, config, resolved factory string, file name, counts
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexing._faiss import (
    FaissComponent,
    as_labels,
    check_int,
    innermost,
    ivf_of,
    load_structure,
    save_structure,
    search_params,
    sequential_labels,
    training_sample,
)
from indexing.quantize import RowMap, check_rescore, rescore_labels, truncate
from retriever.errors import IndexFormatError, InputError

__all__ = ["FaissIndex", "spec_file_stem"]

FORMAT_NAME = "dense-retriever-faiss"
FORMAT_VERSION = 1
META_FILE = "dense.json"

AUTO = "auto"
_EXACT = "Flat"
_GRAPH = "HNSW32,Flat"
_SPEC_EXAMPLES = (
    '"auto", "Flat", "HNSW32,Flat", "IVF1024,Flat", "IVF4096,PQ48", "SQ8", "OPQ48,IVF1024,PQ48"'
)


def spec_file_stem(factory: str) -> str:
    """The file name stem for a factory string: ``"HNSW32,Flat"`` -> ``"hnsw32"``.

    A trailing ``,Flat`` (full-precision storage, the default) is left out of the name.
    """
    name = factory.strip().lower()
    if name.endswith(",flat") and name != ",flat":
        name = name[: -len(",flat")]
    return re.sub(r"[^a-z0-9]+", "_", name).strip("_") or "index"


class FaissIndex(FaissComponent):
    """Inner-product search over L2-normalised float32 vectors, with FAISS conventions.

    With ``spec="auto"`` the structure follows the number of vectors: an exact ``IndexFlatIP``
    below ``hnsw_threshold`` and ``IndexHNSWFlat`` (M=32) at or above it. The choice is made
    when vectors are added; an ``add`` that takes a flat index over the threshold rebuilds it
    as HNSW from the stored vectors (never the other way).

    The index does not normalise: give it unit vectors and inner product is cosine.

    Args:
        spec: ``"auto"`` or a FAISS factory string such as ``"Flat"``, ``"HNSW32,Flat"``,
            ``"IVF1024,PQ48"``.
        dim: Vector dimension (of the vectors given to ``add`` and ``search``), >= 1.
        hnsw_threshold: For ``"auto"``: the vector count from which HNSW is used.
        ef_search: HNSW search breadth, passed per search call (at least ``k``).
        ef_construction: HNSW build breadth, used when vectors are added.
        nprobe: IVF lists visited per query, passed per search call.
        dims: Matryoshka prefix length the index is built on (None: all ``dim``).
        rescore: ``"float"`` to re-rank candidates with the full attached vectors, or None.
        rescore_multiplier: candidates per wanted result when rescoring.
        train_size: rows sampled to train IVF/PQ/SQ structures (at least 40 per IVF list).

    Raises:
        InputError: An argument is out of range or FAISS cannot build ``spec`` for ``dims``.
    """

    name = "faiss"
    folder = "dense"

    def __init__(
        self,
        *,
        spec: str = AUTO,
        dim: int,
        hnsw_threshold: int = 50_000,
        ef_search: int = 128,
        ef_construction: int = 200,
        nprobe: int = 16,
        dims: int | None = None,
        rescore: str | None = None,
        rescore_multiplier: int = 4,
        train_size: int = 65_536,
    ) -> None:
        for label, value, low in (
            ("dim", dim, 1),
            ("hnsw_threshold", hnsw_threshold, 0),
            ("ef_search", ef_search, 1),
            ("ef_construction", ef_construction, 1),
            ("nprobe", nprobe, 1),
            ("train_size", train_size, 1),
        ):
            check_int("FaissIndex", label, value, low)
        if dims is not None:
            check_int("FaissIndex", "dims", dims, 1)
            if dims > dim:
                raise InputError(f"FaissIndex dims={dims} exceeds the vector dimension {dim}.")
        if rescore not in ("float", None):
            raise InputError(f"FaissIndex rescore must be 'float' or None, got {rescore!r}.")
        check_rescore(rescore, rescore_multiplier)
        if not isinstance(spec, str) or not spec.strip():
            raise InputError(f"FaissIndex spec must be a non-empty string, e.g. {_SPEC_EXAMPLES}.")
        self.spec = spec.strip()
        self.dim = int(dim)
        self.hnsw_threshold = int(hnsw_threshold)
        self.ef_search = int(ef_search)
        self.ef_construction = int(ef_construction)
        self.nprobe = int(nprobe)
        self.dims = None if dims is None or dims == dim else int(dims)
        self.rescore = rescore
        self.rescore_multiplier = int(rescore_multiplier)
        self.train_size = int(train_size)
        self._index: faiss.Index | None = None
        self._factory: str | None = None
        self._read_only = False
        self._vectors: np.ndarray | None = None
        self._rows: RowMap | None = None
        if self.spec != AUTO:
            # Parse now so a bad spec fails at configuration time, not after an hour of encoding.
            self._index = self._new_index(self.spec)
            self._factory = self.spec

    @property
    def index_dim(self) -> int:
        """The dimension the FAISS structure holds (``dims`` when truncating)."""
        return self.dims or self.dim

    @classmethod
    def build(cls, vectors: np.ndarray, *, ids: np.ndarray | None = None, **config: Any
              ) -> FaissIndex:
        """A new index holding ``vectors``; ``dim`` is taken from them.

        The vectors are attached for rescoring (``rescore="float"``).

        Args:
            vectors: ``(n, dim)`` float32, L2-normalised (a memory-mapped array is fine).
            ids: optional ``(n,)`` int64 stable labels; default the row numbers.
            **config: Constructor arguments other than ``dim``.

        Returns:
            The index, with row ``i`` = ``vectors[i]``.
        """
        if not isinstance(vectors, np.ndarray) or vectors.ndim != 2:
            raise InputError(
                f"FaissIndex.build takes a 2-D (n, dim) float32 array, got {_describe(vectors)}."
            )
        config.pop("dim", None)
        index = cls(dim=vectors.shape[1], **config)
        index.add(vectors, ids=ids)
        index.attach(vectors, ids)
        return index

    def config(self) -> dict[str, Any]:
        """The constructor arguments: ``FaissIndex(**index.config())`` is an empty twin."""
        return {
            "spec": self.spec,
            "dim": self.dim,
            "hnsw_threshold": self.hnsw_threshold,
            "ef_search": self.ef_search,
            "ef_construction": self.ef_construction,
            "nprobe": self.nprobe,
            "dims": self.dims,
            "rescore": self.rescore,
            "rescore_multiplier": self.rescore_multiplier,
            "train_size": self.train_size,
        }

    @property
    def factory(self) -> str | None:
        """The FAISS factory string in use; ``None`` while an ``"auto"`` index is empty."""
        return self._factory

    @property
    def needs_training(self) -> bool:
        """True for structures that learn from the data (IVF, PQ, SQ, OPQ): rebuilding them
        costs a training run, so updating one by label is cheaper than building afresh."""
        return self._index is not None and not self._index.is_trained

    def __len__(self) -> int:
        """The number of vectors held."""
        return 0 if self._index is None else int(self._index.ntotal)

    def attach(self, vectors: np.ndarray | None, labels: np.ndarray | None = None) -> None:
        """Give the index the full ``(n, dim)`` vectors to rescore with (memory-mapped is fine).

        Args:
            vectors: row ``i`` is the vector whose label is ``labels[i]``.
            labels: ``(n,)`` int64; None means label ``i`` is row ``i``.
        """
        self._vectors = vectors
        self._rows = None if labels is None or vectors is None else RowMap(labels)

    def add(self, vectors: np.ndarray, *, ids: np.ndarray | None = None) -> None:
        """Append vectors with labels ``ids`` (default: ``len(self)`` onwards).

        Args:
            vectors: ``(n, dim)`` float32, finite, L2-normalised.
            ids: ``(n,)`` unique non-negative int64 labels, not already in the index.

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
        labels = (sequential_labels(len(self), len(vectors)) if ids is None
                  else as_labels(ids, len(vectors)))
        if len(vectors) == 0:
            return
        total = len(self) + len(vectors)
        if self.spec == AUTO:
            wanted = _GRAPH if total >= self.hnsw_threshold else _EXACT
            if self._index is None:
                self._index, self._factory = self._new_index(wanted), wanted
            elif wanted != self._factory:
                # Crossed the threshold: rebuild as HNSW from the vectors the flat index holds.
                held_labels = faiss.vector_to_array(self._index.id_map).astype(np.int64)
                held = innermost(self._index).reconstruct_n(0, self._index.ntotal)
                self._index, self._factory = self._new_index(wanted), wanted
                self._add_to_index(held, held_labels)
        self._add_to_index(truncate(vectors, self.dims), labels)

    def remove_ids(self, ids: np.ndarray) -> int:
        """Remove the vectors labelled ``ids``; returns how many were removed.

        Raises:
            InputError: the structure cannot remove (HNSW: rebuild from the vectors instead),
                or the index is read-only.
        """
        if self._read_only:
            raise InputError("This FAISS index was loaded with mmap=True and is read-only.")
        if self._index is None or len(self) == 0:
            return 0
        labels = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).ravel())
        try:
            return int(self._index.remove_ids(labels))
        except RuntimeError as exc:
            raise InputError(
                f"A {self._factory!r} index cannot remove vectors ({exc}); rebuild it from "
                "the vectors file instead."
            ) from exc

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
        rescore_multiplier: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest vectors by inner product for each query.

        Args:
            queries: ``(nq, dim)`` float32, L2-normalised.
            k: Results per query, >= 1.
            nprobe, ef_search, rescore_multiplier: Per-call overrides of the configured
                values; passed to FAISS as SearchParameters, never set on the shared index.

        Returns:
            ``(scores, ids)``: ``(nq, k)`` float32 inner products, best first, and ``(nq, k)``
            int64 labels (row ids unless other labels were given). When fewer than ``k``
            vectors are found, ids are padded with ``-1`` and scores with ``-inf``.

        Raises:
            InputError: Bad ``queries`` (as for :meth:`add`), ``k`` or knob.
        """
        queries = self._check_matrix(queries, "queries")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}.")
        k = int(k)
        for label, value in (("nprobe", nprobe), ("ef_search", ef_search),
                             ("rescore_multiplier", rescore_multiplier)):
            if value is not None:
                check_int("search", label, value, 1)
        index = self._index
        if index is None or index.ntotal == 0 or len(queries) == 0:
            return (
                np.full((len(queries), k), -np.inf, dtype=np.float32),
                np.full((len(queries), k), -1, dtype=np.int64),
            )
        funnel = self.rescore == "float" and self._vectors is not None
        depth = k * (rescore_multiplier or self.rescore_multiplier) if funnel else k
        params, _keep = search_params(
            index, k=depth, ef_search=ef_search or self.ef_search, nprobe=nprobe or self.nprobe
        )
        scores, ids = index.search(truncate(queries, self.dims), depth, params=params)
        ids = ids.astype(np.int64, copy=False)
        if funnel:
            return self._rescore(queries, ids, k)
        # FAISS pads with -FLT_MAX; -inf says "no result" unambiguously (same as BM25Index).
        scores[ids < 0] = -np.inf
        return scores, ids

    def _rescore(self, queries: np.ndarray, labels: np.ndarray, k: int):
        vectors = self._vectors
        return rescore_labels(
            queries, labels, self._rows, lambda r: np.asarray(vectors[r], np.float32), k
        )

    def save(self, directory: Path) -> None:
        """Write ``<name>.faiss`` and ``dense.json`` into ``directory`` (created if needed).

        Args:
            directory: Where to write. Files of the same names there are overwritten.
        """
        if self._index is None:
            # An empty "auto" index: store the structure it would start with.
            self._index, self._factory = self._new_index(_EXACT), _EXACT
        save_structure(
            Path(directory), META_FILE, self._index, write=faiss.write_index,
            file_name=spec_file_stem(self._factory) + ".faiss", config=self.config(),
            header={"format": FORMAT_NAME, "version": FORMAT_VERSION, "factory": self._factory},
        )

    @classmethod
    def load(
        cls,
        directory: Path,
        *,
        mmap: bool = False,
        vectors: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        **config: Any,
    ) -> FaissIndex:
        """Read an index written by :meth:`save`.

        Args:
            directory: The directory given to :meth:`save`.
            mmap: Memory-map the FAISS file (``IO_FLAG_MMAP | IO_FLAG_MMAP_IFC``) instead of
                reading it: opening is fast and pages are shared between processes. The index
                is then read-only.
            vectors, labels: Full vectors to rescore with, as for :meth:`attach`.
            **config: Constructor arguments, as stored in the index manifest. When given they
                are checked against the saved index (``dim``, ``dims``; ``spec`` unless
                ``"auto"``) and used for later calls (``ef_search``, ...); when absent the
                saved ones are used.

        Returns:
            The index, ready to search.

        Raises:
            IndexFormatError: A file is missing, truncated or corrupt, or the saved index
                does not match ``config`` (dimension, structure, metric, count).
            InputError: ``config`` itself is invalid.
        """
        directory = Path(directory)
        meta, saved, index, loaded = load_structure(
            cls, directory, META_FILE, {"format": FORMAT_NAME, "version": FORMAT_VERSION},
            read=faiss.read_index, mmap=mmap, error=_format_error, config=config,
        )
        path, factory = directory / meta["file"], meta.get("factory")
        if not isinstance(factory, str) or index.spec not in (AUTO, factory):
            raise _format_error(
                path, f"it holds a {factory!r} index but the configuration asks for {index.spec!r}",
            )
        for held in (saved.index_dim, loaded.d):
            if held != index.index_dim:
                raise _format_error(
                    path, f"its vectors have dimension {held}, the configuration says "
                    f"{index.index_dim}",
                )
        if loaded.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise _format_error(path, "it is not an inner-product index")
        index._index, index._factory, index._read_only = loaded, factory, mmap
        index.attach(vectors, labels)
        return index

    def _new_index(self, factory: str) -> faiss.Index:
        try:
            index = faiss.index_factory(self.index_dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            detail = str(exc).split("failed:")[-1].strip().splitlines()[0][:200]
            raise InputError(
                f"FAISS cannot build index spec {factory!r} for {self.index_dim}-d vectors "
                f"({detail}); use one of {_SPEC_EXAMPLES} or another FAISS index_factory string "
                "whose parameters fit the dimension (PQ's M must divide it), or a binary spec: "
                '"BFlat", "BHNSW32", "BIVF1024".'
            ) from exc
        inner = innermost(index)
        if hasattr(inner, "hnsw"):
            inner.hnsw.efConstruction = self.ef_construction
        if ivf_of(index) is None:
            # IVF stores labels itself; every other structure gets an id map.
            index = faiss.IndexIDMap(index)
        return index

    def _add_to_index(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        index = self._index
        if not index.is_trained:
            ivf = ivf_of(index)
            wanted = max(self.train_size, 40 * ivf.nlist if ivf is not None else 0)
            sample = training_sample(vectors, wanted)
            try:
                index.train(sample)
            except RuntimeError as exc:
                raise InputError(
                    f"FAISS could not train a {self._factory!r} index on {len(sample)} "
                    f"vectors ({exc}); give it more vectors or use 'auto'/'Flat'."
                ) from exc
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), labels)

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
