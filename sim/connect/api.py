"""The connector API: what a plugin implements (``org.apache.kafka.connect.connector``, ``.source``,
``.sink``).

A ``Connector`` is configured once and splits its work into task configs; the worker runs one
``Task`` per config. A ``SourceTask`` returns ``SourceRecord``s from ``poll()``; a ``SinkTask``
gets ``SinkRecord``s in ``put()`` and makes them durable in ``flush()`` before the framework
commits their offsets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.connect.config_def import ConfigDef, ConfigValue
from sim.connect.records import SinkRecord, SourceRecord


class Task:
    """``org.apache.kafka.connect.connector.Task``."""

    context: Any = None

    def version(self) -> str:
        return "1.0"

    def start(self, props: dict[str, str]) -> None:
        """Start with the config the connector made for this task."""

    def stop(self) -> None:
        """Release resources."""


class SourceTaskContext:
    """What a source task may ask the framework: stored offsets and the clock."""

    def __init__(self, offset_reader: Callable[[dict[str, Any]], dict[str, Any] | None],
                 clock: Callable[[], float], rng: Any = None) -> None:
        self._offset_reader = offset_reader
        self._clock = clock
        self.rng = rng

    def offset(self, partition: dict[str, Any]) -> dict[str, Any] | None:
        """The last committed offset of a source partition (``OffsetStorageReader.offset``)."""
        return self._offset_reader(partition)

    def time_ms(self) -> float:
        """The worker's clock (Kafka's ``Time.milliseconds``), simulated time here."""
        return self._clock()


class SourceTask(Task):
    """``SourceTask``: ``poll()`` returns new records (or None when there is nothing yet)."""

    idle_ms: float = 1000.0
    """How long the worker waits before polling again after a poll that returned nothing."""

    def poll(self) -> list[SourceRecord] | None:
        raise NotImplementedError

    def commit(self) -> None:
        """The framework committed offsets (``SourceTask.commit``)."""

    def commit_record(self, record: SourceRecord, metadata: Any) -> None:
        """``record`` was acknowledged by Kafka (``SourceTask.commitRecord``)."""


class SinkTaskContext:
    """``SinkTaskContext``: ask for a retry back-off, and report errant records (KIP-610)."""

    def __init__(self, reporter: Callable[[SinkRecord, BaseException], None] | None) -> None:
        self.timeout_ms = 0.0
        self._reporter = reporter

    def timeout(self, timeout_ms: float) -> None:
        """Wait ``timeout_ms`` before redelivering after a ``RetriableError``."""
        self.timeout_ms = float(timeout_ms)

    def errant_record_reporter(self) -> Callable[[SinkRecord, BaseException], None] | None:
        """Reports a record that failed in ``put`` to the DLQ (None if tolerance is none)."""
        return self._reporter


class SinkTask(Task):
    """``SinkTask``: ``put(records)``, then ``flush(offsets)`` before offsets are committed."""

    class_name = "org.apache.kafka.connect.sink.SinkTask"

    def put(self, records: list[SinkRecord]) -> None:
        raise NotImplementedError

    def flush(self, current_offsets: dict[tuple[str, int], int]) -> None:
        """Make everything given to ``put`` durable."""

    def pre_commit(self, current_offsets: dict[tuple[str, int], int]
                   ) -> dict[tuple[str, int], int]:
        """The offsets safe to commit; by default flush and commit all (``SinkTask.preCommit``)."""
        self.flush(current_offsets)
        return current_offsets


class Connector:
    """``org.apache.kafka.connect.connector.Connector``."""

    class_name = ""
    """The full class name (``connector.class``); discovered plugins get module.ClassName."""

    def version(self) -> str:
        return "1.0"

    def start(self, props: dict[str, str]) -> None:
        """Start with the connector's config."""

    def task_class(self) -> type[Task]:
        raise NotImplementedError

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop."""

    def config_def(self) -> ConfigDef:
        return ConfigDef()

    def validate(self, props: dict[str, str]) -> dict[str, ConfigValue]:
        """Validate against ``config_def()`` (``Connector.validate``)."""
        return self.config_def().validate(props)


class SourceConnector(Connector):
    """``SourceConnector``."""

    type_name = "source"

    def alter_offsets(self, config: dict[str, str],
                      offsets: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> bool:
        """``alterOffsets``: check (source partition, source offset or None) pairs a user
        writes through ``PATCH /connectors/{name}/offsets`` (KIP-875) before they are stored;
        a ``ConnectError`` refuses them. False: the connector does not check (the default)."""
        return False


class SinkConnector(Connector):
    """``SinkConnector``."""

    type_name = "sink"
