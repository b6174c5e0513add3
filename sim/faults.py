"""Faults: things that go wrong in the cluster, scheduled at a simulated time or fired at once.

For now a broker can be made slow (its request handler takes ``factor`` times longer), which is
what the adaptive partitioner routes around. Crashes, restarts and network partitions arrive with
replication; they plug into the same ``Fault`` shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim import trace as events
from sim.errors import ConfigError


@dataclass(frozen=True)
class SlowBroker:
    """Make ``broker`` handle requests ``factor`` times slower (1 = back to normal)."""

    broker: int
    factor: float

    def apply(self, kernel: Any) -> None:
        brokers = kernel.cluster.brokers
        if self.broker not in brokers:
            raise ConfigError(f"slow_broker: there is no broker {self.broker}; brokers are "
                              f"{sorted(brokers)}.")
        brokers[self.broker].set_slowdown(self.factor)
        kernel.trace.emit(events.FAULT, kernel.now_ms, "faults", self.broker, "slow_broker",
                          f"factor={self.factor:g}")


Fault = SlowBroker


def schedule(kernel: Any, at_ms: float, fault: Fault) -> None:
    """Apply ``fault`` at simulated time ``at_ms`` (at once if that is now)."""
    if at_ms < kernel.now_ms:
        raise ConfigError(f"Cannot schedule a fault at {at_ms} ms: it is already "
                          f"{kernel.now_ms} ms.")
    if at_ms == kernel.now_ms:
        fault.apply(kernel)
        return
    timer = kernel.env.timeout(at_ms - kernel.now_ms)
    timer.callbacks.append(lambda _event: fault.apply(kernel))
