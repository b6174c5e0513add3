"""Restoring stores from their changelogs, and keeping standby copies warm.

Mirrors ``StoreChangelogReader`` (one per stream thread, with its **restore consumer**):

- A changelog partition is registered when a task is created: an **active** task's from the
  offset after its ``.checkpoint`` entry when the local store survived (persistent stores only;
  in-memory stores always restore from the beginning), else from the log start; it is restored up
  to the end offset listed at registration (the high watermark; listed again on the next loop
  while the partition has no leader or a new leader's high watermark is still below the start of
  its epoch, Kafka's OFFSET_NOT_AVAILABLE), then ``COMPLETED`` and the task starts processing.
  A **standby** task's changelog is never completed: it follows the log for as long as it lives.
- States ``REGISTERED`` → ``RESTORING`` → ``COMPLETED``. While an active task restores, standbys
  wait (``ACTIVE_RESTORING`` before ``STANDBY_UPDATING``).
- Every fetch reads at most ``max.poll.records`` (1000) records and takes the simulated network
  time: a round trip to the leader plus the records' bytes at the link bandwidth, so restore time
  follows the changelog's size. The restore consumer is a network node by its ``client.id``
  (``<thread>-restore-consumer``, ``ClientUtils.restoreConsumerClientId``): while a fault cuts
  it from a changelog's leader, that changelog is not read (retried every ``RETRY_MS``).
  Records the log cleaner removed are not there to read (a well-compacted changelog restores
  faster); markers and, under read_committed, aborted records are skipped.
- Each record is applied with its timestamp (``StateStore.restore_record``): a timestamped
  store gets the plain changelog value back as a ``ValueAndTimestamp`` (``RecordConverters``).
- A start offset no longer in the log (deleted by retention or compaction, or a checkpoint
  beyond the log end) is Kafka's ``OffsetOutOfRange`` → ``TaskCorruptedException``: the store is
  wiped and restored from the log start.
- A position read from records keeps the leader epoch of the last record read and is validated
  when the changelog's leader changes (KIP-320, as ``sim.consumer.subscription``): where the new
  leader says that epoch ends (OffsetsForLeaderEpoch) below the position, the records read past
  it were truncated (an unclean election, a lost disk), and the restore consumer
  (``auto.offset.reset=none``) raises ``LogTruncationException``, an ``InvalidOffsetException``:
  the store is corrupted, wiped and restored from the log start, a standby's as an active
  task's. Without that, a standby that could not fetch while the new leader's log grew past its
  position would keep the truncated records and skip the new ones below it. A position taken
  from a checkpoint or a standby's positions has no epoch and is not validated (``seek``).
- ``progress()`` is the table of every changelog partition the reader handled (start / end
  offset, restored, remaining), and each step is a ``streams.restore`` trace event.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from sim.broker import list_offsets
from sim.broker.replication import UNDEFINED, offsets_for_leader_epoch
from sim.consumer.fetcher import _visible
from sim.payloads import payload
from sim.records import TopicPartition
from sim.streams import events
from sim.streams.config import restore_consumer_client_id
from sim.streams.internal_topics import TaskId
from sim.streams.stores import StateStore

MAX_POLL_RECORDS = 1000
"""The restore consumer's ``max.poll.records`` (Streams' consumer default)."""
RECORD_OVERHEAD_BYTES = 70
"""Bytes a record costs in a fetch response besides its value (key, headers, batch framing)."""
RETRY_MS = 100
"""How long the reader waits before it looks again at standbys' changelogs (or at a changelog
whose leader is not available)."""

REGISTERED, RESTORING, COMPLETED = "REGISTERED", "RESTORING", "COMPLETED"


@dataclass
class ChangelogPartition:
    """One store's changelog partition on this thread (``ChangelogMetadata``)."""

    task_id: TaskId
    store: StateStore
    tp: TopicPartition
    active: bool
    start_offset: int
    end_offset: int  # -1 for a standby (it follows the log end), or while not listed yet
    position: int
    state: str = REGISTERED
    restored: int = 0
    start_ms: float = 0.0
    end_ms: float = float("nan")
    # the leader epoch of the last record read (Kafka's FetchPosition.offsetEpoch; None for a
    # position that was seeked to) and the changelog leader's epoch the position was taken or
    # last validated under
    offset_epoch: int | None = None
    leader_epoch: int = -1

    def remaining(self, log_end: int) -> int:
        end = self.end_offset if self.active else log_end
        return max(0, end - self.position)


class StoreChangelogReader:
    """The changelog reader of one stream thread (``StoreChangelogReader``)."""

    def __init__(self, kernel: Any, thread_name: str,
                 on_restored: Callable[[TaskId], None], read_committed: bool = False) -> None:
        self.kernel = kernel
        self.read_committed = read_committed  # under exactly_once_v2, as the main consumer
        self.thread_name = thread_name
        self.client_id = restore_consumer_client_id(thread_name)  # the node faults name
        self.on_restored = on_restored
        self.changelogs: dict[tuple[TaskId, str], ChangelogPartition] = {}
        self.finished: list[ChangelogPartition] = []
        self.stopped = False
        self._wakeup: simpy.Event | None = None

    # -- registration -------------------------------------------------------------------------

    def register(self, task_id: TaskId, store: StateStore, tp: TopicPartition,
                 checkpoint: int | None, active: bool) -> ChangelogPartition:
        """Restore ``store`` from ``tp``, after offset ``checkpoint`` (None: from the start)."""
        log = self.kernel.cluster.partition(tp.topic, tp.partition).log
        start = log.log_start_offset if checkpoint is None else checkpoint + 1
        end = self._list_end_offset(tp) if active else -1
        changelog = ChangelogPartition(task_id, store, tp, active, start, end, start,
                                       start_ms=self.kernel.now_ms)
        self.changelogs[(task_id, store.name)] = changelog
        if active and end >= 0:
            self._emit(changelog, "start")
        if not log.log_start_offset <= start <= log.log_end_offset:
            self._corrupted(changelog, log.log_start_offset)
        self.wake()
        return changelog

    def _list_end_offset(self, tp: TopicPartition) -> int:
        """The end offset of an active task's changelog as Streams lists it: the leader's high
        watermark (``ListOffsets`` latest, read_uncommitted). -1 while no leader can list it:
        the partition is offline, or its new leader's high watermark is still below the start
        of its leader epoch, which may hide records the previous leader had committed
        (``Partition.fetchOffsetForTimestamp`` answers OFFSET_NOT_AVAILABLE); the reader asks
        again on its next loop (``StoreChangelogReader.initializeChangelogs``)."""
        latest = list_offsets.latest_offset(self.kernel.cluster.partition(tp.topic, tp.partition))
        return -1 if latest is None else latest

    def _list_unlisted(self) -> None:
        """Active changelogs whose end offset could not be listed yet: try again."""
        for changelog in self.changelogs.values():
            if changelog.active and changelog.end_offset < 0:
                changelog.end_offset = self._list_end_offset(changelog.tp)
                if changelog.end_offset >= 0:
                    self._emit(changelog, "start")

    def _end(self, log: Any) -> int:
        """How far the restore consumer can read: the last stable offset under read_committed
        (a transaction marker at the end counts: the position passes it, so restore completes).

        An active task restores up to the high watermark listed for it, not to this:
        Streams lists the end offsets read_uncommitted (``StoreChangelogReader.
        endOffsetForChangelogs``, KAFKA-10167), so a restore waits while an open transaction
        holds the last stable offset back, rather than stopping below records committed
        after it."""
        return log.last_stable_offset if self.read_committed else log.high_watermark

    def unregister(self, task_id: TaskId) -> dict[str, ChangelogPartition]:
        """Stop restoring or updating ``task_id``'s stores; returns their changelogs."""
        removed = {}
        for key in [k for k in self.changelogs if k[0] == task_id]:
            changelog = self.changelogs.pop(key)
            if changelog.active and changelog.state != COMPLETED:
                self._emit(changelog, "suspended")
                self.finished.append(changelog)
            removed[key[1]] = changelog
        return removed

    def restoring(self, task_id: TaskId) -> bool:
        return any(c.active and c.state != COMPLETED for (t, _), c in self.changelogs.items()
                   if t == task_id)

    def wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.triggered:
            self._wakeup.succeed()

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> Generator[Any, Any, None]:
        """Restore active tasks first, then update standbys, until the thread stops."""
        env = self.kernel.env
        while not self.stopped:
            self._list_unlisted()
            self._complete_caught_up()
            batch = self._next_batch()
            if batch is None:  # wait for a new changelog, or poll the standbys again
                idle = not self.changelogs or all(c.state == COMPLETED
                                                  for c in self.changelogs.values())
                self._wakeup = env.event()
                yield self._wakeup if idle else env.any_of([self._wakeup,
                                                           env.timeout(RETRY_MS)])
                continue
            fetch_ms, reads = batch
            yield env.timeout(fetch_ms)
            if self.stopped:
                return
            for changelog, first, stop, record_ids, stamps in reads:
                self._apply(changelog, first, stop, record_ids, stamps)

    def _complete_caught_up(self) -> None:
        done_tasks = []
        for changelog in list(self.changelogs.values()):
            if changelog.active and changelog.state != COMPLETED and \
                    0 <= changelog.end_offset <= changelog.position:
                changelog.state = COMPLETED
                changelog.end_ms = self.kernel.now_ms
                self._emit(changelog, "end")
                self.finished.append(changelog)
                done_tasks.append(changelog.task_id)
        for task_id in sorted(set(done_tasks)):
            if not self.restoring(task_id):
                self.on_restored(task_id)

    def _next_batch(self) -> tuple[float, list[tuple[Any, ...]]] | None:
        """One fetch: which records of which changelogs, and how long it takes."""
        cluster = self.kernel.cluster
        network = cluster.network
        candidates = sorted(self.changelogs.values(),
                            key=lambda c: (not c.active, c.task_id, c.tp.topic))
        if any(c.active and c.state != COMPLETED for c in candidates):
            candidates = [c for c in candidates if c.active and c.state != COMPLETED]
        else:
            candidates = [c for c in candidates if not c.active]
        left = MAX_POLL_RECORDS
        reads = []
        total_bytes = 0
        latency = 0.0
        for changelog in candidates:
            partition = cluster.partition(changelog.tp.topic, changelog.tp.partition)
            leader = partition.leader
            if leader < 0 or not cluster.brokers[leader].alive or \
                    not network.connected(self.client_id, leader) or (
                    changelog.active and changelog.end_offset < 0):
                continue
            log = partition.log
            if changelog.position < log.log_start_offset or \
                    changelog.position > log.log_end_offset or \
                    self._truncated(changelog, partition):
                self._corrupted(changelog, log.log_start_offset)
            end = self._end(log) if not changelog.active else min(changelog.end_offset,
                                                                  self._end(log))
            stop = min(end, changelog.position + left)
            if stop <= changelog.position:
                continue
            if changelog.state == REGISTERED:
                changelog.state = RESTORING
            if log.transactions.any or log.cleaned_records:
                # no markers, no aborted records (read_committed), no records the cleaner removed
                kept = _visible(log, changelog.tp, changelog.position, stop,
                                self.read_committed)
                record_ids, sizes, stamps = (
                    np.concatenate([np.zeros(0, np.int64)] + [c.columns[name] for c in kept])
                    for name in ("record_id", "value_size", "timestamp_ms"))
            else:
                record_ids = log.column("record_id", changelog.position, stop)
                sizes = log.column("value_size", changelog.position, stop)
                stamps = log.column("timestamp_ms", changelog.position, stop)
            total_bytes += int(np.sum(np.maximum(sizes, 0))) + RECORD_OVERHEAD_BYTES * len(sizes)
            latency = max(latency, cluster.brokers[leader].latency_ms)
            reads.append((changelog, changelog.position, stop, record_ids, stamps))
            changelog.position = stop
            changelog.offset_epoch = max((e for e, start in log.epochs if start < stop),
                                         default=None)
            changelog.leader_epoch = partition.leader_epoch
            left -= len(record_ids)
            if left <= 0:
                break
        if not reads:
            return None
        bandwidth = min(cluster.brokers[cluster.partition(c.tp.topic, c.tp.partition).leader]
                        .config["lab.network.bandwidth.mbps"] for c, *_ in reads)
        bytes_per_ms = bandwidth * 1e6 / 8 / 1000
        return 2 * latency + total_bytes / bytes_per_ms, reads

    def _apply(self, changelog: ChangelogPartition, first: int, stop: int,
               record_ids: np.ndarray, stamps: np.ndarray) -> None:
        if self.changelogs.get((changelog.task_id, changelog.store.name)) is not changelog:
            return  # unregistered while the fetch was under way
        for record_id, stamp in zip(record_ids.tolist(), stamps.tolist(), strict=True):
            key, value = payload(self.kernel, record_id)
            changelog.store.restore_record(key, value, stamp)
        changelog.restored += len(record_ids)
        self._emit(changelog, "batch" if changelog.active else "standby",
                   start=first, end=stop)

    @staticmethod
    def _truncated(changelog: ChangelogPartition, partition: Any) -> bool:
        """KIP-320: the changelog's leader changed since the position was read; whether the
        new leader's log ends the position's epoch below it (or knows no such epoch), so the
        records read past that point are gone (``LogTruncationException``)."""
        if changelog.offset_epoch is None or changelog.leader_epoch == partition.leader_epoch:
            return False
        epoch, end = offsets_for_leader_epoch(partition, changelog.offset_epoch)
        if epoch == UNDEFINED or end < changelog.position:
            return True
        changelog.leader_epoch = partition.leader_epoch  # validated
        return False

    def _corrupted(self, changelog: ChangelogPartition, log_start: int) -> None:
        """The start offset is gone: wipe the store and restore from the log start. The trace
        event's start and end offsets are the missing position and the new log start."""
        self._emit(changelog, "corrupted", start=changelog.position, end=log_start)
        changelog.store.wipe()
        changelog.start_offset = changelog.position = log_start
        changelog.restored = 0
        changelog.offset_epoch = None

    # -- what a notebook looks at -------------------------------------------------------------

    def _emit(self, changelog: ChangelogPartition, action: str, start: int | None = None,
              end: int | None = None) -> None:
        self.kernel.trace.emit(
            events.STREAMS_RESTORE, self.kernel.now_ms, self.thread_name,
            str(changelog.task_id), changelog.store.name, changelog.tp.partition, action,
            changelog.start_offset if start is None else start,
            changelog.end_offset if end is None else end, changelog.restored)

    def progress(self) -> list[dict[str, Any]]:
        """One row per changelog partition handled: finished ones, then the current ones."""
        cluster = self.kernel.cluster
        rows = []
        finished = {id(c) for c in self.finished}
        for changelog in [*self.finished, *[c for c in self.changelogs.values()
                                              if id(c) not in finished]]:
            log = cluster.partition(changelog.tp.topic, changelog.tp.partition).log
            rows.append({
                "thread": self.thread_name, "task": str(changelog.task_id),
                "store": changelog.store.name, "topic": changelog.tp.topic,
                "partition": changelog.tp.partition,
                "kind": "active" if changelog.active else "standby",
                "state": changelog.state, "start_offset": changelog.start_offset,
                "end_offset": changelog.end_offset if changelog.active else log.high_watermark,
                "restored": changelog.restored,
                "remaining": changelog.remaining(log.high_watermark),
                "start_ms": changelog.start_ms, "end_ms": changelog.end_ms})
        return rows
