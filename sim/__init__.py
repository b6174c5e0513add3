"""Kafka Lab's simulator: a deterministic, SimPy-based model of an Apache Kafka cluster.

Learner-facing names only; everything else lives in the modules named after Kafka's concepts
(``sim.partitioners``, ``sim.producer``, ``sim.consumer``; the broker side in ``sim.broker``, …).

    >>> from sim import Kernel, Producer
    >>> kernel = Kernel(seed=7)
    >>> _ = kernel.cluster.create_topic("orders", partitions=6)
    >>> Producer(kernel).send("orders", key="alice", value="book").get().partition
    3
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "Cluster": "sim.broker.cluster",
    "KAFKA_VERSION": "sim.config",
    "Consumer": "sim.consumer", "ConsumerRecord": "sim.consumer",
    "ConsumerRecords": "sim.consumer",
    "ConfigError": "sim.errors", "KafkaLabError": "sim.errors", "PartitionerError": "sim.errors",
    "ScenarioError": "sim.errors", "SimulationError": "sim.errors",
    "UnknownTopicError": "sim.errors",
    "Kernel": "sim.kernel",
    "ClusterMetadata": "sim.partitioners", "Partitioner": "sim.partitioners",
    "RoundRobinPartitioner": "sim.partitioners", "VipPartitioner": "sim.partitioners",
    "murmur2": "sim.partitioners", "partition_for_key": "sim.partitioners",
    "Producer": "sim.producer",
    "RecordMetadata": "sim.records", "TopicPartition": "sim.records",
    "KeyList": "sim.workloads", "NoKeys": "sim.workloads", "UniformKeys": "sim.workloads",
    "Workload": "sim.workloads", "ZipfKeys": "sim.workloads", "vip_customers": "sim.workloads",
}
"""The module each public name comes from: ``import sim`` imports none of them (pandas and the
whole cluster take most of a second), the first use of a name imports its module (PEP 562)."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


__all__ = [
    "KAFKA_VERSION",
    "Cluster",
    "ClusterMetadata",
    "ConfigError",
    "Consumer",
    "ConsumerRecord",
    "ConsumerRecords",
    "KafkaLabError",
    "Kernel",
    "KeyList",
    "NoKeys",
    "Partitioner",
    "PartitionerError",
    "Producer",
    "RecordMetadata",
    "RoundRobinPartitioner",
    "ScenarioError",
    "SimulationError",
    "TopicPartition",
    "UniformKeys",
    "UnknownTopicError",
    "VipPartitioner",
    "Workload",
    "ZipfKeys",
    "murmur2",
    "partition_for_key",
    "vip_customers",
]
