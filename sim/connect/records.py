"""Connect records: ``SourceRecord`` (from a source task) and ``SinkRecord`` (to a sink task).

Both are ``ConnectRecord``s: a topic, an optional partition, key and value with their schemas,
a timestamp and headers. A source record also carries its source partition and source offset,
the position the framework commits for it; a sink record carries its Kafka offset.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sim.connect.data import Schema


@dataclass(frozen=True)
class ConnectRecord:
    """What converters and transformations see (``o.a.k.connect.connector.ConnectRecord``)."""

    topic: str
    kafka_partition: int | None = None
    key_schema: Schema | None = None
    key: Any = None
    value_schema: Schema | None = None
    value: Any = None
    timestamp: int | None = None
    headers: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def new_record(self, **changes: Any) -> ConnectRecord:
        """A copy with some fields changed (``ConnectRecord.newRecord``)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class SourceRecord(ConnectRecord):
    """A record from a source task, with where it came from (``SourceRecord``)."""

    source_partition: dict[str, Any] | None = None
    source_offset: dict[str, Any] | None = None


@dataclass(frozen=True)
class SinkRecord(ConnectRecord):
    """A record for a sink task, with its Kafka offset (``SinkRecord``)."""

    kafka_offset: int = -1
