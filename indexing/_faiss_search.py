"""Searching a FAISS structure: what lies under its wrappers, per-call search parameters
(never set on the shared index), and one OpenMP thread for a handful of queries."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import faiss

__all__ = ["innermost", "ivf_of", "INTERACTIVE_QUERIES", "one_thread", "search_params"]


def innermost(index):
    """The structure under IDMap / PreTransform wrappers (downcast to its concrete class)."""
    while True:
        if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2, faiss.IndexPreTransform,
                              faiss.IndexBinaryIDMap, faiss.IndexBinaryIDMap2)):
            index = faiss.downcast_index(index.index) if isinstance(
                index, (faiss.IndexIDMap, faiss.IndexIDMap2, faiss.IndexPreTransform)
            ) else faiss.downcast_IndexBinary(index.index)
            continue
        return index


def ivf_of(index):
    """The IVF structure inside ``index`` (float or binary), or None."""
    inner = innermost(index)
    if isinstance(inner, (faiss.IndexIVF, faiss.IndexBinaryIVF)):
        return inner
    return None


# Searches of at most this many queries (one person's, or an agent's) run on one OpenMP
# thread: waking FAISS's thread team costs more than it gains for them, and on a busy machine
# far more (one query over 100,000 vectors, 2 cores under load 8: p50 101 ms with two threads,
# 23 ms with one). Batches keep FAISS's setting.
INTERACTIVE_QUERIES = 4
_threads_lock = threading.Lock()
_one_thread_calls = 0
_saved_threads = 0


@contextmanager
def one_thread(wanted: bool) -> Iterator[None]:
    """Run the body with FAISS on one OpenMP thread when ``wanted``; the setting is the
    process's, so concurrent calls share one switch and the last to leave restores it."""
    global _one_thread_calls, _saved_threads
    if not wanted:
        yield
        return
    with _threads_lock:
        if _one_thread_calls == 0:
            _saved_threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
        _one_thread_calls += 1
    try:
        yield
    finally:
        with _threads_lock:
            _one_thread_calls -= 1
            if _one_thread_calls == 0:
                faiss.omp_set_num_threads(_saved_threads)


def search_params(index, *, k: int, ef_search: int, nprobe: int):
    """FAISS SearchParameters for one call, or None when the structure takes none.

    Knobs are passed per call and never set on the shared index (``index.nprobe = ...``),
    so threads searching one index with different settings do not race.
    Returns ``(params, keep_alive)``: SWIG does not own nested parameter objects, so the
    caller keeps ``keep_alive`` referenced until the search returns.
    """
    inner = innermost(index)
    if isinstance(inner, (faiss.IndexIVF, faiss.IndexBinaryIVF)):
        params = faiss.SearchParametersIVF(nprobe=min(int(nprobe), int(inner.nlist)))
    elif hasattr(inner, "hnsw"):
        params = faiss.SearchParametersHNSW(efSearch=max(int(ef_search), int(k)))
    else:
        return None, ()
    keep = [params]
    node = index
    # Wrappers between the top and the structure: PreTransform needs its own envelope.
    if isinstance(node, (faiss.IndexIDMap, faiss.IndexIDMap2)):
        node = faiss.downcast_index(node.index)
    if isinstance(node, faiss.IndexPreTransform):
        outer = faiss.SearchParametersPreTransform()
        outer.index_params = params
        keep.append(outer)
        params = outer
    return params, keep
