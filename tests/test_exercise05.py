"""Exercise 05 (transactions): the solution scores full marks, the generated exercise reports
"not yet solved", and plausible wrong answers lose marks with a reason.

The two notebooks go through the batch grader (one subprocess each, as for a class); single
answers go through ``sim.grading.check``, as a learner's check cell does.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from sim.grading import check
from sim.grading.batch import Submission, grade_submission
from sim.grading.exercises import ex05_transactions as ex
from sim.lessons import transactions as lt

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "05_transactions.ipynb"
EXERCISE = ROOT / "exercises" / "05_transactions.ipynb"

FIXED = ["begin_transaction", "send", "process", "send_offsets_to_transaction",
         "commit_transaction"]
BROKEN = ["begin_transaction", "send", "commit_transaction", "process", "commit_sync"]
AT_LEAST_ONCE = ["send", "process", "flush", "commit_sync"]
COMMIT_THEN_OFFSETS = ["begin_transaction", "send", "process", "commit_transaction",
                       "commit_sync"]


@functools.cache
def graded(path: Path) -> Submission:
    return grade_submission(path, timeout_s=400, cell_timeout_s=120)


def by_question(submission: Submission) -> dict[str, tuple[str, int, int, str]]:
    return {r.question: (r.verdict, r.points, r.max_points, r.reason)
            for r in submission.results}


def right(script):
    """A correct prediction: committed data below the first open transaction's start."""
    offset, open_txn, starts, committed = 0, {}, {}, []
    for step in script:
        who, action = step[0], step[1]
        if action == "send":
            starts.setdefault(who, offset)
            open_txn.setdefault(who, []).extend(range(offset, offset + step[2]))
            offset += step[2]
        else:
            if action == "commit":
                committed += open_txn.get(who, [])
            open_txn.pop(who, None)
            starts.pop(who, None)
            offset += 1
    lso = min(starts.values(), default=offset)
    return sorted(o for o in committed if o < lso)


def ignores_the_lso(script):
    """Wrong: every committed record, even above an open transaction."""
    offset, open_txn, committed = 0, {}, []
    for step in script:
        if step[1] == "send":
            open_txn.setdefault(step[0], []).extend(range(offset, offset + step[2]))
            offset += step[2]
        else:
            if step[1] == "commit":
                committed += open_txn.get(step[0], [])
            open_txn.pop(step[0], None)
            offset += 1
    return sorted(committed)


# --- whole notebooks -----------------------------------------------------------------------------


def test_solution_scores_full_marks():
    """Through the batch grader, the solution earns 5 + 6 + 4 points and every cell runs."""
    submission = graded(SOLUTION)
    assert submission.problem is None
    assert submission.exercise == "05_transactions"
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    assert {q: r[:3] for q, r in by_question(submission).items()} == {
        "05.a": ("passed", 5, 5), "05.b": ("passed", 6, 6), "05.c": ("passed", 4, 4)}


def test_generated_exercise_runs_and_reports_not_yet_solved():
    """The exercise runs top to bottom (the stubs included) and scores 0, not yet solved."""
    submission = graded(EXERCISE)
    assert submission.problem is None
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    assert {q: r[:2] for q, r in by_question(submission).items()} == {
        "05.a": ("not yet solved", 0), "05.b": ("not yet solved", 0),
        "05.c": ("not yet solved", 0)}


# --- 05.a ----------------------------------------------------------------------------------------


def test_reference_prediction_matches_the_simulator_on_every_script():
    """The hidden scripts are real tests: a correct rule matches the consumer on all, and the
    scripts differ in what they read."""
    answers = []
    for script in (ex.VISIBLE_SCRIPT, *ex.HIDDEN_SCRIPTS):
        truth = ex.read_committed_truth(script)
        assert right(script) == truth
        answers.append(tuple(truth))
    assert len(set(answers)) == len(answers)


def test_hard_coded_visible_answer_fails_the_hidden_scripts():
    """Returning the visible script's answer whatever the script: 3/5."""
    visible = ex.read_committed_truth(ex.VISIBLE_SCRIPT)
    result = check("05.a", lambda script: list(visible))
    assert (result.verdict, result.points) == ("failed", 3)
    assert "hidden script 1" in result.reason


def test_ignoring_the_lso_loses_marks():
    """Every committed record, ignoring the LSO: right on the visible script (nothing is left
    open there), wrong on a hidden one."""
    result = check("05.a", ignores_the_lso)
    assert (result.verdict, result.points) == ("failed", 3)


def test_read_uncommitted_answer_gets_only_the_format_point():
    """Predicting every data record (aborted ones too) fails both comparisons: 1/5."""
    def everything(script):
        out, offset = [], 0
        for step in script:
            if step[1] == "send":
                out += range(offset, offset + step[2])
                offset += step[2]
            else:
                offset += 1
        return out

    result = check("05.a", everything)
    assert (result.verdict, result.points) == ("failed", 1)
    assert "a read_committed consumer returns" in result.reason


@pytest.mark.parametrize(("answer", "reason"), [
    ("0, 1, 2", "expected a function"),
    (lambda script: "0, 1", "must return a list"),
    (lambda script: [0.5], "whole number"),
])
def test_unreadable_predictions_say_what_is_wrong(answer, reason):
    result = check("05.a", answer)
    assert (result.verdict, result.points) == ("failed", 0)
    assert reason in result.reason


# --- 05.b ----------------------------------------------------------------------------------------


def test_notebook_broken_loop_writes_duplicates_and_the_fix_does_not():
    """The exercise's broken loop (commit the output, then process, then commit_sync) puts 50
    inputs twice in the output at the visible crash; the fixed loop none, all 3,000 read."""
    assert lt.loop_duplicates(lt.loop_crash_run(BROKEN, 7040)) == {"inputs read": 3000,
                                                                    "duplicates": 50}
    assert lt.loop_duplicates(lt.loop_crash_run(FIXED, 7040)) == {"inputs read": 3000,
                                                                   "duplicates": 0}


@pytest.mark.parametrize(("steps", "points", "reason"), [
    (BROKEN, 1, "inputs are in the output twice"),
    (AT_LEAST_ONCE, 1, "inputs are in the output twice"),
    (COMMIT_THEN_OFFSETS, 4, "outside the transaction"),
])
def test_plausible_wrong_loops_lose_marks(steps, points, reason):
    result = check("05.b", steps)
    assert (result.verdict, result.points) == ("failed", points)
    assert reason in result.reason


def test_unknown_step_is_named():
    result = check("05.b", ["begin_transaction", "send", "rollback"])
    assert (result.verdict, result.points) == ("failed", 0)
    assert "unknown step 'rollback'" in result.reason


# --- 05.c ----------------------------------------------------------------------------------------


def test_latency_grows_with_size_and_explodes_when_commits_cannot_keep_up():
    """A record waits for its transaction to fill, then the commit: 100 records → about 104 ms;
    10 records a transaction cannot keep up with 1,000 records/s, and waits grow past 1 s."""
    assert round(lt.latency_run(100, records=600)["max wait (ms)"]) == 104
    assert lt.latency_run(10, records=600)["max wait (ms)"] > 1_000


@pytest.mark.parametrize(("size", "points", "reason"), [
    (10, 2, "waits up to"),
    (50, 3, "still keep every record within 120 ms"),
    (130, 2, "waits up to"),
    (True, 0, "whole number"),
])
def test_wrong_sizes_lose_marks(size, points, reason):
    result = check("05.c", size)
    assert (result.verdict, result.points) == ("failed", points)
    assert reason in result.reason
