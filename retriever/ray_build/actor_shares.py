"""How the encoder actors of a Ray build share their hosts' CPUs.

Each actor builds its encoder from config, and the CUDA fast path (:mod:`encoders.fast_encode`)
starts batch workers, processes that tokenise and pad batches, one per core but one by
default. Left alone, N actors on one host would start N x (cores - 1) of them. So each actor
reserves its share of the host's CPUs from Ray (``num_cpus`` of ``map_batches``) and its encoder
gets as many batch workers as that share holds but one (the actor's own process launches the
forward passes).

One CPU of every host is left out of the shares: an actor holds its CPUs while it lives, and
the chunking tasks that feed the actors need a CPU to run on (a 2-CPU cluster whose one actor
took both would chunk nothing).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from retriever import registry

__all__ = ["ActorShare", "CHUNK_CPUS", "actor_share", "hosts_of", "actor_config"]

# CPUs of each host kept for the chunking tasks (see the module docstring).
CHUNK_CPUS = 1
# The encoder option that sets the fast path's batch workers.
_OPTION = "batch_workers"


@dataclass(frozen=True)
class ActorShare:
    """What each encoder actor takes.

    Attributes:
        num_cpus: CPUs the actor reserves from Ray (at least 1).
        batch_workers: batch-worker processes its encoder starts (at least 1).
    """

    num_cpus: int
    batch_workers: int


def hosts_of(nodes: Iterable[dict]) -> list[tuple[int, int]]:
    """``(cpus, gpus)`` of each live node of ``ray.nodes()``."""
    hosts = []
    for node in nodes:
        if node.get("Alive", True):
            resources = node.get("Resources", {})
            hosts.append((int(resources.get("CPU", 0)), int(resources.get("GPU", 0))))
    return hosts


def actor_share(hosts: Sequence[tuple[int, int]], actors: int, *, gpu_actors: bool
                ) -> ActorShare:
    """The share of each of ``actors`` encoder actors over ``hosts`` (``(cpus, gpus)`` each).

    Ray gives every actor of one ``map_batches`` the same ``num_cpus``, so the share is what
    fits on every host that may hold actors. An actor holding a GPU (``gpu_actors``) goes
    to a host with a free GPU, so a host holds at most ``min(gpus, actors)`` of them; actors
    without a GPU are packed by CPUs, so the share is the largest that still places all of
    them. Either way at least 1 CPU and 1 batch worker.
    """
    usable = [(max(0, cpus - CHUNK_CPUS), gpus) for cpus, gpus in hosts]
    gpu_hosts = [(cpus, gpus) for cpus, gpus in usable if gpus > 0]
    if gpu_actors and gpu_hosts:
        num_cpus = min(cpus // min(gpus, actors) for cpus, gpus in gpu_hosts)
    else:
        num_cpus = max((c for c in range(1, max((cpus for cpus, _ in usable), default=0) + 1)
                        if sum(cpus // c for cpus, _ in usable) >= actors), default=1)
    num_cpus = max(1, num_cpus)
    return ActorShare(num_cpus=num_cpus, batch_workers=max(1, num_cpus - 1))


def actor_config(name: str, config: dict, batch_workers: int | None) -> dict:
    """The config an actor builds encoder ``name`` from: ``config`` with ``batch_workers``
    added when it is given, the config sets none, and the encoder takes the option; else
    ``config`` itself. The option is left out of the fingerprint, so the actor's vectors
    are those of the encoder ``config`` makes."""
    if batch_workers is None or _OPTION in config:
        return config
    if _OPTION not in inspect.signature(registry.load("encoder", name)).parameters:
        return config
    return {**config, _OPTION: batch_workers}
