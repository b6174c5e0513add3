"""Checks for exercise 07 (lesson "Kafka Streams state"): restore time, standbys, double counts.

07.a — a function ``restore_time_ms(records, changelog_bytes, bandwidth_mbps, latency_ms)``.
The check crashes the payments-per-customer application with its state directory lost on two
links whose sizes and rates the learner never sees, and compares the function's answer with the
restore time the simulator measured. The simulator's restore time is exact arithmetic (one
round trip per fetch of up to 1,000 records plus the bytes at the link's bandwidth, pinned by
``tests/test_streams_state_restore.py``), so the tolerance only has to absorb rounding in the
learner's constants: 3 % (or 0.5 ms). Every plausible mistake is further off than that in at
least one case: leaving out the round trips (−75 % on the first link), counting one-way
latency or one round trip for the whole restore (−37 %), a round trip per record (far over),
bits for bytes (−87 % on the second link), or mebibits for megabits (−4.6 % there).

07.b — ``standby_replicas``: the smallest ``num.standby.replicas`` whose failover meets a
recovery-time objective of 200 ms after the owner of ``payments-0`` crashes and loses its disk
(1,000 changelog records on a 1 Mbit/s link: a full restore takes about 0.6 s). The check runs
the failover with the answer, and with one standby fewer to see that it is the smallest.

07.c — ``predicted_counts = {"paid": …, "at_least_once": …, "exactly_once_v2": …}`` for one
customer after the same crash under each guarantee: 12 payments counted and committed, 4 more
counted, then a crash before the next commit and a restart with the disk kept. The check runs
both crashes now. Plausible mistakes each lose marks: the same count under both guarantees
(exactly-once in mind, or at-least-once in mind), everything counted twice, or only the
committed payments.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from sim.grading.answers import is_whole
from sim.grading.budget import untimed
from sim.grading.checklist import Checklist
from sim.grading.registry import question
from sim.lessons import streams_state as ss

EXERCISE = "07_streams_state"
HIDDEN_WHILE_GRADED = True  # the hidden links below are the answers' inputs
GUARDED_WHILE_GRADED = tuple(f"sim.lessons.streams_state:{name}" for name in (
    "failover", "failover_kernel", "payments_world", "restore_sweep"))
"""07.a asks for what a restore costs: while the grader calls restore_time_ms these raise."""

# 07.a -------------------------------------------------------------------------------------------
HIDDEN_LINKS = (  # (rounds, customers, bandwidth Mbit/s, one-way latency ms)
    (1, 1500, 50.0, 20.0),  # two fetches, latency-bound
    (1, 600, 2.0, 1.0),  # one fetch, bandwidth-bound
)
RELATIVE_TOLERANCE = 0.03
ABSOLUTE_TOLERANCE_MS = 0.5

# 07.b -------------------------------------------------------------------------------------------
RTO_MS = 200.0
RTO_ROUNDS, RTO_CUSTOMERS, RTO_BANDWIDTH_MBPS = 5, 200, 1.0
MAX_STANDBYS = 2

# 07.c -------------------------------------------------------------------------------------------
COUNTED_BEFORE, COUNTED_AFTER = 12, 4

_HINTS = {
    "formula": ("The restore consumer fetches up to 1,000 records a request; each request costs "
                "a round trip (2 × latency_ms) and its bytes cross the link at bandwidth_mbps "
                "megabits (10^6 bits) per second."),
    "rto": ("Without a standby the new owner restores the whole changelog; with one, the "
            "promoted standby has (almost) everything already."),
    "counts": ("At-least-once: the store comes back with every count it had (the changelog has "
               "them all), the input offsets only as far as the last commit. Exactly-once: the "
               "crashed transaction is aborted, and the store, without a checkpoint, is wiped and "
               "restored from the committed changelog records."),
}


def _describe(value: object) -> str:
    text = repr(value)
    return (text[:47] + "...") if len(text) > 50 else text


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# --- 07.a ----------------------------------------------------------------------------------------


@functools.cache
def hidden_restore(rounds: int, customers: int, mbps: float, latency: float) -> dict[str, Any]:
    """One hidden link's crash (state directory lost) and restore; runs are deterministic, so
    a second check reuses the first's."""
    with untimed():  # the check's own run: the budget is for the learner's code
        run = ss.failover(rounds, customers, lose_state=True, bandwidth_mbps=mbps,
                          latency_ms=latency)
    return {k: run[k] for k in ("changelog_records", "changelog_bytes", "restore_ms")}


@question("07.a", points=5, answer="restore_time_ms",
          title="Predict restore time from changelog size and rates", hint=_HINTS["formula"])
def restore_time(answer: object, sheet: Checklist) -> None:
    """Grade a restore-time formula against restores simulated on hidden links."""
    fn: Callable[..., object] = answer  # type: ignore[assignment]
    with sheet.item("restore_time_ms(records, changelog_bytes, bandwidth_mbps, latency_ms) "
                    "returns a number of milliseconds", points=1) as item:
        value = fn(1000, 100_000, 10.0, 1.0) if callable(fn) else None
        if not callable(fn):
            item.fail(f"expected a function, got {_describe(answer)}")
        elif not _is_number(value) or not math.isfinite(float(value)):  # type: ignore[arg-type]
            item.fail(f"restore_time_ms(1000, 100000, 10.0, 1.0) returned {_describe(value)}, "
                      "not a number")
    if not item.passed:
        return sheet.stop("there is no formula to compare")
    for number, (rounds, customers, mbps, latency) in enumerate(HIDDEN_LINKS, start=1):
        run = hidden_restore(rounds, customers, mbps, latency)
        with sheet.item(f"hidden link {number}: within {RELATIVE_TOLERANCE:.0%} of the "
                        "simulated restore", points=2) as item:
            guess = fn(run["changelog_records"], run["changelog_bytes"], mbps, latency)
            measured = run["restore_ms"]
            if not _is_number(guess) or not math.isclose(
                    float(guess), measured, rel_tol=RELATIVE_TOLERANCE,  # type: ignore[arg-type]
                    abs_tol=ABSOLUTE_TOLERANCE_MS):
                item.fail(f"for {run['changelog_records']} records ({run['changelog_bytes']} "
                          f"bytes) at {mbps:g} Mbit/s and {latency:g} ms you predict "
                          f"{_describe(guess)} ms; the simulator took {measured:.1f} ms",
                          _HINTS["formula"])
    return None


# --- 07.b ----------------------------------------------------------------------------------------


def rto_trial(standbys: int) -> float:
    """Exercise 07.b's failover with ``standbys`` standby replicas: the restore time in ms."""
    return ss.failover(RTO_ROUNDS, RTO_CUSTOMERS, lose_state=True, standbys=standbys,
                       bandwidth_mbps=RTO_BANDWIDTH_MBPS)["restore_ms"]


@question("07.b", points=4, answer="standby_replicas",
          title="Choose num.standby.replicas for a recovery-time objective", hint=_HINTS["rto"])
def standby_replicas(answer: object, sheet: Checklist) -> None:
    """Grade a num.standby.replicas choice by running the failover with it."""
    with sheet.item(f"standby_replicas is a whole number from 0 to {MAX_STANDBYS}",
                    points=1) as item:
        if not is_whole(answer) or not 0 <= int(answer) <= MAX_STANDBYS:  # type: ignore
            item.fail(f"got {_describe(answer)}")
    if not item.passed:
        return sheet.stop("there is no setting to run")
    standbys = int(answer)  # type: ignore[call-overload]
    took = rto_trial(standbys)
    with sheet.item(f"the failover restores within {RTO_MS:g} ms", points=2) as item:
        if took > RTO_MS:
            item.fail(f"with num.standby.replicas={standbys} the restore took {took:.0f} ms",
                      _HINTS["rto"])
    with sheet.item("no fewer standbys would do (each one is a full copy of the state, kept "
                    "up to date by reading the changelog)", points=1) as item:
        if standbys > 0 and rto_trial(standbys - 1) <= RTO_MS:
            item.fail(f"num.standby.replicas={standbys - 1} meets the objective too")
        elif took > RTO_MS:
            item.fail("the objective is not met")
    return None


# --- 07.c ----------------------------------------------------------------------------------------


GUARANTEES = ("at_least_once", "exactly_once_v2")


def _read_counts(answer: object) -> tuple[int, int, int] | str:
    keys = {"paid", *GUARANTEES}
    if not isinstance(answer, Mapping) or not keys <= set(answer):
        return ('expected a dict like {"paid": 10, "at_least_once": 10, "exactly_once_v2": '
                f"10}}, got {_describe(answer)}")
    values = [answer[k] for k in ("paid", *GUARANTEES)]
    if not all(is_whole(v) for v in values):
        return f"paid and the two counts must be whole numbers, got {values!r}"
    paid, alos, eos = (int(v) for v in values)
    return paid, alos, eos


@question("07.c", points=4, answer="predicted_counts",
          title="Predict the counts after a crash under each guarantee", hint=_HINTS["counts"])
def predicted_counts(answer: object, sheet: Checklist) -> None:
    """Grade predicted counts against the same crash run now under each guarantee."""
    with sheet.item('predicted_counts is {"paid": <whole number>, "at_least_once": <whole '
                    'number>, "exactly_once_v2": <whole number>}', points=1) as item:
        read = _read_counts(answer)
        if isinstance(read, str):
            item.fail(read)
    if not item.passed or isinstance(read, str):
        return sheet.stop("the prediction could not be read")
    paid, alos, eos = read
    runs = {g: ss.crash_counts(COUNTED_BEFORE, COUNTED_AFTER, processing_guarantee=g).iloc[0]
            for g in GUARANTEES}
    with sheet.item("paid: the payments customer-0 made", points=1) as item:
        if paid != runs["at_least_once"].paid:
            item.fail(f"customer-0 made a different number of payments than {paid}")
    for guarantee, guess in zip(GUARANTEES, (alos, eos), strict=True):
        with sheet.item(f"{guarantee}: the count in the store after the restart",
                        points=1) as item:
            if guess != runs[guarantee].counted:
                item.fail(f"under {guarantee} the store does not hold {guess} for customer-0",
                          _HINTS["counts"])
    return None
