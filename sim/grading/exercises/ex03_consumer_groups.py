"""Checks for exercise 03 (lesson "consumer groups"): assignors, lag, and a loop that loses data.

03.a — a prediction of RangeAssignor's and RoundRobinAssignor's assignments for members C1, C2,
C0 (in the order they joined) reading ``orders`` (4 partitions) and ``payments`` (3). It is
compared with the lab's copies of Kafka's assignor classes at check time, as sets per member.

03.b — a plan ``{"consumers": N, "max.poll.records": M}`` for a group that must drain a backlog
of 3,000 records on 6 partitions while 300 new records arrive each second, at 8 ms per record,
with ``max.poll.interval.ms=3000``. The check runs ``sim.lessons.groups.lag_run`` with the plan
and grades what happened: no member removed for a slow poll, the group keeping up, lag under
100 records within 10 s, and no idle consumer.

03.c — an ``on_records(consumer, records)`` callback. The check runs the
``consumer-crash-at-least-once`` scenario's world (two consumers, 100 records a poll, 2 ms a
record, consumer-billing-1 crashes at 9 s) with the callback as both consumers' application,
and asks the delivery audit: nothing skipped, at most one poll's worth processed twice.

The learner's callback runs inside the simulation. Its exceptions (and a time budget running
out inside it) are caught where it is called and raised again from the check, so they reach the
checklist as the learner's own error rather than as a failure of the simulator.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from sim.audit import audit_kernel
from sim.consumer import metrics as group_metrics
from sim.grading.answers import describe as _describe
from sim.grading.answers import is_whole
from sim.grading.budget import BudgetExceeded
from sim.grading.checklist import Checklist
from sim.grading.registry import question
from sim.lessons import groups as lg
from sim.records import TopicPartition

EXERCISE = "03_consumer_groups"
HIDDEN_WHILE_GRADED = True  # the notebook never imports this module; its helpers know answers

# 03.a -------------------------------------------------------------------------------------------
PREDICT_MEMBERS = ("C1", "C2", "C0")  # in the order they joined
PREDICT_TOPICS = {"orders": 4, "payments": 3}
PREDICT_ASSIGNORS = ("range", "roundrobin")

# 03.b -------------------------------------------------------------------------------------------
LAG_PARTITIONS = 6
LAG_RATE_PER_S = 300.0
LAG_PROCESSING_MS = 8.0
LAG_BACKLOG = 3000
LAG_MAX_POLL_INTERVAL_MS = 3000
LAG_DURATION_MS = 15_000.0
LAG_BOUND = 100  # records
LAG_DEADLINE_MS = 10_000.0
MAX_CONSUMERS = 12
MAX_POLL_RECORDS = 10_000

# 03.c -------------------------------------------------------------------------------------------
CRASH_MAX_POLL_RECORDS = 100  # the scenario's max.poll.records
CRASH_CONSUMERS = 2

_HINTS = {
    "format": ('Write each member\'s partitions as "topic-partition" strings, e.g. '
               '{"range": {"C0": ["orders-0", ...], ...}, "roundrobin": {...}}.'),
    "range": ("Range works topic by topic: members sorted by member id (C0, C1, C2, not the join "
              "order); with P partitions and C members the first P % C members get one extra."),
    "roundrobin": ("Round robin lays out all partitions, topics in name order, and deals them "
                   "to the members sorted by member id, one each in turn, across topics."),
    "timeouts": ("A poll hands a consumer up to max.poll.records records; at 8 ms each, "
                 "max.poll.records × 8 ms must stay under max.poll.interval.ms=3000."),
    "capacity": ("One consumer processes 1000 / 8 = 125 records a second. A partition is read by "
                 "one consumer of the group, so the consumer with the most partitions sets the "
                 "pace: how many partitions can one consumer carry at 50 records/s each?"),
    "drain": ("Draining 500 backlog records per partition needs spare capacity on every "
              "consumer: a consumer with two partitions has only 125 − 100 = 25 records/s "
              "to spare."),
    "idle": ("A group gives each partition to one consumer: with more consumers than "
             "partitions the extra ones get nothing."),
    "loop": ("Process the records first, then commit: commit_sync() with no arguments commits "
             "the position after the last record the poll returned."),
}


# --- 03.a ----------------------------------------------------------------------------------------


def _partition(value: object) -> TopicPartition | None:
    """``"orders-1"``, ``("orders", 1)`` or a TopicPartition → TopicPartition (None if neither)."""
    if isinstance(value, TopicPartition):
        return value
    if isinstance(value, str):
        topic, _, number = value.strip().rpartition("-")
        if topic and number.isdigit():
            return TopicPartition(topic, int(number))
        return None
    if isinstance(value, tuple | list) and len(value) == 2 and isinstance(value[0], str) \
            and is_whole(value[1]):
        return TopicPartition(value[0], int(value[1]))
    return None


def _read_prediction(answer: object, assignor: str) -> tuple[dict[str, set[TopicPartition]] | None,
                                                            str]:
    """The prediction for one assignor as sets, or None and the problem."""
    if not isinstance(answer, Mapping):
        return None, f"expected a dict like {{'range': {{...}}, 'roundrobin': {{...}}}}, got " \
                     f"{_describe(answer)}"
    if assignor not in answer:
        return None, f"the dict has no key {assignor!r} (keys: {sorted(map(str, answer))})"
    table = answer[assignor]
    if not isinstance(table, Mapping):
        return None, f"{assignor!r} must map member ids to lists, got {_describe(table)}"
    missing = [m for m in PREDICT_MEMBERS if m not in table]
    extra = [m for m in table if m not in PREDICT_MEMBERS]
    if missing or extra:
        return None, (f"{assignor!r} must name exactly the members {sorted(PREDICT_MEMBERS)}; "
                      f"missing {missing}, unknown {extra}")
    known = {TopicPartition(t, p) for t, n in PREDICT_TOPICS.items() for p in range(n)}
    out: dict[str, set[TopicPartition]] = {}
    for member in PREDICT_MEMBERS:
        parts = table[member]
        if isinstance(parts, str) or not hasattr(parts, "__iter__"):
            return None, (f"{assignor!r} → {member!r} must be a list of partitions, got "
                          f"{_describe(parts)}")
        converted = []
        for item in parts:
            tp = _partition(item)
            if tp is None or tp not in known:
                return None, (f"{assignor!r} → {member!r} lists {item!r}, which is not a "
                              "partition of orders (0–3) or payments (0–2); write it like "
                              "'orders-0'")
            converted.append(tp)
        out[member] = set(converted)
    claimed = [tp for parts in out.values() for tp in parts]
    if len(claimed) != len(set(claimed)) or set(claimed) != known:
        doubled = sorted({str(tp) for tp in claimed if claimed.count(tp) > 1})
        left = sorted(str(tp) for tp in known - set(claimed))
        return None, (f"{assignor!r}: every partition must go to exactly one member "
                      f"(given twice: {doubled or 'none'}; given to nobody: {left or 'none'})")
    return out, ""


@question(
    "03.a",
    points=5,
    answer="predicted_assignments",
    title="Predict: range and round robin",
    hint=_HINTS["range"],
)
def predict_assignments(answer: object, sheet: Checklist) -> None:
    """Grade predicted range and round-robin assignments against the assignor classes."""
    predictions: dict[str, dict[str, set[TopicPartition]]] = {}
    with sheet.item("predicted_assignments gives each of C0, C1, C2 a list of partitions, for "
                    "'range' and for 'roundrobin', every partition exactly once", points=1) as item:
        for assignor in PREDICT_ASSIGNORS:
            table, problem = _read_prediction(answer, assignor)
            if table is None:
                item.fail(problem, _HINTS["format"])
                break
            predictions[assignor] = table
    if not item.passed:
        return sheet.stop("the prediction could not be read")
    for assignor in PREDICT_ASSIGNORS:
        expected = lg.assign(assignor, PREDICT_TOPICS, list(PREDICT_MEMBERS))  # computed now
        with sheet.item(f"{assignor}: every member gets exactly the partitions the "
                        f"{assignor} assignor gives it", points=2) as item:
            for member in sorted(PREDICT_MEMBERS):
                mine, theirs = predictions[assignor][member], set(expected[member])
                if mine != theirs:
                    shown = ", ".join(str(tp) for tp in sorted(mine)) or "nothing"
                    item.fail(f"{assignor}: {member} is not right — you gave it {shown}; the "
                              f"assignor gives {member} {len(theirs)} partition(s), not these",
                              _HINTS[assignor])
                    break
    return None


# --- 03.b ----------------------------------------------------------------------------------------


def lag_trial(consumers: int, max_poll_records: int) -> lg.LagRun:
    """Run exercise 03.b's load with a plan: the same simulation the check runs."""
    return lg.lag_run(consumers, max_poll_records, LAG_PROCESSING_MS,
                      partitions=LAG_PARTITIONS, rate_per_s=LAG_RATE_PER_S, backlog=LAG_BACKLOG,
                      duration_ms=LAG_DURATION_MS,
                      max_poll_interval_ms=LAG_MAX_POLL_INTERVAL_MS)


def _read_plan(answer: object) -> tuple[int, int] | str:
    if not isinstance(answer, Mapping):
        return f'expected a dict like {{"consumers": 3, "max.poll.records": 500}}, got ' \
               f"{_describe(answer)}"
    if "max.poll.records" not in answer:
        near = [k for k in answer if "poll" in str(k)]
        also = f" (found {near[0]!r}; use Kafka's dotted name)" if near else ""
        return f'lag_plan has no "max.poll.records"{also}'
    if "consumers" not in answer:
        return 'lag_plan has no "consumers"'
    consumers, records = answer["consumers"], answer["max.poll.records"]
    if not is_whole(consumers) or not 1 <= int(consumers) <= MAX_CONSUMERS:
        return f"consumers must be a whole number from 1 to {MAX_CONSUMERS}, got " \
               f"{_describe(consumers)}"
    if not is_whole(records) or not 1 <= int(records) <= MAX_POLL_RECORDS:
        return f"max.poll.records must be a whole number from 1 to {MAX_POLL_RECORDS}, got " \
               f"{_describe(records)}"
    return int(consumers), int(records)


@question(
    "03.b",
    points=6,
    answer="lag_plan",
    title="Choose consumers and max.poll.records",
    hint=_HINTS["capacity"],
)
def lag_plan(answer: object, sheet: Checklist) -> None:
    """Grade a consumers / max.poll.records plan by simulating it now."""
    with sheet.item(f"lag_plan names a whole number of consumers (1–{MAX_CONSUMERS}) and of "
                    f"max.poll.records (1–{MAX_POLL_RECORDS})", points=1) as item:
        plan = _read_plan(answer)
        if isinstance(plan, str):
            item.fail(plan)
    if not item.passed or isinstance(plan, str):
        return sheet.stop("there is no plan to simulate")
    consumers, records = plan
    run = lag_trial(consumers, records)
    stats = run.stats(LAG_BOUND)
    with sheet.item(f"no consumer is removed from the group for taking longer than "
                    f"max.poll.interval.ms={LAG_MAX_POLL_INTERVAL_MS} between polls",
                    points=1) as item:
        if stats["poll_timeouts"]:
            item.fail(f"consumers left the group {stats['poll_timeouts']} times with a poll "
                      f"timeout: a poll of up to {records} records takes up to "
                      f"{records * LAG_PROCESSING_MS:g} ms to process", _HINTS["timeouts"])
    seconds = LAG_DURATION_MS / 1000
    with sheet.item(f"the group keeps up: lag is under {LAG_BOUND} records at the end of the "
                    f"{seconds:g} s run", points=1) as item:
        if stats["end_lag"] >= LAG_BOUND:
            item.fail(f"lag at the end of the run is {stats['end_lag']:.0f} records",
                      _HINTS["capacity"])
    deadline = LAG_DEADLINE_MS / 1000
    settled = stats["below_at_ms"]
    with sheet.item(f"lag falls under {LAG_BOUND} records within {deadline:g} s and stays "
                    "there", points=2) as item:
        if not settled <= LAG_DEADLINE_MS:
            when = ("it never does in the run" if math.isnan(settled)
                    else f"it stays under only from {settled / 1000:.1f} s")
            item.fail(f"lag peaks at {stats['peak_lag']:.0f} records and {when}",
                      _HINTS["drain"])
    with sheet.item(f"no consumer sits idle ({LAG_PARTITIONS} partitions)", points=1) as item:
        if consumers > LAG_PARTITIONS:
            item.fail(f"{consumers} consumers for {LAG_PARTITIONS} partitions: "
                      f"{consumers - LAG_PARTITIONS} of them get no partition", _HINTS["idle"])
    return None


# --- 03.c ----------------------------------------------------------------------------------------


class _LearnerStopped(Exception):  # noqa: N818 - a signal out of the simulation, not an error
    """Stops the simulation after the learner's callback failed (the error is kept aside)."""


def _guarded(fn: Callable[..., Any], failures: list[BaseException]) -> Callable[..., Any]:
    """``fn`` as an application whose errors are kept in ``failures`` and stop the run.

    SimPy copies an exception that escapes a process as ``type(exc)(*exc.args)``, which loses
    the learner's traceback and cannot rebuild every exception (a time budget's among them);
    keeping the original here lets the check raise it as it was. SimPy also fails the process
    only at its next step, after other processes of the same instant ran: once one call
    failed, later calls stop at once rather than run the learner's code again (with a time
    budget that has already fired, an endless loop would never be interrupted).
    """

    def on_records(consumer: Any, records: Any) -> Any:
        if failures:  # SimPy fails the first process later; other consumers must not go on
            raise _LearnerStopped(type(failures[0]).__name__)
        try:
            return fn(consumer, records)
        except (Exception, BudgetExceeded) as exc:
            failures.append(exc)
            raise _LearnerStopped(type(exc).__name__) from None

    on_records.__name__ = getattr(fn, "__name__", "on_records")
    return on_records


def _takes_two(fn: object) -> str | None:
    """A problem if ``fn`` cannot be called as ``fn(consumer, records)``."""
    if not callable(fn):
        return f"expected a function on_records(consumer, records), got {_describe(fn)}"
    if getattr(fn, "__module__", "") == "sim.consumer.apps":
        name = getattr(fn, "__name__", "?")
        return f"sim.consumer.apps.{name} is the lab's ready-made loop; write your own"
    try:
        inspect.signature(fn).bind(object(), object())
    except TypeError:
        return (f"on_records must take two arguments, (consumer, records); "
                f"{getattr(fn, '__name__', 'it')} has the signature {inspect.signature(fn)}")
    except ValueError:
        return None  # no signature to read (a builtin): let the run decide
    return None


@question(
    "03.c",
    points=7,
    answer="on_records",
    title="Fix the loop that loses records",
    hint=_HINTS["loop"],
)
def fix_the_loop(answer: object, sheet: Checklist) -> None:
    """Grade an on_records callback by crashing a consumer that runs it."""
    with sheet.item("on_records is a function taking (consumer, records)", points=1) as item:
        problem = _takes_two(answer)
        if problem:
            item.fail(problem)
    if not item.passed:
        return sheet.stop("there is no callback to run")

    failures: list[BaseException] = []
    kernel = None
    with sheet.item("on_records runs through the crash scenario (two consumers, "
                    "consumer-billing-1 crashes at 9 s) without raising", points=1) as item:
        try:
            kernel = lg.crash_kernel(_guarded(answer, failures))  # type: ignore[arg-type]
        except _LearnerStopped:
            raise failures[0] from None
    if kernel is None:
        return sheet.stop("the simulation stopped at your callback's error")

    report = audit_kernel(kernel)
    batches = CRASH_CONSUMERS * CRASH_MAX_POLL_RECORDS
    with sheet.item("it processes the records each poll returns (all but the batches in "
                    "progress at the crash and at the end)", points=1) as item:
        unprocessed = report.read - report.processed
        if report.processed == 0:
            item.fail("no record was processed: call process(records) in on_records",
                      _HINTS["loop"])
        elif unprocessed > batches:
            item.fail(f"{unprocessed} of the {report.read} records read were never processed",
                      _HINTS["loop"])

    commits = _committed(kernel)
    processed = lg.processed_records(kernel)
    nothing = "no record was processed, so there is nothing to judge"
    with sheet.item("it commits its progress: each partition's committed offset ends within "
                    f"{CRASH_MAX_POLL_RECORDS} records of what was processed", points=1) as item:
        if processed.empty:
            item.fail(nothing, _HINTS["loop"])
        for partition, highest in processed.groupby("partition")["offset"].max().items():
            committed = commits.get(int(partition))
            if committed is None:
                item.fail(f"nothing was ever committed for payments-{partition}: a new owner "
                          "starts again from the beginning", _HINTS["loop"])
                break
            if highest + 1 - committed > CRASH_MAX_POLL_RECORDS:
                item.fail(f"payments-{partition} was processed up to offset {highest} but "
                          f"committed only up to {committed}", _HINTS["loop"])
                break

    with sheet.item(f"no record is lost: the audit finds {report.skipped} skipped records "
                    "(every record the group moved past was processed)", points=2) as item:
        if report.processed == 0:
            item.fail(nothing, _HINTS["loop"])
        elif report.skipped:
            entry = report.anomalies["skipped"][0]
            item.fail(f"{report.skipped} records were skipped, e.g. payments-{entry['partition']}"
                      f" offsets {entry['first_offset']}–{entry['last_offset']}: committed "
                      "before they were processed, then the crash", _HINTS["loop"])

    with sheet.item(f"the crash repeats at most one poll's worth of records (the audit finds "
                    f"{report.processed_twice} processed twice; max.poll.records="
                    f"{CRASH_MAX_POLL_RECORDS})", points=1) as item:
        if report.processed == 0:
            item.fail(nothing, _HINTS["loop"])
        elif report.processed_twice > CRASH_MAX_POLL_RECORDS:
            item.fail(f"{report.processed_twice} records were processed twice: commit after "
                      "every poll, not less often", _HINTS["loop"])
    return None


def _committed(kernel: Any) -> dict[int, int]:
    """The group's last committed offset per partition of the crash scenario's topic."""
    out: dict[int, int] = {}
    for consumer in group_metrics.consumers(kernel):
        frame = consumer.commits()
        ok = frame[frame["error"] == ""]
        for row in ok.itertuples(index=False):
            out[int(row.partition)] = max(out.get(int(row.partition), 0), int(row.offset))
    return out
