"""The consumer: ``subscribe()`` or ``assign()``, ``poll()`` records, process them, commit offsets.

Mirrors ``org.apache.kafka.clients.consumer.KafkaConsumer`` with the classic group protocol:
``Consumer(kernel, config)`` takes Kafka's consumer config names and Kafka 4.0's defaults (see
``sim.consumer.config.CONSUMER``). Two ways to drive it:

- **From a notebook**, call ``poll()``, ``process(records)`` and ``commit_sync()`` yourself;
  each call runs the simulation forward until it returns, as the real call would block.
- **As an application**: ``consumer.run(on_records, processing_ms_per_record=2)``. The lab then
  polls in a loop and calls ``on_records(consumer, records)`` for every poll that returns
  records. Inside, call ``process(records)`` and ``consumer.commit_sync()`` in the order you
  want. Your function runs instantly; the lab then replays those calls on the simulated clock
  (processing takes ``processing_ms_per_record`` per record, a commit until the coordinator
  has stored it), so a crash halfway through processing loses exactly what was not yet
  processed or committed. A ``commit_sync()`` that fails raises at its place in the replay,
  so what your function did after it is not carried out, as with Kafka's ``commitSync()``.
  Ready-made applications, and how the lab's loop handles a failed commit, are in
  ``sim.consumer.apps``.

A running consumer polls forever, as a real one does: run the kernel with an end time,
``kernel.run(until_ms)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Generator, Iterable
from typing import Any

from sim import trace as trace_events
from sim.broker import list_offsets, remote_log_manager
from sim.broker.list_offsets import OffsetAndTimestamp
from sim.consumer import events
from sim.consumer.apps import COMMIT_ERRORS
from sim.consumer.client import LEARNER_CODE, ConsumerClient, Stopped
from sim.consumer.coordinator import RETRY_BACKOFF_MS
from sim.consumer.errors import (
    CommitFailedError,
    CommitTimeoutError,
    IllegalStateError,
    LogTruncationError,
    NoOffsetForPartitionError,
    OffsetNotAvailableError,
    OffsetOutOfRangeError,
    RebalanceInProgressError,
)
from sim.consumer.fetcher import (
    ConsumerRecord,
    ConsumerRecords,
    Fetcher,
    chunks_of,
    log_start_offset,
)
from sim.consumer.offsets import OffsetAndMetadata
from sim.errors import ConfigError
from sim.records import TopicPartition

__all__ = [
    "CommitFailedError",
    "CommitTimeoutError",
    "Consumer",
    "ConsumerRecord",
    "ConsumerRecords",
    "IllegalStateError",
    "LogTruncationError",
    "NoOffsetForPartitionError",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "OffsetNotAvailableError",
    "OffsetOutOfRangeError",
    "RebalanceInProgressError",
    "process",
]

OnRecords = Callable[["Consumer", ConsumerRecords], Any]


class Consumer(ConsumerClient):
    """A Kafka consumer in the simulation (``KafkaConsumer``, classic group protocol).

    Life cycle: running → (hung for a while) → crashed or closed → running again after
    ``restart()``. A member's group state is in ``consumer.coordinator``.

    Args:
        kernel: the ``Kernel`` to consume from.
        config: Kafka consumer configs, e.g. ``{"group.id": "billing", "max.poll.records": 100}``.
        on_records: the application, ``on_records(consumer, records)``, used by ``run()``.
        processing_ms_per_record: how long ``process(records)`` takes per record.

    Raises:
        ConfigError: for an unknown config name or a bad value (or heartbeat.interval.ms not
            below session.timeout.ms), naming both.
    """

    # -- subscriptions ------------------------------------------------------------------------

    def subscribe(self, topics: str | Iterable[str] | re.Pattern[str],
                  listener: Any = None) -> None:
        """Join the group and let it assign partitions of ``topics`` (a list, or a regex).

        A compiled ``re.Pattern`` (or a string starting with ``^``) subscribes to every topic
        whose whole name matches, now and later. ``listener`` may define
        ``on_partitions_revoked(partitions)``, ``on_partitions_assigned(partitions)`` and
        ``on_partitions_lost(partitions)`` (Kafka's ``ConsumerRebalanceListener``).

        Raises:
            IllegalStateError: without a group.id, or after ``assign()``.
            UnknownTopicError: for a topic the cluster does not have.
        """
        if self.group_id is None:
            raise IllegalStateError(
                "subscribe() needs a group.id: to use the group management or offset commit "
                "APIs, set group.id in the consumer config (or use assign()).")
        self.subscriptions.subscribe(topics, listener)
        if self.coordinator is not None and self.coordinator.member_id:
            self.coordinator.request_rejoin("the subscription changed")

    def assign(self, partitions: Iterable[TopicPartition | tuple[str, int]]) -> None:
        """Read exactly these partitions, without group management (``KafkaConsumer.assign``).

        With a group.id, offsets can still be committed for the group.
        """
        self.subscriptions.assign(partitions)

    def unsubscribe(self) -> None:
        """Leave the group (dynamic members) and drop every partition."""
        if self.group_managed():
            self.coordinator.leave_group("unsubscribe")  # type: ignore[union-attr]
        self.subscriptions.unsubscribe()

    def subscription(self) -> set[str]:
        """The topics subscribed to (a pattern's current matches)."""
        return set(self.subscribed_topics())

    # -- the poll loop ---------------------------------------------------------------------------

    def poll(self, timeout_ms: float = 100) -> ConsumerRecords:
        """Records from the assigned partitions, at most ``max.poll.records``.

        Waits up to ``timeout_ms`` of simulated time for records; joining the group,
        rebalancing and automatic commits happen inside, as in Kafka.

        Raises:
            NoOffsetForPartitionError: auto.offset.reset=none and no committed offset.
            LogTruncationError: auto.offset.reset=none and a position's validation found a
                truncation (KIP-320); raised again each time the validation is retried
                (every ``request.timeout.ms``) until you ``seek()`` that partition, which
                meanwhile is not read.
        """
        self.check_direct_call("poll()")
        return self.drive(self.poll_gen(timeout_ms))

    def run(self, on_records: OnRecords | None = None,
            processing_ms_per_record: float | None = None) -> Consumer:
        """Start the application loop: poll, call ``on_records`` with the records, repeat."""
        if on_records is not None:
            self.app = on_records
        if processing_ms_per_record is not None:
            self.processing_ms_per_record = float(processing_ms_per_record)
        if self.app is None:
            raise ConfigError("run() needs an application: on_records(consumer, records), "
                              "e.g. sim.consumer.apps.at_least_once.")
        if not self.subscriptions.has_any:
            raise IllegalStateError("Call subscribe(topics) or assign(partitions) before run().")
        self.ensure_usable()
        if self.app_proc is None or not self.app_proc.is_alive:
            self.app_proc = self.env.process(self._app_loop())
        return self

    def _app_loop(self) -> Generator[Any, Any, None]:
        """Poll, hand the records to the application, repeat (see ``sim.consumer.apps``).

        An application with clients of its own starts them before the first poll and closes
        them before the consumer closes (its ``startup_gen(consumer)`` and
        ``shutdown_gen(consumer)``, such as the consume-transform-produce app's producer).

        The loop belongs to one process (one ``incarnation``): once the consumer crashed or
        was restarted, it stops at its next step (``Stopped``) instead of driving the new
        process's consumer and clients alongside the new process's own loop."""
        incarnation = self.incarnation
        try:
            startup = getattr(self.app, "startup_gen", None)
            if startup is not None:
                yield from startup(self)
                self.check(incarnation)
            while not self.closing:
                records = yield from self.poll_gen(100)
                if records:
                    done_before = len(self.history.batches)
                    try:
                        yield from self.call_learner(self.app, self, records)
                    except COMMIT_ERRORS:
                        self._read_again(records, self.history.batches[done_before:])
                        # Back off before polling again: the group needs time to settle, and
                        # polling at once would retry the same commit at the same instant.
                        yield from self.wait(RETRY_BACKOFF_MS)
                self.check(incarnation)
            shutdown = getattr(self.app, "shutdown_gen", None)
            if shutdown is not None:
                yield from shutdown(self)
                self.check(incarnation)
            yield from self.close_gen()
        except Stopped:
            return

    def _read_again(self, records: ConsumerRecords, processed: list[Any]) -> None:
        """After a failed commit: seek each partition still owned whose records were not
        processed back to the first of them, so that they are read again."""
        touched = {chunk.tp for batch in processed for chunk in batch.chunks}
        for chunk in records.chunks:
            if chunk.tp in self.subscriptions.owned and chunk.tp not in touched:
                self.subscriptions.seek(chunk.tp, chunk.first_offset, self.now_ms)

    # -- processing and commits ---------------------------------------------------------------

    def process(self, records: ConsumerRecords | ConsumerRecord | Iterable[ConsumerRecord]
                ) -> None:
        """Process records: ``processing_ms_per_record`` of simulated time each."""
        chunks = chunks_of(records)
        if self._script is not None:
            self._script.append(("process", chunks))
        else:
            self.check_direct_call("process()")
            self.drive(self.process_gen(chunks))

    def commit_sync(self, offsets: dict[Any, int | OffsetAndMetadata] | None = None
                    ) -> None:
        """Commit ``offsets`` (default: every valid position, i.e. last record returned + 1;
        a position still to be validated against a new leader is left out, KIP-320).

        The default commit also stores the leader epoch of each partition's last record read
        (KIP-320), so whoever restores the offset can detect a truncation; offsets given by
        hand carry none unless given as ``OffsetAndMetadata(offset, leader_epoch=…)``, as in
        Kafka.

        Inside ``on_records`` the commit happens when the lab replays your calls: if it fails,
        the error is raised there, so the calls you made after ``commit_sync`` are not carried
        out, and the lab's poll loop handles it (see ``sim.consumer.apps``). Every attempt is
        in the trace (``consumer.commit``, with its error).

        Raises:
            CommitFailedError: the member is no longer in the group's generation (it was
                removed after a hang or a late poll); poll() rejoins the group.
            RebalanceInProgressError: a rebalance is under way; poll() and retry.
            CommitTimeoutError: no working coordinator within default.api.timeout.ms.
        """
        snapshot, leader_epochs = self._offsets(offsets), self._leader_epochs(offsets)
        if self._script is not None:
            self._script.append(("commit_sync", (snapshot, leader_epochs)))
        else:
            self.check_direct_call("commit_sync()")
            error = self.drive(self.commit_gen(snapshot, sync=True,
                                               leader_epochs=leader_epochs))
            if error:
                raise self.commit_error(error)

    def commit_async(self, offsets: dict[Any, int | OffsetAndMetadata] | None = None
                     ) -> None:
        """Like ``commit_sync`` but does not wait for the answer; failures go to the trace."""
        snapshot, leader_epochs = self._offsets(offsets), self._leader_epochs(offsets)
        if self._script is not None:
            self._script.append(("commit_async", (snapshot, leader_epochs)))
        else:
            self.drive(self.commit_gen(snapshot, sync=False, leader_epochs=leader_epochs))

    def group_metadata(self) -> dict[str, Any]:
        """``ConsumerGroupMetadata`` for ``send_offsets_to_transaction``: group id, member id,
        generation, so that the group coordinator can refuse a zombie's offsets (KIP-447).

        Those of the last join that completed, as Kafka's ``ConsumerCoordinator.groupMetadata``
        (set in ``onJoinComplete`` only): a member that learns it was removed forgets its
        generation, but the offsets of records it already polled still carry the old one and
        are refused (UNKNOWN_MEMBER_ID). With ``-1`` and no member id they would pass as an
        old-protocol transactional commit, and a zombie's transaction would commit.
        """
        if self.group_id is None:
            raise IllegalStateError("group_metadata() needs a group.id.")
        member_id, generation = (self.coordinator.joined if self.coordinator is not None
                                 else (self.member_id, self.generation))
        return {"group.id": self.group_id, "member.id": member_id,
                "generation.id": generation, "group.instance.id": self.instance_id}

    def run_step(self, step: Callable[[], Generator[Any, Any, Any]]) -> None:
        """Inside ``on_records``: replay ``step()`` (a generator of simulated work, such as a
        transaction) at this point, after the calls made before it."""
        if self._script is None:
            raise IllegalStateError("run_step() is for on_records; outside it, call the "
                                    "blocking methods directly.")
        self._script.append(("call", step))

    def _offsets(self, offsets: dict[Any, Any] | None) -> dict[TopicPartition, int]:
        if offsets is None:
            return self.consumed_offsets()
        return {TopicPartition(*key) if isinstance(key, tuple) else key:
                int(getattr(value, "offset", value)) for key, value in offsets.items()}

    def _leader_epochs(self, offsets: dict[Any, Any] | None) -> dict[TopicPartition, int]:
        """The leader epochs committed with ``_offsets(offsets)``: the positions' own
        (``allConsumed``), or those given with the offsets (``OffsetAndMetadata.leaderEpoch``)."""
        if offsets is None:
            return self.consumed_epochs()
        return {TopicPartition(*key) if isinstance(key, tuple) else key: int(epoch)
                for key, value in offsets.items()
                if (epoch := getattr(value, "leader_epoch", None)) is not None}

    def committed(self, partitions: Iterable[TopicPartition] | None = None
                  ) -> dict[TopicPartition, OffsetAndMetadata | None]:
        """The group's committed offsets (Kafka's ``committed``), None where there is none.

        Each is an ``OffsetAndMetadata``: ``.offset``, and ``.leader_epoch``, the leader epoch
        committed with it (KIP-320; None for offsets committed by hand without one).
        ``seek(tp, committed[tp])`` resumes there, validated against the leader.
        """
        if self.group_id is None:
            raise IllegalStateError("committed() needs a group.id.")
        wanted = list(partitions) if partitions is not None else self.assignment()
        return self.group_coordinator.fetch_committed(self.group_id, wanted)

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next record to fetch from ``tp``.

        Without a position yet, the committed offset (else ``auto.offset.reset``). Like
        Kafka's, a position to validate (KIP-320: restored from a commit, or taken under an
        earlier leader) is validated first when the leader can be asked.

        Raises:
            LogTruncationError: validation found a truncation and ``auto.offset.reset=none``,
                now or earlier (the position stays unvalidated until ``seek()``; Kafka's
                ``position()`` would block until it validates again and throw).
        """
        subs = self.subscriptions
        subs.check_assigned(tp)
        if tp in subs.awaiting_reset:
            subs.retry_reset(tp, self.now_ms)
        elif tp not in subs.positions:
            committed = (self.group_coordinator.fetch_committed(self.group_id, [tp])[tp]
                         if self.group_id else None)
            if committed is None:
                subs.reset(tp, self.now_ms)
            else:
                subs.seek_unvalidated(tp, committed.offset, self.now_ms, committed.leader_epoch)
        part = self.cluster.partition(tp.topic, tp.partition)
        if tp in subs.positions and self._reachable(part.leader):
            subs.maybe_validate_position(tp, part, self.now_ms)
        if tp in subs.truncated:
            raise subs.truncation_error(tp)
        if tp not in subs.positions:
            raise _not_available(tp, part, "position()")
        return subs.positions[tp]

    def seek(self, tp: TopicPartition, offset: int | OffsetAndMetadata) -> None:
        """Fetch ``tp`` from ``offset`` on the next poll.

        ``offset`` is an offset, or an ``OffsetAndMetadata`` (what ``committed()`` returns, or
        ``LogTruncationError.divergent_offsets()``): with a ``leader_epoch`` the position is
        validated against the partition's leader before it is fetched from
        (``KafkaConsumer.seek(TopicPartition, OffsetAndMetadata)`` → ``seekUnvalidated``,
        KIP-320); a plain offset is taken as valid (``seekValidated``). Either ends a wait
        for validation after a ``LogTruncationError``.
        """
        self.subscriptions.check_assigned(tp)
        target = getattr(offset, "offset", offset)
        if target < 0:
            raise ConfigError(f"seek(): offset must be ≥ 0 but got {target}.")
        epoch = getattr(offset, "leader_epoch", None)
        if epoch is None:
            self.subscriptions.seek(tp, target, self.now_ms)
        else:
            self.subscriptions.seek_unvalidated(tp, target, self.now_ms, epoch)

    def offsets_for_times(self, timestamps: dict[Any, int]
                          ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """Kafka's ``offsetsForTimes``: per partition, the earliest offset whose timestamp is
        ≥ the given one, with that timestamp, or None when no record has one (yet).

        Timestamps need not grow with offsets (``sim.broker.list_offsets``). Any partition of
        the cluster may be asked, assigned or not; seek() to the answer to read from there.

        Raises:
            ConfigError: for a negative timestamp (Kafka's IllegalArgumentException).
        """
        out: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        for key, timestamp in timestamps.items():
            tp = _topic_partition(key)
            if not isinstance(timestamp, int | float) or timestamp < 0:
                raise ConfigError(f"offsets_for_times(): the target time for partition {tp} "
                                  f"is {timestamp!r}; it must be a time in ms ≥ 0.")
            log = self._log_of(tp)
            part = self.cluster.partition(tp.topic, tp.partition)  # tiered: remote tier first
            out[tp] = (remote_log_manager.offset_for_timestamp(self.cluster, part, int(timestamp))
                       or list_offsets.offset_for_timestamp(log, int(timestamp)))
            if out[tp] is None and list_offsets.offset_not_available(part):
                raise _not_available(tp, part, "offsets_for_times()")
        return out

    def beginning_offsets(self, partitions: Iterable[Any]) -> dict[TopicPartition, int]:
        """Kafka's ``beginningOffsets``: each partition's log start offset (the remote tier's
        first offset for a tiered topic)."""
        return {tp: log_start_offset(self.cluster, self.cluster.partition(tp.topic, tp.partition))
                for tp in map(_topic_partition, partitions) if self._log_of(tp) is not None}

    def end_offsets(self, partitions: Iterable[Any]) -> dict[TopicPartition, int]:
        """Kafka's ``endOffsets``: each partition's high watermark (the next offset a
        read_uncommitted consumer could read), or with ``isolation.level=read_committed`` its
        last stable offset.

        Raises:
            OffsetNotAvailableError: a partition's leader cannot list it yet: just after a
                failover its high watermark is below the start of its leader epoch
                (OFFSET_NOT_AVAILABLE, KIP-207), or it has no leader. Kafka's consumer retries
                until ``default.api.timeout.ms``; run the kernel on a little and ask again.
        """
        out = {}
        for tp in map(_topic_partition, partitions):
            self._log_of(tp)  # the partition exists
            offset = self.subscriptions.end_offset(tp)
            if offset is None:
                raise _not_available(tp, self.cluster.partition(tp.topic, tp.partition),
                                     "end_offsets()")
            out[tp] = offset
        return out

    def _log_of(self, tp: TopicPartition) -> Any:
        count = len(self.cluster.topic(tp.topic).partitions)
        if not 0 <= tp.partition < count:
            raise ConfigError(f"Partition {tp} does not exist: topic {tp.topic!r} has "
                              f"partitions 0..{count - 1}.")
        return self.cluster.partition(tp.topic, tp.partition).log

    def seek_to_beginning(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        for tp in partitions if partitions is not None else self.assignment():
            self.seek(tp, log_start_offset(self.cluster,
                                           self.cluster.partition(tp.topic, tp.partition)))

    def seek_to_end(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Fetch each partition from its end (the high watermark, or the last stable offset
        under read_committed). A partition whose leader cannot list its end yet (as
        ``end_offsets``) waits without a position, and the next poll asks again, as Kafka's
        ``seekToEnd`` resets lazily (``requestOffsetReset(LATEST)``)."""
        for tp in partitions if partitions is not None else self.assignment():
            self.subscriptions.check_assigned(tp)
            self.subscriptions.reset(tp, self.now_ms, strategy="latest")

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        """Stop fetching these partitions (the group does not notice)."""
        for tp in partitions:
            self.subscriptions.check_assigned(tp)
            self.subscriptions.paused.add(tp)
        self.subscriptions.version += 1

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        self.subscriptions.paused.difference_update(partitions)
        self.subscriptions.version += 1

    def paused(self) -> set[TopicPartition]:
        return set(self.subscriptions.paused)

    def close(self) -> None:
        """Commit (with auto-commit), give partitions up and leave the group (dynamic members)."""
        if self.lifecycle != "running":
            return
        if self.app_proc is not None and self.app_proc.is_alive:
            self.closing = True
            self.notify()
        else:
            self.drive(self.close_gen())

    def leave_now(self, reason: str) -> None:
        """Unsubscribe and close at once, committing nothing: what a Kafka Streams thread that
        died of an exception does (``StreamThread.completeShutdown``: ``unsubscribe`` after
        ``requestLeaveGroupDuringShutdown``, then ``close``). A dynamic member sends
        LeaveGroup, so the group gives its partitions to the others at once instead of after
        ``max.poll.interval.ms``; a static member just stops."""
        if self.lifecycle != "running":
            return
        if self.coordinator is not None:
            self.coordinator.leave_group(reason)
        self.mark_closed()

    # -- faults (what sim.consumer.faults applies; also handy behind a notebook button) -------

    def record_fault(self, name: str, detail: str) -> None:
        """Write a ``fault`` event for this consumer (node -1: not a broker)."""
        self.trace.emit(trace_events.FAULT, self.now_ms, self.client_id, -1, name, detail)

    def crash(self) -> None:
        """The process dies: no commit, no LeaveGroup; the group notices at session timeout.

        An application with clients of its own (an ``on_records`` with a
        ``process_crashed(consumer)`` method, such as the consume-transform-produce app's
        producer) loses them too: they ran in the same process.
        """
        if self.lifecycle != "running":
            raise IllegalStateError(f"consumer {self.client_id} is {self.lifecycle}; only a "
                                    "running consumer can crash.")
        self.record_fault("consumer_crash", f"member={self.member_id or '-'}")
        if self.running_batch is not None:
            self.running_batch.crash_ms = self.now_ms
        if self.member_id:
            self.emit(events.CONSUMER_LEFT, self.group_id, self.member_id,
                      "crashed: stopped without LeaveGroup")
        self.lifecycle = "crashed"
        self.incarnation += 1
        self.closing = False
        self.hung_until = -math.inf
        process_crashed = getattr(self.app, "process_crashed", None)
        if process_crashed is not None:
            process_crashed(self)

    def hang(self, duration_ms: float) -> None:
        """Freeze every thread for ``duration_ms`` (a long GC pause): no polls, no heartbeats."""
        if self.lifecycle != "running":
            raise IllegalStateError(f"consumer {self.client_id} is {self.lifecycle}; it cannot "
                                    "hang.")
        if duration_ms <= 0:
            raise ConfigError(f"hang: duration_ms must be > 0 but got {duration_ms}.")
        self.record_fault("consumer_hang", f"duration_ms={duration_ms:g}")
        start = max(self.now_ms, self.hung_until)
        end = self.now_ms + duration_ms
        if end > start:
            self.history.hangs.append((start, end - start))
            self.hung_until = end

    def slow_down(self, factor: float) -> None:
        """Make processing ``factor`` times slower from the next ``process()`` on (1 = normal)."""
        if factor <= 0:
            raise ConfigError(f"slow: factor must be > 0 but got {factor}.")
        self.record_fault("consumer_slow", f"factor={factor:g}")
        self.slowdown = float(factor)

    def restart(self) -> None:
        """Start a crashed or closed consumer again as a fresh process (same configs and app).

        A static member (``group.instance.id``) back within ``session.timeout.ms`` takes over
        its old membership and assignment without a rebalance. A consumer still closing
        (``close()`` waits for its commit) is started again at once, its close cut short: the
        old process ends there, and an application's clients with it (``process_crashed``, as
        in ``crash()``), so only the new process's loop and producer go on.
        """
        if self.lifecycle == "running" and not self.closing:
            raise IllegalStateError(f"consumer {self.client_id} is running; crash() or close() "
                                    "it before restarting it.")
        self.record_fault("consumer_restart", "")
        if self.lifecycle == "running":  # still closing: the old process is cut short
            process_crashed = getattr(self.app, "process_crashed", None)
            if process_crashed is not None:
                process_crashed(self)
        self.incarnation += 1
        self.lifecycle = "running"
        self.closing = False
        self.subscriptions.clear()
        self.fetcher = Fetcher(self.read_committed)
        self.running_batch = None
        if self.coordinator is not None:
            self.coordinator.reset()
        self.hb_proc = self.app_proc = None
        if self.app is not None and self.subscriptions.has_any:
            self.run()

    # -- what happened, as DataFrames ---------------------------------------------------------

    def reads(self) -> Any:
        """One row per record a poll returned (consumer, poll, time, partition, offset…)."""
        return self.history.read_frame()

    def processed(self) -> Any:
        """One row per record whose processing finished, with ``processed_ms`` and latency."""
        return self.history.processed_frame(self.now_ms)

    def commits(self) -> Any:
        """One row per partition per commit attempt; ``error`` is empty when it was stored."""
        return self.history.commit_frame()


def _not_available(tp: TopicPartition, part: Any, what: str) -> OffsetNotAvailableError:
    """The error of a lookup ``part``'s leader refused (``list_offsets.offset_not_available``)."""
    if part.leader < 0:
        why = "it has no leader (LEADER_NOT_AVAILABLE)"
    else:
        log = part.logs[part.leader]
        why = (f"its leader, broker {part.leader}, has a high watermark of "
               f"{log.high_watermark}, below {log.end_offset_for_epoch(part.leader_epoch - 1)} "
               f"where its leader epoch {part.leader_epoch} starts (OFFSET_NOT_AVAILABLE, "
               "KIP-207: just after a failover \"latest\" could otherwise go backwards)")
    return OffsetNotAvailableError(
        f"{what}: {tp} cannot be listed yet: {why}. Kafka's consumer retries until "
        "default.api.timeout.ms; run the kernel on a little and ask again.")


def _topic_partition(value: Any) -> TopicPartition:
    """A ``TopicPartition`` from one, or from a ``(topic, partition)`` pair."""
    if isinstance(value, TopicPartition):
        return value
    try:
        topic, partition = value
    except (TypeError, ValueError):
        raise ConfigError(f"Expected a TopicPartition or a (topic, partition) pair but got "
                          f"{value!r}.") from None
    return TopicPartition(topic, int(partition))


def process(records: ConsumerRecords | ConsumerRecord | Iterable[ConsumerRecord]) -> None:
    """Process records inside ``on_records`` (or pass a ``ConsumerRecords`` from ``poll()``).

    Raises:
        IllegalStateError: outside ``on_records`` with records that do not know their consumer.
    """
    consumer = LEARNER_CODE[-1] if LEARNER_CODE else getattr(records, "consumer", None)
    if consumer is None:
        raise IllegalStateError("process(records) works inside on_records or with the "
                                "records poll() returned; otherwise call consumer.process().")
    consumer.process(records)

