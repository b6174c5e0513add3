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
   A task whose records the producer failed to send (an expired ``delivery.timeout.ms``: a
   retriable error) commits nothing: it is corrupted, closed and created again, and reads its
   input from its last committed offsets (``TaskCorruptedException``); a non-retriable send
   error ends the thread (``StreamsException``).

The consumer's rebalance listener creates a task when its partitions are assigned and closes it
when they are revoked (after a commit of the whole thread, as at a commit interval: the producer
flushed first) or lost (without committing). Records read from the cluster carry no payloads;
the key and value come from the producer that wrote them (``sim.payloads``), the timestamp from
the log.

**State** (``ProcessorStateManager`` / ``TaskManager``): a new task opens its stores in the
instance's state directory (``<state.dir>/<application.id>/<task id>/rocksdb/<store>``) and
restores its logged stores from their changelogs with the thread's ``StoreChangelogReader``
(``changelog_reader``) before it processes anything; its input waits meanwhile. Once restored,
every change of a logged store goes to its changelog through the thread's producer
(``changelog``). After each commit a task rewrites its ``.checkpoint`` when its changelog offsets
moved by more than 10,000 since the last one; a clean close always writes it
(``AbstractTask.maybeCheckpoint``); a crash or lost task writes none. **Standby tasks** (from the
assignor's ``standby`` lists) keep warm copies by following the changelogs; when a standby's task
becomes active on the same thread its stores are handed over and only the tail is restored.

**Exactly once** (``processing.guarantee=exactly_once_v2``, KIP-447): the thread's producer is
transactional, with ``transactional.id`` ``<application.id>-<process id>-<thread index>``
(``ActiveTaskCreator`` / ``StreamsProducer``), and its consumer reads with
``isolation.level=read_committed``. The first record sent after a commit begins a transaction;
a commit sends the consumed offsets into it (``send_offsets_to_transaction`` with the consumer's
group metadata) and commits it, so outputs, changelog writes and offsets become visible together.
A crashed thread's open transaction is aborted when the same id calls ``init_transactions``
again (a restart with the state directory kept) or after ``transaction.timeout.ms`` (10,000
under EOS). A failed commit (a zombie fenced by the group generation, or a transaction the
coordinator timed out) aborts the transaction, closes every task dirty — its stores are wiped —
and rejoins the group as a new member that owns nothing (Kafka's ``TaskMigratedException``:
``handleLostAll``, then unsubscribe and subscribe); a task given back is restored from the
changelog and resumes from the last committed offsets. Partitions lost (the session expired
while the thread could not heartbeat) take the same ``handleLostAll`` steps: the open
transaction is aborted, so the lost tasks' writes never commit without their input offsets, and
the producer is replaced (the new one takes its epoch when a task next initializes). The
checkpoint is removed once read at start-up and written only on a clean close; a persistent
store that holds data but has no checkpoint is wiped and restored from scratch
(``TaskCorruptedException``).
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Collection, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.broker.producer_state import INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER
from sim.consumer import Consumer
from sim.consumer import events as events_consumer
from sim.consumer.assignors import COOPERATIVE
from sim.consumer.client import Stopped
from sim.consumer.coordinator import STABLE
from sim.consumer.fetcher import ConsumerRecord
from sim.errors import StreamsError, TransactionError
from sim.payloads import payload
from sim.producer import Producer
from sim.producer.buffer import DELIVERY_TIMEOUT, ERRORS
from sim.producer.transaction_manager import RETRIABLE
from sim.producer.transactional import ABORTABLE_ERROR, IN_TRANSACTION, UNINITIALIZED
from sim.records import TopicPartition
from sim.streams import events
from sim.streams.assignor import StreamsPartitionAssignor, ThreadInfo, assignment_info
from sim.streams.changelog import TaskChangelogs, changelog_topic
from sim.streams.changelog_reader import StoreChangelogReader
from sim.streams.config import (
    EXACTLY_ONCE_V2,
    consumer_client_id,
    producer_client_id,
    thread_client_id,
)
from sim.streams.internal_topics import TaskId, TopologyMetadata
from sim.streams.processor import Record
from sim.streams.record_cache import ThreadCache
from sim.streams.state_directory import OFFSET_UNKNOWN, read_checkpoint, write_checkpoint
from sim.streams.stores import StateStore
from sim.streams.task import StreamTask

if TYPE_CHECKING:
    from sim.streams.kafka_streams import KafkaStreams

FLUSH_CHECK_MS = 1
"""How often a commit looks whether the producer has its acks (a flush waits for them)."""

MIGRATED = (OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH)
"""Send errors ``RecordCollectorImpl`` takes for a migrated task (``TaskMigratedException``)."""

OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT = 10_000
"""A running task rewrites its checkpoint after a commit only past this many changelog records
(``StateManagerUtil.OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT``)."""


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
    # per input partition: the polled records, in offset order, deserialized only when
    # processed (Kafka's ``RecordQueue`` keeps the raw records it was given)
    queues: dict[TopicPartition, deque[ConsumerRecord]] = field(default_factory=dict)
    consumed: dict[TopicPartition, int] = field(default_factory=dict)  # next offset per partition
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    restoring: bool = False
    changelogs: TaskChangelogs | None = None
    changelog_offsets: dict[TopicPartition, int] = field(default_factory=dict)  # last held
    checkpointed: dict[TopicPartition, int] = field(default_factory=dict)
    # at_least_once: the producer's indices of the records sent since the last commit, checked
    # once the producer is flushed (``RecordCollectorImpl``'s send callback, per task)
    sent: list[int] = field(default_factory=list)

    def next_partition(self) -> TopicPartition | None:
        """The partition whose next record has the lowest timestamp (``PartitionGroup``)."""
        best: TopicPartition | None = None
        for tp in self.partitions:
            queue = self.queues.get(tp)
            if queue and (best is None or queue[0].timestamp_ms
                          < self.queues[best][0].timestamp_ms):
                best = tp
        return best

    def commit_needed(self) -> bool:
        return any(self.committed.get(tp) != offset for tp, offset in self.consumed.items())


@dataclass
class StandbyTask:
    """A warm copy of a task's logged stores on another instance (``StandbyTask``)."""

    task_id: TaskId
    stores: dict[str, StateStore]
    checkpointed: dict[TopicPartition, int] = field(default_factory=dict)


class StreamThread:
    """One stream thread of ``streams`` (``StreamThread``), numbered from 1."""

    def __init__(self, streams: KafkaStreams, index: int, metadata: TopologyMetadata,
                 assignor: StreamsPartitionAssignor) -> None:
        self.streams = streams
        self.kernel = streams.kernel
        self.metadata = metadata
        self.index = index
        self.name = thread_client_id(streams.client_id, index)
        config = streams.config
        self.commit_interval_ms = config["commit.interval.ms"]
        self.poll_ms = config["poll.ms"]
        self.eos = config["processing.guarantee"] == EXACTLY_ONCE_V2
        consumer_config = config.main_consumer_configs(consumer_client_id(self.name))
        producer_config = config.producer_configs(producer_client_id(self.name))
        if self.eos:
            producer_config["transactional.id"] = (f"{streams.application_id}-"
                                                   f"{streams.process_id}-{index}")
        self.consumer = StreamsConsumer(self.kernel, consumer_config,
                                        ThreadInfo(streams.process_id, index), assignor)
        # a restarted instance's thread gets the same client.id; the lab numbers the repeat
        # apart, and network faults that name the client.id reach it (Network.name_client)
        self.kernel.cluster.network.name_client(self.consumer.client_id,
                                                consumer_config["client.id"])
        self.producer = self._new_producer(producer_config)
        self.producers = [self.producer]  # a fenced producer is replaced by a new one
        self.outputs: list[tuple[int, int, int]] = []  # (producer, buffer index, input time)
        self.visible_ms: dict[tuple[int, int], float] = {}  # (producer, index) → commit time
        self._in_transaction: list[tuple[int, int]] = []  # sent in the open transaction
        self.cache = ThreadCache(config["statestore.cache.max.bytes"]
                                 // config["num.stream.threads"])
        self.tasks: dict[TaskId, ActiveTask] = {}
        self.closed_tasks: list[ActiveTask] = []
        self.standbys: dict[TaskId, StandbyTask] = {}
        self.reader = StoreChangelogReader(self.kernel, self.name, self._restored,
                                           read_committed=self.eos)
        self.crashed = False
        self.closing = False
        self.started = False
        self.alive = False
        self.assigned_once = False
        self._revoking = False  # inside a revocation's commit (a rebalance callback)
        self.last_commit_ms = self.kernel.now_ms

    def start(self) -> None:
        self.consumer.subscribe(self.metadata.subscribed_topics(), listener=self)
        self.started = self.alive = True
        self.kernel.env.process(self._run())
        self.kernel.env.process(self.reader.run())

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> Generator[Any, Any, None]:
        consumer = self.consumer
        collected = False
        try:
            if self.producer.txn is not None:
                yield from self.producer.txn.init_gen()  # fences a crashed predecessor
                self._check_alive()
            while not self.closing:
                records = yield from consumer.poll_gen(self.poll_ms)
                self._check_alive()
                yield from self._maybe_init_transactions()
                for record in records:
                    self._buffer(record)
                self._update_standbys()
                self._process()
                self._punctuate_wall_clock()
                self.streams.update_state()
                if self.kernel.now_ms - self.last_commit_ms >= self.commit_interval_ms:
                    yield from self.commit()
            yield from self.commit()
            for task_id in sorted(self.tasks):
                self._close_task(task_id)
            for task_id in sorted(self.standbys):
                self._close_standby(task_id)
            yield from consumer.close_gen()
        except Stopped:
            pass
        except GeneratorExit:
            # Not a stop on the simulated clock: the run is over and Python closes the paused
            # loop whenever its garbage collector reaches it, which depends on what else ran in
            # the interpreter. A state change now would add events to the finished run's trace.
            collected = True
            raise
        except Exception as exc:  # a processor failed: the instance goes to ERROR
            exc.add_note(f"(in stream thread {self.name} at {self.kernel.now_ms:g} ms)")
            # the dead thread leaves the group, so its tasks move to the other threads at once
            consumer.leave_now("the consumer unsubscribed from all topics")
            self.streams.fail()
            raise
        finally:
            if not collected:
                self.alive = False
                self.reader.stopped = True
                self.reader.wake()
                self.streams.update_state()

    def _check_alive(self) -> None:
        if self.crashed:
            raise Stopped()

    def crash(self) -> None:
        """The process died: no commit, no checkpoint; the stores are let go as they are."""
        self.crashed = True
        self.reader.stopped = True
        self.reader.wake()
        if self.consumer.lifecycle == "running":
            self.consumer.crash()
        self.producer.crash()
        for active in self.tasks.values():
            TaskChangelogs.detach(active.task.stores)
            for store in active.task.stores.values():
                store.close()
        for standby in self.standbys.values():
            for store in standby.stores.values():
                store.close()
        self.tasks.clear()
        self.standbys.clear()

    def _buffer(self, record: Any) -> None:
        tp = record.topic_partition
        task = self.tasks.get(self.metadata.task_for(tp))
        if task is None or tp not in task.partitions:
            return
        task.queues.setdefault(tp, deque()).append(record)

    def _process(self) -> None:
        """Each active task that is not restoring processes the records it has buffered; the
        thread's consumer counts them as processed (its ``processed()`` and the audit)."""
        trace, now = self.kernel.trace, self.kernel.now_ms
        done: list[ConsumerRecord] = []
        for task_id in sorted(self.tasks):
            active = self.tasks[task_id]
            if active.restoring:
                continue  # its input waits until the stores are restored
            while (tp := active.next_partition()) is not None:
                source = active.queues[tp].popleft()
                key, value = payload(self.kernel, source.record_id)
                record = Record(key, value, source.timestamp_ms)
                trace.emit(events.STREAMS_PROCESS, now, self.name, str(task_id), tp.topic,
                           tp.partition, source.offset, record.timestamp)
                active.task.process(self.metadata.topology_topic(tp.topic), record)
                active.consumed[tp] = source.offset + 1
                done.append(source)
        if done:
            self.consumer.processed_now(done)

    def _punctuate_wall_clock(self) -> None:
        now = int(self.kernel.now_ms)
        for task_id in sorted(self.tasks):
            self.tasks[task_id].task.maybe_punctuate_system_time(now)

    # -- commits ----------------------------------------------------------------------------

    def commit(self, revoking: Collection[TaskId] = ()) -> Generator[Any, Any, None]:
        """Flush caches and producer, then commit the offsets of every task that moved (under
        exactly_once_v2: send them into the transaction and commit it). A corrupted task
        among ``revoking`` is closed, not revived."""
        self.last_commit_ms = self.kernel.now_ms
        for task_id in sorted(self.tasks):
            active = self.tasks[task_id]
            active.task.flush_cache()
            if active.changelogs is not None:
                active.changelogs.flush()
        if self.eos:
            yield from self._commit_transaction()
            for task_id in sorted(self.standbys):  # StandbyTask.postCommit, under EOS too
                self._checkpoint_standby(task_id, force=False)
            return
        yield from self._flush_producer()
        self._check_alive()
        for task_id in self._failed_sends():  # TaskCorruptedException: nothing of it commits
            if task_id in revoking:  # it goes to another member, which reads from the commit
                self._close_task(task_id)
            else:
                self._close_dirty_and_revive(task_id)
        offsets: dict[TopicPartition, int] = {}
        moved = [t for t in sorted(self.tasks) if self.tasks[t].commit_needed()]
        for task_id in moved:
            offsets.update(self.tasks[task_id].consumed)
        if offsets:
            error = yield from self.consumer.commit_gen(offsets, sync=True)
            self._check_alive()
            if error:
                return  # the consumer rejoins at its next poll; the offsets are committed later
        for task_id in moved:
            active = self.tasks.get(task_id)
            if active is None:
                continue
            active.committed.update({tp: offsets[tp] for tp in active.consumed if tp in offsets})
            self._trace_commit(active)
        for task_id in sorted(self.tasks):  # postCommit
            self._maybe_checkpoint(self.tasks[task_id], force=False)
        for task_id in sorted(self.standbys):
            self._checkpoint_standby(task_id, force=False)

    def _failed_sends(self) -> list[TaskId]:
        """The tasks whose records the flushed producer failed to send since the last commit
        (at_least_once; under EOS the failed batch aborts the transaction instead).

        ``RecordCollectorImpl.recordSendError`` keeps a task's first send error and
        ``checkForException`` throws it at the task's next send, flush or commit. The
        ``DefaultProductionExceptionHandler`` answers RETRY for a ``RetriableException`` (an
        expired ``delivery.timeout.ms`` is a ``TimeoutException``): the task is corrupted
        (``TaskCorruptedException``). Any other error answers FAIL: a ``StreamsException``
        ends the thread. (Kafka takes a fenced or out-of-order producer for a migrated task
        and rejoins the group; here such a task is revived as a corrupted one.)"""
        buffer = self.producer.buffer
        corrupted: list[TaskId] = []
        for task_id in sorted(self.tasks):
            active = self.tasks[task_id]
            failed = np.flatnonzero(buffer.error[np.array(active.sent, dtype=np.int64)])
            first = active.sent[failed[0]] if len(failed) else None
            active.sent = []
            if first is None:
                continue
            error = ERRORS[int(buffer.error[first])]
            if error not in RETRIABLE and error not in (DELIVERY_TIMEOUT, *MIGRATED):
                raise StreamsError(f"Error encountered sending record to a topic for task "
                                   f"{task_id} due to: {error}. Exception handler choose to "
                                   "FAIL the processing, no more records would be sent.")
            self.kernel.trace.emit(events.STREAMS_TASK, self.kernel.now_ms, self.name,
                                   str(task_id), f"corrupted: send failed ({error})")
            corrupted.append(task_id)
        return corrupted

    def _close_dirty_and_revive(self, task_id: TaskId) -> None:
        """``TaskManager.closeDirtyAndRevive`` for a corrupted task under at_least_once (with
        the state updater, Kafka's default): flush its cache, checkpoint the changelog offsets
        acknowledged so far, close it — its stores keep what they hold — and create it again:
        it restores its stores and reads its input from the last committed offsets
        (``addPartitionsForOffsetReset``), so the records whose sends failed are processed
        again instead of being committed past."""
        partitions = list(self.tasks[task_id].partitions)
        for tp in partitions:  # the next poll fetches the committed offsets
            self.consumer.subscriptions.positions.pop(tp, None)
        self._close_task(task_id)
        self.tasks[task_id] = self._create_task(task_id)
        self.tasks[task_id].partitions = partitions

    def _commit_transaction(self) -> Generator[Any, Any, None]:
        """``StreamsProducer.commitTransaction``: offsets into the transaction, then commit."""
        txn = self.producer.txn
        assert txn is not None
        moved = [t for t in sorted(self.tasks) if self.tasks[t].commit_needed()]
        offsets = {tp: o for t in moved for tp, o in self.tasks[t].consumed.items()}
        if not offsets and not self._in_transaction and not txn.in_error \
                and txn.state != "IN_TRANSACTION":
            return
        try:
            if txn.in_error:
                raise txn.error  # type: ignore[misc]
            self._maybe_begin()
            if offsets:
                yield from txn.send_offsets_gen(offsets, self.consumer.group_metadata())
                self._check_alive()
            yield from txn.commit_gen()
            self._check_alive()
        except TransactionError as error:
            self._check_alive()
            yield from self._abort_and_lose_all(error)
            return
        now = self.kernel.now_ms
        for sent in self._in_transaction:
            self.visible_ms[sent] = now
        self._in_transaction = []
        for task_id in moved:
            active = self.tasks.get(task_id)
            if active is None:
                continue
            active.committed.update({tp: offsets[tp] for tp in active.consumed if tp in offsets})
            self._trace_commit(active)

    def _maybe_begin(self) -> None:
        """Begin a transaction before the first record after a commit (``maybeBeginTxn``)."""
        txn = self.producer.txn
        if txn is not None and txn.state == "READY":
            txn.begin()

    def _abort_and_lose_all(self, error: TransactionError) -> Generator[Any, Any, None]:
        """A commit failed (``TaskMigratedException``: a zombie fenced by the group generation,
        or a producer fenced after the coordinator timed its transaction out): do what
        ``StreamThread.handleTaskMigrated`` does. ``TaskManager.handleLostAll`` closes every
        task dirty — under EOS its stores are wiped — aborting the transaction (a fenced
        producer's error swallowed) and replacing the producer; then the consumer unsubscribes
        and subscribes again, so the thread rejoins as a new member that owns nothing.

        Reviving the tasks instead would let a thread that missed a rebalance go on processing
        partitions the group gave to another member, and claim them as owned in its next
        JoinGroup: both would then commit the same input records.
        """
        self.kernel.trace.emit(events.STREAMS_TASK, self.kernel.now_ms, self.name, "-",
                               f"transaction aborted: {type(error).__name__}")
        subscriptions = self.consumer.subscriptions
        for task_id in sorted(self.tasks):
            for tp in self.tasks[task_id].partitions:
                subscriptions.positions.pop(tp, None)
        yield from self._lose_all_in_transaction()
        self._check_alive()
        coordinator = self.consumer.coordinator
        if coordinator is None:
            return
        owned = self.consumer.assignment()
        if owned and not self._revoking:  # unsubscribe: onLeavePrepare gives them up
            kind = (events_consumer.CONSUMER_REVOKED
                    if coordinator.generation >= 0 and coordinator.state == STABLE
                    else events_consumer.CONSUMER_LOST)
            yield from self.consumer.give_up(owned, kind, coordinator.generation)
            self._check_alive()
        # inside a rebalance callback the partitions are given up as lost at the next poll's
        # join preparation, as the generation is reset here
        coordinator.leave_group("the consumer unsubscribed from all topics")
        coordinator.request_rejoin("task migrated: the transaction was aborted")

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
            self._check_alive()
        producer.flushing = False

    # -- state: restore, changelogs, checkpoints, standbys ------------------------------------

    def _logged_stores(self, task_id: TaskId) -> list[str]:
        """The logged stores of ``task_id``'s sub-topology, sorted."""
        topology = self.streams.topology
        names = {s for n in self.metadata.subtopologies[task_id.subtopology]
                 for s in topology.nodes[n].stores}
        return sorted(n for n in names if n in topology.store_builders
                      and topology.store_builders[n].logging_enabled)

    def _build_stores(self, task_id: TaskId) -> dict[str, StateStore]:
        """The task's stores: persistent ones in its state directory, the others in memory."""
        streams = self.streams
        topology = streams.topology
        directory = streams.state_directory.rocksdb_dir(task_id)
        names = sorted({s for n in self.metadata.subtopologies[task_id.subtopology]
                        for s in topology.nodes[n].stores if s in topology.store_builders})
        return {name: topology.store_builders[name].build(
            directory, streams.config["default.dsl.store"]) for name in names}

    def _changelog_tp(self, task_id: TaskId, store: str) -> TopicPartition:
        return TopicPartition(changelog_topic(self.streams.application_id, store),
                              task_id.partition)

    def _register_restore(self, task_id: TaskId, stores: dict[str, StateStore],
                          held: dict[TopicPartition, int] | None, active: bool) -> None:
        """Register every logged store with the reader: from what the stores hold (``held``,
        a standby's positions) or the checkpoint (persistent stores), else from the start."""
        path = self.streams.state_directory.checkpoint_path(task_id)
        checkpoint = read_checkpoint(path)
        if self.eos:  # read once, then gone until a clean close, a standby's handed-over too
            path.unlink(missing_ok=True)
        for name in self._logged_stores(task_id):
            tp = self._changelog_tp(task_id, name)
            if held is not None:
                offset = held.get(tp)
            else:
                offset = checkpoint.get(tp) if stores[name].persistent else None
            if offset == OFFSET_UNKNOWN:
                offset = None
            if self.eos and offset is None and held is None and stores[name].persistent \
                    and stores[name].all():  # type: ignore[attr-defined]
                # data but no checkpoint: it may hold uncommitted writes (TaskCorrupted)
                self.kernel.trace.emit(events.STREAMS_TASK, self.kernel.now_ms, self.name,
                                       str(task_id), f"corrupted: {name} wiped")
                stores[name].wipe()
            self.reader.register(task_id, stores[name], tp, offset, active)

    def _restored(self, task_id: TaskId) -> None:
        """Every changelog of the task is restored: log its stores' changes from now on."""
        active = self.tasks.get(task_id)
        if active is None or not active.restoring:
            return
        active.restoring = False
        topics = {name: self._changelog_tp(task_id, name).topic
                  for name in self._logged_stores(task_id)}
        for (t, _), changelog in self.reader.changelogs.items():
            if t == task_id and changelog.position > 0:
                active.changelog_offsets[changelog.tp] = changelog.position - 1
        active.checkpointed = self._checkpoint_offsets(  # the delta counts from here
            task_id, active.task.stores, active.changelog_offsets)
        def send(topic: str, partition: int, key: Any, value: Any, timestamp: int) -> int:
            return self._send_changelog(topic, partition, key, value, timestamp, active)

        changelogs = TaskChangelogs(task_id.partition, topics, send,
                                    lambda: active.task.record_timestamp, self.cache.enabled)
        changelogs.attach(active.task.stores)
        active.changelogs = changelogs
        active.task.on_cache_flush = changelogs.flush
        self.kernel.trace.emit(events.STREAMS_TASK, self.kernel.now_ms, self.name, str(task_id),
                               "restored")
        self.consumer.notify()

    def _send_changelog(self, topic: str, partition: int, key: Any, value: Any,
                        timestamp: int, active: ActiveTask) -> int:
        if self._send(active, topic, key, value, timestamp, partition):
            self._trace_send(str(active.task_id), "changelog", topic, key, value,
                             flushed=self.cache.enabled)
        return self.producer.buffer.n - 1

    def _trace_send(self, task_id: str, detail: str, topic: str, key: Any, value: Any,
                    flushed: bool) -> None:
        """A ``streams.send`` event for the record the producer just took."""
        index = self.producer.buffer.n - 1
        record_id = int(self.producer.record_ids(np.array([index]))[0])
        self.kernel.trace.emit(events.STREAMS_SEND, self.kernel.now_ms, self.name, task_id,
                               detail, topic, key, value, record_id, flushed)

    def _send(self, active: ActiveTask, topic: str, key: Any, value: Any, timestamp: int,
              partition: int | None = None) -> bool:
        """Send through the thread's producer for ``active``, inside the open transaction under
        EOS; a transaction that already failed takes no more records (it will be aborted)."""
        txn = self.producer.txn
        if txn is not None:
            if txn.in_error or txn.state not in ("READY", "IN_TRANSACTION"):
                return False
            self._maybe_begin()
        self.producer.send(topic, key, value, partition=partition, timestamp=timestamp)
        if txn is not None:
            self._in_transaction.append((len(self.producers) - 1, self.producer.buffer.n - 1))
        else:
            active.sent.append(self.producer.buffer.n - 1)
        return True

    def _acked_changelog_offsets(self, active: ActiveTask) -> None:
        """Move the task's changelog offsets to the last acknowledged write of each partition."""
        if active.changelogs is None:
            return
        buffer = self.producer.buffer
        for tp, index in active.changelogs.last_sent.items():
            if not math.isnan(buffer.ack_ms[index]) and not buffer.error[index]:
                active.changelog_offsets[tp] = int(buffer.offset[index])

    def _checkpoint_offsets(self, task_id: TaskId, stores: dict[str, StateStore],
                            held: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """What the checkpoint says: the persistent logged stores' offsets (unknown: -4)."""
        return {tp: held.get(tp, OFFSET_UNKNOWN) for name in self._logged_stores(task_id)
                if stores[name].persistent and (tp := self._changelog_tp(task_id, name))}

    def _write_checkpoint(self, task_id: TaskId, offsets: dict[TopicPartition, int],
                          previous: dict[TopicPartition, int], force: bool) -> bool:
        if not offsets:
            return False
        delta = sum(max(0, o - max(0, previous.get(tp, 0))) for tp, o in offsets.items())
        if not force and delta <= OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT:
            return False
        write_checkpoint(self.streams.state_directory.checkpoint_path(task_id), offsets)
        shown = ",".join(f"{tp}:{o}" for tp, o in sorted(offsets.items(), key=lambda i: (
            i[0].topic, i[0].partition)))
        self.kernel.trace.emit(events.STREAMS_CHECKPOINT, self.kernel.now_ms, self.name,
                               str(task_id), shown)
        return True

    def _maybe_checkpoint(self, active: ActiveTask, force: bool) -> None:
        """``AbstractTask.maybeCheckpoint``: past the threshold, or always when forced; under
        EOS only when forced (a clean close), as ``StreamTask.postCommit`` does."""
        if active.restoring or (self.eos and not force):
            return
        self._acked_changelog_offsets(active)
        offsets = self._checkpoint_offsets(active.task_id, active.task.stores,
                                           active.changelog_offsets)
        if self._write_checkpoint(active.task_id, offsets, active.checkpointed, force):
            active.checkpointed = offsets

    def _standby_held(self, task_id: TaskId) -> dict[TopicPartition, int]:
        return {c.tp: c.position - 1 for (t, _), c in self.reader.changelogs.items()
                if t == task_id and c.position > 0}

    def _checkpoint_standby(self, task_id: TaskId, force: bool) -> None:
        standby = self.standbys[task_id]
        offsets = self._checkpoint_offsets(task_id, standby.stores, self._standby_held(task_id))
        if self._write_checkpoint(task_id, offsets, standby.checkpointed, force):
            standby.checkpointed = offsets

    def _update_standbys(self) -> None:
        """Create and close standby tasks as the last assignment says."""
        info = assignment_info(self.kernel, self.streams.application_id).get(
            self.consumer.member_id or "")
        running = {t for thread in self.streams.threads for t in thread.tasks}
        wanted = sorted(t for t in (info.standby if info is not None else [])
                        if self._logged_stores(t) and t not in running)  # until it is closed
        for task_id in sorted(set(self.standbys) - set(wanted)):
            self._close_standby(task_id)
        for task_id in wanted:
            if task_id not in self.standbys:
                taken = self._take_standby(task_id)  # from another thread of this instance
                stores, held = taken if taken is not None else (self._build_stores(task_id),
                                                                None)
                self.standbys[task_id] = StandbyTask(task_id, stores)
                self._register_restore(task_id, stores, held, active=False)
                self.standbys[task_id].checkpointed = self._checkpoint_offsets(
                    task_id, stores, self._standby_held(task_id))
                self.kernel.trace.emit(events.STREAMS_TASK, self.kernel.now_ms, self.name,
                                       str(task_id), "standby created")

    def _take_standby(self, task_id: TaskId
                      ) -> tuple[dict[str, StateStore], dict[TopicPartition, int]] | None:
        """Take over the standby of ``task_id`` held by any thread of this instance: its open
        stores and the changelog offsets they hold (a task's directory has one owner)."""
        holder = next((t for t in self.streams.threads if task_id in t.standbys), None)
        if holder is None:
            return None
        held = holder._standby_held(task_id)
        holder.reader.unregister(task_id)
        return holder.standbys.pop(task_id).stores, held

    def _close_standby(self, task_id: TaskId) -> None:
        self._checkpoint_standby(task_id, force=True)
        standby = self.standbys.pop(task_id)
        self.reader.unregister(task_id)
        for store in standby.stores.values():
            store.close()
        self.kernel.trace.emit(events.STREAMS_TASK, self.kernel.now_ms, self.name, str(task_id),
                               "standby closed")

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
        if self._revoking:  # StreamsRebalanceListener.onPartitionsRevoked, during its commit
            return "PARTITIONS_REVOKED"
        coordinator = self.consumer.coordinator
        settled = (coordinator is not None and coordinator.state == "STABLE"
                   and not coordinator.rejoin_needed and coordinator.sync_result is None)
        # RUNNING only once no active task restores (TaskManager.checkStateUpdater): a
        # thread whose tasks still restore their stores processes nothing yet
        if settled and not any(active.restoring for active in self.tasks.values()):
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
        if revoked:
            self.consumer.run_step(lambda: self._revoke(revoked))

    def _revoke(self, revoked: list[TaskId]) -> Generator[Any, Any, None]:
        """``TaskManager.handleRevocation``: commit as at a commit interval — flush the caches
        and the producer, then commit every task that moved — before the revoked tasks close.

        Under at_least_once the producer's flush comes first (``RecordCollectorImpl.flush``
        throws the send error a task kept): committing a revoked task's input offsets while
        its outputs are still unacknowledged, or failed, would let the next owner resume past
        records whose results were lost. Under exactly_once_v2 a plain offset commit would
        leave the revoked task's writes in a transaction that commits later without its
        offsets: the next owner would count those records again."""
        self._revoking = True
        self.streams.update_state()  # a thread in PARTITIONS_REVOKED: the instance REBALANCING
        try:
            yield from self.commit(revoking=revoked)
        finally:
            self._revoking = False
        for task_id in revoked:
            if task_id in self.tasks:
                self._close_task(task_id)

    def on_partitions_lost(self, partitions: list[TopicPartition]) -> None:
        """``StreamsRebalanceListener.onPartitionsLost`` → ``TaskManager.handleLostAll``: every
        active task closes dirty; under exactly_once_v2 the open transaction is aborted and the
        producer replaced (``_lose_all_in_transaction``)."""
        if self.eos:
            self.consumer.run_step(self._lose_all_in_transaction)
            return
        for task_id in sorted({self.metadata.task_for(tp) for tp in partitions} & set(self.tasks)):
            self._close_task(task_id, clean=False)

    def _lose_all_in_transaction(self) -> Generator[Any, Any, None]:
        """``TaskManager.handleLostAll`` under exactly_once_v2: close every active task dirty
        — its ``RecordCollectorImpl.closeDirty`` aborts the thread's open transaction
        (``StreamsProducer.abortTransaction``, a fenced producer's error swallowed) — then
        ``ActiveTaskCreator.reInitializeProducer``: a new producer, whose
        ``initTransactions`` (when a task next initializes) bumps the epoch.

        The tasks' writes since the last commit belong to another member now: committing them
        later, without their input offsets (the thread's next commit would), makes the next
        owner, which resumes from the committed offsets, count those records again."""
        for task_id in sorted(self.tasks):
            self._close_task(task_id, clean=False)
        yield from self._abort_transaction()
        self._reset_producer()

    def _abort_transaction(self) -> Generator[Any, Any, None]:
        """``StreamsProducer.abortTransaction``: abort the transaction in flight, if any; a
        fenced producer's error is swallowed (the coordinator aborted it already)."""
        self._in_transaction = []
        txn = self.producer.txn
        if txn is None or txn.state not in (IN_TRANSACTION, ABORTABLE_ERROR):
            return
        with contextlib.suppress(TransactionError):
            yield from txn.abort_gen()
        self._check_alive()

    def _reset_producer(self) -> None:
        """``StreamsProducer.resetProducer``: the thread's next records go through a new
        producer with the same ``transactional.id``; it is initialized before the thread
        processes again (``_maybe_init_transactions``). A producer never initialized is left
        as it is (closing it and making another would change nothing)."""
        if self.producer.txn is None or self.producer.txn.state == UNINITIALIZED:
            return
        self.producer = self._new_producer(dict(self.producer.config))
        self.producers.append(self.producer)

    def _new_producer(self, config: dict[str, Any]) -> Producer:
        """The thread's producer, ``client.id`` ``<client.id>-StreamThread-<n>-producer``
        (``ClientUtils.producerClientId``). A restarted instance's thread and a producer
        replaced after fencing get the same ``client.id``; the lab numbers the repeats apart,
        and network faults that name the ``client.id`` reach every one
        (``Network.name_client``)."""
        producer = Producer(self.kernel, config)
        self.kernel.cluster.network.name_client(producer.client_id, config["client.id"])
        return producer

    def _maybe_init_transactions(self) -> Generator[Any, Any, None]:
        """``StreamsProducer.initTransaction`` when a task initializes
        (``RecordCollectorImpl.initialize``): a reset producer gets its producer id and a new
        epoch before it sends anything, fencing the producer it replaced."""
        txn = self.producer.txn
        if txn is not None and txn.state == UNINITIALIZED and self.tasks:
            yield from txn.init_gen()
            self._check_alive()

    def _create_task(self, task_id: TaskId) -> ActiveTask:
        streams = self.streams
        nodes = self.metadata.subtopologies[task_id.subtopology]
        taken = self._take_standby(task_id)
        held = None
        if taken is not None:  # promote the warm copy: only the tail is left to restore
            stores, held = taken
        else:
            stores = self._build_stores(task_id)
        task = StreamTask(streams.topology, streams.application_id,  # active: made below
                          lambda topic, record: self._collect(topic, record, active),
                          str(task_id), nodes, int(self.kernel.now_ms), streams.global_stores(),
                          stores)
        task.listener = lambda kind, node, detail, record, t=str(task_id): self._task_event(
            t, kind, node, detail, record)
        task.enable_caching(self.cache)
        self.kernel.trace.emit(events.STREAMS_TASK, self.kernel.now_ms, self.name, str(task_id),
                               "created")
        active = ActiveTask(task_id, task, restoring=bool(self._logged_stores(task_id)))
        self.tasks[task_id] = active
        if active.restoring:
            self._register_restore(task_id, task.stores, held, active=True)
        return active

    def _close_task(self, task_id: TaskId, clean: bool = True) -> None:
        """Close a task; a clean close flushes and writes the checkpoint (``closeClean``)."""
        active = self.tasks[task_id]
        if clean:
            active.task.flush_cache()
            if active.changelogs is not None:
                active.changelogs.flush()
            self._maybe_checkpoint(active, force=True)
        self.tasks.pop(task_id)
        self.reader.unregister(task_id)
        TaskChangelogs.detach(active.task.stores)
        if not clean and self.eos:  # its stores may hold uncommitted writes: wipe them
            for store in active.task.stores.values():
                store.wipe()
        active.task.on_cache_flush = None
        active.task.close()
        self.closed_tasks.append(active)
        self.kernel.trace.emit(events.STREAMS_TASK, self.kernel.now_ms, self.name, str(task_id),
                               "closed")

    def _task_event(self, task_id: str, kind: str, node: str, detail: str,
                    record: Record | None) -> None:
        trace, now = self.kernel.trace, self.kernel.now_ms
        if kind == "punctuate" or record is None:
            trace.emit(events.STREAMS_PUNCTUATE, now, self.name, task_id, node, detail)
            return
        trace.emit(events.STREAMS_FORWARD, now, self.name, task_id, node, detail, record.key,
                   record.value, kind == "flush")

    def _collect(self, topic: str, record: Record, active: ActiveTask) -> None:
        """A sink's record goes to the producer (``RecordCollector``): keyed records to
        murmur2(key) % partitions, with the record's timestamp."""
        name = self.metadata.broker_topic(topic)
        task = active.task
        if self._send(active, name, record.key, record.value, record.timestamp):
            self.outputs.append((len(self.producers) - 1, self.producer.buffer.n - 1,
                                 record.timestamp))
            self._trace_send(task.task_id, task.current_node or "", name, record.key,
                             record.value, task.flushing)

    # -- what a notebook looks at -----------------------------------------------------------

    def task_lag(self, active: ActiveTask) -> int:
        """Records in the task's partitions not yet processed (log end minus position)."""
        lag = 0
        for tp in active.partitions:
            end = self.kernel.cluster.partition(tp.topic, tp.partition).log.high_watermark
            lag += max(0, end - active.consumed.get(tp, active.committed.get(tp, 0)))
        return lag
