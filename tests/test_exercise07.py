"""Exercise 07 (Kafka Streams state): the solution scores full marks, the generated exercise
reports "not yet solved", and plausible wrong answers lose marks with a reason.

The two notebooks go through the batch grader (one subprocess each, as for a class); single
answers go through ``sim.grading.check``, as a learner's check cell does. Every expected value
is computed by the simulator when the check runs.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest

from sim.grading import check
from sim.grading.batch import Submission, grade_submission
from sim.grading.exercises import ex07_streams_state as ex

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "07_streams_state.ipynb"
EXERCISE = ROOT / "exercises" / "07_streams_state.ipynb"


@functools.cache
def graded(path: Path) -> Submission:
    return grade_submission(path, timeout_s=180, cell_timeout_s=60)


def by_question(submission: Submission) -> dict[str, tuple[str, int, int, str]]:
    return {r.question: (r.verdict, r.points, r.max_points, r.reason)
            for r in submission.results}


def _bytes_per_ms(mbps: float) -> float:
    return mbps * 1e6 / 8 / 1000


def right(records, changelog_bytes, mbps, latency):
    return math.ceil(records / 1000) * 2 * latency + changelog_bytes / _bytes_per_ms(mbps)


WRONG_FORMULAS = {
    "no round trips": lambda r, b, mbps, lat: b / _bytes_per_ms(mbps),
    "one-way latency": lambda r, b, mbps, lat: math.ceil(r / 1000) * lat + b / _bytes_per_ms(mbps),
    "one round trip in all": lambda r, b, mbps, lat: 2 * lat + b / _bytes_per_ms(mbps),
    "a round trip per record": lambda r, b, mbps, lat: r * 2 * lat + b / _bytes_per_ms(mbps),
    "bits for bytes": lambda r, b, mbps, lat: math.ceil(r / 1000) * 2 * lat + b / (mbps * 1e3),
    "mebibits": lambda r, b, mbps, lat: (math.ceil(r / 1000) * 2 * lat
                                         + b / (mbps * 2**20 / 8 / 1000)),
}


# --- whole notebooks ------------------------------------------------------------------------------


@pytest.mark.slow
def test_solution_scores_full_marks():
    """Through the batch grader, the solution earns 5 + 4 + 4 points and every cell runs."""
    submission = graded(SOLUTION)
    assert submission.problem is None
    assert submission.exercise == "07_streams_state"
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    assert {q: r[:3] for q, r in by_question(submission).items()} == {
        "07.a": ("passed", 5, 5), "07.b": ("passed", 4, 4), "07.c": ("passed", 4, 4)}


def test_generated_exercise_runs_and_reports_not_yet_solved():
    """The exercise runs top to bottom (the stubs included) and scores 0, not yet solved."""
    submission = graded(EXERCISE)
    assert submission.problem is None
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    results = by_question(submission)
    assert {q: r[:2] for q, r in results.items()} == {
        "07.a": ("not yet solved", 0), "07.b": ("not yet solved", 0),
        "07.c": ("not yet solved", 0)}


# --- 07.a -----------------------------------------------------------------------------------------


def test_the_right_formula_matches_the_simulator_on_every_hidden_link():
    """Fetches of 1,000 records, a round trip each, plus the bytes at the bandwidth: 5/5."""
    result = check("07.a", right, budget_s=None)
    assert (result.verdict, result.points) == ("passed", 5)


def test_the_hidden_links_differ_from_the_lesson_and_need_both_terms():
    """One link is latency-bound (two fetches at 20 ms), the other bandwidth-bound, so neither
    term of the formula can be left out; both are measured, not assumed."""
    latency_bound, bandwidth_bound = (ex.hidden_restore(*link) for link in ex.HIDDEN_LINKS)
    assert latency_bound["changelog_records"] > 1000
    assert bandwidth_bound["changelog_records"] <= 1000
    for link, run in zip(ex.HIDDEN_LINKS, (latency_bound, bandwidth_bound), strict=True):
        assert run["restore_ms"] == pytest.approx(
            right(run["changelog_records"], run["changelog_bytes"], link[2], link[3]))


@pytest.mark.parametrize("mistake", sorted(WRONG_FORMULAS))
def test_each_plausible_mistake_loses_marks(mistake):
    """Each mistake the docstring of ``ex07_streams_state`` lists misses the 3 % tolerance on
    at least one hidden link: 1 point (a function returning a number) + 2 for the other link at
    most."""
    result = check("07.a", WRONG_FORMULAS[mistake], budget_s=None)
    assert result.verdict == "failed"
    assert result.points <= 3
    assert "the simulator took" in result.reason


@pytest.mark.parametrize(("answer", "reason"), [
    (42, "expected a function"),
    (lambda records, changelog_bytes, mbps, latency: "soon", "not a number"),
])
def test_an_answer_that_is_no_formula_earns_nothing(answer, reason):
    result = check("07.a", answer)
    assert (result.verdict, result.points) == ("failed", 0)
    assert reason in result.reason


# --- 07.b -----------------------------------------------------------------------------------------


def test_no_standby_misses_the_objective_and_two_are_more_than_needed():
    """0 standbys: a full restore of 1,000 records at 1 Mbit/s, far over 200 ms → 1/4;
    1: 4/4; 2: meets the objective but 1 would too → 3/4."""
    none = check("07.b", 0, budget_s=None)
    assert (none.verdict, none.points) == ("failed", 1)
    assert "the restore took" in none.reason
    one = check("07.b", 1, budget_s=None)
    assert (one.verdict, one.points) == ("passed", 4)
    two = check("07.b", 2, budget_s=None)
    assert (two.verdict, two.points) == ("failed", 3)
    assert "num.standby.replicas=1 meets the objective too" in two.reason


@pytest.mark.parametrize("answer", [-1, 3, 1.0, True, "1"])
def test_standby_replicas_outside_zero_to_two_is_refused(answer):
    result = check("07.b", answer)
    assert (result.verdict, result.points) == ("failed", 0)


def test_the_rto_run_restores_the_whole_changelog_without_a_standby():
    """The objective is tight enough to need a standby: without one the restore takes over
    twice the 200 ms."""
    assert ex.rto_trial(0) > 2 * ex.RTO_MS
    assert ex.rto_trial(1) == 0.0


# --- 07.c -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "points"), [
    ({"paid": 16, "at_least_once": 20, "exactly_once_v2": 16}, 4),
    ({"paid": 16, "at_least_once": 16, "exactly_once_v2": 16}, 3),  # exactly once in mind
    ({"paid": 16, "at_least_once": 20, "exactly_once_v2": 20}, 3),  # EOS changes nothing
    ({"paid": 16, "at_least_once": 32, "exactly_once_v2": 16}, 3),  # everything twice
    ({"paid": 16, "at_least_once": 20, "exactly_once_v2": 12}, 3),  # the aborted 4 lost
    ({"paid": 12, "at_least_once": 16, "exactly_once_v2": 12}, 1),  # only the committed
    ({"paid": 16, "counted": 20}, 0),  # the at-least-once-only answer
    ([16, 20, 16], 0),
])
def test_counts_after_the_crash_under_each_guarantee(answer, points):
    """At-least-once: the store holds every count (16) and the 4 uncommitted payments are
    counted again: 20. Exactly-once: the transaction is aborted, the store wiped and restored
    from committed counts (12), the 4 counted once: 16. Each plausible mistake loses marks."""
    result = check("07.c", answer)
    assert result.points == points
    assert (result.verdict == "passed") == (points == 4)


def test_the_07c_crash_under_each_guarantee_is_run_at_check_time():
    """The expected counts come from the simulator: 16 paid; 20 and 16 counted."""
    runs = {g: ex.ss.crash_counts(ex.COUNTED_BEFORE, ex.COUNTED_AFTER,
                                  processing_guarantee=g).iloc[0] for g in ex.GUARANTEES}
    assert {g: (int(r.paid), int(r.counted)) for g, r in runs.items()} == {
        "at_least_once": (16, 20), "exactly_once_v2": (16, 16)}
