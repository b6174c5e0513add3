"""The REST API over real HTTP (uvicorn on 127.0.0.1), checked from outside with the PyPI client
kafka-connect-py, with curl-style raw requests, and through ``python -m sim connect``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from kafka_connect import KafkaConnect

from sim.connect import serve
from sim.errors import ConfigError
from tests.connect_support import herder
from tests.test_cli_errors import assert_one_line_error, cli

ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def server(tmp_path):
    (tmp_path / "test.txt").write_text("foo\nbar\n")
    running = serve(herder(), port=0, speed=20)
    yield running, tmp_path
    running.stop()


def test_kafka_connect_py_drives_the_server(server):
    """create, list, status, pause/resume, restart (includeTasks=True on the wire), delete."""
    running, tmp = server
    kc = KafkaConnect(url=running.url)
    assert set(kc.get_cluster_info()) == {"version", "commit", "kafka_cluster_id"}
    info = kc.create_connector({"name": "src", "config": {
        "connector.class": "FileStreamSource", "file": str(tmp / "test.txt"),
        "topic": "connect-test"}})
    assert info["tasks"] == [{"connector": "src", "task": 0}]
    kc.create_connector({"name": "sink", "config": {
        "connector.class": "FileStreamSink", "file": str(tmp / "out.txt"),
        "topics": "connect-test"}})
    assert kc.list_connectors() == ["sink", "src"]
    assert kc.list_connectors(expand="status")["src"]["status"]["type"] == "source"
    out = tmp / "out.txt"
    # simulated time follows the wall clock, 20 times faster
    assert wait_for(lambda: out.exists() and out.read_text() == "foo\nbar\n")
    kc.pause_connector("src")
    assert kc.get_connector_status("src")["connector"]["state"] == "PAUSED"
    kc.resume_connector("src")
    assert kc.get_connector_status("src")["tasks"][0]["state"] == "RUNNING"
    restarted = kc.restart_connector("src", include_tasks=True)
    assert restarted["connector"]["state"] == "RESTARTING"
    kc.delete_connector("src")
    assert kc.list_connectors() == ["sink"]
    assert running.kernel.now_ms > 0


def test_raw_requests_over_http(server):
    """What curl sees: error bodies, trailing slashes, 204 without a body, Location."""
    running, tmp = server
    with httpx.Client(base_url=running.url) as http:
        missing = http.get("/connectors/nope/")
        assert (missing.status_code, missing.json()) == (
            404, {"error_code": 404, "message": "Connector nope not found"})
        bad = http.post("/connectors", content=b"{oops",
                        headers={"Content-Type": "application/json"})
        assert bad.status_code == 400
        created = http.post("/connectors", json={"name": "s", "config": {
            "connector.class": "FileStreamSource", "file": str(tmp / "test.txt"),
            "topic": "t"}})
        assert created.status_code == 201
        assert created.headers["location"].endswith("/connectors/s")
        stop = http.put("/connectors/s/stop")
        assert (stop.status_code, stop.content) == (204, b"")


def test_serve_without_a_herder_starts_a_standalone_worker():
    """connect.serve(port=0) in a notebook: a fresh cluster, the port reported, stop() frees it."""
    running = serve(port=0)
    try:
        assert running.port > 0
        assert running.url == f"http://127.0.0.1:{running.port}"
        assert httpx.get(running.url + "/connectors").json() == []
        assert len(running.kernel.cluster.brokers) == 3
    finally:
        running.stop()
    assert "stopped" in repr(running)
    with pytest.raises(httpx.ConnectError):
        httpx.get(running.url + "/connectors")


def test_serve_rejects_bad_arguments_and_busy_ports():
    with pytest.raises(ConfigError, match="speed"):
        serve(herder(), port=0, speed=0)
    with pytest.raises(ConfigError, match="port"):
        serve(herder(), port=70_000)
    first = serve(herder(), port=0)
    try:
        with pytest.raises(ConfigError, match=f"Cannot listen on 127.0.0.1:{first.port}"):
            serve(herder(), port=first.port)
        with pytest.raises(ConfigError, match="already runs this kernel's clock"):
            serve(first.herder, port=0)
    finally:
        first.stop()


def test_cli_serve_prints_its_url_and_answers(tmp_path):
    """python -m sim connect serve --port 0: one line with the URL, then the API answers."""
    proc = subprocess.Popen([sys.executable, "-m", "sim", "connect", "serve", "--port", "0",
                             "--speed", "5"], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        assert httpx.get(url + "/connectors").json() == []
        assert httpx.get(url + "/health").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_cli_standalone_runs_the_quickstart(tmp_path):
    """python -m sim connect standalone worker.properties source.properties sink.properties."""
    (tmp_path / "test.txt").write_text("foo\nbar\n")
    (tmp_path / "worker.properties").write_text(
        "key.converter=org.apache.kafka.connect.json.JsonConverter\n"
        "value.converter=org.apache.kafka.connect.json.JsonConverter\n"
        "offset.storage.file.filename=connect.offsets\noffset.flush.interval.ms=10000\n")
    (tmp_path / "src.properties").write_text(
        "name=local-file-source\nconnector.class=FileStreamSource\ntasks.max=1\n"
        "file=test.txt\ntopic=connect-test\n")
    (tmp_path / "sink.properties").write_text(
        "name=local-file-sink\nconnector.class=FileStreamSink\ntasks.max=1\n"
        "file=test.sink.txt\ntopics=connect-test\n")
    proc = subprocess.run([sys.executable, "-m", "sim", "connect", "standalone",
                           "worker.properties", "src.properties", "sink.properties",
                           "--until-ms", "15000"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    statuses = json.loads(proc.stdout)
    assert [s["tasks"][0]["state"] for s in statuses.values()] == ["RUNNING", "RUNNING"]
    assert (tmp_path / "test.sink.txt").read_text() == "foo\nbar\n"
    assert json.loads((tmp_path / "connect.offsets").read_text()) == {
        '["local-file-source",{"filename":"test.txt"}]': {"position": 8}}


@pytest.mark.parametrize("args", [
    ["connect", "standalone", "missing.properties", "also-missing.properties"],
    ["connect", "serve", "--speed", "0"],
    ["connect", "standalone", "w.properties", "c.properties", "--until-ms", "nan"],
    # used to run for hours (a simulated day costs about a second)
    ["connect", "standalone", "w.properties", "c.properties", "--until-ms", "1e300"],
])
def test_cli_mistakes_are_one_error_line_and_exit_2(tmp_path, args):
    (tmp_path / "w.properties").write_text("key.converter=org.apache.kafka.connect.json."
                                           "JsonConverter\nvalue.converter=org.apache.kafka."
                                           "connect.json.JsonConverter\n")
    (tmp_path / "c.properties").write_text("name=x\nconnector.class=FileStreamSink\n")
    proc = subprocess.run([sys.executable, "-m", "sim", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: ")


@pytest.mark.parametrize(("offsets", "connector", "fragments"), [
    pytest.param(None, b"\xff\xfename=x\n", ["c.properties", "not a text file", "0xff"],
                 id="binary connector file"),
    pytest.param(b"{not json", None, ["offsets.json cannot be read as stored offsets"],
                 id="offsets file not JSON"),
    pytest.param(b"[1, 2]", None, ["offsets.json holds list"], id="offsets file a list"),
    pytest.param(b"\xff", None, ["offsets.json cannot be read"], id="offsets file binary"),
    pytest.param("folder", None, ["offsets.json is not a file"], id="offsets file a folder"),
])
def test_unreadable_files_are_one_error_line(tmp_path, offsets, connector, fragments):
    """FileOffsetBackingStore.load stops the worker with a ConnectException for a file it
    cannot read; these were tracebacks (UnicodeDecodeError, JSONDecodeError, IsADirectoryError)
    or a list taken for the offsets."""
    store = tmp_path / "offsets.json"
    if offsets == "folder":
        store.mkdir()
    elif offsets is not None:
        store.write_bytes(offsets)
    (tmp_path / "w.properties").write_text(
        "key.converter=org.apache.kafka.connect.storage.StringConverter\n"
        "value.converter=org.apache.kafka.connect.storage.StringConverter\n"
        f"offset.storage.file.filename={store}\n")
    (tmp_path / "c.properties").write_bytes(connector or b"name=x\nconnector.class="
                                            b"FileStreamSink\ntopics=t\n")
    assert_one_line_error(*cli("connect", "standalone", "w.properties", "c.properties",
                               "--until-ms", "100", cwd=tmp_path), *fragments)


def test_a_distributed_follower_over_http_forwards_to_the_leader(tmp_path):
    """Two workers of one group on one kernel; the follower is served over HTTP. A POST to it is
    forwarded to the leader, which writes the config topic; the pipeline then runs on the
    group, and the follower's status answer comes from the status topic."""
    from sim.connect import DistributedHerder
    from sim.kernel import Kernel
    from tests.connect_support import WORKER

    def props(port):
        return {**WORKER, "group.id": "connect-cluster", "config.storage.topic": "cfg",
                "offset.storage.topic": "off", "status.storage.topic": "st",
                "listeners": f"http://:{port}"}

    kernel = Kernel(seed=1)
    workers = [DistributedHerder(kernel, props(port)) for port in (8083, 8084)]
    kernel.run(until_ms=8_000)
    follower = next(w for w in workers if not w.is_leader())
    (tmp_path / "in.txt").write_text("foo\nbar\n")
    with serve(follower, port=0, speed=20) as running:
        kc = KafkaConnect(url=running.url)
        info = kc.create_connector({"name": "src", "config": {
            "connector.class": "FileStreamSource", "file": str(tmp_path / "in.txt"),
            "topic": "t"}})
        assert info["name"] == "src"

        def running_task() -> bool:  # 404 until the worker that runs it writes a status
            status = httpx.get(f"{running.url}/connectors/src/status")
            return status.status_code == 200 and [t["state"] for t in status.json()["tasks"]] \
                == ["RUNNING"]

        assert wait_for(running_task)
        assert kc.list_connectors() == ["src"]
