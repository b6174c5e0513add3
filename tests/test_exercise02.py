"""Specification of exercise 02 (replication): the checks of ``ex02_replication`` and the
solution / exercise notebooks as a grader sees them.

The solution scores full marks, the generated exercise reports "not yet solved" for every
question, a half-right submission earns partial marks, and every expected value is computed by
the simulator at check time.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from sim import lessons
from sim.audit import audit_kernel
from sim.grading import check, exercise_questions
from sim.grading.batch import grade_submission
from sim.grading.exercises import ex02_replication as ex02
from sim.lessons import crash_sweep

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "02_replication.ipynb"
EXERCISE = ROOT / "exercises" / "02_replication.ipynb"

RECOMMENDED = {"acks": "all", "enable.idempotence": True, "min.insync.replicas": 2,
               "unclean.leader.election.enable": False}


def _with(**changes: object) -> dict[str, object]:
    return {**RECOMMENDED, **{k.replace("_", "."): v for k, v in changes.items()}}


# --- 02.a -------------------------------------------------------------------------------------


def test_02a_recommended_configs_score_full_marks():
    """acks=all, idempotence, min ISR 2, no unclean election: nothing lost, near the best."""
    result = check("02.a", RECOMMENDED)
    assert (result.verdict, result.points) == ("passed", 6), str(result)


def test_02a_best_is_found_by_simulation_and_is_loss_free():
    """The best failed-write count comes from a simulated combination of CHOICES that loses and
    duplicates nothing."""
    best = ex02.best_failed_writes()
    outcomes = ex02._all_choices()
    assert len(outcomes) == 18  # 24 combinations, 6 refused: idempotence needs acks=all
    assert any(not o["lost"] and not o["duplicates"] and ex02.failed_writes(o) == best
               for _c, o in outcomes)
    mine = ex02.run_schedule(RECOMMENDED).outcome
    assert mine["lost"] == 0
    assert ex02.failed_writes(mine) <= best * (1 + ex02.TOLERANCE)


@pytest.mark.parametrize(("answer", "points", "text"), [
    (_with(acks="1", enable_idempotence=False), 1, "acknowledged records were not in the log"),
    (_with(unclean_leader_election_enable=True), 1, "acknowledged records were not in the log"),
    (_with(min_insync_replicas=3), 4, "writes failed; the best choice that loses and"),
    (_with(acks="1"), 0, "Kafka refuses these configs"),
    (_with(acks=1), 0, "conflicts with acks=1"),  # the number 1 is Kafka's "1"
    (_with(acks="0"), 0, "acks=0"),
    ({"acks": "all"}, 0, "does not say enable.idempotence"),
    ({**RECOMMENDED, "replication.factor": 5}, 0, "not yours to choose"),
    (["acks", "all"], 0, "expected a dict"),
])
def test_02a_wrong_answers_get_partial_marks_and_say_why(answer, points, text):
    """Each mistake costs the right points, with a message naming it."""
    result = check("02.a", answer)
    assert result.points == points, str(result)
    assert result.verdict == "failed"
    assert text in str(result)


def test_02a_hints_point_at_the_phase_that_lost_data():
    """acks=1 gets the acks hint; an unclean election gets the unclean hint."""
    assert "acks=1" in check("02.a", _with(acks="1", enable_idempotence=False)).hint
    assert "out of date" in check("02.a", _with(unclean_leader_election_enable=True)).hint


@pytest.mark.parametrize("stub", [None, ...])
def test_stubs_are_not_yet_solved(stub):
    """None and ... are the exercise's placeholders: 0 points, never an error."""
    for q in exercise_questions(ex02.EXERCISE):
        result = check(q.id, stub)
        assert (result.verdict, result.points) == ("not yet solved", 0)


# --- 02.b -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zombie_cause() -> int:
    """The seq the audit blames in the zombie-leader scenario, computed here independently."""
    kernel = ex02.zombie_scenario().run()
    return int(audit_kernel(kernel).lost_records[0]["cause"]["seq"])


def test_02b_zombie_scenario_loses_records_at_a_truncation(zombie_cause):
    """The zombie leader acknowledges alone; its truncation after the heal is the loss."""
    kernel = ex02.zombie_scenario().run()
    story = lessons.replication_events(kernel)
    event = story[story["seq"] == zombie_cause]
    assert event["kind"].item() == "log.truncate"
    assert "broker 0 truncated" in event["what"].item()
    assert "clean election of broker 1" in " ".join(story["what"])
    assert lessons.delivery_outcome(kernel)["lost"] > 0


def test_02b_right_event_and_reason_score_full(zombie_cause):
    """The audit's seq and 'truncated' earn all 3 points."""
    result = check("02.b", {"seq": zombie_cause, "reason": "truncated"})
    assert (result.verdict, result.points) == ("passed", 3), str(result)


def test_02b_half_right_answers(zombie_cause):
    """Right event, wrong reason: 2 points; the election instead of the truncation: 1."""
    wrong_reason = check("02.b", {"seq": zombie_cause, "reason": "unclean"})
    assert wrong_reason.points == 2
    kernel = ex02.zombie_scenario().run()
    story = lessons.replication_events(kernel)
    election = int(story.loc[story["kind"] == "leader.election", "seq"].iloc[0])
    staged = check("02.b", {"seq": election, "reason": "truncated"})
    assert staged.points == 1
    assert "set the stage" in str(staged)
    assert check("02.b", {"seq": "7143", "reason": "truncated"}).points == 1
    assert check("02.b", 7143).points == 0


def test_02b_reasons_are_judged_from_the_trace():
    """The unclean-election scenario's loss is explained by 'unclean', acks=1's by 'truncated'."""
    from sim import scenarios

    for name, reason in (("unclean-election", "unclean"), ("acks1-leader-crash", "truncated")):
        kernel = scenarios.load(name).run()
        seq = int(audit_kernel(kernel).lost_records[0]["cause"]["seq"])
        assert ex02._reason_for(kernel, seq) == reason


# --- 02.c -------------------------------------------------------------------------------------


def test_02c_prediction_is_compared_with_the_simulator():
    """Exact: 2 points; within 5 %: 1; further off or not an int: 0."""
    expected = ex02.late_crash_lost()
    assert expected == audit_kernel(ex02.late_crash_scenario().run()).lost
    assert check("02.c", expected).points == 2
    assert check("02.c", expected - 10).points == 1
    assert check("02.c", 600).points == 0
    assert check("02.c", str(expected)).points == 0


def test_02c_expected_value_follows_the_simulation_not_a_constant(monkeypatch):
    """Moving the crash a second later makes the check expect 200 more lost records."""
    at_9s = ex02.late_crash_lost()
    ex02.late_crash_lost.cache_clear()
    monkeypatch.setattr(ex02, "LATE_CRASH_MS", 10_000)
    try:
        assert ex02.late_crash_lost() == at_9s + 200
        assert check("02.c", at_9s).points == 0
    finally:
        ex02.late_crash_lost.cache_clear()


# --- 02.d -------------------------------------------------------------------------------------

ACKS1_ONLY = {"lose": ["acks=1"], "cause": "truncated"}


def test_02d_schedule_32_loses_under_acks1_only_by_truncation():
    """Schedule 32, run by the sweep's own code: only acks=1 loses, every record 'truncated'."""
    rows = crash_sweep.one_schedule(ex02.SWEEP_SCHEDULE)
    assert ex02.SWEEP_SCHEDULE == 32
    losing = rows[rows["lost"] > 0]
    assert list(losing["config"]) == ["acks=1"]
    assert losing["lost_truncated"].sum() == losing["lost"].sum() > 0
    assert ex02._losing(ex02.schedule_outcomes(32)) == ["acks=1"]
    assert ex02._main_cause(ex02.schedule_outcomes(32)) == "truncated"


def test_02d_schedule_table_lists_the_split_that_cuts_off_broker_0():
    """The table shows the schedule's faults, among them broker 0 and the producer cut off."""
    table = ex02.sweep_schedule_table()
    assert list(table.columns) == ["at_ms", "fault", "details"]
    assert table["at_ms"].is_monotonic_increasing
    assert "a=[0, 'app'], b=[1, 2, 'controller']" in set(table["details"])


def test_02d_right_answer_scores_full_marks():
    """acks=1 alone, truncated: 2 points; a tuple of labels is accepted too."""
    result = check("02.d", ACKS1_ONLY)
    assert (result.verdict, result.points) == ("passed", 2), str(result)
    assert check("02.d", {"lose": ("acks=1",), "cause": "truncated"}).points == 2


@pytest.mark.parametrize(("answer", "points", "text"), [
    ({"lose": ["acks=1", "acks=all, min.insync.replicas=1"], "cause": "truncated"}, 1,
     "not the configurations that lose data"),
    ({"lose": [], "cause": "truncated"}, 1, "not the configurations that lose data"),
    ({"lose": ["acks=1"], "cause": "unclean-election"}, 1, "not the cause of most"),
    ({"lose": ["acks=1"], "cause": "lost"}, 1, "must be one of"),
    ({"lose": ["acks 1"], "cause": "truncated"}, 1, "not one of the lesson's configurations"),
    ({"lose": "acks=1", "cause": "truncated"}, 1, "should be a list"),
    (["acks=1"], 0, "expected a dict"),
])
def test_02d_wrong_answers_lose_the_right_point(answer, points, text):
    """Each part is worth a point, and a wrong part says what is wrong."""
    result = check("02.d", answer)
    assert result.points == points, str(result)
    assert result.verdict == "failed"
    assert text in str(result)


def test_02d_expected_answer_follows_the_simulation_not_a_constant(monkeypatch):
    """Pointed at schedule 117, the check expects what that schedule loses: acks=1 (49 records,
    truncated) and the unclean election (36), so acks=1 alone is no longer the answer."""
    monkeypatch.setattr(ex02, "SWEEP_SCHEDULE", 117)
    unclean = "acks=all, min.insync.replicas=2, unclean election"
    rows = crash_sweep.one_schedule(117).set_index("config")
    assert rows.loc["acks=1", "lost_truncated"] == 49
    assert rows.loc[unclean, "lost_unclean_election"] == 36
    result = check("02.d", ACKS1_ONLY)
    assert result.points == 1
    assert "not the configurations that lose data" in str(result)
    assert check("02.d", {"lose": ["acks=1", unclean], "cause": "truncated"}).points == 2
    assert check("02.d", {"lose": ["acks=1", unclean], "cause": "unclean-election"}).points == 1


# --- The notebooks, as the grader runs them ---------------------------------------------------


def _graded(path: Path) -> dict[str, tuple[str, int]]:
    graded = grade_submission(path, timeout_s=120, cell_timeout_s=30)
    assert graded.problem is None
    assert all(c["status"] == "ok" for c in graded.cells), graded.cells
    return {r.question: (r.verdict, r.points) for r in graded.results}


def test_solution_notebook_scores_full_marks():
    """Graded like a submission, the solution earns 6 + 3 + 2 + 2 points."""
    assert _graded(SOLUTION) == {"02.a": ("passed", 6), "02.b": ("passed", 3),
                                 "02.c": ("passed", 2), "02.d": ("passed", 2)}


def test_generated_exercise_runs_and_reports_not_yet_solved():
    """The unsolved exercise runs top to bottom and every question is 'not yet solved'."""
    assert _graded(EXERCISE) == {q: ("not yet solved", 0)
                                 for q in ("02.a", "02.b", "02.c", "02.d")}


def test_half_right_submission_gets_partial_marks(tmp_path):
    """min ISR 3, the wrong reason, a near miss and the wrong cause: 4 + 2 + 1 + 1 points,
    whatever the file name."""
    nb = nbformat.read(SOLUTION, as_version=4)
    for cell in nb.cells:
        cell.source = (cell.source
                       .replace('"min.insync.replicas": 2,', '"min.insync.replicas": 3,')
                       .replace('"reason": "truncated"', '"reason": "network"')
                       .replace("200 * (9 - 5)", "200 * (9 - 5) - 10")
                       .replace('"cause": "truncated"}', '"cause": "left-behind"}'))
    path = tmp_path / "student.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    assert _graded(path) == {"02.a": ("failed", 4), "02.b": ("failed", 2),
                             "02.c": ("failed", 1), "02.d": ("failed", 1)}
