"""The revenue job as a Kafka Streams application: the streaming copy of the logic.

Payments keyed by merchant → tumbling one-hour windows (``TimeWindows.of_size_and_grace``)
→ ``aggregate`` summing what the rule counts → the windowed totals written to an output topic,
one update per window as the record cache flushes (on each commit, every
``commit.interval.ms``, 30 s by default under at-least-once).

The grace period decides what a late payment does: one that arrives after its window's end +
grace is dropped (``dropped-records``). The workload's latest payments arrive 40 minutes
late, so the application keeps windows open :data:`GRACE_MS` (two hours): with a shorter grace
the stream would disagree with the batch job, which sees every payment.
"""

from __future__ import annotations

from typing import Any

from sim.architectures.workload import HOUR_MS, counts_as_revenue, decode_value
from sim.kernel import Kernel
from sim.streams import KafkaStreams, Materialized, StreamsBuilder, TimeWindows, Topology

GRACE_MS = 2 * HOUR_MS
STORE = "revenue-per-hour"

APP_CONFIG: dict[str, Any] = {
    "default.dsl.store": "in_memory",
    "poll.ms": 1_000,
    "consumer.lab.poll.check.ms": 1_000,
}
"""Configs of every revenue application besides its ``application.id``: in-memory stores, and
threads that block up to a second for input (``poll.ms``) so that hours of simulated time stay
quick; a record arriving wakes them at once."""


def revenue_topology(rule: str, source: str = "payments", sink: str = "revenue",
                     grace_ms: int = GRACE_MS) -> Topology:
    """Revenue per merchant per hour of event time under ``rule``, from ``source`` to ``sink``
    (keys ``Windowed(merchant, [hour start, hour end))``, values in cents)."""
    counts_as_revenue(rule, "card", 0)  # an unknown rule fails here, not in a stream thread

    def add(_merchant: str, value: str, total: int) -> int:
        method, amount = decode_value(value)
        return total + counts_as_revenue(rule, method, amount)

    builder = StreamsBuilder()
    (builder.stream(source)
     .group_by_key()
     .windowed_by(TimeWindows.of_size_and_grace(HOUR_MS, grace_ms))
     .aggregate(lambda: 0, add, Materialized.as_(STORE))
     .to_stream()
     .to(sink))
    return builder.build()


def revenue_app(kernel: Kernel, application_id: str, rule: str, source: str, sink: str,
                config: dict[str, Any] | None = None) -> KafkaStreams:
    """A started revenue application (one instance, one stream thread)."""
    streams = KafkaStreams(kernel, revenue_topology(rule, source, sink),
                           {**APP_CONFIG, **(config or {}), "application.id": application_id,
                            "client.id": application_id})
    streams.start()
    return streams


def window_cell(key: Any) -> tuple[str, int]:
    """(merchant, hour) of a windowed output key."""
    return key.key, int(key.window.start_ms // HOUR_MS)
