"""Exercise 06 (Kafka Streams, part 1): the solution scores full marks, the generated exercise
reports "not yet solved", and each plausible wrong answer loses the points of what it gets
wrong — a topology that only fits the visible example included.

The notebooks go through the batch grader (one jailed subprocess each, as for a class); single
answers go through ``sim.grading.check``, as a learner's check cell does.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import nbformat
import pytest

from sim.grading import check, exercise_questions
from sim.grading.batch import Submission, grade_submission
from sim.grading.exercises import ex06_streams as ex06
from sim.lessons import streams as ls
from sim.streams import Branched

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "06_streams.ipynb"
EXERCISE = ROOT / "exercises" / "06_streams.ipynb"


@functools.cache
def graded(path: Path) -> Submission:
    return grade_submission(path, timeout_s=90, cell_timeout_s=20)


def by_question(submission: Submission) -> dict[str, tuple[str, int]]:
    return {r.question: (r.verdict, r.points) for r in submission.results}


def solution_source(fragment: str) -> str:
    notebook = nbformat.read(SOLUTION, as_version=4)
    (cell,) = [c.source for c in notebook.cells if fragment in c.source]
    return cell


# --- topologies, right and wrong -----------------------------------------------------------------


def by_split(builder):
    branches = (builder.stream("payment").split(named="p-")
                .branch(lambda key, value: key == "unknown", Branched.as_("unknown"))
                .default_branch(Branched.as_("rest")))
    branches["p-unknown"].to("unknown-payment")
    (branches["p-rest"].filter(lambda key, value: value >= 100).group_by_key().count()
     .to_stream().to("large-payment-count"))


def by_two_filters_and_a_repartition(builder):
    """Another right answer: two filters on one stream, and group_by (a repartition topic)."""
    payments = builder.stream("payment")
    payments.filter(lambda key, value: key == "unknown").to("unknown-payment")
    (payments.filter_not(lambda key, value: key == "unknown")
     .filter(lambda key, value: value >= 100)
     .group_by(lambda key, value: key).count().to_stream().to("large-payment-count"))


def only_the_lessons_filter(builder):
    builder.stream("payment").filter(lambda key, value: key == "unknown").to("unknown-payment")


def strictly_more_than_100(builder):
    branches = (builder.stream("payment").split(named="p-")
                .branch(lambda key, value: key == "unknown", Branched.as_("unknown"))
                .default_branch(Branched.as_("rest")))
    branches["p-unknown"].to("unknown-payment")
    (branches["p-rest"].filter(lambda key, value: value > 100).group_by_key().count()
     .to_stream().to("large-payment-count"))


def large_branch_first(builder):
    """The branches in the wrong order: a large "unknown" payment is counted instead."""
    branches = (builder.stream("payment").split(named="p-")
                .branch(lambda key, value: value >= 100, Branched.as_("large"))
                .branch(lambda key, value: key == "unknown", Branched.as_("unknown"))
                .no_default_branch())
    branches["p-unknown"].to("unknown-payment")
    branches["p-large"].group_by_key().count().to_stream().to("large-payment-count")


def counts_every_known_payment(builder):
    branches = (builder.stream("payment").split(named="p-")
                .branch(lambda key, value: key == "unknown", Branched.as_("unknown"))
                .default_branch(Branched.as_("rest")))
    branches["p-unknown"].to("unknown-payment")
    branches["p-rest"].group_by_key().count().to_stream().to("large-payment-count")


def ignores_case(builder):
    """"Unknown" is another customer, not the unknown one."""
    payments = builder.stream("payment")
    payments.filter(lambda key, value: key.lower() == "unknown").to("unknown-payment")
    (payments.filter(lambda key, value: key.lower() != "unknown" and value >= 100)
     .group_by_key().count().to_stream().to("large-payment-count"))


class FitsTheExampleOnly:
    """Hard-coded: the visible example's outputs, whatever the input (and a real topology's
    description beside them)."""

    def describe_text(self):
        return ls.StreamsApp(by_split).describe_text()

    def run(self, records, topic=None):
        return [(1, "unknown-payment", "unknown", 120, 2000),
                (2, "large-payment-count", "bob", 1, 3000),
                (3, "unknown-payment", "unknown", 5, 4000),
                (4, "large-payment-count", "carol", 1, 5000)]


# --- whole notebooks, through the batch grader ---------------------------------------------------


def test_solution_scores_full_marks():
    """Through the jailed batch grader, the solution earns 6 + 5 + 4 points and every cell
    runs."""
    submission = graded(SOLUTION)
    assert submission.problem is None
    assert submission.exercise == "06_streams"
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    assert by_question(submission) == {"06.a": ("passed", 6), "06.b": ("passed", 5),
                                       "06.c": ("passed", 4)}


def test_generated_exercise_runs_and_reports_not_yet_solved():
    """The exercise runs top to bottom (the stubs included) and scores 0, not yet solved."""
    submission = graded(EXERCISE)
    assert submission.problem is None
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    assert by_question(submission) == {q: ("not yet solved", 0)
                                       for q in ("06.a", "06.b", "06.c")}


def _submit(tmp_path: Path, name: str, *replacements: tuple[str, str]) -> dict[str, tuple]:
    notebook = nbformat.read(SOLUTION, as_version=4)
    for cell in notebook.cells:
        for old, new in replacements:
            cell.source = cell.source.replace(old, new)
    path = tmp_path / name
    path.write_text(json.dumps(notebook), encoding="utf-8")
    submission = grade_submission(path, timeout_s=90, cell_timeout_s=20)
    assert submission.problem is None
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    return by_question(submission)


def test_half_right_submission_gets_partial_marks(tmp_path):
    """> 100 instead of >= 100, describe() without indentation, one dropped record too many:
    3 + 4 + 3 points, whatever the file name."""
    description = solution_source("predicted_description =").split('"""')[1]
    flat = "\n".join(line.strip() for line in description.splitlines())
    assert _submit(tmp_path, "student.ipynb",
                   ("lambda key, value: value >= 100", "lambda key, value: value > 100"),
                   (description, flat),
                   ('"dropped": 3', '"dropped": 4')) == {
        "06.a": ("failed", 3), "06.b": ("failed", 4), "06.c": ("failed", 3)}


def test_a_hard_coded_answer_fails_the_hidden_payments_in_the_jail(tmp_path):
    """A class whose run() returns the visible example's outputs passes only the first item:
    1 of 6, graded through the jail like any submission."""
    forged = ("class FitsTheExampleOnly:\n"
              "    def describe_text(self):\n"
              "        def build(builder):\n"
              "            payments = builder.stream('payment')\n"
              "            payments.to('unknown-payment')\n"
              "            payments.to('large-payment-count')\n"
              "        return ls.StreamsApp(build).describe_text()\n\n"
              "    def run(self, records, topic=None):\n"
              "        return [(1, 'unknown-payment', 'unknown', 120, 2000),\n"
              "                (2, 'large-payment-count', 'bob', 1, 3000),\n"
              "                (3, 'unknown-payment', 'unknown', 5, 4000),\n"
              "                (4, 'large-payment-count', 'carol', 1, 5000)]\n\n\n"
              "payments_app = FitsTheExampleOnly()")
    answer = solution_source("payments_app = ls.StreamsApp")
    assert _submit(tmp_path, "forged.ipynb", (answer, forged))["06.a"] == ("failed", 1)


# --- 06.a ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [by_split, by_two_filters_and_a_repartition])
def test_06a_right_topologies_score_full_marks(build):
    """Any topology that meets the spec passes, a repartitioning one included."""
    result = check("06.a", ls.StreamsApp(build))
    assert (result.verdict, result.points) == ("passed", 6), str(result)


@pytest.mark.parametrize(("answer", "points", "why"), [
    (ls.StreamsApp(only_the_lessons_filter), 3, "has no sink writing large-payment-count"),
    (ls.StreamsApp(strictly_more_than_100), 3,
     "large-payment-count, the example: 1 records, expected 2: ('carol', 1) is missing"),
    (ls.StreamsApp(large_branch_first), 1,
     "unknown-payment, the example: record 0 is ('unknown', 5), expected ('unknown', 120)"),
    (ls.StreamsApp(counts_every_known_payment), 3,
     "large-payment-count, the example: record 0 is ('alice', 1)"),
    (ls.StreamsApp(ignores_case), 1, "payments you have not seen"),
    (FitsTheExampleOnly(), 1, "unknown-payment, payments you have not seen"),
])
def test_06a_plausible_wrong_topologies_lose_marks(answer, points, why):
    """Only the filter, > 100, the branches swapped, no amount filter, "Unknown" taken for
    "unknown", a hard-coded answer: each loses the points of the topic it gets wrong."""
    result = check("06.a", answer)
    assert (result.verdict, result.points) == ("failed", points), str(result)
    assert why in result.reason


def test_06a_hidden_payments_catch_what_the_example_cannot():
    """The hidden inputs hold the edges the example lacks: a large "unknown" payment, 99,
    exactly 100, and "Unknown" in another case."""
    keys_amounts = {(k, v) for k, v, _ in ex06.HIDDEN_PAYMENTS}
    assert ("unknown", 500) in keys_amounts
    assert {("erik", 99), ("dana", 100), ("Unknown", 150)} <= keys_amounts
    visible = ex06.expected_outputs(ex06.VISIBLE_PAYMENTS)
    hidden = ex06.expected_outputs(ex06.HIDDEN_PAYMENTS)
    assert visible != hidden
    assert ("large-payment-count", "erik", 3) in [(t, k, v) for _n, t, k, v, _ts in hidden]


def test_06a_the_notebook_states_the_examples_expected_output():
    """The spec's example in the notebook is what the reference topology gives."""
    assert [(t, k, v) for _n, t, k, v, _ts in ex06.expected_outputs(ex06.VISIBLE_PAYMENTS)] == [
        ("unknown-payment", "unknown", 120), ("large-payment-count", "bob", 1),
        ("unknown-payment", "unknown", 5), ("large-payment-count", "carol", 1)]
    text = solution_source("## 06.a")
    assert "(unknown, 120), (unknown, 5)" in text
    assert "(bob, 1), (carol, 1)" in text


@pytest.mark.parametrize(("answer", "why"), [
    (by_split, "expected ls.StreamsApp(build_topology)"),
    ("by_split", "expected ls.StreamsApp(build_topology)"),
])
def test_06a_an_unwrapped_answer_is_explained(answer, why):
    """The function itself, or a string, earns 0 with the fix named."""
    result = check("06.a", answer)
    assert (result.verdict, result.points) == ("failed", 0)
    assert why in result.reason


def test_06a_a_run_that_returns_something_else_is_explained():
    """A run() whose records are not (input, topic, key, value, timestamp) earns 0, with the
    shape it should have."""

    class ThreeFields(FitsTheExampleOnly):
        def run(self, records, topic=None):
            return [("unknown-payment", "unknown", 120)]

    result = check("06.a", ThreeFields())
    assert (result.verdict, result.points) == ("failed", 0)
    assert "expected 5 fields" in result.reason


def test_06a_stub_and_crash():
    """The generated stub is not yet solved; a crashing topology is an error with its line."""

    def stub(builder):
        raise NotImplementedError("your code here")

    def crashes(builder):
        builder.stream("payment").filter(lambda key, value: value / 0).to("x")

    assert check("06.a", ls.StreamsApp(stub)).verdict == "not yet solved"
    result = check("06.a", ls.StreamsApp(crashes))
    assert (result.verdict, result.points) == ("error", 0)
    assert "ZeroDivisionError" in result.reason


# --- 06.b ----------------------------------------------------------------------------------------


def test_06b_the_notebooks_topology_is_the_checks():
    """The cell the learner reads builds the topology the check describes."""
    namespace: dict[str, object] = {}
    exec(solution_source("from sim.grading import check"), namespace)
    exec(solution_source("size_topology = builder.build()"), namespace)
    assert str(namespace["size_topology"].describe()) == ex06.expected_description()


def _renumbered(text: str) -> str:
    """The usual mistake: forgetting that the repartition nodes use up three numbers."""
    return (text.replace("KTABLE-TOSTREAM-0000000008", "KTABLE-TOSTREAM-0000000005")
            .replace("KSTREAM-SINK-0000000009", "KSTREAM-SINK-0000000006"))


@pytest.mark.parametrize(("answer", "points", "why"), [
    (lambda truth: truth, 5, "all visible checks passed"),
    (lambda truth: truth.rstrip("\n") + "   \n", 5, "all visible checks passed"),
    (lambda truth: "\n".join(line.strip() for line in truth.splitlines()), 4, "line 2 differs"),
    (_renumbered, 1, "'Processor: KTABLE-TOSTREAM-0000000005 (stores: [])' is not a node"),
    (lambda truth: str(ls.unknown_payment_topology().describe()), 1, "you have 1 sub-topologies"),
    (lambda truth: "", 0, "does not start with 'Topologies:'"),
    (lambda truth: 42, 0, "expected a string"),
])
def test_06b_predictions_are_compared_part_by_part(answer, points, why):
    """Exact text: 5; indentation lost: 4; numbering off: 1; another topology: 1; not a
    description: 0."""
    result = check("06.b", answer(ex06.expected_description()))
    assert result.points == points, str(result)
    assert why in result.reason + str(result)


def test_06b_wrong_links_cost_the_links_point():
    """Right nodes, one link pointing elsewhere: 4 of 5."""
    truth = ex06.expected_description()
    wrong = truth.replace("      --> KSTREAM-MAPVALUES-0000000002",
                          "      --> KSTREAM-KEY-SELECT-0000000003", 1)
    result = check("06.b", wrong)
    assert result.points == 3, str(result)  # the links and the exact text
    assert "the links of KSTREAM-FILTER-0000000001 are not right" in result.reason


# --- 06.c ----------------------------------------------------------------------------------------


def test_06c_the_notebook_lists_the_checks_readings():
    """The readings and windows the learner sees are the ones the check counts."""
    namespace: dict[str, object] = {}
    exec(solution_source("from sim.grading import check"), namespace)
    exec(solution_source("door_readings = ["), namespace)
    assert namespace["door_readings"] == ex06.DOOR_READINGS
    assert namespace["door_windows"] == ex06.window_truth().windows


@pytest.mark.parametrize(("answer", "points", "why"), [
    ({"counts": {0: 3, 10_000: 2, 20_000: 2}, "dropped": 3}, 4, "all visible checks passed"),
    ({"counts": {0: 2, 10_000: 2, 20_000: 2}, "dropped": 4}, 1, "starting at 0 ms"),  # no grace
    ({"counts": {0: 4, 10_000: 4, 20_000: 2}, "dropped": 0}, 1, "starting at 0 ms"),  # no drops
    ({"counts": {0: 3, 10_000: 2, 20_000: 2}, "dropped": 4}, 3, "dropped-records is not 4"),
    ({"counts": {0: 3, 10_000: 2}, "dropped": 3}, 2, "starting at 20000 ms: you have no window"),
    ({"counts": {"0": 3}, "dropped": 3}, 0, "must map window starts"),
    ([3, 2, 2], 0, "expected a dict"),
])
def test_06c_predictions_score_per_part(answer, points, why):
    """Right: 4; ignoring grace or lateness: 1; dropped wrong: 3; a window left out: 2;
    unreadable: 0."""
    result = check("06.c", answer)
    assert result.points == points, str(result)
    assert why in result.reason + str(result)


def test_06c_expected_value_follows_the_simulation_not_a_constant(monkeypatch):
    """With 4 s of grace instead of 2 s, record 8,000 is counted: the check expects 4 in the
    first window and 2 dropped."""
    monkeypatch.setattr(ex06, "WINDOW_GRACE_MS", 4_000)
    assert check("06.c", {"counts": {0: 3, 10_000: 2, 20_000: 2}, "dropped": 3}).points == 1
    assert check("06.c", {"counts": {0: 4, 10_000: 2, 20_000: 2}, "dropped": 2}).points == 4


@pytest.mark.parametrize("stub", [None, ...])
def test_stubs_are_not_yet_solved(stub):
    """None and ... are the exercise's placeholders: 0 points, never an error."""
    for q in exercise_questions(ex06.EXERCISE):
        result = check(q.id, stub)
        assert (result.verdict, result.points) == ("not yet solved", 0)
