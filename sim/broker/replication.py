"""Replication: followers fetch from leaders; the leader keeps the ISR and the high watermark.

Mirrors Kafka's ``ReplicaManager``, ``Partition`` and ``ReplicaFetcherThread``:

- A follower broker runs one fetcher per leader broker. Each fetch asks for every partition it
  follows from that leader at the follower's log end offset. The leader answers as soon as one
  of them has data (or after ``replica.fetch.wait.max.ms``) with whole batches and its high
  watermark; the follower appends them, keeping offsets and leader epochs. A fetch that finds
  nothing waits at the leader (``DelayedFetch``): the append that brings data answers it there,
  so only the response travels.
- The fetch offset tells the leader how far the follower got. A follower was *caught up* at
  the time of a fetch at the leader's log end offset, or at the time of its previous fetch when
  it reached that fetch's end offset (``Replica.updateFetchStateOrThrow``): only fetches that
  reach the leader move that time, so a follower that died or was cut off keeps the time of
  its last one. Every broker checks the partitions it leads every
  ``replica.lag.time.max.ms / 2`` from its start, idle or not, and removes from the ISR the
  followers that have neither the leader's log end offset nor been caught up within
  ``replica.lag.time.max.ms`` (``Replica.isCaughtUp``); a follower rejoins once its log end
  offset reaches the high watermark and the start of the leader's epoch, if the controller
  lets it (a registered, unfenced broker: KIP-841, KIP-903). ISR changes go through the
  controller, so a leader cut off from it changes nothing.
- Only a broker that leads a partition in the current epoch serves fetches for it, and only a
  broker that does not believe it leads fetches: a zombie leader replicates from nobody. A
  follower fetches from the leader, in the leader epoch, of the last metadata it heard from the
  controller (``Controller.leader_known_by``): cut off from the controller, it copies nothing
  from a leader elected since.
- The high watermark is the smallest log end offset among the ISR — and among followers outside
  it that are caught up and may rejoin it (``shouldWaitForReplicaToJoinIsr``) — and never
  advances while the ISR is smaller than ``min.insync.replicas`` (KAFKA-15583, Kafka 3.7).
- ``acks=all`` produce requests wait (``DelayedProduce``) until the high watermark passes their
  last offset, or until the request's timeout (the producer's ``request.timeout.ms``) runs out:
  then the answer is REQUEST_TIMED_OUT. They fail with NOT_ENOUGH_REPLICAS when the ISR is too
  small before the append; if it shrank after it, the answer NOT_ENOUGH_REPLICAS_AFTER_APPEND
  comes only once the high watermark reaches the request's offset
  (``Partition.checkEnoughReplicasReachOffset``) — and as the high watermark is frozen below
  ``min.insync.replicas``, such a request usually times out instead.
- An idempotent producer's batches carry sequence numbers: the leader answers a retry of a
  batch it already has with the original offsets, and rejects a batch that would skip a
  missing earlier one (OUT_OF_ORDER_SEQUENCE_NUMBER), so order is kept. Every replica keeps
  this producer state with its log (``sim.broker.producer_state``), so a new leader knows it too.
- A follower that starts following a new leader first truncates its log to where its last
  leader epoch ends in the leader's log (``OffsetsForLeaderEpoch``, KIP-101/KIP-279), repeating
  with an earlier epoch when the leader never had that one: records past that point are gone,
  and the trace says which.

Worked example (kafka-facts §3.1): RF 3, ISR {1, 2, 3}; leader 1 has LEO 5, follower 2 LEO 5,
follower 3 LEO 3 → HW 3, so consumers read offsets 0–2, and an acks=all write at offset 4
completes once follower 3 has fetched up to 5.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Generator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from sim import config
from sim import trace as events
from sim.broker import remote_log_manager
from sim.broker.cluster import FollowerState, Network, Partition
from sim.broker.log import SEGMENT_ROLL, Batch, PartitionLog, RecordSource
from sim.broker.log_cleaner import LogCleaner
from sim.broker.purgatory import ExpirationTimer, TimerQueue
from sim.broker.retention import LOG_START_OFFSET, LogRetention
from sim.payloads import RECORD_INDEX_BITS
from sim.records import TopicPartition

if TYPE_CHECKING:
    from sim.broker.runtime import BrokerRuntime

REPLICA_FETCH_MAX_BYTES = 1048576  # replica.fetch.max.bytes (per partition)
REPLICA_FETCH_BACKOFF_MS = 1000  # replica.fetch.backoff.ms
REPLICA_FETCH_WAIT_MAX_MS = 500  # replica.fetch.wait.max.ms
CONTROL_BATCH_BYTES = 78  # a v2 batch header (61) and one control record (key 4, value 6)
CONTROL_VALUE_BYTES = 6  # EndTransactionMarker: version (2) and coordinator epoch (4)

NONE = "NONE"
NOT_ENOUGH_REPLICAS = "NOT_ENOUGH_REPLICAS"
NOT_ENOUGH_REPLICAS_AFTER_APPEND = "NOT_ENOUGH_REPLICAS_AFTER_APPEND"
NOT_LEADER_OR_FOLLOWER = "NOT_LEADER_OR_FOLLOWER"
INVALID_RECORD = "INVALID_RECORD"
REQUEST_TIMED_OUT = "REQUEST_TIMED_OUT"

HW_ADVANCE = events.register(events.EventKind(
    "hw.advance", ("topic", "partition", "node", "high_watermark"),
    "the leader's high watermark moved forward"))
ISR_CHANGE = events.register(events.EventKind(
    "isr.change", ("topic", "partition", "node", "isr", "reason"),
    "the ISR shrank or expanded"))
TRUNCATE = events.register(events.EventKind(
    "log.truncate", ("topic", "partition", "node", "offset", "records", "leader_epoch"),
    "a replica dropped records past a divergence point"))
PRODUCE_ERROR = events.register(events.EventKind(
    "produce.error", ("topic", "partition", "node", "error", "records"),
    "a broker rejected or could not complete a batch"))

ProduceBatch = tuple[str, int, Any, int, int, int]
"""One partition's batch in a produce request: topic, partition, its records (indices into the
request's ``RecordSource``, or without one the record columns of
``sim.broker.log.RECORD_COLUMNS``), bytes, base sequence and producer epoch."""


@dataclass
class AppendResult:
    """The broker's answer for one batch of a produce request."""

    error: str
    base_offset: int = -1


@dataclass
class _DelayedProduce:
    """An acks=all batch waiting in the produce purgatory (Kafka's ``DelayedProduce``)."""

    partition: Partition
    required_offset: int
    base_offset: int
    respond: Callable[[AppendResult], None]
    deadline_ms: float
    node: int
    records: int
    done: bool = False


@dataclass
class _ZombieProduce:
    """An acks=all batch a zombie leader appended: nobody fetches from it, so it waits until
    the request times out, or until the broker learns it no longer leads
    (``answer_deposed``)."""

    respond: Callable[[AppendResult], None]
    done: bool = False
    timer: Any = None  # its request.timeout.ms timer

    def answer(self, result: AppendResult) -> None:
        if not self.done:
            self.done = True
            self.respond(result)


class _DelayedFetch(simpy.Event):
    """A follower's fetch parked at its leader (Kafka's ``DelayedFetch`` in the fetch
    purgatory): it waits there, not at the follower, so when it completes only the response
    travels.

    It is also the event the follower's fetcher waits on: ``send`` answers it at the leader
    and the fetcher resumes when the response arrives, as SimPy's ``Timeout`` does (one event
    per response, not a wake-up then a timeout).
    """

    def __init__(self, env: simpy.Environment, follower: int, leader: int, incarnation: int,
                 parts: list[Partition], request: list[tuple[Partition, int, int]],
                 expiring: bool) -> None:
        super().__init__(env)
        self.follower = follower
        self.leader = leader
        self.arrived_ms = float(env.now)  # when the leader received it
        self.incarnation = incarnation  # the leader's process: a restart empties its purgatory
        self.parts = parts  # the fetch session: the partitions the follower fetches from it
        self.request = request  # (partition, fetch offset, leader epoch) for each of them
        self.done = False  # answered (or expired)
        self.expiring = expiring  # replica.fetch.wait.max.ms armed

    def send(self, value: Any, delay_ms: float) -> None:
        """Answer with ``value``, which reaches the follower ``delay_ms`` later."""
        self._ok = True
        self._value = value
        self.env.schedule(self, delay=delay_ms)


def _waits(delayed: _DelayedFetch) -> bool:
    """Whether a parked fetch is still waiting for an answer."""
    return not delayed.done


class ReplicaManager:
    """The broker side of produce and replication for the whole cluster."""

    def __init__(self, runtime: BrokerRuntime) -> None:
        self.runtime = runtime
        self.cluster = runtime.cluster
        self._delayed: dict[tuple[str, int], list[_DelayedProduce]] = {}
        # acks=all batches zombie leaders appended, by (broker, topic, partition)
        self._zombie_waits: dict[tuple[int, str, int], list[_ZombieProduce]] = {}
        # the fetches parked at each leader (the fetch purgatory)
        self._delayed_fetches: defaultdict[int, list[_DelayedFetch]] = defaultdict(list)
        self._fetchers: set[tuple[int, int]] = set()
        self._validated_epoch: dict[tuple[str, int, int], int] = {}
        self._validated: dict[tuple[int, int], int] = {}  # metadata version last checked
        self._followed_cache: dict[tuple[int, int], tuple[int, list[Partition]]] = {}
        # what truncations and lost disks removed: (topic, partition, broker, records, seq)
        self.truncated: list[tuple[str, int, int, Any, int]] = []
        # the purgatory's deadlines: (deadline, arrival number, request); one timer at a time,
        # at the earliest deadline of a waiting request (_timer_ms; inf when none is armed)
        self._deadlines: list[tuple[float, int, _DelayedProduce]] = []
        self._arrivals = 0
        self._waiting = 0  # delayed produces not answered yet
        self._timer = ExpirationTimer(runtime, self._expire)
        self._timer_ms = math.inf
        # the fetch purgatory's replica.fetch.wait.max.ms timers, in the order they fall due
        self._fetch_expiry = TimerQueue(runtime, REPLICA_FETCH_WAIT_MAX_MS, self._expire_fetch,
                                        _waits)
        self.cluster.metadata_listeners.append(self._answer_lost_fetches)
        self.retention = LogRetention(runtime)
        self.cleaner = LogCleaner(runtime)
        for broker_id in self.cluster.brokers:
            self.start_isr_expiration(broker_id)
            self.retention.start(broker_id)
            self.cleaner.start(broker_id)

    # -- the produce path -------------------------------------------------------------------

    def append(self, node: int, topic: str, partition: int, columns: dict[str, Any],
               size_bytes: int, producer_id: int, base_sequence: int, acks: str,
               timeout_ms: float, respond: Callable[[AppendResult], None],
               producer_epoch: int = 0, transactional: bool = False) -> None:
        """Broker ``node`` handles a request of one batch (a coordinator's own write):
        ``append_records`` with that batch alone."""
        self.append_records(node, [(topic, partition, columns, size_bytes, base_sequence,
                                    producer_epoch)], producer_id, acks, timeout_ms,
                            lambda _i, result: respond(result), transactional)

    def append_records(self, node: int, batches: list[ProduceBatch], producer_id: int,
                       acks: str, timeout_ms: float,
                       respond: Callable[[int, AppendResult], None],
                       transactional: bool = False, source: RecordSource | None = None) -> None:
        """Broker ``node`` handles a produce request: one batch per partition, each appended to
        the leader's log in turn (``ReplicaManager.appendRecords``, which takes the whole
        request, then ``Partition.appendRecordsToLeader`` for each partition).

        ``respond(i, result)`` answers batch ``i``: at once, or from the produce purgatory when
        acks=all waits for the followers. The follower fetches parked here are looked at once
        every batch is appended, as Kafka's ``addCompletePurgatoryAction`` leaves that check to
        the action queue run when the request is handled: a fetch it answers carries them all.
        A producer's request gives its records as indices into its buffer (``source``), which
        the log keeps rather than copying the records.

        A broker appends only to partitions it believes it leads. Usually that is the real
        leader; a *zombie* leader cut off from the controller still appends to its own log,
        which the real leader never sees — acks=1 writes it acknowledges are lost later.
        """
        topics = self.cluster.topics
        broker = self.cluster.brokers[node]
        now = self.runtime.now_ms  # the simulated clock stands still during the request
        all_acks = acks in ("all", "-1")
        trace = self.runtime.trace
        component = f"broker-{node}"
        replicated = False  # whether a batch went to a partition with followers
        for i, (topic, partition, batch_records, size_bytes, base_sequence,
                producer_epoch) in enumerate(batches):
            topic_state = topics.get(topic)
            part = (topic_state.partitions[partition] if topic_state is not None
                    else self.cluster.partition(topic, partition))  # raises UnknownTopicError
            records = len(batch_records) if source is not None else len(
                batch_records["record_id"])
            epoch = broker.leads.get((topic, partition))
            if not broker.alive or epoch is None:
                self._error(part, node, NOT_LEADER_OR_FOLLOWER, records, partial(respond, i))
                continue
            zombie = part.leader != node or epoch != part.leader_epoch
            # Partition.appendRecordsToLeader checks min.insync.replicas against the leader's
            # own ISR. A zombie's is known when the partition went offline as it was fenced (the
            # epoch after its own): the controller kept that ISR. Appending there anyway would
            # write records the zombie keeps if it is elected again, with their requests
            # unanswered (duplicates).
            isr_known = not zombie or (part.leader < 0 and epoch == part.leader_epoch - 1)
            if all_acks and isr_known and len(part.isr) < part.min_insync_replicas:
                self._error(part, node, NOT_ENOUGH_REPLICAS, records, partial(respond, i))
                continue
            if "compact" in config.cleanup_policies(part.config) and self._keyless_in_compacted(
                    part, (batch_records if source is None
                           else source.record_columns(batch_records))["record_id"]):
                self._error(part, node, INVALID_RECORD, records, partial(respond, i))
                continue
            log = part.logs[node]
            if transactional and producer_id not in log.transactions.ongoing:
                # KIP-890: a first transactional batch here must belong to an open transaction
                from sim.broker.transaction_coordinator import verify_transactional_append

                error = verify_transactional_append(self.cluster, producer_id, producer_epoch,
                                                    TopicPartition(topic, partition))
                if error:
                    self._error(part, node, error, records, partial(respond, i))
                    continue
            duplicate = None
            if base_sequence >= 0:  # an idempotent producer: ProducerStateManager decides
                duplicate, error = log.producer_state.analyze_and_validate(
                    producer_id, producer_epoch, base_sequence, records)
                if error is not None:  # out of order, or an old epoch: append nothing
                    self._error(part, node, error, records, partial(respond, i))
                    continue
            elif producer_id >= 0:  # a coordinator's transactional offsets: the epoch is checked
                error = log.producer_state.check_epoch(producer_id, producer_epoch)
                if error is not None:  # a fenced producer's late TxnOffsetCommit: append nothing
                    self._error(part, node, error, records, partial(respond, i))
                    continue
            if duplicate is not None:  # a retry of a batch the log already has: its offsets
                base, end = duplicate.first_offset, duplicate.last_offset + 1
            else:
                segments = len(log.segments)
                if part.config.get("message.timestamp.type") == "LogAppendTime":
                    columns = (batch_records if source is None
                               else source.record_columns(batch_records))
                    columns = {**columns, "timestamp_ms": np.full(records, int(now), np.int64)}
                    base = log.append_batch(columns, size_bytes, producer_id, epoch,
                                            base_sequence, producer_epoch,
                                            is_transactional=transactional)
                elif source is not None:
                    base = log.append_from(source, batch_records, size_bytes, producer_id, epoch,
                                           base_sequence, producer_epoch,
                                           is_transactional=transactional)
                else:
                    base = log.append_batch(batch_records, size_bytes, producer_id, epoch,
                                            base_sequence, producer_epoch,
                                            is_transactional=transactional)
                if len(log.segments) != segments:  # the append rolled a segment
                    self._emit_rolls(part, node, log, segments)
                end = base + records
                trace.emit(events.LOG_APPEND, now, component, node, topic, partition, base,
                           records, size_bytes, producer_id)
            if zombie:  # nobody fetches from it: acks=all times out, or ends with its claim
                if all_acks:
                    self._wait_as_zombie(node, part, timeout_ms, partial(respond, i))
                else:
                    respond(i, AppendResult(NONE, base))
                continue
            self.maybe_advance_high_watermark(part)
            if not all_acks or log.high_watermark >= end:
                respond(i, AppendResult(NONE, base))
            else:
                self._delay(part, node, base, end, records, timeout_ms, partial(respond, i), now)
            if len(part.replicas) > 1:
                replicated = True
                self._ensure_fetchers(part)
        if replicated:  # the fetches parked here see every batch of the request
            self._wake_fetchers(node)

    def _wait_as_zombie(self, node: int, part: Partition, timeout_ms: float,
                        respond: Callable[[AppendResult], None]) -> None:
        """An acks=all batch a zombie leader appended waits until it times out, or until the
        zombie learns it was deposed (``answer_deposed``)."""
        wait = _ZombieProduce(respond)
        waits = self._zombie_waits.setdefault((node, part.topic, part.partition), [])
        waits[:] = [w for w in waits if not w.done]
        waits.append(wait)
        wait.timer = self.runtime.env.timeout(timeout_ms)
        wait.timer.callbacks.append(lambda _e: wait.answer(AppendResult(REQUEST_TIMED_OUT)))

    def append_marker(self, node: int, topic: str, partition: int, producer_id: int,
                      producer_epoch: int, control_type: int, timeout_ms: float,
                      respond: Callable[[AppendResult], None]) -> None:
        """Broker ``node`` writes one transaction marker (``WriteTxnMarkers``, acks=all).

        A control batch of one record: it takes an offset, ends the producer's transaction
        in this partition (``sim.broker.transaction_index``) and is never shown to a consumer.
        Like any acks=all append it is refused while the ISR is below ``min.insync.replicas``
        (``Partition.appendRecordsToLeader``; the coordinator retries), and so is a marker
        from an older producer epoch than the partition knows.
        """
        part = self.cluster.partition(topic, partition)
        broker = self.cluster.brokers[node]
        epoch = broker.leads.get((topic, partition))
        if (not broker.alive or epoch is None or part.leader != node
                or epoch != part.leader_epoch):
            self._error(part, node, NOT_LEADER_OR_FOLLOWER, 1, respond)
            return
        if len(part.isr) < part.min_insync_replicas:
            self._error(part, node, NOT_ENOUGH_REPLICAS, 1, respond)
            return
        log = part.logs[node]
        error = log.producer_state.check_epoch(producer_id, producer_epoch)
        if error is not None:
            self._error(part, node, error, 1, respond)
            return
        now = self.runtime.now_ms
        columns = {"timestamp_ms": np.array([int(now)], np.int64),
                   "key_hash": np.array([control_type], np.int32),
                   "value_size": np.array([CONTROL_VALUE_BYTES], np.int32),
                   "record_id": np.array([-1], np.int64)}
        base = log.append_batch(columns, CONTROL_BATCH_BYTES, producer_id, epoch,
                                producer_epoch=producer_epoch, is_transactional=True,
                                is_control=True)
        self.runtime.trace.emit(events.LOG_APPEND, now, f"broker-{node}", node, topic,
                                partition, base, 1, CONTROL_BATCH_BYTES, producer_id)
        self.maybe_advance_high_watermark(part)
        if log.high_watermark >= base + 1:
            respond(AppendResult(NONE, base))
        else:
            self._delay(part, node, base, base + 1, 1, timeout_ms, respond, now)
        if len(part.replicas) > 1:
            self._wake_fetchers(node)
            self._ensure_fetchers(part)

    def _delay(self, part: Partition, node: int, base: int, required: int, records: int,
               timeout_ms: float, respond: Callable[[AppendResult], None], now: float) -> None:
        """Park an acks=all batch whose records end at ``required`` in the produce purgatory
        (``DelayedProduce``) until the high watermark reaches that, or it times out. ``node``
        leads; ``now`` is the simulated time in ms."""
        delayed = _DelayedProduce(part, required, base, respond, now + timeout_ms, node, records)
        self._delayed.setdefault((part.topic, part.partition), []).append(delayed)
        self._waiting += 1
        self._arrivals += 1
        heapq.heappush(self._deadlines, (delayed.deadline_ms, self._arrivals, delayed))
        self._arm_timer(now)

    def _answer(self, delayed: _DelayedProduce, result: AppendResult) -> None:
        delayed.done = True
        self._waiting -= 1
        if not self._waiting and self._timer_ms < math.inf:
            # nothing waits: the armed timer must not keep a run going (it will find nothing)
            self._timer.disarm()
            self._timer_ms = math.inf
        delayed.respond(result)

    def _arm_timer(self, now: float) -> None:
        """Keep one timer at the earliest deadline of a waiting request (``sim.broker.purgatory``:
        a timer disarmed before it fires costs no event). ``now`` is the simulated time in ms."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][2].done:
            heapq.heappop(deadlines)
        if not deadlines or deadlines[0][0] >= self._timer_ms:
            return
        self._timer_ms = deadlines[0][0]  # replaces a later armed deadline
        self._timer.arm(self._timer_ms - now)

    def _expire(self) -> None:
        """Requests whose timeout ran out get REQUEST_TIMED_OUT (``DelayedProduce`` expiry)."""
        self._timer_ms = math.inf
        now = self.runtime.now_ms
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            delayed = heapq.heappop(deadlines)[2]
            if not delayed.done:
                part = delayed.partition
                self.runtime.trace.emit(PRODUCE_ERROR, now, f"broker-{delayed.node}", part.topic,
                                       part.partition, delayed.node, REQUEST_TIMED_OUT,
                                       delayed.records)
                self._answer(delayed, AppendResult(REQUEST_TIMED_OUT))
        self._arm_timer(now)

    def _keyless_in_compacted(self, part: Partition, record_ids: Any) -> bool:
        """``LogValidator.validateKey``: a compacted topic refuses a batch with a record
        without a key ("Compacted topic cannot accept message without key"). ``append`` asks
        only for a compacted topic."""
        ids = np.asarray(record_ids, np.int64)
        ids = ids[ids >= 0]  # internal records (offset commits) have no producer record
        producers = ids >> RECORD_INDEX_BITS
        for pid in np.unique(producers):
            buffer = getattr(self.runtime.clients[int(pid)], "buffer", None)
            if buffer is None:  # not a producer's record: nothing known about its key
                continue
            index = ids[producers == pid] & ((1 << RECORD_INDEX_BITS) - 1)
            if (buffer.key_id[index] < 0).any():
                return True
        return False

    def _error(self, part: Partition, node: int, error: str, records: int,
               respond: Callable[[AppendResult], None]) -> None:
        self.runtime.trace.emit(PRODUCE_ERROR, self.runtime.now_ms, f"broker-{node}", part.topic,
                               part.partition, node, error, records)
        respond(AppendResult(error))

    def answer_deposed(self, node: int, part: Partition) -> None:
        """Broker ``node`` learnt that it no longer leads ``part``: the acks=all batches it
        appended as a zombie get NOT_LEADER_OR_FOLLOWER now, as Kafka's
        ``completeDelayedOperationsWhenNotPartitionLeader`` completes them when a leader
        becomes a follower (``Partition.checkEnoughReplicasReachOffset``: no leader log). The
        producer retries them at the leader at once, ahead of the batches it sends later.
        Their timeout timers, which SimPy cannot take back, no longer keep a run going (Kafka
        cancels a completed operation's timer)."""
        for wait in self._zombie_waits.pop((node, part.topic, part.partition), ()):
            if not wait.done:
                self.runtime.make_background(wait.timer)
            wait.answer(AppendResult(NOT_LEADER_OR_FOLLOWER))

    def fail_delayed(self, part: Partition, error: str) -> None:
        """Answer every waiting acks=all request of ``part`` with ``error``."""
        for delayed in self._delayed.pop((part.topic, part.partition), []):
            if not delayed.done:
                self._answer(delayed, AppendResult(error))

    def _check_delayed(self, part: Partition, hw: int, enough: bool) -> None:
        """Answer waiting requests the high watermark ``hw`` reached
        (``checkEnoughReplicasReachOffset``).

        Reached with the ISR at least ``min.insync.replicas`` (``enough``): success. Reached
        after the ISR shrank below it: NOT_ENOUGH_REPLICAS_AFTER_APPEND (the records are in the
        log, the producer is told they failed). Not reached: keep waiting, until the request
        times out.
        """
        key = (part.topic, part.partition)
        waiting = self._delayed.get(key)
        if not waiting:
            return
        for delayed in waiting:
            if delayed.done or hw >= delayed.required_offset:
                break
        else:  # nothing to answer (and none answered before): the list stays as it is
            return
        still = []
        for delayed in waiting:
            if delayed.done:
                continue
            if hw >= delayed.required_offset:
                self._answer(delayed, AppendResult(NONE, delayed.base_offset) if enough
                             else AppendResult(NOT_ENOUGH_REPLICAS_AFTER_APPEND))
            else:
                still.append(delayed)
        self._delayed[key] = still

    # -- the high watermark and the ISR -------------------------------------------------------

    def maybe_advance_high_watermark(self, part: Partition) -> None:
        """HW = min LEO over the ISR and the followers about to rejoin it; not while the ISR
        is below min.insync.replicas."""
        leader = part.leader
        if leader < 0:
            return
        isr = part.isr
        log = part.logs[leader]
        if len(isr) < part.min_insync_replicas:
            self._check_delayed(part, log.high_watermark, False)
            return
        new_hw = log.log_end_offset
        followers = part.followers
        for b in isr:
            if b != leader:
                offset = followers[b].log_end_offset
                if offset < new_hw:
                    new_hw = offset
        if len(isr) < len(part.replicas):  # a follower outside the ISR may be about to join it
            new_hw = self._wait_for_joining(part, new_hw)
        hw = log.high_watermark
        if new_hw > hw:
            log.high_watermark = new_hw
            hw = new_hw
            for delayed in self._delayed_fetches.get(leader, ()):  # a follower parked
                if not delayed.expiring and delayed.follower in followers and (  # earlier
                        part.logs[delayed.follower].high_watermark < new_hw):  # learns it
                    self._expire_later(delayed)
            if len(part.replicas) > 1:  # with one replica the HW simply follows the LEO
                self.runtime.trace.emit(HW_ADVANCE, self.runtime.now_ms,
                                       f"broker-{leader}", part.topic, part.partition,
                                       leader, new_hw)
        if self._waiting:  # else no acks=all request waits anywhere: nothing to answer
            self._check_delayed(part, hw, True)

    def _wait_for_joining(self, part: Partition, new_hw: int) -> int:
        """``new_hw``, held back to the log end of any follower outside the ISR that is caught
        up and may join it (``Partition.maybeIncrementLeaderHW``'s
        ``shouldWaitForReplicaToJoinIsr``): else a returning follower could chase a high
        watermark that moves on with every append and never join.

        Caught up is ``Replica.isCaughtUp``: at the leader's log end, or caught up within
        ``replica.lag.time.max.ms``. May join is ``Partition.isReplicaIsrEligible``: its
        registration is unfenced and belongs to the process of its last fetch (the broker
        epoch) — also while that process is down but not fenced yet.
        """
        now = self.runtime.now_ms
        lag_max = self.cluster.brokers[part.leader].config["replica.lag.time.max.ms"]
        controller = self.runtime.controller
        for b, state in part.followers.items():
            if (state.log_end_offset < new_hw and b not in part.isr
                    and now - state.last_caught_up_ms <= lag_max
                    and controller.isr_eligible(b, state.broker_epoch)):
                new_hw = state.log_end_offset
        return new_hw

    def set_isr(self, part: Partition, isr: list[int], reason: str) -> None:
        """Change the ISR (Kafka: AlterPartition to the controller) and re-check waiting acks."""
        if isr == part.isr:
            return
        part.isr = isr
        self.runtime.trace.emit(ISR_CHANGE, self.runtime.now_ms, f"broker-{part.leader}",
                               part.topic, part.partition, part.leader, str(isr), reason)
        self.cluster.metadata_changed()
        self.maybe_advance_high_watermark(part)

    def shrink_isr(self, now_ms: float, leader: int | None = None) -> None:
        """Drop followers that have not caught up within ``replica.lag.time.max.ms``.

        Checks the partitions ``leader`` leads (every leader's, if None).
        """
        for topic in self.cluster.topics.values():
            for part in topic.partitions:
                if part.leader < 0 or len(part.isr) <= 1 or leader not in (None, part.leader):
                    continue
                if not self.cluster.brokers[part.leader].alive or not (
                        self.cluster.network.connected(part.leader, Network.CONTROLLER)):
                    continue  # a dead leader checks nothing; a cut-off one cannot tell anyone
                lag_max = self.cluster.brokers[part.leader].config["replica.lag.time.max.ms"]
                leo = part.log.log_end_offset
                out = [b for b in part.isr if b != part.leader  # Replica.isCaughtUp
                       and part.followers[b].log_end_offset != leo
                       and now_ms - part.followers[b].last_caught_up_ms > lag_max]
                if out:
                    self.set_isr(part, [b for b in part.isr if b not in out],
                                 f"shrink: {out} not caught up within {lag_max} ms")

    def start_isr_expiration(self, broker_id: int) -> None:
        """Broker ``broker_id`` checks its ISRs every replica.lag.time.max.ms / 2 from now.

        Kafka's ReplicaManager schedules this "isr-expiration" task when the broker starts; it
        runs on an idle cluster too. Its timers are background ones: they keep no run going.
        """
        broker = self.cluster.brokers[broker_id]
        incarnation = broker.incarnation

        def tick(_event: object = None) -> None:
            if broker.incarnation != incarnation:
                return  # this process crashed; the restarted one has its own task
            if broker.alive and _event is not None:
                self.shrink_isr(self.runtime.now_ms, broker_id)
            timer = self.runtime.background_timeout(broker.config["replica.lag.time.max.ms"] / 2)
            timer.callbacks.append(tick)

        tick()

    def on_leadership_change(self, part: Partition) -> None:
        """Followers start fetching from the new leader; fetches parked at the brokers
        involved are answered, so that their fetchers re-check what they follow."""
        for broker in part.replicas:
            self._wake_fetchers(broker, force=True)
        if part.leader >= 0:
            self._ensure_fetchers(part)

    # -- followers fetching -------------------------------------------------------------------

    def _ensure_fetchers(self, part: Partition) -> None:
        for follower in part.replicas:
            if follower != part.leader and (follower, part.leader) not in self._fetchers:
                self._fetchers.add((follower, part.leader))
                self.runtime.env.process(self._fetcher(follower, part.leader))

    def _wake_fetchers(self, leader: int, force: bool = False) -> None:
        """Complete the fetches parked at ``leader`` that can now be answered
        (``DelayedFetch.tryComplete``, which the leader runs after each append), or all of
        them when ``force``: a leadership change."""
        parked = self._delayed_fetches.get(leader)
        if not parked:
            return
        waiting = []
        for delayed in parked:
            if force or self._fetch_can_complete(delayed):
                self._complete_fetch(delayed)
            else:
                waiting.append(delayed)
        self._delayed_fetches[leader] = waiting

    def _fetch_can_complete(self, delayed: _DelayedFetch) -> bool:
        """Whether a parked fetch has an answer: one of its partitions has records past the
        fetch offset (``replica.fetch.min.bytes`` 1), or its leader or epoch moved (cases
        A and E of ``DelayedFetch.tryComplete``). A leader that died or restarted answers
        nothing: the follower sees the connection close. A fetch session that changed (a
        partition to follow was added) is answered too, so the next request carries it; Kafka
        would send that request once the parked one expired, ``replica.fetch.wait.max.ms``
        later at most."""
        leader = delayed.leader
        broker = self.cluster.brokers[leader]
        if not broker.alive or broker.incarnation != delayed.incarnation:
            return True
        for part, offset, epoch in delayed.request:
            if (part.leader != leader or part.leader_epoch != epoch
                    or part.logs[leader].log_end_offset > offset):
                return True
        parts = self._followed(delayed.follower, leader)
        if parts is not delayed.parts:  # the metadata changed: did the session?
            if len(parts) != len(delayed.parts) or any(
                    a is not b for a, b in zip(parts, delayed.parts, strict=True)):
                return True
            delayed.parts = parts
        return False

    def _complete_fetch(self, delayed: _DelayedFetch, expired: bool = False) -> None:
        """``DelayedFetch.onComplete``: the leader reads its log now and sends the response,
        which reaches the follower one network latency later. The leader learnt the fetch
        offsets when the request arrived; completing it does not count as a new fetch (Kafka
        reads with ``updateFetchState`` off), though the ones Kafka's follower would have sent
        while it was parked do (``_count_refetches``)."""
        if delayed.done:
            return
        delayed.done = True
        leader = delayed.leader
        broker = self.cluster.brokers[leader]
        if not broker.alive or broker.incarnation != delayed.incarnation:
            delayed.succeed(None)  # nobody answers: the fetcher starts over
            return
        self._count_refetches(delayed)
        behind = delayed.follower if expired else None
        delayed.send(self._read_fetch(leader, delayed.request, behind), broker.latency_ms)

    def _count_refetches(self, delayed: _DelayedFetch) -> None:
        """The fetches Kafka's follower would have sent while this one was parked.

        In Kafka a parked fetch expires after ``replica.fetch.wait.max.ms`` and the follower
        sends the next one at once, so a caught-up follower's fetch reaches the leader every
        wait plus a round trip, and each one moves its ``lastFetchTimeMs`` and
        ``lastCaughtUpTimeMs`` (``Replica.updateFetchStateOrThrow``: the fetch offset is the
        leader's log end offset, as nothing was appended meanwhile). The lab parks such a
        fetch without a timer, so the leader counts those fetches when the parked one is
        answered: by an append, a leadership change, or because the follower died or was cut
        off from the leader (``_answer_lost_fetches``), after which no more came.
        """
        period = REPLICA_FETCH_WAIT_MAX_MS + 2 * self.cluster.brokers[delayed.leader].latency_ms
        refetches = (self.runtime.now_ms - delayed.arrived_ms) // period
        if refetches < 1:
            return
        last_ms = delayed.arrived_ms + refetches * period
        leader, follower = delayed.leader, delayed.follower
        for part, offset, epoch in delayed.request:
            if part.leader != leader or part.leader_epoch != epoch:
                continue  # the follower's state there starts over with the new leader
            state = part.followers.get(follower)
            if state is not None and state.log_end_offset == offset:
                state.last_fetch_ms = last_ms
                state.last_caught_up_ms = max(state.last_caught_up_ms, last_ms)

    def _answer_lost_fetches(self) -> None:
        """A follower that died or was cut off from its leader sends no more fetches: a fetch
        it parked there is answered now, to nobody (the answer is lost on the way, as Kafka's
        would be when it expired), and its fetcher starts over once the follower can reach
        the leader again. Runs at every cluster change, which faults announce."""
        brokers = self.cluster.brokers
        connected = self.cluster.network.connected
        for leader, parked in self._delayed_fetches.items():
            lost = [delayed for delayed in parked if not delayed.done and (
                not brokers[delayed.follower].alive or not connected(delayed.follower, leader))]
            if lost:
                self._delayed_fetches[leader] = [d for d in parked if d not in lost]
                for delayed in lost:
                    self._complete_fetch(delayed)

    def _expire_later(self, delayed: _DelayedFetch) -> None:
        """Answer a parked fetch after ``replica.fetch.wait.max.ms`` if nothing completes it
        sooner: its empty answer carries news (the leader's high watermark, or one more
        chance for the leader to add the follower back to the ISR). A fetch that the next
        append answers first costs no timer event (``sim.broker.purgatory.TimerQueue``)."""
        if delayed.expiring:
            return
        delayed.expiring = True
        self._fetch_expiry.add(delayed)

    def _expire_fetch(self, delayed: _DelayedFetch) -> None:
        """``replica.fetch.wait.max.ms`` ran out: the leader answers with what it has."""
        if delayed.done:
            return
        self._delayed_fetches[delayed.leader].remove(delayed)
        self._complete_fetch(delayed, expired=True)

    def _read_fetch(self, leader: int, request: list[tuple[Partition, int, int]],
                    behind: int | None = None
                    ) -> list[tuple[Partition, int, list[Batch], int, int, str | None, int]]:
        """The leader's answer to a fetch: data for each partition it still leads in the
        requested epoch that has records past the fetch offset. The answer sent when
        ``replica.fetch.wait.max.ms`` ran out (for follower ``behind``) also carries the
        partitions whose high watermark that follower lacks (a fetch session's response
        includes a partition whose high watermark changed, KIP-227)."""
        answer = []
        for part, offset, epoch in request:
            if part.leader != leader or part.leader_epoch != epoch:
                continue
            log = part.logs[leader]
            if log.log_end_offset > offset or (
                    behind is not None and log.high_watermark > part.logs[behind].high_watermark):
                answer.append(self._read_for_follower(part, log, epoch, offset))
        return answer

    def _followed(self, follower: int, leader: int) -> list[Partition]:
        """Partitions ``follower`` replicates from ``leader`` (cached per metadata version).

        The follower fetches from the leader it knows, in the leader epoch it knows
        (``Controller.leader_known_by``): cut off from the controller, those of its last
        metadata. A fetch to a broker that does not lead in that epoch returns no records
        (``Partition.getLocalLog``: FENCED_LEADER_EPOCH for an older epoch than the broker's,
        UNKNOWN_LEADER_EPOCH for a newer one, NOT_LEADER_OR_FOLLOWER for a broker that no longer
        leads), so the partition is not listed here; a follower that hears the controller stops
        when the controller took the partition offline."""
        version = self.cluster.metadata_version
        cached = self._followed_cache.get((follower, leader))
        if cached is None or cached[0] != version:
            claims = self.cluster.brokers[follower].leads
            leads = self.cluster.brokers[leader].leads
            known_by = self.runtime.controller.leader_known_by
            parts = [p for t in self.cluster.topics.values() for p in t.partitions
                     if p.leader == leader and follower in p.replicas and follower != leader
                     and (p.topic, p.partition) not in claims  # a zombie leader fetches nothing
                     and leads.get((p.topic, p.partition)) == p.leader_epoch
                     and known_by(follower, p) == (leader, p.leader_epoch)]
            cached = (version, parts)
            self._followed_cache[(follower, leader)] = cached
        return cached[1]

    def _fetcher(self, follower: int, leader: int) -> Generator[Any, Any, None]:
        """Kafka's ReplicaFetcherThread for one (follower, leader) pair.

        Like Kafka's incremental fetch sessions (KIP-227), a fetch only carries the partitions
        whose position changed, that lag the leader or whose follower is out of the ISR; idle,
        caught-up ones cost nothing. A fetch that finds nothing new waits at the leader
        (``_DelayedFetch``) until the leader appends, or leadership moves: then the leader
        answers at once and only the response travels back.
        """
        env = self.runtime.env
        cluster = self.cluster
        brokers = cluster.brokers
        network = cluster.network
        key = (follower, leader)
        # the metadata version ``parts`` was looked up for, and the one the follower last
        # checked its logs against the leader's at (kept in ``_validated`` for a later fetcher)
        version = -1
        validated = self._validated.get(key)
        while True:
            if cluster.metadata_version != version:  # else the same list as before
                version = cluster.metadata_version
                parts = self._followed(follower, leader)
            if not brokers[follower].alive or not parts:
                self._fetchers.discard(key)
                return
            if not brokers[leader].alive or not network.connected(follower, leader):
                yield cluster.next_change()  # nothing to do until the cluster changes
                continue
            if validated != version:
                for part in parts:
                    self._truncate_if_diverged(part, follower)
                self._validated[key] = validated = cluster.metadata_version
            request = [(p, p.logs[follower].log_end_offset, p.leader_epoch) for p in parts]
            latency = brokers[leader].latency_ms
            yield env.timeout(latency)  # the fetch request travels to the leader
            if not brokers[leader].alive or not network.deliver(follower, leader):
                yield env.timeout(REPLICA_FETCH_BACKOFF_MS)
                continue
            now = float(env.now)  # the kernel's now_ms
            readable = out_of_isr = False
            for part, offset, epoch in request:
                if part.leader != leader or part.leader_epoch != epoch:
                    continue
                state = part.followers.get(follower)
                log = part.logs[leader]
                if state is None or offset != state.log_end_offset or (
                        offset < log.log_end_offset or follower not in part.isr):
                    self._on_fetch(part, follower, offset, state, now)
                    if not readable:  # (_on_fetch appends nothing and moves no leadership)
                        readable = log.log_end_offset > offset
                    if not out_of_isr:
                        out_of_isr = follower not in part.isr
                else:  # caught up and in the ISR: only the fetch's time is new (Kafka updates
                    # every partition of the fetch session, those the request left out too)
                    state.last_fetch_ms = state.last_caught_up_ms = now
            if readable:
                data = yield env.timeout(latency, self._read_fetch(leader, request))
            else:
                # Parked at the leader until it appends or leadership moves. Kafka also answers
                # after replica.fetch.wait.max.ms with nothing but the leader's high watermark.
                # The lab arms that expiry only when the answer carries news: a follower left
                # out of an ISR (its leader could not reach the controller when it caught up)
                # fetches again, each fetch being the leader's chance to add it back; a
                # follower whose high watermark is behind the leader's learns it (else, once
                # producers stop, its last stable offset would stay below the last marker).
                # A caught-up follower in the ISR waits without a timer, so an idle cluster
                # simply has no events; the leader counts the fetches Kafka's follower would
                # have sent meanwhile when it answers (_count_refetches).
                news = out_of_isr
                if not news:
                    for part, _, _ in request:
                        if part.logs[follower].high_watermark < part.log.high_watermark:
                            news = True
                            break
                delayed = _DelayedFetch(env, follower, leader, brokers[leader].incarnation,
                                        parts, request, expiring=news)
                self._delayed_fetches[leader].append(delayed)
                if news:  # as _expire_later does for a fetch parked earlier
                    self._fetch_expiry.add(delayed)
                data = yield delayed
                if data is None:  # the leader went away while the fetch waited there
                    continue
            if not brokers[follower].alive:
                self._fetchers.discard((follower, leader))
                return
            if not network.deliver(leader, follower):
                continue
            built = True
            for answer in data:  # (partition, leader epoch, batches, ...): _read_for_follower
                if not self._on_fetch_response(follower, leader, *answer):
                    built = False  # the remote tier could not rebuild a log's start
            if not built:  # retry later
                yield env.timeout(REPLICA_FETCH_BACKOFF_MS)

    def _on_fetch(self, part: Partition, follower: int, fetch_offset: int,
                  state: FollowerState | None, now: float) -> None:
        """The leader learns the follower's position (``Replica.updateFetchState``).

        ``state`` is what it knew of the follower (None: nothing yet); ``now`` the time in ms.
        """
        if state is None:
            state = part.followers[follower] = FollowerState()
        log = part.logs[part.leader]  # the caller checked that the partition has a leader
        leader_leo = log.log_end_offset
        if fetch_offset >= leader_leo:
            state.last_caught_up_ms = now
        elif fetch_offset >= state.last_fetch_leader_leo:  # never earlier than it was: the
            # time a new leader gave it (Replica.resetReplicaState) outlives a lagging fetch
            state.last_caught_up_ms = max(state.last_caught_up_ms, state.last_fetch_ms)
        state.last_fetch_leader_leo = leader_leo
        state.last_fetch_ms = now
        state.log_end_offset = fetch_offset
        state.broker_epoch = self.cluster.brokers[follower].incarnation
        if (follower not in part.isr and self.runtime.controller.may_join_isr(follower)
                and self.cluster.network.connected(part.leader, Network.CONTROLLER)
                and fetch_offset >= log.high_watermark
                and fetch_offset >= log.end_offset_for_epoch(part.leader_epoch - 1)):
            self.set_isr(part, [*part.isr, follower], f"expand: {follower} caught up")
        self.maybe_advance_high_watermark(part)

    def _read_for_follower(self, part: Partition, log: PartitionLog, epoch: int, offset: int
                           ) -> tuple[Partition, int, list[Batch], int, int, str | None, int]:
        """The leader's answer for one partition of a follower's fetch, read from ``log``, the
        leader's: batches from ``offset``, its high watermark and log start offset (of the
        whole log, remote tier included), an error for an offset a tiered leader no longer has
        on disk, and its local log start offset."""
        if self.cluster.remote_tier is None:  # no tiered topics: the local log is the whole log
            start = log.log_start_offset
            return (part, epoch, log.batches_from(offset, REPLICA_FETCH_MAX_BYTES),
                    log.high_watermark, start, None, start)
        error = remote_log_manager.follower_fetch_error(self.cluster, part, offset)
        batches = [] if error else log.batches_from(offset, REPLICA_FETCH_MAX_BYTES)
        return (part, epoch, batches, log.high_watermark,
                remote_log_manager.log_start_offset(self.cluster, part), error,
                log.log_start_offset)

    def _on_fetch_response(self, follower: int, leader: int, part: Partition, leader_epoch: int,
                           batches: list[Batch], leader_hw: int, leader_start: int,
                           error: str | None = None, leader_local_start: int = 0) -> bool:
        """The follower appends what it fetched and learns the leader's HW and log start.

        A fetch offset below the leader's log start offset is OFFSET_OUT_OF_RANGE: the follower
        can never get those records, so it empties its log and starts at the leader's start
        (``ReplicaFetcherThread`` → ``truncateFullyAndStartAt``). For a tiered topic an offset
        below the leader's *local* log start is answered with an error instead, and the
        follower builds its log's start from the remote tier (``_rebuild_from_remote_tier``).
        False when that failed and the fetcher should back off.
        """
        if part.leader != leader or part.leader_epoch != leader_epoch:
            return True  # leadership moved while the response travelled
        log = part.logs[follower]
        if error is not None:
            return self._rebuild_from_remote_tier(part, follower, error, leader_local_start)
        if leader_start > log.log_end_offset:
            gone = log.segments[:-1] + ([log.active_segment] if len(log) else [])
            log.truncate_fully_and_start_at(leader_start)
            self.retention.record(part, follower, [(s, "fetch offset out of range")
                                                   for s in gone])
        end = log.log_end_offset
        # the batches are in offset order: usually all of them are past the log end
        usable = (batches if not batches or batches[0].base_offset >= end
                  else [b for b in batches if b.base_offset >= end])
        if usable and end < part.logs[leader].log_start_offset:
            # The leader's retention deleted the fetched batches while the answer travelled.
            # Kafka's answer carries their bytes (a deleted segment's file lingers for
            # file.delete.delay.ms, LocalLog.deleteSegmentFiles), so its follower appends them
            # and drops them at its next retention pass; the lab's answer names batches whose
            # records are copied from the leader's log on arrival, so the follower drops it
            # and its next fetch meets the leader's new log start (OFFSET_OUT_OF_RANGE, or
            # OFFSET_MOVED_TO_TIERED_STORAGE for a tiered topic).
            usable = []
        if usable and usable[0].base_offset == end:
            segments = len(log.segments)
            log.copy_batches_from(part.logs[leader], usable)
            if len(log.segments) != segments:  # the copy rolled a segment
                self._emit_rolls(part, follower, log, segments)
        hw = min(leader_hw, log.log_end_offset)
        if hw != log.high_watermark:  # (the assignment alone costs a call of _LogPosition)
            log.high_watermark = hw
        if leader_start > log.log_start_offset:  # the leader deleted segments (seldom)
            deleted = log.maybe_increment_log_start_offset(leader_start)
            if deleted:
                self.retention.record(part, follower, [(s, LOG_START_OFFSET) for s in deleted])
        return True

    def _rebuild_from_remote_tier(self, part: Partition, follower: int, error: str,
                                  leader_local_start: int) -> bool:
        """OFFSET_MOVED_TO_TIERED_STORAGE (or OFFSET_OUT_OF_RANGE below the log start offset)
        for a tiered topic: Kafka's ``TierStateMachine`` (``sim.broker.remote_log_manager``)."""
        log = part.logs[follower]
        fetch_offset = log.log_end_offset
        built = remote_log_manager.build_remote_log_aux_state(self.cluster, part, follower,
                                                              leader_local_start)
        next_offset = built[0] if built is not None else -1
        self.runtime.trace.emit(remote_log_manager.REMOTE_AUX_STATE, self.runtime.now_ms,
                                f"broker-{follower}", part.topic, part.partition, follower,
                                fetch_offset, error, next_offset)
        if built is None:
            return False
        self.retention.record(part, follower, [(s, "offset moved to tiered storage")
                                               for s in built[1]])
        return True

    def _emit_rolls(self, part: Partition, node: int, log: PartitionLog, before: int) -> None:
        """A ``log.segment.roll`` event for each segment an append started."""
        if len(log.segments) == before:  # the usual case: the append rolled nothing
            return
        for segment in log.segments[before:]:
            self.runtime.trace.emit(SEGMENT_ROLL, self.runtime.now_ms, f"broker-{node}",
                                    part.topic, part.partition, node, segment.base_offset,
                                    "append")

    def _truncate_if_diverged(self, part: Partition, follower: int) -> None:
        """Before fetching from a new leader, drop what the leader does not have (KIP-279)."""
        key = (part.topic, part.partition, follower)
        if self._validated_epoch.get(key) == part.leader_epoch:
            return
        self._validated_epoch[key] = part.leader_epoch
        end = truncation_offset(part.log, part.leader_epoch, part.logs[follower])
        if end < part.logs[follower].log_end_offset:
            self.truncate(part, follower, end)

    def truncate(self, part: Partition, broker: int, offset: int) -> None:
        """Truncate ``broker``'s replica of ``part`` to ``offset`` and record what was lost."""
        log = part.logs[broker]
        epoch = log.latest_epoch
        dropped = log.truncate_to(offset)
        if len(dropped):
            self.truncated.append((part.topic, part.partition, broker, dropped,
                                   len(self.runtime.trace)))
            self.runtime.trace.emit(TRUNCATE, self.runtime.now_ms, f"broker-{broker}", part.topic,
                                   part.partition, broker, offset, len(dropped), epoch)


UNDEFINED = -1  # Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET


def end_offset_for(epochs: list[tuple[int, int]], log_end_offset: int,
                   requested: int) -> tuple[int, int]:
    """Kafka's ``LeaderEpochFileCache.endOffsetFor``: where ``requested`` ends in a log.

    ``epochs`` is the log's leader epoch cache of ``(epoch, start offset)``. Returns the largest
    epoch not above ``requested`` (``requested`` itself if the cache has none that old) with the
    start offset of the first later epoch, or the log end offset if ``requested`` is the latest;
    ``(UNDEFINED, UNDEFINED)`` if the cache knows no later epoch.
    """
    if requested < 0 or not epochs:
        return UNDEFINED, UNDEFINED
    if epochs[-1][0] == requested:
        return requested, log_end_offset
    higher = next((start for epoch, start in epochs if epoch > requested), None)
    if higher is None:
        return UNDEFINED, UNDEFINED
    floor = [epoch for epoch, _ in epochs if epoch <= requested]
    return (floor[-1] if floor else requested), higher


def offsets_for_leader_epoch(part: Partition, requested: int) -> tuple[int, int]:
    """The leader's answer to OffsetsForLeaderEpoch for ``requested``: ``(epoch, end offset)``.

    ``end_offset_for`` on the leader's epoch cache, which holds the current leader epoch from
    the election on, at the log end offset then (as ``truncation_offset`` reads it). A
    consumer validating its position after a leader change asks this (KIP-320).
    """
    log = part.log
    epochs = log.epochs
    if log.latest_epoch < part.leader_epoch:
        epochs = [*epochs, (part.leader_epoch, log.log_end_offset)]
    return end_offset_for(epochs, log.log_end_offset, requested)


def truncation_offset(leader: PartitionLog, leader_epoch: int, follower: PartitionLog) -> int:
    """Where a follower truncates before fetching from ``leader`` (KIP-101, KIP-279).

    Kafka's ``AbstractFetcherThread.getOffsetTruncationState``: the follower asks where its
    latest epoch ends in the leader's log. If the leader answers with that epoch, the follower
    keeps up to the smaller of the two end offsets. If it answers with an earlier epoch (it
    never had the follower's latest), the follower truncates to where it ends that earlier
    epoch itself and asks again. A leader's cache holds its current ``leader_epoch`` from the
    moment it was elected, at its log end offset then.

    Worked example: follower epochs [(0, 0), (2, 100)], LEO 150; leader epochs [(0, 0),
    (1, 80), (3, 120)]. Asked for epoch 2 the leader answers (1, 120); the follower ends epoch 1
    at 100 (its epoch 0 runs to 100), truncates to 100 and asks for epoch 0; the leader answers
    (0, 80): the follower keeps offsets 0–79, as its 80–99 are not the leader's epoch-1 records.
    """
    leader_epochs = leader.epochs
    if leader.latest_epoch < leader_epoch:
        leader_epochs = [*leader_epochs, (leader_epoch, leader.log_end_offset)]
    epochs = follower.epochs
    end = follower.log_end_offset
    while epochs:
        answer_epoch, answer_end = end_offset_for(leader_epochs, leader.log_end_offset,
                                                  epochs[-1][0])
        if answer_end == UNDEFINED:
            return end
        own_epoch, own_end = end_offset_for(epochs, end, answer_epoch)
        if own_end == UNDEFINED:
            return min(answer_end, end)
        if own_epoch == answer_epoch:
            return min(own_end, answer_end, end)
        end = min(own_end, end)
        epochs = [(epoch, start) for epoch, start in epochs if start < end]
    return end
