"""The distributed worker's state in Kafka topics (``org.apache.kafka.connect.storage``).

A distributed worker keeps nothing that others must see in its own memory: connector configs,
target states and task configs go to ``config.storage.topic``, source offsets to
``offset.storage.topic`` and connector / task statuses to ``status.storage.topic``, all
compacted. Each worker reads the three topics back (``KafkaBasedLog``) and builds its own view
from what it reads, so a worker that starts, or takes over another's work, learns the cluster's
state from the topics alone.

Record keys and values, as Kafka's stores write them (values as JSON; Kafka's internal
JsonConverter writes the same maps):

- config topic (``KafkaConfigBackingStore``): ``connector-<name>`` → ``{"properties": {...}}``;
  ``target-state-<name>`` → ``{"state": "PAUSED"}`` (``STARTED`` for running);
  ``task-<name>-<n>`` → ``{"properties": {...}}``; ``commit-<name>`` → ``{"tasks": n}``, which
  makes the ``n`` task configs written before it visible at once;
  ``restart-connector-<name>`` → ``{"include-tasks": b, "only-failed": b}`` (KIP-745); a
  deleted connector's keys get tombstones (null values).
- offset topic (``KafkaOffsetBackingStore``): ``["<connector>", {partition}]`` → the offset map.
- status topic (``KafkaStatusBackingStore``): ``status-connector-<name>`` and
  ``status-task-<name>-<n>`` → ``{"state", "trace", "worker_id", "generation"}``;
  ``topic-<topic>-connector-<name>`` → ``{"topic": {...}}`` for the topics a connector used
  (KIP-558). A status
  from an older group generation written by another worker is ignored when read, so a late
  write of a worker that lost the task cannot hide the new owner's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sim.connect.offsets import OffsetBackingStore
from sim.connect.status import Status
from sim.payloads import payload
from sim.producer import FutureRecordMetadata, Producer

READ_WRITE_TOTAL_TIMEOUT_MS = 30_000
"""``KafkaConfigBackingStore.READ_WRITE_TOTAL_TIMEOUT_MS``: how long a write waits to be read."""


def _readers(kernel: Any) -> dict[str, list[Callable[[], None]]]:
    """Per topic, the readers to wake when a record written there is acknowledged; kept on the
    kernel, so that they go away with it."""
    return vars(kernel).setdefault("_connect_readers", {})  # type: ignore[no-any-return]


class _LogProducer(Producer):
    """The log's producer; acknowledged records wake the topic's readers, as a consumer's
    long-polling fetch returns as soon as the high watermark passes new records."""

    def __init__(self, kernel: Any, config: dict[str, Any], topic: str) -> None:
        super().__init__(kernel, config)
        self.log_topic = topic
        self.last_acked = 0

    def notify_progress(self) -> None:
        super().notify_progress()
        if self.acked > self.last_acked:
            self.last_acked = self.acked
            for wake in list(_readers(self.kernel).get(self.log_topic, [])):
                wake()


class KafkaBasedLog:
    """A topic written with a producer and read back to its end (``util.KafkaBasedLog``).

    ``read_to_end()`` reads, from each partition's leader, the records from this log's position
    up to the high watermark (what a consumer may see) and hands each ``(key, value)`` to
    ``consume``, value ``None`` for a tombstone. Records the cleaner removed are skipped, as a
    fetch would skip them.
    """

    def __init__(self, kernel: Any, topic: str, client_id: str,
                 consume: Callable[[str, Any], None]) -> None:
        self.kernel = kernel
        self.topic = topic
        self.consume = consume
        self.positions: dict[int, int] = {}
        self.record_offset = -1  # the offset of the record being consumed
        self.producer = _LogProducer(kernel, {
            "client.id": client_id, "acks": "all", "linger.ms": 0, "enable.idempotence": False,
            "max.in.flight.requests.per.connection": 1, "delivery.timeout.ms": 2**31 - 1}, topic)
        # every worker's, and each restarted worker's, producer of this topic has the same
        # client.id (KafkaOffsetBackingStore & co.: ConnectUtils.clientIdBase + "offsets"):
        # network faults that name it reach them all (Network.name_client)
        kernel.cluster.network.name_client(self.producer.client_id, client_id)

    def on_data(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever a record written to this topic is acknowledged."""
        _readers(self.kernel).setdefault(self.topic, []).append(wake)

    def send(self, key: str, value: Any) -> FutureRecordMetadata:
        """Append ``key`` → ``value`` as JSON (``None``: a tombstone)."""
        return self.producer.send(self.topic, key=key,
                                  value=None if value is None else json.dumps(value,
                                                                              sort_keys=True))

    def read_to_end(self) -> int:
        """Read every partition up to its high watermark; returns how many records were read."""
        read = 0
        for part in self.kernel.cluster.topics[self.topic].partitions:
            if part.leader < 0:
                continue  # offline: nothing can be fetched now
            log = part.log
            start = max(self.positions.get(part.partition, 0), log.log_start_offset)
            end = log.high_watermark
            if start >= end:
                continue
            ids = log.column("record_id", start, end)
            kept = log.retained(start, end)
            for i, (record_id, present) in enumerate(zip(ids, kept, strict=True)):
                self.positions[part.partition] = start + i + 1
                if not present or record_id < 0:
                    continue
                key, value = payload(self.kernel, int(record_id))
                self.record_offset = start + i
                self.consume(key, None if value is None else json.loads(value))
                read += 1
        return read

    def end_offset(self) -> int:
        """The sum of the partitions' high watermarks: how far a full read would reach."""
        return sum(p.log.high_watermark for p in self.kernel.cluster.topics[self.topic].partitions)

    def write_and_read(self, future: FutureRecordMetadata) -> bool:
        """Wait until ``future``'s record is acknowledged, then read to the end (the herder's
        ``readToEnd().get()`` after a write). False if it was not acknowledged in time."""
        done = self.kernel.run_until(lambda _k: future.done(),
                                     max_ms=self.kernel.now_ms + READ_WRITE_TOTAL_TIMEOUT_MS)
        self.read_to_end()
        return done


class KafkaConfigBackingStore:
    """Connector configs, target states and task configs, read back from the config topic.

    ``configs``, ``targets`` and ``tasks`` are this worker's snapshot (``ClusterConfigState``);
    ``offset`` is how far it has read (the config topic's offset after the last record read).
    ``versions`` holds, per connector, the offsets of the records its running instances depend
    on (the connector config and the last task commit), so that an owner can tell that its
    instance is out of date. ``on_update(kind, name)`` is
    called for each change read: ``connector``, ``removed``, ``target``, ``tasks`` or
    ``restart`` (with the request in ``restarts``).
    """

    def __init__(self, kernel: Any, topic: str, client_id: str,
                 on_update: Callable[[str, str], None]) -> None:
        self.configs: dict[str, dict[str, str]] = {}
        self.targets: dict[str, str] = {}
        self.tasks: dict[str, list[dict[str, str]]] = {}
        self.versions: dict[str, tuple[int, int]] = {}
        self.restarts: dict[str, dict[str, bool]] = {}
        self.pending: dict[str, dict[int, dict[str, str]]] = {}
        self.offset = 0
        self.on_update = on_update
        self.log = KafkaBasedLog(kernel, topic, client_id, self._consume)

    def _consume(self, key: str, value: Any) -> None:
        offset = self.log.record_offset
        self.offset = offset + 1
        if key.startswith("connector-"):
            name = key.removeprefix("connector-")
            if value is None:
                existed = name in self.configs
                for table in (self.configs, self.targets, self.tasks, self.versions):
                    table.pop(name, None)
                if existed:
                    self.on_update("removed", name)
                return
            self.configs[name] = dict(value["properties"])
            self.targets.setdefault(name, "RUNNING")
            self.tasks.setdefault(name, [])
            self.versions[name] = (offset, self.versions.get(name, (0, 0))[1])
            self.on_update("connector", name)
        elif key.startswith("target-state-"):
            name = key.removeprefix("target-state-")
            if value is None:
                return
            state = value["state"]
            self.targets[name] = "RUNNING" if state == "STARTED" else state
            if name in self.configs:
                self.on_update("target", name)
        elif key.startswith("task-"):
            name, _, number = key.removeprefix("task-").rpartition("-")
            if value is not None:
                self.pending.setdefault(name, {})[int(number)] = dict(value["properties"])
        elif key.startswith("commit-"):
            name = key.removeprefix("commit-")
            if value is None or name not in self.configs:
                return
            pending = self.pending.pop(name, {})
            count = int(value["tasks"])
            if not all(i in pending for i in range(count)):
                return  # an incomplete set of task configs is never applied (Kafka logs it)
            self.tasks[name] = [pending[i] for i in range(count)]
            self.versions[name] = (self.versions.get(name, (offset, 0))[0], offset)
            self.on_update("tasks", name)
        elif key.startswith("restart-connector-"):
            name = key.removeprefix("restart-connector-")
            if value is not None and name in self.configs:
                self.restarts[name] = {"include_tasks": bool(value["include-tasks"]),
                                       "only_failed": bool(value["only-failed"])}
                self.on_update("restart", name)

    def read_to_end(self) -> int:
        return self.log.read_to_end()

    def put_connector_config(self, name: str, props: dict[str, str],
                             target: str | None) -> FutureRecordMetadata:
        """The connector's config, and its target state if given (a new connector's)."""
        if target is not None:
            self.put_target_state(name, target)
        return self.log.send(f"connector-{name}", {"properties": props})

    def remove_connector_config(self, name: str) -> FutureRecordMetadata:
        self.log.send(f"target-state-{name}", None)
        return self.log.send(f"connector-{name}", None)

    def put_target_state(self, name: str, target: str) -> FutureRecordMetadata:
        return self.log.send(f"target-state-{name}",
                             {"state": "STARTED" if target == "RUNNING" else target})

    def put_task_configs(self, name: str, configs: list[dict[str, str]]) -> FutureRecordMetadata:
        """Each task's config, then the commit record that publishes them together."""
        for i, config in enumerate(configs):
            self.log.send(f"task-{name}-{i}", {"properties": config})
        return self.log.send(f"commit-{name}", {"tasks": len(configs)})

    def put_restart_request(self, name: str, only_failed: bool,
                            include_tasks: bool) -> FutureRecordMetadata:
        return self.log.send(f"restart-connector-{name}",
                             {"include-tasks": include_tasks, "only-failed": only_failed})


class KafkaOffsetBackingStore(OffsetBackingStore):
    """Source offsets in the offset topic; ``get`` reads to the end first, as Kafka's does."""

    def __init__(self, kernel: Any, topic: str, client_id: str) -> None:
        super().__init__()
        self.log = KafkaBasedLog(kernel, topic, client_id, self._consume)

    def _consume(self, key: str, value: Any) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value

    def get(self, connector: str, partition: dict[str, Any]) -> dict[str, Any] | None:
        self.log.read_to_end()
        return super().get(connector, partition)

    def set(self, values: dict[str, dict[str, Any] | None]) -> None:
        """Write the offsets (a null resets a partition); they count once read back."""
        for key, value in values.items():
            self.log.send(key, value)

    def connector_offsets(self, connector: str) -> list[dict[str, Any]]:
        self.log.read_to_end()
        return super().connector_offsets(connector)

    def sync(self) -> None:
        """Wait until every offset written is acknowledged, then read them back."""
        producer = self.log.producer
        producer.kernel.run_until(lambda _k: producer.completed >= producer.buffer.n,
                                  max_ms=producer.kernel.now_ms + READ_WRITE_TOTAL_TIMEOUT_MS)
        self.log.read_to_end()


class KafkaStatusBackingStore:
    """Connector and task statuses, each written by the worker that runs the connector or task;
    ``connectors`` and ``tasks`` hold the latest read (with the generation it was written in)."""

    def __init__(self, kernel: Any, topic: str, client_id: str) -> None:
        self.connectors: dict[str, tuple[Status, int]] = {}
        self.tasks: dict[tuple[str, int], tuple[Status, int]] = {}
        self.topics: dict[str, set[str]] = {}
        self.topics_written: set[tuple[str, str]] = set()  # sent, maybe not read back yet
        self.log = KafkaBasedLog(kernel, topic, client_id, self._consume)

    def _consume(self, key: str, value: Any) -> None:
        if key.startswith("topic-"):
            topic, _, connector = key.removeprefix("topic-").partition("-connector-")
            self.topics_written.discard((connector, topic))
            if value is None:
                self.topics.get(connector, set()).discard(topic)
            else:
                self.topics.setdefault(connector, set()).add(topic)
            return
        if key.startswith("status-connector-"):
            table: dict[Any, tuple[Status, int]] = self.connectors
            ident: Any = key.removeprefix("status-connector-")
        else:
            name, _, number = key.removeprefix("status-task-").rpartition("-")
            table, ident = self.tasks, (name, int(number))
        if value is None:
            table.pop(ident, None)
            return
        status = Status(value["state"], value["worker_id"], value.get("trace"))
        generation = int(value["generation"])
        existing = table.get(ident)
        if existing is not None and generation < existing[1] and \
                status.worker_id != existing[0].worker_id:
            return  # a stale write from a worker that no longer owns it (readTaskStatus)
        table[ident] = (status, generation)

    def read_to_end(self) -> int:
        return self.log.read_to_end()

    def put(self, name: str, task: int | None, status: Status, generation: int) -> None:
        key = f"status-connector-{name}" if task is None else f"status-task-{name}-{task}"
        self.log.send(key, {"state": status.state, "trace": status.trace,
                            "worker_id": status.worker_id, "generation": generation})

    def put_topic(self, connector: str, topic: str) -> FutureRecordMetadata:
        """``topic-<topic>-connector-<connector>``: the connector used the topic (KIP-558)."""
        self.topics_written.add((connector, topic))
        return self.log.send(f"topic-{topic}-connector-{connector}",
                             {"topic": {"name": topic, "connector": connector}})

    def remove_topic(self, connector: str, topic: str) -> FutureRecordMetadata:
        return self.log.send(f"topic-{topic}-connector-{connector}", None)

    def remove(self, name: str, tasks: int) -> None:
        """Tombstones for a deleted connector's statuses (``DESTROYED``)."""
        for task in range(tasks):
            self.log.send(f"status-task-{name}-{task}", None)
        self.log.send(f"status-connector-{name}", None)
