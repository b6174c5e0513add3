"""Kafka's quickstart on real files: FileStreamSource → topic connect-test → FileStreamSink.

Sources: config/connect-standalone.properties, connect-file-source.properties,
connect-file-sink.properties and docs/quickstart.html; FileStreamSourceConnector (one task) and
FileStreamSourceTask (complete lines only, offsets {"filename"} → {"position"}, restart skips
``position`` bytes).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.connect import standalone, topic_records
from sim.kernel import Kernel
from tests.connect_support import client, file_source, herder, run

WORKER_PROPERTIES = """\
# the non-comment lines of Kafka's config/connect-standalone.properties
bootstrap.servers=localhost:9092
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
offset.storage.file.filename=connect.offsets
offset.flush.interval.ms=10000
"""
SOURCE_PROPERTIES = """\
name=local-file-source
connector.class=FileStreamSource
tasks.max=1
file=test.txt
topic=connect-test
"""
SINK_PROPERTIES = """\
name=local-file-sink
connector.class=FileStreamSink
tasks.max=1
file=test.sink.txt
topics=connect-test
"""


@pytest.fixture
def quickstart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "connect-standalone.properties").write_text(WORKER_PROPERTIES)
    (tmp_path / "connect-file-source.properties").write_text(SOURCE_PROPERTIES)
    (tmp_path / "connect-file-sink.properties").write_text(SINK_PROPERTIES)
    (tmp_path / "test.txt").write_text("foo\nbar\n")
    return tmp_path


def start(kernel):
    return standalone(kernel, "connect-standalone.properties", "connect-file-source.properties",
                      "connect-file-sink.properties")


def values(kernel, topic="connect-test"):
    return [r["value"] for r in topic_records(kernel, topic)]


def test_quickstart_files_topic_and_offsets(quickstart):
    """test.txt → connect-test (JsonConverter envelopes) → test.sink.txt; the offset file holds
    {"position": 8} for foo\\nbar\\n once offset.flush.interval.ms has passed."""
    kernel = Kernel(seed=1)
    herder_ = start(kernel)
    kernel.run(until_ms=5_000)
    assert values(kernel) == [b'{"schema":{"type":"string","optional":false},"payload":"foo"}',
                              b'{"schema":{"type":"string","optional":false},"payload":"bar"}']
    assert (quickstart / "test.sink.txt").read_text() == "foo\nbar\n"
    assert not (quickstart / "connect.offsets").exists()  # not flushed yet
    kernel.run(until_ms=10_500)
    stored = json.loads((quickstart / "connect.offsets").read_text())
    assert stored == {'["local-file-source",{"filename":"test.txt"}]': {"position": 8}}
    with (quickstart / "test.txt").open("a") as f:
        f.write("Another line\n")
    kernel.run(until_ms=15_000)
    assert (quickstart / "test.sink.txt").read_text() == "foo\nbar\nAnother line\n"
    kernel.run(until_ms=21_000)
    assert herder_.connector_offsets("local-file-source") == {"offsets": [{
        "partition": {"filename": "test.txt"}, "offset": {"position": 21}}]}
    assert herder_.connector_offsets("local-file-sink")["offsets"][0]["offset"] == {
        "kafka_offset": 3}


def test_the_source_makes_one_task_whatever_tasks_max_says(tmp_path):
    """FileStreamSourceConnector.taskConfigs returns a single config; the sink makes tasks.max."""
    h = herder()
    c = client(h)
    c.post("/connectors", json=file_source("s", tmp_path / "in.txt", **{"tasks.max": "4"}))
    c.post("/connectors", json={"name": "k", "config": {
        "connector.class": "FileStreamSinkConnector", "topics": "connect-test",
        "file": str(tmp_path / "out.txt"), "tasks.max": "3"}})
    assert len(c.get("/connectors/s/tasks").json()) == 1
    assert [t["id"] for t in c.get("/connectors/k/status").json()["tasks"]] == [0, 1, 2]


def test_a_line_waits_for_its_terminator_and_crlf_counts_two(tmp_path):
    """Only complete lines are records; \\r\\n, \\r and \\n all end a line; positions count the
    characters up to just after the terminator."""
    path = tmp_path / "in.txt"
    path.write_bytes(b"a\r\nb\rc\nhalf")
    h = herder()
    client(h).post("/connectors", json=file_source("s", path, **{"value.converter":
                   "org.apache.kafka.connect.storage.StringConverter"}))
    run(h, 11_000)
    assert values(h.kernel) == [b"a", b"b", b"c"]
    assert h.connector_offsets("s")["offsets"][0]["offset"] == {"position": 7}
    with path.open("ab") as f:
        f.write(b"way\n")
    run(h, 11_000)
    assert values(h.kernel) == [b"a", b"b", b"c", b"halfway"]
    assert h.connector_offsets("s")["offsets"][0]["offset"] == {"position": 15}


def test_a_restart_resumes_after_the_last_flushed_offset(quickstart):
    """At least once: lines produced after the last offset flush are produced again by the next
    worker, lines before it are not."""
    kernel = Kernel(seed=1)
    start(kernel)
    kernel.run(until_ms=10_500)  # flushed: position 8
    with (quickstart / "test.txt").open("a") as f:
        f.write("baz\n")
    kernel.run(until_ms=13_000)  # baz produced, not flushed
    assert values(kernel)[-1].endswith(b'"payload":"baz"}')
    second = Kernel(seed=1)  # the worker process dies and starts again
    start(second)
    second.run(until_ms=5_000)
    assert [json.loads(v)["payload"] for v in values(second)] == ["baz"]


def test_a_missing_file_is_waited_for(tmp_path):
    """FileStreamSourceTask waits for the file to be created, then reads it."""
    h = herder()
    client(h).post("/connectors", json=file_source("s", tmp_path / "later.txt"))
    run(h, 3_000)
    assert "connect-test" not in h.kernel.cluster.topics
    assert h.connector_status("s")["tasks"][0]["state"] == "RUNNING"
    (tmp_path / "later.txt").write_text("x\n")
    run(h, 3_000)
    assert len(values(h.kernel)) == 1


def test_the_same_seed_gives_the_same_files_and_topic(tmp_path, monkeypatch):
    """Determinism: two runs of the quickstart give identical bytes."""
    results = []
    for run_dir in ("one", "two"):
        folder = tmp_path / run_dir
        folder.mkdir()
        monkeypatch.chdir(folder)
        (folder / "connect-standalone.properties").write_text(WORKER_PROPERTIES)
        (folder / "connect-file-source.properties").write_text(SOURCE_PROPERTIES)
        (folder / "connect-file-sink.properties").write_text(SINK_PROPERTIES)
        (folder / "test.txt").write_text("".join(f"line {i}\n" for i in range(500)))
        kernel = Kernel(seed=3)
        start(kernel)
        kernel.run(until_ms=30_000)
        results.append(((folder / "test.sink.txt").read_bytes(),
                        (folder / "connect.offsets").read_bytes(),
                        [(r["partition"], r["offset"], r["value"])
                         for r in topic_records(kernel, "connect-test")],
                        kernel.trace.to_frame().to_csv()))
    assert results[0] == results[1]
    assert results[0][0].count(b"\n") == 500


DETERMINISM = """
import hashlib, json, pathlib, sys
from sim.kernel import Kernel
from sim.connect import standalone, topic_records
d = pathlib.Path(sys.argv[1])
J = "org.apache.kafka.connect.json.JsonConverter"
k = Kernel(seed=2)
standalone(k, {"key.converter": J, "value.converter": J},
    {"name": "g", "connector.class": "DatagenConnector", "kafka.topic": "u",
     "iterations": "100", "max.interval": "50"},
    {"name": "s", "connector.class": "FileStreamSource", "file": str(d / "in.txt"),
     "topic": "t"},
    {"name": "k", "connector.class": "JdbcSinkConnector", "topics.regex": "u",
     "connection.url": f"jdbc:sqlite:{d / sys.argv[2]}", "auto.create": "true",
     "tasks.max": "2"})
k.run(until_ms=30000)
out = json.dumps([topic_records(k, "u"), topic_records(k, "t")], default=repr)
print(hashlib.sha256((out + k.trace.to_frame().to_csv()).encode()).hexdigest())
"""


def test_the_same_bytes_under_any_hash_seed(tmp_path):
    """Determinism across processes: PYTHONHASHSEED must not reach the output."""
    (tmp_path / "in.txt").write_text("".join(f"l{i}\n" for i in range(300)))
    root = Path(__file__).resolve().parents[1]
    digests = {subprocess.run([sys.executable, "-c", DETERMINISM, str(tmp_path), f"{seed}.db"],
                              capture_output=True, text=True, check=True, timeout=120,
                              env={"PYTHONPATH": str(root), "PYTHONHASHSEED": seed}
                              ).stdout for seed in ("0", "1", "4242")}
    assert len(digests) == 1
