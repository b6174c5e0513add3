"""Small value objects shared by clients and brokers, named as in Kafka's clients.

``TopicPartition`` mirrors ``org.apache.kafka.common.TopicPartition``; ``RecordMetadata`` is what
``Producer.send`` resolves to, as ``org.apache.kafka.clients.producer.RecordMetadata``;
``serialize`` turns keys and values into bytes as Kafka's default serializers do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True, slots=True)
class TopicPartition:
    """A topic name and a partition number; sorts by topic, then partition (as Kafka's tools do)."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


@dataclass(frozen=True, slots=True)
class RecordMetadata:
    """Where a sent record landed and when it was acknowledged.

    ``offset`` is -1 with ``acks=0``, as in Kafka: the producer never hears back from the broker.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: float
    latency_ms: float

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def __repr__(self) -> str:
        # times to the microsecond: a sum of simulated delays is not exact in binary floats
        return (f"RecordMetadata(topic={self.topic!r}, partition={self.partition}, "
                f"offset={self.offset}, timestamp_ms={round(self.timestamp_ms, 3)!r}, "
                f"latency_ms={round(self.latency_ms, 3)!r})")


def serialize(obj: Any) -> bytes | None:
    """Bytes as Kafka's default serializers would make them (String → UTF-8, Integer → 4 bytes)."""
    if obj is None or isinstance(obj, bytes):
        return obj
    if isinstance(obj, str):
        return obj.encode("utf-8")
    if isinstance(obj, bool):
        raise TypeError("Use str, bytes or int keys and values, not bool.")
    if isinstance(obj, int):
        return obj.to_bytes(4, "big", signed=True)  # IntegerSerializer: 4 bytes big-endian
    return str(obj).encode("utf-8")
