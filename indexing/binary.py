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
    sequential_labels,
    training_sample,
)
from indexing.quantize import (
    RowMap,
    binarize,
    check_rescore,
    int8_scale,
    to_int8,
)
from indexing.table import NPY_ERRORS
from retriever.errors import InputError

__all__ = ["BinaryIndex"]

FORMAT_NAME = "dense-retriever-faiss-binary"
FORMAT_VERSION = 1
META_FILE = "binary.json"
INT8_FILE = "int8.npy"
SCALE_FILE = "int8_scale.npy"
_SPEC_EXAMPLES = '"BFlat", "BHNSW32", "BIVF1024"'


class BinaryIndex(FaissComponent, label="binary", binary=True,
                 meta=(META_FILE, FORMAT_NAME, FORMAT_VERSION)):
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
        vectors = self._check_matrix(vectors, "vectors")
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

    def _raw_search(self, queries: np.ndarray, depth: int, params):
        """Hamming search; without rescoring, scores are ``1 - 2 * hamming / bits`` (in
        [-1, 1], higher is closer)."""
        distances, labels = self._index.search(
            binarize(queries[:, : self.bits]), depth, params=params
        )
        return (1.0 - 2.0 * distances.astype(np.float32) / self.bits).astype(np.float32), labels

    def _fetcher(self):
        if self.rescore == "int8" and self._int8 is not None:
            codes, scale = self._int8, self._scale
            return lambda rows: codes[rows].astype(np.float32) * scale
        if self.rescore is not None and self._vectors is not None:
            vectors = self._vectors
            return lambda rows: np.asarray(vectors[rows], dtype=np.float32)
        return None

    def _before_save(self, directory: Path) -> dict:
        if self.rescore == "int8":
            if self._int8 is None:
                raise InputError("rescore='int8' needs the vectors attached before save().")
            np.save(directory / INT8_FILE, self._int8)
            np.save(directory / SCALE_FILE, self._scale)
        return {}

    def _adopt(self, meta: dict, saved: BinaryIndex, loaded, path: Path) -> None:
        """Check what :meth:`load` read against this configuration."""
        if (self.spec, self.dim, self.bits) != (saved.spec, saved.dim, saved.bits):
            raise self.format_error(
                path, f"it holds a {saved.spec!r} index of {saved.bits} bits over {saved.dim}-d "
                f"vectors; the configuration asks for {self.spec!r}, {self.bits}, {self.dim}",
            )
        if loaded.d != self.bits:
            raise self.format_error(path, f"its codes have {loaded.d} bits, expected {self.bits}")

    def _attach_loaded(self, vectors, labels, directory: Path, mmap: bool, ntotal: int) -> None:
        # Not attach(): that would quantise the vectors again; the int8 codes are saved.
        self._vectors = vectors
        self._rows = None if labels is None or vectors is None else RowMap(labels)
        if self.rescore != "int8":
            return
        try:
            self._int8 = np.load(directory / INT8_FILE, mmap_mode="r" if mmap else None,
                                 allow_pickle=False)
            self._scale = np.load(directory / SCALE_FILE, allow_pickle=False)
        except NPY_ERRORS as exc:
            raise self.format_error(directory / INT8_FILE, exc) from exc
        if self._int8.shape != (ntotal, self.dim) or self._scale.shape != (self.dim,):
            raise self.format_error(directory / INT8_FILE, f"shape {self._int8.shape}")

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

    def _check_matrix(self, array: np.ndarray, label: str) -> np.ndarray:
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
