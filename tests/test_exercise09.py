"""Exercise 09 (architectures): the solution scores full marks, the generated exercise scores
zero, and plausible wrong answers lose marks.

09.a is compared with the comparison of the exercise's simulated run; 09.b with the topic
config (``LogConfig.validateTopicLogConfigValues``: local.retention.ms ≤ retention.ms) and the
storage cost model; 09.c with lambda's simulated serving layer.
"""

from __future__ import annotations

import functools
from pathlib import Path

from sim.broker.storage_cost import retention_plan
from sim.grading import check
from sim.grading.batch import Submission, grade_submission
from sim.grading.exercises import ex09_architectures as ex09
from sim.lessons import architectures as la

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "09_architectures.ipynb"
EXERCISE = ROOT / "exercises" / "09_architectures.ipynb"
DAY_MS = 86_400_000
FRESHNESS, STORAGE = ex09.FRESHNESS, ex09.STORAGE


@functools.cache
def graded(path: Path) -> Submission:
    return grade_submission(path, timeout_s=240, cell_timeout_s=60)


def by_question(submission: Submission) -> dict[str, tuple[str, int, int]]:
    return {r.question: (r.verdict, r.points, r.max_points) for r in submission.results}


def test_solution_scores_full_marks() -> None:
    submission = graded(SOLUTION)
    assert submission.problem is None
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    assert by_question(submission) == {"09.a": ("passed", 5, 5), "09.b": ("passed", 5, 5),
                                       "09.c": ("passed", 5, 5)}


def test_generated_exercise_runs_and_scores_zero() -> None:
    submission = graded(EXERCISE)
    assert submission.problem is None
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    assert all(points == 0 for _, points, _ in by_question(submission).values())


# --- 09.a -----------------------------------------------------------------------------------------


def _row(name: str) -> dict[str, object]:
    table = la.full_table(la.exercise_run())
    return {"architecture": name, FRESHNESS: float(table.loc[name, FRESHNESS]),
            STORAGE: float(table.loc[name, STORAGE])}


def test_09a_only_the_lake_meets_everything_at_the_least_cost() -> None:
    """Kappa and the lake meet the requirements in the simulated run; the lake stores for less."""
    assert sorted(ex09.qualifying()) == ["kappa", "streaming data lake"]
    assert ex09.cheapest() == "streaming data lake"
    assert check("09.a", _row("streaming data lake")).points == 5


def test_09a_kappa_meets_the_requirements_but_costs_more() -> None:
    assert check("09.a", _row("kappa")).points == 4


def test_09a_lambda_misses_a_requirement() -> None:
    """Lambda is fresh but has two code paths and restates the history late."""
    assert check("09.a", _row("lambda")).points == 2


def test_09a_numbers_from_another_row_lose_a_point() -> None:
    answer = {**_row("streaming data lake"), FRESHNESS: _row("kappa")[FRESHNESS]}
    assert check("09.a", answer).points == 4


# --- 09.b -----------------------------------------------------------------------------------------


def _plan(days: float, local_days: float) -> dict[str, float]:
    return {"retention.ms": int(days * DAY_MS), "local.retention.ms": int(local_days * DAY_MS),
            "monthly_usd": retention_plan(50e9, days, 3, local_retention_days=local_days)[
                "total_usd"]}


def test_09b_the_cheapest_plan_passes() -> None:
    assert check("09.b", _plan(30, 1)).points == 5


def test_09b_everything_on_the_brokers_costs_more() -> None:
    assert check("09.b", _plan(30, 30)).points == 4


def test_09b_too_short_a_retention_cannot_reprocess() -> None:
    result = check("09.b", _plan(7, 1))
    assert result.points == 3
    assert "7 days" in result.reason


def test_09b_a_wrong_price_loses_a_point() -> None:
    assert check("09.b", {**_plan(30, 1), "monthly_usd": 1.0}).points == 4


def test_09b_local_longer_than_retention_is_refused() -> None:
    assert check("09.b", {"retention.ms": DAY_MS, "local.retention.ms": 2 * DAY_MS,
                          "monthly_usd": 1.0}).points == 0


# --- 09.c -----------------------------------------------------------------------------------------


def test_09c_the_simulated_drift_is_the_vouchers_and_the_missed_late_payments() -> None:
    """Hour 2 is over by its vouchers; hour 1 short by the card payments after minute 125."""
    pay = la.exercise_payments()
    hour = pay["event_ms"] // 3_600_000
    voucher = pay["method"] == "voucher"
    late = pay["arrival_ms"] > 125 * 60_000
    assert ex09.simulated_drift() == {
        "hour 1": -int(pay.loc[(hour == 1) & ~voucher & late, "amount_cents"].sum()),
        "hour 2": int(pay.loc[(hour == 2) & voucher, "amount_cents"].sum())}
    assert ex09.simulated_drift()["hour 1"] < 0 < ex09.simulated_drift()["hour 2"]


def test_09c_forgetting_the_late_payments_loses_marks() -> None:
    drift = ex09.simulated_drift()
    assert check("09.c", {"hour 1": 0, "hour 2": drift["hour 2"]}).points == 3


def test_09c_a_wrong_shape_scores_zero() -> None:
    assert check("09.c", [1, 2]).points == 0
