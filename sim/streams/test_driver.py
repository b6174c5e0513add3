"""``TopologyTestDriver``: run a topology record by record, without a cluster.

Mirrors ``kafka-streams-test-utils`` (``TopologyTestDriver``, ``TestInputTopic``,
``TestOutputTopic``, ``TestRecord``). The driver is **synchronous**: ``pipe_input`` returns after
the record, and everything it caused, has been processed. Every topic has **one partition** and the
whole topology runs as one task ``0_0``; records written to a repartition topic are read back at
once. The record cache and the commit interval behave as if set to 0, so every update of an
aggregation reaches the output. Wall-clock time moves only when you call
``advance_wall_clock_time``; stream time only when records arrive.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sim.errors import StreamsError
from sim.streams.config import StreamsConfig
from sim.streams.processor import Record
from sim.streams.stores import (
    KeyValueStore,
    SessionStore,
    StateStore,
    ValueAndTimestamp,
    WindowStore,
)
from sim.streams.stream_join import EMIT_INTERVAL_CONFIG
from sim.streams.task import StreamTask
from sim.streams.topology import Topology
from sim.streams.windows import Windowed

DEFAULT_APPLICATION_ID = "dummy-topology-test-driver-app-id"


@dataclass(frozen=True)
class TestRecord:
    """A record as read from an output topic (``TestRecord``)."""

    __test__ = False  # not a pytest test class

    key: Any
    value: Any
    timestamp: int
    headers: tuple[tuple[str, bytes], ...] = ()


class TopologyTestDriver:
    """Drive ``topology`` synchronously (Kafka's ``TopologyTestDriver``).

    Args:
        topology: a :class:`Topology` (e.g. ``builder.build()``).
        config: Streams configs; ``application.id`` may be left out, as in Kafka's driver.
        initial_wall_clock_time_ms: the mock wall-clock time at start (Kafka uses "now").
    """

    __test__ = False

    def __init__(self, topology: Topology, config: Mapping[str, Any] | None = None,
                 initial_wall_clock_time_ms: int = 0) -> None:
        if not isinstance(topology, Topology):
            raise StreamsError(f"TopologyTestDriver needs a Topology (builder.build()), got "
                               f"{topology!r}.")
        values = dict(config or {})
        values.setdefault("application.id", DEFAULT_APPLICATION_ID)
        self.config = StreamsConfig(values)
        self.topology = topology
        self.wall_clock_ms = initial_wall_clock_time_ms
        self._outputs: dict[str, deque[TestRecord]] = {}
        self._internal = set(topology.internal_topics)
        self._pending: deque[tuple[str, Record]] = deque()
        global_nodes = [n for n, f in topology.nodes.items() if f.is_global or any(
            topology.nodes[p].is_global for p in f.predecessors)]
        local_nodes = [n for n in topology.nodes if n not in global_nodes]
        app_id = self.config["application.id"]
        self.global_task = StreamTask(topology, app_id, self._collect, "global", global_nodes,
                                      initial_wall_clock_time_ms)
        self.task = StreamTask(topology, app_id, self._collect, "0_0", local_nodes,
                               initial_wall_clock_time_ms, self.global_task.stores)
        # like Kafka's driver (PR 15660): no wall-clock throttling of outer-join results
        self.task.app_configs = {EMIT_INTERVAL_CONFIG: 0}  # type: ignore[attr-defined]

    # -- topics -----------------------------------------------------------------------------

    def create_input_topic(self, name: str, start_timestamp_ms: int | None = None,
                           auto_advance_ms: int = 0) -> TestInputTopic:
        """A handle to pipe records into ``name``; records without a timestamp get
        ``start_timestamp_ms`` (default: the wall-clock time), then ``+ auto_advance_ms`` each."""
        if self.task.source_for(name) is None and self.global_task.source_for(name) is None:
            raise StreamsError(f"Unknown topic: {name}; the topology reads "
                               f"{self.topology.source_topics()}.")
        start = self.wall_clock_ms if start_timestamp_ms is None else start_timestamp_ms
        return TestInputTopic(self, name, start, auto_advance_ms)

    def create_output_topic(self, name: str) -> TestOutputTopic:
        """A handle to read what the topology wrote to ``name``."""
        return TestOutputTopic(self, name)

    def produced_topic_names(self) -> list[str]:
        """Every topic the topology has written to, sorted."""
        return sorted(self._outputs)

    def pipe(self, topic: str, record: Record) -> None:
        """Process one record from ``topic`` and everything it causes."""
        if self.global_task.source_for(topic) is not None:
            self.global_task.process(topic, record)
            return
        self._pending.append((topic, record))
        self._complete_all_processable_work()

    def _collect(self, topic: str, record: Record) -> None:
        self._outputs.setdefault(topic, deque()).append(
            TestRecord(record.key, record.value, record.timestamp, record.headers))
        if topic in self._internal:
            self._pending.append((topic, record))

    def _complete_all_processable_work(self) -> None:
        while self._pending:
            topic, record = self._pending.popleft()
            self.task.process(topic, record)

    def read_output(self, topic: str) -> deque[TestRecord]:
        return self._outputs.setdefault(topic, deque())

    # -- time -------------------------------------------------------------------------------

    def advance_wall_clock_time(self, ms: int) -> None:
        """Move the mock wall clock forward and fire due wall-clock punctuators."""
        if not isinstance(ms, int) or ms < 0:
            raise StreamsError(f"advance_wall_clock_time takes milliseconds >= 0, got {ms!r}.")
        self.wall_clock_ms += ms
        self.task.maybe_punctuate_system_time(self.wall_clock_ms)
        self.global_task.maybe_punctuate_system_time(self.wall_clock_ms)
        self._complete_all_processable_work()

    # -- stores and metrics -----------------------------------------------------------------

    def get_state_store(self, name: str) -> StateStore | None:
        """The store named ``name`` as processors see it, or None."""
        return self.task.stores.get(name) or self.global_task.stores.get(name)

    def get_key_value_store(self, name: str) -> KeyValueStore | None:
        """A key-value store with plain values (timestamps hidden), or None if ``name`` is not
        a key-value store (Kafka's ``getKeyValueStore``)."""
        store = self.get_state_store(name)
        return _PlainKeyValueStore(store) if isinstance(store, KeyValueStore) else None

    def get_window_store(self, name: str) -> WindowStore | None:
        """A window store with plain values, or None if ``name`` is not a window store."""
        store = self.get_state_store(name)
        return _PlainWindowStore(store) if isinstance(store, WindowStore) else None

    def get_session_store(self, name: str) -> SessionStore | None:
        """A session store, or None if ``name`` is not one (``getSessionStore``)."""
        store = self.get_state_store(name)
        return store if isinstance(store, SessionStore) else None

    def metrics(self) -> dict[str, int]:
        """Task metrics: ``dropped-records-total``, ``process-total``, ``punctuate-total``."""
        return dict(self.task.metrics)

    def close(self) -> None:
        self.task.close()
        self.global_task.close()

    def __enter__(self) -> TopologyTestDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, ValueAndTimestamp) else value


class _PlainKeyValueStore(KeyValueStore):
    """A view of a (timestamped) key-value store showing only values."""

    def __init__(self, inner: KeyValueStore) -> None:
        self.inner = inner
        self.name = inner.name

    def get(self, key: Any) -> Any:
        return _plain(self.inner.get(key))

    def put(self, key: Any, value: Any) -> None:
        self.inner.put(key, value)

    def delete(self, key: Any) -> Any:
        return _plain(self.inner.delete(key))

    def all(self) -> list[tuple[Any, Any]]:
        return [(k, _plain(v)) for k, v in self.inner.all()]

    def approximate_num_entries(self) -> int:
        return self.inner.approximate_num_entries()


class _PlainWindowStore(WindowStore):
    """A view of a (timestamped) window store showing only values."""

    def __init__(self, inner: WindowStore) -> None:
        self.inner = inner
        self.name = inner.name
        self.window_size_ms = inner.window_size_ms
        self.retention_ms = inner.retention_ms

    def put(self, key: Any, value: Any, window_start: int) -> None:
        self.inner.put(key, value, window_start)

    def fetch(self, key: Any, window_start: int) -> Any:
        return _plain(self.inner.fetch(key, window_start))

    def fetch_range(self, key: Any, time_from: int, time_to: int) -> list[tuple[int, Any]]:
        return [(s, _plain(v)) for s, v in self.inner.fetch_range(key, time_from, time_to)]

    def all(self) -> list[tuple[Windowed, Any]]:
        return [(w, _plain(v)) for w, v in self.inner.all()]


class TestInputTopic:
    """Pipe records into one input topic (``TestInputTopic``)."""

    __test__ = False

    def __init__(self, driver: TopologyTestDriver, name: str, start_ms: int,
                 auto_advance_ms: int) -> None:
        self.driver = driver
        self.name = name
        self.current_time_ms = start_ms
        self.auto_advance_ms = auto_advance_ms

    def pipe_input(self, key: Any, value: Any, timestamp: int | None = None) -> None:
        """Send one record; without ``timestamp`` it gets the topic's current time."""
        if timestamp is None:
            timestamp = self.current_time_ms
            self.current_time_ms += self.auto_advance_ms
        if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
            raise StreamsError(f"A record timestamp is milliseconds >= 0, got {timestamp!r}.")
        self.driver.pipe(self.name, Record(key, value, timestamp))

    def pipe_key_value_list(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        for key, value in pairs:
            self.pipe_input(key, value)

    def pipe_value_list(self, values: Iterable[Any]) -> None:
        for value in values:
            self.pipe_input(None, value)

    def advance_time(self, ms: int) -> None:
        """Move this topic's current time forward."""
        self.current_time_ms += ms


class TestOutputTopic:
    """Read, in order, what the topology wrote to one topic (``TestOutputTopic``); reading
    removes the records."""

    __test__ = False

    def __init__(self, driver: TopologyTestDriver, name: str) -> None:
        self.driver = driver
        self.name = name

    def _queue(self) -> deque[TestRecord]:
        return self.driver.read_output(self.name)

    def read_record(self) -> TestRecord:
        queue = self._queue()
        if not queue:
            raise StreamsError(f"Empty topic: {self.name}")
        return queue.popleft()

    def read_value(self) -> Any:
        return self.read_record().value

    def read_key_value(self) -> tuple[Any, Any]:
        record = self.read_record()
        return (record.key, record.value)

    def read_records_to_list(self) -> list[TestRecord]:
        queue = self._queue()
        records = list(queue)
        queue.clear()
        return records

    def read_values_to_list(self) -> list[Any]:
        return [r.value for r in self.read_records_to_list()]

    def read_key_values_to_list(self) -> list[tuple[Any, Any]]:
        return [(r.key, r.value) for r in self.read_records_to_list()]

    def read_key_values_to_map(self) -> dict[Any, Any]:
        """The last value per key; a None value removes the key."""
        result: dict[Any, Any] = {}
        for key, value in self.read_key_values_to_list():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = value
        return result

    def get_queue_size(self) -> int:
        return len(self._queue())

    def is_empty(self) -> bool:
        return not self._queue()
