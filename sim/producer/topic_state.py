"""What a producer keeps per topic (Kafka's ``RecordAccumulator.TopicInfo``).

The topic's batch queues (``RecordAccumulator``), its built-in sticky partitioner, the record
streams waiting to be appended, and when each partition next has a sendable batch.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.partitioners import BuiltInPartitioner
from sim.producer.accumulator import RecordAccumulator
from sim.producer.streams import RecordStream

if TYPE_CHECKING:
    from sim.producer import Producer


class TopicState:
    """What the producer keeps per topic: accumulator, built-in partitioner, record streams."""

    def __init__(self, producer: Producer, topic_id: int, name: str) -> None:
        topic = producer.cluster.topic(name)
        self.producer = producer
        self.topic_id = topic_id
        self.name = name
        self.partitions = len(topic.partitions)
        self.replication_factor = topic.replication_factor
        self.accumulator = RecordAccumulator(self.partitions, producer.config["batch.size"],
                                             producer.buffer)
        self.builtin = BuiltInPartitioner(name, max(1, producer.config["batch.size"]),
                                          producer.random)
        self.keyed: dict[int, RecordStream] = {}
        self.sticky: RecordStream | None = None
        self.per_record: RecordStream | None = None
        self.first_calls: deque[int] = deque()  # partition() of per_record's next records
        self.custom_pending: RecordStream | None = None  # for a Kafka 4.0 custom partitioner
        self.stats_version = -1  # accumulator version the adaptive weights came from
        self.sticky_wake_ms = -math.inf  # before this, key-less records change nothing
        self._sticky_key: tuple[int, int, int, int] | None = None
        self._sticky_wake = math.inf
        self.next_ready = [math.inf] * self.partitions
        self.seen = [False] * self.partitions
        self.partition_table = np.empty(0, np.int32)
        self._leaders: list[int] = []
        self._leaders_version = -1
        self.linger_ms = producer.config["linger.ms"]
        self.batch_room = self.accumulator.new_batch_room

    def leader(self, p: int) -> int:
        return self.leaders()[p]

    def leaders(self) -> list[int]:
        """The broker this producer sends each partition to, cached until metadata changes.

        Normally the real leader. A producer that cannot reach it learns its metadata from the
        brokers it can reach — and a broker cut off from the controller still claims the
        partitions it led (a zombie leader), so the producer writes there.
        """
        cluster = self.producer.cluster
        if self._leaders_version != cluster.metadata_version:
            self._leaders = [self._leader_seen(part)
                             for part in cluster.topic(self.name).partitions]
            self._leaders_version = cluster.metadata_version
        return self._leaders

    def _leader_seen(self, part: Any) -> int:
        cluster = self.producer.cluster
        client = self.producer.client_id
        if part.leader >= 0 and cluster.network.connected(client, part.leader):
            return part.leader
        claims = [(epoch, broker_id) for broker_id, broker in cluster.brokers.items()
                  if broker.alive and cluster.network.connected(client, broker_id)
                  and (epoch := broker.leads.get((part.topic, part.partition))) is not None]
        return max(claims)[1] if claims else part.leader

    def advance_keyed(self, p: int, now_ms: float) -> None:
        """Append this partition's keyed records sent up to ``now_ms`` (appended lazily)."""
        stream = self.keyed.get(p)
        if stream is None or stream.exhausted:
            return
        end = stream.end_before(now_ms)
        if end > stream.pos:
            idx, cs, cs_base = stream.take(end)
            stream.pos = end  # before append refreshes the ready time from the stream's position
            self.append(p, idx, cs=cs, cs_base=cs_base)

    def append(self, p: int, idx: np.ndarray, max_bytes: float = math.inf,
               one_batch: bool = False, cs: np.ndarray | None = None,
               cs_base: int = 0) -> tuple[int, int]:
        """``RecordAccumulator.append`` to partition ``p``, then refresh its ready time."""
        self.seen[p] = True
        result = self.accumulator.append(p, idx, max_bytes, one_batch, cs, cs_base)
        self.refresh(p)
        return result

    def refresh(self, p: int) -> None:
        """Recompute when partition ``p`` next has a sendable batch."""
        dq = self.accumulator.deques[p]
        ready = dq[0].ready_ms(self.linger_ms) if dq else math.inf
        stream = self.keyed.get(p)
        if len(dq) <= 1 and stream is not None and stream.pos < len(stream.idx):
            # only the head batch is ever sent: future records matter while it is the open one
            last = dq[-1] if dq else None
            if last is None or last.is_full:  # the next record opens a batch
                ready = min(ready, float(stream.t[stream.pos]) + self.linger_ms,
                            stream.time_when_overflowing(self.batch_room))
            else:
                room = self.accumulator.room(p)
                ready = min(ready, stream.time_when_overflowing(room))
        self.next_ready[p] = ready

    def ready_candidates(self, now_ms: float, flushing: bool) -> list[int]:
        """Partitions that may have a sendable head batch now (keyed records appended first)."""
        if not flushing and min(self.next_ready) > now_ms:
            return []  # the usual pass: nothing is due yet
        out = []
        for p, ready_ms in enumerate(self.next_ready):
            if ready_ms <= now_ms or (flushing and self.accumulator.deques[p]):
                if self.keyed:
                    self.advance_keyed(p, now_ms)
                out.append(p)
        return out

    def next_wakeup_ms(self, blocked: set[int]) -> float:
        """Earliest time something in this topic may become sendable."""
        leaders = self.leaders()
        if blocked or -1 in leaders:  # busy brokers and leaderless partitions cannot send
            wake = min([t for t, leader in zip(self.next_ready, leaders, strict=True)
                        if leader >= 0 and leader not in blocked], default=math.inf)
        else:
            wake = min(self.next_ready)
        transactions = self.producer.transactions
        if transactions is not None and wake <= self.producer.kernel.now_ms:
            # a head batch idempotence holds back waits for an answer, not for the clock
            deques = self.accumulator.deques
            wake = min([t for p, (t, leader) in enumerate(zip(self.next_ready, leaders,
                                                                strict=True))
                        if leader >= 0 and leader not in blocked and not (
                            deques[p] and self._held_back(p))],
                       default=math.inf)
        if self.sticky is not None and not self.sticky.exhausted:
            self.sticky_wake_ms = self._sticky_wakeup_ms()
            wake = min(wake, self.sticky_wake_ms)
        if self.per_record is not None and not self.per_record.exhausted:
            wake = min(wake, self._per_record_wakeup_ms(leaders, blocked))
        if self.custom_pending is not None and not self.custom_pending.exhausted:
            # partition the next records before they are sent (Producer._partition_ahead)
            wake = min(wake, self.custom_pending.next_time() - self.producer.custom.ahead_ms / 2)
        return wake

    def _held_back(self, p: int) -> bool:
        """Whether the head batch of ``p`` waits for an answer: idempotence's sequences, or
        AddPartitionsToTxn for a transactional producer."""
        tp = (self.name, p)
        transactions = self.producer.transactions
        txn = self.producer.txn
        return (transactions is not None
                and transactions.should_stop_drain(tp, self.accumulator.deques[p][0])) or (
            txn is not None and tp not in txn.partitions)

    def _per_record_wakeup_ms(self, leaders: list[int], blocked: set[int]) -> float:
        """Earliest time records waiting for a per-record partitioner may make a batch sendable.

        They are partitioned when the sender next takes them in, each as it would have been on
        arrival: no sender pass in between would have found anything to send. Any of them may
        go to any partition whose leader can take a request, and there open a batch (sendable
        ``linger.ms`` later) or fill the open batch with the least room. While no leader can
        take a request, the next response wakes the sender anyway.
        """
        stream = self.per_record
        assert stream is not None
        sendable = [p for p, leader in enumerate(leaders) if leader >= 0 and leader not in blocked]
        if not sendable:
            return math.inf
        if self.producer.flushing:  # every batch is sendable at once
            return stream.next_time()
        if self.linger_ms <= 0:  # so is a new batch: it matters where each record goes
            return self.producer.custom.look_ahead(self, set(sendable))
        acc = self.accumulator
        room = self.batch_room
        for p in sendable:
            batch = acc.open_batch(p)
            if batch is not None:
                room = min(room, acc.room(p))
        return min(stream.next_time() + self.linger_ms,
                   stream.time_when_overflowing(max(room - 1, 0)))

    def _sticky_wakeup_ms(self) -> float:
        """Earliest time the sticky route can fill a batch, open one, or switch partition.

        Kafka's producer wakes its sender whenever an append fills a batch or opens a new one,
        and every sender pass refreshes the adaptive weights, so these wake-ups are kept even
        when the broker has no room for another request.
        """
        stream = self.sticky
        assert stream is not None
        p = self.builtin.current
        if p is None:
            return stream.next_time()
        produced = self.builtin.produced_bytes
        room = self.accumulator.room(p)
        key = (stream.pos, p, produced, room)
        if key == self._sticky_key:  # nothing moved since the last pass
            return self._sticky_wake
        batch_size = max(1, self.producer.config["batch.size"])
        switch_bytes = batch_size - produced if produced < batch_size else 2 * batch_size - produced
        # the earlier of "switch point reached" and "open batch overflows": the smaller room
        wake = stream.time_when_overflowing(min(switch_bytes - 1, max(room - 1, 0)))
        if self.accumulator.open_batch(p) is None:
            wake = min(wake, stream.next_time() + self.linger_ms)
        self._sticky_key, self._sticky_wake = key, wake
        return wake
