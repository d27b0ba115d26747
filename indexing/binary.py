"""The binary vector index: 1 bit per dimension, Hamming search, rescored in float.

Vectors are sign-binarised (bit ``j`` set where component ``j`` > 0; optionally on the first
``dims`` components only) and held by a FAISS binary index named by its factory string:
``"BFlat"`` (exhaustive Hamming), ``"BHNSW32"`` (graph), ``"BIVF1024"`` (inverted lists).
A search takes ``k * rescore_multiplier`` Hamming candidates and re-ranks them by the inner
product of the float query with the documents' float vectors (``rescore="float"``, read from
the memory-mapped vectors file attached at load) or int8 vectors (``rescore="int8"``, a
per-dimension scaled copy stored beside the index), as sentence-transformers'
``semantic_search_faiss`` and BPR do. A 384-d float index takes 1,536 bytes a vector; its
binary codes 48 (plus 8 for the label).

Files written inside the index directory::

    <name>.faissb    the FAISS binary index: bflat.faissb, bhnsw32.faissb, bivf1024.faissb
    int8.npy         (rescore="int8" only) (n, dim) int8 codes in row order, and
    int8_scale.npy   their (dim,) float32 per-dimension scale
    binary.json      format name and version, config, file name, counts
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
    innermost,
    ivf_of,
    load_structure,
    save_structure,
    search_params,
    sequential_labels,
    training_sample,
)
from indexing.dense import spec_file_stem
from indexing.quantize import (
    RowMap,
    binarize,
    check_rescore,
    int8_scale,
    rescore_labels,
    to_int8,
)
from indexing.table import NPY_ERRORS
from retriever.errors import IndexFormatError, InputError

__all__ = ["BinaryIndex"]

FORMAT_NAME = "dense-retriever-faiss-binary"
FORMAT_VERSION = 1
META_FILE = "binary.json"
INT8_FILE = "int8.npy"
SCALE_FILE = "int8_scale.npy"
_SPEC_EXAMPLES = '"BFlat", "BHNSW32", "BIVF1024"'


class BinaryIndex(FaissComponent):
    """Hamming search over sign-binarised vectors, rescored with float or int8 vectors.

    Args:
        spec: A FAISS binary factory string: ``"BFlat"``, ``"BHNSW32"``, ``"BIVF<nlist>"``.
        dim: Dimension of the float vectors given to ``add`` and ``search``.
        dims: Binarise only the first ``dims`` components (Matryoshka); a multiple of 8.
        rescore: ``"float"``, ``"int8"`` or None (rank by Hamming distance alone).
        rescore_multiplier: Hamming candidates per wanted result when rescoring.
        nprobe: IVF lists visited per query (per call, as SearchParameters).
        ef_search: HNSW search breadth (per call, as SearchParameters).
        train_size: Rows sampled to train ``BIVF`` (at least 40 per list).

    Raises:
        InputError: An argument is out of range, the bit count is not a multiple of 8, or
            FAISS cannot parse ``spec``.
    """

    name = "faiss-binary"
    folder = "binary"

    def __init__(
        self,
        *,
        spec: str = "BFlat",
        dim: int,
        dims: int | None = None,
        rescore: str | None = "float",
        rescore_multiplier: int = 4,
        nprobe: int = 16,
        ef_search: int = 128,
        train_size: int = 65_536,
    ) -> None:
        for label, value, low in (("dim", dim, 1), ("nprobe", nprobe, 1),
                                  ("ef_search", ef_search, 1), ("train_size", train_size, 1)):
            check_int("BinaryIndex", label, value, low)
        if dims is not None:
            check_int("BinaryIndex", "dims", dims, 8)
            if dims > dim:
                raise InputError(f"BinaryIndex dims={dims} exceeds the vector dimension {dim}.")
        check_rescore(rescore, rescore_multiplier)
        if not isinstance(spec, str) or not spec.strip():
            raise InputError(
                f"BinaryIndex spec must be a FAISS binary factory string such as "
                f"{_SPEC_EXAMPLES}, got {spec!r}."
            )
        self.spec = spec.strip()
        self.dim = int(dim)
        self.dims = None if dims is None or dims == dim else int(dims)
        self.rescore = rescore
        self.rescore_multiplier = int(rescore_multiplier)
        self.nprobe = int(nprobe)
        self.ef_search = int(ef_search)
        self.train_size = int(train_size)
        if self.bits % 8:
            raise InputError(
                f"Binary codes need a bit count that is a multiple of 8; {self.bits} is not. "
                "Pass dims= a multiple of 8."
            )
        self._index = self._new_index()
        self._read_only = False
        self._vectors: np.ndarray | None = None
        self._rows: RowMap | None = None
        self._int8: np.ndarray | None = None
        self._scale: np.ndarray | None = None

    @property
    def bits(self) -> int:
        """Bits per code: ``dims`` or ``dim``."""
        return self.dims or self.dim

    @property
    def factory(self) -> str:
        """The FAISS binary factory string."""
        return self.spec

    @classmethod
    def build(cls, vectors: np.ndarray, *, ids: np.ndarray | None = None, **config: Any
              ) -> BinaryIndex:
        """A new index over ``vectors`` (``dim`` taken from them), with them attached.

        Args:
            vectors: ``(n, dim)`` float32 (a memory-mapped array is fine).
            ids: optional ``(n,)`` int64 stable labels; default the row numbers.
            **config: Constructor arguments other than ``dim``.
        """
        if not isinstance(vectors, np.ndarray) or vectors.ndim != 2:
            raise InputError("BinaryIndex.build takes a 2-D (n, dim) float32 array.")
        config.pop("dim", None)
        index = cls(dim=vectors.shape[1], **config)
        index.add(vectors, ids=ids)
        index.attach(vectors, ids)
        return index

    def config(self) -> dict[str, Any]:
        """The constructor arguments: ``BinaryIndex(**index.config())`` is an empty twin."""
        return {
            "spec": self.spec, "dim": self.dim, "dims": self.dims, "rescore": self.rescore,
            "rescore_multiplier": self.rescore_multiplier, "nprobe": self.nprobe,
            "ef_search": self.ef_search, "train_size": self.train_size,
        }

    @property
    def needs_training(self) -> bool:
        """True for structures that learn from the data (IVF, PQ, SQ, OPQ): rebuilding them
        costs a training run, so updating one by label is cheaper than building afresh."""
        return self._index is not None and not self._index.is_trained

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def memory_bytes(self) -> int:
        """Bytes the searchable structure holds: its serialised size (codes, labels, graph
        links or lists) plus the int8 copies for ``rescore="int8"``.

        The float vectors used for rescoring are memory-mapped and not counted.
        """
        held = int(faiss.serialize_index_binary(self._index).size)
        if self.rescore == "int8" and self._int8 is not None:
            held += self._int8.nbytes
        return held

    def attach(self, vectors: np.ndarray | None, labels: np.ndarray | None = None) -> None:
        """Give the index the ``(n, dim)`` float vectors to rescore with.

        Args:
            vectors: row ``i`` is the vector labelled ``labels[i]``.
            labels: ``(n,)`` int64; None means label ``i`` is row ``i``.
        """
        self._vectors = vectors
        self._rows = None if labels is None or vectors is None else RowMap(labels)
        if self.rescore == "int8" and vectors is not None:
            self._scale = int8_scale(training_sample(vectors, self.train_size))
            self._int8 = np.concatenate(
                [to_int8(vectors[i : i + 65_536], self._scale)
                 for i in range(0, len(vectors), 65_536)]
            ) if len(vectors) else np.zeros((0, self.dim), np.int8)

    def add(self, vectors: np.ndarray, *, ids: np.ndarray | None = None) -> None:
        """Binarise and append ``(n, dim)`` float32 vectors with labels ``ids``.

        Raises:
            InputError: bad vectors, or a read-only (memory-mapped) index.
        """
        vectors = self._check(vectors, "vectors")
        if self._read_only:
            raise InputError("This binary index was loaded with mmap=True and is read-only.")
        labels = (sequential_labels(len(self), len(vectors)) if ids is None
                  else as_labels(ids, len(vectors)))
        if len(vectors) == 0:
            return
        codes = binarize(vectors[:, : self.bits])
        if not self._index.is_trained:
            ivf = ivf_of(self._index)
            sample = training_sample(codes, max(self.train_size, 40 * ivf.nlist))
            try:
                self._index.train(sample)
            except RuntimeError as exc:
                raise InputError(
                    f"FAISS could not train a {self.spec!r} index on {len(sample)} vectors "
                    f"({exc}); give it more vectors or use 'BFlat'."
                ) from exc
        self._index.add_with_ids(codes, labels)

    def remove_ids(self, ids: np.ndarray) -> int:
        """Remove the vectors labelled ``ids``; returns how many were removed.

        Raises:
            InputError: the structure cannot remove (BHNSW), or the index is read-only.
        """
        if self._read_only:
            raise InputError("This binary index was loaded with mmap=True and is read-only.")
        labels = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).ravel())
        try:
            return int(self._index.remove_ids(labels))
        except RuntimeError as exc:
            raise InputError(
                f"A {self.spec!r} index cannot remove vectors ({exc}); rebuild it instead."
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
        """The ``k`` best vectors for each query.

        With rescoring and vectors attached, scores are inner products of the float query
        with the float (or int8-dequantised) document vectors; otherwise
        ``1 - 2 * hamming / bits`` (in [-1, 1], higher is closer).

        Args:
            queries: ``(nq, dim)`` float32.
            k: results per query, >= 1.
            nprobe, ef_search, rescore_multiplier: per-call overrides, passed as FAISS
                SearchParameters.

        Returns:
            ``(scores, ids)``: ``(nq, k)`` float32 best first (``-inf`` padding) and int64
            labels (``-1`` padding).
        """
        queries = self._check(queries, "queries")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}.")
        k = int(k)
        for label, value in (("nprobe", nprobe), ("ef_search", ef_search),
                             ("rescore_multiplier", rescore_multiplier)):
            if value is not None:
                check_int("search", label, value, 1)
        nq = len(queries)
        if len(self) == 0 or nq == 0:
            return (np.full((nq, k), -np.inf, np.float32), np.full((nq, k), -1, np.int64))
        fetch = self._fetcher()
        depth = k * (rescore_multiplier or self.rescore_multiplier) if fetch else k
        params, _keep = search_params(
            self._index, k=depth, ef_search=ef_search or self.ef_search,
            nprobe=nprobe or self.nprobe,
        )
        distances, labels = self._index.search(
            binarize(queries[:, : self.bits]), depth, params=params
        )
        labels = labels.astype(np.int64, copy=False)
        if fetch is not None:
            return rescore_labels(queries, labels, self._rows, fetch, k)
        scores = (1.0 - 2.0 * distances.astype(np.float32) / self.bits).astype(np.float32)
        scores[labels < 0] = -np.inf
        return scores, labels

    def _fetcher(self):
        if self.rescore == "int8" and self._int8 is not None:
            codes, scale = self._int8, self._scale
            return lambda rows: codes[rows].astype(np.float32) * scale
        if self.rescore is not None and self._vectors is not None:
            vectors = self._vectors
            return lambda rows: np.asarray(vectors[rows], dtype=np.float32)
        return None

    def save(self, directory: Path) -> None:
        """Write the binary index (and int8 codes) and ``binary.json`` into ``directory``.

        Raises:
            InputError: ``rescore="int8"`` and no vectors attached to quantise.
        """
        directory = Path(directory)
        if self.rescore == "int8" and self._int8 is None:
            raise InputError("rescore='int8' needs the vectors attached before save().")
        directory.mkdir(parents=True, exist_ok=True)
        if self.rescore == "int8":
            np.save(directory / INT8_FILE, self._int8)
            np.save(directory / SCALE_FILE, self._scale)
        save_structure(
            directory, META_FILE, self._index, write=faiss.write_index_binary,
            file_name=spec_file_stem(self.spec) + ".faissb", config=self.config(),
            header={"format": FORMAT_NAME, "version": FORMAT_VERSION},
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
    ) -> BinaryIndex:
        """Read an index written by :meth:`save`.

        Args:
            directory: the directory given to :meth:`save`.
            mmap: memory-map the codes (read-only index, pages shared between processes).
            vectors, labels: float vectors to rescore with, as for :meth:`attach`.
            **config: constructor arguments from the index manifest, checked against the
                saved ones (spec, dim, dims); search knobs are taken from them.

        Raises:
            IndexFormatError: a file is missing, truncated, corrupt or inconsistent.
        """
        directory = Path(directory)
        meta, saved, index, loaded = load_structure(
            cls, directory, META_FILE, {"format": FORMAT_NAME, "version": FORMAT_VERSION},
            read=faiss.read_index_binary, mmap=mmap, error=_format_error, config=config,
        )
        path, ntotal = directory / meta["file"], meta["ntotal"]
        if (index.spec, index.dim, index.bits) != (saved.spec, saved.dim, saved.bits):
            raise _format_error(
                path, f"it holds a {saved.spec!r} index of {saved.bits} bits over {saved.dim}-d "
                f"vectors; the configuration asks for {index.spec!r}, {index.bits}, {index.dim}",
            )
        if loaded.d != index.bits:
            raise _format_error(path, f"its codes have {loaded.d} bits, expected {index.bits}")
        index._index, index._read_only = loaded, mmap
        index._vectors = vectors
        index._rows = None if labels is None or vectors is None else RowMap(labels)
        if index.rescore == "int8":
            try:
                index._int8 = np.load(directory / INT8_FILE, mmap_mode="r" if mmap else None,
                                      allow_pickle=False)
                index._scale = np.load(directory / SCALE_FILE, allow_pickle=False)
            except NPY_ERRORS as exc:
                raise _format_error(directory / INT8_FILE, exc) from exc
            if index._int8.shape != (ntotal, index.dim) or index._scale.shape != (index.dim,):
                raise _format_error(directory / INT8_FILE, f"shape {index._int8.shape}")
        return index

    def _new_index(self):
        try:
            index = faiss.index_binary_factory(self.bits, self.spec)
        except RuntimeError as exc:
            raise InputError(
                f"FAISS cannot build binary index spec {self.spec!r} for {self.bits} bits; "
                f"use one of {_SPEC_EXAMPLES}."
            ) from exc
        inner = innermost(index)
        if hasattr(inner, "hnsw"):
            inner.hnsw.efConstruction = 200
        if ivf_of(index) is None:
            index = faiss.IndexBinaryIDMap(index)
        return index

    def _check(self, array: np.ndarray, label: str) -> np.ndarray:
        if not isinstance(array, np.ndarray) or array.ndim != 2:
            raise InputError(f"{label} must be a 2-D (n, {self.dim}) float32 array.")
        if array.dtype != np.float32:
            raise InputError(f"{label} must be float32, got {array.dtype}.")
        if array.shape[1] != self.dim:
            raise InputError(
                f"{label} have dimension {array.shape[1]}, this index holds {self.dim}-d vectors."
            )
        if label == "vectors" and not np.isfinite(array).all():
            raise InputError("vectors contain NaN or infinite values; cannot index them.")
        return array


def _format_error(path: Path, reason: object) -> IndexFormatError:
    return IndexFormatError(
        f"The binary index file {path} is unusable: {reason}. Rebuild the index: run "
        "`retriever index --force`; it is derived from vectors.npy."
    )
