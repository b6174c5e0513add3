"""Committed offsets: where a group's offsets live and how they are stored.

A group's committed offsets are records in the internal topic ``__consumer_offsets``. Which of
its partitions holds a group is Kafka's ``partitionFor(groupId)``:
``Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions``, with Java's
``String.hashCode``. The broker that leads that partition is the group's coordinator.
Example: ``"billing".hashCode()`` is -109829509, ``Utils.abs`` makes it 109829509, and
109829509 % 50 = 9, so partition 9 holds group "billing".

The committed offset is the offset of the **next** record to read (last processed + 1). A
commit of the consumer's positions also carries the leader epoch of the last record read
(``OffsetCommit``'s ``committedLeaderEpoch``, KIP-320), so that whoever restores the offset can
ask the partition's leader whether that record is still in its log (see
``sim.consumer.subscription``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.broker.log import RECORD_COLUMNS
from sim.consumer.assignors import java_string_hash
from sim.consumer.config import OFFSETS_TOPIC
from sim.errors import ConfigError
from sim.records import TopicPartition

RECORD_BATCH_OVERHEAD = 61  # bytes of a v2 record batch header, as in the producer
OFFSET_COMMIT_TIMEOUT_MS = 5000  # offsets.commit.timeout.ms: how long a commit may wait


def java_abs(value: int) -> int:
    """Kafka's ``Utils.abs``: like ``Math.abs`` but maps Integer.MIN_VALUE to 0."""
    return 0 if value == -(1 << 31) else abs(value)


def partition_for(group_id: str, num_partitions: int) -> int:
    """The ``__consumer_offsets`` partition of a group (see the module docstring)."""
    return java_abs(java_string_hash(group_id)) % num_partitions


@dataclass(frozen=True)
class OffsetAndMetadata:
    """An offset with the leader epoch of the record before it
    (``org.apache.kafka.clients.consumer.OffsetAndMetadata``).

    What ``committed()`` returns, and what ``commit_sync({tp: ...})`` and ``seek(tp, ...)``
    take: ``OffsetAndMetadata(60, leader_epoch=3)``. ``leader_epoch`` is Kafka's
    ``leaderEpoch()``, None when unknown (offsets given by hand, a transaction's); with one, a
    consumer that seeks to the offset validates it against the partition's leader first
    (KIP-320). The group coordinator also keeps when and by whom the offset was committed
    (``commit_ms``, ``member_id``, ``generation``); they are left out of comparisons.

    Raises:
        ConfigError: for a negative offset (Kafka's ``IllegalArgumentException``).
    """

    offset: int
    leader_epoch: int | None = None
    commit_ms: float = field(default=math.nan, compare=False, repr=False)
    member_id: str = field(default="", compare=False, repr=False)
    generation: int = field(default=-1, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.offset < 0:
            raise ConfigError(f"OffsetAndMetadata: the offset must be ≥ 0 but got "
                              f"{self.offset}.")


def ensure_offsets_topic(cluster: Any, num_partitions: int, replication_factor: int) -> Any:
    """Create ``__consumer_offsets`` the first time a group needs it (as Kafka does lazily)."""
    if OFFSETS_TOPIC not in cluster.topics:
        rf = max(1, min(replication_factor, len(cluster.brokers)))
        cluster.create_topic(OFFSETS_TOPIC, num_partitions, rf,
                             {"cleanup.policy": "compact"})
    return cluster.topic(OFFSETS_TOPIC)


def append_commit(kernel: Any, node: int, partition: int, group_id: str,
                  offsets: dict[TopicPartition, int], respond: Callable[[Any], None],
                  producer_id: int = -1, producer_epoch: int = 0,
                  tombstone: bool = False) -> None:
    """Write one offset-commit batch (a record per partition) to the offsets topic, acks=all.

    The coordinator on broker ``node`` appends as a leader does, so followers replicate it;
    a transactional producer's offsets (``producer_id`` ≥ 0) go in a transactional batch;
    ``respond`` gets the append's result once the high watermark passes it (or an error). The
    lab keeps no payloads: each record's key hash stands for its key (group, topic, partition).
    With ``tombstone`` the records delete those offsets (null values, value size -1).
    """
    n = len(offsets)
    keys = [java_string_hash(f"{group_id}/{tp.topic}/{tp.partition}") for tp in offsets]
    size = RECORD_BATCH_OVERHEAD + sum(24 + len(group_id) + len(tp.topic) for tp in offsets)
    values = {"timestamp_ms": np.full(n, int(kernel.now_ms), np.int64),
              "key_hash": np.array(keys, np.int32),
              "value_size": np.full(n, -1 if tombstone else 24, np.int32)}
    columns = {name: values.get(name, np.full(n, -1, dtype))
               for name, dtype in RECORD_COLUMNS.items()}
    kernel.replicas.append(node, OFFSETS_TOPIC, partition, columns, size, producer_id, -1,
                           "all", OFFSET_COMMIT_TIMEOUT_MS, respond, producer_epoch,
                           transactional=producer_id >= 0)
