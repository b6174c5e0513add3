"""The sender: drains ready batches into produce requests, one request per broker at a time.

Mirrors ``org.apache.kafka.clients.producer.internals.Sender``. On each pass it asks which
brokers lead a partition with a sendable head batch (full, or ``linger.ms`` old) and have room
for another in-flight request (``max.in.flight.requests.per.connection``). From each such broker
it drains the head batch of *every* partition the broker leads, sendable or not, into one
request (up to ``max.request.size``, starting at a rotating partition for fairness, as
``RecordAccumulator.drain`` does), and sends it. So a batch often leaves before it is full or
has lingered: a neighbour on the same broker was ready.

A request's life, in simulated milliseconds: it crosses the network link to the leader
(latency + bytes / bandwidth), waits until the broker has answered the request before it on the
same connection (the broker reads one request of a connection at a time: ``Channel``), waits
for the broker's request handler, and each batch is handed to the leader
(``ReplicaManager.append``: offsets are assigned then; with ``acks=all`` the answer waits for
the ISR). Unless ``acks=0``, the response travels back.

When things go wrong — a dead broker (the connection drops: a quick NETWORK_EXCEPTION), a lost
message (nothing more comes back on that connection until ``request.timeout.ms``, when the
producer closes it and every request on it fails), or a broker error such as
NOT_ENOUGH_REPLICAS — each failed batch is retried after ``retry.backoff.ms`` (doubling up to
``retry.backoff.max.ms``, KIP-580) until ``delivery.timeout.ms`` after it was created; then its
records fail. A NOT_LEADER_OR_FOLLOWER answer names the new leader, and a batch retried at a
newer leader than its failed attempt goes without the backoff (KIP-951). Without idempotence
a retry after a lost *response* appends the batch twice; with ``enable.idempotence`` the leader
recognises the producer id and sequence and does not.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sim import trace as events
from sim.broker.cluster import Channel
from sim.broker.replication import NONE, AppendResult
from sim.producer.accumulator import ProducerBatch

if TYPE_CHECKING:
    from sim.producer import Producer
    from sim.producer.topic_state import TopicState

REQUEST_OVERHEAD_BYTES = 100
"""Approximate bytes of a produce request's headers around its batches."""

NETWORK_EXCEPTION = "NETWORK_EXCEPTION"
TIMEOUT = "REQUEST_TIMEOUT"
RETRY_BACKOFF_MAX_MS = 1000  # retry.backoff.max.ms
MIN_REQUEST_TIMEOUT_MS = 1.0  # a request lives at least one tick of Kafka's ms clock


@dataclass(eq=False, slots=True)  # each request is itself: compared by identity (fast list.remove)
class InFlightRequest:
    """A produce request on its way: the batches it carries and what came back for each."""

    node: int
    batches: list[tuple[TopicState, ProducerBatch]]
    sent_ms: float
    size_bytes: int
    records: int
    sequences: list[tuple[int, int]] = field(default_factory=list)  # (epoch, base) per batch
    results: dict[int, AppendResult] = field(default_factory=dict)
    finished: bool = False
    oldest_ms: float = math.inf  # creation time of its oldest batch (done or not)
    arrival_ms: float = 0.0  # when its last byte reached the broker
    channel: Channel | None = None  # the connection it arrived on, if it arrived


class Sender:
    """Drains the producer's accumulators and sends requests to partition leaders."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.in_flight: dict[int, int] = {}
        self._drain_index: dict[int, int] = {}
        self.requests_sent = 0
        self.node_ready_ms: dict[int, float] = {}
        self.node_drain_ms: dict[int, float] = {}
        self._requests: list[InFlightRequest] = []
        config = producer.config  # a producer's configs never change: read them once
        self._max_in_flight = config["max.in.flight.requests.per.connection"]
        self.acks = config["acks"]
        self.linger_ms = config["linger.ms"]
        self.max_request_size = config["max.request.size"]
        self.delivery_timeout_ms = config["delivery.timeout.ms"]
        self.request_timeout_config = config["request.timeout.ms"]  # as the broker is told
        # request.timeout.ms, but at least MIN_REQUEST_TIMEOUT_MS (see request_timeout_ms)
        self._request_timeout_ms = max(float(self.request_timeout_config), MIN_REQUEST_TIMEOUT_MS)
        self.blocked: set[int] = set()  # brokers with max.in.flight requests outstanding
        # brokers whose last drain stopped at a head batch that waits for an answer
        # (shouldStopDrainBatchesForPartition): nothing for them until that answer wakes us
        self.held: set[int] = set()
        self.broken: set[int] = set()  # brokers whose connection lost a message
        # With one request in flight per connection, Kafka's Sender also keeps one batch in
        # flight per partition (guaranteeMessageOrder): a drained partition is muted until its
        # batch's answer (or failure) is handled, so a leader change cannot let a later batch
        # overtake it through another connection.
        self.guarantee_order = self._max_in_flight == 1 and self.acks != "0"
        self.muted: set[tuple[str, int]] = set()
        self.channels: dict[int, Channel] = {}  # the open connection to each broker
        self.deadline_stale = False  # a request was sent since the producer last armed its deadline

    def send_ready(self, now_ms: float, flushing: bool) -> bool:
        """One sender pass: drain and send what is ready. True if anything was sent.

        As ``RecordAccumulator.ready`` then ``drain``: a broker is ready when the head batch of
        one of its partitions is sendable (full, lingered ``linger.ms``, or flushing; not backing
        off) and it can take another request; the sender then drains the head batch of *every*
        partition that broker leads, sendable or not (``drainBatchesForOneNode``).
        """
        producer = self.producer
        blocked = self.blocked
        muted = self.muted
        ready_nodes: dict[int, None] = {}  # nodes with data ready, blocked ones too
        candidates: list[tuple[TopicState, list[int]]] = []
        linger_ms = self.linger_ms
        for topic in producer.topics.values():
            ready = topic.ready_candidates(now_ms, flushing, blocked)
            if not ready:
                continue
            candidates.append((topic, ready))
            leaders = topic.leaders()
            deques = topic.accumulator.deques
            for p in ready:
                node = leaders[p]
                if node < 0 or node in ready_nodes or (muted and (topic.name, p) in muted):
                    continue
                if node in blocked:  # its records stayed in their streams: due is ready
                    ready_nodes[node] = None
                    continue
                dq = deques[p]
                if dq:
                    batch = dq[0]
                    if batch.ready_ms(linger_ms) <= now_ms or (
                            flushing and batch.retry_at_ms <= now_ms):
                        ready_nodes[node] = None
        sent = False
        if self.held:
            self.held.clear()
        # per topic: partitions whose queues drains changed, in order for each broker drained
        touched: dict[str, list[int]] = {}
        node_ready_ms = self.node_ready_ms
        node_drain_ms = self.node_drain_ms
        for node in sorted(ready_nodes) if len(ready_nodes) > 1 else ready_nodes:
            node_ready_ms[node] = now_ms  # Kafka's NodeLatencyStats.readyTimeMs
            node_drain_ms.setdefault(node, now_ms)
            if node in blocked:  # it had data ready, but no room for a request
                continue
            batches = self._drain(node, now_ms, touched)
            if batches:
                node_drain_ms[node] = now_ms
                self._send(node, batches, now_ms)
                sent = True
        for topic, ready in candidates:  # appended to and drained: when are they ready next?
            extra = touched.pop(topic.name, None)
            # usually the due partitions themselves: ``ready`` is in order already
            if extra is not None and extra != ready:
                ready = sorted(set(extra).union(ready))
            topic.refresh_after_drain(ready)
        for name, extra in touched.items():  # drained without being due themselves
            producer.topics[name].refresh_after_drain(sorted(extra))
        return sent

    def _drain(
        self,
        node: int,
        now_ms: float,
        touched: dict[str, list[int]],
    ) -> list[tuple[TopicState, ProducerBatch]]:
        """``RecordAccumulator.drainBatchesForOneNode``: the head batch of each partition
        ``node`` leads, sendable or not, in turn from a rotating start, up to
        ``max.request.size``. ``touched`` collects the partitions whose queues may have changed.

        Kafka remembers, per broker, the partition it looked at last — where a full request
        stopped it, else the one before where it started — and starts there next time. A
        partition whose head batch must wait (``shouldStopDrainBatchesForPartition``: not in
        the transaction yet, or idempotence keeps its order) stops the drain too, and the next
        drain starts there: the batches behind it in the rotation wait with it.
        """
        limit = self.max_request_size
        transactions = self.producer.transactions
        txn = self.producer.txn
        muted = self.muted
        parts: list[tuple[int, TopicState, int]] = []  # (position in Kafka's list, topic, p)
        n = 0  # partitions of this broker, with records or not
        for topic in self.producer.topics.values():
            led = topic.led_by(node)
            if not led:
                continue
            with_records = topic.with_records(node, led, now_ms)
            if with_records:
                touched.setdefault(topic.name, []).extend(with_records)
                # each partition's position: its place in ``led`` (often all of ``led``)
                positions = (range(n, n + len(led)) if len(with_records) == len(led)
                             else [n + bisect_left(led, p) for p in with_records])
                parts += zip(positions, repeat(topic), with_records)
            n += len(led)
        if not n:
            return []
        if txn is not None:  # KafkaProducer.doSend asked to add each partition it appended to
            for _, topic, p in parts:
                txn.maybe_add_partition((topic.name, p))
        start = self._drain_index.get(node, 0) % n
        self._drain_index[node] = (start - 1) % n  # a whole round ends before its start
        if start and len(parts) > 1:  # in position order: rotate them to begin at ``start``
            first = bisect_left(parts, start, key=itemgetter(0))
            parts = parts[first:] + parts[:first]
        drained: list[tuple[TopicState, ProducerBatch]] = []
        size = 0
        for position, topic, p in parts:
            tp = (topic.name, p)
            if muted and tp in muted:  # a batch of it is in flight (max.in.flight 1)
                continue
            batch = topic.accumulator.deques[p][0]
            if batch.retry_at_ms > now_ms:  # a retry waits for its backoff
                continue
            if drained and size + batch.size_bytes > limit:
                self._drain_index[node] = position
                break
            if (txn is not None and not txn.is_send_to_partition_allowed(tp)) or (
                    transactions is not None and transactions.should_stop_drain(tp, batch)):
                self._drain_index[node] = position
                self.held.add(node)
                break
            topic.accumulator.take_first(p)
            if batch.full_ms == math.inf:  # still open: a drained batch takes no more records
                batch.full_ms = now_ms
            if transactions is not None and batch.base_sequence < 0:
                transactions.assign_sequence(tp, batch)
            drained.append((topic, batch))
            size += batch.size_bytes
        return drained

    def _send(self, node: int, batches: list[tuple[TopicState, ProducerBatch]],
              now_ms: float) -> None:
        producer = self.producer
        broker = producer.cluster.brokers[node]
        network = producer.cluster.network
        batch_bytes = records = 0
        oldest = math.inf
        sequences = []
        for topic, b in batches:
            b.maybe_update_leader_epoch(topic.epoch_seen(b.partition))  # the leader tried now
            batch_bytes += b.size_bytes
            records += b.records
            sequences.append((b.producer_epoch, b.base_sequence))
            if b.created_ms < oldest:
                oldest = b.created_ms
        size = REQUEST_OVERHEAD_BYTES + int(batch_bytes * producer.compression_ratio)
        request = InFlightRequest(node, batches, now_ms, size, records, sequences,
                                  oldest_ms=oldest)
        if self.guarantee_order:  # RecordAccumulator.mutePartition
            self.muted.update((topic.name, b.partition) for topic, b in batches)
        self.requests_sent += 1
        producer.trace.emit(events.REQUEST_SENT, now_ms, producer.client_id, node, len(batches),
                            records, size)
        acks = self.acks
        if acks != "0":
            self.in_flight[node] = self.in_flight.get(node, 0) + 1
            if self.in_flight[node] >= self._max_in_flight:
                self.blocked.add(node)
            self._requests.append(request)  # the producer's deadline timer watches it
            # a request may move the producer's deadline earlier only if it is the first in
            # flight (request.timeout.ms) or an old batch's delivery.timeout.ms comes before
            # the timer armed (Producer.arm_deadline)
            if len(self._requests) == 1 or producer.deadline_armed_ms > (
                    oldest + self.delivery_timeout_ms):
                self.deadline_stale = True
        if not broker.alive:  # the connection is refused: a quick, retriable failure
            if acks != "0":  # with acks=0 nobody listens: the records are simply gone
                call_at(producer.kernel.env, now_ms + broker.latency_ms,
                    lambda: self._finish(request, NETWORK_EXCEPTION))
        elif node in self.broken or not network.deliver(producer.client_id, node):
            if acks != "0":  # nothing more gets through until the producer reconnects
                self.broken.add(node)
        else:
            request.arrival_ms = broker.arrival_ms(now_ms, size)
            channel = self.channels.get(node)
            if channel is None:
                channel = self.channels[node] = Channel()
            request.channel = channel
            if channel.receive(request):
                self._read(request, request.arrival_ms, now_ms)
        if acks == "0":
            producer.complete_batches(batches, now_ms, offsets=False)

    def _read(self, request: InFlightRequest, read_ms: float, now_ms: float) -> None:
        """The broker reads ``request`` off its connection at ``read_ms``: it queues for the
        request handler, which hands it to the leader (``_handle``) when done."""
        broker = self.producer.cluster.brokers[request.node]
        handled = broker.handle(read_ms, request.size_bytes)
        timer_at(self.producer.kernel.env, now_ms, handled, partial(self._handle, request))

    def _response_sent(self, request: InFlightRequest) -> None:
        """The broker sent ``request``'s response (or, for acks=0, handled it): its connection
        is unmuted, and the next request waiting on it is read (``Channel``)."""
        channel = request.channel
        assert channel is not None
        following = channel.response_sent()
        if following is not None:
            now = float(self.producer.kernel.env.now)
            self._read(following, max(now, following.arrival_ms), now)

    def _close_channel(self, node: int) -> None:
        """The connection to ``node`` is closed: what waits on it is lost, and the next request
        opens a new, unmuted one."""
        channel = self.channels.pop(node, None)
        if channel is not None:
            channel.close()

    def _handle(self, request: InFlightRequest, _timer: Any = None) -> None:
        """At the broker: hand the request's batches to the leader at once
        (``ReplicaManager.appendRecords``), as indices into this producer's buffer; answer
        when all are decided."""
        producer = self.producer
        node = request.node
        channel = request.channel
        if channel is None or channel.closed or not producer.cluster.brokers[node].alive:
            return  # lost with its connection: the request times out
        ratio = producer.compression_ratio
        handed = producer.handed  # what the leader asks producer.max_timestamp about
        batches = []
        for (topic, batch), (epoch, base_sequence) in zip(request.batches, request.sequences,
                                                          strict=True):
            idx = batch.indices()
            handed[id(idx)] = batch
            batches.append((topic.name, batch.partition, idx, int(batch.size_bytes * ratio),
                            base_sequence, epoch))
        try:
            producer.kernel.replicas.append_records(
                node, batches, producer.wire_producer_id, self.acks, self.request_timeout_config,
                partial(self._decided, request), transactional=producer.txn is not None,
                source=producer)
        finally:
            handed.clear()

    def _decided(self, request: InFlightRequest, i: int, result: AppendResult) -> None:
        """The leader decided batch ``i`` of ``request``: answer once every batch is decided."""
        results = request.results
        results[i] = result
        if len(results) == len(request.batches):
            self._respond(request)

    def _respond(self, request: InFlightRequest) -> None:
        """Every batch is decided: send the response (none for acks=0), which unmutes the
        connection whether or not the response then gets through."""
        if self.acks == "0":
            # KafkaApis.handleProduceRequest: no response, but an error closes the connection
            # (CloseConnectionResponse) so that the producer refreshes its metadata
            if any(result.error != NONE for result in request.results.values()):
                if self.channels.get(request.node) is request.channel:
                    self._close_channel(request.node)
            else:
                self._response_sent(request)
            return
        self._response_sent(request)
        producer = self.producer
        broker = producer.cluster.brokers[request.node]
        if request.node in self.broken or not producer.cluster.network.deliver(
                request.node, producer.client_id):
            self.broken.add(request.node)  # the response is lost: the request times out
            return
        env = producer.kernel.env
        now = float(env.now)
        timer_at(env, now, now + broker.latency_ms, partial(self._finish, request, None, True))

    def deadline_ms(self) -> float:
        """When the oldest request in flight reaches ``request.timeout.ms`` or the oldest batch
        in flight ``delivery.timeout.ms``, whichever comes first (``inf`` if none).

        A crashed producer has no sender thread to expire batches in flight
        (``Sender.getExpiredInflightBatches`` runs only in ``Sender.sendProducerData``): its
        requests only time out, and their batches end with them. Counting the expiry there
        would wake it at that moment again and again without the clock moving.
        """
        requests = self._requests
        if not requests:
            return math.inf
        timeout = requests[0].sent_ms + self._request_timeout_ms  # in send order: oldest first
        if self.producer.crashed:
            return timeout
        expiry = self.oldest_in_flight_ms() + self.delivery_timeout_ms
        return timeout if timeout < expiry else expiry

    def request_timeout_ms(self) -> float:
        """``request.timeout.ms``, but at least ``MIN_REQUEST_TIMEOUT_MS``.

        ``NetworkClient`` expires a request only once more than its timeout has passed since it
        was sent (``InFlightRequests.hasExpiredRequest``) on a millisecond clock, so even a
        timeout of 0 lets a request live 1 ms. Expiring it at the instant it was sent would
        retry it (``retry.backoff.ms: 0``) at that same instant for ever.
        """
        return self._request_timeout_ms

    def time_out_requests(self, now_ms: float) -> None:
        """Give up on every request unanswered for ``request.timeout.ms``."""
        limit = self.request_timeout_ms()
        while self._requests and now_ms >= self._requests[0].sent_ms + limit:
            self._timed_out(self._requests[0])

    def _timed_out(self, request: InFlightRequest) -> None:
        """No answer within ``request.timeout.ms``: like ``NetworkClient.handleTimedOutRequests``,
        close the connection, which cancels every request still in flight on it.

        A connection is one ordered stream (TCP): once a message on it is lost, nothing after it
        gets through either, until the producer connects again.
        """
        if request.finished:
            return
        self.broken.discard(request.node)
        self._close_channel(request.node)
        self._disconnected(request.node, TIMEOUT)

    def _disconnected(self, node: int, failure: str,
                      requests: list[InFlightRequest] | None = None) -> None:
        """Fail every request in flight to ``node`` at once, then wake the sender once.

        ``NetworkClient`` cancels all the requests of a closed connection together, and the
        sender drains again only after all their callbacks ran. Waking it between two of them
        would let a new batch of a partition (no sequence yet) go out ahead of the earlier
        batches still to be re-enqueued: a broker that has no state for the producer accepts
        any first sequence, and the retried batches then come back as duplicates or
        OUT_OF_ORDER_SEQUENCE_NUMBER.
        """
        if requests is None:
            requests = [r for r in self._requests if r.node == node]
        failed = [r for r in requests if not r.finished]
        for request in failed:
            self._finish(request, failure, wake=False)
        if failed:
            self.producer.wakeup()

    def _finish(self, request: InFlightRequest, failure: str | None, wake: bool = True,
                _timer: Any = None) -> None:
        """The response (or a failure for the whole request) reaches the producer; ``wake``
        False leaves the sender pass to the caller. ``_timer``: the response's timer, if it
        called."""
        if request.finished:
            return
        request.finished = True
        self._requests.remove(request)
        producer = self.producer
        now = producer.kernel.now_ms
        self.in_flight[request.node] -= 1
        freed = request.node in self.blocked  # the broker can take another request again
        self.blocked.discard(request.node)
        failed = completed = False
        results = request.results
        for i, (topic, batch) in enumerate(request.batches):
            result = results.get(i) if failure is None else None
            if result is not None and result.error == NONE:
                producer.complete_batch(topic, batch, now, result.base_offset)
                if not completed:  # a flush waiting for progress wakes once
                    producer.notify_progress()
                    completed = True
            else:
                producer.retry_or_fail(topic, batch,
                                       failure or (result.error if result else TIMEOUT), now)
                failed = True
            if self.guarantee_order:  # RecordAccumulator.unmutePartition, after completeBatch
                self.muted.discard((topic.name, batch.partition))
        producer.trace.emit(events.REQUEST_COMPLETED, now, producer.client_id, request.node,
                            len(request.batches), request.records, now - request.sent_ms)
        if not wake:
            return
        if freed or failed or producer.pass_may_act(now):
            producer.wakeup()
        elif not self._requests:  # an answer never moves a deadline earlier
            producer.arm_deadline()

    def broker_crashed(self, node: int) -> None:
        """Requests waiting on a crashed broker fail as soon as the connection drops; those
        the broker had not read yet are lost with it."""
        self._close_channel(node)
        env = self.producer.kernel.env
        latency = self.producer.cluster.brokers[node].latency_ms
        cut = [r for r in self._requests if r.node == node and not r.finished]
        if cut:
            call_at(env, env.now + latency,
                    lambda: self._disconnected(node, NETWORK_EXCEPTION, cut))

    def in_flight_batches(self) -> list[tuple[TopicState, ProducerBatch]]:
        """Every batch of a request still waiting for its answer."""
        return [pair for request in self._requests for pair in request.batches]

    def oldest_in_flight_ms(self) -> float:
        """Creation time of the oldest unresolved batch of a request in flight.

        Asked at every sender pass: a request whose oldest batch is not older than the answer
        so far is skipped without looking at its batches.
        """
        oldest = math.inf
        for request in self._requests:
            if request.oldest_ms >= oldest:
                continue
            for _, batch in request.batches:
                if batch.created_ms < oldest and not batch.done:
                    oldest = batch.created_ms
        return oldest

    def unavailable_nodes(self, timeout_ms: int) -> set[int]:
        """Brokers that had ready data but were not drained for longer than ``timeout_ms``.

        This is ``partitioner.availability.timeout.ms`` (KIP-794): their partitions are left out
        of the adaptive choice until the broker is drained again.
        """
        if timeout_ms <= 0:
            return set()
        return {
            node
            for node, ready in self.node_ready_ms.items()
            if ready - self.node_drain_ms[node] > timeout_ms
        }


def timer_at(env: Any, now_ms: float, when_ms: float,
             callback: Callable[[Any], None]) -> Any:
    """``call_at(env, when_ms, …)`` for the produce path's timers (a request's, its answer's,
    the producer's deadline), returning the timer: ``callback`` takes the timer event (no
    lambda around it) and ``now_ms`` is the time the caller already has. The delay is
    ``when_ms - now_ms``, as ``call_at`` works it out, so the timer fires at the same float
    time (``(now + latency) - now`` need not equal ``latency``).
    """
    delay = when_ms - now_ms
    timer = env.timeout(delay if delay > 0.0 else 0.0)
    timer.callbacks.append(callback)
    return timer


def call_at(env: Any, when_ms: float, action: Callable[..., None], *args: Any) -> Any:
    """Run ``action(*args)`` at simulated time ``when_ms`` (now, if that is already past)."""
    timer = env.timeout(max(0.0, when_ms - env.now))
    timer.callbacks.append(lambda _event: action(*args))
    return timer


def cancel_timer(env: Any, timer: Any) -> None:
    """Take a timer that is no longer needed off SimPy's queue.

    A forgotten timer would still move the clock when it fires, so a run to the end would
    stop ``request.timeout.ms`` after the last answered request instead of at the answer.

    The queue is a binary heap: the last entry takes the timer's place and is moved up or down
    from there (``O(log n)``), instead of re-heapifying the whole queue. Entries are unique
    ``(time, priority, id, event)`` keys, so events still come out in exactly the same order.
    """
    if timer is None or timer.processed:
        return
    queue = env._queue  # SimPy's heap of (time, priority, id, event)
    i = len(queue) - 1  # from the end: a late timer sits nearer the leaves
    while i >= 0 and queue[i][3] is not timer:
        i -= 1
    if i < 0:
        return
    last = queue.pop()
    if i < len(queue):
        queue[i] = last
        heapq._siftup(queue, i)  # down to where it belongs below i …
        heapq._siftdown(queue, 0, i)  # … or up, if it is earlier than its new parent
