"""The ``consumers:`` section of scenario files, consumer faults, and ``group_coordinator:``.

Example::

    duration_ms: 30000
    group_coordinator: {group.initial.rebalance.delay.ms: 3000}
    consumers:
      - group: billing
        topics: [payments]            # or pattern: "pay.*"
        count: 2                      # consumer-billing-1, consumer-billing-2
        app: at-least-once            # at-most-once, at-least-once, auto-commit
        processing_ms_per_record: 2
        config: {max.poll.records: 100}
        start_ms: 0                   # null: started by a join fault
    faults:
      - {at_ms: 8000, crash: {consumer: consumer-billing-1}}
      - {at_ms: 9000, hang: {consumer: consumer-billing-2, duration_ms: 20000}}

Consumers are named as Kafka names them (``consumer-<group>-<n>``, counting every consumer of
the scenario), or ``<name>-<i>`` with ``name:``, or ``<name>`` alone when ``count`` is 1.
``static: true`` makes each one a static member whose ``group.instance.id`` is its name.
"""

from __future__ import annotations

import math
import re
from typing import Any

from sim.config import PRODUCER
from sim.consumer import faults as consumer_faults
from sim.consumer.apps import APPS, AUTO_COMMIT, app_for
from sim.consumer.config import GROUP_COORDINATOR, parse_consumer
from sim.errors import ConfigError

FIELDS = {"group", "topics", "pattern", "count", "app", "processing_ms_per_record", "config",
          "name", "start_ms", "static", "output_topic", "transactional", "producer_config"}
CTP = "consume-transform-produce"
"""The app that writes one output record per input record (``sim.consumer.transform``); it
needs ``output_topic`` and takes ``transactional`` (default true: exactly once) and
``producer_config`` (e.g. ``transaction.timeout.ms``) for the producer each member gets."""
FAULTS: dict[str, tuple[str, ...]] = {
    "crash": (), "hang": ("duration_ms",), "slow": ("factor",), "join": (), "leave": (),
    "restart": (),
}
"""Consumer fault kinds and the fields each needs besides ``consumer``."""
MAX_CONSUMERS = 1_000
MAX_DURATION_MS = 3_600_000
"""The lab's limits on consumers in one scenario and on how long a run with consumers lasts."""


def check(checker: Any, data: dict[str, Any], topics: set[str]) -> list[dict[str, Any]]:
    """Validate ``consumers`` and ``group_coordinator``; return the specs with their names.

    ``checker`` is the scenario module's ``_Checker`` (it raises ``ScenarioError`` naming the
    file and the field).
    """
    checker.config(GROUP_COORDINATOR, data.get("group_coordinator"), "group_coordinator")
    specs = checker.typed(data, "consumers", list, "", default=[])
    if specs and data.get("duration_ms") is None:
        checker.fail("duration_ms", "is required with consumers: a consumer polls forever, so "
                     "the run needs an end time")
    if specs and data["duration_ms"] > MAX_DURATION_MS:
        checker.fail("duration_ms", f"is {data['duration_ms']} ms; with consumers (which poll "
                     f"all the time) the lab simulates at most {MAX_DURATION_MS:,} ms (an hour)")
    out = []
    serial = 0
    for i, spec in enumerate(specs):
        where = f"consumers[{i}]"
        if not isinstance(spec, dict):
            checker.fail(where, "must be a mapping with group, topics and app")
        checker.known(spec, FIELDS, where)
        group = checker.typed(spec, "group", str, where, required=True)
        names = checker.typed(spec, "topics", list, where, default=None)
        pattern = checker.typed(spec, "pattern", str, where, default=None)
        if (names is None) == (pattern is None):
            checker.fail(where, "needs exactly one of topics (a list) or pattern (a regex)")
        if names == []:
            checker.fail(f"{where}.topics", "must name at least one topic")
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                checker.fail(f"{where}.pattern", f"is not a regular expression: {exc}")
        for name in names or []:
            if not isinstance(name, str) or name not in topics:
                checker.fail(f"{where}.topics", f"names topic {name!r}, which the scenario "
                             f"does not create (topics: {', '.join(sorted(topics))})")
        count = checker.typed(spec, "count", int, where, default=1)
        if not 1 <= count <= MAX_CONSUMERS - serial:
            checker.fail(f"{where}.count", f"must be at least 1 (and the scenario's consumers "
                         f"at most {MAX_CONSUMERS:,}, the lab's limit) but is {count}")
        app = checker.typed(spec, "app", str, where, default="at-least-once")
        if app not in APPS and app != CTP:
            checker.fail(f"{where}.app", f"must be one of {', '.join([*APPS, CTP])} but is "
                         f"{app!r}")
        output = checker.typed(spec, "output_topic", str, where, default=None)
        transactional = checker.typed(spec, "transactional", bool, where, default=app == CTP)
        if app == CTP and output not in topics:
            checker.fail(f"{where}.output_topic", f"must name a topic the scenario creates for "
                         f"app {CTP} (topics: {', '.join(sorted(topics))}) but is {output!r}")
        extra = [f for f in ("output_topic", "transactional", "producer_config") if f in spec]
        if app != CTP and extra:
            checker.fail(f"{where}.app", f"is {app!r}; {extra[0]} belongs to app {CTP}")
        producer_config = checker.typed(spec, "producer_config", dict, where, default={})
        checker.config(PRODUCER, producer_config, f"{where}.producer_config")
        per = checker.typed(spec, "processing_ms_per_record", (int, float), where, default=0)
        if per < 0:
            checker.fail(f"{where}.processing_ms_per_record", "must be ≥ 0")
        start = spec.get("start_ms", 0)
        if start is not None and (isinstance(start, bool) or not isinstance(start, int | float)
                                  or not 0 <= start < math.inf):
            checker.fail(f"{where}.start_ms", "must be a time ≥ 0, or null (started by a join "
                         "fault)")
        static = checker.typed(spec, "static", bool, where, default=False)
        config = checker.typed(spec, "config", dict, where, default={})
        config = {"group.id": group, **config}
        config.setdefault("enable.auto.commit", AUTO_COMMIT.get(app, False))
        if app == CTP and transactional:
            config.setdefault("isolation.level", "read_committed")
        if app == "auto-commit" and str(config["enable.auto.commit"]).lower() != "true":
            checker.fail(f"{where}.config", "sets enable.auto.commit=false, but app auto-commit "
                         "relies on it; pick at-least-once or at-most-once instead")
        base = spec.get("name") or config.get("client.id")
        for k in range(1, count + 1):
            serial += 1
            name = (base if count == 1 else f"{base}-{k}") if base else f"consumer-{group}-{serial}"
            member = {**config, "client.id": name}
            if static:
                member["group.instance.id"] = name
            try:
                parse_consumer(member)
            except ConfigError as exc:
                checker.fail(f"{where}.config", f"is invalid: {exc}")
            out.append({"name": name, "config": member, "topics": names, "pattern": pattern,
                        "app": app, "processing_ms_per_record": float(per), "start_ms": start,
                        "output_topic": output, "transactional": transactional,
                        "producer_config": producer_config})
    return out


def is_consumer_fault(fault: Any) -> bool:
    """True for a fault entry of a consumer kind (crash, hang, slow, join, leave, restart)."""
    return isinstance(fault, dict) and any(kind in fault for kind in FAULTS)


def check_fault(checker: Any, fault: dict[str, Any], where: str,
                consumers: list[dict[str, Any]]) -> None:
    """Validate one consumer fault such as ``{at_ms: 500, crash: {consumer: NAME}}``."""
    kind, _at_ms, body = checker.fault_header(fault, FAULTS, where)
    names = [spec["name"] for spec in consumers]
    checker.known(body, {"consumer", *FAULTS[kind]}, f"{where}.{kind}")
    name = checker.typed(body, "consumer", str, f"{where}.{kind}", required=True)
    if name not in names:
        checker.fail(f"{where}.{kind}.consumer", f"names consumer {name!r}; the scenario's "
                     f"consumers are: {', '.join(names) or 'none'}")
    for field in FAULTS[kind]:
        value = checker.typed(body, field, (int, float), f"{where}.{kind}", required=True)
        if value <= 0:
            checker.fail(f"{where}.{kind}.{field}", f"must be > 0 but is {value}")


def check_fault_order(checker: Any, fault_list: list[Any],
                      consumers: list[dict[str, Any]]) -> None:
    """Refuse consumer faults that do not fit the consumer's state at their time.

    Replays the (already validated) consumer faults in the order the run applies them, by
    ``at_ms`` then by position in the list: crash, hang and join need a running consumer,
    leave one that has started, restart one that crashed or left. Otherwise the run would
    stop halfway with ``IllegalStateError``; this names the fault at load time instead.
    """
    starts = {spec["name"]: spec["start_ms"] for spec in consumers}
    state = {name: "running" for name in starts}
    started = dict.fromkeys(starts, False)
    why = {name: "" for name in starts}
    timeline = sorted((float(fault.get("at_ms", 0)), i) for i, fault in enumerate(fault_list)
                      if is_consumer_fault(fault))
    for at_ms, i in timeline:
        fault = fault_list[i]
        kind = next(k for k in FAULTS if k in fault)
        name = fault[kind]["consumer"]
        where = f"faults[{i}].{kind}.consumer"
        start = starts[name]
        if start is not None and start <= at_ms:
            started[name] = True
        if kind == "restart":
            if state[name] == "running":
                checker.fail(where, f"restarts {name} at {at_ms:g} ms, but it is running then; "
                             "crash it or make it leave (an earlier fault) before restarting it")
            state[name], started[name] = "running", True
        elif kind != "slow":
            if state[name] != "running":
                checker.fail(where, f"aims a {kind} at {name} at {at_ms:g} ms, but {why[name]}; "
                             "restart it first (a restart fault) or drop this fault")
            if kind == "leave" and not started[name]:
                checker.fail(where, f"makes {name} leave at {at_ms:g} ms, but it has not "
                             "started by then (its start_ms is later or null, and no join "
                             "fault came before)")
            if kind == "join":
                started[name] = True
            elif kind in ("crash", "leave"):
                state[name] = "crashed" if kind == "crash" else "left"
                why[name] = f"it has {'crashed' if kind == 'crash' else 'left'} at " \
                            f"{at_ms:g} ms (faults[{i}])"


def make_fault(fault: dict[str, Any]) -> Any:
    """The fault object for a validated consumer fault entry."""
    kind = next(k for k in FAULTS if k in fault)
    body = fault[kind]
    name = body["consumer"]
    if kind == "crash":
        return consumer_faults.ConsumerCrash(name)
    if kind == "hang":
        return consumer_faults.ConsumerHang(name, float(body["duration_ms"]))
    if kind == "slow":
        return consumer_faults.SlowConsumer(name, float(body["factor"]))
    if kind == "join":
        return consumer_faults.ConsumerJoin(name)
    if kind == "leave":
        return consumer_faults.ConsumerLeave(name)
    return consumer_faults.ConsumerRestart(name)


def setup(kernel: Any, specs: list[dict[str, Any]],
          coordinator_config: dict[str, Any] | None) -> None:
    """Create the consumers (after the producers) and start them at their ``start_ms``."""
    from sim.consumer import Consumer
    from sim.consumer.group import group_coordinator
    from sim.consumer.transform import ConsumeTransformProduce

    if specs or coordinator_config:
        group_coordinator(kernel, coordinator_config)
    shared: dict[tuple[str, bool], ConsumeTransformProduce] = {}
    for spec in specs:
        if spec["app"] == CTP:  # one app object per output and mode, shared by its members
            key = (spec["output_topic"], spec["transactional"])
            if key not in shared:
                shared[key] = ConsumeTransformProduce(*key, spec["producer_config"])
            app = shared[key]
        else:
            app = app_for(spec["app"])
        consumer = Consumer(kernel, spec["config"], app, spec["processing_ms_per_record"])
        consumer.subscribe(spec["topics"] if spec["pattern"] is None
                           else f"^(?:{spec['pattern']})$")
        start = spec["start_ms"]
        if start is None:
            continue
        if start <= kernel.now_ms:
            consumer.run()
        else:
            kernel.env.timeout(start - kernel.now_ms).callbacks.append(
                lambda _event, c=consumer: c.run())
