"""Random fault schedules as ordinary scenario dicts (``sim.scenarios`` loads them as YAML).

One schedule is drawn from ``numpy.random.default_rng([seed, index, profile])``, so schedule 12
of seed 7 is the same whether a campaign runs 20 schedules or 2,000. Every fault that has an undo
(restart, heal, factor 1, probability 0, consumer restart) is undone before ``horizon_ms``;
the run then goes on for ``settle_ms`` so that the cluster can recover before it is checked.

Fault kinds drawn (``FAULT_KINDS``): ``crash`` (a broker, with or without its disk, restarted
later), ``split`` (two sides over brokers, ``controller`` and the producer ``app``),
``controller-cut`` / ``producer-cut`` / ``broker-cut`` (one broker from the controller, from
the producer, from another broker), ``lossy-link``, ``slow-broker``, ``preferred-election``,
with consumers, ``consumer-crash``, ``consumer-hang``, ``consumer-leave`` (each restarted
or woken before the horizon), and with a Kafka Streams application, ``streams-hang`` (an
instance frozen, maybe past its session timeout), ``streams-producer-cut`` (a broker cut
from a stream thread's producer) and ``streams-crash`` (an instance's process killed, its state
directory kept or lost, restarted before the horizon).

The ``tiered`` profile runs the safe configs on a tiered topic (KIP-405) with small segments,
slow uploads and little local retention, so that leaders change while segments are copied.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import yaml

PRODUCER = "app"
CONTROLLER = "controller"
TOPIC = "payments"

BROKER_FAULTS = ("crash", "split", "controller-cut", "producer-cut", "broker-cut", "lossy-link",
                 "slow-broker", "preferred-election")
CONSUMER_FAULTS = ("consumer-crash", "consumer-hang", "consumer-leave")
STREAMS_FAULTS = ("streams-hang", "streams-producer-cut", "streams-crash")
FAULT_KINDS = BROKER_FAULTS + CONSUMER_FAULTS + STREAMS_FAULTS
STREAMS_APP = "enricher"
STREAMS_OUTPUT = "payments-enriched"

SAFE_PRODUCER = {"acks": "all", "enable.idempotence": True, "request.timeout.ms": 5000,
                 "delivery.timeout.ms": 30000}
SAFE_TOPIC = {"min.insync.replicas": 2, "unclean.leader.election.enable": False}
UNSAFE_VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "acks=1": ({"acks": "1", "enable.idempotence": False}, {}),
    "unclean-election": ({}, {"unclean.leader.election.enable": True}),
    "min-isr-1": ({}, {"min.insync.replicas": 1}),
}
"""Unsafe profile variants: (producer overrides, topic overrides) on top of the safe config."""
TIERED_TOPIC = {"remote.storage.enable": True, "lab.segment.bytes": 20000,
                "local.retention.bytes": 40000}
TIERED_BROKERS = {"remote.log.storage.system.enable": True,
                  "remote.log.manager.task.interval.ms": 2000, "lab.remote.copy.mb.per.s": 0.005,
                  "log.retention.check.interval.ms": 2000}
"""The tiered profile: ~150-record segments, two kept locally, each upload taking ~4 s."""
CONSUMER_APPS = ("at-least-once", "at-most-once")
STREAMS_APPS = ("tag", "rekey", "count")
STREAMS_GUARANTEES = ("at_least_once", "exactly_once_v2")
"""The ``count`` application runs under either guarantee (record cache off, so every count
reaches the output); the stateless ones under at-least-once."""
STORAGE_TOPIC = {"cleanup.policy": "compact,delete", "lab.segment.bytes": 16384,
                 "retention.ms": 30000, "delete.retention.ms": 5000}
STORAGE_BROKER = {"log.retention.check.interval.ms": 5000, "log.cleaner.backoff.ms": 2000,
                  "log.cleaner.io.max.bytes.per.second": 500000}
"""The storage profile's topic and broker configs: small segments that retention deletes and
the log cleaner compacts while faults happen."""


@dataclass(frozen=True)
class Profile:
    """What a campaign varies: configs, which faults, how much load.

    ``unsafe`` draws one of ``UNSAFE_VARIANTS`` per schedule; ``disk_loss`` lets crashes lose the
    disk; ``consumers`` adds a consumer group (one of ``CONSUMER_APPS``) and consumer faults;
    ``streams`` adds a Kafka Streams application (one of ``STREAMS_APPS``, two instances) that
    reads the topic, and Streams faults; ``count`` runs under one of ``STREAMS_GUARANTEES``.
    ``tiered`` puts the topic on tiered storage (``TIERED_TOPIC``, ``TIERED_BROKERS``).
    ``storage`` makes the topic compacted and deleted (``STORAGE_TOPIC``), so retention and
    the log cleaner remove records that the checks must tie to them, never call lost.
    """

    name: str
    disk_loss: bool = False
    unsafe: bool = False
    consumers: bool = False
    streams: bool = False
    records: int = 3000
    rate_per_s: float = 50.0
    horizon_ms: int = 60_000
    settle_ms: int = 60_000
    max_faults: int = 4
    broker_configs: dict[str, Any] = field(
        default_factory=lambda: {"replica.lag.time.max.ms": 5000})
    tiered: bool = False
    storage: bool = False

    def scaled(self, records: int) -> Profile:
        """The same profile with ``records`` spread over the same production time."""
        seconds = self.records / self.rate_per_s
        return replace(self, records=records, rate_per_s=records / seconds,
                       broker_configs=dict(self.broker_configs))


PROFILES = {
    "safe": Profile("safe"),
    "disk-loss": Profile("disk-loss", disk_loss=True),
    "unsafe": Profile("unsafe", unsafe=True),
    "consumers": Profile("consumers", consumers=True, records=1500, rate_per_s=25.0),
    "streams": Profile("streams", streams=True, records=1500, rate_per_s=25.0),
    "storage": Profile("storage", consumers=True, records=1500, rate_per_s=25.0,
                       broker_configs={"replica.lag.time.max.ms": 5000, **STORAGE_BROKER},
                       storage=True),
    "tiered": Profile("tiered", consumers=True,
                      broker_configs={"replica.lag.time.max.ms": 5000, **TIERED_BROKERS},
                      tiered=True),
}


def generate(profile: Profile, seed: int, index: int = 0) -> dict[str, Any]:
    """Schedule ``index`` of campaign ``seed``: a scenario dict for ``sim.scenarios``.

    With ``disk_loss`` the first fault is always a crash that loses the broker's disk; with
    ``streams`` one fault is always a Streams fault.
    """
    salt = int.from_bytes(profile.name.encode()[:8], "little")
    rng = np.random.default_rng([seed, index, salt])
    producer = dict(SAFE_PRODUCER, **{"client.id": PRODUCER})
    topic = {**SAFE_TOPIC, **(STORAGE_TOPIC if profile.storage else {}),
             **(TIERED_TOPIC if profile.tiered else {})}
    variant = ""
    if profile.unsafe:
        variant = list(UNSAFE_VARIANTS)[int(rng.integers(len(UNSAFE_VARIANTS)))]
        producer.update(UNSAFE_VARIANTS[variant][0])
        topic.update(UNSAFE_VARIANTS[variant][1])
    consumers: list[dict[str, Any]] = []
    if profile.consumers:
        app = CONSUMER_APPS[int(rng.integers(len(CONSUMER_APPS)))]
        consumers = [{"group": "billing", "topics": [TOPIC], "count": 2, "app": app,
                      "processing_ms_per_record": 2,
                      "config": {"max.poll.records": 100, "session.timeout.ms": 10000,
                                 "auto.offset.reset": "earliest"}}]
        variant = app
    streams: list[dict[str, Any]] = []
    if profile.streams:
        app = STREAMS_APPS[int(rng.integers(len(STREAMS_APPS)))]
        config: dict[str, Any] = {"commit.interval.ms": 1000, "session.timeout.ms": 10000}
        variant = app
        if app == "count":
            guarantee = STREAMS_GUARANTEES[int(rng.integers(len(STREAMS_GUARANTEES)))]
            config.update({"processing.guarantee": guarantee, "statestore.cache.max.bytes": 0})
            variant = f"{app}-{guarantee}"
        streams = [{"application.id": STREAMS_APP, "app": app, "input": TOPIC,
                    "output": STREAMS_OUTPUT, "instances": 2, "config": config}]
    kinds = (BROKER_FAULTS + (CONSUMER_FAULTS if consumers else ())
             + (STREAMS_FAULTS if streams else ()))
    faults = _Faults(rng, profile)
    if profile.disk_loss:
        faults.add("crash", lose_disk=True)
    if streams:
        faults.add(STREAMS_FAULTS[int(rng.integers(len(STREAMS_FAULTS)))])
    for _ in range(int(rng.integers(1, profile.max_faults + 1))):
        faults.add(kinds[int(rng.integers(len(kinds)))])
    label = f"{profile.name}{'-' + variant if variant else ''}"
    return {
        "name": f"fuzz-{profile.name}-{seed}-{index}",
        "description": (f"Fuzzer schedule {index} of seed {seed}, profile {label}: "
                        f"{', '.join(faults.drawn)}; every fault undone by "
                        f"{profile.horizon_ms} ms, then {profile.settle_ms} ms to settle."),
        "seed": int(rng.integers(2**31)),
        "duration_ms": profile.horizon_ms + profile.settle_ms,
        "cluster": {"brokers": 3, "broker_configs": dict(profile.broker_configs)},
        "topics": [{"name": name, "partitions": 3, "replication_factor": 3, "configs": topic}
                   for name in [TOPIC] + ([STREAMS_OUTPUT] if streams else [])],
        "producers": [{"config": producer,
                       "workload": {"topic": TOPIC, "records": profile.records,
                                    "rate_per_s": profile.rate_per_s,
                                    "keys": {"uniform": 1000}}}],
        **({"consumers": consumers} if consumers else {}),
        **({"streams": streams} if streams else {}),
        "faults": faults.entries(),
    }


class _Dumper(yaml.SafeDumper):
    """Writes shared lists out in full (no ``&id001`` anchors), so a reader sees every field."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(scenario: dict[str, Any]) -> str:
    """The scenario as YAML text, fields in a reader's order."""
    return yaml.dump(scenario, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class _Faults:
    """Collects drawn faults as (at_ms, order, entry) so that equal times keep draw order."""

    def __init__(self, rng: np.random.Generator, profile: Profile) -> None:
        self.rng = rng
        self.profile = profile
        self.drawn: list[str] = []
        self._entries: list[tuple[int, int, dict[str, Any]]] = []
        self._busy: dict[Any, list[tuple[int, int]]] = {}  # crash / consumer windows per node

    def entries(self) -> list[dict[str, Any]]:
        return [entry for _at, _n, entry in sorted(self._entries, key=lambda e: e[:2])]

    def _at(self, at_ms: int, entry: dict[str, Any]) -> None:
        self._entries.append((at_ms, len(self._entries), {"at_ms": at_ms, **entry}))

    def _window(self, min_ms: int = 500) -> tuple[int, int]:
        horizon = self.profile.horizon_ms
        start = int(self.rng.integers(0, horizon - min_ms))
        end = int(self.rng.integers(start + min_ms, horizon + 1))
        return start, end

    def _free_window(self, node: Any) -> tuple[int, int] | None:
        """A window on ``node`` overlapping none of its earlier ones (with 1 s between)."""
        for _ in range(8):
            start, end = self._window(1000)
            taken = self._busy.setdefault(node, [])
            if all(end + 1000 <= s or start >= e + 1000 for s, e in taken):
                taken.append((start, end))
                return start, end
        return None

    def _broker(self) -> int:
        return int(self.rng.integers(3))

    def add(self, kind: str, lose_disk: bool = False) -> None:
        rng = self.rng
        start, end = self._window()
        if kind == "crash":
            broker = self._broker()
            window = self._free_window(broker)
            if window is None:
                return
            start, end = window
            lose = lose_disk or bool(self.profile.disk_loss and rng.random() < 0.5)
            self._at(start, {"crash_broker": {"broker": broker, "lose_disk": lose}})
            self._at(end, {"restart_broker": {"broker": broker}})
            kind = "crash (disk lost)" if lose else "crash"
        elif kind in ("split", "controller-cut", "producer-cut", "broker-cut"):
            side_a, side_b = self._sides(kind)
            self._at(start, {"network_partition": {"a": side_a, "b": side_b}})
            self._at(end, {"heal_network": {"a": side_a, "b": side_b}})
        elif kind == "lossy-link":
            a, b = self._link()
            probability = round(float(rng.choice([0.05, 0.2, 0.5, 0.9])), 2)
            self._at(start, {"link_loss": {"a": a, "b": b, "probability": probability}})
            self._at(end, {"link_loss": {"a": a, "b": b, "probability": 0.0}})
        elif kind == "slow-broker":
            broker = self._broker()
            factor = int(rng.choice([5, 20, 100]))
            self._at(start, {"slow_broker": {"broker": broker, "factor": factor}})
            self._at(end, {"slow_broker": {"broker": broker, "factor": 1}})
        elif kind == "preferred-election":
            self._at(start, {"preferred_leader_election": {}})
        elif kind == "streams-hang":
            instance = f"{STREAMS_APP}-{int(rng.integers(1, 3))}"
            window = self._free_window(instance)
            if window is None:
                return
            start, end = window
            self._at(start, {"streams_hang": {"instance": instance, "duration_ms": end - start}})
        elif kind == "streams-crash":
            instance = f"{STREAMS_APP}-{int(rng.integers(1, 3))}"
            window = self._free_window(instance)
            if window is None:
                return
            start, end = window
            lose = bool(rng.random() < 0.5)
            self._at(start, {"streams_crash": {"instance": instance, "lose_state": lose}})
            self._at(end, {"streams_restart": {"instance": instance}})
            kind = "streams-crash (state lost)" if lose else "streams-crash"
        elif kind == "streams-producer-cut":
            side_a = [self._broker()]
            side_b = [f"{STREAMS_APP}-{int(rng.integers(1, 3))}-StreamThread-1-producer"]
            self._at(start, {"network_partition": {"a": side_a, "b": side_b}})
            self._at(end, {"heal_network": {"a": side_a, "b": side_b}})
        else:
            consumer = f"consumer-billing-{int(rng.integers(1, 3))}"
            window = self._free_window(consumer)
            if window is None:
                return
            start, end = window
            if kind == "consumer-hang":
                self._at(start, {"hang": {"consumer": consumer, "duration_ms": end - start}})
            else:
                undo = "crash" if kind == "consumer-crash" else "leave"
                self._at(start, {undo: {"consumer": consumer}})
                self._at(end, {"restart": {"consumer": consumer}})
        self.drawn.append(kind)

    def _sides(self, kind: str) -> tuple[list[Any], list[Any]]:
        rng = self.rng
        broker = self._broker()
        if kind == "controller-cut":
            return [broker], [CONTROLLER]
        if kind == "producer-cut":
            return [broker], [PRODUCER]
        if kind == "broker-cut":
            other = (broker + 1 + int(rng.integers(2))) % 3
            return [broker], [other]
        nodes: list[Any] = [0, 1, 2, CONTROLLER, PRODUCER]
        while True:
            mask = rng.random(len(nodes)) < 0.5
            if mask.any() and not mask.all():
                return ([n for n, m in zip(nodes, mask, strict=True) if m],
                        [n for n, m in zip(nodes, mask, strict=True) if not m])

    def _link(self) -> tuple[Any, Any]:
        broker = self._broker()
        peers: list[Any] = [b for b in range(3) if b != broker] + [CONTROLLER, PRODUCER]
        return broker, peers[int(self.rng.integers(len(peers)))]
