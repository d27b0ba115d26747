"""Process-wide encoder state: one load per model, and a torch thread cap for queries.

DESIGN.md asks for no module-level state that changes behaviour. The model cache holds loaded
weights that nobody mutates, keyed by a digest of the files they came from (plus the load
settings): a hit returns exactly what a fresh load would, only without the seconds it costs.
The thread cap changes a process-global torch setting for the duration of one call and puts
it back, under a lock, so no caller observes a different setting afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["capped_threads", "clear_model_cache", "model_loads", "shared_model"]

T = TypeVar("T")

_MODELS: dict[Hashable, object] = {}
_LOAD_LOCK = threading.Lock()
_loads = 0

# torch.set_num_threads is process-global: two overlapping capped calls would restore each
# other's values in the wrong order, so they take turns. Re-entrant for nested use.
_THREADS_LOCK = threading.RLock()


def shared_model(key: Hashable, load: Callable[[], T]) -> T:
    """The model cached under ``key``, loading it with ``load()`` on first use.

    Thread-safe: concurrent first uses of one key load it once; the others wait for it.
    """
    global _loads
    model = _MODELS.get(key)
    if model is None:
        with _LOAD_LOCK:
            model = _MODELS.get(key)
            if model is None:
                model = load()
                _MODELS[key] = model
                _loads += 1
    return model  # type: ignore[return-value]


def clear_model_cache() -> None:
    """Drop every cached model, so its memory goes once no encoder call still holds it.

    For tests and long-lived servers; encoders keep working and load again on next use.
    """
    with _LOAD_LOCK:
        _MODELS.clear()


def model_loads() -> int:
    """How many models this process has loaded so far (cache misses), for tests and stats."""
    return _loads


@contextmanager
def capped_threads(threads: int | None) -> Iterator[None]:
    """Run the block with at most ``threads`` torch intra-op threads, then restore the setting.

    torch defaults to one thread per core; a one-query forward pass gains little from them and
    slows badly when other processes compete for the cores (about 1 s instead of 50 ms). The
    setting is process-global, so capped blocks run one at a time, and any torch work on other
    threads meanwhile also runs capped. ``None`` leaves torch alone and takes no lock.
    """
    if threads is None:
        yield
        return
    import torch  # here, not at the top: importing this module must not cost torch's import

    with _THREADS_LOCK:
        previous = torch.get_num_threads()
        if threads >= previous:
            yield
            return
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)
