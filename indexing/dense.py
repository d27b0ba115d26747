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

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexing._faiss import (
    FaissComponent,
    as_labels,
    check_int,
    describe,
    innermost,
    ivf_of,
    sequential_labels,
    spec_file_stem,
    training_sample,
)
from indexing.quantize import RowMap, check_rescore, truncate
from retriever.errors import InputError

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


class FaissIndex(FaissComponent, label="dense", binary=False,
                 meta=(META_FILE, FORMAT_NAME, FORMAT_VERSION)):
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

    def _fetcher(self):
        """Rows -> full float vectors, for the Matryoshka funnel; None without one."""
        if self.rescore == "float" and self._vectors is not None:
            vectors = self._vectors
            return lambda rows: np.asarray(vectors[rows], np.float32)
        return None

    def _raw_search(self, queries: np.ndarray, depth: int, params):
        return self._index.search(truncate(queries, self.dims), depth, params=params)

    def _before_save(self, directory: Path) -> dict:
        if self._index is None:
            # An empty "auto" index: store the structure it would start with.
            self._index, self._factory = self._new_index(_EXACT), _EXACT
        return {"factory": self._factory}

    def _adopt(self, meta: dict, saved: FaissIndex, loaded, path: Path) -> None:
        """Check what :meth:`load` read against this configuration and take it."""
        factory = meta.get("factory")
        if not isinstance(factory, str) or self.spec not in (AUTO, factory):
            raise self.format_error(
                path, f"it holds a {factory!r} index but the configuration asks for {self.spec!r}",
            )
        for held in (saved.index_dim, loaded.d):
            if held != self.index_dim:
                raise self.format_error(
                    path, f"its vectors have dimension {held}, the configuration says "
                    f"{self.index_dim}",
                )
        if loaded.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise self.format_error(path, "it is not an inner-product index")
        self._factory = factory

    def _attach_loaded(self, vectors, labels, directory: Path, mmap: bool, ntotal: int) -> None:
        self.attach(vectors, labels)

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
                f"{label} must be a 2-D (n, {self.dim}) float32 array, got {describe(array)}."
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
