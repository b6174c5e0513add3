"""Checks for exercise 04 (lesson "storage"): compaction, a retention plan, lookup by time.

04.a — a function ``kept_offsets(keys, active_from)`` predicting which offsets one cleaning
pass of a compacted topic keeps, where ``keys[i]`` is the key at offset i and the active segment
starts at ``active_from``. It is compared, on the worked example and on variants the notebook
does not show, with the lab's log cleaner (``sim.broker.log_cleaner.clean``) run at check time.

04.b — ``{"retention.ms": R, "local.retention.ms": L}`` for a tiered topic that must let a new
consumer replay 14 days, while consumers reading the last day read from local disk. The plan
is parsed by the lab's topic config (Kafka's rule local.retention.ms ≤ retention.ms), then run
on the simulator (``sim.lessons.storage.plan_run``): a tiered topic takes a record every 30
simulated minutes for 16 days under the plan, with the brokers' retention and remote log
manager tasks deleting and tiering segments as Kafka does; the replay need holds when, at every
hour of the last day, the log start offset (remote tier included) still reaches the first record
younger than 14 days, the local need when the local log start offset reaches the first record
younger than a day. It is priced with
``sim.broker.storage_cost.retention_plan``; the cheapest plan meeting both needs passes.

04.c — ``{"seek": offset, "offsets": [...]}`` for a partition with out-of-order timestamps: the
offset ``offsets_for_times`` returns for t1, and every offset whose timestamp lies in [t1, t2).
Both are computed at check time with ``sim.broker.list_offsets.offset_for_timestamp``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from sim import config
from sim.broker.storage_cost import topic_plan_cost
from sim.errors import ConfigError
from sim.grading.answers import describe as _describe
from sim.grading.answers import is_whole
from sim.grading.checklist import Checklist
from sim.grading.registry import question
from sim.lessons import storage as ls

EXERCISE = "04_storage"
HIDDEN_WHILE_GRADED = True  # the notebook never imports this module; its variants are answers
GUARDED_WHILE_GRADED = ("sim.lessons.storage:compaction", "sim.broker.log_cleaner:clean")
"""04.a asks for what the cleaner keeps: while the grader calls kept_offsets these raise."""

# 04.a -------------------------------------------------------------------------------------------
SEGMENT_RECORDS = 2  # records per segment in every 04.a log
EXAMPLE_KEYS = ("K1", "K2", "K1", "K3", "K2", "K1", "K4", "K1", "K2")
HIDDEN_KEYS = (
    ("A", "A", "A"),  # the newest A is active: the cleaner keeps offset 1 as well
    ("A", "B", "C", "D", "E"),
    ("X", "Y", "X", "Y", "X", "Y", "X", "Y"),
    ("P", "Q", "Q", "P", "R", "Q", "P", "P", "R", "S", "P"),
)

# 04.b -------------------------------------------------------------------------------------------
DAY_MS = 86_400_000
INGEST_BYTES_PER_DAY = 200e9
REPLICATION_FACTOR = 3
REPLAY_DAYS = 14
LOCAL_DAYS = 1

# 04.c -------------------------------------------------------------------------------------------
TIMESTAMPS = (1_000, 1_300, 1_100, 1_600, 1_250, 1_900, 1_450, 2_300, 1_700, 2_000)
T1, T2 = 1_200, 1_800

_HINTS = {
    "latest": ("The cleaner keeps each key's latest record in the part it cleans; offsets "
               "never move, so the answer is a sorted list of original offsets."),
    "active": ("The cleaner never touches the active segment, and it only knows the keys in "
               "the segments it cleans: a key's newest record in the active segment does not "
               "remove an older one in a closed segment."),
    "replay": ("Retention deletes whole segments once their newest record is older than "
               "retention.ms, so retention.ms of 14 days keeps at least 14 days."),
    "local": "Records younger than local.retention.ms stay on the brokers' disks.",
    "cost": ("Disk costs more than object storage, and the brokers keep every local byte "
             "once per replica: keep locally only what the tail readers need."),
    "seek": ("offsets_for_times returns the earliest offset whose timestamp is ≥ t1 — not "
             "the record closest in time."),
    "range": ("Timestamps are not sorted: after the seek, filter every record by its "
              "timestamp; some records in [t1, t2) come after one at or past t2."),
}


def _offsets(value: object) -> list[int] | None:
    """A list of whole numbers as a sorted list of ints, or None."""
    if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__iter__"):
        return None
    items = list(value)  # type: ignore[call-overload]
    if not all(is_whole(v) for v in items):
        return None
    return sorted(int(v) for v in items)


def active_from(keys: tuple[str, ...]) -> int:
    """The active segment's base offset in a log of ``SEGMENT_RECORDS`` records a segment."""
    return (len(keys) - 1) // SEGMENT_RECORDS * SEGMENT_RECORDS


def cleaner_keeps(keys: tuple[str, ...]) -> list[int]:
    """What the lab's log cleaner keeps of ``keys``, computed now."""
    return ls.surviving_offsets(list(keys), SEGMENT_RECORDS)


# --- 04.a ----------------------------------------------------------------------------------------


@question("04.a", points=5, answer="kept_offsets", title="Predict what compaction keeps",
          hint=_HINTS["latest"])
def predict_compaction(answer: object, sheet: Checklist) -> None:
    """Grade ``kept_offsets`` against the log cleaner on the example and hidden variants."""
    with sheet.item("kept_offsets(keys, active_from) returns a list of whole-number offsets",
                    points=1) as item:
        if not callable(answer):
            item.fail(f"kept_offsets must be a function, got {_describe(answer)}")
        else:
            got = _offsets(answer(list(EXAMPLE_KEYS), active_from(EXAMPLE_KEYS)))
            if got is None:
                item.fail("kept_offsets must return a list of whole numbers")
    if not item.passed:
        return sheet.stop("there is no prediction to compare")
    with sheet.item("on the worked example, exactly the offsets the cleaner keeps",
                    points=2) as item:
        got = _offsets(answer(list(EXAMPLE_KEYS), active_from(EXAMPLE_KEYS)))
        if got != cleaner_keeps(EXAMPLE_KEYS):
            item.fail(f"for the worked example you keep {got}: not what the cleaner keeps",
                      _HINTS["latest"])
    with sheet.item(f"on {len(HIDDEN_KEYS)} other key sequences (not shown), exactly the "
                    "offsets the cleaner keeps", points=2) as item:
        wrong = sum(_offsets(answer(list(keys), active_from(keys))) != cleaner_keeps(keys)
                    for keys in HIDDEN_KEYS)
        if wrong:
            item.fail(f"{wrong} of the {len(HIDDEN_KEYS)} other sequences come out wrong",
                      _HINTS["active"])
    return None


# --- 04.b ----------------------------------------------------------------------------------------


def plan_cost(retention_ms: int, local_retention_ms: int) -> float:
    """The plan's monthly cost in dollars (-1 keeps forever: infinite)."""
    return topic_plan_cost(INGEST_BYTES_PER_DAY, retention_ms, local_retention_ms,
                           REPLICATION_FACTOR)


def _read_plan(answer: object) -> tuple[int, int] | str:
    if not isinstance(answer, Mapping):
        return ('expected a dict like {"retention.ms": ..., "local.retention.ms": ...}, got '
                f"{_describe(answer)}")
    for name in ("retention.ms", "local.retention.ms"):
        if name not in answer:
            return f"retention_plan has no {name!r}"
        if not is_whole(answer[name]):
            return f"{name} must be a whole number of milliseconds, got {_describe(answer[name])}"
    try:
        parsed = config.TOPIC.parse({"remote.storage.enable": True,
                                     "retention.ms": int(answer["retention.ms"]),
                                     "local.retention.ms": int(answer["local.retention.ms"])})
    except ConfigError as exc:
        return str(exc).splitlines()[0]
    return parsed["retention.ms"], parsed["local.retention.ms"]


def _local_ms(plan: tuple[int, int]) -> int:
    retention, local = plan
    return retention if local == -2 else local


@question("04.b", points=5, answer="storage_plan", title="Replay 14 days at the least cost",
          hint=_HINTS["cost"])
def storage_plan(answer: object, sheet: Checklist) -> None:
    """Grade a retention.ms / local.retention.ms plan with the topic config and cost model."""
    with sheet.item("storage_plan is a valid tiered topic config (local.retention.ms ≤ "
                    "retention.ms)", points=1) as item:
        plan = _read_plan(answer)
        if isinstance(plan, str):
            item.fail(plan)
    if not item.passed or isinstance(plan, str):
        return sheet.stop("there is no plan to price")
    retention, local_retention = plan
    run = ls.plan_run(retention, local_retention, REPLAY_DAYS, LOCAL_DAYS)
    with sheet.item(f"on the simulator, a new consumer can always replay the last "
                    f"{REPLAY_DAYS} days", points=1) as replay:
        if not run.replay_ok:
            replay.fail(f"at {run.replay_at_ms / 3_600_000:g} simulated hours the log starts "
                        f"at offset {run.log_start_offset}, but the last {REPLAY_DAYS} days "
                        f"start at {run.first_of_replay} (retention.ms={retention})",
                        _HINTS["replay"])
    with sheet.item(f"on the simulator, the last {LOCAL_DAYS} day stays on the brokers' disks",
                    points=1) as local:
        local_ms = _local_ms(plan)
        if not run.local_ok:
            local.fail(f"at {run.local_at_ms / 3_600_000:g} simulated hours the local log starts "
                       f"at offset {run.local_log_start_offset}, but the last day starts at "
                       f"{run.first_of_last_day} (local.retention.ms={local_ms})",
                       _HINTS["local"])
    with sheet.item("it meets both needs, and no plan meeting both costs less",
                    points=2) as item:
        best = plan_cost(REPLAY_DAYS * DAY_MS, LOCAL_DAYS * DAY_MS)
        mine = plan_cost(retention, plan[1])
        if not (replay.passed and local.passed):
            item.fail("the plan does not meet both needs yet", _HINTS["replay"])
        elif mine > best * 1.001:
            shown = "keeps data forever" if math.isinf(mine) else f"costs ${mine:,.0f} a month"
            item.fail(f"your plan {shown}; a cheaper one meets both needs", _HINTS["cost"])
    return None


# --- 04.c ----------------------------------------------------------------------------------------


@question("04.c", points=4, answer="time_range", title="Offsets for a time range",
          hint=_HINTS["range"])
def time_range(answer: object, sheet: Checklist) -> None:
    """Grade the seek offset for t1 and the offsets of records in [t1, t2)."""
    with sheet.item('time_range is a dict with "seek" (a whole number) and "offsets" (a list '
                    "of whole numbers)", points=1) as item:
        ok = (isinstance(answer, Mapping) and is_whole(answer.get("seek"))
              and _offsets(answer.get("offsets")) is not None)
        if not ok:
            item.fail(f'expected {{"seek": 3, "offsets": [3, 5]}}, got {_describe(answer)}')
    if not item.passed:
        return sheet.stop("the answer could not be read")
    assert isinstance(answer, Mapping)
    found = ls.lookup(list(TIMESTAMPS), T1)
    with sheet.item(f"seek is the offset offsets_for_times returns for t1={T1}",
                    points=1) as item:
        if found is None or int(answer["seek"]) != found.offset:
            item.fail(f"seek={answer['seek']} is not that offset", _HINTS["seek"])
    with sheet.item(f"offsets are exactly the records with {T1} ≤ timestamp < {T2}",
                    points=2) as item:
        if _offsets(answer["offsets"]) != ls.offsets_between(list(TIMESTAMPS), T1, T2):
            item.fail("some offsets are missing or do not belong", _HINTS["range"])
    return None

