"""Grading: check() feedback, time budgets, and batch grading of hostile submissions."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from sim.errors import GradingError
from sim.grading import CheckResult, ExerciseReport, check, exercise_questions
from sim.grading.batch import (
    COLUMNS,
    MAX_FEEDBACK_NAME,
    MAX_REASON,
    feedback_name,
    grade_directory,
    grade_submission,
    plain,
    safe_cell,
)
from sim.grading.budget import BudgetExceeded, time_budget
from sim.grading.sandbox import Limits, available_mode, read_line, start
from sim.grading.wire import WireError, decode, encode, loads
from sim.partitioners import partition_for_key

SUBMISSIONS = Path(__file__).resolve().parent / "data" / "submissions"
SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
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


# --- batch grading: the fixture folder, honest and hostile submissions side by side ------------
#
# Every hostile notebook in tests/data/submissions/ (see make_submissions.py) is graded in one
# batch beside the honest ones. Each test below states what one attack must not achieve.

NAMESPACES = available_mode() == "namespaces"
needs_namespaces = pytest.mark.skipif(
    not NAMESPACES, reason="file-system and network isolation need the namespaces jail"
)
MEMORY_LIMIT = 1536 << 20  # the memory attack asks for 8 GB
# File names a student may choose, made when the fixtures are copied (git should not hold them):
# a hidden name whose feedback file used to replace the classmate's, a newline and a byte that
# is not UTF-8 (the CSV could not be written), and symbolic links to a classmate's notebook and
# to the solution (graded as what they point to).
NAMED_COPIES = {".solved.ipynb": "not_json.ipynb",
                os.fsdecode(b"new\nline\xff.ipynb"): "not_json.ipynb"}
LINKS = {"copycat.ipynb": Path("solved.ipynb"),
         "linked.ipynb": SOLUTIONS / "01_partitioners.ipynb"}
FIXTURE_STUDENTS = sorted([*(p.stem for p in SUBMISSIONS.glob("*.ipynb")), ".solved",
                           "new\\nline\\udcff", "copycat", "linked"])
# What the fixtures name statically, made unique for this run when they are copied, so that
# another checkout grading the same fixtures at the same time cannot interfere.
RUN = uuid.uuid4().hex[:8]
MARK = f"klab-{RUN}"  # the hostile children's process name (at most 15 characters)
CANARY = Path(tempfile.gettempdir()) / f"kafka-lab-canary-{RUN}"
JSON_PY_MARKER = Path(tempfile.gettempdir()) / f"kafka-lab-json-py-imported-{RUN}"


def _copy_fixture(name: str, folder: Path, port: int = 0) -> None:
    text = (SUBMISSIONS / name).read_text(encoding="utf-8")
    text = (text.replace("klab-hostile", MARK)
            .replace("/tmp/kafka-lab-canary", str(CANARY))
            .replace("/tmp/kafka-lab-json-py-imported", str(JSON_PY_MARKER))
            .replace("47831", str(port)))
    (folder / name).write_text(text, encoding="utf-8")


def _hostile_processes() -> list[str]:
    """Processes this run's hostile fixtures started (they name themselves MARK)."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if comm.read_text().strip() == MARK:
                found.append(comm.parent.name)
    return found


@contextlib.contextmanager
def _private_temp(folder: Path) -> Iterator[Path]:
    """Grading's scratch folders go to ``folder`` while the block runs."""
    folder.mkdir(exist_ok=True)
    saved = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = saved


@dataclass
class Graded:
    table: pd.DataFrame
    csv: Path
    feedback: Path
    folder: Path
    seconds: float
    connections: int
    left_processes: list[str]
    left_folders: set[str]
    canary: list[str]


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    """The fixture submissions (a copy, with the hostile json.py beside them), graded once."""
    folder = tmp_path_factory.mktemp("submitted")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    for path in SUBMISSIONS.iterdir():
        if path.is_file():
            _copy_fixture(path.name, folder, listener.getsockname()[1])
    for name, source in NAMED_COPIES.items():
        shutil.copy(SUBMISSIONS / source, folder / name)
    for name, target in LINKS.items():
        (folder / name).symlink_to(target)
    out = tmp_path_factory.mktemp("grades")
    csv, feedback = out / "grades.csv", out / "feedback"
    CANARY.mkdir()
    (CANARY / "file").write_text("canary")
    scratch = tmp_path_factory.mktemp("scratch")
    started = time.monotonic()
    try:
        with _private_temp(scratch):
            table = grade_directory(folder, csv, timeout_s=LOOP_TIMEOUT_S,
                                    feedback_dir=feedback, cell_timeout_s=CELL_TIMEOUT_S,
                                    jobs=2, memory_bytes=MEMORY_LIMIT)
        seconds = time.monotonic() - started
        connections = 0
        with contextlib.suppress(BlockingIOError):
            while listener.accept():
                connections += 1
    finally:
        listener.close()
    time.sleep(0.5)  # anything that survived grading would still be running now
    canary = sorted(p.name for p in CANARY.iterdir())
    shutil.rmtree(CANARY, ignore_errors=True)
    return Graded(table, csv, feedback, folder, seconds, connections, _hostile_processes(),
                  {p.name for p in scratch.iterdir()}, canary)


def _rows(table: pd.DataFrame, student: str) -> dict[str, dict[str, object]]:
    rows = table[table.student == student]
    return {row["question"]: row for row in rows.to_dict("records")}


def _points(graded: Graded, student: str) -> dict[str, int]:
    return {q: int(r["points"]) for q, r in _rows(graded.table, student).items()}


FULL = {"01.a": 8, "01.b": 2, "01.c": 2}


def test_solved_scores_full_marks(graded: Graded) -> None:
    """The honest solved submission earns every point, beside every hostile one."""
    rows = _rows(graded.table, "solved")
    assert set(rows) == QUESTIONS
    for row in rows.values():
        assert row["points"] == row["max_points"]
        assert row["verdict"] == "passed"


def test_half_right_scores_partially(graded: Graded) -> None:
    """The buggy VIP partitioner keeps the points of the checks it passes, and only those."""
    rows = _rows(graded.table, "half_right")
    vip = rows["01.a"]
    assert 0 < vip["points"] < vip["max_points"]
    assert vip["verdict"] == "failed"
    assert "non-VIP key" in vip["reason"]
    total = sum(r["points"] for r in rows.values())
    assert 0 < total < sum(r["max_points"] for r in rows.values())


def test_unsolved_is_not_yet_solved(graded: Graded) -> None:
    """The untouched exercise scores 0 on every question, each "not yet solved"."""
    for row in _rows(graded.table, "unsolved").values():
        assert (row["points"], row["verdict"]) == (0, "not yet solved")
        assert row["reason"]


def test_endless_loop_costs_only_its_question(graded: Graded) -> None:
    """The looping answer cell times out: 0 for its question, the other question still graded."""
    rows = _rows(graded.table, "loops_forever")
    assert rows["01.a"]["points"] == 0
    assert f"did not finish within {CELL_TIMEOUT_S:g} s" in rows["01.a"]["reason"]
    assert rows["01.b"]["points"] == rows["01.b"]["max_points"]


@pytest.mark.parametrize(
    ("student", "why"),
    [("not_json", "not valid JSON"), ("nbformat_string", "nbformat that is not a number"),
     ("deep_json", "RecursionError"), ("huge_int", "ValueError")],
)
def test_unreadable_notebooks_get_zero_with_reason(graded: Graded, student: str,
                                                   why: str) -> None:
    """Malformed JSON of any shape is that submission's zero with a reason, not a crash."""
    rows = _rows(graded.table, student)
    assert set(rows) == QUESTIONS
    for row in rows.values():
        assert row["points"] == 0
        assert why in row["reason"]


def test_checks_replaced_in_the_notebook_change_nothing(graded: Graded) -> None:
    """Replacing the runner's functions in __main__ and making Item.fail a no-op earns exactly
    what the answers earn when checked honestly: the checks never run in that process."""
    class ZeroPartitioner:
        def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
            return 0

    honest = check("01.a", ZeroPartitioner).points
    assert honest < 8
    assert _points(graded, "tampers_checks") == {"01.a": honest, "01.b": 0, "01.c": 0}


def test_a_forged_result_on_the_pipe_earns_nothing(graded: Graded) -> None:
    """Lines written to every inherited descriptor, then os._exit: 0 points, no formula."""
    assert _points(graded, "=forges_pipe") == {"01.a": 0, "01.b": 0, "01.c": 0}
    assert graded.table.max_points.max() == 8


def test_the_csv_is_safe_to_open(graded: Graded) -> None:
    """No cell starts like a formula (the forged file name starts with '='); reasons are short
    single lines."""
    with open(graded.csv, newline="", encoding="utf-8") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert all(not c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert "'=forges_pipe" in cells
    assert all("\n" not in c and len(c) <= MAX_REASON for c in cells)


def test_safe_cell_and_plain_neutralise_what_a_spreadsheet_would_run() -> None:
    """Each formula start is prefixed; other text is kept; control characters become spaces."""
    for opening in ("=", "+", "-", "@", "\t", "\r"):
        assert safe_cell(opening + "1+1") == "'" + opening + "1+1"
    assert safe_cell("cell 7 raised") == "cell 7 raised"
    assert safe_cell(-3) == -3
    assert plain("a\nb\r\tc" + "x" * 1000) == ("a b c" + "x" * 1000)[: MAX_REASON - 1] + "…"


def test_answers_that_lie_about_equality_cross_as_plain_data(graded: Graded) -> None:
    """An int subclass equal to everything arrives as its plain value (0, not 3); a list that
    contains itself cannot be handed over: both score 0."""
    rows = _rows(graded.table, "lying_answers")
    assert rows["01.b"]["points"] == 0
    assert rows["01.b"]["reason"].startswith("0 is not the partition")
    assert rows["01.c"]["points"] == 0
    assert "cannot be handed to the grader" in rows["01.c"]["reason"]


def test_the_labs_example_does_not_count_when_subclassed_or_called(graded: Graded) -> None:
    """Subclassing the lab's VipPartitioner or delegating to it scores 0 on 01.a: the guard
    compares behaviour; the honest 01.b answer beside it still counts."""
    subclass = _rows(graded.table, "subclasses_example")
    assert subclass["01.a"]["points"] == 0
    assert "lab's own example" in subclass["01.a"]["reason"]
    assert subclass["01.b"]["points"] == 2
    delegate = _rows(graded.table, "delegates_example")
    assert delegate["01.a"]["points"] == 0
    assert "lab's own example" in delegate["01.a"]["reason"]


@needs_namespaces
def test_the_graders_own_helper_cannot_be_imported(graded: Graded) -> None:
    """01.c answered by calling the check module's helper: neither the module nor its compiled
    copy in __pycache__ can be loaded."""
    row = _rows(graded.table, "subclasses_example")["01.c"]
    assert (row["points"], row["verdict"]) == (0, "error")
    assert row["reason"].startswith("cell 13 (question 01.c) raised ImportError")


@needs_namespaces
@pytest.mark.parametrize("student", ["links_solution", "gc_sandbox"])
def test_the_solution_cannot_be_reached(graded: Graded, student: str) -> None:
    """Hard-linking or opening the solution notebook (after hunting the grader's objects with
    gc) finds nothing: the answers stay the stub."""
    assert _points(graded, student) == {"01.a": 0, "01.b": 0, "01.c": 0}
    assert _rows(graded.table, student)["01.a"]["verdict"] == "not yet solved"


def test_killing_its_parent_costs_no_one_anything(graded: Graded) -> None:
    """os.kill(os.getppid(), 9) does not stop the batch; every submission has its rows."""
    assert sorted(set(graded.table.student)) == FIXTURE_STUDENTS
    assert len(graded.table) == len(QUESTIONS) * len(FIXTURE_STUDENTS)


def test_a_json_py_beside_the_submissions_is_never_imported(graded: Graded) -> None:
    """The json.py in the submissions folder is not imported by any grading process."""
    assert (graded.folder / "json.py").exists()
    assert not JSON_PY_MARKER.exists()
    assert _points(graded, "unsolved") == {"01.a": 0, "01.b": 0, "01.c": 0}


@needs_namespaces
def test_a_classmates_notebook_cannot_be_overwritten(graded: Graded) -> None:
    """os.replace over every solved.ipynb it can find: the classmate's file is untouched."""
    assert (graded.folder / "solved.ipynb").read_bytes() == (
        SUBMISSIONS / "solved.ipynb").read_bytes()
    assert _points(graded, "solved") == FULL


def test_detached_children_neither_block_nor_outlive_grading(graded: Graded) -> None:
    """A forked child holding the pipe, five detached Popen and a libc system(): grading ends
    within its time limits and none of them is still running; no scratch folder is left."""
    assert graded.seconds < 10 * LOOP_TIMEOUT_S + 100  # bounded, even on a loaded machine
    assert graded.left_processes == []
    assert graded.left_folders == set()
    assert _points(graded, "holds_pipe") == {"01.a": 0, "01.b": 0, "01.c": 0}
    assert _points(graded, "spawns_detached") == FULL  # its answers are right; it gains nothing


def test_a_fork_bomb_costs_only_itself(graded: Graded) -> None:
    """Forking up to the process limit and holding on: that notebook gets zeros at the
    whole-run limit; the submissions graded meanwhile are untouched (see the other tests)."""
    rows = _rows(graded.table, "fork_bomb")
    assert all(r["points"] == 0 for r in rows.values())
    assert f"did not finish within {LOOP_TIMEOUT_S:g} s" in rows["01.a"]["reason"]


def test_memory_is_limited(graded: Graded) -> None:
    """Asking for 8 GB fails under the address-space limit: 0 for that question only."""
    rows = _rows(graded.table, "eats_memory")
    assert rows["01.a"]["points"] == 0
    assert "MemoryError" in rows["01.a"]["reason"]
    assert (rows["01.b"]["points"], rows["01.c"]["points"]) == (2, 2)


def test_flooding_the_pipe_is_cut_off(graded: Graded) -> None:
    """40 MB written into the pipe: the checker stops reading at its bound; 0 for it."""
    rows = _rows(graded.table, "floods_pipe")
    assert all(r["points"] == 0 for r in rows.values())
    assert "the grader" in rows["01.a"]["reason"]


@needs_namespaces
def test_no_file_system_or_network_outside_its_folder(graded: Graded) -> None:
    """listdir, mkdir, symlink and rename on a folder outside, and a socket to 127.0.0.1, all
    fail; its (correct) answers still count."""
    assert graded.canary == ["file"]
    assert graded.connections == 0
    assert _points(graded, "escapes") == FULL


def test_recursion_and_giant_cells_cost_only_that_submission(graded: Graded) -> None:
    """A stack overflow and a cell too deep to compile: zeros with reasons for that notebook."""
    giant = _rows(graded.table, "giant_cell")
    assert giant["01.b"]["points"] == 0
    assert "RecursionError" in giant["01.b"]["reason"]
    assert giant["01.a"]["points"] == 8
    for row in _rows(graded.table, "recurses").values():
        assert row["points"] == 0 or row["question"] != "01.b"
        assert row["reason"]


def test_text_no_spreadsheet_or_file_can_hold_is_made_plain(graded: Graded) -> None:
    """odd_text's 01.b error holds a byte that is not UTF-8, a bidi override, a newline and
    100 kB: its reason is one short printable line, its feedback file is still written (it
    used to stop the batch), and its other answers count."""
    rows = _rows(graded.table, "odd_text")
    reason = rows["01.b"]["reason"]
    assert rows["01.b"]["points"] == 0
    assert reason.startswith("cell ")
    assert "ValueError" in reason
    assert reason.isprintable()
    assert len(reason) <= MAX_REASON
    assert (rows["01.a"]["points"], rows["01.c"]["points"]) == (8, 2)
    assert "\\udcff" in (graded.feedback / "odd_text.txt").read_text(encoding="utf-8")


def test_an_exception_whose_str_raises_is_still_named(graded: Graded) -> None:
    """A partitioner raising an exception that cannot be printed: 01.a is an error naming the
    exception, with what the same class earns when checked directly; the notebook's process
    goes on serving, and the data answers count."""
    class UnprintableError(Exception):
        def __str__(self):
            raise RuntimeError("no description")

    class RaisesUnprintableError:
        def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
            raise UnprintableError()

    honest = check("01.a", RaisesUnprintableError)
    assert "UnprintableError" in honest.reason
    rows = _rows(graded.table, "str_raises")
    assert (rows["01.a"]["points"], rows["01.a"]["verdict"]) == (honest.points, "error")
    assert "UnprintableError" in rows["01.a"]["reason"]
    assert (rows["01.b"]["points"], rows["01.c"]["points"]) == (2, 2)


def test_sleeping_in_every_call_costs_only_that_question(graded: Graded) -> None:
    """A partitioner that blocks the jail's alarm and sleeps in each call: the checker's own
    budget stops 01.a (0, "time budget"); the other answers count; the batch stays bounded
    (see test_detached_children_neither_block_nor_outlive_grading)."""
    rows = _rows(graded.table, "sleeps_in_calls")
    assert rows["01.a"]["points"] == 0
    assert "time budget" in rows["01.a"]["reason"]
    assert (rows["01.b"]["points"], rows["01.c"]["points"]) == (2, 2)


def test_one_huge_message_is_refused_unread(graded: Graded) -> None:
    """A forged 12 MB message of empty lists is not parsed by the checker (it would cost it
    some 300 MB): zeros, with the bound as the reason."""
    for row in _rows(graded.table, "one_huge_line").values():
        assert row["points"] == 0
        assert "a message of more than 1 MB" in row["reason"]


def test_reading_outside_the_folder_finds_nothing(graded: Graded) -> None:
    """Snooping for ../solved.ipynb fails (FileNotFoundError); answers are graded on their own."""
    rows = _rows(graded.table, "reads_outside")
    assert rows["01.c"]["points"] == 0
    assert "../solved.ipynb" in rows["01.c"]["reason"]


def test_batch_goes_on_and_writes_the_csv(graded: Graded) -> None:
    """Every submission has its rows, in the documented columns, with a reason for each zero."""
    on_disk = pd.read_csv(graded.csv, keep_default_na=False)
    assert list(on_disk.columns) == COLUMNS
    assert len(on_disk) == len(QUESTIONS) * len(FIXTURE_STUDENTS)
    assert (on_disk[on_disk.points == 0].reason != "").all()
    assert on_disk.points.tolist() == graded.table.points.tolist()


def test_feedback_files_are_written(graded: Graded) -> None:
    """Each student gets a plain-text feedback file with their total."""
    for student, rows in graded.table.groupby("student"):
        name = feedback_name(student.replace("\\nline\\udcff", os.fsdecode(b"\nline\xff")))
        text = (graded.feedback / name).read_text(encoding="utf-8")
        assert f"{rows.points.sum()}/{rows.max_points.sum()} points" in text
    assert len(list(graded.feedback.iterdir())) == len(FIXTURE_STUDENTS)


def test_a_symbolic_link_is_not_a_submission(graded: Graded) -> None:
    """A link to a classmate's notebook or to the solution scores 0 with the reason, without
    being run; the classmate keeps full marks."""
    for student in ("copycat", "linked"):
        rows = _rows(graded.table, student)
        assert set(rows) == QUESTIONS
        for row in rows.values():
            assert row["points"] == 0
            assert row["reason"] == f"{student}.ipynb is a symbolic link, not a submitted notebook"
    assert _points(graded, "solved") == FULL


def test_a_linked_folder_is_not_graded(tmp_path: Path) -> None:
    """Graded recursively, a folder that links to a classmate's folder is not entered: only
    the classmate's own notebook has rows."""
    (tmp_path / "alice").mkdir()
    shutil.copy(SUBMISSIONS / "not_json.ipynb", tmp_path / "alice" / "work.ipynb")
    (tmp_path / "bob").symlink_to("alice")
    table = grade_directory(tmp_path, tmp_path / "grades.csv", recursive=True, jobs=1,
                            exercise="01_partitioners")
    assert set(table.student) == {"alice/work"}


def test_file_names_cannot_break_the_table_or_replace_feedback(graded: Graded) -> None:
    """A name with a newline and a byte that is not UTF-8 is one escaped line in the CSV, and
    ".solved" gets a feedback file of its own instead of replacing solved's."""
    with open(graded.csv, newline="", encoding="utf-8") as f:
        files = [row[0] for row in csv.reader(f)]
    assert files.count("new\\nline\\udcff.ipynb") == len(QUESTIONS)
    solved = (graded.feedback / "solved.txt").read_text(encoding="utf-8")
    assert "12/12 points" in solved
    assert "0/12 points" in (graded.feedback / "%2Esolved.txt").read_text(encoding="utf-8")


def test_feedback_names_are_distinct_plain_and_bounded() -> None:
    """Names that the old scheme folded together stay apart; none is hidden, has a folder in
    it or is too long for a file system."""
    students = ["a b", "a_b", "a/b", "a__b", ".x", "x", "%2Ex", "é" * 200, "é" * 199 + "e",
                os.fsdecode(b"\xff"), "\\udcff"]
    names = [feedback_name(s) for s in students]
    assert len(set(names)) == len(names)
    for name in names:
        assert "/" not in name
        assert not name.startswith(".")
        assert len(name) <= MAX_FEEDBACK_NAME + len(".txt")


def test_grades_do_not_depend_on_order(graded: Graded, tmp_path: Path) -> None:
    """Graded in the opposite order, one at a time, each submission gets the same grade."""
    names = ["half_right", "not_json", "reads_outside", "solved", "unsolved"]
    for rank, name in enumerate(reversed(names)):
        (tmp_path / str(rank)).mkdir()
        shutil.copy(SUBMISSIONS / f"{name}.ipynb", tmp_path / str(rank) / f"{name}.ipynb")
    again = grade_directory(tmp_path, tmp_path / "grades.csv", timeout_s=LOOP_TIMEOUT_S,
                            cell_timeout_s=CELL_TIMEOUT_S, recursive=True, jobs=2)
    assert again.student.iloc[0] == "0/unsolved"
    again["student"] = again.student.str.split("/").str[1]
    first = graded.table[graded.table.student.isin(names)]
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


def test_an_interrupted_batch_keeps_what_it_graded(tmp_path: Path) -> None:
    """Rows are written as each submission finishes: killing the batch keeps them."""
    shutil.copy(SUBMISSIONS / "solved.ipynb", tmp_path / "a_solved.ipynb")
    nb = nbformat.read(SUBMISSIONS / "unsolved.ipynb", as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("import time\ntime.sleep(600)"))
    nbformat.write(nb, tmp_path / "b_sleeps.ipynb")
    out = tmp_path / "out" / "grades.csv"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    batch = subprocess.Popen(
        [sys.executable, "-m", "sim", "grade", str(tmp_path), "--out", str(out), "--jobs", "1",
         "--timeout", "600", "--cell-timeout", "600"],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
             "TMPDIR": str(scratch)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if out.exists() and "a_solved" in out.read_text():
                break
            time.sleep(0.2)
    finally:
        os.killpg(batch.pid, 9)
        batch.wait()
    table = pd.read_csv(out, keep_default_na=False)
    assert table.points.sum() == 12
    assert set(table.student) == {"a_solved"}
    time.sleep(0.5)
    assert not any("b_sleeps" in _cmdline(pid) for pid in os.listdir("/proc") if pid.isdigit())



def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_the_plain_jail_also_keeps_the_batch_safe(tmp_path: Path) -> None:
    """Without namespaces: the batch survives a killed parent, nothing outlives grading, a
    forged pipe earns nothing, and the honest submission keeps full marks."""
    hostile = ["kills_parent", "spawns_detached", "=forges_pipe"]
    submitted = tmp_path / "submitted"
    submitted.mkdir()
    for name in [*hostile, "solved"]:
        _copy_fixture(f"{name}.ipynb", submitted)
    with _private_temp(tmp_path / "scratch") as scratch:
        table = grade_directory(submitted, tmp_path / "grades.csv", timeout_s=LOOP_TIMEOUT_S,
                                cell_timeout_s=CELL_TIMEOUT_S, mode="plain", jobs=2)
    assert set(table.student) == {*hostile, "solved"}
    points = {s: {r["question"]: r["points"] for r in rows.to_dict("records")}
              for s, rows in table.groupby("student")}
    assert points["solved"] == FULL
    assert points["=forges_pipe"] == {"01.a": 0, "01.b": 0, "01.c": 0}
    time.sleep(0.5)
    assert _hostile_processes() == []
    assert list(scratch.iterdir()) == []  # also the one whose checker was killed


# --- the wire: what may cross from a submission --------------------------------------------------


def test_the_wire_round_trips_data_and_refuses_the_rest() -> None:
    """Data crosses as data; depth, huge integers and unknown tags are refused."""
    value = {"acks": "all", "n": 3, "x": [1.5, None, (b"k", True)], 4: {"s"}, "e": ...}
    assert decode(json.loads(json.dumps(encode(value, _no_handle))), _no_handle) == value
    with pytest.raises(WireError):
        decode({"$": "pickle", "v": "gASV"}, _no_handle)
    with pytest.raises(WireError):
        decode(10**300, _no_handle)
    deep: list[object] = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(WireError):
        decode(deep, _no_handle)
    with pytest.raises(WireError):
        loads("[" * 200_000 + "]" * 200_000)
    with pytest.raises(WireError):
        loads("9" * 5000)


def _no_handle(value: object) -> dict[str, object]:
    raise WireError(f"no handles here: {value!r}")


# --- exercise 01's guards -------------------------------------------------------------------------


def test_the_labs_own_vip_partitioner_does_not_count_as_an_answer() -> None:
    """Importing sim.partitioners.VipPartitioner is not solving 01.a."""
    from sim.partitioners import VipPartitioner

    result = check("01.a", VipPartitioner)
    assert result.points == 0
    assert "lab's own example" in str(result)


def test_the_guard_compares_behaviour_not_names() -> None:
    """A subclass or a delegating class acts like the lab's example and fails; an honest class
    with a configure() of its own does not."""
    from sim.partitioners import VipPartitioner

    class Subclass(VipPartitioner):
        pass

    class Delegates:
        def partition(self, *args):
            return VipPartitioner().partition(*args)

    class Configurable(GoodPartitioner):
        def configure(self, configs):
            self.configs = dict(configs)

    for copy in (Subclass, Delegates):
        assert "lab's own example" in check("01.a", copy).reason
    assert check("01.a", Configurable).points == 8


def test_batch_prediction_is_checked_against_the_simulator() -> None:
    """01.c: the simulated count scores 2, one off scores 0 with an off-by-one hint."""
    from sim.grading.exercises.ex01_partitioners import keyless_burst_batches

    expected = keyless_burst_batches()
    assert 1000 / 149 < expected <= 1000 / 35 + 1  # linger.ms, not batch.size, closes batches
    assert check("01.c", expected).points == 2
    off_by_one = check("01.c", expected + 1)
    assert off_by_one.points == 0
    assert "off by one" in str(off_by_one)


# --- the jail's limits, directly -----------------------------------------------------------------

FORK_UNTIL_REFUSED = """import os, sys, time
born = 0
for _ in range(40):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    born += 1
sys.stdout.write(f"{born} {sorted(os.listdir('/'))}\\n")
sys.stdout.flush()
"""


@needs_namespaces
def test_the_jail_limits_processes_and_shows_only_its_own_root() -> None:
    """Forking stops at the process limit (the jail's first process counts), and the root
    holds only what the jail put there; everything dies with the jail."""
    jail = start(b"{}", [], spec=Limits(processes=8), package_parent=str(Path.cwd()),
                 boot=FORK_UNTIL_REFUSED)
    try:
        line = read_line(jail, time.monotonic() + 30, 10_000)
    finally:
        jail.finish()
    assert line is not None
    born, listing = line.decode().split(" ", 1)
    assert 0 < int(born) < 8
    visible = set(json.loads(listing.replace("'", '"')))
    assert visible <= {"bin", "dev", "etc", "kafka-lab", "lib", "lib32", "lib64", "libx32",
                       "proc", "root", "sbin", "submission", "tmp", "usr", "opt", "home"}
    assert "work" not in visible


def test_grade_refuses_a_submissions_folder_on_the_import_path(tmp_path: Path) -> None:
    """Run from inside the submissions folder, a json.py there would load into the grader:
    grade stops with a one-line error before grading anything; --jobs 0 is refused too."""
    shutil.copy(SUBMISSIONS / "unsolved.ipynb", tmp_path / "unsolved.ipynb")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    inside = subprocess.run([sys.executable, "-m", "sim", "grade", ".", "--out", "g.csv"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert inside.returncode == 2
    assert "import path" in inside.stderr
    assert not (tmp_path / "g.csv").exists()
    zero = subprocess.run([sys.executable, "-m", "sim", "grade", str(tmp_path), "--out",
                           str(tmp_path / "g.csv"), "--jobs", "0"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert zero.returncode == 2
    assert "--jobs 0" in zero.stderr


# --- exercise 03: a callback that runs inside the checker's simulation ---------------------------

FORGED_AUDIT = '''import sim.audit
import sim.lessons.groups as lg

real_audit = sim.audit.audit_kernel


def perfect(kernel):
    report = real_audit(kernel)
    report.skipped = 0
    report.processed_twice = 0
    return report


sim.audit.audit_kernel = perfect
lg.crash_kernel = lambda *args, **kwargs: None


def on_records(consumer, records):
    """Commit first, then process: a crash in between loses the batch."""
    consumer.commit_sync()
    try:
        consumer.crash()
    except AttributeError:
        pass
    process(records)
'''


def test_a_callback_is_graded_by_the_checkers_simulation(tmp_path: Path) -> None:
    """03.c: patching the audit and the simulation in the notebook's process changes nothing:
    the callback earns what commit-then-process earns when checked honestly, and it cannot
    call a consumer method outside Kafka's on_records contract (crash())."""
    from sim.consumer import process

    def commit_then_process(consumer, records):
        consumer.commit_sync()
        process(records)

    honest = check("03.c", commit_then_process)
    assert honest.points < honest.max_points
    nb = nbformat.read(SOLUTIONS / "03_consumer_groups.ipynb", as_version=4)
    answer = next(c for c in nb.cells if c.source.startswith("def on_records"))
    answer.source = FORGED_AUDIT
    nbformat.write(nb, tmp_path / "forged_audit.ipynb")
    graded = grade_submission(tmp_path / "forged_audit.ipynb", timeout_s=90, cell_timeout_s=20)
    result = {r.question: r for r in graded.results}["03.c"]
    assert (result.points, result.failed) == (honest.points, honest.failed)
