"""Ways an unsolved or wrong answer could score points it has not earned, each closed.

Each test is one attack on a check: an answer that computes nothing the question asks for, an
answer that asks the lab's simulator for the graded answer, an equality that lies. Single answers
go through ``sim.grading.check``, as a learner's check cell does; attacks that only the jail can
stop go through the batch grader.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest

from sim.grading import check, exercise_names
from sim.grading.batch import grade_submission
from sim.grading.budget import BudgetExceeded, time_budget, untimed
from sim.grading.exercises import ex06_streams as ex06
from sim.grading.exercises import ex07_streams_state as ex07
from sim.grading.registry import guarded_while_graded
from sim.grading.runner import helpers_to_guard
from sim.lessons import streams as ls

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_05 = ROOT / "solutions" / "05_transactions.ipynb"
FIXED_LOOP = ["begin_transaction", "send", "process", "send_offsets_to_transaction",
              "commit_transaction"]


# --- 06.a: outputs without a topology ------------------------------------------------------------


def _plain_python(records, topic=None):
    """The spec of 06.a in plain Python: the right outputs, and no topology at all."""
    counts: dict[str, int] = {}
    out = []
    for n, (key, value, timestamp) in enumerate(records):
        if key == "unknown":
            out.append((n, "unknown-payment", key, value, timestamp))
        elif value >= 100:
            counts[key] = counts.get(key, 0) + 1
            out.append((n, "large-payment-count", key, counts[key], timestamp))
    return out


class PlainPython:
    """Right outputs, computed without Kafka Streams."""

    def run(self, records, topic=None):
        return _plain_python(records, topic)


class PlainPythonDescribingNothing(PlainPython):
    """The same, with a description that names no topology's nodes."""

    def describe_text(self):
        return "Topologies:\n   Sub-topology: 0\n"


class PlainPythonDescribingAnotherTopology(PlainPython):
    """The same, describing a real topology that writes only one of the two topics."""

    def describe_text(self):
        return ls.StreamsApp(
            lambda builder: builder.stream("payment").to("unknown-payment")).describe_text()


def test_the_plain_python_stand_in_really_gives_the_right_outputs():
    """The attack is real: its records are the reference topology's, hidden inputs included."""
    for payments in (ex06.VISIBLE_PAYMENTS, ex06.HIDDEN_PAYMENTS):
        assert _plain_python(payments) == ex06.expected_outputs(payments)


@pytest.mark.parametrize("answer", [PlainPython(), PlainPythonDescribingNothing()])
def test_06a_outputs_without_a_topology_score_nothing(answer):
    """06.a asks for a topology: right outputs from plain Python, with no description or one
    naming no source, earn 0 of 6."""
    result = check("06.a", answer)
    assert (result.verdict, result.points) == ("failed", 0), str(result)
    assert "no topology to run" in str(result.failed)


def test_06a_a_topic_without_a_sink_in_the_description_earns_nothing():
    """Right outputs for both topics beside the description of a topology that writes only
    unknown-payment: the count topic's 3 points are lost."""
    result = check("06.a", PlainPythonDescribingAnotherTopology())
    assert result.points <= 3, str(result)
    assert "no sink writing large-payment-count" in result.reason


def test_06a_the_description_is_of_the_learners_topology():
    """A real StreamsApp still passes: its describe_text() reads payment and writes both
    topics."""
    result = check("06.a", ls.StreamsApp(ex06.reference_build))
    assert (result.verdict, result.points) == ("passed", 6), str(result)


# --- 05.a: asking the simulator instead of predicting --------------------------------------------


def _submit(tmp_path: Path, exercise: str, fragment: str, source: str
            ) -> dict[str, tuple[str, int, str]]:
    """Grade the solution of ``exercise`` with the cell holding ``fragment`` replaced."""
    notebook = nbformat.read(ROOT / "solutions" / f"{exercise}.ipynb", as_version=4)
    (cell,) = [c for c in notebook.cells if fragment in c.source]
    cell.source = source
    path = tmp_path / f"{exercise}.ipynb"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    submission = grade_submission(path, timeout_s=400, cell_timeout_s=120)
    assert submission.problem is None
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    return {r.question: (r.verdict, r.points, r.reason) for r in submission.results}


ASKS_THE_SIMULATOR = {
    "05.a, through the module": (
        "05_transactions", "def read_committed_offsets",
        "def read_committed_offsets(script):\n"
        "    return lt.offsets_read(lt.scripted_log(script), 'read_committed')\n"),
    "05.a, imported, then the module's name rebound": (
        "05_transactions", "def read_committed_offsets",
        "from sim.lessons.transactions import offsets_read, scripted_log\n"
        "lt.scripted_log = lambda script, seed=3: None\n"
        "def read_committed_offsets(script):\n"
        "    return offsets_read(scripted_log(script), 'read_committed')\n"),
    "04.a, the lesson's helper": (
        "04_storage", "def kept_offsets",
        "def kept_offsets(keys, active_from):\n"
        "    return ls.surviving_offsets(keys, 2)\n"),
    "04.a, the lab's log cleaner on a log of its own": (
        "04_storage", "def kept_offsets",
        "from sim.broker.log_cleaner import clean\n"
        "def kept_offsets(keys, active_from):\n"
        "    kernel, log = ls.build_log(list(keys), 2, configs={'cleanup.policy': 'compact'})\n"
        "    clean(log, kernel, log.active_segment.base_offset, kernel.now_ms, 86_400_000)\n"
        "    return log.records()['offset'].tolist()\n"),
    "07.a, the lesson's failover": (
        "07_streams_state", "def restore_time_ms",
        "def restore_time_ms(records, changelog_bytes, bandwidth_mbps, latency_ms):\n"
        "    return ss.failover(1, records, lose_state=True, bandwidth_mbps=bandwidth_mbps,\n"
        "                       latency_ms=latency_ms)['restore_ms']\n"),
}


@pytest.mark.parametrize("how", sorted(ASKS_THE_SIMULATOR))
def test_a_prediction_that_runs_the_labs_simulator_scores_nothing(tmp_path, how):
    """A function asked to predict that calls the lab's helper computing the answer is not a
    prediction: while the grader calls it those helpers are switched off (wherever the notebook
    found them), so the question earns 0."""
    exercise, fragment, source = ASKS_THE_SIMULATOR[how]
    _, points, reason = _submit(tmp_path, exercise, fragment, source)[how[:4]]
    assert points == 0, reason
    assert "switched off" in reason


def test_05a_the_helpers_still_work_in_the_notebooks_own_cells(tmp_path):
    """Only the grader's calls are refused: a cell that runs scripted_log itself runs fine, and
    a real prediction beside it scores full marks."""
    notebook = nbformat.read(SOLUTION_05, as_version=4)
    (cell,) = [c for c in notebook.cells if "def read_committed_offsets" in c.source]
    source = cell.source + ("\nseen = lt.offsets_read(lt.scripted_log(script), 'read_committed')"
                            "\nassert read_committed_offsets(script) == seen\n")
    results = _submit(tmp_path, "05_transactions", "def read_committed_offsets", source)
    assert results["05.a"][1] == 5, results["05.a"]


# --- budgets: the check's own simulation is not the learner's time -------------------------------


def test_untimed_work_does_not_use_up_the_budget():
    """A block in untimed() may take longer than the whole budget; code after it still gets
    the time the budget had left."""
    with time_budget(0.2):
        with untimed():
            time.sleep(0.3)
        time.sleep(0.05)


def _untimed_then_spin(budget_s: float) -> None:
    with time_budget(budget_s):
        with untimed():
            time.sleep(budget_s * 1.5)
        while True:
            pass


def test_the_budget_still_stops_learner_code_after_untimed_work():
    """untimed() pauses the clock, it does not remove the limit."""
    with pytest.raises(BudgetExceeded):
        _untimed_then_spin(0.1)


def test_05b_a_right_loop_passes_however_slow_the_simulation():
    """05.b's crash runs take seconds and call no learner code: a right loop earns 6 of 6 even
    with a budget far shorter than the runs."""
    result = check("05.b", FIXED_LOOP, budget_s=0.05)
    assert (result.verdict, result.points) == ("passed", 6), str(result)


def test_05c_a_right_size_passes_however_slow_the_simulation():
    """05.c's latency runs are the check's own work."""
    result = check("05.c", 110, budget_s=0.01)
    assert (result.verdict, result.points) == ("passed", 4), str(result)


def test_07a_a_right_formula_passes_however_slow_the_simulated_restores():
    """07.a's hidden restores are simulated by the check, not by the learner's function."""

    def restore_time_ms(records, changelog_bytes, bandwidth_mbps, latency_ms):
        fetches = -(-records // 1000)
        return fetches * 2 * latency_ms + changelog_bytes * 8 / (bandwidth_mbps * 1e6) * 1000

    ex07.hidden_restore.cache_clear()
    result = check("07.a", restore_time_ms, budget_s=0.05)
    assert (result.verdict, result.points) == ("passed", 5), str(result)


# --- answers whose equality lies -----------------------------------------------------------------


class Agreeable(str):
    """A step name equal to every other step name."""

    __hash__ = str.__hash__

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


def test_05b_steps_that_equal_everything_are_read_as_what_they_say():
    """Five copies of commit_sync that claim to equal any step are read as commit_sync: a loop
    that never sends, worth nothing."""
    result = check("05.b", [Agreeable("commit_sync")] * 5)
    assert (result.verdict, result.points) == ("failed", 0), str(result)
    assert "must send the output" in result.reason


def test_05b_the_solution_steps_as_str_subclasses_still_pass():
    """A str subclass that does not lie is read as its text."""

    class Step(str):
        pass

    result = check("05.b", [Step(s) for s in FIXED_LOOP], budget_s=None)
    assert (result.verdict, result.points) == ("passed", 6), str(result)



# --- 08.a: configs run in the grader's process ------------------------------------------------


def _hoisted_source(path: str) -> dict:
    return {"name": "signups-file", "config": {
        "connector.class": "FileStreamSource", "file": path, "topic": "signups",
        "transforms": "hoist,origin",
        "transforms.hoist.type": "org.apache.kafka.connect.transforms.HoistField$Value",
        "transforms.hoist.field": "email",
        "transforms.origin.type": "org.apache.kafka.connect.transforms.InsertField$Value",
        "transforms.origin.static.field": "source",
        "transforms.origin.static.value": "signup-form"}}


def _sqlite_sink(database: str) -> dict:
    return {"name": "signups-db", "config": {
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector", "topics": "signups",
        "connection.url": f"jdbc:sqlite:{database}", "auto.create": "true"}}


def test_08a_a_sink_writing_a_file_of_its_choice_writes_nothing_and_scores_nothing(tmp_path):
    """The check runs the connectors in the grader's process: a FileStreamSink aimed at a file
    of the grader's (a grade table, say) must not append to it, nor earn the config points."""
    target = tmp_path / "grades.csv"
    target.write_text("student,points\n", encoding="utf-8")

    def pipeline_configs(input_file, database):
        return [_hoisted_source(input_file), {"name": "forged-rows", "config": {
            "connector.class": "FileStreamSink", "topics": "signups", "file": str(target)}}]

    result = check("08.a", pipeline_configs)
    assert target.read_text(encoding="utf-8") == "student,points\n"
    assert result.points <= 1, str(result)
    assert "FileStreamSource and a JdbcSinkConnector" in result.reason


def test_08a_a_source_reading_another_file_never_shows_it_in_the_feedback(tmp_path):
    """A FileStreamSource aimed at another file (a classmate's, a solution) is refused before it
    runs: its lines never reach the table the feedback quotes."""
    secret = tmp_path / "solution.txt"
    secret.write_text("the-answer-is-42\n", encoding="utf-8")

    def pipeline_configs(input_file, database):
        return [_hoisted_source(str(secret)), _sqlite_sink(database)]

    result = check("08.a", pipeline_configs)
    assert "the-answer-is-42" not in str(result.to_dict())
    assert result.points <= 1, str(result)
    assert "file is input_file" in result.reason


def test_08a_a_database_elsewhere_is_refused(tmp_path):
    """The JDBC sink may write only the database the check names."""
    elsewhere = tmp_path / "elsewhere.db"

    def pipeline_configs(input_file, database):
        return [_hoisted_source(input_file), _sqlite_sink(str(elsewhere))]

    result = check("08.a", pipeline_configs)
    assert not elsewhere.exists()
    assert result.points <= 1, str(result)


def test_08a_the_right_pipeline_with_full_class_names_still_scores_full_marks():
    """Full class names and the paths as given pass, as the simple names do."""

    def pipeline_configs(input_file, database):
        source = _hoisted_source(input_file)
        source["config"]["connector.class"] = (
            "org.apache.kafka.connect.file.FileStreamSourceConnector")
        return [source, _sqlite_sink(database)]

    result = check("08.a", pipeline_configs)
    assert (result.verdict, result.points) == ("passed", 7), str(result)


# --- 08.b: an exception that only has the right name -----------------------------------------


def test_08b_a_learners_own_data_error_is_not_connects(tmp_path):
    """Through the batch grader, a SinkTask that refuses a keyless record with its own class
    named DataError loses that item's point, as it does in the notebook: Connect's framework
    would not recognise it."""
    notebook = nbformat.read(ROOT / "solutions" / "08_connect.ipynb", as_version=4)
    (cell,) = [c for c in notebook.cells
               if c.cell_type == "code" and "class LatestValueSinkTask" in c.source]
    mine = "class DataError(Exception):\n    pass\n\n\n" + cell.source
    results = _submit(tmp_path, "08_connect", "class LatestValueSinkTask", mine)
    verdict, points, reason = results["08.b"]
    assert (verdict, points) == ("failed", 5), reason
    assert "not DataError" in reason


@pytest.mark.parametrize("exercise", exercise_names())
def test_every_guarded_helper_is_a_plain_function_of_the_lab(exercise):
    """The helpers an exercise switches off exist and can be switched off (a renamed helper
    would stop every submission of that exercise from running)."""
    names = guarded_while_graded(exercise)
    assert len(helpers_to_guard(names)) == len(names)
