"""Consumer faults, in the shape of ``sim.faults.SlowBroker``: a value with ``apply(kernel)``.

Schedule one with ``sim.faults.schedule(kernel, at_ms, fault)`` or apply it at once with
``fault.apply(kernel)`` (a notebook button). Consumers are named by their ``client.id``.

- ``ConsumerCrash``: the process dies; no commit, no LeaveGroup. The coordinator removes the
  member only when ``session.timeout.ms`` passes without a heartbeat.
- ``ConsumerHang``: every thread stops for ``duration_ms`` (think of a long GC pause): no polls,
  no heartbeats. If the session times out meanwhile, the group moves on without it, and what it
  commits when it wakes up is refused.
- ``SlowConsumer``: processing becomes ``factor`` times slower. Once one poll's records take
  longer than ``max.poll.interval.ms``, the member leaves the group and its commit fails.
- ``ConsumerJoin`` / ``ConsumerLeave``: start a consumer's application, or close it (commit,
  revoke, LeaveGroup).
- ``ConsumerRestart``: start a crashed or closed consumer again as a fresh process.

A scenario's faults are checked against the consumers' states when it loads, but an application
can close its consumer during the run (a consume-transform-produce app whose producer is fenced
closes it). A crash or a hang aimed at such a consumer finds no process to kill or freeze: it
is written to the trace as having no effect, and the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.errors import ConfigError


def find_consumer(kernel: Any, name: str) -> Any:
    """The consumer whose client.id is ``name``, or a clear error listing the consumers."""
    from sim.consumer.client import ConsumerClient

    consumers = [c for c in kernel.clients if isinstance(c, ConsumerClient)]
    for consumer in consumers:
        if consumer.client_id == name:
            return consumer
    known = ", ".join(c.client_id for c in consumers) or "none"
    raise ConfigError(f"There is no consumer {name!r}; consumers are: {known}.")


def _closed_by_its_application(consumer: Any, name: str, detail: str) -> bool:
    """True (and a ``fault`` event saying so) when ``consumer`` is closed, so a scheduled crash
    or hang has nothing to act on: its application closed it during the run."""
    if consumer.lifecycle != "closed":
        return False
    consumer.record_fault(name, f"{detail}no effect: the consumer is closed")
    return True


@dataclass(frozen=True)
class ConsumerCrash:
    """Kill the consumer's process (no LeaveGroup)."""

    consumer: str

    def apply(self, kernel: Any) -> None:
        consumer = find_consumer(kernel, self.consumer)
        if not _closed_by_its_application(consumer, "consumer_crash", ""):
            consumer.crash()


@dataclass(frozen=True)
class ConsumerHang:
    """Freeze the consumer for ``duration_ms``: it neither polls nor heartbeats."""

    consumer: str
    duration_ms: float

    def apply(self, kernel: Any) -> None:
        consumer = find_consumer(kernel, self.consumer)
        if not _closed_by_its_application(consumer, "consumer_hang",
                                          f"duration_ms={self.duration_ms:g}; "):
            consumer.hang(self.duration_ms)


@dataclass(frozen=True)
class SlowConsumer:
    """Make the consumer's processing ``factor`` times slower (1 = back to normal)."""

    consumer: str
    factor: float

    def apply(self, kernel: Any) -> None:
        find_consumer(kernel, self.consumer).slow_down(self.factor)


@dataclass(frozen=True)
class ConsumerJoin:
    """Start the consumer's application: it joins its group."""

    consumer: str

    def apply(self, kernel: Any) -> None:
        consumer = find_consumer(kernel, self.consumer)
        consumer.record_fault("consumer_join", "")
        consumer.run()


@dataclass(frozen=True)
class ConsumerLeave:
    """Close the consumer gracefully: it commits (with auto-commit) and leaves its group."""

    consumer: str

    def apply(self, kernel: Any) -> None:
        consumer = find_consumer(kernel, self.consumer)
        consumer.record_fault("consumer_leave", "")
        consumer.close()


@dataclass(frozen=True)
class ConsumerRestart:
    """Start a crashed or closed consumer again."""

    consumer: str

    def apply(self, kernel: Any) -> None:
        find_consumer(kernel, self.consumer).restart()


ConsumerFault = (ConsumerCrash | ConsumerHang | SlowConsumer | ConsumerJoin | ConsumerLeave
                 | ConsumerRestart)
