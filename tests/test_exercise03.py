"""Exercise 03 (consumer groups): the solution scores full marks, the generated exercise reports
"not yet solved", half-right answers earn partial marks, and a callback that loops or raises gets
a reason, never a crash.

The two notebooks go through the batch grader (one subprocess each, as for a class); single
answers go through ``sim.grading.check``, as a learner's check cell does.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from sim.consumer import process
from sim.consumer.apps import at_least_once
from sim.grading import check
from sim.grading.batch import Submission, grade_submission
from sim.records import TopicPartition

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "03_consumer_groups.ipynb"
EXERCISE = ROOT / "exercises" / "03_consumer_groups.ipynb"

RANGE = {"C0": ["orders-0", "orders-1", "payments-0"], "C1": ["orders-2", "payments-1"],
         "C2": ["orders-3", "payments-2"]}
ROUND_ROBIN = {"C0": ["orders-0", "orders-3", "payments-2"], "C1": ["orders-1", "payments-0"],
               "C2": ["orders-2", "payments-1"]}


@functools.cache
def graded(path: Path) -> Submission:
    return grade_submission(path, timeout_s=90, cell_timeout_s=20)


def by_question(submission: Submission) -> dict[str, tuple[str, int, int, str]]:
    return {r.question: (r.verdict, r.points, r.max_points, r.reason)
            for r in submission.results}


# --- callbacks, right and wrong ------------------------------------------------------------------


def fixed(consumer, records):
    process(records)
    consumer.commit_sync()


def commit_first(consumer, records):
    consumer.commit_sync()
    process(records)


def does_nothing(consumer, records):
    return None


def never_commits(consumer, records):
    process(records)


# --- whole notebooks ------------------------------------------------------------------------------


def test_solution_scores_full_marks():
    """Through the batch grader, the solution earns 5 + 6 + 7 points and every cell runs."""
    submission = graded(SOLUTION)
    assert submission.problem is None
    assert submission.exercise == "03_consumer_groups"
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    assert {q: r[:3] for q, r in by_question(submission).items()} == {
        "03.a": ("passed", 5, 5), "03.b": ("passed", 6, 6), "03.c": ("passed", 7, 7)}


def test_generated_exercise_runs_and_reports_not_yet_solved():
    """The exercise runs top to bottom (the stubs included) and scores 0, not yet solved."""
    submission = graded(EXERCISE)
    assert submission.problem is None
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    results = by_question(submission)
    assert {q: r[:2] for q, r in results.items()} == {
        "03.a": ("not yet solved", 0), "03.b": ("not yet solved", 0),
        "03.c": ("not yet solved", 0)}
    assert "NotImplementedError" in results["03.c"][3]


def test_half_right_answers_earn_partial_marks():
    """Range right but round robin wrong: 3/5; five consumers: 3/6; commit before processing:
    5/7 — each with the reason for the missing points."""
    a = check("03.a", {"range": RANGE, "roundrobin": RANGE})
    assert (a.verdict, a.points) == ("failed", 3)
    assert "roundrobin: C0 is not right" in a.reason
    b = check("03.b", {"consumers": 5, "max.poll.records": 100})
    assert (b.verdict, b.points) == ("failed", 3)
    assert "lag at the end of the run" in b.reason
    c = check("03.c", commit_first)
    assert (c.verdict, c.points) == ("failed", 5)
    assert "18 records were skipped" in c.reason


# --- 03.a -----------------------------------------------------------------------------------------


def test_predictions_accept_strings_tuples_and_topic_partitions_in_any_order():
    """Members' lists are sets: order and spelling of partitions do not matter."""
    def as_tp(name: str) -> TopicPartition:
        topic, _, number = name.rpartition("-")
        return TopicPartition(topic, int(number))

    spelled = {"range": {m: list(reversed(p)) for m, p in RANGE.items()},
               "roundrobin": {m: [as_tp(parts[0]), *[(as_tp(p).topic, as_tp(p).partition)
                                                     for p in parts[1:]]]
                              for m, parts in ROUND_ROBIN.items()}}
    result = check("03.a", spelled)
    assert (result.verdict, result.points) == ("passed", 5)


@pytest.mark.parametrize(("answer", "reason"), [
    ({"range": RANGE}, "no key 'roundrobin'"),
    ({"range": {**RANGE, "C3": []}, "roundrobin": ROUND_ROBIN}, "unknown ['C3']"),
    ({"range": {**RANGE, "C2": ["orders-3", "orders-4"]}, "roundrobin": ROUND_ROBIN},
     "'orders-4', which is not a partition"),
    ({"range": {**RANGE, "C2": ["orders-3"]}, "roundrobin": ROUND_ROBIN},
     "given to nobody: ['payments-2']"),
    ("range", "expected a dict"),
])
def test_unreadable_predictions_say_what_is_wrong(answer, reason):
    """A prediction that cannot be read earns 0 and names the problem."""
    result = check("03.a", answer)
    assert (result.verdict, result.points) == ("failed", 0)
    assert reason in result.reason


def test_join_order_is_a_trap_the_check_notices():
    """Dealing in join order (C1, C2, C0) instead of member-id order loses the range points."""
    join_order = {"C1": RANGE["C0"], "C2": RANGE["C1"], "C0": RANGE["C2"]}
    result = check("03.a", {"range": join_order, "roundrobin": ROUND_ROBIN})
    assert (result.verdict, result.points) == ("failed", 3)
    assert "range: C0 is not right" in result.reason


# --- 03.b -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("plan", "points", "why"), [
    ({"consumers": 6, "max.poll.records": 100}, 6, "all visible checks passed"),
    ({"consumers": 6, "max.poll.records": 500}, 2, "poll timeout"),
    ({"consumers": 7, "max.poll.records": 100}, 5, "1 of them get no partition"),
    ({"consumers": 6, "max_poll_records": 100}, 0, "use Kafka's dotted name"),
    ({"consumers": 0, "max.poll.records": 100}, 0, "consumers must be a whole number"),
    ({"consumers": 6, "max.poll.records": 2.5}, 0, "max.poll.records must be a whole number"),
])
def test_lag_plans_are_simulated_and_scored_item_by_item(plan, points, why):
    """The check runs the learner's plan now and awards points per behaviour."""
    result = check("03.b", plan)
    assert result.points == points, str(result)
    assert why in result.reason


# --- 03.c -----------------------------------------------------------------------------------------


def test_a_fixed_loop_passes_and_reports_what_the_crash_repeated():
    """Process then commit: nothing skipped, and the report says 83 processed twice."""
    result = check("03.c", fixed)
    assert (result.verdict, result.points) == ("passed", 7)
    assert any("83 processed twice" in line for line in result.passed)


@pytest.mark.parametrize(("fn", "points", "why"), [
    (does_nothing, 2, "no record was processed"),
    (never_commits, 5, "nothing was ever committed for payments-0"),
])
def test_loops_that_lose_repeat_or_skip_work_earn_partial_marks(fn, points, why):
    """Each way of getting it wrong loses the points of the behaviour it breaks."""
    result = check("03.c", fn)
    assert (result.verdict, result.points) == ("failed", points), str(result)
    assert why in result.reason


def test_a_raising_callback_gets_a_one_line_reason():
    """The learner's exception is named with its line, and the check goes no further."""

    def on_records(consumer, records):
        return 1 / 0

    result = check("03.c", on_records)
    assert (result.verdict, result.points) == ("error", 1)
    assert "ZeroDivisionError: division by zero (in on_records, line" in result.reason
    assert "Traceback" not in str(result)


def test_a_looping_callback_runs_out_of_time_with_a_reason():
    """An endless loop inside on_records stops at the time budget, not in a hang."""

    def on_records(consumer, records):
        while True:
            pass

    result = check("03.c", on_records, budget_s=1.5)
    assert (result.verdict, result.points) == ("error", 0)
    assert "time budget ran out" in result.reason
    assert "crash scenario" in result.reason


@pytest.mark.parametrize(("answer", "verdict", "why"), [
    (lambda consumer, records: consumer.poll(), "error", "Do not call poll() inside"),
    (lambda records: None, "failed", "must take two arguments"),
    (at_least_once, "failed", "the lab's ready-made loop"),
    ("process", "failed", "expected a function"),
])
def test_misused_callbacks_are_explained(answer, verdict, why):
    """Polling inside, a wrong signature, the lab's own loop, a string: each gets a reason."""
    result = check("03.c", answer)
    assert result.verdict == verdict
    assert why in result.reason


def test_the_stub_is_not_yet_solved():
    """The generated stub raises NotImplementedError inside the simulation: not yet solved."""

    def on_records(consumer, records):
        raise NotImplementedError("your code here")

    result = check("03.c", on_records)
    assert (result.verdict, result.points) == ("not yet solved", 0)
