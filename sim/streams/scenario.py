"""The ``streams:`` section of scenario files: Kafka Streams applications on the simulated cluster.

Example::

    duration_ms: 120000
    streams:
      - application.id: tagger
        app: tag                      # or rekey (through a repartition topic)
        input: payments
        output: payments-tagged
        instances: 2                  # client ids tagger-1, tagger-2
        config: {commit.interval.ms: 1000}
    faults:
      - {at_ms: 8000, streams_hang: {instance: tagger-1, duration_ms: 20000}}
      - {at_ms: 30000, streams_crash: {instance: tagger-2, lose_state: true}}
      - {at_ms: 40000, streams_restart: {instance: tagger-2}}

``shared_state_dir: true`` runs every instance of an application on one machine with one
``state.dir`` (a folder of the run's own): as in Kafka, the first holds the directory's lock and
each later one fails in its constructor with Kafka's message (``streams.start_failed``); it never
runs, so faults may not name it.

A scenario names its application by one of a few topologies (``APPS``) rather than by code, so
that a file stays data: ``tag`` replaces every value (one sub-topology), ``rekey`` gives every
record a new key and so goes through a repartition topic (two sub-topologies). Both keep each
record's timestamp, which lets a check match every input record with its result. ``count`` is
stateful: it counts the records per key (their values replaced first, since an aggregation skips
null values) in the persistent store ``counts`` (changelog
``<application.id>-counts-changelog``) and writes every new count to the output, so a check
compares the last count per key with the true count.

Instances are named ``<application.id>-<n>`` (their ``client.id``); a thread's clients are
``<instance>-StreamThread-1-consumer``, ``-restore-consumer`` and ``-producer``
(``ClientUtils``), which network faults may name: the fault reaches that client in every
incarnation (a restarted instance's, a producer replaced after fencing).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sim.errors import ConfigError, StreamsError
from sim.streams.builder import StreamsBuilder
from sim.streams.config import (
    StreamsConfig,
    consumer_client_id,
    producer_client_id,
    restore_consumer_client_id,
    thread_client_id,
)
from sim.streams.events import STREAMS_START_FAILED
from sim.streams.faults import StreamsCrash, StreamsRestart
from sim.streams.materialized import Materialized
from sim.streams.topology import Topology

FIELDS = {"application.id", "app", "input", "output", "instances", "config", "start_ms",
          "shared_state_dir"}
FAULTS: dict[str, tuple[str, ...]] = {"streams_hang": ("duration_ms",), "streams_crash": (),
                                      "streams_restart": ()}
"""Streams fault kinds and the fields each needs besides ``instance``."""
FLAGS: dict[str, tuple[str, ...]] = {"streams_crash": ("lose_state",)}
"""Optional true/false fields of a fault kind (``sim.streams.faults``)."""
MAX_INSTANCES = 100
MAX_DURATION_MS = 3_600_000
"""Stream threads poll all the time: the lab simulates at most an hour of a run with them."""


def tag_value(value: Any) -> str:
    """``tag``'s value mapper: the result says it went through the application."""
    return "processed"


def rekey(key: Any, value: Any) -> str:
    """``rekey``'s key selector: a new key, so the records go through a repartition topic."""
    return f"re-{key}"


def key_after(app: str, key: Any) -> Any:
    """The key a record of ``app``'s input has in its output."""
    return rekey(key, None) if app == "rekey" else key


def _tag(builder: StreamsBuilder, source: str, sink: str) -> None:
    builder.stream(source).map_values(tag_value).to(sink)


def _rekey(builder: StreamsBuilder, source: str, sink: str) -> None:
    builder.stream(source).select_key(rekey).repartition().map_values(tag_value).to(sink)


COUNT_STORE = "counts"
"""The store of the ``count`` application."""


def _count(builder: StreamsBuilder, source: str, sink: str) -> None:
    # the values first become non-null: an aggregation skips records with a null value
    # (``KStreamAggregate``), and a scenario's workload sends values as sizes only
    builder.stream(source).map_values(tag_value).group_by_key() \
        .count(Materialized.as_(COUNT_STORE)).to_stream().to(sink)


APPS: dict[str, Callable[[StreamsBuilder, str, str], None]] = {
    "tag": _tag, "rekey": _rekey, "count": _count}


def topology(app: str, source: str, sink: str) -> Topology:
    """The topology of a scenario application."""
    builder = StreamsBuilder()
    APPS[app](builder, source, sink)
    return builder.build()


def check(checker: Any, data: dict[str, Any], topics: set[str]) -> list[dict[str, Any]]:
    """Validate ``streams``; return the specs with each instance's name.

    ``checker`` is the scenario module's ``_Checker`` (it raises ``ScenarioError`` naming the
    file and the field).
    """
    specs = checker.typed(data, "streams", list, "", default=[])
    if specs and data.get("duration_ms") is None:
        checker.fail("duration_ms", "is required with streams: stream threads poll forever, "
                     "so the run needs an end time")
    if specs and data["duration_ms"] > MAX_DURATION_MS:
        checker.fail("duration_ms", f"is {data['duration_ms']} ms; with streams (which poll all "
                     f"the time) the lab simulates at most {MAX_DURATION_MS:,} ms (an hour)")
    out = []
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        where = f"streams[{i}]"
        if not isinstance(spec, dict):
            checker.fail(where, "must be a mapping with application.id, app, input and output")
        checker.known(spec, FIELDS, where)
        app_id = checker.typed(spec, "application.id", str, where, required=True)
        if app_id in seen:
            checker.fail(f"{where}.application.id", f"is {app_id!r}, which an earlier "
                         "application uses; give each its own")
        seen.add(app_id)
        app = checker.typed(spec, "app", str, where, default="tag")
        if app not in APPS:
            checker.fail(f"{where}.app", f"must be one of {', '.join(APPS)} but is {app!r}")
        for field in ("input", "output"):
            name = checker.typed(spec, field, str, where, required=True)
            if name not in topics:
                checker.fail(f"{where}.{field}", f"names topic {name!r}, which the scenario "
                             f"does not create (topics: {', '.join(sorted(topics))})")
        if spec["input"] == spec["output"]:
            checker.fail(f"{where}.output", "must differ from input: the application would "
                         "read its own output forever")
        instances = checker.typed(spec, "instances", int, where, default=1)
        if not 1 <= instances <= MAX_INSTANCES:
            checker.fail(f"{where}.instances", f"must be between 1 and {MAX_INSTANCES} (the "
                         f"lab's limit) but is {instances}")
        start = checker.typed(spec, "start_ms", (int, float), where, default=0)
        if not 0 <= start < math.inf:
            checker.fail(f"{where}.start_ms", f"must be a time in ms ≥ 0 but is {start}")
        config = checker.typed(spec, "config", dict, where, default={})
        if "application.id" in config or "client.id" in config:
            checker.fail(f"{where}.config", "sets application.id or client.id, which the "
                         "scenario gives (application.id above; instances are named for it)")
        try:
            StreamsConfig({"application.id": app_id, **config})
        except ConfigError as exc:
            checker.fail(f"{where}.config", f"is invalid: {exc}")
        shared = checker.typed(spec, "shared_state_dir", bool, where, default=False)
        if shared and "state.dir" in config:
            checker.fail(f"{where}.shared_state_dir", "and config state.dir both choose the "
                         "state directory; give one")
        out.append({"application.id": app_id, "app": app, "input": spec["input"],
                    "output": spec["output"], "start_ms": float(start), "config": config,
                    "instances": [f"{app_id}-{n}" for n in range(1, instances + 1)],
                    "shared_state_dir": shared})
    return out


def client_ids(specs: list[dict[str, Any]]) -> list[str]:
    """The clients the applications create, for network faults: each thread's consumer,
    restore consumer and producer (``ClientUtils``)."""
    ids = []
    for spec in specs:
        threads = int(spec["config"].get("num.stream.threads", 1))
        for name in spec["instances"]:
            for t in range(1, threads + 1):
                thread = thread_client_id(name, t)
                ids += [consumer_client_id(thread), restore_consumer_client_id(thread),
                        producer_client_id(thread)]
    return ids


def is_streams_fault(fault: Any) -> bool:
    """True for a fault entry of a Streams kind (``streams_hang``, ``streams_crash``,
    ``streams_restart``)."""
    return isinstance(fault, dict) and any(kind in fault for kind in FAULTS)


def check_fault(checker: Any, fault: dict[str, Any], where: str,
                specs: list[dict[str, Any]]) -> None:
    """Validate one Streams fault such as ``{at_ms: 500, streams_hang: {instance: NAME, …}}``."""
    kind, at_ms, body = checker.fault_header(fault, FAULTS, where)
    checker.known(body, {"instance", *FAULTS[kind], *FLAGS.get(kind, ())}, f"{where}.{kind}")
    for flag in FLAGS.get(kind, ()):
        checker.typed(body, flag, bool, f"{where}.{kind}", default=False)
    names = [name for spec in specs for name in spec["instances"]]
    name = checker.typed(body, "instance", str, f"{where}.{kind}", required=True)
    if name not in names:
        checker.fail(f"{where}.{kind}.instance", f"names instance {name!r}; the scenario's "
                     f"Streams instances are: {', '.join(names) or 'none'}")
    spec = next(s for s in specs if name in s["instances"])
    if spec["shared_state_dir"] and name != spec["instances"][0]:
        checker.fail(f"{where}.{kind}.instance", f"names {name!r}, which never runs: it shares "
                     f"{spec['instances'][0]}'s state directory (shared_state_dir)")
    for field in FAULTS[kind]:
        value = checker.typed(body, field, (int, float), f"{where}.{kind}", required=True)
        if not 0 < value < math.inf:
            checker.fail(f"{where}.{kind}.{field}", f"must be > 0 but is {value}")
    start = next(s["start_ms"] for s in specs if name in s["instances"])
    if at_ms < start:
        checker.fail(f"{where}.at_ms", f"is {at_ms}, before {name} starts ({start:g} ms)")


def setup(kernel: Any, specs: list[dict[str, Any]]) -> dict[str, Any]:
    """Create every instance and start it at its ``start_ms``; return them by name."""
    from sim.streams.kafka_streams import KafkaStreams
    from sim.streams.state_directory import default_state_dir

    instances = {}
    for spec in specs:
        shared = str(default_state_dir(kernel)) if spec.get("shared_state_dir") else None
        for name in spec["instances"]:
            config = {**spec["config"], "application.id": spec["application.id"],
                      "client.id": name}
            if shared is not None:
                config["state.dir"] = shared
            try:
                app = KafkaStreams(kernel, topology(spec["app"], spec["input"], spec["output"]),
                                   config)
            except StreamsError as exc:  # Kafka's lock on the state directory: never runs
                # the run's temporary folder differs from run to run; the trace must not
                detail = str(exc).replace(shared, "<state.dir>") if shared else str(exc)
                kernel.trace.emit(STREAMS_START_FAILED, kernel.now_ms, name, detail)
                continue
            instances[name] = app
            if spec["start_ms"] <= kernel.now_ms:
                app.start()
            else:
                kernel.env.timeout(spec["start_ms"] - kernel.now_ms).callbacks.append(
                    lambda _event, a=app: a.start())
    return instances


class StreamsHang:
    """Freeze every stream thread of an instance for ``duration_ms`` (a long GC pause): no
    polls, no heartbeats, no processing; past ``session.timeout.ms`` its tasks move."""

    def __init__(self, instance: str, duration_ms: float) -> None:
        self.instance = instance
        self.duration_ms = duration_ms

    def __repr__(self) -> str:
        return f"StreamsHang({self.instance!r}, {self.duration_ms:g})"

    def apply(self, kernel: Any) -> None:
        prefix = f"{self.instance}-StreamThread-"
        for client in kernel.clients:
            if getattr(client, "client_id", "").startswith(prefix) and hasattr(client, "hang") \
                    and client.lifecycle == "running":
                client.hang(self.duration_ms)


def make_fault(fault: dict[str, Any]) -> StreamsHang | StreamsCrash | StreamsRestart:
    """The fault object for a validated Streams fault entry."""
    if "streams_crash" in fault:
        body = fault["streams_crash"]
        return StreamsCrash(body["instance"], bool(body.get("lose_state", False)))
    if "streams_restart" in fault:
        return StreamsRestart(fault["streams_restart"]["instance"])
    body = fault["streams_hang"]
    return StreamsHang(body["instance"], float(body["duration_ms"]))
