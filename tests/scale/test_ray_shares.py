"""The encoder actors of a Ray build take their share of each host's CPUs, and their encoders
as many batch workers as that share holds: never N actors x (cores - 1) processes."""

from __future__ import annotations

import numpy as np
import pytest

from retriever.ray_build.actor_shares import (
    CHUNK_CPUS,
    ActorShare,
    actor_config,
    actor_share,
    hosts_of,
)

# (hosts as (cpus, gpus), actors, GPU actors) -> (num_cpus, batch_workers)
CASES = [
    # One GPU host: the one actor takes all but the chunking CPU.
    ([(16, 1)], 1, True, (15, 14)),
    # Two actors on a 2-GPU host split it: not 2 x 15 batch workers.
    ([(16, 2)], 2, True, (7, 6)),
    ([(16, 8)], 8, True, (1, 1)),
    ([(128, 8)], 8, True, (15, 14)),
    # Fewer actors than GPUs: all of them may land on one host.
    ([(16, 8)], 2, True, (7, 6)),
    # Hosts that differ: one num_cpus for all actors, so what the tightest host allows.
    ([(16, 1), (32, 4)], 5, True, (7, 6)),
    # Hosts without GPUs hold no GPU actor and do not limit the share.
    ([(2, 0), (16, 1)], 1, True, (15, 14)),
    # The local 2-CPU cluster of the tests: one CPU to chunk, one for the actor.
    ([(2, 0)], 1, False, (1, 1)),
    # CPU actors are packed by CPUs: the largest share that still places all of them.
    ([(16, 0)], 3, False, (5, 4)),
    ([(8, 0), (8, 0)], 2, False, (7, 6)),
    # Both must fit somewhere: 7 CPUs each would leave one actor without a host.
    ([(8, 0), (4, 0)], 2, False, (3, 2)),
    ([(8, 0), (4, 0)], 3, False, (3, 2)),
    # More actors than CPUs, or a 1-CPU host: at least one CPU and one worker each.
    ([(4, 0)], 8, False, (1, 1)),
    ([(1, 0)], 1, False, (1, 1)),
    ([(1, 1)], 1, True, (1, 1)),
]


@pytest.mark.parametrize(("hosts", "actors", "gpu_actors", "expected"), CASES)
def test_actor_share(hosts, actors, gpu_actors, expected):
    share = actor_share(hosts, actors, gpu_actors=gpu_actors)
    assert share == ActorShare(*expected)


@pytest.mark.parametrize(("hosts", "actors", "gpu_actors", "expected"), CASES)
def test_no_host_is_overcommitted(hosts, actors, gpu_actors, expected):
    share = actor_share(hosts, actors, gpu_actors=gpu_actors)
    usable = [max(0, cpus - CHUNK_CPUS) for cpus, _ in hosts]
    if gpu_actors:  # each GPU host can hold its most actors and keep its chunking CPU
        for room, (_, gpus) in zip(usable, hosts, strict=True):
            if gpus and room:
                assert min(gpus, actors) * share.num_cpus <= room
    elif sum(usable) >= actors:  # all CPU actors fit beside the chunking CPUs
        assert sum(room // share.num_cpus for room in usable) >= actors
    assert share.batch_workers == max(1, share.num_cpus - 1)


def test_hosts_of_reads_live_nodes():
    nodes = [{"Alive": True, "Resources": {"CPU": 16.0, "GPU": 2.0, "memory": 1e9}},
             {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}},
             {"Alive": True, "Resources": {"CPU": 4.0}}]
    assert hosts_of(nodes) == [(16, 2), (4, 0)]


def test_actor_config_adds_batch_workers_only_where_it_fits(tiny_model_dir):
    config = {"model": str(tiny_model_dir)}
    assert actor_config("sentence-transformers", config, 6) == {**config, "batch_workers": 6}
    assert actor_config("sentence-transformers", config, None) is config
    asked = {**config, "batch_workers": 2}
    assert actor_config("sentence-transformers", asked, 6) is asked  # the config's own wins
    # The static encoder has no batch workers: its config is left as it is.
    assert actor_config("static", {}, 6) == {}


def test_an_actor_encoder_has_the_fingerprint_and_vectors_of_the_build_encoder(tiny_model_dir):
    from retriever import registry
    from retriever.ray_build.cluster import Embedder

    config = {"model": str(tiny_model_dir)}
    build = registry.create("encoder", "sentence-transformers", config)
    actor = Embedder([("main", "sentence-transformers", config)], {}, batch_workers=1)
    (_, encoder, _), = actor.encoders
    assert encoder.batch_workers == 1 and build.batch_workers is None
    assert encoder.fingerprint() == build.fingerprint()
    assert encoder.config() == {**build.config(), "batch_workers": 1}
    texts = [f"def helper_{i}(x):\n    return x + {i}\n" for i in range(6)]
    np.testing.assert_allclose(encoder.encode_documents(texts), build.encode_documents(texts),
                               atol=1e-5)
