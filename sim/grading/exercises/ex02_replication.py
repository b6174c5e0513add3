"""Checks for exercise 02 (lesson "replication"): safe configs, the event that lost data, and a
prediction. Every expected value is simulated at check time; none is stored here.

02.a — ``safe_configs``: the learner picks ``acks``, ``enable.idempotence``,
``min.insync.replicas`` and ``unclean.leader.election.enable`` for topic ``payments``
(replication factor 3 on brokers 0, 1, 2; broker 0 leads) under :data:`SCHEDULE`, with traffic
in :data:`TRAFFIC_MS`. The check runs the simulator with those configs: Kafka must accept them,
no acknowledged record may be lost, and the failed writes (the unavailability) may exceed by at
most :data:`TOLERANCE` the fewest that any combination of :data:`CHOICES` that loses and
duplicates nothing achieves —
found by simulating all of them (:func:`best_failed_writes`).

02.b — ``loss_event``: ``{"seq": ..., "reason": ...}`` for :func:`zombie_scenario`, a variant of
the built-in ``acks1-leader-crash`` in which leader 0 is cut off from its followers *and the
controller* instead of crashing. ``seq`` must be the trace event the audit blames for the lost
acknowledged records; ``reason`` one of :data:`REASONS`, judged from the elections before it.

02.c — ``lost_prediction``: how many acknowledged records ``acks1-leader-crash`` loses when its
leader crashes at :data:`LATE_CRASH_MS` instead of 8 s, compared with the audit of that run.

02.d — ``schedule_losses``: ``{"lose": [...], "cause": ...}`` for random fault schedule
:data:`SWEEP_SCHEDULE` of the lesson's sweep (``sim.lessons.crash_sweep``): which of the
lesson's four configurations lose acknowledged records under it, and the cause (one of
``sim.sweep.CAUSES``) of most records lost — both from the sweep's own rows for that schedule,
run at check time (:func:`schedule_outcomes`).
"""

from __future__ import annotations

import dataclasses
import itertools
import numbers
from collections.abc import Mapping
from functools import cache
from typing import Any

import pandas as pd

from sim import faults, lessons, scenarios
from sim.audit import audit_kernel
from sim.errors import ConfigError
from sim.grading.budget import untimed
from sim.grading.checklist import Checklist
from sim.grading.registry import question
from sim.kernel import Kernel
from sim.lessons import crash_sweep
from sim.sweep import CAUSE_COLUMNS, CAUSES

EXERCISE = "02_replication"

SEED = 42
RATE_PER_S = 20
TRAFFIC_MS = ((0.0, 35_000.0), (50_000.0, 58_000.0))
"""Traffic flows for 35 s, pauses while brokers 0 and 1 are down, and resumes at 50 s."""
RUN_UNTIL_MS = 60_000.0
PRODUCER_BASE = {"delivery.timeout.ms": 5000, "request.timeout.ms": 2000}
"""The application gives up on a record after 5 s: that is what makes unavailability count."""

SCHEDULE: tuple[tuple[float, faults.Fault], ...] = (
    (8_000, faults.NetworkPartition((0,), (1, 2))),
    (10_000, faults.CrashBroker(0)),
    (22_000, faults.HealNetwork((0,), (1, 2))),
    (22_000, faults.RestartBroker(0)),
    (25_000, faults.CrashBroker(2)),
    (30_000, faults.NetworkPartition((2,), (0, 1))),
    (30_000, faults.RestartBroker(2)),
    (36_000, faults.CrashBroker(0)),
    (36_000, faults.CrashBroker(1)),
    (48_000, faults.RestartBroker(0)),
    (48_000, faults.RestartBroker(1)),
    (48_000, faults.HealNetwork((2,), (0, 1))),
)
"""02.a's faults: (simulated time in ms, fault)."""

CHOICES: dict[str, tuple[Any, ...]] = {
    "acks": ("1", "all"),
    "enable.idempotence": (False, True),
    "min.insync.replicas": (1, 2, 3),
    "unclean.leader.election.enable": (False, True),
}
"""The configs 02.a asks for, and the values the best choice is searched among."""
TOLERANCE = 0.10

REASONS: dict[str, str] = {
    "truncated": "the records were only on the old leader, which truncated its log to match "
                 "the new leader",
    "unclean": "an out-of-sync replica was elected leader (unclean election) and the others "
               "truncated to it",
    "network": "the network dropped the records before they reached a broker",
    "timeout": "the producer gave up on the records (delivery.timeout.ms)",
    "disk": "a broker lost its disk",
}
"""02.b's possible reasons, by key."""

LATE_CRASH_MS = 9_000

_HINTS = {
    "configs": (
        'Write a dict with all four names as keys, e.g. {"acks": "all", ...}. acks is a '
        'string: "1" or "all"; the others are a bool, an int and a bool.'
    ),
    "acks": (
        "With acks=1 the leader answers before any follower has the record. Which phase of the "
        "schedule cuts the leader off from its followers and then kills it?"
    ),
    "unclean": (
        "Brokers 0 and 1 are down from 36 s to 48 s while broker 2, out of date, is up. Should "
        "it be allowed to become leader?"
    ),
    "availability": (
        "min.insync.replicas counts the in-sync replicas a write needs. Which value refuses "
        "writes while broker 2 is out of the ISR, even though two copies would be safe?"
    ),
    "seq": (
        "Run the scenario, audit it (audit_kernel) and read the cause of a lost record, or step "
        "through the trace: find the event that removed the acknowledged records from the last "
        "log that had them."
    ),
}


# --- 02.a ----------------------------------------------------------------------------------


def schedule_table() -> pd.DataFrame:
    """02.a's fault schedule as a table (time, fault, details) for the notebook."""
    return pd.DataFrame([{"at_ms": at, "fault": type(f).__name__,
                          "details": ", ".join(f"{k}={v}" for k, v in vars(f).items())}
                         for at, f in SCHEDULE])


def schedule_kernel(configs: Mapping[str, Any]) -> Kernel:
    """A kernel for 02.a: ``configs`` (Kafka's names) under :data:`SCHEDULE`, not yet run.

    Raises:
        ConfigError: a config Kafka does not know, a bad value, or values it refuses together.
    """
    return lessons.replication_kernel({**PRODUCER_BASE, **configs}, faults=SCHEDULE, seed=SEED,
                                      rate_per_s=RATE_PER_S, traffic_ms=TRAFFIC_MS)


def run_schedule(configs: Mapping[str, Any]) -> lessons.ReplicationRun:
    """Simulate ``configs`` under :data:`SCHEDULE` to the end and summarise the run."""
    kernel = schedule_kernel(configs)
    lessons.advance(kernel, RUN_UNTIL_MS)
    return lessons.replication_summary(kernel)


def failed_writes(outcome: Mapping[str, float]) -> int:
    """Records not acknowledged: failed, or still waiting when the run ended."""
    return int(outcome["failed"] + outcome["waiting"])


def _outcome(configs: Mapping[str, Any]) -> dict[str, float]:
    kernel = schedule_kernel(configs)
    lessons.advance(kernel, RUN_UNTIL_MS)
    return lessons.delivery_outcome(kernel)


@cache
def _all_choices() -> tuple[tuple[tuple[tuple[str, Any], ...], dict[str, float]], ...]:
    results = []
    for values in itertools.product(*CHOICES.values()):
        configs = dict(zip(CHOICES, values, strict=True))
        try:
            results.append((tuple(configs.items()), _outcome(configs)))
        except ConfigError:
            continue  # a combination Kafka refuses (idempotence needs acks=all)
    return tuple(results)


def best_failed_writes() -> int:
    """The fewest failed writes of any combination of :data:`CHOICES` that loses and duplicates
    nothing (simulated). Without idempotence retries write duplicates, so the idempotent
    producer's stricter ordering rules are the price of surviving, not a worse answer."""
    return min(failed_writes(outcome) for _c, outcome in _all_choices()
               if not outcome["lost"] and not outcome["duplicates"])


def _loss_hint(kernel: Kernel) -> str:
    elections = lessons.replication_events(kernel, ("leader.election",))
    if elections["what"].str.contains("unclean").any():
        return _HINTS["unclean"]
    return _HINTS["acks"]


@question(
    "02.a",
    points=6,
    answer="safe_configs",
    title="Configs that survive the fault schedule",
    hint=_HINTS["acks"],
)
def safe_configs(answer: object, sheet: Checklist) -> None:
    """Grade configs: stated and accepted, nothing acknowledged lost, failed writes near best."""
    names = ", ".join(CHOICES)
    configs: dict[str, Any] = {}
    with sheet.item(f"safe_configs names {names} with values Kafka accepts together",
                    points=1) as item:
        if not isinstance(answer, Mapping):
            item.fail(f"expected a dict of configs, got {type(answer).__name__}",
                      _HINTS["configs"])
        else:
            configs = dict(answer)
            missing = [k for k in CHOICES if k not in configs]
            extra = [str(k) for k in configs if k not in CHOICES]
            if missing:
                item.fail(f"safe_configs does not say {', '.join(missing)}; state all four, "
                          "even where you keep Kafka's default", _HINTS["configs"])
            elif extra:
                item.fail(f"{', '.join(extra)} is not yours to choose here: only {names} are "
                          "(the topic has 3 replicas on brokers 0–2)", _HINTS["configs"])
            elif str(configs["acks"]) == "0":
                item.fail("acks=0 never hears back from a broker, so nothing is ever truly "
                          'acknowledged and there is nothing to protect; pick "1" or "all"')
            else:
                try:
                    schedule_kernel(configs)
                except ConfigError as exc:
                    item.fail(f"Kafka refuses these configs: {exc}", _HINTS["configs"])
    if not item.passed:
        return sheet.stop("there are no configs to simulate")

    with untimed():  # configs are data: the run calls no learner code
        kernel = schedule_kernel(configs)
        lessons.advance(kernel, RUN_UNTIL_MS)
        outcome = lessons.delivery_outcome(kernel)
    with sheet.item("under the fault schedule no acknowledged record is lost", points=3) as item:
        if outcome["lost"]:
            item.fail(f"{outcome['lost']} of {outcome['acknowledged']} acknowledged records "
                      "were not in the log at the end", _loss_hint(kernel))

    mine = failed_writes(outcome)
    with sheet.item(f"it fails at most {TOLERANCE:.0%} more writes than the best choice of the "
                    "four configs that loses and duplicates nothing", points=2) as item:
        if outcome["lost"]:
            item.fail("not compared: first make sure nothing acknowledged is lost")
        else:
            with untimed():  # the check's own 18 runs: the budget is for the learner's code
                best = best_failed_writes()
            if mine > best * (1 + TOLERANCE):
                item.fail(f"{mine} writes failed; the best choice that loses and duplicates "
                          f"nothing fails only {best}",
                          _HINTS["availability"])
    return None


# --- 02.b ----------------------------------------------------------------------------------


def zombie_scenario() -> scenarios.Scenario:
    """``acks1-leader-crash`` with a zombie leader: at 5 s broker 0 is cut off from brokers 1
    and 2 and from the controller (but not from the producer); the cut heals at 20 s."""
    base = scenarios.load("acks1-leader-crash")
    cut = {"a": [0], "b": [1, 2, "controller"]}
    return dataclasses.replace(
        base, name="acks1-zombie-leader",
        description="acks=1 with leader 0 cut off from its followers and the controller from "
                    "5 s to 20 s; it keeps acknowledging writes while the controller elects a "
                    "new leader.",
        faults=[{"at_ms": 5000, "network_partition": cut},
                {"at_ms": 20000, "heal_network": cut}])


def _reason_for(kernel: Kernel, seq: int) -> str:
    """The :data:`REASONS` key that explains loss event ``seq``, read from the trace."""
    story = lessons.replication_events(kernel, ("fault", "leader.election", "log.truncate"))
    before = story[story["seq"] <= seq]
    if before["what"].str.contains("disk lost").any():
        return "disk"
    elections = before[before["kind"] == "leader.election"]
    if len(elections) and "unclean" in str(elections["what"].iloc[-1]):
        return "unclean"
    return "truncated"


@cache
def _zombie_facts() -> tuple[int, str, dict[int, str]]:
    """(the audit's cause seq, its reason, kind of every replication event by seq)."""
    kernel = zombie_scenario().run()
    lost = audit_kernel(kernel).lost_records
    seq = int(lost[0]["cause"]["seq"])
    story = lessons.replication_events(kernel)
    kinds = {int(s): str(k) for s, k in zip(story["seq"], story["kind"], strict=True)}
    return seq, _reason_for(kernel, seq), kinds


@question(
    "02.b",
    points=3,
    answer="loss_event",
    title="Which event lost the acknowledged records, and why?",
    hint=_HINTS["seq"],
)
def loss_event(answer: object, sheet: Checklist) -> None:
    """Grade the event number (against the audit) and the reason (against the trace)."""
    seq, reason, kinds = _zombie_facts()
    given = answer if isinstance(answer, Mapping) else {}
    with sheet.item("loss_event['seq'] is the trace event that removed the acknowledged "
                    "records", points=2) as item:
        value = given.get("seq")
        if not isinstance(answer, Mapping):
            item.fail(f"expected a dict like {{'seq': 123, 'reason': 'network'}}, got "
                      f"{type(answer).__name__}")
        elif not isinstance(value, numbers.Integral) or isinstance(value, bool):
            item.fail(f"loss_event['seq'] should be an event number (an int), got {value!r}")
        elif int(value) != seq:
            kind = kinds.get(int(value))
            if kind in ("fault", "leader.election", "broker.state"):
                item.fail(f"event {int(value)} ({kind}) set the stage, but the records were "
                          "still on a broker's disk afterwards; which later event removed them?")
            else:
                item.fail(f"event {int(value)} is not the one the audit blames")
    with sheet.item("loss_event['reason'] explains why they were lost", points=1) as item:
        chosen = given.get("reason")
        if chosen not in REASONS:
            item.fail(f"loss_event['reason'] must be one of {', '.join(REASONS)}, got "
                      f"{chosen!r}")
        elif chosen != reason:
            item.fail(f"{chosen!r} ({REASONS[str(chosen)]}) is not what the trace shows",
                      "Look at the elections before the loss: clean or unclean? Did anything "
                      "crash or lose a disk?")
    return None


# --- 02.c ----------------------------------------------------------------------------------


def late_crash_scenario() -> scenarios.Scenario:
    """``acks1-leader-crash`` with the leader crashing at :data:`LATE_CRASH_MS`, not 8 s."""
    base = scenarios.load("acks1-leader-crash")
    moved = [{**f, "at_ms": LATE_CRASH_MS} if "crash_broker" in f else dict(f)
             for f in base.faults]
    return dataclasses.replace(base, faults=moved)


@cache
def late_crash_lost() -> int:
    """Acknowledged records the audit finds lost in :func:`late_crash_scenario` (simulated)."""
    return audit_kernel(late_crash_scenario().run()).lost


@question(
    "02.c",
    points=2,
    answer="lost_prediction",
    title="Predict: a later crash, how many records lost?",
    hint="Which records exist only on broker 0? Count how long it acknowledges writes alone.",
)
def lost_prediction(answer: object, sheet: Checklist) -> None:
    """Grade the prediction against the audit of the late-crash run."""
    expected = late_crash_lost()
    when = f"{LATE_CRASH_MS / 1000:g} s"
    number = isinstance(answer, numbers.Integral) and not isinstance(answer, bool)
    with sheet.item(f"lost_prediction is within 5 % of the acknowledged records lost when the "
                    f"leader crashes at {when}", points=1) as item:
        if not number:
            item.fail(f"expected a whole number of records, got {answer!r}")
        elif abs(int(answer) - expected) > 0.05 * expected:  # type: ignore[call-overload]
            item.fail(f"{int(answer)} is not what the audit finds")  # type: ignore[call-overload]
    with sheet.item("lost_prediction is exactly what the audit finds", points=1) as item:
        if not number or int(answer) != expected:  # type: ignore[call-overload]
            item.fail("not exact: count the seconds broker 0 acknowledges alone, times the "
                      "rate", "The lesson's run lost 600 records: 3 s at 200 records/s.")


# --- 02.d ----------------------------------------------------------------------------------

SWEEP_SCHEDULE = 32
"""02.d's schedule: number 32 of the lesson's sweep (seed ``crash_sweep.SEED``)."""


def sweep_schedule_table(schedule: int = SWEEP_SCHEDULE) -> pd.DataFrame:
    """The faults of the lesson's schedule ``schedule`` as a table (time, fault, details)."""
    from sim.fuzz import PROFILES, generate

    drawn = generate(PROFILES[crash_sweep.PROFILE].scaled(crash_sweep.RECORDS),
                     crash_sweep.SEED, schedule)
    rows = []
    for fault in drawn["faults"]:
        (kind, details), = ((k, v) for k, v in fault.items() if k != "at_ms")
        rows.append({"at_ms": fault["at_ms"], "fault": kind,
                     "details": ", ".join(f"{k}={v}" for k, v in details.items())})
    return pd.DataFrame(rows)


@cache
def schedule_outcomes(schedule: int = SWEEP_SCHEDULE) -> pd.DataFrame:
    """The sweep's rows for ``schedule`` under each of the lesson's configurations (simulated):
    ``config``, ``lost`` and the lost records per cause."""
    with untimed():  # the check's own runs: the budget is for the learner's code
        rows = crash_sweep.one_schedule(schedule)
    return rows[["config", "lost", *CAUSE_COLUMNS]]


def _losing(outcomes: pd.DataFrame) -> list[str]:
    return [str(c) for c in outcomes.loc[outcomes["lost"] > 0, "config"]]


def _main_cause(outcomes: pd.DataFrame) -> str:
    totals = {cause: int(outcomes[column].sum())
              for cause, column in zip(CAUSES, CAUSE_COLUMNS, strict=True)}
    top = max(CAUSES, key=lambda cause: totals[cause])
    return top if totals[top] else ""


@question(
    "02.d",
    points=2,
    answer="schedule_losses",
    title="One random schedule: who loses, and why?",
    hint="Who can still reach whom during the split at 26 s? Which broker leads, and who can "
         "the producer still write to?",
)
def schedule_losses(answer: object, sheet: Checklist) -> None:
    """Grade the losing configurations and the cause against the sweep's rows (simulated)."""
    outcomes = schedule_outcomes(SWEEP_SCHEDULE)
    losing, cause = _losing(outcomes), _main_cause(outcomes)
    labels = list(crash_sweep.CONFIGS)
    given = answer if isinstance(answer, Mapping) else {}
    with sheet.item("schedule_losses['lose'] names exactly the configurations that lose "
                    "acknowledged records", points=1) as item:
        named = given.get("lose")
        if not isinstance(answer, Mapping):
            item.fail(f"expected a dict like {{'lose': ['acks=1'], 'cause': 'truncated'}}, got "
                      f"{type(answer).__name__}")
        elif isinstance(named, str) or not isinstance(named, list | tuple | set | frozenset):
            item.fail(f"schedule_losses['lose'] should be a list of configuration labels, got "
                      f"{named!r}")
        elif unknown := [n for n in named if n not in labels]:
            item.fail(f"{unknown[0]!r} is not one of the lesson's configurations: "
                      f"{', '.join(labels)}")
        elif set(named) != set(losing):
            item.fail("not the configurations that lose data under this schedule",
                      "A configuration loses data only if an election makes a replica leader "
                      "that misses acknowledged records.")
    with sheet.item("schedule_losses['cause'] is the audit's cause of most lost records",
                    points=1) as item:
        chosen = given.get("cause")
        if chosen not in CAUSES:
            item.fail(f"schedule_losses['cause'] must be one of {', '.join(CAUSES)}, got "
                      f"{chosen!r}")
        elif chosen != cause:
            item.fail(f"{chosen!r} is not the cause of most lost records",
                      "Was any election unclean? Did a broker lose its disk?")
