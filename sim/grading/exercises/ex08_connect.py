"""Checks for exercise 08 (lesson "Kafka Connect"): a pipeline's configs, a sink task, failover.

08.a — ``pipeline_configs(input_file, database)`` returns the two request bodies
(``{"name", "config"}``) of a file → topic ``signups`` → SQLite pipeline whose table ``signups``
gets a column ``email`` (each line) and a column ``source`` (always ``signup-form``). The check
validates each config through the REST API in process (``PUT
/connector-plugins/{class}/config/validate``), creates both with ``POST /connectors``, runs the
pipeline on hidden lines (one appended while it runs) and compares the table with the rows those
lines must give.

08.b — ``LatestValueSinkTask``, a ``SinkTask`` that keeps the latest value of each key (what an
upsert into a keyed table does): a tombstone (null value) deletes the key, and a record without
a key is refused with ``DataError``. The check feeds it hidden batches of records.

08.c — a prediction of failover in distributed mode: three workers, a data generator with six
tasks, the worker on port 8085 crashes at 50 s. For ``scheduled.rebalance.max.delay.ms`` 300000
and 0: when its tasks start again, and how many tasks each survivor runs then. Compared with a
run of :func:`sim.lessons.connect.failover_run` made at check time.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sim.connect.errors import DataError
from sim.connect.records import SinkRecord
from sim.grading.answers import describe as _describe
from sim.grading.checklist import Checklist, LearnerError
from sim.grading.registry import question
from sim.lessons import connect as lc

EXERCISE = "08_connect"
HIDDEN_WHILE_GRADED = True  # the notebook never imports this module; it knows the answers

# 08.a -------------------------------------------------------------------------------------------
TOPIC = "signups"
ORIGIN = "signup-form"
SIGNUPS = ["ada@example.com", "grace@example.org", "linus@example.net", "barbara@example.com",
           "edsger@example.nl"]
LATE_SIGNUP = "margaret@example.com"  # appended while the pipeline runs

# 08.c -------------------------------------------------------------------------------------------
FAILOVER_TASKS = 6
FAILOVER_CRASH_PORT = 8085
FAILOVER_CRASH_MS = 50_000.0
FAILOVER_DELAYS = (300_000, 0)
TOLERANCE_S = 5.0

_HINTS = {
    "shape": ('Return a list of two request bodies, each {"name": ..., "config": {...}}, as you '
              "would POST them to /connectors."),
    "source": ("A FileStreamSource reads `file` into `topic`; the transform "
               "org.apache.kafka.connect.transforms.HoistField$Value with field=email turns each "
               "line into a struct with one field."),
    "origin": ("InsertField$Value with static.field and static.value adds a constant field; "
               "list both transforms in order: transforms=hoist,origin."),
    "sink": ("The JdbcSinkConnector needs topics, connection.url=jdbc:sqlite:<database> and "
             "auto.create=true to create the table from the records' schema."),
    "latest": "Keep a dict: self.table[record.key] = record.value, batch after batch, in order.",
    "tombstone": ("A record whose value is None is a tombstone: remove its key "
                  "(self.table.pop(record.key, None) also works for a key never seen)."),
    "keyless": "Raise DataError(...) for a record whose key is None, before storing anything.",
    "delay": ("The group notices a dead worker after session.timeout.ms (10 s, detected at the "
              "next heartbeat round); the lost tasks then wait scheduled.rebalance.max.delay.ms."),
    "spread": "The lost tasks go to the survivors with the fewest, one at a time.",
}


# --- 08.a ----------------------------------------------------------------------------------------


def _bodies(answer: Any) -> list[dict[str, Any]] | str:
    if not isinstance(answer, list | tuple) or len(answer) != 2:
        return f"expected a list of two request bodies, got {_describe(answer)}"
    for body in answer:
        if not (isinstance(body, Mapping) and isinstance(body.get("name"), str)
                and isinstance(body.get("config"), Mapping)):
            return f'each body must be {{"name": str, "config": {{...}}}}, got {_describe(body)}'
        if not isinstance(body["config"].get("connector.class"), str):
            return f"the config of {body['name']!r} has no connector.class"
    return [{"name": body["name"], "config": {str(k): v for k, v in body["config"].items()}}
            for body in answer]


PIPELINE_PLUGINS = ("FileStreamSource", "JdbcSink")
"""The only connectors 08.a's pipeline needs (by simple name, without ``Connector``)."""


def _outside_problem(body: dict[str, Any], input_file: Path, database: Path) -> str:
    """A problem if ``body`` would touch anything but the check's own two files, or ``""``.

    The check runs the configs in the grader's own process, where a FileStreamSource reads and
    a FileStreamSink or JDBC connector writes any path it is given: the pipeline may only read
    ``input_file`` and write ``database``.
    """
    config = body["config"]
    plugin = str(config["connector.class"]).rsplit(".", 1)[-1].removesuffix("Connector")
    if plugin not in PIPELINE_PLUGINS:
        return (f"{body['name']}: this pipeline is a FileStreamSource and a JdbcSinkConnector, "
                f"not {str(config['connector.class'])[:80]}")
    if plugin == "FileStreamSource":
        where, given, what = str(config.get("file", "")), input_file, "file is input_file"
    else:  # a URL that is not jdbc:sqlite:<path> opens nothing: the connector fails to start
        url = str(config.get("connection.url", ""))
        if not url.startswith("jdbc:sqlite:"):
            return ""
        where, given = url.removeprefix("jdbc:sqlite:"), database
        what = "connection.url is jdbc:sqlite:<database>"
    if not where or Path(where).resolve() != given.resolve():
        return f"{body['name']}: its {what}, the path pipeline_configs was given"
    return ""


def expected_rows() -> list[tuple[str, str]]:
    """The rows the spec asks for, from the hidden lines."""
    return [(line, ORIGIN) for line in [*SIGNUPS, LATE_SIGNUP]]


@question("08.a", points=7, answer="pipeline_configs",
          title="Configure a file → SQLite pipeline", hint=_HINTS["source"])
def pipeline(answer: Any, sheet: Checklist) -> None:
    """Grade the configs by validating them, creating them and running the pipeline."""
    if not callable(answer):
        with sheet.item("pipeline_configs is a function (input_file, database)", points=7) as item:
            item.fail(f"expected a function, got {_describe(answer)}", _HINTS["shape"])
        return None
    folder = lc.workspace()
    input_file, database = folder / "signups.txt", folder / "signups.db"
    input_file.write_text("".join(f"{line}\n" for line in SIGNUPS), encoding="utf-8")
    with sheet.item("pipeline_configs(input_file, database) returns two request bodies "
                    '{"name", "config"}, each with a connector.class', points=1) as item:
        bodies = _bodies(answer(str(input_file), str(database)))
        if isinstance(bodies, str):
            item.fail(bodies, _HINTS["shape"])
    if not item.passed or isinstance(bodies, str):
        return sheet.stop("there are no configs to create")

    lab = lc.standalone_lab(seed=80)
    with sheet.item("both configs are valid (PUT /connector-plugins/{class}/config/validate "
                    "reports 0 errors) and POST /connectors creates them (201)",
                    points=2) as item:
        outside = next(filter(None, (_outside_problem(b, input_file, database)
                                     for b in bodies)), "")
        if outside:
            item.fail(outside, _HINTS["sink"])
        for body in [] if outside else bodies:
            config = {k: None if v is None else str(v) for k, v in body["config"].items()}
            plugin = str(config["connector.class"])
            checked = lab.rest.put(f"/connector-plugins/{plugin}/config/validate",
                                   json={"name": body["name"], **config})
            if checked.status_code != 200:
                item.fail(f"{body['name']}: validate answered {checked.status_code}: "
                          f"{checked.json().get('message', '')}", _HINTS["shape"])
                break
            errors = [f"{c['value']['name']}: {e}" for c in checked.json()["configs"]
                      for e in c["value"]["errors"]]
            if errors:
                item.fail(f"{body['name']}: {errors[0]}", _HINTS["sink"])
                break
            created = lab.rest.post("/connectors", json={"name": body["name"], "config": config})
            if created.status_code != 201:
                item.fail(f"{body['name']}: POST /connectors answered {created.status_code}: "
                          f"{created.json().get('message', '')}", _HINTS["shape"])
                break
    if not item.passed:
        return sheet.stop("the pipeline could not be created")

    types = {body["name"]: lab.rest.get(f"/connectors/{body['name']}").json()["type"]
             for body in bodies}
    source = next((b for b in bodies if types[b["name"]] == "source"), None)
    sink = next((b for b in bodies if types[b["name"]] == "sink"), None)
    with sheet.item(f"one source writes the file's lines to topic {TOPIC!r}, one sink reads it",
                    points=1) as item:
        if source is None or sink is None:
            item.fail(f"the connectors are of types {sorted(map(str, types.values()))}; "
                      "one source and one sink are needed", _HINTS["source"])
        elif source["config"].get("topic") != TOPIC or TOPIC not in str(
                sink["config"].get("topics", "")).split(","):
            item.fail(f"the source writes to {source['config'].get('topic')!r} and the sink "
                      f"reads {sink['config'].get('topics')!r}", _HINTS["source"])
    lab.run_until(15)
    lc.append_line(input_file, LATE_SIGNUP)
    lab.run_until(30)
    rows: list[tuple[Any, ...]] = []
    with sheet.item(f"the database has a table {TOPIC!r} with the columns email and source",
                    points=1) as item:
        try:
            table = lc.read_table(database, TOPIC)
        except Exception:
            states = lc.statuses(lab)
            failed = states[states.state == "FAILED"]
            why = (f"; {failed.connector.iloc[0]} is FAILED" if len(failed) else "")
            item.fail(f"there is no table {TOPIC!r} after 30 s{why}", _HINTS["sink"])
        else:
            if not {"email", "source"} <= set(table.columns):
                item.fail(f"the table's columns are {list(table.columns)}", _HINTS["origin"])
            else:
                rows = list(table[["email", "source"]].itertuples(index=False, name=None))
    with sheet.item("the table holds one row per line, in order, each with source "
                    f"{ORIGIN!r} (a line appended while it runs included)", points=2) as item:
        expected = expected_rows()
        if rows != expected:
            item.fail(f"the table holds {len(rows)} rows, {rows[:2]}…; expected "
                      f"{len(expected)} rows like {expected[0]}", _HINTS["origin"])
    return None


# --- 08.b ----------------------------------------------------------------------------------------


def _record(offset: int, key: Any, value: Any) -> SinkRecord:
    return SinkRecord("prices", kafka_partition=0, key=key, value=value, kafka_offset=offset)


BATCHES = [
    [_record(0, "apple", 3), _record(1, "pear", 5), _record(2, "apple", 4)],
    [_record(3, "plum", 7), _record(4, "pear", None), _record(5, "fig", 2)],
    [_record(6, "kiwi", None), _record(7, "apple", 6)],
]
KEYLESS = [_record(8, None, 9)]


def reference_table(batches: list[list[SinkRecord]]) -> dict[Any, Any]:
    """What an upsert-and-delete table holds after ``batches``."""
    table: dict[Any, Any] = {}
    for batch in batches:
        for record in batch:
            if record.value is None:
                table.pop(record.key, None)
            else:
                table[record.key] = record.value
    return table


def _is_data_error(exc: BaseException) -> bool:
    """The lab's ``DataError`` (or a subclass), raised here or (in the batch grader) in the
    learner's process; a learner's own class that is only named DataError is not one."""
    return isinstance(exc, DataError) or (
        isinstance(exc, LearnerError) and _DATA_ERROR in exc.kinds)


_DATA_ERROR = f"{DataError.__module__}.{DataError.__qualname__}"


@question("08.b", points=6, answer="LatestValueSinkTask",
          title="Write a SinkTask", hint=_HINTS["latest"])
def sink_task(answer: Any, sheet: Checklist) -> None:
    """Grade a SinkTask by putting hidden batches through it."""
    with sheet.item("LatestValueSinkTask is a class with start, put and snapshot, and it "
                    "starts", points=1) as item:
        task = None
        missing = [m for m in ("start", "put", "snapshot")
                   if not callable(getattr(answer, m, None))]
        if not isinstance(answer, type) or missing:
            item.fail(f"expected a SinkTask class with start, put and snapshot, got "
                      f"{_describe(answer)}")
        else:
            made = answer()
            made.start({"name": "prices-table"})
            task = made
    if task is None:
        return sheet.stop("there is no task to feed")
    with sheet.item("after the first batch each key holds its latest value", points=2) as item:
        task.put(list(BATCHES[0]))
        got = task.snapshot()
        if got != reference_table(BATCHES[:1]):
            item.fail(f"after one batch of 3 records the table is {_describe(got)}",
                      _HINTS["latest"])
    with sheet.item("a tombstone deletes its key; the other keys keep their latest values",
                    points=1) as item:
        task.put(list(BATCHES[1]))
        got = task.snapshot()
        if got != reference_table(BATCHES[:2]):
            item.fail(f"after the second batch (with a tombstone) the table is "
                      f"{_describe(got)}", _HINTS["tombstone"])
    with sheet.item("a tombstone for a key never seen is not an error", points=1) as item:
        task.put(list(BATCHES[2]))
        got = task.snapshot()
        if got != reference_table(BATCHES):
            item.fail(f"after the third batch the table is {_describe(got)}",
                      _HINTS["tombstone"])
    with sheet.item("a record without a key is refused with DataError", points=1) as item:
        try:
            task.put(list(KEYLESS))
        except Exception as exc:
            if not _is_data_error(exc):
                item.fail(f"put raised {str(exc)[:80] or type(exc).__name__}, not DataError",
                          _HINTS["keyless"])
        else:
            item.fail("put accepted a record whose key is None", _HINTS["keyless"])
    return None


# --- 08.c ----------------------------------------------------------------------------------------


def failover_facts(delay_ms: int) -> dict[str, Any]:
    """When the crashed worker's tasks start again, and how many tasks each survivor runs."""
    run = lc.failover_run(delay_ms, tasks=FAILOVER_TASKS, crash_port=FAILOVER_CRASH_PORT,
                          crash_ms=FAILOVER_CRASH_MS, end_ms=400_000, snapshot_s=(400,))
    moved = run.moved()
    owners = run.snapshots[400.0].str.rsplit(" on ", n=1).str[1]
    return {"moved_at_s": float(moved["restarted at (s)"].max()),
            "tasks_after": {str(w): int(n) for w, n in owners.value_counts().items()}}


def _number(value: Any) -> float | None:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return None


@question("08.c", points=5, answer="failover_prediction",
          title="Predict failover", hint=_HINTS["delay"])
def predict_failover(answer: Any, sheet: Checklist) -> None:
    """Grade the prediction against runs made now."""
    with sheet.item("failover_prediction has, for 300000 and for 0, a moved_at_s number and "
                    "tasks_after as {port: tasks}", points=1) as item:
        problem = ""
        if not isinstance(answer, Mapping):
            problem = f"expected a dict keyed by the delays 300000 and 0, got {_describe(answer)}"
        else:
            for delay in FAILOVER_DELAYS:
                entry = answer.get(delay)
                if not isinstance(entry, Mapping) or _number(entry.get("moved_at_s")) is None \
                        or not isinstance(entry.get("tasks_after"), Mapping):
                    problem = (f"failover_prediction[{delay}] must be {{'moved_at_s': seconds, "
                               f"'tasks_after': {{'8083': n, ...}}}}, got "
                               f"{_describe(entry)}")
                    break
        if problem:
            item.fail(problem)
    if not item.passed:
        return sheet.stop("the prediction could not be read")
    facts = {delay: failover_facts(delay) for delay in FAILOVER_DELAYS}
    for delay, points in zip(FAILOVER_DELAYS, (2, 1), strict=True):
        with sheet.item(f"with scheduled.rebalance.max.delay.ms={delay} the lost tasks start "
                        f"again when predicted (within {TOLERANCE_S:g} s)", points=points) as item:
            said = _number(answer[delay]["moved_at_s"])
            if said is None or abs(said - facts[delay]["moved_at_s"]) > TOLERANCE_S:
                item.fail(f"delay {delay}: you predicted {said:g} s; that is not when they "
                          "start again", _HINTS["delay"])
    with sheet.item("the survivors' task counts afterwards are right, for both delays",
                    points=1) as item:
        for delay in FAILOVER_DELAYS:
            said = {str(k).rsplit(":", 1)[-1]: v for k, v in answer[delay]["tasks_after"].items()}
            if said != facts[delay]["tasks_after"]:
                item.fail(f"delay {delay}: you gave {said}", _HINTS["spread"])
                break
    return None
