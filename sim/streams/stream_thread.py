"""``StreamThread``: one thread of a Streams instance, a SimPy process on the kernel.

Mirrors ``StreamThread`` and its ``TaskManager``. Each thread has its own consumer (group
``application.id``, the Streams assignor, ``auto.offset.reset=earliest``, no auto-commit) and its
own producer, as Kafka Streams has. Its loop, as in ``StreamThread.runOnce``:

1. **poll** the consumer; records go to the buffer of their task's input partition;
2. **process** every buffered record: each task takes, among its partitions, the record with the
   lowest timestamp first (``PartitionGroup``) and pushes it through its ``StreamTask``;
3. **punctuate** by wall-clock time (the simulated clock);
4. **commit** once ``commit.interval.ms`` has passed: flush the record caches (their records go
   downstream), flush the producer (wait for the acks), then commit every task's consumed offsets.

The consumer's rebalance listener creates a task when its partitions are assigned and closes it
when they are revoked (after committing it; output still in the producer is sent but not awaited)
or lost (without committing). Records read from the cluster carry no payloads; the key and value
come from the producer that wrote them (``sim.payloads``), the timestamp from the log.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sim.consumer import Consumer
from sim.consumer.assignors import COOPERATIVE
from sim.consumer.client import Stopped
from sim.payloads import payload
from sim.producer import Producer
from sim.records import TopicPartition
from sim.streams import events
from sim.streams.assignor import StreamsPartitionAssignor, ThreadInfo
from sim.streams.internal_topics import TaskId, TopologyMetadata
from sim.streams.processor import Record
from sim.streams.record_cache import ThreadCache
from sim.streams.task import StreamTask

if TYPE_CHECKING:
    from sim.streams.kafka_streams import KafkaStreams

FLUSH_CHECK_MS = 1
"""How often a commit looks whether the producer has its acks (a flush waits for them)."""

CONSUMER_OVERRIDES = {"auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "max.poll.records": 1000}
"""Kafka Streams' consumer defaults (``StreamsConfig.CONSUMER_DEFAULT_OVERRIDES``)."""
PRODUCER_OVERRIDES = {"linger.ms": 100}
"""Kafka Streams' producer default (``StreamsConfig.PRODUCER_DEFAULT_OVERRIDES``)."""


class StreamsConsumer(Consumer):
    """A stream thread's consumer: it knows its instance and thread, and uses the Streams
    assignor with cooperative rebalancing."""

    def __init__(self, kernel: Any, config: dict[str, Any], info: ThreadInfo,
                 assignor: StreamsPartitionAssignor) -> None:
        super().__init__(kernel, config)
        self.thread_info = info
        assert self.coordinator is not None
        self.coordinator.assignors = [assignor]
        self.coordinator.rebalance_protocol = COOPERATIVE


@dataclass
class ActiveTask:
    """A task running on a thread, with its input buffers and offsets."""

    task_id: TaskId
    task: StreamTask
    partitions: list[TopicPartition] = field(default_factory=list)
    queues: dict[TopicPartition, deque[tuple[int, Record]]] = field(default_factory=dict)
    consumed: dict[TopicPartition, int] = field(default_factory=dict)  # next offset per partition
    committed: dict[TopicPartition, int] = field(default_factory=dict)

    def next_partition(self) -> TopicPartition | None:
        """The partition whose next record has the lowest timestamp (``PartitionGroup``)."""
        best: TopicPartition | None = None
        for tp in self.partitions:
            queue = self.queues.get(tp)
            if queue and (best is None or queue[0][1].timestamp
                          < self.queues[best][0][1].timestamp):
                best = tp
        return best

    def commit_needed(self) -> bool:
        return any(self.committed.get(tp) != offset for tp, offset in self.consumed.items())


class StreamThread:
    """One stream thread of ``streams`` (``StreamThread``), numbered from 1."""

    def __init__(self, streams: KafkaStreams, index: int, metadata: TopologyMetadata,
                 assignor: StreamsPartitionAssignor) -> None:
        self.streams = streams
        self.kernel = streams.kernel
        self.metadata = metadata
        self.index = index
        self.name = f"{streams.client_id}-StreamThread-{index}"
        config = streams.config
        self.commit_interval_ms = config["commit.interval.ms"]
        self.poll_ms = config["poll.ms"]
        consumer_config = {"group.id": config["application.id"],
                           "client.id": f"{self.name}-consumer", **CONSUMER_OVERRIDES}
        self.consumer = StreamsConsumer(self.kernel, consumer_config,
                                        ThreadInfo(streams.process_id, index), assignor)
        self.producer = Producer(self.kernel, {"client.id": f"{self.name}-producer",
                                               **PRODUCER_OVERRIDES})
        self.cache = ThreadCache(config["statestore.cache.max.bytes"]
                                 // config["num.stream.threads"])
        self.tasks: dict[TaskId, ActiveTask] = {}
        self.closed_tasks: list[ActiveTask] = []
        self.closing = False
        self.started = False
        self.alive = False
        self.assigned_once = False
        self.last_commit_ms = self.kernel.now_ms

    def start(self) -> None:
        self.consumer.subscribe(self.metadata.subscribed_topics(), listener=self)
        self.started = self.alive = True
        self.kernel.env.process(self._run())

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> Generator[Any, Any, None]:
        consumer = self.consumer
        try:
            while not self.closing:
                records = yield from consumer.poll_gen(self.poll_ms)
                for record in records:
                    self._buffer(record)
                self._process()
                self._punctuate_wall_clock()
                self.streams.update_state()
                if self.kernel.now_ms - self.last_commit_ms >= self.commit_interval_ms:
                    yield from self.commit()
            yield from self.commit()
            for task_id in sorted(self.tasks):
                self._close_task(task_id)
            yield from consumer.close_gen()
        except Stopped:
            pass
        except Exception as exc:  # a processor failed: the instance goes to ERROR
            exc.add_note(f"(in stream thread {self.name} at {self.kernel.now_ms:g} ms)")
            self.streams.fail()
            raise
        finally:
            self.alive = False
            self.streams.update_state()

    def _buffer(self, record: Any) -> None:
        tp = record.topic_partition
        task = self.tasks.get(self.metadata.task_for(tp))
        if task is None or tp not in task.partitions:
            return
        key, value = payload(self.kernel, record.record_id)
        task.queues.setdefault(tp, deque()).append(
            (record.offset, Record(key, value, record.timestamp_ms)))

    def _process(self) -> None:
        trace, now = self.kernel.trace, self.kernel.now_ms
        for task_id in sorted(self.tasks):
            active = self.tasks[task_id]
            while (tp := active.next_partition()) is not None:
                offset, record = active.queues[tp].popleft()
                trace.emit(events.STREAMS_PROCESS, now, self.name, str(task_id), tp.topic,
                           tp.partition, offset, record.timestamp)
                active.task.process(self.metadata.topology_topic(tp.topic), record)
                active.consumed[tp] = offset + 1

    def _punctuate_wall_clock(self) -> None:
        now = int(self.kernel.now_ms)
        for task_id in sorted(self.tasks):
            self.tasks[task_id].task.maybe_punctuate_system_time(now)

    # -- commits ----------------------------------------------------------------------------

    def commit(self) -> Generator[Any, Any, None]:
        """Flush caches and producer, then commit the offsets of every task that moved."""
        self.last_commit_ms = self.kernel.now_ms
        for task_id in sorted(self.tasks):
            self.tasks[task_id].task.flush_cache()
        yield from self._flush_producer()
        offsets: dict[TopicPartition, int] = {}
        moved = [t for t in sorted(self.tasks) if self.tasks[t].commit_needed()]
        for task_id in moved:
            offsets.update(self.tasks[task_id].consumed)
        if not offsets:
            return
        error = yield from self.consumer.commit_gen(offsets, sync=True)
        if error:
            return  # the consumer rejoins at its next poll; the offsets are committed later
        for task_id in moved:
            active = self.tasks.get(task_id)
            if active is None:
                continue
            active.committed.update({tp: offsets[tp] for tp in active.consumed if tp in offsets})
            self._trace_commit(active)

    def _trace_commit(self, active: ActiveTask) -> None:
        shown = ",".join(f"{tp}:{offset}" for tp, offset in sorted(
            active.committed.items(), key=lambda item: (item[0].topic, item[0].partition)))
        self.kernel.trace.emit(events.STREAMS_COMMIT, self.kernel.now_ms, self.name,
                               str(active.task_id), shown)

    def _flush_producer(self) -> Generator[Any, Any, None]:
        producer = self.producer
        if producer.completed >= producer.buffer.n:
            return
        producer.flushing = True
        producer.wakeup()
        while producer.completed < producer.buffer.n:
            yield self.kernel.env.timeout(FLUSH_CHECK_MS)
        producer.flushing = False

    # -- the rebalance listener (``StreamsRebalanceListener``) ------------------------------

    @property
    def state(self) -> str:
        """The thread's state in Kafka's words (``StreamThread.State``)."""
        if not self.started:
            return "CREATED"
        if not self.alive:
            return "DEAD"
        if self.closing:
            return "PENDING_SHUTDOWN"
        coordinator = self.consumer.coordinator
        settled = (coordinator is not None and coordinator.state == "STABLE"
                   and not coordinator.rejoin_needed and coordinator.sync_result is None)
        if settled:
            return "RUNNING"
        return "PARTITIONS_ASSIGNED" if self.assigned_once else "STARTING"

    def on_partitions_assigned(self, partitions: list[TopicPartition]) -> None:
        self.assigned_once = True
        for tp in partitions:
            task_id = self.metadata.task_for(tp)
            active = self.tasks.get(task_id)
            if active is None:
                active = self.tasks[task_id] = self._create_task(task_id)
            if tp not in active.partitions:
                active.partitions.append(tp)
                active.partitions.sort(key=lambda p: (p.topic, p.partition))
        self.streams.update_state()

    def on_partitions_revoked(self, partitions: list[TopicPartition]) -> None:
        revoked = sorted({self.metadata.task_for(tp) for tp in partitions} & set(self.tasks))
        offsets: dict[TopicPartition, int] = {}
        for task_id in revoked:
            active = self.tasks[task_id]
            active.task.flush_cache()
            if active.commit_needed():
                offsets.update(active.consumed)
                active.committed.update(active.consumed)
                self._trace_commit(active)
        if offsets:
            self.consumer.commit_sync(offsets)
        for task_id in revoked:
            self._close_task(task_id)

    def on_partitions_lost(self, partitions: list[TopicPartition]) -> None:
        for task_id in sorted({self.metadata.task_for(tp) for tp in partitions} & set(self.tasks)):
            self._close_task(task_id)

    def _create_task(self, task_id: TaskId) -> ActiveTask:
        streams = self.streams
        nodes = self.metadata.subtopologies[task_id.subtopology]
        task = StreamTask(streams.topology, streams.application_id, self._collect, str(task_id),
                          nodes, int(self.kernel.now_ms), streams.global_stores())
        task.listener = lambda kind, node, detail, t=str(task_id): self._task_event(
            t, kind, node, detail)
        task.enable_caching(self.cache)
        self.kernel.trace.emit(events.STREAMS_TASK, self.kernel.now_ms, self.name, str(task_id),
                               "created")
        return ActiveTask(task_id, task)

    def _close_task(self, task_id: TaskId) -> None:
        active = self.tasks.pop(task_id)
        active.task.close()
        self.closed_tasks.append(active)
        self.kernel.trace.emit(events.STREAMS_TASK, self.kernel.now_ms, self.name, str(task_id),
                               "closed")

    def _task_event(self, task_id: str, kind: str, node: str, detail: str) -> None:
        kind_event = events.STREAMS_FORWARD if kind == "forward" else events.STREAMS_PUNCTUATE
        self.kernel.trace.emit(kind_event, self.kernel.now_ms, self.name, task_id, node, detail)

    def _collect(self, topic: str, record: Record) -> None:
        """A sink's record goes to the producer (``RecordCollector``): keyed records to
        murmur2(key) % partitions, with the record's timestamp."""
        self.producer.send(self.metadata.broker_topic(topic), record.key, record.value,
                           timestamp=record.timestamp)

    # -- what a notebook looks at -----------------------------------------------------------

    def task_lag(self, active: ActiveTask) -> int:
        """Records in the task's partitions not yet processed (log end minus position)."""
        lag = 0
        for tp in active.partitions:
            end = self.kernel.cluster.partition(tp.topic, tp.partition).log.high_watermark
            lag += max(0, end - active.consumed.get(tp, active.committed.get(tp, 0)))
        return lag
