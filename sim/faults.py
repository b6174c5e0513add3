"""Faults: things that go wrong in the cluster, scheduled at a simulated time or fired at once.

Each fault is a small value object with ``apply(kernel)``; ``schedule(kernel, at_ms, fault)``
applies it at a simulated time, and a notebook button simply calls ``fault.apply(kernel)``.

- ``SlowBroker``: a broker handles requests ``factor`` times slower.
- ``CrashBroker`` / ``RestartBroker``: a broker process dies (optionally losing its disk), and
  later starts again. The controller fences it after ``broker.session.timeout.ms``.
- ``NetworkPartition`` / ``HealNetwork``: cut every link between two groups of nodes (brokers by
  id, clients by ``client.id``, and ``"controller"``), and mend them.
- ``LinkLoss``: a link drops each message with a probability.
- ``PreferredLeaderElection``: move leadership back to each partition's first replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim import trace as events
from sim.cluster import Network
from sim.errors import ConfigError


def _check_broker(kernel: Any, broker: int, fault: str) -> None:
    brokers = kernel.cluster.brokers
    if broker not in brokers:
        raise ConfigError(f"{fault}: there is no broker {broker}; brokers are {sorted(brokers)}.")


def _emit(kernel: Any, node: Any, fault: str, detail: str) -> None:
    kernel.trace.emit(events.FAULT, kernel.now_ms, "faults", node, fault, detail)


@dataclass(frozen=True)
class SlowBroker:
    """Make ``broker`` handle requests ``factor`` times slower (1 = back to normal)."""

    broker: int
    factor: float

    def apply(self, kernel: Any) -> None:
        _check_broker(kernel, self.broker, "slow_broker")
        kernel.cluster.brokers[self.broker].set_slowdown(self.factor)
        _emit(kernel, self.broker, "slow_broker", f"factor={self.factor:g}")


@dataclass(frozen=True)
class CrashBroker:
    """Kill ``broker``'s process; with ``lose_disk`` its logs are gone when it restarts."""

    broker: int
    lose_disk: bool = False

    def apply(self, kernel: Any) -> None:
        _check_broker(kernel, self.broker, "crash_broker")
        _emit(kernel, self.broker, "crash_broker", "disk lost" if self.lose_disk else "disk kept")
        kernel.controller.crash_broker(self.broker, self.lose_disk)


@dataclass(frozen=True)
class RestartBroker:
    """Start a crashed ``broker`` again."""

    broker: int

    def apply(self, kernel: Any) -> None:
        _check_broker(kernel, self.broker, "restart_broker")
        _emit(kernel, self.broker, "restart_broker", "")
        kernel.controller.restart_broker(self.broker)


@dataclass(frozen=True)
class NetworkPartition:
    """Cut every link between a node of ``side_a`` and a node of ``side_b``."""

    side_a: tuple[Any, ...]
    side_b: tuple[Any, ...]

    def apply(self, kernel: Any) -> None:
        self._links(kernel, cut=True)

    def _links(self, kernel: Any, cut: bool) -> None:
        network = kernel.cluster.network
        for a in self.side_a:
            for b in self.side_b:
                if cut:
                    network.cut(a, b)
                else:
                    network.heal(a, b)
        detail = f"{list(self.side_a)} | {list(self.side_b)}"
        _emit(kernel, -1, "network_partition" if cut else "heal_network", detail)
        kernel.cluster.metadata_changed()
        for node in {*self.side_a, *self.side_b}:
            if isinstance(node, int) and (Network.CONTROLLER in self.side_a + self.side_b):
                kernel.controller.connection_changed(node)


@dataclass(frozen=True)
class HealNetwork(NetworkPartition):
    """Mend the links a ``NetworkPartition`` with the same sides cut."""

    def apply(self, kernel: Any) -> None:
        self._links(kernel, cut=False)


@dataclass(frozen=True)
class LinkLoss:
    """Drop each message between ``a`` and ``b`` with ``probability`` (0 = a healthy link)."""

    a: Any
    b: Any
    probability: float

    def apply(self, kernel: Any) -> None:
        kernel.cluster.network.set_loss(self.a, self.b, self.probability)
        _emit(kernel, -1, "link_loss", f"{self.a}–{self.b} p={self.probability:g}")


@dataclass(frozen=True)
class PreferredLeaderElection:
    """Ask the controller to move leaders back to their preferred replicas."""

    def apply(self, kernel: Any) -> None:
        _emit(kernel, -1, "preferred_leader_election", "")
        kernel.controller.preferred_leader_election()


Fault = (SlowBroker | CrashBroker | RestartBroker | NetworkPartition | LinkLoss
         | PreferredLeaderElection)


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
