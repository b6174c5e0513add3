"""Exercise 08 (Kafka Connect): the solution scores full marks, the generated exercise reports
"not yet solved", and plausible wrong answers lose the points of what they get wrong.

The two notebooks go through the batch grader (one subprocess each, the learner's class and
function called across the process boundary); single answers go through ``sim.grading.check``,
as a learner's check cell does.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import nbformat
import pytest

from sim.connect import SinkTask
from sim.connect.errors import DataError
from sim.grading import check
from sim.grading.batch import Submission, grade_submission
from sim.grading.exercises import ex08_connect as ex08

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "08_connect.ipynb"
EXERCISE = ROOT / "exercises" / "08_connect.ipynb"
HOIST = "org.apache.kafka.connect.transforms.HoistField$Value"
INSERT = "org.apache.kafka.connect.transforms.InsertField$Value"


@functools.cache
def graded(path: Path) -> Submission:
    return grade_submission(path, timeout_s=180, cell_timeout_s=60)


def by_question(submission: Submission) -> dict[str, tuple[str, int, int, str]]:
    return {r.question: (r.verdict, r.points, r.max_points, r.reason)
            for r in submission.results}


def test_solution_scores_full_marks():
    """Through the batch grader, the solution earns 7 + 6 + 5 points and every cell runs."""
    submission = graded(SOLUTION)
    assert submission.problem is None
    assert submission.exercise == "08_connect"
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    assert {q: r[:3] for q, r in by_question(submission).items()} == {
        "08.a": ("passed", 7, 7), "08.b": ("passed", 6, 6), "08.c": ("passed", 5, 5)}


def test_generated_exercise_runs_and_reports_not_yet_solved():
    """The exercise runs top to bottom (the stubs included) and scores 0, not yet solved."""
    submission = graded(EXERCISE)
    assert submission.problem is None
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    assert {q: r[:2] for q, r in by_question(submission).items()} == {
        "08.a": ("not yet solved", 0), "08.b": ("not yet solved", 0),
        "08.c": ("not yet solved", 0)}


# --- 08.a -----------------------------------------------------------------------------------------


def configs(hoist_field="email", origin=True, auto_create="true", topic="signups", url=None):
    def pipeline_configs(input_file, database):
        transforms = {"transforms": "hoist,origin" if origin else "hoist",
                      "transforms.hoist.type": HOIST, "transforms.hoist.field": hoist_field}
        if origin:
            transforms.update({"transforms.origin.type": INSERT,
                               "transforms.origin.static.field": "source",
                               "transforms.origin.static.value": "signup-form"})
        source = {"name": "src", "config": {"connector.class": "FileStreamSource",
                                            "file": input_file, "topic": topic, **transforms}}
        sink = {"name": "db", "config": {"connector.class": "JdbcSinkConnector",
                                         "topics": "signups", "auto.create": auto_create,
                                         "connection.url": url or f"jdbc:sqlite:{database}"}}
        return [source, sink]
    return pipeline_configs


def test_right_configs_pass_and_rows_come_from_hidden_lines():
    """The table equals the rows the hidden lines give, the late line included."""
    result = check("08.a", configs())
    assert (result.verdict, result.points) == ("passed", 7), str(result)
    assert ex08.expected_rows()[-1] == (ex08.LATE_SIGNUP, "signup-form")


@pytest.mark.parametrize(("answer", "points", "why"), [
    (configs(origin=False), 4, "the table's columns are ['email']"),
    (configs(hoist_field="line"), 4, "the table's columns are ['line', 'source']"),
    (configs(auto_create="false"), 4, "there is no table 'signups'"),
    (configs(topic="signup"), 3, "the source writes to 'signup'"),
    (configs(url="/tmp/x.db"), 4, "db is FAILED"),
    (lambda i, d: {"name": "x"}, 0, "expected a list of two request bodies"),
    ("FileStreamSource", 0, "expected a function"),
])
def test_wrong_configs_lose_the_points_of_what_they_break(answer, points, why):
    """A missing transform, the lesson's field name, no auto.create, a typo in the topic, a bad
    URL and wrong shapes each cost their items."""
    result = check("08.a", answer)
    assert result.points == points, str(result)
    assert why in result.reason


# --- 08.b -----------------------------------------------------------------------------------------


class Latest(SinkTask):
    def start(self, props):
        self.table = {}

    def put(self, records):
        for r in records:
            if r.key is None:
                raise DataError("no key")
            if r.value is None:
                self.table.pop(r.key, None)
            else:
                self.table[r.key] = r.value

    def snapshot(self):
        return dict(self.table)


class NoTombstones(Latest):
    def put(self, records):
        for r in records:
            if r.key is None:
                raise DataError("no key")
            self.table[r.key] = r.value


class DelStrict(Latest):
    def put(self, records):
        for r in records:
            if r.key is None:
                raise DataError("no key")
            if r.value is None:
                del self.table[r.key]
            else:
                self.table[r.key] = r.value


class FirstWins(Latest):
    def put(self, records):
        for r in records:
            if r.key is None:
                raise DataError("no key")
            if r.value is None:
                self.table.pop(r.key, None)
            else:
                self.table.setdefault(r.key, r.value)


class KeylessAccepted(Latest):
    def put(self, records):
        for r in records:
            if r.value is None:
                self.table.pop(r.key, None)
            else:
                self.table[r.key] = r.value


class WrongError(Latest):
    def put(self, records):
        if any(r.key is None for r in records):
            raise ValueError("no key")
        super().put(records)


def test_a_right_sink_task_passes():
    """Latest values, tombstones, an unknown tombstone and a keyless record, all as specified."""
    assert check("08.b", Latest).points == 6


@pytest.mark.parametrize(("cls", "points", "why"), [
    (NoTombstones, 4, "with a tombstone"),
    (DelStrict, 5, "KeyError"),
    (FirstWins, 2, "after one batch"),
    (KeylessAccepted, 5, "accepted a record whose key is None"),
    (WrongError, 5, "not DataError"),
    (dict, 0, "expected a SinkTask class"),
])
def test_wrong_sink_tasks_lose_points(cls, points, why):
    """Tombstones stored as None, del on an unknown key, first value kept, keyless records
    accepted or refused with the wrong error: each loses its item."""
    result = check("08.b", cls)
    assert result.points == points, str(result)
    assert why in result.reason


def test_hidden_batches_have_a_tombstone_an_unknown_tombstone_and_a_keyless_record():
    """The check's records cover what the question promises."""
    flat = [r for batch in ex08.BATCHES for r in batch]
    seen: set = set()
    kinds = set()
    for r in flat:
        if r.value is None:
            kinds.add("tombstone" if r.key in seen else "unknown tombstone")
        seen.add(r.key)
    assert kinds == {"tombstone", "unknown tombstone"}
    assert [r.key for r in ex08.KEYLESS] == [None]


# --- 08.c -----------------------------------------------------------------------------------------


def prediction(default_s=361, zero_s=61, counts=None):
    counts = counts or {"8083": 3, "8084": 3}
    return {300_000: {"moved_at_s": default_s, "tasks_after": counts},
            0: {"moved_at_s": zero_s, "tasks_after": counts}}


def test_the_facts_come_from_a_run_made_at_check_time():
    """Crash at 50 s: the group notices at 61 s; the default delay adds 300 s."""
    facts = ex08.failover_facts(300_000)
    assert facts["tasks_after"] == {"8083": 3, "8084": 3}
    # the task configs travel through the config topic: a few ms after the rebalance
    assert facts["moved_at_s"] == pytest.approx(361.0, abs=0.05)
    assert ex08.failover_facts(0)["moved_at_s"] == pytest.approx(61.0, abs=0.05)


@pytest.mark.parametrize(("answer", "points", "why"), [
    (prediction(), 5, "all visible checks passed"),
    (prediction(default_s=350), 3, "delay 300000: you predicted 350 s"),
    (prediction(zero_s=50), 4, "delay 0: you predicted 50 s"),
    (prediction(default_s=61), 3, "delay 300000"),
    (prediction(counts={"8083": 4, "8084": 2}), 4, "you gave"),
    ({"300000": {}}, 0, "failover_prediction[300000]"),
])
def test_predictions_are_compared_with_the_simulation(answer, points, why):
    """Forgetting the session timeout, or the delay, or how lost tasks spread costs points."""
    result = check("08.c", answer)
    assert result.points == points, str(result)
    assert why in result.reason


# --- the wire ---------------------------------------------------------------------------------


def test_sink_records_cross_the_wire_as_data_and_malformed_ones_are_refused():
    """08.b's records reach a learner's task in another process field by field (no schemas);
    a sink record with missing or mistyped fields is a WireError, never a half-built record."""
    from sim.connect import SinkRecord
    from sim.grading.wire import WireError, decode, encode, loads

    record = SinkRecord("prices", kafka_partition=0, key="apple", value={"p": 3},
                        kafka_offset=7, timestamp=11)
    data = loads(json.dumps(encode([record, ex08.KEYLESS[0]], lambda v: 1 / 0)))
    assert decode(data, lambda d: 1 / 0) == [record, ex08.KEYLESS[0]]
    for bad in ({"$": "sinkrecord", "v": ["t", 0, "k", "v", 1]},
                {"$": "sinkrecord", "v": ["t", "0", "k", "v", 1, None]},
                {"$": "sinkrecord", "v": "t"}):
        with pytest.raises(WireError):
            decode(bad, lambda d: 1 / 0)


def test_a_submission_cannot_write_the_expected_table_itself(tmp_path):
    """08.a hands the learner's function the database's path: a submission that fills the table
    itself (and returns configs whose sink writes elsewhere) must not earn the rows' points.
    In the batch grader the function runs jailed in its own folder, so the write fails."""
    nb = nbformat.read(SOLUTION, as_version=4)
    [cell] = [c for c in nb.cells if c.cell_type == "code"
              and c.source.startswith("def pipeline_configs")]
    cell.source = '''def pipeline_configs(input_file, database):
    import sqlite3
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE signups (email TEXT, source TEXT)")
        db.executemany("INSERT INTO signups VALUES (?, ?)",
                       [(line.strip(), "signup-form") for line in open(input_file)])
    return [{"name": "src", "config": {"connector.class": "FileStreamSource",
                                       "file": input_file, "topic": "signups"}},
            {"name": "db", "config": {"connector.class": "FileStreamSink",
                                      "file": input_file + ".out", "topics": "signups"}}]
'''
    path = tmp_path / "cheat.ipynb"
    nbformat.write(nb, path)
    result = by_question(grade_submission(path, timeout_s=180, cell_timeout_s=60))["08.a"]
    assert result[:2] == ("error", 0), result
    assert "OperationalError: unable to open database file" in result[3]
