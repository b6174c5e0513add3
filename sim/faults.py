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

import math
from dataclasses import dataclass
from typing import Any

from sim import trace as events
from sim.broker.cluster import Network
from sim.consumer.faults import ConsumerCrash as ConsumerCrash  # consumer faults, re-exported
from sim.consumer.faults import ConsumerHang as ConsumerHang
from sim.consumer.faults import ConsumerJoin as ConsumerJoin
from sim.consumer.faults import ConsumerLeave as ConsumerLeave
from sim.consumer.faults import ConsumerRestart as ConsumerRestart
from sim.consumer.faults import SlowConsumer as SlowConsumer
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
        controller = Network.CONTROLLER
        # brokers in the order the sides list them (a set's order would depend on PYTHONHASHSEED)
        brokers = [n for n in dict.fromkeys(self.side_a + self.side_b) if isinstance(n, int)]
        reached = {b: network.connected(b, controller) for b in brokers}
        for a in self.side_a:
            for b in self.side_b:
                if cut:
                    network.cut(a, b)
                else:
                    network.heal(a, b)
        detail = f"{list(self.side_a)} | {list(self.side_b)}"
        _emit(kernel, -1, "network_partition" if cut else "heal_network", detail)
        kernel.cluster.metadata_changed()
        for broker in brokers:  # only a broker whose link to the controller was cut or healed
            if network.connected(broker, controller) != reached[broker]:
                kernel.controller.connection_changed(broker)


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


class FaultSpecError(ValueError):
    """A scenario fault entry is invalid: ``field`` (may be empty) and what is wrong with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}" if field else problem)
        self.field = field
        self.problem = problem


FAULT_KINDS = ("slow_broker", "crash_broker", "restart_broker", "network_partition",
               "heal_network", "link_loss", "preferred_leader_election")
FAULT_FIELDS = {"slow_broker": ("broker", "factor"), "crash_broker": ("broker", "lose_disk"),
                "restart_broker": ("broker",), "network_partition": ("a", "b"),
                "heal_network": ("a", "b"), "link_loss": ("a", "b", "probability"),
                "preferred_leader_election": ()}
"""The fields each fault kind takes in a scenario file."""


def from_spec(spec: dict[str, Any], brokers: int) -> tuple[float, Fault]:
    """Read one scenario fault, e.g. ``{at_ms: 500, crash_broker: {broker: 1}}``.

    Raises:
        FaultSpecError: naming the field and what is allowed (the loader adds the file).
    """
    if not isinstance(spec, dict):
        raise FaultSpecError("", "must be a mapping such as "
                             "{at_ms: 500, crash_broker: {broker: 1}}")
    at_ms = spec.get("at_ms", 0)
    if isinstance(at_ms, bool) or not isinstance(at_ms, int | float) or not 0 <= at_ms < math.inf:
        raise FaultSpecError("at_ms", f"must be a time in ms ≥ 0 but is {at_ms!r}")
    kinds = [k for k in spec if k != "at_ms"]
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise FaultSpecError(str(unknown[0]), f"is not a fault kind; allowed: "
                             f"{', '.join(FAULT_KINDS)}")
    if len(kinds) != 1:
        raise FaultSpecError("", f"needs exactly one fault kind besides at_ms; allowed: "
                             f"{', '.join(FAULT_KINDS)}")
    kind = kinds[0]
    args = spec[kind] if spec[kind] is not None else {}
    if not isinstance(args, dict):
        raise FaultSpecError(kind, "must be a mapping of its fields")
    for name in args:
        if name not in FAULT_FIELDS[kind]:
            raise FaultSpecError(f"{kind}.{name}", f"is not a field of {kind}; allowed: "
                                 f"{', '.join(FAULT_FIELDS[kind]) or 'none'}")

    def broker(name: str = "broker") -> int:
        value = args.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < brokers:
            raise FaultSpecError(f"{kind}.{name}", f"must be a broker id from 0 to "
                                 f"{brokers - 1} but is {value!r}")
        return value

    def side(name: str) -> tuple[Any, ...]:
        nodes = args.get(name)
        if not isinstance(nodes, list) or not nodes:
            raise FaultSpecError(f"{kind}.{name}", "must be a list of broker ids, client ids "
                                 "or 'controller'")
        for node in nodes:
            if isinstance(node, int) and not 0 <= node < brokers:
                raise FaultSpecError(f"{kind}.{name}", f"names broker {node}, but brokers are "
                                     f"0 to {brokers - 1}")
        return tuple(nodes)

    fault: Fault
    if kind == "slow_broker":
        factor = args.get("factor")
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not (
            1 <= factor < math.inf
        ):
            raise FaultSpecError("slow_broker.factor", f"must be a number ≥ 1 but is {factor!r}")
        fault = SlowBroker(broker(), float(factor))
    elif kind == "crash_broker":
        lose_disk = args.get("lose_disk", False)
        if not isinstance(lose_disk, bool):
            raise FaultSpecError("crash_broker.lose_disk", f"must be true or false but is "
                                 f"{lose_disk!r}")
        fault = CrashBroker(broker(), lose_disk)
    elif kind == "restart_broker":
        fault = RestartBroker(broker())
    elif kind in ("network_partition", "heal_network"):
        cls = NetworkPartition if kind == "network_partition" else HealNetwork
        fault = cls(side("a"), side("b"))
    elif kind == "link_loss":
        probability = args.get("probability")
        if isinstance(probability, bool) or not isinstance(probability, int | float) or not (
            0 <= probability <= 1
        ):
            raise FaultSpecError("link_loss.probability", f"must be between 0 and 1 but is "
                                 f"{probability!r}")
        fault = LinkLoss(args.get("a"), args.get("b"), float(probability))
    else:
        fault = PreferredLeaderElection()
    return float(at_ms), fault
