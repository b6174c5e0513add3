"""The worker: runs connectors and their tasks on the kernel (``o.a.k.connect.runtime.Worker``).

Each task is a SimPy process. A source task polls its ``SourceTask``, transforms and converts
the records and sends them with the lab's ``Producer``; the offsets of acknowledged records are
flushed to the offset store every ``offset.flush.interval.ms`` (and when the task stops), so a
restart resumes after the last flush: at least once. A sink task consumes with the lab's
``Consumer`` in group ``connect-<connector>``, converts and transforms, calls ``put``, and
every ``offset.flush.interval.ms`` calls ``flush`` (``pre_commit``) and commits the offsets.

A task that raises goes FAILED with its trace; ``errors.tolerance=all`` skips failing records
instead (sinks send them to ``errors.deadletterqueue.topic.name``).
"""

from __future__ import annotations

import contextlib
import math
import re
import traceback
from collections.abc import Callable, Generator
from typing import Any

import simpy

from sim.connect.api import Connector, SinkTask, SinkTaskContext, SourceTask, SourceTaskContext
from sim.connect.config_def import NO_DEFAULT, ConfigDef, at_least
from sim.connect.connector_config import connector_config_def
from sim.connect.converters import Converter
from sim.connect.errors import ConnectError, RetriableError, class_name
from sim.connect.offsets import FileOffsetBackingStore, OffsetBackingStore, OffsetStorageWriter
from sim.connect.plugins import Plugins
from sim.connect.records import ConnectRecord, SinkRecord, SourceRecord
from sim.connect.status import FAILED, PAUSED, RUNNING, UNASSIGNED, Status
from sim.connect.tolerance import (
    FAILED as SKIPPED,
)
from sim.connect.tolerance import (
    KEY_CONVERTER,
    TASK_PUT,
    TRANSFORMATION,
    VALUE_CONVERTER,
    RetryWithToleranceOperator,
    error_headers,
)
from sim.connect.topics import record_headers
from sim.connect.transforms import Transformation
from sim.consumer import Consumer
from sim.consumer.client import Stopped
from sim.kernel import kernel_of
from sim.payloads import payload
from sim.producer import Producer
from sim.records import TopicPartition

WORKER_CONFIG = (
    ConfigDef()
    .define("bootstrap.servers", "LIST", "localhost:9092", "HIGH", "The brokers to connect to.")
    .define("key.converter", "CLASS", NO_DEFAULT, "HIGH", "Converter class for record keys.")
    .define("value.converter", "CLASS", NO_DEFAULT, "HIGH", "Converter class for record values.")
    .define("offset.storage.file.filename", "STRING", "", "HIGH",
            "File to store source connector offsets (standalone mode).")
    .define("offset.flush.interval.ms", "LONG", 60000, "LOW",
            "Interval at which to try committing offsets for tasks.", validator=at_least(0))
    .define("plugin.path", "LIST", None, "LOW", "Folders of plugin modules.")
    .define("listeners", "LIST", "http://:8083", "LOW", "REST listeners.")
    .define("rest.advertised.host.name", "STRING", None, "LOW", "Host name given to others.")
    .define("rest.advertised.port", "INT", None, "LOW", "Port given to others.")
    .define("task.shutdown.graceful.timeout.ms", "LONG", 5000, "LOW",
            "Time to wait for tasks to shut down gracefully."))
"""``WorkerConfig`` / ``StandaloneConfig`` keys the lab reads; other keys are accepted and kept."""


def worker_id_of(config: dict[str, Any]) -> str:
    """``host:port`` as Kafka advertises it (``RestServer.advertisedUrl``)."""
    listener = (config["listeners"] or ["http://:8083"])[0]
    match = re.match(r"^\w+://([^:/]*):(\d+)", listener)
    host, port = (match.group(1), match.group(2)) if match else ("", "8083")
    host = config["rest.advertised.host.name"] or host or "127.0.0.1"
    return f"{host}:{config['rest.advertised.port'] or port}"


def converter(plugins: Plugins, class_name: str, props: dict[str, Any], prefix: str,
              is_key: bool) -> Converter:
    """A configured converter; ``<prefix>.*`` settings are its config."""
    conv = plugins.new_converter(class_name)
    own = {k.removeprefix(prefix + "."): v for k, v in props.items()
           if k.startswith(prefix + ".")}
    conv.configure(own, is_key)
    return conv


def transformations(plugins: Plugins, props: dict[str, Any]) -> list[Transformation]:
    """The configured ``transforms`` chain, in order."""
    chain = []
    for alias in [a.strip() for a in props.get("transforms", "").split(",") if a.strip()]:
        prefix = f"transforms.{alias}."
        t = plugins.new_transformation(props[prefix + "type"])
        t.configure({k.removeprefix(prefix): v for k, v in props.items()
                     if k.startswith(prefix) and k != prefix + "type"})
        chain.append(t)
    return chain


def keep_client_id(kernel: Any, lab_id: str, client_id: str) -> None:
    """A task's clients get the same ``client.id`` each time the task starts
    (``Worker.baseProducerConfigs`` / ``baseConsumerConfigs``: ``connector-producer-<task>``,
    ``connector-consumer-<task>``); the lab numbers a repeated one (``lab_id``) to tell the
    instances apart in the trace, and network faults that name ``client_id`` reach every
    instance, on whichever worker the task runs."""
    kernel.cluster.network.name_client(lab_id, client_id)


def ensure_topic(kernel: Any, topic: str, replication_factor: int = 1) -> None:
    """Create a missing topic as the broker's auto-creation would (1 partition)."""
    if topic not in kernel.cluster.topics:
        kernel.cluster.create_topic(topic, 1, replication_factor)


class Reported:
    """Something with a status; each change is reported to the worker (``TaskStatus.Listener``),
    which a distributed herder writes to the status topic."""

    name: str
    task_id: int | None = None
    worker: Worker | None = None
    _status: Status

    @property
    def status(self) -> Status:
        return self._status

    @status.setter
    def status(self, value: Status) -> None:
        self._status = value
        if self.worker is not None and self.worker.status_listener is not None:
            self.worker.status_listener(self.name, self.task_id, value)


class WorkerConnector(Reported):
    """One running ``Connector`` instance and its status."""

    def __init__(self, name: str, connector: Connector, worker: Worker) -> None:
        self.name = name
        self.connector = connector
        self.worker = worker
        self._status = Status(UNASSIGNED, worker.worker_id)

    def start(self, props: dict[str, str], target: str) -> bool:
        try:
            self.connector.start(dict(props))
        except Exception:
            self.status = Status(FAILED, self.status.worker_id, traceback.format_exc())
            return False
        self.status = Status(PAUSED if target == PAUSED else RUNNING, self.status.worker_id)
        return True

    def stop(self) -> None:
        with contextlib.suppress(Exception):  # a connector failing to stop keeps the worker
            self.connector.stop()


class WorkerTask(Reported):
    """One task: its status, its SimPy process, and how it is paused and stopped."""

    def __init__(self, worker: Worker, connector: str, task_id: int, props: dict[str, str],
                 connector_props: dict[str, str], target: str) -> None:
        self.worker = worker
        self.kernel = worker.kernel
        self.env = worker.kernel.env
        self.connector = self.name = connector
        self.task_id = task_id
        self.props = props
        self.connector_props = connector_props
        self._status = Status(UNASSIGNED, worker.worker_id)
        self.target = target
        self.stopping = False
        self.crashed = False
        self.wake: simpy.Event = self.env.event()
        self.config = connector_config_def(self.is_sink).parse(connector_props)
        self.topics: list[str] = []
        self.operator = RetryWithToleranceOperator(self.config, self.env, self.report_error)
        self.process: simpy.Process | None = None

    is_sink = False

    def start(self) -> None:
        plugins = self.worker.plugins
        try:
            self.task = plugins.new_connector(self.connector_props["connector.class"]
                                              ).task_class()()
            self.key_converter = self._converter("key.converter", True)
            self.value_converter = self._converter("value.converter", False)
            self.transforms = transformations(plugins, self.connector_props)
            self.setup()
            self.task.start(dict(self.props))
        except Exception:
            self.fail()
            return
        self.status = Status(PAUSED if self.target == PAUSED else RUNNING, self.worker.worker_id)
        self.process = self.env.process(self.guarded())

    def _converter(self, name: str, is_key: bool) -> Converter:
        if self.connector_props.get(name):
            return converter(self.worker.plugins, self.connector_props[name],
                             self.connector_props, name, is_key)
        return converter(self.worker.plugins, self.worker.config[name], self.worker.props, name,
                         is_key)

    def setup(self) -> None:
        """Make the task's context and clients."""

    def guarded(self) -> Generator[Any, Any, None]:
        try:
            yield from self.execute()
        except Stopped:
            return
        except Exception:
            self.fail()
            try:
                yield from self.close_after_failure()
            except (Stopped, Exception):
                return

    def execute(self) -> Generator[Any, Any, None]:
        raise NotImplementedError

    def close_after_failure(self) -> Generator[Any, Any, None]:
        """Commit what was done before the failure, then release the task and its clients."""
        self._stop_task()
        yield from ()

    def fail(self) -> None:
        self.status = Status(FAILED, self.worker.worker_id, traceback.format_exc())

    def report_error(self, context: dict[str, Any]) -> None:
        """A tolerated error (sinks send the record to the DLQ)."""

    def sleep(self, delay_ms: float) -> Generator[Any, Any, None]:
        """Wait ``delay_ms`` or until paused, resumed or stopped."""
        if self.wake.triggered:
            self.wake = self.env.event()
        yield self.env.any_of([self.env.timeout(max(delay_ms, 0.0)), self.wake])

    def notify(self) -> None:
        if not self.wake.triggered:
            self.wake.succeed()

    def transition(self, target: str) -> None:
        """Pause or resume."""
        self.target = target
        if self.status.state in (RUNNING, PAUSED):
            self.status = Status(target, self.worker.worker_id)
        self.notify()

    def stop(self) -> None:
        """Ask the task to stop; it commits its offsets and closes as simulated time goes on."""
        self.stopping = True
        self.notify()
        if self.process is None or not self.process.is_alive:
            self._stop_task()

    def crash(self) -> None:
        """The worker process died: stop at once, without committing anything (and without
        writing a status: a dead process writes nothing)."""
        self.crashed = self.stopping = True
        self._status = Status(UNASSIGNED, self.worker.worker_id)
        self.notify()

    def _stop_task(self) -> None:
        if hasattr(self, "task"):
            with contextlib.suppress(Exception):  # stopping a failed task may fail again
                self.task.stop()

    def convert_transform(self, record: ConnectRecord) -> Generator[Any, Any, Any]:
        """Apply the transformation chain; ``SKIPPED`` or None means drop the record."""
        for t in self.transforms:
            def step(t: Transformation = t, r: ConnectRecord = record) -> Any:
                return t.apply(r)
            record = yield from self.operator.execute(step, TRANSFORMATION, type(t),
                                                      self.error_context(record))
            if record is SKIPPED or record is None:
                return record
        return record

    def error_context(self, record: Any) -> dict[str, Any]:
        return {}


class WorkerSourceTask(WorkerTask):
    """Polls a ``SourceTask`` and produces its records."""

    task: SourceTask

    def setup(self) -> None:
        worker = self.worker
        self.producer = Producer(self.kernel, {  # Worker.baseProducerConfigs
            "client.id": f"connector-producer-{self.connector}-{self.task_id}",
            "enable.idempotence": False, "acks": "all",
            "max.in.flight.requests.per.connection": 1, "delivery.timeout.ms": 2**31 - 1})
        keep_client_id(self.kernel, self.producer.client_id,
                       f"connector-producer-{self.connector}-{self.task_id}")
        self.writer = OffsetStorageWriter(worker.offset_store, self.connector)
        self.task.context = SourceTaskContext(
            lambda partition: worker.offset_store.get(self.connector, partition),
            lambda: self.kernel.now_ms, self.kernel.spawn_rng())
        self.in_flight: list[tuple[int, SourceRecord]] = []  # (producer record index, record)
        self.next_flush = self.kernel.now_ms + worker.config["offset.flush.interval.ms"]

    def execute(self) -> Generator[Any, Any, None]:
        while not self.stopping:
            self.maybe_flush()
            if self.target == PAUSED:
                yield from self.sleep(math.inf if not self.in_flight else 100)
                continue
            records = self.task.poll()
            if not records:
                yield from self.sleep(min(self.task.idle_ms, self.time_to_flush()))
                continue
            for record in records:
                yield from self.send(record)
        if not self.crashed:
            self.commit_offsets(final=True)
            self._stop_task()

    def close_after_failure(self) -> Generator[Any, Any, None]:
        """``finalOffsetCommit``: offsets of records already acknowledged are still flushed."""
        self.commit_offsets(final=True)
        self._stop_task()
        yield from ()

    def crash(self) -> None:
        """The worker process died: its producer dies with it (records not sent yet are lost;
        their offsets were never flushed, so the task that takes over produces them again)."""
        super().crash()
        if hasattr(self, "producer"):
            self.producer.crash()

    def time_to_flush(self) -> float:
        return max(self.next_flush - self.kernel.now_ms, 1.0)

    def send(self, record: SourceRecord) -> Generator[Any, Any, None]:
        transformed = yield from self.convert_transform(record)
        if transformed is SKIPPED or transformed is None:
            self.in_flight.append((-1, record))  # a dropped record's offset still counts
            return
        topic = transformed.topic
        key = yield from self.operator.execute(
            lambda: self.key_converter.from_connect_data(topic, transformed.key_schema,
                                                         transformed.key),
            KEY_CONVERTER, type(self.key_converter), {})
        value = yield from self.operator.execute(
            lambda: self.value_converter.from_connect_data(topic, transformed.value_schema,
                                                           transformed.value),
            VALUE_CONVERTER, type(self.value_converter), {})
        if key is SKIPPED or value is SKIPPED:
            self.in_flight.append((-1, record))
            return
        ensure_topic(self.kernel, topic)
        if topic not in self.topics:
            self.topics.append(topic)
            self.worker.add_active_topic(self.connector, topic)
        self.producer.send(topic, key=key, value=value)
        self.in_flight.append((self.producer.buffer.n - 1, record))

    def maybe_flush(self) -> None:
        if self.kernel.now_ms >= self.next_flush:
            self.commit_offsets()

    def commit_offsets(self, final: bool = False) -> None:
        """Flush the offsets of the acknowledged prefix of sent records (``SubmittedRecords``)."""
        done = 0
        buffer = self.producer.buffer
        for index, record in self.in_flight:
            if index >= 0 and math.isnan(buffer.ack_ms[index]):
                break  # not acknowledged yet: later offsets wait for it
            if index >= 0 and buffer.error[index]:
                raise ConnectError("Unrecoverable exception from producer send callback for a "
                                   f"record to {record.topic}")
            self.writer.offset(record.source_partition, record.source_offset)
            done += 1
        del self.in_flight[:done]
        if self.writer.flush():
            self.task.commit()
        self.next_flush = self.kernel.now_ms + self.worker.config["offset.flush.interval.ms"]


class WorkerSinkTask(WorkerTask):
    """Consumes in group ``connect-<connector>`` and calls ``put``."""

    is_sink = True
    task: SinkTask

    def setup(self) -> None:
        self.consumer = Consumer(self.kernel, {
            "group.id": f"connect-{self.connector}",
            "client.id": f"connector-consumer-{self.connector}-{self.task_id}",
            "enable.auto.commit": False, "auto.offset.reset": "earliest"},
            processing_ms_per_record=0)
        keep_client_id(self.kernel, self.consumer.client_id,
                       f"connector-consumer-{self.connector}-{self.task_id}")
        topics = [t.strip() for t in self.config["topics"] if t.strip()]
        if topics:
            for topic in topics:
                ensure_topic(self.kernel, topic)
            self.consumer.subscribe(topics)
        else:
            self.consumer.subscribe(re.compile(self.config["topics.regex"]))
        dlq = self.config["errors.deadletterqueue.topic.name"].strip()
        self.dlq_topic = dlq
        if dlq:
            ensure_topic(self.kernel, dlq,
                         self.config["errors.deadletterqueue.topic.replication.factor"])
            self.dlq_producer = self.worker.dlq_producer()
        reporter = self.put_error if self.config["errors.tolerance"] == "all" else None
        self.task.context = SinkTaskContext(reporter)
        self.current: dict[TopicPartition, int] = {}
        self.raw: dict[tuple[str, int, int], tuple[Any, Any]] = {}
        self.next_commit = self.kernel.now_ms + self.worker.config["offset.flush.interval.ms"]

    def execute(self) -> Generator[Any, Any, None]:
        consumer = self.consumer
        consumer.app_proc = self.process
        while not self.stopping:
            if self.target == PAUSED:
                consumer.pause(consumer.assignment())
            elif consumer.paused():
                consumer.resume(consumer.paused())
            records = yield from consumer.poll_gen(100)
            batch: list[SinkRecord] = []
            self.raw.clear()
            for rec in records:
                record = yield from self.convert(rec)
                if record is not None:
                    batch.append(record)
                self.worker.add_active_topic(self.connector, rec.topic)
            if records and (yield from self.put(batch)):
                for rec in records:  # only what put took counts for the next commit
                    self.current[rec.topic_partition] = rec.offset + 1
            if self.kernel.now_ms >= self.next_commit:
                yield from self.commit()
        yield from self.close_gracefully()

    def close_gracefully(self) -> Generator[Any, Any, None]:
        """Commit, leave the group, stop the task (``WorkerSinkTask.closeAllPartitions``)."""
        yield from self.commit()
        self.consumer.closing = True
        yield from self.consumer.close_gen()
        self._stop_task()

    def close_after_failure(self) -> Generator[Any, Any, None]:
        yield from self.close_gracefully()

    def convert(self, rec: Any) -> Generator[Any, Any, SinkRecord | None]:
        key_bytes, value_bytes = payload(self.kernel, rec.record_id)
        self.raw[(rec.topic, rec.partition, rec.offset)] = (key_bytes, value_bytes)
        context = {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
                   "key": key_bytes, "value": value_bytes}
        key = yield from self.operator.execute(
            lambda: self.key_converter.to_connect_data(rec.topic, _bytes(key_bytes)),
            KEY_CONVERTER, type(self.key_converter), context)
        if key is SKIPPED:
            return None
        value = yield from self.operator.execute(
            lambda: self.value_converter.to_connect_data(rec.topic, _bytes(value_bytes)),
            VALUE_CONVERTER, type(self.value_converter), context)
        if value is SKIPPED:
            return None
        record = SinkRecord(rec.topic, rec.partition, key[0], key[1], value[0], value[1],
                            rec.timestamp_ms, tuple(record_headers(self.kernel, rec.record_id)),
                            rec.offset)
        transformed = yield from self.convert_transform(record)
        return None if transformed is SKIPPED else transformed

    def error_context(self, record: Any) -> dict[str, Any]:
        key, value = self.raw.get((record.topic, record.kafka_partition, record.kafka_offset),
                                  (None, None))
        return {"topic": record.topic, "partition": record.kafka_partition,
                "offset": record.kafka_offset, "key": key, "value": value}

    def put(self, batch: list[SinkRecord]) -> Generator[Any, Any, bool]:
        """``put``; a ``RetriableError`` redelivers the same batch after ``context.timeout``.
        False if the task was stopped before the batch was taken."""
        while True:
            try:
                self.task.put(list(batch))
                return True
            except RetriableError:
                yield from self.sleep(self.task.context.timeout_ms or 0)
                if self.stopping:
                    return False

    def put_error(self, record: SinkRecord, error: BaseException) -> None:
        """The errant record reporter (KIP-610): a record ``put`` could not write. Kafka
        names ``SinkTask`` as the executing class, whichever task reported it
        (``WorkerErrantRecordReporter.report``)."""
        self.report_error({**self.error_context(record), "stage": TASK_PUT,
                           "class_name": class_name(SinkTask), "exception": error})

    def report_error(self, context: dict[str, Any]) -> None:
        if not self.dlq_topic or "topic" not in context:
            return
        headers = (error_headers(context, self.connector, self.task_id)
                   if self.config["errors.deadletterqueue.context.headers.enable"] else [])
        self.dlq_producer.send(self.dlq_topic, key=context["key"], value=context["value"],
                               headers=headers)

    def commit(self) -> Generator[Any, Any, None]:
        """``pre_commit`` (flush), then commit the consumer offsets."""
        self.next_commit = self.kernel.now_ms + self.worker.config["offset.flush.interval.ms"]
        if not self.current:
            return
        current = {(tp.topic, tp.partition): offset for tp, offset in self.current.items()}
        safe = self.task.pre_commit(current)
        offsets = {TopicPartition(t, p): o for (t, p), o in safe.items()}
        yield from self.consumer.commit_gen(offsets, sync=True)

    def stop(self) -> None:
        super().stop()
        if hasattr(self, "consumer"):
            self.consumer.notify()

    def crash(self) -> None:
        super().crash()
        if hasattr(self, "consumer") and self.consumer.lifecycle == "running":
            self.consumer.crash()  # no commit, no LeaveGroup: the group waits for the session


def _bytes(data: Any) -> bytes | None:
    if data is None or isinstance(data, bytes):
        return data
    return str(data).encode("utf-8")


class Worker:
    """Runs connectors and tasks for a herder; owns the plugins and the offset store.

    Args:
        kernel: the lab's ``Kernel``.
        props: worker properties (``connect-standalone.properties``).
    """

    def __init__(self, kernel: Any, props: dict[str, Any] | None = None) -> None:
        self.kernel = kernel_of(kernel, "Worker")
        self.props = {k: str(v) for k, v in (props or {}).items()}
        self.config = WORKER_CONFIG.parse(self.props)
        self.worker_id = worker_id_of(self.config)
        self.plugins = Plugins(self.config["plugin.path"])
        filename = self.config["offset.storage.file.filename"]
        self.offset_store = FileOffsetBackingStore(filename) if filename else OffsetBackingStore()
        self.connectors: dict[str, WorkerConnector] = {}
        self.tasks: dict[tuple[str, int], WorkerTask] = {}
        self.active_topics: dict[str, list[str]] = {}
        self.status_listener: Callable[[str, int | None, Status], None] | None = None
        self.topic_listener: Callable[[str, str], None] | None = None
        self._dlq_producer: Producer | None = None

    def dlq_producer(self) -> Producer:
        if self._dlq_producer is None:
            self._dlq_producer = Producer(self.kernel, {"client.id": "connect-dlq",
                                                        "acks": "all", "linger.ms": 0})
        return self._dlq_producer

    def add_active_topic(self, connector: str, topic: str) -> None:
        """A task used ``topic`` (KIP-558); the topic listener hears of every use."""
        topics = self.active_topics.setdefault(connector, [])
        if topic not in topics:
            topics.append(topic)
        if self.topic_listener is not None:
            self.topic_listener(connector, topic)

    def start_connector(self, name: str, props: dict[str, str], target: str) -> bool:
        connector = self.plugins.new_connector(props["connector.class"])
        worker_connector = WorkerConnector(name, connector, self)
        self.connectors[name] = worker_connector
        return worker_connector.start(props, target)

    def stop_connector(self, name: str) -> None:
        worker_connector = self.connectors.pop(name, None)
        if worker_connector is not None:
            worker_connector.stop()

    def start_task(self, name: str, task_id: int, props: dict[str, str],
                   connector_props: dict[str, str], target: str) -> WorkerTask:
        kind = self.plugins.connector_type(
            self.plugins.connector_full_name(connector_props["connector.class"]))
        cls = WorkerSinkTask if kind == "sink" else WorkerSourceTask
        task = cls(self, name, task_id, props, connector_props, target)
        self.tasks[(name, task_id)] = task
        task.start()
        return task

    def stop_task(self, name: str, task_id: int) -> None:
        task = self.tasks.pop((name, task_id), None)
        if task is not None:
            task.stop()

    def crash(self) -> None:
        """The worker process dies: tasks stop without committing offsets or leaving groups.

        Start a new ``Worker`` (and herder) on the same kernel to model the restart; it reads
        the same offset file, and sink tasks resume from their groups' committed offsets.
        """
        for task in self.tasks.values():
            task.crash()
        self.tasks.clear()
        self.connectors.clear()

    def task_ids(self, name: str) -> list[int]:
        return sorted(t for (c, t) in self.tasks if c == name)
