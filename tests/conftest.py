"""Shared fixtures and the Hypothesis profile of the test suite.

Fixtures build small, seeded worlds: a ``kernel`` (seed 0, 3 brokers), a ``small_cluster`` with
one topic on it, and a ``make_producer`` factory. Nothing here is autouse and nothing changes
global state beyond selecting the Hypothesis profile.

Hypothesis profiles (pick one with ``HYPOTHESIS_PROFILE=name``):

- ``ci`` (default): derandomized, so every run tries the same examples; no deadline, because
  simulated runs vary in wall-clock time; a modest number of examples.
- ``thorough``: random examples and many more of them, for hunting bugs locally.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings

from sim import trace as events
from sim.broker.cluster import Cluster
from sim.kernel import Kernel
from sim.producer import Producer
from sim.workloads import Workload

settings.register_profile("ci", deadline=None, derandomize=True, max_examples=50)
settings.register_profile("thorough", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: The topic that ``small_cluster`` creates, and its partition count.
SMALL_TOPIC = "orders"
SMALL_PARTITIONS = 6


@pytest.fixture
def kernel() -> Kernel:
    """A fresh kernel: seed 0, three brokers, no topics, simulated time 0."""
    return Kernel(seed=0, brokers=3)


@pytest.fixture
def small_cluster(kernel: Kernel) -> Cluster:
    """The ``kernel``'s cluster with topic ``orders``: 6 partitions, replication factor 3."""
    kernel.cluster.create_topic(SMALL_TOPIC, partitions=SMALL_PARTITIONS, replication_factor=3)
    return kernel.cluster


@pytest.fixture
def produce_errors_kernel() -> Kernel:
    """Two brokers whose trace holds six produce errors: broker 0 two refused appends
    (NOT_ENOUGH_REPLICAS, OUT_OF_ORDER_SEQUENCE_NUMBER), a NOT_LEADER_OR_FOLLOWER and a
    REQUEST_TIMED_OUT; broker 1 a REQUEST_TIMED_OUT and a NOT_LEADER_OR_FOLLOWER."""
    kernel = Kernel(seed=1, brokers=2)
    kernel.cluster.create_topic("payments", 1, 2)
    for node, error in [(0, "NOT_ENOUGH_REPLICAS"), (0, "OUT_OF_ORDER_SEQUENCE_NUMBER"),
                        (0, "NOT_LEADER_OR_FOLLOWER"), (0, "REQUEST_TIMED_OUT"),
                        (1, "REQUEST_TIMED_OUT"), (1, "NOT_LEADER_OR_FOLLOWER")]:
        kernel.trace.emit(events.KINDS["produce.error"], 0.0, f"broker-{node}", "payments", 0,
                          node, error, 1)
    return kernel


ProducerFactory = Callable[..., Producer]


@pytest.fixture
def make_producer(kernel: Kernel) -> ProducerFactory:
    """Make producers on the ``kernel``: ``make_producer({"linger.ms": 0}, workload=...)``.

    A ``workload`` may be a ``Workload`` or a dict of ``Workload.generate`` arguments (topic,
    records, rate_per_s, keys, …), generated from a child stream of the kernel.
    """

    def make(config: dict[str, Any] | None = None,
             workload: Workload | dict[str, Any] | None = None) -> Producer:
        if isinstance(workload, dict):
            workload = Workload.generate(kernel.spawn_rng(), **workload)
        return Producer(kernel, config, workload=workload)

    return make
