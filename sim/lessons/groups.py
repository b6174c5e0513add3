"""Lesson computations for consumer groups (lesson 03): assignors, lag, crashes, rebalances.

The notebook ``03_consumer_groups`` calls these so that each cell stays a line or two, and
``tests/test_lessons_groups.py`` calls the very same functions to back every number the lesson
states. Everything is a plain function returning a DataFrame (or a small result object holding
DataFrames); nothing here draws.

Vocabulary:

- *assignment*: member id → the partitions it owns, as a partition assignor computes it from the
  members' subscriptions (:func:`assign` runs the lab's copies of Kafka's four assignors).
- *moved*: a partition whose owner after a rebalance differs from its owner before.
- *stopped*: a partition nobody consumes for a while during the rebalance. The **eager** protocol
  (range, roundrobin, sticky) makes every member revoke everything first, so every owned
  partition stops; the **cooperative** protocol (cooperative-sticky) revokes only what moves,
  and hands it out in a second round. Worked example: C0 owns t-0, t-1, t-2 and C1 joins. Sticky
  moves t-2 to C1 in one round, but all three partitions stop; cooperative-sticky stops only t-2
  and needs two rounds (round 1 takes it from C0, round 2 gives it to C1).
- *lag*: per partition, high watermark minus the group's committed offset, as
  ``kafka-consumer-groups.sh --describe`` prints it (a partition without a commit counts from
  offset 0, as the group reads from the beginning). ``consumer_lag`` is the consumer's own
  metric: high watermark minus its position.
- *skipped* / *processed twice*: the delivery audit's names (``sim.audit``) for records a group
  moved past without processing (at most once) and records processed again (at least once).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim import faults, scenarios
from sim.audit import AuditReport, audit_kernel
from sim.config import KAFKA_VERSION  # the release whose behaviour the lesson shows
from sim.consumer import Consumer
from sim.consumer import events as consumer_events
from sim.consumer import metrics as group_metrics
from sim.consumer.apps import APPS, AUTO_COMMIT
from sim.consumer.assignors import (
    ASSIGNORS,
    COOPERATIVE,
    DEFAULT_GENERATION,
    Assignment,
    Subscription,
    assignor_for,
)
from sim.consumer.config import CONSUMER, assignor_names
from sim.consumer.group import group_coordinator
from sim.consumer.scenario import make_fault
from sim.errors import ConfigError
from sim.kernel import Kernel
from sim.producer import Producer
from sim.records import TopicPartition
from sim.workloads import UniformKeys, Workload

__all__ = [
    "ASSIGNOR_NAMES",
    "CRASH_SCENARIO",
    "KAFKA_VERSION",
    "KEY_CONFIGS",
    "LAG_GROUP",
    "LAG_TOPIC",
    "REBALANCE_SCENARIOS",
    "STRATEGIES",
    "LagRun",
    "Rebalance",
    "all_anomalies",
    "anomalies",
    "anomalies_frame",
    "assign",
    "assignment_frame",
    "assignment_table",
    "assignor_header",
    "changes_table",
    "config_header",
    "crash_kernel",
    "crash_run",
    "delivery_summary",
    "group_header",
    "lag_kernel",
    "lag_run",
    "lag_summary",
    "member_names",
    "membership_changes",
    "ownership",
    "pause_summary",
    "pauses",
    "processed_records",
    "rebalance",
    "rebalance_runs",
    "runs_header",
    "steps_frame",
    "topics_of",
]

KEY_CONFIGS = ("partition.assignment.strategy", "enable.auto.commit", "max.poll.records",
               "session.timeout.ms", "max.poll.interval.ms")
"""The consumer configs every panel of the lesson names."""

ASSIGNOR_NAMES: tuple[str, ...] = tuple(ASSIGNORS)
"""``partition.assignment.strategy`` values: range, roundrobin, sticky, cooperative-sticky."""


# --- Headers: which Kafka behaviour and which configs are in force ---------------------------


def config_header(config: Mapping[str, Any] | None = None) -> str:
    """One line naming the Kafka version, the group protocol and the key consumer configs.

    Missing configs take Kafka 4.0's defaults, so the line is what a real consumer would use.
    Example: ``Kafka 4.0 consumer, classic group protocol · partition.assignment.strategy=range
    · enable.auto.commit=true · max.poll.records=500 · session.timeout.ms=45000 ·
    max.poll.interval.ms=300000``.

    Raises:
        ConfigError: an unknown config name or a bad value.
    """
    full = CONSUMER.parse(dict(config or {}))
    full["partition.assignment.strategy"] = assignor_names(full["partition.assignment.strategy"])
    shown = []
    for name in KEY_CONFIGS:
        value = full[name]
        if isinstance(value, list):
            value = ",".join(value)
        elif isinstance(value, bool):
            value = str(value).lower()
        shown.append(f"{name}={value}")
    return f"Kafka {KAFKA_VERSION} consumer, classic group protocol · " + " · ".join(shown)


def assignor_header(topics: Mapping[str, int], members: Sequence[str]) -> str:
    """The line for assignor panels: Kafka version, protocol, the group and its topics."""
    shown = ", ".join(f"{t} ({n} partitions)" for t, n in sorted(topics.items()))
    return (f"Kafka {KAFKA_VERSION} client-side assignors, classic group protocol · "
            f"partition.assignment.strategy = each panel's title · members {', '.join(members)}"
            f" · every member subscribes to {shown}")


def runs_header(kernels: Mapping[str, Kernel], group_id: str) -> str:
    """:func:`group_header` for several runs; a config whose value differs says "per panel"."""
    lines = [group_header(kernel, group_id) for kernel in kernels.values()]
    if len(set(lines)) <= 1:
        return lines[0] if lines else config_header()
    parts = [line.split(" · ") for line in lines]
    merged = []
    for values in zip(*parts, strict=True):
        if len(set(values)) == 1:
            merged.append(values[0])
        else:
            merged.append(values[0].split("=")[0] + "=per panel")
    return " · ".join(merged)


def group_header(kernel: Kernel, group_id: str) -> str:
    """:func:`config_header` for the configs of the first consumer of ``group_id`` in a run."""
    members = group_metrics.consumers(kernel, group_id)
    if not members:
        raise ConfigError(f"There is no consumer of group {group_id!r} in this run; groups: "
                          f"{', '.join(group_metrics.group_ids(kernel)) or 'none'}.")
    return config_header(members[0].config)


# --- Assignors ------------------------------------------------------------------------------------


def member_names(count: int) -> list[str]:
    """``["C0", "C1", …]``: member ids that sort like their numbers (up to C9)."""
    if count < 1:
        raise ConfigError(f"A group needs at least one member but got {count}.")
    return [f"C{i}" for i in range(count)]


def topics_of(topics: int, partitions: int) -> dict[str, int]:
    """``{"t0": partitions, "t1": partitions, …}``: ``topics`` topics of equal size."""
    if topics < 1 or partitions < 1:
        raise ConfigError(f"Need at least one topic with at least one partition but got "
                          f"topics={topics}, partitions={partitions}.")
    return {f"t{i}": partitions for i in range(topics)}


def _check_group(topics: Mapping[str, int], members: Sequence[str]) -> None:
    if not members:
        raise ConfigError("A group needs at least one member to assign partitions to.")
    if len(set(members)) != len(members):
        raise ConfigError(f"Member ids must be unique but got {list(members)}.")
    if not topics or any(int(n) < 1 for n in topics.values()):
        raise ConfigError(f"Every topic needs at least one partition but got {dict(topics)}.")


def assign(strategy: str, topics: Mapping[str, int], members: Sequence[str],
           owned: Mapping[str, Sequence[TopicPartition]] | None = None,
           generation: int = DEFAULT_GENERATION) -> Assignment:
    """Run one assignor over a group whose members all subscribe to every topic.

    Args:
        strategy: a ``partition.assignment.strategy`` value, e.g. ``"range"``.
        topics: topic name → partition count.
        members: member ids, in the order they joined.
        owned: member id → partitions it owned before (read by the sticky assignors only).
        generation: the generation those partitions were owned in.

    Returns:
        Member id → its partitions, for every member (an idle member gets ``[]``).

    Raises:
        ConfigError: an unknown assignor, no members, duplicate ids or an empty topic.
    """
    _check_group(topics, members)
    assignor = assignor_for(strategy)
    names = tuple(sorted(topics))
    previous = owned or {}
    subscriptions = {
        m: Subscription(names, tuple(previous.get(m, ())),
                        generation if previous.get(m) else DEFAULT_GENERATION)
        for m in members
    }
    return assignor.assign(dict(topics), subscriptions)


def assignment_frame(topics: Mapping[str, int], members: Sequence[str],
                     strategies: Iterable[str] = ASSIGNOR_NAMES) -> pd.DataFrame:
    """One row per (assignor, member, partition) for a fresh group: who reads what.

    Columns: assignor, member, topic, partition. A member that gets nothing has one row with
    topic ``None`` and partition -1, so idle members stay visible.
    """
    rows: list[dict[str, Any]] = []
    for strategy in strategies:
        rows += _assignment_rows(strategy, assign(strategy, topics, members), members)
    return pd.DataFrame(rows, columns=["assignor", "member", "topic", "partition"])


def _assignment_rows(strategy: str, assignment: Mapping[str, Sequence[TopicPartition]],
                     members: Sequence[str], **extra: Any) -> list[dict[str, Any]]:
    rows = []
    for member in members:
        parts = sorted(assignment.get(member, []))
        if not parts:
            rows.append({**extra, "assignor": strategy, "member": member, "topic": None,
                         "partition": -1})
        rows += [{**extra, "assignor": strategy, "member": member, "topic": tp.topic,
                  "partition": tp.partition} for tp in parts]
    return rows


def _cell(parts: Sequence[TopicPartition]) -> str:
    return ", ".join(str(tp) for tp in sorted(parts)) if parts else "— (idle)"


def assignment_table(topics: Mapping[str, int], members: Sequence[str],
                     strategies: Iterable[str] = ASSIGNOR_NAMES) -> pd.DataFrame:
    """The four assignors side by side: one row per member, one column per assignor.

    Each cell lists the member's partitions (``t0-0, t1-1``), or "— (idle)". The last row,
    ``partitions each``, counts them per member (``4 / 4 / 0``).
    """
    columns: dict[str, list[str]] = {}
    for strategy in strategies:
        result = assign(strategy, topics, members)
        columns[strategy] = [_cell(result[m]) for m in members]
        columns[strategy].append(" / ".join(str(len(result[m])) for m in members))
    index = pd.Index([*members, "partitions each"], name="member")
    return pd.DataFrame(columns, index=index)


@dataclass(frozen=True)
class Rebalance:
    """One assignor's answer to a change of the group's members, compared with before.

    ``rounds`` is 2 when cooperative-sticky had to withhold a moving partition in the first
    round (the old owner revokes it, rejoins, and a follow-up rebalance hands it over).
    """

    assignor: str
    members: tuple[str, ...]
    before: dict[str, list[TopicPartition]]
    after: dict[str, list[TopicPartition]]
    rounds: int
    moved: list[TopicPartition]
    stopped: list[TopicPartition]


def _owner_map(assignment: Mapping[str, Sequence[TopicPartition]]) -> dict[TopicPartition, str]:
    return {tp: member for member, parts in assignment.items() for tp in parts}


def rebalance(strategy: str, topics: Mapping[str, int],
              before: Mapping[str, Sequence[TopicPartition]], members: Sequence[str],
              generation: int = 1) -> Rebalance:
    """What ``strategy`` does when the group changes from ``before``'s members to ``members``.

    Eager assignors answer in one round and every partition that had an owner stops (all
    members revoke everything before rejoining). Cooperative-sticky keeps what stays: round 1
    leaves every moving partition out, its old owner revokes just that, and round 2 (one
    generation later) gives it to the new owner; only moved partitions stop.

    Args:
        before: the assignment of the previous generation (``{}`` for a new group).
        generation: the generation ``before`` belongs to.
    """
    old = {m: list(parts) for m, parts in before.items()}
    first = assign(strategy, topics, members, old, generation)
    rounds = 1
    after = first
    if COOPERATIVE in assignor_for(strategy).supported_protocols[:1]:
        had = _owner_map(old)
        now = _owner_map(first)
        revoked = [tp for tp, owner in had.items() if owner in members and now.get(tp) != owner]
        if revoked:  # the old owners rejoin at once: a follow-up rebalance hands them over
            after = assign(strategy, topics, members, first, generation + 1)
            rounds = 2
    had = _owner_map(old)
    now = _owner_map(after)
    moved = sorted(tp for tp, owner in had.items() if now.get(tp) != owner)
    if COOPERATIVE in assignor_for(strategy).supported_protocols[:1]:
        stopped = moved
    else:
        stopped = sorted(had)
    return Rebalance(strategy, tuple(members), {m: sorted(p) for m, p in old.items()},
                     {m: sorted(p) for m, p in after.items()}, rounds, moved, stopped)


def membership_changes(topics: Mapping[str, int], steps: Sequence[tuple[str, Sequence[str]]],
                       strategies: Iterable[str] = ASSIGNOR_NAMES) -> pd.DataFrame:
    """Walk a group through membership changes with each assignor; one row per step and assignor.

    Args:
        topics: topic name → partition count (every member subscribes to all of them).
        steps: ``(label, members)`` pairs, e.g. ``[("start", ["C0", "C1"]), ("C2 joins",
            ["C0", "C1", "C2"])]``; each step starts from the previous step's assignment.

    Returns:
        Columns: step, assignor, members, rounds, moved, stopped (counts), moved_partitions
        (``t0-1, …``), and assignment (member → partitions, a dict).
    """
    rows = []
    for strategy in strategies:
        before: dict[str, list[TopicPartition]] = {}
        for generation, (label, members) in enumerate(steps, start=1):
            result = rebalance(strategy, topics, before, list(members), generation)
            rows.append({"step": label, "assignor": strategy, "members": len(members),
                         "rounds": result.rounds, "moved": len(result.moved),
                         "stopped": len(result.stopped),
                         "moved_partitions": ", ".join(map(str, result.moved)),
                         "assignment": result.after})
            before = result.after
    frame = pd.DataFrame(rows, columns=["step", "assignor", "members", "rounds", "moved",
                                        "stopped", "moved_partitions", "assignment"])
    order = {label: i for i, (label, _m) in enumerate(steps)}
    return frame.sort_values("step", key=lambda s: s.map(order), kind="stable",
                             ignore_index=True)


def changes_table(changes: pd.DataFrame) -> pd.DataFrame:
    """:func:`membership_changes` as one row per step and one column per assignor.

    Cells read ``"2 moved, 8 stopped"`` (plus ``", 2 rounds"`` when a cooperative rebalance
    needed its follow-up round).
    """

    def describe(row: pd.Series) -> str:
        text = f"{row['moved']} moved, {row['stopped']} stopped"
        return text + (f", {row['rounds']} rounds" if row["rounds"] > 1 else "")

    cells = changes.assign(summary=changes.apply(describe, axis=1))
    steps = list(dict.fromkeys(changes["step"]))
    assignors = list(dict.fromkeys(changes["assignor"]))
    table = cells.pivot(index="step", columns="assignor", values="summary")
    return table.reindex(index=steps, columns=assignors).rename_axis(columns=None)


def steps_frame(changes: pd.DataFrame) -> pd.DataFrame:
    """:func:`membership_changes` expanded to one row per (step, assignor, member, partition).

    Adds ``moved`` (bool): the partition's owner changed in this step. Idle members get one
    row with partition -1. This is what ``viz_groups.assignment_grid`` draws.
    """
    rows: list[dict[str, Any]] = []
    for row in changes.itertuples(index=False):
        moved = set(filter(None, row.moved_partitions.split(", ")))
        members = list(row.assignment)
        for entry in _assignment_rows(row.assignor, row.assignment, members, step=row.step):
            entry["moved"] = f"{entry['topic']}-{entry['partition']}" in moved
            rows.append(entry)
    return pd.DataFrame(rows, columns=["step", "assignor", "member", "topic", "partition",
                                       "moved"])


# --- Lag: build and drain ------------------------------------------------------------------------

LAG_TOPIC = "orders"
LAG_GROUP = "shipping"
LAG_SEED = 3


def lag_kernel(consumers: int = 2, max_poll_records: int = 500, processing_ms: float = 8.0, *,
               partitions: int = 6, rate_per_s: float = 300.0, backlog: int = 0,
               duration_ms: float = 15_000.0, max_poll_interval_ms: int = 300_000,
               extra_consumers: int = 0, join_at_ms: float = 10_000.0,
               strategy: str = "range", seed: int = LAG_SEED) -> Kernel:
    """Build and run a group reading ``orders`` while a producer keeps writing to it.

    The producer sends ``rate_per_s`` records a second (1,000 keys) for the whole run; a
    second producer writes ``backlog`` records at once at the start. Each consumer processes
    ``processing_ms`` per record and commits after each poll (at least once); the broker's
    ``group.initial.rebalance.delay.ms`` is 0 so the group forms at once.
    ``extra_consumers`` join at ``join_at_ms``.

    Raises:
        ConfigError: a value out of range (no consumers, a non-positive rate or time, …).
    """
    if consumers < 1 or extra_consumers < 0:
        raise ConfigError(f"Need at least one consumer (and ≥ 0 extra) but got consumers="
                          f"{consumers}, extra_consumers={extra_consumers}.")
    if processing_ms <= 0 or rate_per_s <= 0 or duration_ms <= 0:
        raise ConfigError(f"processing_ms, rate_per_s and duration_ms must be positive but got "
                          f"{processing_ms}, {rate_per_s}, {duration_ms}.")
    if backlog < 0 or partitions < 1:
        raise ConfigError(f"Need backlog ≥ 0 and partitions ≥ 1 but got backlog={backlog}, "
                          f"partitions={partitions}.")
    from sim.consumer.apps import at_least_once

    kernel = Kernel(seed=seed, brokers=3)
    kernel.cluster.create_topic(LAG_TOPIC, partitions=partitions)
    live = Producer(kernel, {"client.id": "orders-producer"})
    count = int(rate_per_s * duration_ms / 1000)
    live.add_workload(Workload.generate(kernel.spawn_rng(), LAG_TOPIC, count, rate_per_s,
                                        keys=UniformKeys(1000)))
    if backlog:
        loader = Producer(kernel, {"client.id": "backlog-loader"})
        loader.add_workload(Workload.generate(kernel.spawn_rng(), LAG_TOPIC, backlog, 1e6,
                                              keys=UniformKeys(1000)))
    group_coordinator(kernel, {"group.initial.rebalance.delay.ms": 0})
    config = {"group.id": LAG_GROUP, "enable.auto.commit": False,
              "auto.offset.reset": "earliest", "max.poll.records": int(max_poll_records),
              "max.poll.interval.ms": int(max_poll_interval_ms),
              "partition.assignment.strategy": [strategy]}
    members = [Consumer(kernel, config, at_least_once, processing_ms)
               for _ in range(consumers + extra_consumers)]
    for i, member in enumerate(members):
        member.subscribe([LAG_TOPIC])
        if i < consumers:
            member.run()
        else:
            kernel.env.timeout(join_at_ms).callbacks.append(lambda _e, c=member: c.run())
    kernel.run(duration_ms)
    return kernel


@dataclass
class LagRun:
    """A finished :func:`lag_kernel` run: per-partition lag, the group's total, a header."""

    kernel: Kernel
    lag: pd.DataFrame
    total: pd.DataFrame
    header: str
    settings: dict[str, Any] = field(default_factory=dict)

    def stats(self, below: float = 100.0) -> dict[str, Any]:
        """Peak and final lag, when lag fell below ``below`` for good, growth, poll timeouts."""
        total = self.total
        lag = total["lag"].to_numpy(dtype=float)
        times = total["time_ms"].to_numpy(dtype=float)
        above = times[lag >= below]
        settled = float(above.max()) + _step(times) if len(above) else 0.0
        if settled > times[-1]:
            settled = float("nan")
        half = times >= times[-1] / 2
        growth = float(np.polyfit(times[half] / 1000, lag[half], 1)[0]) if half.sum() > 1 else 0.0
        left = self.kernel.trace.frame(consumer_events.CONSUMER_LEFT)
        timeouts = int(left["reason"].astype(str).str.startswith("poll timeout").sum())
        members = group_metrics.consumers(self.kernel, LAG_GROUP)
        running = [c for c in members if c.state == "running"]
        return {"peak_lag": float(lag.max()), "end_lag": float(lag[-1]),
                "below_at_ms": settled, "growth_per_s": growth, "poll_timeouts": timeouts,
                "idle_consumers": sum(not c.assignment() for c in running),
                "consumers": len(running)}


def _step(times: np.ndarray) -> float:
    return float(times[1] - times[0]) if len(times) > 1 else 0.0


def lag_run(consumers: int = 2, max_poll_records: int = 500, processing_ms: float = 8.0,
            every_ms: float = 100.0, **settings: Any) -> LagRun:
    """Run :func:`lag_kernel` and collect its lag frames (see the module docstring for lag)."""
    kernel = lag_kernel(consumers, max_poll_records, processing_ms, **settings)
    frame = group_metrics.lag(kernel, LAG_GROUP, every_ms)
    frame["lag"] = frame["high_watermark"] - frame["committed"].fillna(0.0)
    frame["consumer_lag"] = frame["high_watermark"] - frame["position"].fillna(0.0)
    total = frame.groupby("time_ms", as_index=False)[["lag", "consumer_lag"]].sum()
    shown = {"consumers": consumers, "max.poll.records": max_poll_records,
             "processing_ms": processing_ms, **settings}
    return LagRun(kernel, frame, total, group_header(kernel, LAG_GROUP), shown)


def lag_summary(runs: Mapping[str, LagRun], below: float = 100.0) -> pd.DataFrame:
    """One row per named run: consumers, peak and final lag, growth per second, poll timeouts."""
    rows = []
    for name, run in runs.items():
        st = run.stats(below)
        rows.append({"run": name, "consumers": st["consumers"],
                     "idle consumers": st["idle_consumers"],
                     "peak lag": int(st["peak_lag"]), "lag at the end": int(st["end_lag"]),
                     "lag growth per s": round(st["growth_per_s"], 1),
                     f"lag < {below:g} from (ms)": st["below_at_ms"],
                     "poll timeouts": st["poll_timeouts"]})
    return pd.DataFrame(rows).set_index("run")


# --- A crash, three commit strategies ------------------------------------------------------------

CRASH_SCENARIO = "consumer-crash-at-least-once"
"""The scenario whose cluster, workload, group and crash the crash runs reuse."""

STRATEGIES = {
    "at-most-once": "commit, then process",
    "at-least-once": "process, then commit",
    "auto-commit": "process; enable.auto.commit commits inside poll()",
}
"""The ready-made applications of ``sim.consumer.apps``, with what each one does."""

OnRecords = Callable[[Any, Any], Any]


def crash_kernel(on_records: OnRecords, *, enable_auto_commit: bool = False,
                 scenario: str = CRASH_SCENARIO) -> Kernel:
    """Run the crash scenario's world with ``on_records`` as every consumer's application.

    The cluster, producer, group configs, the crash (consumer-billing-1 at 9 s) and the run's
    length all come from the scenario file, so the run is the scenario's own whenever
    ``on_records`` is the app the file names.
    """
    base = copy.deepcopy(scenarios.load(scenario))
    specs, base.consumers = base.consumers, []
    fault_specs, base.faults = base.faults, []
    kernel = base.build()
    group_coordinator(kernel, base.group_coordinator)
    for spec in specs:
        config = {**spec["config"], "enable.auto.commit": enable_auto_commit}
        consumer = Consumer(kernel, config, on_records, spec["processing_ms_per_record"])
        consumer.subscribe(spec["topics"])
        consumer.run()
    for fault in fault_specs:
        faults.schedule(kernel, fault.get("at_ms", 0.0), make_fault(fault))
    kernel.run(base.duration_ms)
    return kernel


def crash_run(strategy: str) -> Kernel:
    """:func:`crash_kernel` with one of the ready-made applications (:data:`STRATEGIES`)."""
    if strategy not in APPS:
        raise ConfigError(f"Unknown commit strategy {strategy!r}; choose one of "
                          f"{', '.join(APPS)}.")
    return crash_kernel(APPS[strategy], enable_auto_commit=AUTO_COMMIT[strategy])


def _cause(entry: Mapping[str, Any]) -> str:
    """``consumer_crash of consumer-billing-1 at 9000 ms`` (the event's first detail word)."""
    cause = entry.get("cause")
    if not cause:
        return ""
    words = str(cause.get("detail") or "").split()
    what = words[0] if words else cause["kind"]
    return f"{what} of {cause['component']} at {cause['time_ms']:g} ms (trace seq {cause['seq']})"


def delivery_summary(kernels: Mapping[str, Kernel]) -> pd.DataFrame:
    """One row per commit strategy: its commit order, skipped and processed-twice records."""
    rows = []
    for name, kernel in kernels.items():
        report = audit_kernel(kernel)
        consumers = group_metrics.consumers(kernel)
        crash = kernel.trace.frame(consumer_events.CONSUMER_LEFT)
        crash_ms = float(crash["time_ms"].iloc[0]) if len(crash) else float("nan")
        rows.append({"strategy": name, "what it does": STRATEGIES.get(name, ""),
                     "enable.auto.commit": bool(consumers[0].config["enable.auto.commit"]),
                     "crash at (ms)": crash_ms, "processed": report.processed,
                     "skipped": report.skipped, "processed twice": report.processed_twice})
    return pd.DataFrame(rows).set_index("strategy")


def anomalies(report: AuditReport | Kernel) -> pd.DataFrame:
    """The audit's skipped and processed-twice ranges, each with the event that caused it."""
    if isinstance(report, Kernel):
        report = audit_kernel(report)
    rows = []
    for kind in ("skipped", "processed-twice"):
        for entry in report.anomalies[kind]:
            who = entry.get("read_by") or f"{entry.get('first_by')} → {entry.get('second_by')}"
            rows.append({"kind": kind, "topic": entry["topic"], "partition": entry["partition"],
                         "first_offset": entry["first_offset"],
                         "last_offset": entry["last_offset"], "count": entry["count"],
                         "consumers": who, "cause": _cause(entry)})
    return pd.DataFrame(rows, columns=["kind", "topic", "partition", "first_offset",
                                       "last_offset", "count", "consumers", "cause"])


def all_anomalies(kernels: Mapping[str, Kernel]) -> pd.DataFrame:
    """:func:`anomalies` of several named runs in one frame, with a ``run`` column first."""
    parts = [anomalies(kernel).assign(run=name) for name, kernel in kernels.items()]
    frame = pd.concat(parts, ignore_index=True) if parts else anomalies_frame()
    return frame[["run", *[c for c in frame.columns if c != "run"]]]


def anomalies_frame() -> pd.DataFrame:
    """An empty :func:`anomalies` frame (with a ``run`` column)."""
    return pd.DataFrame(columns=["run", "kind", "topic", "partition", "first_offset",
                                 "last_offset", "count", "consumers", "cause"])


def processed_records(kernel: Kernel) -> pd.DataFrame:
    """Every record processed in a run (all consumers): consumer, partition, offset, time."""
    parts = [c.processed() for c in group_metrics.consumers(kernel)]
    parts = [p for p in parts if len(p)]
    columns = ["consumer", "topic", "partition", "offset", "processed_ms"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


# --- Eager versus cooperative rebalances ----------------------------------------------------------

REBALANCE_SCENARIOS = ("rebalance-eager", "rebalance-cooperative")
REBALANCE_GROUP = "shipping"


def rebalance_runs(names: Sequence[str] = REBALANCE_SCENARIOS) -> dict[str, Kernel]:
    """Run the rebalance scenarios (same group, range versus cooperative-sticky)."""
    return {name: scenarios.load(name).run() for name in names}


def ownership(kernel: Kernel, group_id: str = REBALANCE_GROUP) -> pd.DataFrame:
    """Who owned which partition when (``sim.consumer.metrics.assignment_timeline``)."""
    return group_metrics.assignment_timeline(kernel, group_id)


def pauses(kernel: Kernel, group_id: str = REBALANCE_GROUP) -> pd.DataFrame:
    """Every stretch a partition had no owner (``sim.consumer.metrics.rebalance_pauses``)."""
    return group_metrics.rebalance_pauses(kernel, group_id)


def pause_summary(kernels: Mapping[str, Kernel], group_id: str = REBALANCE_GROUP) -> pd.DataFrame:
    """One row per run: protocol, generations, partition pauses, their total and longest."""
    rows = []
    for name, kernel in kernels.items():
        stops = pauses(kernel, group_id)
        generations = group_metrics.generations(kernel, group_id)
        protocol = generations[-1]["protocol"] if generations else ""
        rows.append({"run": name, "assignor": protocol, "generations": len(generations),
                     "pauses": len(stops), "partitions paused": stops["partition"].nunique(),
                     "total paused (ms)": float(stops["pause_ms"].sum()),
                     "longest pause (ms)": float(stops["pause_ms"].max()) if len(stops)
                     else 0.0})
    return pd.DataFrame(rows).set_index("run")
