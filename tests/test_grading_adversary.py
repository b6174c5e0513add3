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

from sim.grading import check
from sim.grading.batch import grade_submission
from sim.grading.budget import BudgetExceeded, time_budget, untimed
from sim.grading.exercises import ex06_streams as ex06
from sim.grading.exercises import ex07_streams_state as ex07
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


@pytest.mark.parametrize("answer", [PlainPython(), PlainPythonDescribingNothing(),
                                    PlainPythonDescribingAnotherTopology()])
def test_06a_outputs_without_a_topology_score_nothing(answer):
    """06.a asks for a topology: right outputs from plain Python, with no description or one of
    another topology, earn 0 of 6."""
    result = check("06.a", answer)
    assert (result.verdict, result.points) == ("failed", 0), str(result)
    assert "no topology to run" in str(result.failed)


def test_06a_the_description_is_of_the_learners_topology():
    """A real StreamsApp still passes: its describe_text() reads payment and writes both
    topics."""
    result = check("06.a", ls.StreamsApp(ex06.reference_build))
    assert (result.verdict, result.points) == ("passed", 6), str(result)


# --- 05.a: asking the simulator instead of predicting --------------------------------------------


def _submit_05(tmp_path: Path, name: str, prediction: str) -> dict[str, tuple[str, int, str]]:
    notebook = nbformat.read(SOLUTION_05, as_version=4)
    (cell,) = [c for c in notebook.cells if "def read_committed_offsets" in c.source]
    cell.source = prediction
    path = tmp_path / name
    path.write_text(json.dumps(notebook), encoding="utf-8")
    submission = grade_submission(path, timeout_s=400, cell_timeout_s=120)
    assert submission.problem is None
    return {r.question: (r.verdict, r.points, r.reason) for r in submission.results}


ASKS_THE_SIMULATOR = {
    "through_the_module": (
        "def read_committed_offsets(script):\n"
        "    return lt.offsets_read(lt.scripted_log(script), 'read_committed')\n"),
    "imported_then_rebound": (
        "from sim.lessons.transactions import offsets_read, scripted_log\n"
        "lt.scripted_log = lambda script, seed=3: None\n"
        "def read_committed_offsets(script):\n"
        "    return offsets_read(scripted_log(script), 'read_committed')\n"),
}


@pytest.mark.parametrize("how", sorted(ASKS_THE_SIMULATOR))
def test_05a_a_prediction_that_runs_the_lessons_simulator_scores_nothing(tmp_path, how):
    """read_committed_offsets that calls scripted_log / offsets_read is not a prediction: while
    the grader calls it those helpers are switched off, so it earns 0 of 5."""
    _, points, reason = _submit_05(tmp_path, f"{how}.ipynb", ASKS_THE_SIMULATOR[how])["05.a"]
    assert points == 0, reason
    assert "switched off" in reason


def test_05a_the_helpers_still_work_in_the_notebooks_own_cells(tmp_path):
    """Only the grader's calls are refused: a cell that runs scripted_log itself runs fine, and
    a real prediction beside it scores full marks."""
    notebook = nbformat.read(SOLUTION_05, as_version=4)
    (cell,) = [c for c in notebook.cells if "def read_committed_offsets" in c.source]
    path = tmp_path / "uses_the_helper_in_a_cell.ipynb"
    cell.source += "\nseen = lt.offsets_read(lt.scripted_log(script), 'read_committed')\n" \
                   "assert read_committed_offsets(script) == seen\n"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    submission = grade_submission(path, timeout_s=400, cell_timeout_s=120)
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    assert {r.question: r.points for r in submission.results}["05.a"] == 5


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

