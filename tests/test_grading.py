"""Grading: check() feedback, time budgets, and batch grading of hostile submissions."""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from sim.errors import GradingError
from sim.grading import CheckResult, ExerciseReport, check, exercise_questions
from sim.grading.batch import COLUMNS, grade_directory
from sim.grading.budget import BudgetExceeded, time_budget
from sim.partitioners import partition_for_key

SUBMISSIONS = Path(__file__).resolve().parent / "data" / "submissions"
QUESTIONS = {q.id for q in exercise_questions("01_partitioners")}
LOOP_TIMEOUT_S = 20.0
CELL_TIMEOUT_S = 2.0


# --- learner answers used by the check() tests ----------------------------------------------------


class GoodPartitioner:
    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        if key_bytes is None:
            return 8
        if key_bytes.startswith(b"vip-"):
            return partition_for_key(key_bytes, 8)
        return 8 + partition_for_key(key_bytes, 2)


class StubPartitioner:
    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        raise NotImplementedError("your code here")


class TwelvePartitioner:
    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        return 12


class CrashingPartitioner:
    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        return len(key_bytes) // 0


class LoopingPartitioner:
    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        while True:
            pass


# --- check() ------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [None, ..., StubPartitioner], ids=["None", "Ellipsis", "stub"])
def test_stub_answers_are_not_yet_solved(answer: object) -> None:
    """A stub scores 0 with "not yet solved" and never raises."""
    result = check("01.a", answer)
    assert (result.verdict, result.points, result.max_points) == ("not yet solved", 0, 8)
    assert result.reason


def test_a_correct_partitioner_passes_all_visible_checks() -> None:
    """Full marks, and the feedback claims no more than the visible checks."""
    result = check("01.a", GoodPartitioner)
    assert (result.verdict, result.points) == ("passed", 8)
    assert "all visible checks passed" in str(result).lower()


def test_out_of_range_partition_names_value_and_range() -> None:
    """Returning 12 for 10 partitions fails with the value, the record and the allowed range."""
    result = check("01.a", TwelvePartitioner)
    assert result.verdict == "failed"
    assert 0 < result.points < result.max_points
    message = next(line for line in result.failed if "returned 12" in line)
    assert "TwelvePartitioner" in message
    assert "0–9" in message
    assert "key=" in message


def test_a_crashing_partitioner_is_an_error_not_a_traceback() -> None:
    """The exception is named with the learner's line; no traceback reaches the learner."""
    result = check("01.a", CrashingPartitioner)
    assert result.verdict == "error"
    assert "ZeroDivisionError" in result.reason
    assert "line" in result.reason
    for text in (str(result), result._repr_html_()):
        assert "Traceback" not in text
        assert "ZeroDivisionError" in text


def test_wrong_type_fails_with_the_type_named() -> None:
    """An int where a class is expected is a failure that says what arrived."""
    result = check("01.a", 42)
    assert (result.verdict, result.points) == ("failed", 0)
    assert "42 (an int)" in result.reason


def test_a_looping_partitioner_costs_only_its_time_budget() -> None:
    """A partitioner that never returns is stopped by the budget and reported as an error."""
    started = time.monotonic()
    result = check("01.a", LoopingPartitioner, budget_s=0.3)
    assert time.monotonic() - started < 5
    assert (result.verdict, result.points) == ("error", 0)
    assert "time budget" in result.reason


def test_prediction_is_compared_with_the_simulator() -> None:
    """01.b accepts what partition_for_key computes and does not reveal it on failure."""
    expected = partition_for_key(b"alice", 6)
    assert expected == 3  # kafka-facts.md §1.4: "alice" → murmur2 1951417749, % 6 = 3
    assert check("01.b", expected).verdict == "passed"
    wrong = check("01.b", (expected + 1) % 6)
    assert (wrong.verdict, wrong.points) == ("failed", 0)
    assert str(expected) not in wrong.failed[0].replace(str((expected + 1) % 6), "")
    assert "remove the quotes" in check("01.b", str(expected)).reason


def test_unknown_question_is_a_grading_error() -> None:
    """A typo in a question id is the exercise author's error, named with the known ids."""
    with pytest.raises(GradingError, match=r"01\.a"):
        check("01.z", GoodPartitioner)


def test_renderings_escape_html_and_total_points() -> None:
    """Learner text is escaped in HTML; a report adds up its results."""
    bad = CheckResult("01.b", 0, 2, "failed", failed=["got '<script>'"], reason="x")
    good = CheckResult("01.a", 8, 8, "passed", passed=["ok"], reason="all visible checks passed")
    assert "&lt;script&gt;" in bad._repr_html_()
    assert "<script>" not in bad._repr_html_()
    report = ExerciseReport("01_partitioners", [good, bad])
    assert (report.points, report.max_points) == (8, 10)
    assert "8/10 points" in str(report)
    assert "8 / 10 points" in report._repr_html_()


def test_html_hints_show_backticked_code_as_code() -> None:
    """A hint's `code` spans render as <code>, never as raw Markdown backticks; still escaped."""
    result = CheckResult("01.a", 0, 8, "not yet solved", reason="x",
                         hint="Replace the `raise NotImplementedError(...)` line or `<x>`.")
    rendered = result._repr_html_()
    assert "<code>raise NotImplementedError(...)</code>" in rendered
    assert "<code>&lt;x&gt;</code>" in rendered
    assert "`" not in rendered


# --- time budgets -------------------------------------------------------------------------------


def _spin(budget_s: float | None = None) -> None:
    """Loop forever, inside its own budget if one is given."""
    with time_budget(budget_s):
        while True:
            pass


def _swallow_inner_then_spin() -> None:
    """Catch the inner block's timeout, then keep looping."""
    with contextlib.suppress(BudgetExceeded):
        _spin(10)
    _spin()


def test_inner_budget_stops_the_inner_block_only() -> None:
    """A short inner budget fires inside the outer one, which then goes on."""
    with time_budget(5):
        with pytest.raises(BudgetExceeded):
            _spin(0.1)
        finished = True
    assert finished


def test_outer_budget_is_kept_by_an_inner_one() -> None:
    """An inner budget longer than what the outer has left cannot extend it."""
    started = time.monotonic()
    with pytest.raises(BudgetExceeded), time_budget(0.2):
        _swallow_inner_then_spin()
    assert time.monotonic() - started < 2


# --- batch grading ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path, Path]:
    """The fixture submissions, graded once for all batch tests."""
    out = tmp_path_factory.mktemp("grades")
    csv, feedback = out / "grades.csv", out / "feedback"
    table = grade_directory(
        SUBMISSIONS,
        csv,
        timeout_s=LOOP_TIMEOUT_S,
        feedback_dir=feedback,
        cell_timeout_s=CELL_TIMEOUT_S,
    )
    return table, csv, feedback


def _rows(table: pd.DataFrame, student: str) -> dict[str, dict[str, object]]:
    rows = table[table.student == student]
    return {row["question"]: row for row in rows.to_dict("records")}


def test_solved_scores_full_marks(graded: tuple[pd.DataFrame, Path, Path]) -> None:
    """The solved submission earns every point of every question."""
    rows = _rows(graded[0], "solved")
    assert set(rows) == QUESTIONS
    for row in rows.values():
        assert row["points"] == row["max_points"]
        assert row["verdict"] == "passed"


def test_half_right_scores_partially(graded: tuple[pd.DataFrame, Path, Path]) -> None:
    """The buggy VIP partitioner keeps the points of the checks it passes, and only those."""
    rows = _rows(graded[0], "half_right")
    vip = rows["01.a"]
    assert 0 < vip["points"] < vip["max_points"]
    assert vip["verdict"] == "failed"
    assert "non-VIP key" in vip["reason"]
    total = sum(r["points"] for r in rows.values())
    assert 0 < total < sum(r["max_points"] for r in rows.values())


def test_unsolved_is_not_yet_solved(graded: tuple[pd.DataFrame, Path, Path]) -> None:
    """The untouched exercise scores 0 on every question, each "not yet solved"."""
    for row in _rows(graded[0], "unsolved").values():
        assert (row["points"], row["verdict"]) == (0, "not yet solved")
        assert row["reason"]


def test_endless_loop_costs_only_its_question(graded: tuple[pd.DataFrame, Path, Path]) -> None:
    """The looping answer cell times out: 0 for its question, the other question still graded."""
    rows = _rows(graded[0], "loops_forever")
    assert rows["01.a"]["points"] == 0
    assert f"did not finish within {CELL_TIMEOUT_S:g} s" in rows["01.a"]["reason"]
    assert rows["01.b"]["points"] == rows["01.b"]["max_points"]


def test_not_json_gets_zero_with_reason(graded: tuple[pd.DataFrame, Path, Path]) -> None:
    """A broken file scores 0 on every question of the batch's exercise, saying why."""
    rows = _rows(graded[0], "not_json")
    assert set(rows) == QUESTIONS
    for row in rows.values():
        assert row["points"] == 0
        assert "not valid JSON" in row["reason"]


def test_reading_outside_the_folder_is_refused(graded: tuple[pd.DataFrame, Path, Path]) -> None:
    """Snooping answers score 0 with a sandbox reason, even when the error was caught."""
    rows = _rows(graded[0], "reads_outside")
    assert "../solved.ipynb" in rows["01.a"]["reason"]
    assert "/etc/hostname" in rows["01.b"]["reason"]
    for row in rows.values():
        assert row["points"] == 0
        assert row["reason"].startswith("sandbox:")


def test_batch_goes_on_and_writes_the_csv(graded: tuple[pd.DataFrame, Path, Path]) -> None:
    """Every submission has its rows, in the documented columns, with a reason for each zero."""
    table, csv, _ = graded
    on_disk = pd.read_csv(csv, keep_default_na=False)
    assert list(on_disk.columns) == COLUMNS
    assert len(on_disk) == len(QUESTIONS) * len(list(SUBMISSIONS.glob("*.ipynb")))
    assert sorted(set(on_disk.student)) == sorted(p.stem for p in SUBMISSIONS.glob("*.ipynb"))
    assert (on_disk[on_disk.points == 0].reason != "").all()
    assert on_disk.points.tolist() == table.points.tolist()


def test_feedback_files_are_written(graded: tuple[pd.DataFrame, Path, Path]) -> None:
    """Each student gets a plain-text feedback file with their total."""
    table, _, feedback = graded
    for student, rows in table.groupby("student"):
        text = (feedback / f"{student}.txt").read_text(encoding="utf-8")
        assert f"{rows.points.sum()}/{rows.max_points.sum()} points" in text


def test_grades_do_not_depend_on_order(
    graded: tuple[pd.DataFrame, Path, Path], tmp_path: Path
) -> None:
    """Graded in the opposite order, each submission gets exactly the same grade."""
    names = ["half_right", "not_json", "reads_outside", "solved", "unsolved"]
    for rank, name in enumerate(reversed(names)):
        (tmp_path / str(rank)).mkdir()
        shutil.copy(SUBMISSIONS / f"{name}.ipynb", tmp_path / str(rank) / f"{name}.ipynb")
    again = grade_directory(
        tmp_path,
        tmp_path / "grades.csv",
        timeout_s=LOOP_TIMEOUT_S,
        cell_timeout_s=CELL_TIMEOUT_S,
        recursive=True,
    )
    assert again.student.iloc[0] == "0/unsolved"
    again["student"] = again.student.str.split("/").str[1]
    first = graded[0][graded[0].student.isin(names)]
    key = ["student", "question"]
    columns = [*key, "points", "verdict", "reason"]
    assert again.sort_values(key)[columns].to_dict("records") == first.sort_values(key)[
        columns
    ].to_dict("records")


def test_whole_run_timeout_zeroes_the_submission(tmp_path: Path) -> None:
    """Code that defeats the per-cell budget is killed at the wall-clock limit; all zero."""
    nb = nbformat.read(SUBMISSIONS / "solved.ipynb", as_version=4)
    nb.cells.insert(
        3,
        nbformat.v4.new_code_cell(
            "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass"
        ),
    )
    nbformat.write(nb, tmp_path / "stubborn.ipynb")
    table = grade_directory(tmp_path, tmp_path / "grades.csv", timeout_s=3, cell_timeout_s=1)
    assert set(table.question) == QUESTIONS
    assert (table.points == 0).all()
    assert table.reason.str.contains("did not finish within 3 s").all()


def test_the_labs_own_vip_partitioner_does_not_count_as_an_answer():
    """Importing sim.partitioners.VipPartitioner is not solving 01.a."""
    from sim.partitioners import VipPartitioner

    result = check("01.a", VipPartitioner)
    assert result.points == 0
    assert "lab's own example" in str(result)


def test_batch_prediction_is_checked_against_the_simulator():
    """01.c: the simulated count scores 2, one off scores 0 with an off-by-one hint."""
    from sim.grading.exercises.ex01_partitioners import keyless_burst_batches

    expected = keyless_burst_batches()
    assert 1000 / 149 < expected <= 1000 / 35 + 1  # linger.ms, not batch.size, closes batches
    assert check("01.c", expected).points == 2
    off_by_one = check("01.c", expected + 1)
    assert off_by_one.points == 0
    assert "off by one" in str(off_by_one)
