"""What a producer keeps per topic (Kafka's ``RecordAccumulator.TopicInfo``).

The topic's batch queues (``RecordAccumulator``), its built-in sticky partitioner, the record
streams waiting to be appended, and when each partition next has a sendable batch.

Kafka's ``RecordAccumulator.ready`` looks at every partition on every sender pass. The lab keeps
the partitions in a heap by the time their head batch becomes sendable (``ReadyTimes``), so a
pass touches only the partitions that are due: its cost does not grow with the partition count.
A topic of fewer than ``SCAN_BELOW`` partitions keeps only the times and scans them
(``ScannedReadyTimes``).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.partitioners import BuiltInPartitioner
from sim.producer.accumulator import RecordAccumulator
from sim.producer.streams import RecordStream

if TYPE_CHECKING:
    from sim.producer import Producer


SCAN_BELOW = 32
"""Heaps this small are scanned whole by ``ReadyTimes.due`` and ``earliest_where``: fewer
steps than a walk down the heap or a search in time order (a push and pop per partition).
A topic with fewer partitions than this keeps no heap at all (``ScannedReadyTimes``)."""


class ReadyTimes:
    """When each partition next has a sendable batch, kept in a binary heap of partitions.

    ``times[p]`` is partition ``p``'s ready time (``inf`` when nothing is due); the heap holds
    the partitions with a finite time and ``slot[p]`` where ``p`` sits in it, so a changed time
    moves its partition up or down in place (no stale entries). The earliest time is the root;
    the partitions due by some time are the heap's subtree of times at or before it.
    """

    __slots__ = ("heap", "slot", "times")

    def __init__(self, partitions: int) -> None:
        self.times = [math.inf] * partitions
        self.heap: list[int] = []
        self.slot = [-1] * partitions

    def set(self, p: int, t: float) -> None:
        """Set partition ``p``'s ready time to ``t``."""
        old = self.times[p]
        if t == old:
            return
        self.times[p] = t
        i = self.slot[p]
        if i < 0:  # it had no time: it joins the heap
            self.heap.append(p)
            self._up(len(self.heap) - 1)
        elif t == math.inf:  # it leaves the heap: the last partition takes its place
            last = self.heap.pop()
            self.slot[p] = -1
            if last != p:
                self.heap[i] = last
                self.slot[last] = i
                self._down(i)
                self._up(self.slot[last])
        elif t < old:
            self._up(i)
        else:
            self._down(i)

    def earliest(self) -> float:
        """The earliest ready time of any partition (``inf`` if none)."""
        return self.times[self.heap[0]] if self.heap else math.inf

    def due(self, now_ms: float) -> list[int]:
        """Partitions whose ready time is at or before ``now_ms``, in partition order."""
        heap, times = self.heap, self.times
        if not heap or times[heap[0]] > now_ms:
            return []
        n = len(heap)
        if n < SCAN_BELOW:  # a few partitions: a scan is cheaper than a walk down the heap
            out = [p for p in heap if times[p] <= now_ms]
            out.sort()
            return out
        out = []
        stack = [0]
        while stack:
            i = stack.pop()
            p = heap[i]
            if times[p] <= now_ms:
                out.append(p)
                child = 2 * i + 1
                if child < n:
                    stack.append(child)
                    if child + 1 < n:
                        stack.append(child + 1)
        out.sort()
        return out

    def earliest_where(self, wanted: Callable[[int], bool]) -> float:
        """The earliest ready time among partitions ``wanted`` accepts (``inf`` if none).

        Visits the heap in time order, so only partitions due before the answer are looked at;
        a small heap is simply scanned (``wanted`` is asked in no particular order).
        """
        heap, times = self.heap, self.times
        if not heap:
            return math.inf
        if wanted(heap[0]):  # the usual answer: the earliest partition itself
            return times[heap[0]]
        n = len(heap)
        if n < SCAN_BELOW:  # a few partitions: looking at each is cheaper than a search
            return min([times[p] for p in heap if wanted(p)], default=math.inf)
        frontier = [(times[heap[c]], c) for c in (1, 2) if c < n]
        heapq.heapify(frontier)
        while frontier:
            t, i = heapq.heappop(frontier)
            if wanted(heap[i]):
                return t
            for child in (2 * i + 1, 2 * i + 2):
                if child < n:
                    heapq.heappush(frontier, (times[heap[child]], child))
        return math.inf

    def earliest_of(self, flags: list[bool]) -> float:
        """``earliest_where(flags.__getitem__)``: a small heap is scanned reading the flags
        directly (a method call per partition costs more than the scan)."""
        heap = self.heap
        if not heap or len(heap) >= SCAN_BELOW or flags[heap[0]]:
            return self.earliest_where(flags.__getitem__)
        times = self.times
        return min([times[p] for p in heap if flags[p]], default=math.inf)

    def _up(self, i: int) -> None:
        heap, times, slot = self.heap, self.times, self.slot
        p = heap[i]
        t = times[p]
        while i:
            parent = (i - 1) >> 1
            q = heap[parent]
            if times[q] <= t:
                break
            heap[i] = q
            slot[q] = i
            i = parent
        heap[i] = p
        slot[p] = i

    def _down(self, i: int) -> None:
        heap, times, slot = self.heap, self.times, self.slot
        n = len(heap)
        p = heap[i]
        t = times[p]
        while True:
            child = 2 * i + 1
            if child >= n:
                break
            if child + 1 < n and times[heap[child + 1]] < times[heap[child]]:
                child += 1
            q = heap[child]
            if times[q] >= t:
                break
            heap[i] = q
            slot[q] = i
            i = child
        heap[i] = p
        slot[p] = i


class ScannedReadyTimes:
    """``ReadyTimes`` for a topic of fewer than ``SCAN_BELOW`` partitions: only the times.

    Every query scans them, which costs less than keeping a heap in order: a sender pass sets
    the time of each partition it drains, and few partitions are quickly scanned.
    """

    __slots__ = ("times",)

    def __init__(self, partitions: int) -> None:
        self.times = [math.inf] * partitions

    def set(self, p: int, t: float) -> None:
        """Set partition ``p``'s ready time to ``t``."""
        self.times[p] = t

    def earliest(self) -> float:
        """The earliest ready time of any partition (``inf`` if none)."""
        return min(self.times)

    def due(self, now_ms: float) -> list[int]:
        """Partitions whose ready time is at or before ``now_ms``, in partition order."""
        return [p for p, t in enumerate(self.times) if t <= now_ms]

    def earliest_where(self, wanted: Callable[[int], bool]) -> float:
        """The earliest ready time among partitions ``wanted`` accepts (``inf`` if none);
        ``wanted`` is asked only about partitions with a ready time."""
        times = self.times
        earliest = min(times)
        if earliest == math.inf or wanted(times.index(earliest)):  # the usual answer
            return earliest
        return min([t for p, t in enumerate(times) if t < math.inf and wanted(p)],
                   default=math.inf)

    def earliest_of(self, flags: list[bool]) -> float:
        """``earliest_where(flags.__getitem__)``, reading the flags directly."""
        return min([t for t, flag in zip(self.times, flags, strict=True) if flag],
                   default=math.inf)


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
        # due partitions whose keyed records were left in their streams while their leader was
        # busy, and the sender pass that last left them there (see ready_candidates)
        self.lagging: set[int] = set()
        self.lagging_ms = -math.inf
        self.sticky: RecordStream | None = None
        self.per_record: RecordStream | None = None
        self.first_calls: deque[int] = deque()  # partition() of per_record's next records
        self.custom_pending: RecordStream | None = None  # for a Kafka 4.0 custom partitioner
        self.stats_version = -1  # accumulator version the adaptive weights came from
        self.sticky_wake_ms = -math.inf  # before this, key-less records change nothing
        self._sticky_key: tuple[int, int, int, int] | None = None
        self._sticky_wake = math.inf
        self.ready = (ReadyTimes(self.partitions) if self.partitions >= SCAN_BELOW
                      else ScannedReadyTimes(self.partitions))
        self.next_ready = self.ready.times  # read-only here: ready.set keeps it
        self.seen = [False] * self.partitions
        self.unseen = self.partitions  # partitions that never had a batch
        self.partition_table = np.empty(0, np.int32)
        self._leaders: list[int] = []
        self._leaderless: list[int] = []
        self._epochs: list[int] = []  # the leader epoch of each partition, as leaders() saw it
        self._led_by: dict[int, list[int]] = {}  # led_by(), per broker
        self._leaders_version = -1
        self._sendable: dict[frozenset[int], list[bool]] = {}  # sendable(), per blocked set
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
            self._leaderless = [p for p, leader in enumerate(self._leaders) if leader < 0]
            seen = cluster.epoch_seen_by
            self._epochs = [seen(self.producer.client_id, self.name, p)
                            for p in range(len(self._leaders))]
            self._leaders_version = cluster.metadata_version
            self._sendable.clear()
            self._led_by.clear()
        return self._leaders

    def epoch_seen(self, p: int) -> int:
        """The leader epoch of partition ``p`` in this producer's metadata (-1: none yet),
        learnt with its leader (``leaders``)."""
        if self._leaders_version != self.producer.cluster.metadata_version:
            self.leaders()
        return self._epochs[p]

    def led_by(self, node: int) -> list[int]:
        """The partitions whose leader (as this producer sees it) is ``node``, in order."""
        if self._leaders_version != self.producer.cluster.metadata_version:
            self.leaders()  # new leaders: it clears the lists kept
        led = self._led_by.get(node)
        if led is None:
            led = [p for p, leader in enumerate(self._leaders) if leader == node]
            self._led_by[node] = led
        return led

    def with_records(self, node: int, led: list[int], now_ms: float) -> list[int]:
        """The partitions ``node`` leads (``led``, as ``led_by`` gave them) that have a batch
        queued, once the keyed records sent up to ``now_ms`` joined their queues, in partition
        order (what the sender drains when ``node`` is ready). Their ready times are left to
        the caller to refresh."""
        sizes = self.accumulator.sizes
        if self.keyed:
            keyed, lagging = self.keyed, self.lagging
            out = []
            for p in led:
                if p in keyed:  # appended lazily: its records sent so far join its queue
                    self.advance_keyed(p, now_ms, refresh=False)
                    if lagging:
                        lagging.discard(p)
                if sizes[p]:
                    out.append(p)
            return out
        leaders = self.leaders()
        return sorted([p for p in self.accumulator.nonempty if leaders[p] == node])

    def sendable(self, blocked: set[int]) -> list[bool]:
        """Whether each partition's leader can take a request: there is one, and it does not
        already have ``max.in.flight.requests.per.connection`` requests (``blocked``).

        Asked at every sender pass; only a handful of brokers can be blocked, so the answer is
        kept per set of blocked brokers until the leaders change.
        """
        if self._leaders_version != self.producer.cluster.metadata_version:
            self.leaders()  # new leaders: it clears the flags kept
        leaders = self._leaders
        key = frozenset(blocked)
        flags = self._sendable.get(key)
        if flags is None:
            flags = [leader >= 0 and leader not in blocked for leader in leaders]
            self._sendable[key] = flags
        return flags

    def _leader_seen(self, part: Any) -> int:
        return self.producer.cluster.leader_seen_by(self.producer.client_id, part)

    def advance_keyed(self, p: int, now_ms: float, refresh: bool = True) -> None:
        """Append this partition's keyed records sent up to ``now_ms`` (appended lazily);
        ``refresh`` False leaves its ready time to the caller."""
        stream = self.keyed.get(p)
        if stream is None:
            return
        pos = stream.pos
        t = stream.t
        # exhausted, or its next record is sent later (the usual case, asked at every pass):
        # nothing to search for
        if pos >= len(t) or t.item(pos) > now_ms:
            return
        end = stream.end_before(now_ms)
        pos, t, cs = stream.pos, stream.t, stream.cs  # as end_before left them
        if end > pos:
            stream.pos = end  # before append refreshes the ready time from the stream's position
            if not self.seen[p]:  # what self.append does, without a call per batch
                self.seen[p] = True
                self.unseen -= 1
            before = cs.item(pos - 1) if pos else 0  # the running sum before the records
            # one record (records come slower than sender passes): no sum or time views
            if end > pos + 1 or not self.accumulator.append_record(
                    p, stream.idx[pos:end], cs.item(pos) - before, t.item(pos)):
                # RecordStream.take, written out
                self.accumulator.append(p, stream.idx[pos:end], math.inf, False, cs[pos:end],
                                        before, t[pos:end], stream.in_order)
            if refresh:
                self.refresh(p)

    def append(self, p: int, idx: np.ndarray, max_bytes: float = math.inf,
               one_batch: bool = False, cs: np.ndarray | None = None,
               cs_base: int = 0, refresh: bool = True,
               times: np.ndarray | None = None, in_order: bool = False) -> tuple[int, int]:
        """``RecordAccumulator.append`` to partition ``p``, then refresh its ready time (unless
        ``refresh`` is False: the caller does, once it is done with the partition)."""
        if not self.seen[p]:
            self.seen[p] = True
            self.unseen -= 1
        result = self.accumulator.append(p, idx, max_bytes, one_batch, cs, cs_base, times,
                                         in_order)
        if refresh:
            self.refresh(p)
        return result

    def refresh(self, p: int) -> None:
        """Recompute when partition ``p`` next has a sendable batch."""
        dq = self.accumulator.deques[p]
        ready = dq[0].ready_ms(self.linger_ms) if dq else math.inf
        if len(dq) > 1:  # only the head batch is ever sent: future records cannot matter
            self.ready.set(p, ready)
            return
        stream = self.keyed.get(p)
        if stream is not None and stream.pos < len(stream.idx):
            # future records matter while the head batch is the open one
            if not dq or dq[0].full_ms < math.inf:  # the next record opens a batch
                opened = stream.t.item(stream.pos) + self.linger_ms
                ready = stream.time_when_overflowing(self.batch_room,
                                                     opened if opened < ready else ready)
            else:
                batch = dq[0]  # RecordAccumulator.room(p), without looking it up again
                room = batch.limit_bytes - batch.size_bytes
                ready = stream.time_when_overflowing(room if room > 0 else 0, ready)
        self.ready.set(p, ready)

    def ready_candidates(self, now_ms: float, flushing: bool,
                         blocked: set[int] | frozenset[int] = frozenset()) -> list[int]:
        """Partitions that may have a sendable head batch now (keyed records appended first).

        Only the due partitions are looked at, unless flushing (then every non-empty queue is).

        A due partition whose leader is ``blocked`` (``max.in.flight.requests.per.connection``
        requests outstanding) cannot be drained in this pass. If appending would leave it due,
        appending its newer records now would change nothing that the pass reads:
        they stay in the stream (the partition is *lagging*) until its leader can take a
        request, or until ``catch_up`` brings it to where every pass would have left it. Under
        load most brokers are busy at most passes, so this saves appending their records again
        and again. Only for a topic whose records all take the keyed route: the sticky and
        per-record routes append to partitions in between passes.

        The partitions' ready times are not refreshed here: the sender drains some of them
        first, then refreshes each once (``refresh_after_drain``).
        """
        if flushing:
            deques = self.accumulator.deques
            next_ready = self.next_ready
            out = [p for p in range(self.partitions) if next_ready[p] <= now_ms or deques[p]]
        else:
            out = self.ready.due(now_ms)
        if not self.keyed:
            return out
        if (not blocked or flushing or self.sticky is not None or self.per_record is not None
                or self.custom_pending is not None):
            for p in out:
                self.advance_keyed(p, now_ms, refresh=False)
            if self.lagging:
                self.lagging.difference_update(out)
            return out
        leaders = self.leaders()
        lagging = self.lagging
        for p in out:
            # one that lags already still would stay due: its queue has not changed since
            if leaders[p] in blocked and (p in lagging or self._stays_due(p, now_ms)):
                lagging.add(p)
            else:
                lagging.discard(p)
                self.advance_keyed(p, now_ms, refresh=False)
        if lagging:
            self.lagging_ms = now_ms
        return out

    def _stays_due(self, p: int, now_ms: float) -> bool:
        """Whether due partition ``p`` stays due however many records are appended to it: its
        head batch is sendable already, or it is the open batch, which the records that made
        the partition due fill (a retried head batch may wait for its backoff instead)."""
        dq = self.accumulator.deques[p]
        if not dq:
            return False
        head = dq[0]
        if len(dq) == 1 and head.full_ms == math.inf:
            return True
        return head.ready_ms(self.linger_ms) <= now_ms

    def refresh_after_drain(self, candidates: list[int]) -> None:
        """Refresh the ready times of ``ready_candidates``' partitions (lagging ones did not
        change), once the sender has drained what it could from them."""
        lagging = self.lagging
        for p in candidates:
            if p not in lagging:
                self.refresh(p)

    def catch_up(self, p: int | None = None) -> None:
        """Append the keyed records a lagging partition (or every one, ``p`` None) left in its
        stream, up to the last sender pass: what every pass would have appended. Called before
        anything reads or changes its queue outside a pass (expiry, a retry, an abort)."""
        if not self.lagging:
            return
        for q in ([p] if p is not None else sorted(self.lagging)):
            if q in self.lagging:
                self.lagging.discard(q)
                self.advance_keyed(q, self.lagging_ms)

    def next_wakeup_ms(self, blocked: set[int], now_ms: float | None = None) -> float:
        """Earliest time something in this topic may become sendable, or batches waiting for a
        partition without a leader may expire (``now_ms``: the current time, if the caller has
        it at hand)."""
        if self._leaders_version != self.producer.cluster.metadata_version:
            self.leaders()  # asked at every sender pass: only a metadata change costs a call
        if blocked or self._leaderless:  # busy brokers and leaderless partitions cannot send
            sendable = self.sendable(blocked)
            wake = self.ready.earliest_of(sendable)
        else:
            sendable = None
            wake = self.ready.earliest()
        transactions = self.producer.transactions
        if (transactions is not None or self.producer.sender.muted) and wake <= (
                self.producer.kernel.now_ms if now_ms is None else now_ms):
            # a head batch idempotence (or a muted partition) holds back waits for an answer,
            # not for the clock
            deques = self.accumulator.deques
            sendable = sendable or self.sendable(blocked)
            wake = self.ready.earliest_where(
                lambda p: sendable[p] and not (deques[p] and self._held_back(p)))
        if self.sticky is not None and not self.sticky.exhausted:
            self.sticky_wake_ms = self._sticky_wakeup_ms()
            wake = min(wake, self.sticky_wake_ms)
        if self.per_record is not None and not self.per_record.exhausted:
            wake = min(wake, self._per_record_wakeup_ms(self.leaders(), blocked))
        if self.custom_pending is not None and not self.custom_pending.exhausted:
            # partition the next records before they are sent (Producer._partition_ahead)
            wake = min(wake, self.custom_pending.next_time() - self.producer.custom.ahead_ms / 2)
        leaderless = self._leaderless  # as leaders() left it above
        if leaderless:
            deques = self.accumulator.deques
            if any(deques[p] for p in leaderless):  # stuck: checked at each expiry check
                wake = min(wake, self.producer.next_expiry_check_ms)
        return wake

    def _held_back(self, p: int) -> bool:
        """Whether the head batch of ``p`` waits for an answer: idempotence's sequences,
        AddPartitionsToTxn for a transactional producer, or a batch of ``p`` in flight with
        ``max.in.flight.requests.per.connection`` 1 (a muted partition)."""
        tp = (self.name, p)
        if tp in self.producer.sender.muted:
            return True
        transactions = self.producer.transactions
        txn = self.producer.txn
        return (transactions is not None
                and transactions.should_stop_drain(tp, self.accumulator.deques[p][0])) or (
            txn is not None and not txn.is_send_to_partition_allowed(tp))

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
