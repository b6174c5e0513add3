"""plugin.path: folders of Python modules scanned at worker start, next to the built-ins.

Sources: WorkerConfig plugin.path, PluginUtils (aliases: the simple class name and the name
without "Connector"), ConnectorPluginsResource, Plugins.newConnector's message for an unknown
class; the datagen connector (Confluent's kafka-connect-datagen config names).
"""

from __future__ import annotations

import itertools
import json
import sys
import textwrap

import pytest

from sim.connect import Worker, topic_records
from sim.errors import ConfigError
from sim.kernel import Kernel
from sim.producer import Producer
from tests.connect_support import WORKER, client, herder, run

MEMORY_SINK = '''
from sim.connect import SinkConnector, SinkTask
from sim.connect.config_def import ConfigDef

RECEIVED = []
FLUSHED = []
HEADERS = []


class MemorySinkConnector(SinkConnector):
    def version(self):
        return "2.5"

    def start(self, props):
        self.props = props

    def task_class(self):
        return MemorySinkTask

    def task_configs(self, max_tasks):
        return [dict(self.props) for _ in range(max_tasks)]

    def config_def(self):
        return ConfigDef().define("prefix", "STRING", "", "LOW", "Put before each value.")


class MemorySinkTask(SinkTask):
    def start(self, props):
        self.prefix = props.get("prefix", "")

    def put(self, records):
        RECEIVED.extend(self.prefix + str(r.value) for r in records)
        HEADERS.extend(r.headers for r in records)

    def flush(self, offsets):
        FLUSHED.append(dict(offsets))
'''


@pytest.fixture
def plugin_folder(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "memory.py").write_text(textwrap.dedent(MEMORY_SINK))
    return folder


def test_a_plugin_folder_adds_connectors_under_their_names_and_aliases(plugin_folder):
    h = herder(plugin_path=plugin_folder)
    c = client(h)
    plugins = c.get("/connector-plugins").json()
    assert {"class": "memory.MemorySinkConnector", "type": "sink", "version": "2.5"} in plugins
    h.kernel.cluster.create_topic("words", 1, 3)
    producer = Producer(h.kernel, {"acks": "all", "linger.ms": 0})
    for word in ("alpha", "beta"):
        producer.send("words", value=json.dumps({"schema": {"type": "string",
                                                            "optional": False},
                                                 "payload": word}).encode(),
                      headers=[("lang", b"en")] if word == "alpha" else None)
    response = c.post("/connectors", json={"name": "mem", "config": {
        "connector.class": "MemorySink", "topics": "words", "prefix": "> "}})
    assert response.status_code == 201, response.text
    run(h, 12_000)
    module = sys.modules[h.worker.plugins.connectors["memory.MemorySinkConnector"].__module__]
    assert module.RECEIVED == ["> alpha", "> beta"]
    assert module.HEADERS == [(("lang", b"en"),), ()]  # the producer's headers reach put()
    assert module.FLUSHED[-1] == {("words", 0): 2}  # flush(offsets) before the commit
    keys = c.get("/connector-plugins/memory.MemorySinkConnector/config").json()
    assert [k["name"] for k in keys] == ["prefix"]


def test_without_the_plugin_path_the_class_is_unknown(plugin_folder):
    c = client(herder())
    response = c.post("/connectors", json={"name": "mem", "config": {
        "connector.class": "MemorySink", "topics": "words"}})
    assert response.status_code == 400
    assert response.json()["message"].startswith(
        "Failed to find any class that implements Connector and which name matches MemorySink, "
        "available connectors are: PluginDesc{klass=class ")


def test_bad_plugin_paths_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="is not a folder"):
        Worker(Kernel(seed=1), {**WORKER, "plugin.path": str(tmp_path / "missing")})
    (tmp_path / "broken.py").write_text("import nothing_like_this\n")
    with pytest.raises(ConfigError, match=r"could not load .*broken.py: ModuleNotFoundError"):
        Worker(Kernel(seed=1), {**WORKER, "plugin.path": str(tmp_path)})


def test_the_worker_needs_its_converters():
    """WorkerConfig: key.converter and value.converter have no default."""
    with pytest.raises(ConfigError, match=r"Missing required configuration \"key\.converter\""):
        Worker(Kernel(seed=1), {"value.converter": WORKER["value.converter"]})


def test_datagen_is_reproducible_and_paced_by_max_interval():
    """Same seed, same records; the gap between records is at most max.interval."""
    def generate():
        h = herder(seed=4)
        client(h).post("/connectors", json={"name": "gen", "config": {
            "connector.class": "DatagenConnector", "kafka.topic": "users",
            "quickstart": "users", "max.interval": "100", "iterations": "50"}})
        run(h, 20_000)
        return [(r["key"], json.loads(r["value"])["payload"])
                for r in topic_records(h.kernel, "users")]
    first = generate()
    assert first == generate()
    assert len(first) == 50
    times = [value["registertime"] for _, value in first]
    assert all(0 <= b - a <= 100 for a, b in itertools.pairwise(times))
    assert {value["gender"] for _, value in first} <= {"MALE", "FEMALE", "OTHER"}
