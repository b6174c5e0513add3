"""Error handling: errors.tolerance, errors.retry.timeout, the sink dead letter queue with
__connect.errors.* headers, FAILED tasks with a trace, and restarts.

Sources: ConnectorConfig (errors.* names and defaults), RetryWithToleranceOperator (retriable
errors retried with back-off from 300 ms until the timeout), DeadLetterQueueReporter (header
names and order), AbstractStatus.State, KIP-298 and KIP-745.
"""

from __future__ import annotations

import itertools
import sys
import textwrap

import pytest

from sim.connect import topic_records
from sim.producer import Producer
from tests.connect_support import client, file_sink, herder, run

GOOD = b'{"schema":{"type":"string","optional":false},"payload":"%s"}'


def produce(h, values, topic="raw"):
    h.kernel.cluster.create_topic(topic, 1, 3)
    producer = Producer(h.kernel, {"acks": "all", "linger.ms": 0})
    for value in values:
        producer.send(topic, value=value)


@pytest.fixture
def bad_topic(tmp_path):
    h = herder()
    produce(h, [GOOD % b"ok1", b"not json", GOOD % b"ok2"])
    return h, client(h), tmp_path


def test_tolerance_all_skips_to_the_dlq_with_context_headers(bad_topic):
    h, c, tmp = bad_topic
    c.post("/connectors", json=file_sink("sink", tmp / "out.txt", topics="raw", **{
        "errors.tolerance": "all", "errors.deadletterqueue.topic.name": "dlq",
        "errors.deadletterqueue.context.headers.enable": "true"}))
    run(h, 12_000)
    assert (tmp / "out.txt").read_text() == "ok1\nok2\n"
    assert h.connector_status("sink")["tasks"][0]["state"] == "RUNNING"
    [dead] = topic_records(h.kernel, "dlq")
    assert dead["value"] == b"not json"  # the raw record, as it was in Kafka
    headers = dict(dead["headers"])
    assert [name for name, _ in dead["headers"]] == [
        f"__connect.errors.{n}" for n in (
            "topic", "partition", "offset", "connector.name", "task.id", "stage", "class.name",
            "exception.class.name", "exception.message", "exception.stacktrace")]
    assert {k: headers[f"__connect.errors.{k}"] for k in (
        "topic", "partition", "offset", "connector.name", "task.id", "stage", "class.name",
        "exception.class.name")} == {
        "topic": "raw", "partition": "0", "offset": "1", "connector.name": "sink",
        "task.id": "0", "stage": "VALUE_CONVERTER",
        "class.name": "org.apache.kafka.connect.json.JsonConverter",
        # DeadLetterQueueReporter: the exception's class, as Kafka's converter throws it
        "exception.class.name": "org.apache.kafka.connect.errors.DataException"}
    assert headers["__connect.errors.exception.message"].startswith(
        "Converting byte[] to Kafka Connect data failed")
    assert "Traceback" in headers["__connect.errors.exception.stacktrace"]
    assert h.kernel.cluster.topics["dlq"].partitions[0].replicas.__len__() == 3  # RF default 3


def test_the_dlq_has_no_headers_unless_enabled(bad_topic):
    h, c, tmp = bad_topic
    c.post("/connectors", json=file_sink("sink", tmp / "out.txt", topics="raw", **{
        "errors.tolerance": "all", "errors.deadletterqueue.topic.name": "dlq"}))
    run(h, 12_000)
    assert [(r["value"], r["headers"]) for r in topic_records(h.kernel, "dlq")] == [
        (b"not json", [])]


def test_tolerance_none_fails_the_task_with_a_trace_and_restart_recovers(bad_topic):
    """errors.tolerance=none (the default): the first bad record fails the task (FAILED, with a
    trace in the status); a restart reads it again and fails again; with tolerance all after a
    config update it goes on."""
    h, c, tmp = bad_topic
    c.post("/connectors", json=file_sink("sink", tmp / "out.txt", topics="raw"))
    run(h, 12_000)
    status = c.get("/connectors/sink/status").json()
    task = status["tasks"][0]
    assert task["state"] == "FAILED"
    assert list(task) == ["id", "state", "worker_id", "trace"]
    assert "Tolerance exceeded in error handler" in task["trace"]
    assert "DataError" in task["trace"]
    assert status["connector"]["state"] == "RUNNING"
    # the poll's records are converted before put: ok1 was not written either (as in
    # WorkerSinkTask.convertMessages, which runs before put)
    assert (tmp / "out.txt").read_text() == ""
    restarted = c.post("/connectors/sink/restart?includeTasks=true&onlyFailed=true").json()
    assert restarted["connector"]["state"] == "RUNNING"  # only what failed restarts
    assert [t["state"] for t in restarted["tasks"]] == ["RESTARTING"]
    run(h, 12_000)
    assert c.get("/connectors/sink/tasks/0/status").json()["state"] == "FAILED"
    config = {**c.get("/connectors/sink/config").json(), "errors.tolerance": "all"}
    assert c.put("/connectors/sink/config", json=config).status_code == 200
    run(h, 12_000)
    assert c.get("/connectors/sink/tasks/0/status").json()["state"] == "RUNNING"
    assert (tmp / "out.txt").read_text() == "ok1\nok2\n"


FLAKY = '''
from sim.connect.errors import RetriableError
from sim.connect.transforms import Transformation

ATTEMPTS = []


class Flaky(Transformation):
    """Fails with a retriable error twice, then passes records through."""

    def apply(self, record):
        ATTEMPTS.append(self.clock())
        if len(ATTEMPTS) <= 2:
            raise RetriableError("not yet")
        return record
'''


@pytest.mark.parametrize(("timeout_ms", "state", "attempts"), [
    ("0", "FAILED", 1), ("500", "FAILED", 2), ("2000", "RUNNING", 3)])
def test_errors_retry_timeout_retries_with_backoff(tmp_path, timeout_ms, state, attempts):
    """Retriable errors are retried after 300 ms, then 600 ms, ... while errors.retry.timeout
    allows (0: no retry)."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "flaky.py").write_text(textwrap.dedent(FLAKY))
    h = herder(plugin_path=plugins)
    module = sys.modules[h.worker.plugins.transforms["flaky.Flaky"].__module__]
    module.Flaky.clock = lambda self: h.kernel.now_ms
    module.ATTEMPTS.clear()
    produce(h, [GOOD % b"ok1"])
    client(h).post("/connectors", json=file_sink("sink", tmp_path / "out.txt", topics="raw", **{
        "transforms": "f", "transforms.f.type": "flaky.Flaky",
        "errors.retry.timeout": timeout_ms}))
    run(h, 12_000)
    assert h.connector_status("sink")["tasks"][0]["state"] == state
    times = module.ATTEMPTS
    assert len(times) == attempts
    assert [b - a for a, b in itertools.pairwise(times)] == [300, 600][:attempts - 1]


def test_a_connector_failing_to_start_is_failed_with_a_trace(tmp_path):
    """A connector whose start() raises is FAILED (with a trace) and gets no tasks."""
    h = herder()
    c = client(h)
    response = c.post("/connectors", json={"name": "j", "config": {
        "connector.class": "JdbcSinkConnector", "topics": "t",
        "connection.url": "mysql://elsewhere"}})
    assert response.status_code == 201
    status = c.get("/connectors/j/status").json()
    assert status["connector"]["state"] == "FAILED"
    assert "jdbc:sqlite" in status["connector"]["trace"]
    assert status["tasks"] == []


def test_a_source_tolerates_transform_errors_and_skips_the_record(tmp_path):
    """errors.tolerance=all on a source: a record a transformation rejects is skipped (sources
    have no DLQ); the next one goes on."""
    (tmp_path / "in.txt").write_text("a\nb\n")
    h = herder()
    config = {"connector.class": "FileStreamSource", "file": str(tmp_path / "in.txt"),
              "topic": "t", "transforms": "ins",
              "transforms.ins.type": "org.apache.kafka.connect.transforms.InsertField$Value",
              "transforms.ins.static.field": "f", "transforms.ins.static.value": "v"}
    client(h).post("/connectors", json={"name": "strict", "config": config})
    client(h).post("/connectors", json={"name": "lenient", "config": {
        **config, "topic": "t2", "errors.tolerance": "all"}})
    run(h, 2_000)
    assert h.connector_status("strict")["tasks"][0]["state"] == "FAILED"
    assert "Only Struct objects supported for [field insertion]" in (
        h.connector_status("strict")["tasks"][0]["trace"])
    assert h.connector_status("lenient")["tasks"][0]["state"] == "RUNNING"
    assert "t2" not in h.kernel.cluster.topics  # both lines skipped, nothing produced


PICKY_SINK = '''
from sim.connect import SinkConnector, SinkTask

WRITTEN = []


class PickySinkConnector(SinkConnector):
    def start(self, props):
        self.props = props

    def task_class(self):
        return PickySinkTask

    def task_configs(self, max_tasks):
        return [dict(self.props)]


class PickySinkTask(SinkTask):
    """Writes values it likes; reports the others to the errant record reporter (KIP-610)."""

    def put(self, records):
        report = self.context.errant_record_reporter()
        for record in records:
            if record.value == "bad":
                report(record, ValueError("bad value"))
            else:
                WRITTEN.append(record.value)
'''


def test_an_errant_record_reported_in_put_names_sink_task_as_its_class(tmp_path):
    """A record a sink task reports from ``put`` (KIP-610) goes to the DLQ with stage TASK_PUT
    and ``SinkTask`` as the executing class, whichever task reported it
    (``WorkerErrantRecordReporter.report``: ``executeFailed(context, Stage.TASK_PUT,
    SinkTask.class, error)``); the other records are written."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "picky.py").write_text(textwrap.dedent(PICKY_SINK))
    h = herder(plugin_path=plugins)
    module = sys.modules[h.worker.plugins.connectors["picky.PickySinkConnector"].__module__]
    module.WRITTEN.clear()
    produce(h, [b"good", b"bad", b"fine"])
    client(h).post("/connectors", json={"name": "picky", "config": {
        "connector.class": "picky.PickySinkConnector", "topics": "raw",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "errors.tolerance": "all", "errors.deadletterqueue.topic.name": "dlq",
        "errors.deadletterqueue.context.headers.enable": "true"}})
    run(h, 12_000)
    assert module.WRITTEN == ["good", "fine"]
    [dead] = topic_records(h.kernel, "dlq")
    headers = dict(dead["headers"])
    assert (dead["value"], headers["__connect.errors.stage"],
            headers["__connect.errors.class.name"],
            headers["__connect.errors.exception.class.name"]) == (
        b"bad", "TASK_PUT", "org.apache.kafka.connect.sink.SinkTask", "builtins.ValueError")
