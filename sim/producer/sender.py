"""The sender: drains ready batches into produce requests, one request per broker at a time.

Mirrors ``org.apache.kafka.clients.producer.internals.Sender``. On each pass it asks which
partitions have a sendable head batch and whose leader has room for another in-flight request
(``max.in.flight.requests.per.connection``), drains at most one batch per partition into one
request per broker (up to ``max.request.size``, starting at a rotating partition for fairness, as
``RecordAccumulator.drain`` does), and sends it.

A request's life, in simulated milliseconds: it crosses the network link to the leader
(latency + bytes / bandwidth), waits for the broker's request handler, is appended to the
partition logs (offsets are assigned then), and — unless ``acks=0`` — its response travels back.
With ``acks=all`` and more than one replica, the response also waits for one follower fetch
round trip (replication proper comes with the replication module).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim import trace as events
from sim.producer.accumulator import ProducerBatch

if TYPE_CHECKING:
    from sim.producer import Producer, TopicState

REQUEST_OVERHEAD_BYTES = 100
"""Approximate bytes of a produce request's headers around its batches."""


@dataclass
class InFlightRequest:
    """A produce request on its way: the batches it carries and when it was sent."""

    node: int
    batches: list[tuple[TopicState, ProducerBatch]]
    sent_ms: float
    size_bytes: int

    @property
    def records(self) -> int:
        return sum(b.records for _, b in self.batches)


class Sender:
    """Drains the producer's accumulators and sends requests to partition leaders."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.in_flight: dict[int, int] = {}
        self._drain_index: dict[int, int] = {}
        self.requests_sent = 0
        self.node_ready_ms: dict[int, float] = {}
        self.node_drain_ms: dict[int, float] = {}

    def can_send(self, node: int) -> bool:
        limit = self.producer.config["max.in.flight.requests.per.connection"]
        return self.in_flight.get(node, 0) < limit

    def send_ready(self, now_ms: float, flushing: bool) -> bool:
        """One sender pass: drain and send what is ready. True if anything was sent."""
        producer = self.producer
        linger = producer.config["linger.ms"]
        by_node: dict[int, list[tuple[TopicState, int]]] = {}
        for topic in producer.topics.values():
            for p in topic.ready_candidates(now_ms, flushing):
                by_node.setdefault(topic.leader(p), []).append((topic, p))
        sent = False
        for node in sorted(by_node):
            self.node_ready_ms[node] = now_ms  # Kafka's NodeLatencyStats.readyTimeMs
            self.node_drain_ms.setdefault(node, now_ms)
            if not self.can_send(node):
                continue
            batches = self._drain(node, by_node[node], now_ms, linger, flushing)
            if batches:
                self.node_drain_ms[node] = now_ms
                self._send(node, batches, now_ms)
                sent = True
        return sent

    def _drain(
        self,
        node: int,
        candidates: list[tuple[TopicState, int]],
        now_ms: float,
        linger_ms: float,
        flushing: bool,
    ) -> list[tuple[TopicState, ProducerBatch]]:
        limit = self.producer.config["max.request.size"]
        start = self._drain_index.get(node, 0) % len(candidates)
        self._drain_index[node] = start + 1
        drained: list[tuple[TopicState, ProducerBatch]] = []
        size = 0
        for topic, p in candidates[start:] + candidates[:start]:
            dq = topic.accumulator.deques[p]
            if not dq:
                continue
            batch = dq[0]
            if not (flushing or batch.ready_ms(linger_ms) <= now_ms):
                continue
            if drained and size + batch.size_bytes > limit:
                break
            dq.popleft()
            if not batch.is_full:
                batch.full_ms = now_ms  # a drained batch takes no more records
            batch.drained_ms = now_ms
            drained.append((topic, batch))
            size += batch.size_bytes
            topic.refresh(p)
        return drained

    def _send(self, node: int, batches: list[tuple[TopicState, ProducerBatch]],
              now_ms: float) -> None:
        producer = self.producer
        env = producer.kernel.env
        broker = producer.cluster.brokers[node]
        ratio = producer.compression_ratio
        size = REQUEST_OVERHEAD_BYTES + int(sum(b.size_bytes for _, b in batches) * ratio)
        request = InFlightRequest(node, batches, now_ms, size)
        self.requests_sent += 1
        producer.trace.emit(events.REQUEST_SENT, now_ms, producer.client_id, node, len(batches),
                            request.records, size)
        arrival = broker.arrival_ms(now_ms, size)
        handled = broker.handle(arrival, size)
        acks = producer.config["acks"]
        replicated = handled
        if acks in ("all", "-1") and any(t.replication_factor > 1 for t, _ in batches):
            replicated = handled + 2 * broker.latency_ms  # one follower fetch round trip
        response = replicated + broker.latency_ms
        _at(env, handled, lambda: self._append(request))
        if acks == "0":
            producer.complete(request, now_ms, with_offsets=False)
            return
        self.in_flight[node] = self.in_flight.get(node, 0) + 1
        _at(env, response, lambda: self._on_response(request))

    def _append(self, request: InFlightRequest) -> None:
        producer = self.producer
        now = producer.kernel.now_ms
        for topic, batch in request.batches:
            producer.append_to_log(topic, batch, now, request.node)

    def _on_response(self, request: InFlightRequest) -> None:
        producer = self.producer
        now = producer.kernel.now_ms
        self.in_flight[request.node] -= 1
        producer.complete(request, now, with_offsets=True)
        producer.trace.emit(events.REQUEST_COMPLETED, now, producer.client_id, request.node,
                            len(request.batches), request.records, now - request.sent_ms)
        producer.wakeup()

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


def _at(env: object, when_ms: float, action: Callable[[], None]) -> None:
    """Run ``action`` at simulated time ``when_ms`` (now, if that is already past)."""
    delay = max(0.0, when_ms - env.now)  # type: ignore[attr-defined]
    env.timeout(delay).callbacks.append(lambda _event: action())  # type: ignore[attr-defined]
