"""``KafkaStreams``: a Streams application instance running on the simulated cluster.

Mirrors ``org.apache.kafka.streams.KafkaStreams``. An instance is a library inside your
application, not a job on a scheduler: start several instances with the same ``application.id``
and they form one consumer group; the Streams assignor spreads the tasks (sub-topology ×
partition, ``0_3``) over their stream threads. Start another instance and tasks move to it;
close one and its tasks move back::

    kernel = Kernel(seed=1)
    kernel.cluster.create_topic("payment", partitions=6)
    kernel.cluster.create_topic("unknown-payment", partitions=6)
    builder = StreamsBuilder()
    builder.stream("payment").filter(lambda key, value: key == "unknown").to("unknown-payment")
    streams = KafkaStreams(kernel, builder.build(), {"application.id": "payments"})
    streams.start()
    kernel.run(until_ms=10_000)
    streams.state              # State.RUNNING
    streams.tasks_frame()      # which thread runs which task, stream time, lag, …
    streams.close()

States follow ``KafkaStreams.State``: ``CREATED`` → (``start()``) ``REBALANCING`` ⇄ ``RUNNING``
→ (``close()``) ``PENDING_SHUTDOWN`` → ``NOT_RUNNING``; a failed start is ``ERROR``. ``start()``
checks the topology against the cluster first (missing source topics, co-partitioning) and
creates the repartition topics ``<application.id>-<name>-repartition`` and the changelog topics
``<application.id>-<store>-changelog`` (``sim.streams.changelog``). ``close()`` asks the
threads to commit, close their tasks and leave the group; they do so as the kernel runs on.

State lives in the instance's state directory (``state_dir``, see ``state_directory``), which the
instance locks from construction until it stops. ``crash(lose_state=...)`` kills the process
(its state directory kept or lost); ``restart()`` starts a new process on the same machine, which
finds the directory (and the process id kept in it) again. ``restore_frame()`` shows what the
threads restored from changelogs.
"""

from __future__ import annotations

import enum
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.consumer import Consumer
from sim.consumer.client import Stopped
from sim.consumer.events import format_partitions
from sim.errors import InvalidStateStoreError, KafkaLabError, StreamsError, TopologyError
from sim.murmur2 import partition_for_key
from sim.payloads import payload
from sim.records import TopicPartition, serialize
from sim.streams import events
from sim.streams.assignor import (
    AssignmentConfigs,
    StreamsPartitionAssignor,
    ThreadInfo,
    assignment_info,
)
from sim.streams.changelog import changelog_topic, changelog_topic_config
from sim.streams.config import StreamsConfig, global_consumer_client_id
from sim.streams.internal_topics import TaskId, TopologyMetadata, prepare
from sim.streams.processor import Record
from sim.streams.state_directory import (
    OFFSET_UNKNOWN,
    StateDirectory,
    default_state_dir,
    kernel_state,
    read_checkpoint,
)
from sim.streams.stores import StateStore, ValueAndTimestamp
from sim.streams.stream_thread import StreamsConsumer, StreamThread
from sim.streams.task import StreamTask
from sim.streams.topology import Topology


def instances(kernel: Any) -> list[KafkaStreams]:
    """Every ``KafkaStreams`` made on ``kernel``, in order of creation."""
    return kernel_state(getattr(kernel, "kernel", kernel), "instances", list)


class State(enum.Enum):
    """The states of an instance (``KafkaStreams.State``)."""

    CREATED = "CREATED"
    REBALANCING = "REBALANCING"
    RUNNING = "RUNNING"
    PENDING_SHUTDOWN = "PENDING_SHUTDOWN"
    NOT_RUNNING = "NOT_RUNNING"
    ERROR = "ERROR"


@dataclass(frozen=True)
class TaskMetadata:
    """One active task of a thread (``TaskMetadata``)."""

    task_id: str
    topic_partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True)
class ThreadMetadata:
    """One stream thread and its tasks (``ThreadMetadata``); the client ids are Kafka's
    (``ClientUtils``), the same in every incarnation of the instance."""

    thread_name: str
    thread_state: str
    active_tasks: tuple[TaskMetadata, ...]
    standby_tasks: tuple[TaskMetadata, ...]
    consumer_client_id: str
    restore_consumer_client_id: str
    producer_client_ids: tuple[str, ...]


@dataclass(frozen=True)
class KeyQueryMetadata:
    """Where a key lives (``KeyQueryMetadata``): the stream thread (``<client id>-StreamThread-
    <n>``) of the active task and of its standbys; ``active`` is None while no live instance
    runs it (Kafka's ``NOT_AVAILABLE``)."""

    active: str | None
    standbys: tuple[str, ...]
    partition: int
    task: str


class KafkaStreams:
    """A Streams instance (``KafkaStreams``): ``start()``, ``close()``, ``state``.

    Args:
        kernel: the ``Kernel`` whose cluster the application reads and writes.
        topology: the :class:`Topology` to run (``builder.build()``).
        config: Streams configs (a dict or a :class:`StreamsConfig`); ``application.id`` is
            required.

    Raises:
        ConfigError: an unknown config name, a bad value or a missing ``application.id``.
    """

    State = State

    def __init__(self, kernel: Any, topology: Topology,
                 config: Mapping[str, Any] | StreamsConfig) -> None:
        if not isinstance(topology, Topology):
            raise StreamsError(f"KafkaStreams needs a Topology (builder.build()), got "
                               f"{topology!r}.")
        self.kernel = getattr(kernel, "kernel", kernel)
        self.config = config if isinstance(config, StreamsConfig) else StreamsConfig(config)
        self.topology = topology
        self.application_id: str = self.config["application.id"]
        rng = self.kernel.spawn_rng()
        new_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        configured = self.config["state.dir"]
        self.state_dir = Path(configured) if configured else default_state_dir(self.kernel)
        self.state_directory = StateDirectory(self.kernel, self.state_dir, self.application_id)
        persistent = any(b.is_persistent(self.config["default.dsl.store"])
                         for b in topology.store_builders.values())
        self.process_id = self.state_directory.process_id(new_id) if persistent else new_id
        self.client_id = self.config["client.id"] or f"{self.application_id}-{self.process_id}"
        self.crashed = False
        self._probe_at = -math.inf
        instances(self.kernel).append(self)
        self.state = State.CREATED
        self.threads: list[StreamThread] = []
        self.metadata: TopologyMetadata | None = None
        self._global_task: StreamTask | None = None
        self._global_consumer: Consumer | None = None

    def __repr__(self) -> str:
        return (f"KafkaStreams({self.application_id!r}, {self.client_id!r}, "
                f"state={self.state.value}, threads={len(self.threads)})")

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Check the topology against the cluster, create internal topics, start the threads.

        Raises:
            StreamsError: the instance was already started.
            MissingSourceTopicError: a source topic does not exist.
            TopologyError: topics that must be co-partitioned are not.
        """
        if self.state is not State.CREATED:
            raise StreamsError(f"The client is either already started or already stopped, "
                               f"cannot re-start (state {self.state.value}); create a new "
                               "KafkaStreams instead.")
        try:
            cluster = self.kernel.cluster
            counts = {name: len(topic.partitions) for name, topic in cluster.topics.items()}
            self.metadata = prepare(self.topology, self.application_id, counts)
            self._create_internal_topics(self.metadata)
        except KafkaLabError:
            self._set_state(State.ERROR)
            raise
        assignor_metadata = self.metadata
        config = self.config
        configs = AssignmentConfigs(config["num.standby.replicas"],
                                    config["acceptable.recovery.lag"],
                                    config["max.warmup.replicas"],
                                    config["probing.rebalance.interval.ms"])
        stateful = set(self._stateful_tasks())
        self.threads = [
            StreamThread(self, i, assignor_metadata,
                         StreamsPartitionAssignor(
                             assignor_metadata, self._thread_info, stateful, self._lags_of,
                             configs, assignment_info(self.kernel, self.application_id),
                             self._schedule_probing))
            for i in range(1, self.config["num.stream.threads"] + 1)]
        self._set_state(State.REBALANCING)
        if self._start_global():
            return  # the stream threads start once the global stores are loaded
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        """Ask every thread to commit, close its tasks and leave the group (``close()``).

        The threads finish as the kernel runs on; ``state`` is ``NOT_RUNNING`` once they have.
        """
        if self.state in (State.NOT_RUNNING, State.PENDING_SHUTDOWN):
            return
        if self.state in (State.CREATED, State.ERROR):
            self._set_state(State.NOT_RUNNING)
            self.state_directory.unlock()
            return
        self._set_state(State.PENDING_SHUTDOWN)
        self._stop_threads()
        self.update_state()

    def fail(self) -> None:
        """A thread died of an exception: stop the others, the instance is in ERROR (the
        default uncaught-exception handler, ``SHUTDOWN_CLIENT``)."""
        self._set_state(State.ERROR)
        self._stop_threads()

    def _stop_threads(self) -> None:
        for thread in self.threads:
            thread.closing = True
            thread.consumer.notify()
        if self._global_consumer is not None:
            self._global_consumer.closing = True
            self._global_consumer.notify()

    def _set_state(self, new: State) -> None:
        old, self.state = self.state, new
        if old is not new:
            self.kernel.trace.emit(events.STREAMS_STATE, self.kernel.now_ms, self.client_id,
                                   old.value, new.value)
        if new is State.NOT_RUNNING:
            self.state_directory.unlock()

    # -- crash and restart --------------------------------------------------------------------

    def crash(self, lose_state: bool = False) -> None:
        """The instance's process dies: no commit, no checkpoint, no LeaveGroup (the group
        notices at ``session.timeout.ms``). With ``lose_state`` its disk is gone too: the state
        directory is deleted.

        Raises:
            StreamsError: the instance is not running.
        """
        if self.state not in (State.RUNNING, State.REBALANCING) or self.crashed:
            raise StreamsError(f"Only a running instance can crash; {self.client_id} is "
                               f"{self.state.value}.")
        self.kernel.trace.emit(events.STREAMS_CRASH, self.kernel.now_ms, self.client_id,
                               "state directory lost" if lose_state else "state directory kept")
        self.crashed = True
        for thread in self.threads:
            thread.crash()
        if self._global_consumer is not None and self._global_consumer.lifecycle == "running":
            self._global_consumer.crash()
        self._set_state(State.NOT_RUNNING)
        if lose_state:
            self.state_directory.wipe()

    def restart(self) -> KafkaStreams:
        """A new process on the same machine: a started ``KafkaStreams`` with the same topology
        and configs and the same state directory (so the same process id, if it was kept)."""
        if self.state is not State.NOT_RUNNING:
            raise StreamsError(f"Instance {self.client_id} is {self.state.value}; crash() or "
                               "close() it before restarting it.")
        values = self.config.originals()  # client configs too, not just the Streams ones
        values["state.dir"] = str(self.state_dir)
        restarted = KafkaStreams(self.kernel, self.topology, values)
        restarted.start()
        return restarted

    # -- KIP-441 inputs -----------------------------------------------------------------------

    def _logged_stores_of(self, subtopology: int) -> list[str]:
        assert self.metadata is not None
        names = {s for n in self.metadata.subtopologies[subtopology]
                 for s in self.topology.nodes[n].stores}
        return sorted(n for n in names if n in self.topology.store_builders
                      and self.topology.store_builders[n].logging_enabled)

    def _stateful_tasks(self) -> list[TaskId]:
        assert self.metadata is not None
        return [t for t in self.metadata.tasks if self._logged_stores_of(t.subtopology)]

    def _lags_of(self, process_id: str) -> dict[TaskId, int]:
        """Each stateful task's changelog lag on the live instance ``process_id`` (Kafka's
        subscription carries the task offset sums; the leader compares them to the ends)."""
        for instance in reversed(instances(self.kernel)):
            if instance.process_id == process_id and not instance.crashed \
                    and instance.application_id == self.application_id:
                return instance.task_lags()
        return {}

    def task_lags(self) -> dict[TaskId, int]:
        """Each stateful task's lag on this instance as Kafka's ``ClientState.computeTaskLags``
        works it out: the sum over the task's changelogs of end offset minus the offset the
        local copy holds (a standby's, a restoring task's, or a checkpoint's on disk), the end
        offset sum when the instance has nothing, and 0 for a running active task."""
        cluster = self.kernel.cluster
        held_by_task: dict[TaskId, dict[TopicPartition, int] | None] = {}
        for thread in self.threads:
            for task_id, active in thread.tasks.items():
                held_by_task[task_id] = None if not active.restoring else {}
            for (task_id, _), changelog in thread.reader.changelogs.items():
                held = held_by_task.setdefault(task_id, {})
                if held is not None:
                    held[changelog.tp] = changelog.position - 1
        lags = {}
        for task_id in self._stateful_tasks():
            if task_id in held_by_task and held_by_task[task_id] is None:
                lags[task_id] = 0
                continue
            held = held_by_task.get(task_id) or read_checkpoint(
                self.state_directory.checkpoint_path(task_id))
            lag = 0
            for store in self._logged_stores_of(task_id.subtopology):
                topic = changelog_topic(self.application_id, store)
                log = cluster.partition(topic, task_id.partition).log
                offset = held.get(TopicPartition(topic, task_id.partition), OFFSET_UNKNOWN)
                lag += max(0, log.high_watermark - max(offset, 0))
            lags[task_id] = lag
        return lags

    def _schedule_probing(self, delay_ms: int) -> None:
        """A probing rebalance ``delay_ms`` from now (``nextScheduledRebalanceMs``)."""
        at = self.kernel.now_ms + delay_ms
        if self._probe_at >= self.kernel.now_ms:
            return
        self._probe_at = at

        def probe(_event: Any) -> None:
            self._probe_at = -math.inf
            if self.state in (State.RUNNING, State.REBALANCING) and self.threads:
                coordinator = self.threads[0].consumer.coordinator
                if coordinator is not None:
                    coordinator.request_rejoin("probing rebalance (KIP-441)")

        self.kernel.env.timeout(delay_ms).callbacks.append(probe)

    def update_state(self) -> None:
        """REBALANCING while a thread's group membership is settling, RUNNING once all have
        their assignment; NOT_RUNNING once every thread has stopped after close()."""
        if self.state is State.PENDING_SHUTDOWN:
            if not any(t.alive for t in self.threads):
                self._set_state(State.NOT_RUNNING)
            return
        if self.state not in (State.REBALANCING, State.RUNNING) or not self.threads:
            return
        settled = all(t.state == "RUNNING" for t in self.threads)
        self._set_state(State.RUNNING if settled else State.REBALANCING)

    # -- internal topics and global stores --------------------------------------------------

    def _create_internal_topics(self, metadata: TopologyMetadata) -> None:
        """Create the repartition topics (``InternalTopicManager.makeReady``)."""
        cluster = self.kernel.cluster
        replication = self.config["replication.factor"]
        if replication == -1:
            replication = min(3, len(cluster.brokers))
        topics: list[tuple[str, int, dict[str, Any]]] = [
            (metadata.broker_topic(t), metadata.partitions[t],
             {"cleanup.policy": "delete", "retention.ms": -1})
            for t in metadata.repartition_topics]
        extra_ms = self.config["windowstore.changelog.additional.retention.ms"]
        for subtopology in sorted(metadata.subtopologies):
            count = sum(1 for t in metadata.tasks if t.subtopology == subtopology)
            topics += [(changelog_topic(self.application_id, store), count,
                        changelog_topic_config(self.topology.store_builders[store], extra_ms))
                       for store in self._logged_stores_of(subtopology)]
        for name, wanted, topic_config in topics:
            existing = cluster.topics.get(name)
            if existing is None:
                cluster.create_topic(name, wanted, replication, topic_config)
            elif len(existing.partitions) != wanted:
                raise TopologyError(
                    f"Invalid topology: Existing internal topic {name} has invalid partitions: "
                    f"expected: {wanted}; actual: {len(existing.partitions)}. Use 'kafka.tools."
                    "StreamsResetter' tool to clean up invalid topics before processing.")

    def _thread_info(self, member_id: str) -> ThreadInfo | None:
        """Which instance and thread a group member is (Kafka's ``SubscriptionInfo``)."""
        for client in self.kernel.clients:
            if (isinstance(client, StreamsConsumer) and client.group_id == self.application_id
                    and client.member_id == member_id):
                return client.thread_info
        return None

    def _global_nodes(self) -> list[str]:
        nodes = self.topology.nodes
        return [n for n, f in nodes.items()
                if f.is_global or any(nodes[p].is_global for p in f.predecessors)]

    def global_stores(self) -> dict[str, StateStore]:
        """The instance's global stores (GlobalKTables), shared by all its tasks."""
        return self._global_task.stores if self._global_task is not None else {}

    def _start_global(self) -> bool:
        """Start the global thread if the topology has global stores (``GlobalStreamThread``):
        it reads every partition of the global topics, without a group, and starts the stream
        threads once it has caught up with the end of the logs."""
        nodes = self._global_nodes()
        if not nodes:
            return False
        topics = sorted(t for n in nodes for t in self.topology.nodes[n].topics
                        if self.topology.nodes[n].kind == "source")
        cluster = self.kernel.cluster
        self._global_task = StreamTask(self.topology, self.application_id, lambda *_: None,
                                       "global", nodes, int(self.kernel.now_ms))
        config = self.config.global_consumer_configs(global_consumer_client_id(self.client_id))
        consumer = Consumer(self.kernel, config)
        # a restarted instance's global consumer: another lab id, the same client.id
        cluster.network.name_client(consumer.client_id, config["client.id"])
        partitions = [TopicPartition(t, p) for t in topics
                      for p in range(len(cluster.topics[t].partitions))]
        consumer.assign(partitions)
        self._global_consumer = consumer
        self.kernel.env.process(self._run_global(consumer, partitions))
        return True

    def _run_global(self, consumer: Consumer, partitions: list[TopicPartition]) -> Any:
        cluster = self.kernel.cluster
        ends = {tp: cluster.partition(tp.topic, tp.partition).log.high_watermark
                for tp in partitions}
        started = False
        try:
            while not consumer.closing:
                records = yield from consumer.poll_gen(self.config["poll.ms"])
                for record in records:
                    key, value = payload(self.kernel, record.record_id)
                    assert self._global_task is not None
                    self._global_task.process(record.topic, Record(key, value,
                                                                   record.timestamp_ms))
                if not started and all(consumer.subscriptions.positions.get(tp, 0) >= end
                                       for tp, end in ends.items()):
                    started = True
                    for thread in self.threads:
                        thread.start()
            yield from consumer.close_gen()
        except Stopped:
            pass

    # -- what a notebook looks at -----------------------------------------------------------

    def store(self, name: str) -> ReadOnlyStore:
        """The store ``name`` over this instance's active tasks, read-only, values without
        timestamps (interactive queries, ``KafkaStreams.store``): ``get(key)``, ``all()``.

        Raises:
            StreamsError: the instance is not running, or the topology has no such store.
        """
        if self.state not in (State.RUNNING, State.REBALANCING):
            raise StreamsError(f"KafkaStreams is not running. State is {self.state.value}.")
        if name not in self.topology.store_builders:
            raise StreamsError(f"Cannot get state store {name} because no such store is "
                               "registered in the topology.")
        for thread in self.threads:
            restoring = [str(t) for t in sorted(thread.tasks) if thread.tasks[t].restoring
                         and name in thread.tasks[t].task.stores]
            if restoring:  # StreamThreadStateStoreProvider: only a RUNNING thread's stores
                raise InvalidStateStoreError(
                    f"Cannot get state store {name} because the stream thread is "
                    f"PARTITIONS_ASSIGNED, not RUNNING (task {', '.join(restoring)} is "
                    "restoring); try again once the restore has completed.")
        stores = [thread.tasks[t].task.stores[name] for thread in self.threads
                  for t in sorted(thread.tasks) if name in thread.tasks[t].task.stores]
        return ReadOnlyStore(name, stores + [s for n, s in self.global_stores().items()
                                             if n == name])

    def query_metadata_for_key(self, store: str, key: Any) -> KeyQueryMetadata:
        """Which instance and thread of the application hold ``key`` of ``store`` as the active
        task, and which hold standbys (``KafkaStreams.queryMetadataForKey``): the key's partition
        is the producer's, ``toPositive(murmur2(key)) % partitions`` of the store's input.

        Raises:
            StreamsError: the instance is not running, or the topology has no such store.
        """
        if self.state not in (State.RUNNING, State.REBALANCING) or self.metadata is None:
            raise StreamsError(f"KafkaStreams is not running. State is {self.state.value}.")
        metadata = self.metadata
        subtopology = next((s for s, nodes in sorted(metadata.subtopologies.items())
                            if any(store in self.topology.nodes[n].stores for n in nodes)), None)
        if subtopology is None:
            raise StreamsError(f"Cannot get metadata for state store {store} because no such "
                               "store is registered in the topology.")
        counts = [metadata.partitions[t] for t in metadata.source_topics[subtopology]]
        partition = partition_for_key(serialize(key), max(counts))
        task = TaskId(subtopology, partition)
        active, standbys = None, []
        for instance in instances(self.kernel):
            if instance.application_id != self.application_id or instance.crashed \
                    or instance.state not in (State.RUNNING, State.REBALANCING):
                continue
            for thread in instance.threads:
                if task in thread.tasks:
                    active = thread.name
                if task in thread.standbys:
                    standbys.append(thread.name)
        return KeyQueryMetadata(active, tuple(standbys), partition, str(task))

    def metadata_for_local_threads(self) -> list[ThreadMetadata]:
        """Each thread of this instance with its active tasks (``metadataForLocalThreads``)."""
        result = []
        for thread in self.threads:
            tasks = tuple(TaskMetadata(str(t), tuple(thread.tasks[t].partitions))
                          for t in sorted(thread.tasks))
            standbys = tuple(TaskMetadata(str(t), tuple(self.metadata.partitions_of(t)))
                             for t in sorted(thread.standbys) if self.metadata is not None)
            result.append(ThreadMetadata(thread.name, thread.state, tasks, standbys,
                                         thread.consumer.config["client.id"],
                                         thread.reader.client_id,
                                         (thread.producer.config["client.id"],)))
        return result

    def restore_frame(self) -> pd.DataFrame:
        """One row per changelog partition the threads restored or follow: task, store,
        partition, active or standby, start / end offset, records restored and remaining, state
        (REGISTERED, RESTORING, COMPLETED) and when it started and ended."""
        rows = [{"instance": self.client_id, **row} for thread in self.threads
                for row in thread.reader.progress()]
        columns = ["instance", "thread", "task", "store", "topic", "partition", "kind", "state",
                   "start_offset", "end_offset", "restored", "remaining", "start_ms", "end_ms"]
        return pd.DataFrame(rows, columns=columns)

    def follow(self, topic: str, partition: int, offset: int) -> pd.DataFrame:
        """The path of one input record through the topology: its ``streams.process`` event and
        the ``streams.forward`` / ``streams.punctuate`` events it caused at once, in order (an
        update held by the record cache reaches its children later, at the flush: forwards
        marked ``flushed`` are left out)."""
        trace = self.kernel.trace
        names = {thread.name for thread in self.threads}
        processed = trace.frame(events.STREAMS_PROCESS)
        processed = processed[processed.component.isin(names)]
        hit = processed[(processed.topic == topic) & (processed.partition == partition)
                        & (processed.offset == offset)]
        columns = ["seq", "time_ms", "component", "kind", "task", "node", "detail"]
        if hit.empty:
            return pd.DataFrame(columns=columns)
        first = hit.iloc[0]
        later = processed[(processed.component == first.component) & (processed.seq > first.seq)]
        end = later.seq.min() if not later.empty else math.inf
        parts = [pd.DataFrame([{"seq": first.seq, "time_ms": first.time_ms,
                                "component": first.component, "kind": first.kind,
                                "task": first.task, "node": "",
                                "detail": f"{topic}-{partition}@{offset}"}])]
        for kind in (events.STREAMS_FORWARD, events.STREAMS_PUNCTUATE):
            frame = trace.frame(kind)
            if "flushed" in frame:  # a cache flush forwards other records' updates
                frame = frame[~frame.flushed.astype(bool)]
            parts.append(frame[(frame.component == first.component) & (frame.seq > first.seq)
                               & (frame.seq < end)][columns])
        return pd.concat(parts, ignore_index=True).sort_values("seq").reset_index(drop=True)

    def tasks_frame(self) -> pd.DataFrame:
        """One row per active task: instance (client id), thread, partitions, stream time,
        records processed and dropped, punctuations, lag (records in its partitions not yet
        processed) and the offsets it committed last. ``pd.concat`` the frames of several
        instances to see the whole application."""
        rows = []
        for thread in self.threads:
            for task_id in sorted(thread.tasks):
                active = thread.tasks[task_id]
                metrics = active.task.metrics
                rows.append({
                    "instance": self.client_id, "thread": f"StreamThread-{thread.index}",
                    "task": str(task_id),
                    "partitions": format_partitions(active.partitions),
                    "stream_time": active.task.stream_time,
                    "processed": metrics["process-total"],
                    "dropped": metrics["dropped-records-total"],
                    "punctuations": metrics["punctuate-total"],
                    "lag": thread.task_lag(active),
                    "committed": ",".join(f"{tp}:{o}" for tp, o in sorted(
                        active.committed.items(), key=lambda i: (i[0].topic, i[0].partition))),
                })
        columns = ["instance", "thread", "task", "partitions", "stream_time", "processed",
                   "dropped", "punctuations", "lag", "committed"]
        return pd.DataFrame(rows, columns=columns)

    def latency_frame(self) -> pd.DataFrame:
        """One row per output record the threads sent to a sink topic: its timestamp (the input
        record's), when a ``read_committed`` reader can see it (``visible_ms``: its ack under
        at_least_once, the commit of its transaction under exactly_once_v2) and the end-to-end
        ``latency_ms`` between them. Records never acknowledged or never committed (lost in a
        crash, aborted) are left out. ``latency_ms.mean()`` shows what exactly-once costs."""
        rows = []
        for thread in self.threads:
            for generation, index, timestamp in thread.outputs:
                buffer = thread.producers[generation].buffer
                if thread.eos:
                    visible = thread.visible_ms.get((generation, index), math.nan)
                else:
                    visible = math.nan if buffer.error[index] else float(buffer.ack_ms[index])
                if math.isnan(visible):
                    continue
                rows.append({"instance": self.client_id,
                             "thread": f"StreamThread-{thread.index}",
                             "topic": buffer_topic(thread.producers[generation], index),
                             "timestamp": timestamp, "visible_ms": visible,
                             "latency_ms": visible - timestamp})
        return pd.DataFrame(rows, columns=["instance", "thread", "topic", "timestamp",
                                           "visible_ms", "latency_ms"])

    def processor_metrics(self) -> pd.DataFrame:
        """One row per task and node: records the node processed (``records_in``) and
        forwarded (``records_out``); tasks closed on this instance are included."""
        rows = []
        for thread in self.threads:
            tasks = [(a, "closed") for a in thread.closed_tasks] + [
                (thread.tasks[t], "active") for t in sorted(thread.tasks)]
            for active, status in tasks:
                for node, (received, sent) in active.task.node_metrics.items():
                    rows.append({"instance": self.client_id,
                                 "thread": f"StreamThread-{thread.index}",
                                 "task": str(active.task_id), "status": status, "node": node,
                                 "records_in": received, "records_out": sent})
        return pd.DataFrame(rows, columns=["instance", "thread", "task", "status", "node",
                                           "records_in", "records_out"])



class ReadOnlyStore:
    """One store as seen across an instance's tasks (``CompositeReadOnlyKeyValueStore``):
    each key lives in the task of its partition."""

    def __init__(self, name: str, stores: list[StateStore]) -> None:
        self.name = name
        self.stores = stores

    def get(self, key: Any) -> Any:
        """The value of ``key`` (a key-value store), or None."""
        for store in self.stores:
            value = _plain(store.get(key))  # type: ignore[attr-defined]
            if value is not None:
                return value
        return None

    def all(self) -> list[tuple[Any, Any]]:
        """Every (key, value) — (Windowed key, value) for a window store — task by task."""
        return [(key, _plain(value)) for store in self.stores
                for key, value in store.all()]  # type: ignore[attr-defined]

    def approximate_num_entries(self) -> int:
        return len(self.all())

    def __repr__(self) -> str:
        return f"ReadOnlyStore({self.name!r}, tasks={len(self.stores)})"


def buffer_topic(producer: Any, index: int) -> str:
    """The topic of record ``index`` of a producer's buffer."""
    return producer.metadata(index).topic


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, ValueAndTimestamp) else value
