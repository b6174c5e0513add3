"""Partitioners: which partition of a topic a record goes to.

Mirrors ``org.apache.kafka.clients.producer.Partitioner`` (the interface learners implement) and
the built-in behaviour of ``KafkaProducer.partition`` / ``BuiltInPartitioner`` (KIP-794).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sim.errors import ConfigError
from sim.murmur2 import murmur2, murmur2_array, partition_for_key, to_positive

__all__ = [
    "BuiltInPartitioner",
    "ClusterMetadata",
    "DefaultPartitioner",
    "Partitioner",
    "RoundRobinPartitioner",
    "StickyPartitionCache",
    "UniformStickyPartitioner",
    "VipPartitioner",
    "murmur2",
    "murmur2_array",
    "partition_for_key",
    "resolve_partitioner",
    "to_positive",
]


@dataclass(frozen=True)
class ClusterMetadata:
    """What a partitioner may know about the cluster (Kafka's ``org.apache.kafka.common.Cluster``).

    ``partitions`` maps each topic to its number of partitions; ``unavailable`` holds
    ``(topic, partition)`` pairs whose leader is currently unknown or unreachable.
    """

    partitions: Mapping[str, int]
    unavailable: frozenset[tuple[str, int]] = frozenset()
    _available: dict[str, tuple[int, ...]] = field(default_factory=dict, compare=False,
                                                   repr=False)

    def partition_count_for_topic(self, topic: str) -> int:
        return self.partitions[topic]

    def partitions_for_topic(self, topic: str) -> list[int]:
        return list(range(self.partitions[topic]))

    def available_partitions_for_topic(self, topic: str) -> list[int]:
        """Partitions whose leader is known and alive. A snapshot never changes, so the answer
        is worked out once per topic (partitioners ask for every record)."""
        available = self._available.get(topic)
        if available is None:
            available = tuple(p for p in range(self.partitions[topic])
                              if (topic, p) not in self.unavailable)
            self._available[topic] = available
        return list(available)  # a copy: a partitioner may change its list


@runtime_checkable
class Partitioner(Protocol):
    """The interface a custom partitioner implements (Kafka's ``Partitioner``).

    Only ``partition`` is required. ``configure(configs)`` is called once with the producer's
    configs before the first record, and ``close()`` when the producer closes, if they exist.
    ``key_bytes`` is the serialized key (UTF-8 for strings) or ``None`` for a key-less record.
    """

    def partition(
        self,
        topic: str,
        key: Any,
        key_bytes: bytes | None,
        value: Any,
        value_bytes: bytes | None,
        cluster: ClusterMetadata,
    ) -> int: ...



RandomSource = Callable[[], int]
"""Returns a non-negative int, like ``Utils.toPositive(ThreadLocalRandom.current().nextInt())``."""


def random_source(rng: np.random.Generator, block: int = 256) -> RandomSource:
    """Draw non-negative 31-bit ints from a kernel random stream, ``block`` at a time."""
    pending: list[int] = []

    def draw() -> int:
        if not pending:
            pending.extend(reversed(rng.integers(0, 2**31, size=block).tolist()))
        return pending.pop()

    return draw


class BuiltInPartitioner:
    """The default partitioner for key-less records since Kafka 3.3 (KIP-794 "uniform sticky").

    Mirrors ``org.apache.kafka.clients.producer.internals.BuiltInPartitioner``: one instance per
    topic. It sticks to one partition until at least ``batch.size`` bytes were produced to it
    **and** that partition's last batch is full, or until ``2 × batch.size`` bytes regardless.

    With adaptive partitioning, the sender refreshes queue sizes (batches waiting per partition)
    and the next partition is drawn with weights ``max + 1 - queue``. Worked example from Kafka:
    queue sizes [0, 3, 1] → weights [4, 1, 3] → cumulative [4, 5, 8]; a draw ``r % 8`` of
    0–3 picks partition 0, 4 picks 1, 5–7 pick 2. A slow broker's partitions have long queues, so
    they are picked less often.
    """

    def __init__(self, topic: str, sticky_batch_size: int, random: RandomSource) -> None:
        if sticky_batch_size < 1:
            raise ConfigError(f"stickyBatchSize must be >= 1 but got {sticky_batch_size}")
        self.topic = topic
        self.sticky_batch_size = sticky_batch_size
        self._random = random
        self.current: int | None = None
        self.produced_bytes = 0
        self._cft: np.ndarray | None = None  # cumulative frequency table
        self._cft_ids: Sequence[int] = []
        self._pending_stats: tuple[Sequence[int] | None, Sequence[int], int] | None = None

    def peek(self, cluster: ClusterMetadata) -> int:
        """The current sticky partition, choosing the first one if there is none yet."""
        if self.current is None:
            self.current = self.next_partition(cluster)
        return self.current

    def next_partition(self, cluster: ClusterMetadata) -> int:
        """Draw the next sticky partition: uniform over available ones, or weighted by load."""
        r = self._random()
        self._build_load_stats()
        if self._cft is None:
            available = cluster.available_partitions_for_topic(self.topic)
            if available:
                return available[r % len(available)]
            return r % cluster.partition_count_for_topic(self.topic)
        draw = r % int(self._cft[-1])
        return self._cft_ids[int(self._cft.searchsorted(draw, "right"))]

    def update_partition_info(
        self, appended_bytes: int, cluster: ClusterMetadata, enable_switch: bool = True
    ) -> bool:
        """Count bytes appended to the sticky partition; switch when enough. True if switched."""
        self.produced_bytes += appended_bytes
        if (self.produced_bytes >= self.sticky_batch_size and enable_switch) or (
            self.produced_bytes >= 2 * self.sticky_batch_size
        ):
            self.current = self.next_partition(cluster)
            self.produced_bytes = 0
            return True
        return False

    def update_partition_load_stats(
        self, queue_sizes: Sequence[int] | None, partition_ids: Sequence[int], length: int
    ) -> None:
        """Take new queue sizes (``None`` = not adaptive) for the cumulative frequency table.

        ``length`` may be less than ``len(queue_sizes)`` when partitions were left out because
        their broker has not drained ready data within ``partitioner.availability.timeout.ms``.
        The table is built when the next partition is drawn, which gives the same draws as
        Kafka's rebuilding it on every sender pass.
        """
        self._pending_stats = (queue_sizes, partition_ids, length)

    def _build_load_stats(self) -> None:
        if self._pending_stats is None:
            return
        queue_sizes, partition_ids, length = self._pending_stats
        self._pending_stats = None
        if queue_sizes is None or length < 1 or len(queue_sizes) < 2:
            self._cft = None
            return
        # one NumPy pass per step: with a thousand partitions this runs once per batch
        sizes = np.asarray(queue_sizes[:length], dtype=np.int64)
        top = int(sizes.max()) + 1
        if length == len(queue_sizes) and top - 1 == int(sizes.min()):  # all equal
            self._cft = None
            return
        self._cft = np.cumsum(top - sizes)
        self._cft_ids = partition_ids[:length]

    @property
    def load_stats_range_end(self) -> int | None:
        """The sum of all weights, or None when not adaptive (Kafka's ``loadStatsRangeEnd``)."""
        self._build_load_stats()
        return int(self._cft[-1]) if self._cft is not None else None


class StickyPartitionCache:
    """KIP-480's sticky cache (Kafka 2.4–3.2 default for key-less records).

    Keeps one partition per topic and changes it only when the producer is about to open a **new
    batch** (``onNewBatch``). The new one is random among available partitions and never the old
    one when two or more are available. Because a slow broker's batches stay open longer, its
    partitions collect more records: the skew KIP-794 fixed.
    """

    def __init__(self, random: RandomSource) -> None:
        self._random = random
        self._cache: dict[str, int] = {}

    def partition(self, topic: str, cluster: ClusterMetadata) -> int:
        if topic not in self._cache:
            return self.next_partition(topic, cluster, -1)
        return self._cache[topic]

    def next_partition(self, topic: str, cluster: ClusterMetadata, prev: int) -> int:
        old = self._cache.get(topic)
        if old is not None and old != prev:
            return old  # someone already moved on
        available = cluster.available_partitions_for_topic(topic)
        if len(available) == 1:
            new = available[0]
        elif available:
            choices = [p for p in available if p != old] if old is not None else available
            new = choices[self._random() % len(choices)]
        else:
            new = self._random() % cluster.partition_count_for_topic(topic)
        self._cache[topic] = new
        return new


class _Configurable:
    """Shared ``configure``/``close`` for the lab's own partitioners; takes ``lab.random``."""

    _random: RandomSource

    def configure(self, configs: Mapping[str, Any]) -> None:
        rng = configs.get("lab.random")
        self._random = random_source(rng) if rng is not None else random_source(
            np.random.default_rng(0)
        )

    def close(self) -> None:
        return None


class RoundRobinPartitioner(_Configurable):
    """Kafka's ``org.apache.kafka.clients.producer.RoundRobinPartitioner``: ignores keys.

    A per-topic counter starting at 0 walks over the available partitions. In Kafka 2.4–3.8 the
    producer called ``partition()`` a second time for a record that opened a new batch
    (KAFKA-9965), so the counter skipped: with 2 partitions and one record per batch, every record
    went to partition 1. Set ``lab.kafka.version=3.8`` on the producer to see it.
    """

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def partition(
        self,
        topic: str,
        key: Any,
        key_bytes: bytes | None,
        value: Any,
        value_bytes: bytes | None,
        cluster: ClusterMetadata,
    ) -> int:
        count = self._counters.get(topic, 0)
        self._counters[topic] = count + 1
        available = cluster.available_partitions_for_topic(topic)
        if available:
            return available[to_positive(count) % len(available)]
        return to_positive(count) % cluster.partition_count_for_topic(topic)


class DefaultPartitioner(_Configurable):
    """Kafka 2.4–3.8's ``internals.DefaultPartitioner`` (removed in 4.0).

    Keyed records: murmur2 of the key. Key-less records: KIP-480 sticky (``StickyPartitionCache``),
    switching when a new batch is opened (``on_new_batch``).
    """

    def __init__(self) -> None:
        self._random = random_source(np.random.default_rng(0))
        self._sticky: StickyPartitionCache | None = None

    @property
    def sticky(self) -> StickyPartitionCache:
        if self._sticky is None:
            self._sticky = StickyPartitionCache(self._random)
        return self._sticky

    def partition(
        self,
        topic: str,
        key: Any,
        key_bytes: bytes | None,
        value: Any,
        value_bytes: bytes | None,
        cluster: ClusterMetadata,
    ) -> int:
        if key_bytes is None:
            return self.sticky.partition(topic, cluster)
        return partition_for_key(key_bytes, cluster.partition_count_for_topic(topic))

    def on_new_batch(self, topic: str, cluster: ClusterMetadata, prev_partition: int) -> None:
        self.sticky.next_partition(topic, cluster, prev_partition)


class UniformStickyPartitioner(DefaultPartitioner):
    """Kafka 2.4–3.8's ``UniformStickyPartitioner``: KIP-480 sticky for all records, no keys."""

    def partition(
        self,
        topic: str,
        key: Any,
        key_bytes: bytes | None,
        value: Any,
        value_bytes: bytes | None,
        cluster: ClusterMetadata,
    ) -> int:
        return self.sticky.partition(topic, cluster)


class VipPartitioner:
    """The seed's example: VIP customers get ``vip.partitions`` of the partitions to themselves.

    Keys starting with ``vip.prefix`` (default ``"vip-"``) are hashed onto partitions
    ``0 … vip.partitions-1`` (default 8); every other record onto the remaining ones. Like a
    priority queue: consumers of the VIP partitions see a fraction of the traffic spread over most
    of the consumers. With 10 partitions VIPs get 0–7 and everyone else 8–9.
    """

    def __init__(self, vip_partitions: int = 8, vip_prefix: str = "vip-") -> None:
        self.vip_partitions = vip_partitions
        self.vip_prefix = vip_prefix

    def configure(self, configs: Mapping[str, Any]) -> None:
        self.vip_partitions = int(configs.get("vip.partitions", self.vip_partitions))
        self.vip_prefix = str(configs.get("vip.prefix", self.vip_prefix))

    def partition(
        self,
        topic: str,
        key: Any,
        key_bytes: bytes | None,
        value: Any,
        value_bytes: bytes | None,
        cluster: ClusterMetadata,
    ) -> int:
        n = cluster.partition_count_for_topic(topic)
        if n <= self.vip_partitions:
            raise ConfigError(f"VipPartitioner needs more than {self.vip_partitions} partitions "
                              f"(vip.partitions) but topic {topic!r} has {n}.")
        h = to_positive(murmur2(key_bytes)) if key_bytes is not None else 0
        if isinstance(key, str) and key.startswith(self.vip_prefix):
            return h % self.vip_partitions
        return self.vip_partitions + h % (n - self.vip_partitions)

    def close(self) -> None:
        return None


# Names accepted by ``partitioner.class``: Kafka's class names, their short forms and the lab's.
_KAFKA_PACKAGE = "org.apache.kafka.clients.producer."
PARTITIONER_CLASSES: dict[str, tuple[type, str]] = {
    "RoundRobinPartitioner": (RoundRobinPartitioner, "2.4"),
    "DefaultPartitioner": (DefaultPartitioner, "3.8"),
    "UniformStickyPartitioner": (UniformStickyPartitioner, "3.8"),
    "VipPartitioner": (VipPartitioner, "4.0"),
}
_ALIASES = {
    _KAFKA_PACKAGE + "RoundRobinPartitioner": "RoundRobinPartitioner",
    _KAFKA_PACKAGE + "UniformStickyPartitioner": "UniformStickyPartitioner",
    _KAFKA_PACKAGE + "internals.DefaultPartitioner": "DefaultPartitioner",
    "sim.partitioners.VipPartitioner": "VipPartitioner",
}
REMOVED_IN_4_0 = {"DefaultPartitioner", "UniformStickyPartitioner"}


def resolve_partitioner(spec: Any, kafka_version: str) -> Partitioner | None:
    """Turn a ``partitioner.class`` value into a partitioner instance (None = built-in).

    Accepts None, a known name (Kafka's Java class name or its short form), an
    importable ``"module:Class"`` path, a class, or an instance with a ``partition`` method.

    Raises:
        ConfigError: naming the value and what is allowed.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        name = _ALIASES.get(spec, spec)
        if name in PARTITIONER_CLASSES:
            if name in REMOVED_IN_4_0 and kafka_version == "4.0":
                raise ConfigError(
                    f"partitioner.class {spec!r} was removed in Kafka 4.0 (KAFKA-18262). Set "
                    "lab.kafka.version='3.8' to study it, or use partitioner.ignore.keys=true."
                )
            spec = PARTITIONER_CLASSES[name][0]
        elif ":" in spec:
            module, _, attr = spec.partition(":")
            try:
                spec = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(f"partitioner.class {spec!r} cannot be imported: {exc}") from None
        else:
            known = ", ".join(sorted(PARTITIONER_CLASSES))
            raise ConfigError(
                f"Invalid value {spec!r} for configuration partitioner.class: unknown name. Use "
                f"one of {known}, a 'module:Class' path, a class or an instance, or None for "
                "the built-in partitioner."
            )
    if isinstance(spec, type):
        try:
            spec = spec()
        except Exception as exc:
            raise ConfigError(f"partitioner.class {spec.__name__} could not be created with no "
                              f"arguments: {exc!r}") from None
    if not callable(getattr(spec, "partition", None)):
        raise ConfigError(f"partitioner.class value {spec!r} has no partition(topic, key, "
                          "key_bytes, value, value_bytes, cluster) method.")
    return spec
