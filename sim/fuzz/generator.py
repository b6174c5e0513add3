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
directory kept or lost, restarted before the horizon); half of the stateful ``count``
applications keep a standby replica of each task (``num.standby.replicas`` 1) on the other
instance, so that a task moves to a warm copy. ``Profile.streams_consumer_cuts`` adds
``streams-consumer-cut`` faults (``STREAMS_CONSUMER_FAULTS``) from a stream of their own: a
broker cut from a stream thread's consumer or from its restore consumer, then healed; cut from
the group coordinator the consumer's heartbeats fail and its session may expire, cut from a
leader its fetches (or the changelog restoration) wait. The transactions profiles add one fault
aimed at a loop member's transaction coordinator (``COORDINATOR_FAULTS``): the broker leading
the ``__transaction_state`` partition of its ``transactional.id`` crashed, cut from the rest of
the cluster, or cut from the member's producer, while transactions are open.

The ``connect`` profile runs a Kafka Connect pipeline instead of a producer
(``sim.connect.scenario``: a file source, a topic, a JDBC sink with 2 tasks, on 2 or 3
distributed workers) under the broker faults (the source task's producer stands for the
producer ``app``) and ``CONNECT_FAULTS``, one always: ``connect-crash`` (a worker's process
killed, restarted before the horizon) and ``connect-client-cut`` (a broker cut from one of the
pipeline's clients: the source task's producer, a sink task's consumer or the offset topic's
producer, wherever their worker is). A worker frozen past its session timeout is not drawn: the
lab's worker cannot freeze its tasks and clients together.

A profile's ``controller_cuts`` adds that many faults cutting the controller off from brokers
(``CONTROLLER_FAULTS``), drawn from a stream of their own after the others, so a schedule is its
profile's plain schedule plus them: ``controller-split`` (the controller from every broker),
``controller-pair-cut`` (from two brokers, which still reach the third) and ``controller-cut``.
Cut off from the leader and the rest of its ISR, the controller records decisions the leader
cannot hear (``sim.broker.controller``); campaigns weighted so reach that case often.

The ``streams-expiring`` profile is the ``streams`` one with a 10 s ``delivery.timeout.ms`` for
the stream threads' producers, so that their sends expire while a broker is cut from them.

The ``tiered`` profile runs the safe configs on a tiered topic (KIP-405) with small segments,
slow uploads and little local retention, so that leaders change while segments are copied.

The ``architectures`` profile runs one of lesson 09's architectures (``sim.architectures``: an
hour of payments into a tiered topic) under the broker faults, half the time with an outage of
every processing component (``outage``), the revenue rule changing at a drawn time: each
answer must end as the same run's without the faults (``sim.fuzz.architecture_check``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import yaml

from sim.streams.config import (
    consumer_client_id,
    producer_client_id,
    restore_consumer_client_id,
    thread_client_id,
)

PRODUCER = "app"
CONTROLLER = "controller"
TOPIC = "payments"

BROKER_FAULTS = ("crash", "split", "controller-cut", "producer-cut", "broker-cut", "lossy-link",
                 "slow-broker", "preferred-election")
CONSUMER_FAULTS = ("consumer-crash", "consumer-hang", "consumer-leave")
STREAMS_FAULTS = ("streams-hang", "streams-producer-cut", "streams-crash")
STREAMS_CONSUMER_FAULTS = ("streams-consumer-cut",)
"""What ``Profile.streams_consumer_cuts`` draws: a broker cut from a stream thread's consumer
or its restore consumer (``sim.streams.config.consumer_client_id``, Kafka's client ids)."""
COORDINATOR_FAULTS = ("coordinator-crash", "coordinator-isolated", "coordinator-producer-cut")
CONNECT_FAULTS = ("connect-crash", "connect-client-cut")
CONTROLLER_FAULTS = ("controller-split", "controller-pair-cut", "controller-cut")
"""What ``Profile.controller_cuts`` draws: the controller cut from all three brokers, from two,
from one (the brokers and clients still reach each other)."""
FAULT_KINDS = (BROKER_FAULTS + CONSUMER_FAULTS + STREAMS_FAULTS + STREAMS_CONSUMER_FAULTS
               + COORDINATOR_FAULTS
               + CONNECT_FAULTS + ("controller-split", "controller-pair-cut"))
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
UNSAFE_TXN_VARIANTS = ("unclean-election", "min-isr-1")
"""The variants a transactional loop can run under: its producers are idempotent with acks=all
(Kafka refuses a transactional producer with acks=1), so only the topics are made unsafe."""
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
    ``transactions`` runs a transactional consume-transform-produce loop and read_committed /
    read_uncommitted readers of its output (``transactions_consumers``); consumer faults hit
    the loop's members, mid-transaction, and one fault hits a member's transaction coordinator
    (``COORDINATOR_FAULTS``). With ``unsafe`` as well, the input and output topics run one of
    ``UNSAFE_TXN_VARIANTS``.
    ``connect`` runs a Kafka Connect pipeline (``records`` lines at ``rate_per_s``) in place of
    the producer, and Connect faults (``CONNECT_FAULTS``).
    ``controller_cuts`` adds that many ``CONTROLLER_FAULTS`` to each schedule (weighting a
    campaign toward the controller cut off from brokers; 0 draws none).
    ``streams_consumer_cuts`` adds that many ``STREAMS_CONSUMER_FAULTS`` to each schedule of a
    profile with ``streams`` (0 draws none, so the plain schedules stay as they were).
    ``architecture`` runs one of the lesson's architectures (``architecture_schedule``) under
    broker faults and maybe a processing outage; ``horizon_ms`` is then within its hour of
    payments.
    ``streams_delivery_timeout_ms`` gives the stream threads' producers that
    ``delivery.timeout.ms`` (and a 3 s ``request.timeout.ms``; Streams leaves Kafka's 120 s
    default, longer than any fault here), so that a broker cut from a stream thread's producer
    outlasts its sends: their failure must never be committed past.
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
    transactions: bool = False
    connect: bool = False
    controller_cuts: int = 0
    streams_consumer_cuts: int = 0
    architecture: bool = False
    streams_delivery_timeout_ms: int | None = None

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
    "streams-expiring": Profile("streams-expiring", streams=True, records=1500, rate_per_s=25.0,
                                streams_delivery_timeout_ms=10_000),
    "storage": Profile("storage", consumers=True, records=1500, rate_per_s=25.0,
                       broker_configs={"replica.lag.time.max.ms": 5000, **STORAGE_BROKER},
                       storage=True),
    "tiered": Profile("tiered", consumers=True,
                      broker_configs={"replica.lag.time.max.ms": 5000, **TIERED_BROKERS},
                      tiered=True),
    "transactions": Profile("transactions", transactions=True, records=1500, rate_per_s=25.0),
    "transactions-unsafe": Profile("transactions-unsafe", transactions=True, unsafe=True,
                                   records=1500, rate_per_s=25.0),
    "connect": Profile("connect", connect=True, records=600, rate_per_s=12.0),
    "architectures": Profile("architectures", architecture=True, horizon_ms=2_400_000),
}
CONNECT_TOPIC = "lines"
CONNECT_SOURCE_PRODUCER = "connector-producer-src-0"
CONNECT_DELAYS_MS = (0, 10_000)
"""``scheduled.rebalance.max.delay.ms`` values drawn for the connect profile: a crashed worker's
tasks move at once, or wait 10 s for it to come back (KIP-415)."""


EOS_OUTPUT = "payments-out"
EOS_MEMBERS = ("eos-1", "eos-2")
BILLING_MEMBERS = ("consumer-billing-1", "consumer-billing-2")
COORDINATOR_EARLIEST_MS = 8_000
"""Coordinator faults start after this: the loop's producers exist and transactions are open
(the group's first join takes some seconds)."""
EOS_TIMEOUTS_MS = (10_000, 20_000, 60_000)
"""The transactions profile: ``transaction.timeout.ms`` values drawn for the loop's producers;
the shorter ones are below the longest pauses, so the coordinator aborts and fences."""


def transactions_consumers(rng: np.random.Generator) -> tuple[list[dict[str, Any]], str]:
    """The transactions profile's consumers: a transactional consume-transform-produce loop
    (group ``eos``, members ``EOS_MEMBERS``) from ``TOPIC`` to ``EOS_OUTPUT``, and two readers
    of the output, one ``read_committed`` and one ``read_uncommitted``; and the variant label."""
    timeout_ms = int(EOS_TIMEOUTS_MS[int(rng.integers(len(EOS_TIMEOUTS_MS)))])
    reader = {"max.poll.records": 200, "session.timeout.ms": 10000,
              "auto.offset.reset": "earliest"}
    return [{"group": "eos", "name": "eos", "topics": [TOPIC], "count": 2,
             "app": "consume-transform-produce", "output_topic": EOS_OUTPUT,
             "producer_config": {"transaction.timeout.ms": timeout_ms},
             "processing_ms_per_record": 2,
             "config": {"max.poll.records": 50, "session.timeout.ms": 10000,
                        "auto.offset.reset": "earliest"}},
            {"group": "committed", "name": "committed", "topics": [EOS_OUTPUT], "count": 1,
             "app": "at-least-once", "config": {**reader, "isolation.level": "read_committed"}},
            {"group": "uncommitted", "name": "uncommitted", "topics": [EOS_OUTPUT], "count": 1,
             "app": "at-least-once",
             "config": {**reader, "isolation.level": "read_uncommitted"}}], f"txn{timeout_ms}"


ARCHITECTURES = ("batch", "lambda", "kappa", "lake")
"""The architectures profile draws one of these (``sim.architectures.VARIANTS``)."""
ARCHITECTURE_SEED = 9
"""Every architecture schedule runs the lesson's payments (its seed): the faults vary, so the
fault-free run each is judged against is the same for many schedules."""
ARCHITECTURE_WORKLOAD = {"hours": 1, "every_ms": 10_000, "change_ms": 1_800_000}
"""An hour of payments (about 360), the rule changing at 30 minutes: faults within the
profile's horizon (40 minutes), then at least 20 minutes of payments and the run's 3-minute
tail to settle."""


def architecture_schedule(profile: Profile, seed: int, index: int, rng: np.random.Generator,
                          key: list[int]) -> dict[str, Any]:
    """An architectures profile schedule: one architecture (lambda with or without the new
    rule in its speed layer), broker faults, and half the time an outage of every processing
    component (over the rule change or not); all within the horizon."""
    from sim.architectures.run import PRODUCER_CLIENT_ID  # here: it loads matplotlib

    variant = ARCHITECTURES[int(rng.integers(len(ARCHITECTURES)))]
    section: dict[str, Any] = {"variant": variant, "workload": dict(ARCHITECTURE_WORKLOAD)}
    label = variant
    if variant == "lambda":
        section["update_speed_layer"] = bool(rng.random() < 0.5)
        label += "-updated" if section["update_speed_layer"] else ""
    drawn = []
    if rng.random() < 0.5:
        start = int(rng.integers(0, profile.horizon_ms - 60_000))
        end = int(rng.integers(start + 60_000, profile.horizon_ms + 1))
        section["outage"] = {"start_ms": start, "end_ms": end}
        drawn.append("processing outage")
    faults = _Faults(rng, profile, (), PRODUCER_CLIENT_ID)
    for _ in range(int(rng.integers(1, profile.max_faults + 1))):
        faults.add(BROKER_FAULTS[int(rng.integers(len(BROKER_FAULTS)))])
    _add_controller_cuts(faults, key)
    return {
        "name": f"fuzz-{profile.name}-{seed}-{index}",
        "description": (f"Fuzzer schedule {index} of seed {seed}, profile {profile.name}-{label}: "
                        f"{', '.join(drawn + faults.drawn)}; every fault undone by "
                        f"{profile.horizon_ms} ms."),
        "seed": ARCHITECTURE_SEED,
        "architecture": section,
        "faults": faults.entries(),
    }


def generate(profile: Profile, seed: int, index: int = 0) -> dict[str, Any]:
    """Schedule ``index`` of campaign ``seed``: a scenario dict for ``sim.scenarios``.

    With ``disk_loss`` the first fault is always a crash that loses the broker's disk; with
    ``streams`` one fault is always a Streams fault.
    """
    salt = int.from_bytes(profile.name.encode()[:8], "little")
    # transactions-unsafe shares its first 8 bytes with transactions: its own stream
    key = [seed, index, salt, *([2] if profile.unsafe and profile.transactions else [])]
    rng = np.random.default_rng(key)
    producer = dict(SAFE_PRODUCER, **{"client.id": PRODUCER})
    topic = {**SAFE_TOPIC, **(STORAGE_TOPIC if profile.storage else {}),
             **(TIERED_TOPIC if profile.tiered else {})}
    variant = ""
    if profile.unsafe and not profile.transactions:
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
        if profile.streams_delivery_timeout_ms is not None:
            config.update({"producer.delivery.timeout.ms": profile.streams_delivery_timeout_ms,
                           "producer.request.timeout.ms": 3000})
        variant = app
        if app == "count":
            guarantee = STREAMS_GUARANTEES[int(rng.integers(len(STREAMS_GUARANTEES)))]
            config.update({"processing.guarantee": guarantee, "statestore.cache.max.bytes": 0})
            variant = f"{app}-{guarantee}"
            # a stream of its own, so that the draws below are those of a profile without it
            if np.random.default_rng([*key, 5]).random() < 0.5:
                config["num.standby.replicas"] = 1  # each task warm on the other instance
                variant += "-standby"
        streams = [{"application.id": STREAMS_APP, "app": app, "input": TOPIC,
                    "output": STREAMS_OUTPUT, "instances": 2, "config": config}]
    if profile.connect:
        return _connect_schedule(profile, seed, index, rng, key)
    if profile.architecture:
        return architecture_schedule(profile, seed, index, rng, key)
    if profile.transactions:
        consumers, variant = transactions_consumers(rng)
        if profile.unsafe:
            unsafe = UNSAFE_TXN_VARIANTS[int(rng.integers(len(UNSAFE_TXN_VARIANTS)))]
            topic.update(UNSAFE_VARIANTS[unsafe][1])
            variant = f"{variant}-{unsafe}"
    kinds = (BROKER_FAULTS + (CONSUMER_FAULTS if consumers else ())
             + (STREAMS_FAULTS if streams else ()))
    faults = _Faults(rng, profile, EOS_MEMBERS if profile.transactions else BILLING_MEMBERS)
    faults.stateful_streams = bool(streams) and streams[0]["app"] == "count"
    if profile.disk_loss:
        faults.add("crash", lose_disk=True)
    if streams:
        faults.add(STREAMS_FAULTS[int(rng.integers(len(STREAMS_FAULTS)))])
    for _ in range(int(rng.integers(1, profile.max_faults + 1))):
        faults.add(kinds[int(rng.integers(len(kinds)))])
    run_seed = int(rng.integers(2**31))
    label = f"{profile.name}{'-' + variant if variant else ''}"
    scenario = {
        "name": f"fuzz-{profile.name}-{seed}-{index}",
        "description": "",
        "seed": run_seed,
        "duration_ms": profile.horizon_ms + profile.settle_ms,
        "cluster": {"brokers": 3, "broker_configs": dict(profile.broker_configs)},
        "topics": [{"name": name, "partitions": 3, "replication_factor": 3, "configs": topic}
                   for name in [TOPIC] + ([STREAMS_OUTPUT] if streams else [])
                   + ([EOS_OUTPUT] if profile.transactions else [])],
        "producers": [{"config": producer,
                       "workload": {"topic": TOPIC, "records": profile.records,
                                    "rate_per_s": profile.rate_per_s,
                                    "keys": {"uniform": 1000}}}],
        **({"consumers": consumers} if consumers else {}),
        **({"streams": streams} if streams else {}),
        "faults": [],
    }
    if profile.transactions:
        # a stream of its own, so that the draws above are those of a profile without it
        faults.rng = np.random.default_rng([*key, 1])
        member = EOS_MEMBERS[int(faults.rng.integers(len(EOS_MEMBERS)))]
        kind = COORDINATOR_FAULTS[int(faults.rng.integers(len(COORDINATOR_FAULTS)))]
        # a loop member's transactional.id is its client id; its producer is "<id>-producer"
        faults.add(kind, coordinator=(coordinator_of(scenario, member), f"{member}-producer"))
    _add_controller_cuts(faults, key)
    if streams:
        _add_streams_consumer_cuts(faults, key)
    scenario["description"] = (f"Fuzzer schedule {index} of seed {seed}, profile {label}: "
                               f"{', '.join(faults.drawn)}; every fault undone by "
                               f"{profile.horizon_ms} ms, then {profile.settle_ms} ms to settle.")
    scenario["faults"] = faults.entries()
    return scenario


def _add_controller_cuts(faults: _Faults, key: list[int]) -> None:
    """``faults.profile.controller_cuts`` faults of ``CONTROLLER_FAULTS``, from a stream of
    their own: the schedule's other faults are those of the profile without them."""
    if not faults.profile.controller_cuts:
        return
    faults.rng = np.random.default_rng([*key, 3])
    for _ in range(faults.profile.controller_cuts):
        faults.add(CONTROLLER_FAULTS[int(faults.rng.integers(len(CONTROLLER_FAULTS)))])


def _add_streams_consumer_cuts(faults: _Faults, key: list[int]) -> None:
    """``faults.profile.streams_consumer_cuts`` faults of ``STREAMS_CONSUMER_FAULTS``, from a
    stream of their own: the schedule's other faults are those of the profile without them."""
    if not faults.profile.streams_consumer_cuts:
        return
    faults.rng = np.random.default_rng([*key, 4])
    for _ in range(faults.profile.streams_consumer_cuts):
        kind = STREAMS_CONSUMER_FAULTS[int(faults.rng.integers(len(STREAMS_CONSUMER_FAULTS)))]
        faults.add(kind)


def _connect_schedule(profile: Profile, seed: int, index: int, rng: np.random.Generator,
                      key: list[int]) -> dict[str, Any]:
    """A connect profile schedule: the pipeline of ``sim.connect.scenario`` on the safe topic,
    broker faults and Connect faults (one at least)."""
    workers = int(rng.integers(2, 4))
    delay = CONNECT_DELAYS_MS[int(rng.integers(len(CONNECT_DELAYS_MS)))]
    spec = {"workers": workers, "topic": CONNECT_TOPIC,
            "source": {"lines": profile.records, "rate_per_s": profile.rate_per_s},
            "sink": {"tasks": 2}, "config": {"scheduled.rebalance.max.delay.ms": delay}}
    faults = _Faults(rng, profile, (), CONNECT_SOURCE_PRODUCER)
    faults.workers = [f"connect-{n}" for n in range(1, workers + 1)]
    faults.add(CONNECT_FAULTS[int(rng.integers(len(CONNECT_FAULTS)))])
    kinds = BROKER_FAULTS + CONNECT_FAULTS
    for _ in range(int(rng.integers(1, profile.max_faults + 1))):
        faults.add(kinds[int(rng.integers(len(kinds)))])
    label = f"{profile.name}-{workers}workers-delay{delay}"
    run_seed = int(rng.integers(2**31))
    _add_controller_cuts(faults, key)
    return {
        "name": f"fuzz-{profile.name}-{seed}-{index}",
        "description": (f"Fuzzer schedule {index} of seed {seed}, profile {label}: "
                        f"{', '.join(faults.drawn)}; every fault undone by "
                        f"{profile.horizon_ms} ms, then {profile.settle_ms} ms to settle."),
        "seed": run_seed,
        "duration_ms": profile.horizon_ms + profile.settle_ms,
        "cluster": {"brokers": 3, "broker_configs": dict(profile.broker_configs)},
        "topics": [{"name": CONNECT_TOPIC, "partitions": 3, "replication_factor": 3,
                    "configs": dict(SAFE_TOPIC)}],
        "connect": spec,
        "faults": faults.entries(),
    }


def coordinator_of(scenario: dict[str, Any], transactional_id: str) -> int:
    """The broker leading ``transactional_id``'s ``__transaction_state`` partition in a run of
    ``scenario`` without its faults, once the topic exists (the first transactional producer
    creates it, placing its replicas with the run's random generator, as Kafka auto-creates
    it). The placement does not depend on the faults, so the coordinator is still that broker
    when a fault starts (after ``COORDINATOR_EARLIEST_MS``) unless an earlier fault moved the
    partition's leader."""
    from sim import scenarios

    kernel = scenarios.from_dict({**scenario, "faults": []}, "probe.yaml").build()
    while getattr(kernel.cluster, "transaction_coordinator", None) is None:
        if kernel.now_ms >= scenario["duration_ms"]:
            raise ValueError(f"no transactional producer by {kernel.now_ms:.0f} ms")
        kernel.run(kernel.now_ms + 100)
    return kernel.cluster.transaction_coordinator.node_for(transactional_id)


class _Dumper(yaml.SafeDumper):
    """Writes shared lists out in full (no ``&id001`` anchors), so a reader sees every field."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(scenario: dict[str, Any]) -> str:
    """The scenario as YAML text, fields in a reader's order."""
    return yaml.dump(scenario, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class _Faults:
    """Collects drawn faults as (at_ms, order, entry) so that equal times keep draw order."""

    def __init__(self, rng: np.random.Generator, profile: Profile,
                 members: tuple[str, ...] = ("consumer-billing-1", "consumer-billing-2"),
                 producer: str = PRODUCER) -> None:
        self.rng = rng
        self.profile = profile
        self.members = members
        self.producer = producer
        self.workers: list[str] = []
        self.stateful_streams = False
        """The Streams app has state stores, so its restore consumers restore changelogs."""
        self.drawn: list[str] = []
        self._entries: list[tuple[int, int, dict[str, Any]]] = []
        self._busy: dict[Any, list[tuple[int, int]]] = {}  # crash / consumer windows per node

    def entries(self) -> list[dict[str, Any]]:
        return [entry for _at, _n, entry in sorted(self._entries, key=lambda e: e[:2])]

    def _at(self, at_ms: int, entry: dict[str, Any]) -> None:
        self._entries.append((at_ms, len(self._entries), {"at_ms": at_ms, **entry}))

    def _window(self, min_ms: int = 500, earliest: int = 0) -> tuple[int, int]:
        horizon = self.profile.horizon_ms
        start = int(self.rng.integers(earliest, horizon - min_ms))
        end = int(self.rng.integers(start + min_ms, horizon + 1))
        return start, end

    def _free_window(self, node: Any, earliest: int = 0) -> tuple[int, int] | None:
        """A window on ``node`` overlapping none of its earlier ones (with 1 s between)."""
        for _ in range(8):
            start, end = self._window(1000, earliest)
            taken = self._busy.setdefault(node, [])
            if all(end + 1000 <= s or start >= e + 1000 for s, e in taken):
                taken.append((start, end))
                return start, end
        return None

    def _broker(self) -> int:
        return int(self.rng.integers(3))

    def add(self, kind: str, lose_disk: bool = False,
            coordinator: tuple[int, str] | None = None) -> None:
        """Draw one fault of ``kind``; ``coordinator``: (its broker, the member's producer)."""
        rng = self.rng
        if kind in COORDINATOR_FAULTS:
            assert coordinator is not None
            self._coordinator(kind, *coordinator)
            return
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
        elif kind in ("split", "controller-cut", "producer-cut", "broker-cut",
                      "controller-split", "controller-pair-cut"):
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
        elif kind == "connect-crash":
            worker = self.workers[int(rng.integers(len(self.workers)))]
            window = self._free_window(worker)
            if window is None:
                return
            start, end = window
            self._at(start, {"connect_crash": {"worker": worker}})
            self._at(end, {"connect_restart": {"worker": worker}})
            kind = f"connect-crash ({worker})"
        elif kind == "connect-client-cut":
            clients = [self.producer, "connector-consumer-db-0", "connector-consumer-db-1",
                       "connect-cluster-offsets"]
            side_a = [self._broker()]
            side_b = [clients[int(rng.integers(len(clients)))]]
            self._at(start, {"network_partition": {"a": side_a, "b": side_b}})
            self._at(end, {"heal_network": {"a": side_a, "b": side_b}})
            kind = f"connect-client-cut ({side_b[0]})"
        elif kind == "streams-consumer-cut":
            thread = thread_client_id(f"{STREAMS_APP}-{int(rng.integers(1, 3))}", 1)
            restore = bool(rng.random() < 0.5) and self.stateful_streams
            client = restore_consumer_client_id(thread) if restore else consumer_client_id(thread)
            side_a, side_b = [self._broker()], [client]
            self._at(start, {"network_partition": {"a": side_a, "b": side_b}})
            self._at(end, {"heal_network": {"a": side_a, "b": side_b}})
            kind = f"streams-consumer-cut ({client})"
        elif kind == "streams-producer-cut":
            side_a = [self._broker()]
            side_b = [producer_client_id(thread_client_id(
                f"{STREAMS_APP}-{int(rng.integers(1, 3))}", 1))]
            self._at(start, {"network_partition": {"a": side_a, "b": side_b}})
            self._at(end, {"heal_network": {"a": side_a, "b": side_b}})
        else:
            consumer = self.members[int(rng.integers(len(self.members)))]
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

    def _coordinator(self, kind: str, broker: int, producer: str) -> None:
        """A fault on a transaction coordinator's broker while transactions are open."""
        window = None
        if kind == "coordinator-crash":
            window = self._free_window(broker, COORDINATOR_EARLIEST_MS)
            if window is None:  # the broker is down then already: cut it off instead
                kind = "coordinator-isolated"
        if window is not None:
            start, end = window
            self._at(start, {"crash_broker": {"broker": broker, "lose_disk": False}})
            self._at(end, {"restart_broker": {"broker": broker}})
        else:
            start, end = self._window(1000, COORDINATOR_EARLIEST_MS)
            rest: list[Any] = [producer]
            if kind == "coordinator-isolated":
                rest = [b for b in range(3) if b != broker] + [CONTROLLER]
            self._at(start, {"network_partition": {"a": [broker], "b": rest}})
            self._at(end, {"heal_network": {"a": [broker], "b": rest}})
        self.drawn.append(f"{kind} (broker {broker})")

    def _sides(self, kind: str) -> tuple[list[Any], list[Any]]:
        rng = self.rng
        broker = self._broker()
        if kind == "controller-cut":
            return [broker], [CONTROLLER]
        if kind == "controller-split":
            return [CONTROLLER], [0, 1, 2]
        if kind == "controller-pair-cut":  # the two brokers other than ``broker``
            return [b for b in range(3) if b != broker], [CONTROLLER]
        if kind == "producer-cut":
            return [broker], [self.producer]
        if kind == "broker-cut":
            other = (broker + 1 + int(rng.integers(2))) % 3
            return [broker], [other]
        nodes: list[Any] = [0, 1, 2, CONTROLLER, self.producer]
        while True:
            mask = rng.random(len(nodes)) < 0.5
            if mask.any() and not mask.all():
                return ([n for n, m in zip(nodes, mask, strict=True) if m],
                        [n for n, m in zip(nodes, mask, strict=True) if not m])

    def _link(self) -> tuple[Any, Any]:
        broker = self._broker()
        peers: list[Any] = [b for b in range(3) if b != broker] + [CONTROLLER, self.producer]
        return broker, peers[int(self.rng.integers(len(peers)))]
