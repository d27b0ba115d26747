"""The ANN kinds ``ann_million.py`` measures, and the arithmetic of its rows: our binary kind
with int8 rescoring, building and saving a kind, recall@k against exact search, latency
percentiles, the memory extrapolation, and the machine's CPU name and resident memory."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

K = 10


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class BinaryInt8:
    """Our binary kind with int8 rescoring (indexing/binary.py's ``BFlat``, ``rescore="int8"``):
    sign bits searched by Hamming distance, ``k * rescore_multiplier`` candidates re-ranked by
    the float query's inner product with per-dimension scaled int8 copies of the vectors."""

    def __init__(self, faiss, codes_index, int8: np.ndarray, scale: np.ndarray) -> None:
        self.faiss, self.index, self.int8, self.scale = faiss, codes_index, int8, scale
        self.rescore_multiplier = 4

    @classmethod
    def build(cls, faiss, vectors: np.ndarray) -> BinaryInt8:
        index = faiss.IndexBinaryFlat(vectors.shape[1])
        index.add(np.packbits(vectors > 0, axis=1))
        scale = np.maximum(np.abs(vectors).max(axis=0) / 127.0, 1e-8).astype(np.float32)
        int8 = np.clip(np.rint(vectors / scale), -127, 127).astype(np.int8)
        return cls(faiss, index, int8, scale)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        _, candidates = self.index.search(np.packbits(queries > 0, axis=1),
                                          k * self.rescore_multiplier)
        scaled = queries * self.scale
        scores = np.einsum("qd,qcd->qc", scaled, self.int8[candidates].astype(np.float32))
        top = np.argsort(-scores, axis=1)[:, :k]
        return np.take_along_axis(scores, top, 1), np.take_along_axis(candidates, top, 1)

    def save(self, stem: Path) -> None:
        self.faiss.write_index_binary(self.index, str(stem) + ".faissb")
        np.save(str(stem) + ".int8.npy", self.int8)
        np.save(str(stem) + ".scale.npy", self.scale)

    @classmethod
    def load(cls, faiss, stem: Path) -> BinaryInt8:
        return cls(faiss, faiss.read_index_binary(str(stem) + ".faissb"),
                   np.load(str(stem) + ".int8.npy"), np.load(str(stem) + ".scale.npy"))


def build_kind(faiss, spec: str, vectors: np.ndarray, sample: np.ndarray,
               centroids: np.ndarray | None):
    """``spec`` built over ``vectors`` (inner product); IVF kinds share ``centroids``."""
    if spec == "BFlat,int8":
        return BinaryInt8.build(faiss, vectors)
    index = faiss.index_factory(vectors.shape[1], spec, faiss.METRIC_INNER_PRODUCT)
    if spec.startswith("IVF") and centroids is not None:
        # The coarse quantizer trained once: a trained quantizer holding nlist rows makes
        # IndexIVF.train skip k-means and train only the codes (SQ, PQ, refine).
        faiss.extract_index_ivf(index).quantizer.add(centroids)
    if not index.is_trained:
        index.train(sample)
    index.add(vectors)
    return index


def kind_files(stem: Path, spec: str) -> list[Path]:
    parts = [".faissb", ".int8.npy", ".scale.npy"] if spec == "BFlat,int8" else [".faiss"]
    return [Path(str(stem) + part) for part in parts]


def save_kind(faiss, index, stem: Path) -> int:
    if isinstance(index, BinaryInt8):
        index.save(stem)
        spec = "BFlat,int8"
    else:
        faiss.write_index(index, str(stem) + ".faiss")
        spec = ""
    return sum(p.stat().st_size for p in kind_files(stem, spec))


def recall_at(found: np.ndarray, exact: np.ndarray, k: int = K) -> float:
    """Mean over queries of |found top k & exact top k| / k (rows of ids, -1 padded)."""
    hits = [len(set(f[:k].tolist()) & set(e[:k].tolist()) - {-1}) for f, e in zip(found, exact,
                                                                                 strict=True)]
    return float(np.mean(hits)) / k


def set_params(faiss, index, params: dict) -> None:
    for name, value in params.items():
        if isinstance(index, BinaryInt8):
            setattr(index, name, int(value))
        else:
            faiss.ParameterSpace().set_index_parameter(index, name, value)


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean())}


def extrapolate(file_bytes: int, resident: int, n: int, fixed: int, target: int = 10_000_000
                ) -> dict:
    """Bytes a vector (resident minus the size-independent part, over n) and the memory a
    ``target``-vector index would take at that rate: an extrapolation, not a measurement."""
    per_vector = max(resident - fixed, 0) / n
    return {"bytes_per_vector": per_vector, "fixed_bytes": fixed,
            "file_bytes_per_vector": (file_bytes - fixed) / n,
            "extrapolated_10m_gb": (fixed + per_vector * target) / 1e9}


def fixed_bytes(spec: str, dim: int) -> int:
    """The part of a kind that does not grow with the vectors: IVF centroids, code tables."""
    total = 0
    match = re.match(r"IVF(\d+)", spec)
    if match:
        total += int(match.group(1)) * dim * 4
    total += 256 * dim * 4 * len(re.findall(r"PQ\d+", spec))  # M tables of 256 x d/M
    return total


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
