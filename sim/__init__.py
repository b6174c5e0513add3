"""Kafka Lab's simulator: a deterministic, SimPy-based model of an Apache Kafka cluster.

Learner-facing names only; everything else lives in the modules named after Kafka's concepts
(``sim.partitioners``, ``sim.producer``, ``sim.consumer``; the broker side in ``sim.broker``, …).

    >>> from sim import Kernel, Producer
    >>> kernel = Kernel(seed=7)
    >>> _ = kernel.cluster.create_topic("orders", partitions=6)
    >>> Producer(kernel).send("orders", key="alice", value="book").get().partition
    3
"""

from sim.broker.cluster import Cluster
from sim.config import KAFKA_VERSION
from sim.consumer import Consumer, ConsumerRecord, ConsumerRecords
from sim.errors import (
    ConfigError,
    KafkaLabError,
    PartitionerError,
    ScenarioError,
    SimulationError,
    UnknownTopicError,
)
from sim.kernel import Kernel
from sim.partitioners import (
    ClusterMetadata,
    Partitioner,
    RoundRobinPartitioner,
    VipPartitioner,
    murmur2,
    partition_for_key,
)
from sim.producer import Producer
from sim.records import RecordMetadata, TopicPartition
from sim.workloads import KeyList, NoKeys, UniformKeys, Workload, ZipfKeys, vip_customers

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
