"""The Connect REST API's contract: paths, status codes and bodies as Kafka's resources give them.

Sources: ``RootResource``, ``ConnectorsResource``, ``ConnectorPluginsResource`` and
``ConnectExceptionMapper`` (apache/kafka, connect/runtime/.../rest/), ``StandaloneHerder`` and
``AbstractHerder`` for the messages, KIP-745 (restart), KIP-875 (stop, offsets), KIP-1017
(health).
"""

from __future__ import annotations

import copy
import json

import pytest

from sim.consumer.group import group_coordinator
from tests.connect_support import client, file_sink, file_source, herder, run


@pytest.fixture
def api(tmp_path):
    (tmp_path / "test.txt").write_text("foo\nbar\n")
    h = herder()
    return h, client(h), tmp_path


def create(c, body):
    response = c.post("/connectors", json=body)
    assert response.status_code == 201, response.text
    return response


def test_root_gives_server_info_with_a_cluster_id_fixed_by_the_seed():
    """RootResource.serverInfo: version, commit, kafka_cluster_id (22 characters, like Kafka's)."""
    body = client(herder(seed=5)).get("/").json()
    assert list(body) == ["version", "commit", "kafka_cluster_id"]
    assert body["version"] == "4.0.0"
    assert len(body["kafka_cluster_id"]) == 22
    assert client(herder(seed=5)).get("/").json() == body
    assert client(herder(seed=6)).get("/").json()["kafka_cluster_id"] != body["kafka_cluster_id"]


def test_health_is_kip_1017s_healthy_status():
    """RootResource.healthCheck → WorkerStatus.healthy()."""
    response = client(herder()).get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "message": "Worker has completed startup "
                               "and is ready to handle requests."}


def test_create_is_201_with_location_and_connector_info(api):
    """ConnectorsResource.createConnector: Response.created(/connectors/<name>) + ConnectorInfo."""
    _h, c, tmp = api
    response = create(c, file_source("local-file-source", tmp / "test.txt", **{"tasks.max": 3}))
    assert response.headers["location"].endswith("/connectors/local-file-source")
    body = response.json()
    assert list(body) == ["name", "config", "tasks", "type"]
    assert body["name"] == "local-file-source"
    assert body["config"]["name"] == "local-file-source"
    assert body["config"]["tasks.max"] == "3"  # a JSON number is kept as the string Kafka sees
    assert body["type"] == "source"
    # FileStreamSourceConnector makes one task whatever tasks.max says
    assert body["tasks"] == [{"connector": "local-file-source", "task": 0}]


def test_create_twice_is_409_already_exists(api):
    """StandaloneHerder.putConnectorConfig: AlreadyExistsException → 409."""
    _, c, tmp = api
    create(c, file_source("a", tmp / "test.txt"))
    response = c.post("/connectors", json=file_source("a", tmp / "other.txt"))
    assert response.status_code == 409
    assert response.json() == {"error_code": 409, "message": "Connector a already exists"}
    assert c.get("/connectors/a/config").json()["file"] == str(tmp / "test.txt")


def test_an_invalid_config_is_400_listing_every_error_and_nothing_is_created(api):
    """AbstractHerder.maybeAddConfigErrors: the count, one line per error, then the pointer."""
    _, c, _ = api
    response = c.post("/connectors", json={"name": "x", "config": {
        "connector.class": "FileStreamSource", "tasks.max": "zero"}})
    assert response.status_code == 400
    assert response.json() == {"error_code": 400, "message": (
        "Connector configuration is invalid and contains the following 2 error(s):\n"
        "Invalid value zero for configuration tasks.max: Not a number of type INT\n"
        "Missing required configuration \"topic\" which has no default value.\n"
        "You can also find the above list of errors at the endpoint "
        "`/connector-plugins/{connectorType}/config/validate`")}
    assert c.get("/connectors").json() == []


def test_a_missing_name_fails_validation_like_kafka(api):
    """createConnector replaces a missing name with "" and lets validation reject it."""
    _, c, tmp = api
    body = file_source("ignored", tmp / "test.txt")
    del body["name"]
    response = c.post("/connectors", json=body)
    assert response.status_code == 400
    assert "Invalid value  for configuration name: String may not be empty" in (
        response.json()["message"])


def test_a_name_with_control_characters_fails_validation_like_kafka(api):
    """ConnectorConfig's name: NonEmptyStringWithoutControlChars. A newline or NUL in a name
    was accepted, and broke every line of output naming the connector."""
    h, c, tmp = api
    response = c.post("/connectors", json=file_source("bad\nna\x00me", tmp / "test.txt"))
    assert response.status_code == 400
    assert ("Invalid value bad\nna\x00me for configuration name: String may not contain "
            "control sequences but had the following ASCII chars: 10, 0") in (
        response.json()["message"])
    assert h.connectors() == []


@pytest.mark.parametrize(("name", "location"), [
    ("café", "/connectors/caf%C3%A9"),
    ("名前", "/connectors/%E5%90%8D%E5%89%8D"),
    ("a b?c", "/connectors/a%20b%3Fc"),
    ("x:y@z", "/connectors/x:y@z"),
])
def test_location_of_a_name_outside_ascii_is_percent_encoded(api, name, location):
    """UriBuilder.path percent-encodes the name in Location. A non-ASCII name used to be a 500
    (a header is bytes) after the connector had been created."""
    h, c, tmp = api
    response = c.post("/connectors", json=file_source(name, tmp / "test.txt"))
    assert response.status_code == 201
    assert response.headers["Location"] == location
    assert c.get(location).json()["name"] == name
    assert c.put(location + "/config", json=response.json()["config"]).status_code == 200
    assert h.connectors() == [name]


def test_list_and_expand(api):
    """listConnectors: names; any ``expand`` gives an object keyed by name, unknown values
    ignored."""
    _, c, tmp = api
    create(c, file_source("b-src", tmp / "test.txt"))
    create(c, file_sink("a-sink", tmp / "out.txt"))
    assert c.get("/connectors").json() == ["a-sink", "b-src"]
    both = c.get("/connectors?expand=status&expand=info").json()
    assert set(both) == {"a-sink", "b-src"}
    assert both["a-sink"]["status"]["type"] == "sink"
    assert both["b-src"]["info"]["config"]["topic"] == "connect-test"
    only_status = c.get("/connectors", params={"expand": "status"}).json()
    assert set(only_status["b-src"]) == {"status"}
    assert c.get("/connectors?expand=bogus").json() == {"a-sink": {}, "b-src": {}}


def test_unknown_connector_is_404_with_error_code_everywhere(api):
    """NotFoundException → 404 {"error_code": 404, "message": "Connector x not found"}."""
    _, c, _ = api
    expected = {"error_code": 404, "message": "Connector x not found"}
    for method, path in [("GET", "/connectors/x"), ("GET", "/connectors/x/config"),
                         ("GET", "/connectors/x/status"), ("GET", "/connectors/x/tasks"),
                         ("PUT", "/connectors/x/pause"), ("PUT", "/connectors/x/resume"),
                         ("PUT", "/connectors/x/stop"), ("POST", "/connectors/x/restart"),
                         ("DELETE", "/connectors/x"), ("GET", "/connectors/x/offsets"),
                         ("DELETE", "/connectors/x/offsets"), ("GET", "/connectors/x/topics"),
                         ("PUT", "/connectors/x/topics/reset")]:
        response = c.request(method, path)
        assert (response.status_code, response.json()) == (404, expected), (method, path)
    response = c.post("/connectors/x/restart?includeTasks=true")
    assert response.json() == {"error_code": 404, "message": "Unknown connector: x"}
    response = c.patch("/connectors/x/config", json={"file": "y"})
    assert response.status_code == 404


def test_put_config_creates_201_then_updates_200(api):
    """putConnectorConfig: 201 + Location when created, 200 when replaced."""
    _h, c, tmp = api
    config = file_source("p", tmp / "test.txt")["config"]
    first = c.put("/connectors/p/config", json=config)
    assert first.status_code == 201
    assert first.headers["location"].endswith("/connectors/p")
    second = c.put("/connectors/p/config", json={**config, "topic": "other"})
    assert second.status_code == 200
    assert "location" not in second.headers
    assert second.json()["config"]["topic"] == "other"
    assert c.get("/connectors/p/config").json() == {**config, "topic": "other", "name": "p"}


def test_a_name_in_the_body_must_match_the_url(api):
    """checkAndPutConnectorConfigName: BadRequestException with Kafka's message."""
    _, c, tmp = api
    config = {**file_source("p", tmp / "test.txt")["config"], "name": "q"}
    response = c.put("/connectors/p/config", json=config)
    assert response.json() == {"error_code": 400, "message": "Connector name configuration (q) "
                               "doesn't match connector name in the URL (p)"}
    assert c.get("/connectors").json() == []


def test_patch_merges_and_null_removes_a_key(api):
    """patchConnectorConfig (KIP-477): a partial map; null deletes the key."""
    _, c, tmp = api
    create(c, file_source("p", tmp / "test.txt", **{"batch.size": "5"}))
    response = c.patch("/connectors/p/config", json={"batch.size": None, "topic": "t2"})
    assert response.status_code == 200
    config = c.get("/connectors/p/config").json()
    assert "batch.size" not in config
    assert config["topic"] == "t2"
    assert config["file"] == str(tmp / "test.txt")


def test_status_shape_and_field_order(api):
    """ConnectorStateInfo: name, connector {state, worker_id}, tasks [{id, state, worker_id}],
    type; no trace while nothing failed."""
    _h, c, tmp = api
    create(c, file_source("s", tmp / "test.txt"))
    raw = c.get("/connectors/s/status").text
    assert raw == json.dumps({"name": "s", "connector": {"state": "RUNNING",
                              "worker_id": "127.0.0.1:8083"},
                              "tasks": [{"id": 0, "state": "RUNNING",
                                         "worker_id": "127.0.0.1:8083"}],
                              "type": "source"}, separators=(",", ":"))
    assert c.get("/connectors/s/tasks/0/status").json() == {
        "id": 0, "state": "RUNNING", "worker_id": "127.0.0.1:8083"}


def test_task_endpoints(api):
    """getTaskConfigs, getTaskStatus (404 "No status found for task s-9"), restartTask (204;
    404 "Task s-9 not found"); a task id that is not a number matches no resource."""
    _, c, tmp = api
    create(c, file_source("s", tmp / "test.txt"))
    tasks = c.get("/connectors/s/tasks").json()
    assert tasks == [{"id": {"connector": "s", "task": 0},
                      "config": c.get("/connectors/s/config").json()}]
    assert c.get("/connectors/s/tasks/9/status").json() == {
        "error_code": 404, "message": "No status found for task s-9"}
    restart = c.post("/connectors/s/tasks/0/restart")
    assert (restart.status_code, restart.content) == (204, b"")
    assert c.post("/connectors/s/tasks/9/restart").json() == {
        "error_code": 404, "message": "Task s-9 not found"}
    assert c.get("/connectors/s/tasks/zero/status").status_code == 404


def test_pause_resume_are_202_and_change_connector_and_tasks(api):
    """pauseConnector / resumeConnector: Response.accepted() without a body."""
    h, c, tmp = api
    create(c, file_source("s", tmp / "test.txt"))
    pause = c.put("/connectors/s/pause")
    assert (pause.status_code, pause.content) == (202, b"")
    status = c.get("/connectors/s/status").json()
    assert [status["connector"]["state"], status["tasks"][0]["state"]] == ["PAUSED", "PAUSED"]
    run(h, 5_000)
    assert "connect-test" not in h.kernel.cluster.topics  # a paused source does not poll
    assert c.put("/connectors/s/resume").status_code == 202
    run(h, 5_000)
    status = c.get("/connectors/s/status").json()
    assert [status["connector"]["state"], status["tasks"][0]["state"]] == ["RUNNING", "RUNNING"]
    assert h.kernel.cluster.topics["connect-test"].partitions[0].log.high_watermark == 2


def test_stop_is_204_idempotent_and_drops_the_tasks(api):
    """KIP-875 stopConnector: 204; STOPPED with no tasks listed; resume starts them again."""
    _, c, tmp = api
    create(c, file_source("s", tmp / "test.txt"))
    for _ in range(2):
        response = c.put("/connectors/s/stop")
        assert (response.status_code, response.content) == (204, b"")
    status = c.get("/connectors/s/status").json()
    assert status["connector"]["state"] == "STOPPED"
    assert status["tasks"] == []
    assert c.get("/connectors/s/tasks").json() == []
    assert c.get("/connectors/s").json()["tasks"] == []
    assert c.put("/connectors/s/resume").status_code == 202
    status = c.get("/connectors/s/status").json()
    assert [status["connector"]["state"], [t["state"] for t in status["tasks"]]] == [
        "RUNNING", ["RUNNING"]]


def test_initial_state_on_create(api):
    """CreateConnectorRequest.initial_state (KIP-980): PAUSED or STOPPED, case-insensitive."""
    _, c, tmp = api
    create(c, {**file_source("p", tmp / "test.txt"), "initial_state": "paused"})
    create(c, {**file_source("s", tmp / "test.txt"), "initial_state": "STOPPED"})
    assert c.get("/connectors/p/status").json()["connector"]["state"] == "PAUSED"
    stopped = c.get("/connectors/s/status").json()
    assert (stopped["connector"]["state"], stopped["tasks"]) == ("STOPPED", [])
    bad = c.post("/connectors", json={**file_source("q", tmp / "test.txt"),
                                      "initial_state": "SLEEPING"})
    assert bad.status_code == 400
    assert "q" not in c.get("/connectors").json()


def test_restart_is_204_alone_and_202_with_kip_745_parameters(api):
    """restartConnector: 204 when includeTasks and onlyFailed are both false; otherwise 202 and
    the status with what is restarted shown as RESTARTING. Booleans are read like
    Boolean.valueOf: case-insensitive, anything else false."""
    _, c, tmp = api
    create(c, file_source("s", tmp / "test.txt"))
    plain = c.post("/connectors/s/restart")
    assert (plain.status_code, plain.content) == (204, b"")
    assert c.post("/connectors/s/restart?includeTasks=yes").status_code == 204
    full = c.post("/connectors/s/restart?includeTasks=True&onlyFailed=FALSE")
    assert full.status_code == 202
    body = full.json()
    assert body["connector"]["state"] == "RESTARTING"
    assert [t["state"] for t in body["tasks"]] == ["RESTARTING"]
    assert c.get("/connectors/s/status").json()["connector"]["state"] == "RUNNING"
    only_failed = c.post("/connectors/s/restart?includeTasks=true&onlyFailed=true").json()
    assert only_failed["connector"]["state"] == "RUNNING"
    assert [t["state"] for t in only_failed["tasks"]] == ["RUNNING"]


def test_delete_is_204_then_404(api):
    """destroyConnector: void → 204."""
    _, c, tmp = api
    create(c, file_source("s", tmp / "test.txt"))
    response = c.delete("/connectors/s")
    assert (response.status_code, response.content) == (204, b"")
    assert c.get("/connectors/s").status_code == 404
    assert c.delete("/connectors/s").status_code == 404
    assert c.get("/connectors").json() == []


def test_source_offsets_kip_875(api):
    """GET offsets any time; PATCH / DELETE only when STOPPED (StandaloneHerder's message), with
    Kafka's success messages; an empty PATCH is 400."""
    h, c, tmp = api
    create(c, file_source("s", tmp / "test.txt"))
    run(h, 11_000)  # past offset.flush.interval.ms
    partition = {"filename": str(tmp / "test.txt")}
    assert c.get("/connectors/s/offsets").json() == {
        "offsets": [{"partition": partition, "offset": {"position": 8}}]}
    change = {"offsets": [{"partition": partition, "offset": {"position": 4}}]}
    refused = c.patch("/connectors/s/offsets", json=change)
    assert refused.json() == {"error_code": 400, "message": (
        "Connectors must be in the STOPPED state before their offsets can be modified. This can "
        "be done for the specified connector by issuing a 'PUT' request to the "
        "'/connectors/s/stop' endpoint")}
    assert c.delete("/connectors/s/offsets").status_code == 400
    c.put("/connectors/s/stop")
    assert c.patch("/connectors/s/offsets", json={"offsets": []}).json() == {
        "error_code": 400,
        "message": "Partitions / offsets need to be provided for an alter offsets request"}
    altered = c.patch("/connectors/s/offsets", json=change)
    assert altered.json() == {"message": "The offsets for this connector have been altered "
                              "successfully"}
    assert c.get("/connectors/s/offsets").json()["offsets"][0]["offset"] == {"position": 4}
    # resuming from position 4 produces "bar" a second time
    c.put("/connectors/s/resume")
    run(h, 2_000)
    assert h.kernel.cluster.topics["connect-test"].partitions[0].log.high_watermark == 3
    c.put("/connectors/s/stop")
    reset = c.delete("/connectors/s/offsets")
    assert reset.json() == {"message": "The offsets for this connector have been reset "
                            "successfully"}
    assert c.get("/connectors/s/offsets").json() == {"offsets": []}


@pytest.mark.parametrize(("offset", "partition", "message"), [
    ({"position": "4"}, None, "The value for the 'position' key in the offset is expected to be "
                              "a Long value"),
    ({"position": 4.5}, None, "expected to be a Long value"),
    ({"position": 10**30}, None, "expected to be a Long value"),  # Jackson: a BigInteger
    ({"position": True}, None, "expected to be a Long value"),
    ({"position": -5}, None, "The value for the 'position' key in the offset should be a "
                             "non-negative value"),
    ({"pos": 4}, None, "Offset objects should either be null or contain the key 'position'"),
    ({"position": 4}, {"file": "x"}, "Partition objects should contain the key 'filename'"),
])
def test_file_source_refuses_offsets_it_could_not_resume_from(api, offset, partition, message):
    """FileStreamSourceConnector.alterOffsets: a position is a long ≥ 0 under a filename; its
    ConnectException is a 500 (ConnectExceptionMapper). These were stored: "4" and 4.5 failed
    the task on resume, 1e400 (infinity) made every later GET /offsets a 500."""
    h, c, tmp = api
    create(c, file_source("s", tmp / "test.txt"))
    run(h, 11_000)
    c.put("/connectors/s/stop")
    before = c.get("/connectors/s/offsets").json()
    partition = partition or {"filename": str(tmp / "test.txt")}
    response = c.patch("/connectors/s/offsets",
                       json={"offsets": [{"partition": partition, "offset": offset}]})
    assert response.status_code == 500
    assert message in response.json()["message"]
    assert c.get("/connectors/s/offsets").json() == before
    # a reset (null offset) of any partition is always allowed
    reset = c.patch("/connectors/s/offsets", json={"offsets": [{"partition": partition,
                                                                "offset": None}]})
    assert reset.status_code == 200


def test_file_source_reading_stdin_has_no_offsets_to_alter(api):
    """Without ``file`` the source reads stdin and tracks no offsets (alterOffsets refuses)."""
    _, c, _ = api
    create(c, {"name": "s", "config": {"connector.class": "FileStreamSource", "topic": "t"}})
    c.put("/connectors/s/stop")
    response = c.patch("/connectors/s/offsets", json={"offsets": [
        {"partition": {"filename": "x"}, "offset": {"position": 1}}]})
    assert response.status_code == 500
    assert response.json()["message"].startswith("Offsets cannot be modified if the 'file' "
                                                  "configuration is unspecified.")


def test_sink_offsets_are_the_consumer_groups(api):
    """Sink offsets use SinkUtils' keys (kafka_topic, kafka_partition, kafka_offset) and are the
    committed offsets of group connect-<name>; altering them makes the sink read again."""
    h, c, tmp = api
    create(c, file_source("src", tmp / "test.txt"))
    create(c, file_sink("sink", tmp / "out.txt"))
    run(h, 12_000)
    assert (tmp / "out.txt").read_text() == "foo\nbar\n"
    assert c.get("/connectors/sink/offsets").json() == {"offsets": [{
        "partition": {"kafka_topic": "connect-test", "kafka_partition": 0},
        "offset": {"kafka_offset": 2}}]}
    c.put("/connectors/sink/stop")
    run(h, 1_000)  # the task leaves the group
    bad = c.patch("/connectors/sink/offsets", json={"offsets": [{
        "partition": {"kafka_topic": "connect-test", "kafka_partition": -1},
        "offset": {"kafka_offset": 0}}]})
    assert bad.status_code == 400
    ok = c.patch("/connectors/sink/offsets", json={"offsets": [{
        "partition": {"kafka_topic": "connect-test", "kafka_partition": 0},
        "offset": {"kafka_offset": 1}}]})
    assert ok.status_code == 200, ok.text
    c.put("/connectors/sink/resume")
    run(h, 12_000)
    assert (tmp / "out.txt").read_text() == "foo\nbar\nbar\n"


def test_sink_offsets_reset_through_the_admin_requests(api):
    """Worker.modifySinkConnectorOffsets: a null offset is Admin.deleteConsumerGroupOffsets
    (OffsetDelete), DELETE is Admin.deleteConsumerGroups: tombstones go to __consumer_offsets,
    the group forgets them, and a resumed sink starts again from the beginning."""
    h, c, tmp = api
    create(c, file_source("src", tmp / "test.txt"))
    create(c, file_sink("sink", tmp / "out.txt"))
    run(h, 12_000)
    c.put("/connectors/sink/stop")
    run(h, 1_000)
    coordinator = group_coordinator(h.kernel)
    log = h.kernel.cluster.partition("__consumer_offsets",
                                     coordinator.partition_for("connect-sink")).log
    before = log.log_end_offset
    null = c.patch("/connectors/sink/offsets", json={"offsets": [{
        "partition": {"kafka_topic": "connect-test", "kafka_partition": 0}, "offset": None}]})
    assert null.json() == {"message": "The offsets for this connector have been altered "
                                      "successfully"}
    assert c.get("/connectors/sink/offsets").json() == {"offsets": []}
    assert list(log.column("value_size", before, log.log_end_offset)) == [-1]  # a tombstone
    assert c.delete("/connectors/sink/offsets").status_code == 200
    assert "connect-sink" not in coordinator.groups  # DeleteGroups removed it
    assert c.delete("/connectors/sink/offsets").status_code == 200  # idempotent
    c.put("/connectors/sink/resume")
    run(h, 12_000)
    assert (tmp / "out.txt").read_text() == "foo\nbar\nfoo\nbar\n"


def test_deleting_a_groups_offsets_is_refused_while_it_has_members(api):
    """OffsetDelete answers GROUP_SUBSCRIBED_TO_TOPIC and DeleteGroups NON_EMPTY_GROUP while a
    (zombie) sink task is still in the group: Worker's message, 500, nothing changed."""
    h, c, tmp = api
    create(c, file_source("src", tmp / "test.txt"))
    create(c, file_sink("sink", tmp / "out.txt"))
    run(h, 12_000)
    h.targets["sink"] = "STOPPED"  # as if the stop were recorded while a task still runs
    reset = c.delete("/connectors/sink/offsets")
    assert reset.status_code == 500
    assert reset.json()["message"].startswith(
        "Failed to reset consumer group offsets for connector sink either because its tasks "
        "haven't stopped completely yet")
    null = c.patch("/connectors/sink/offsets", json={"offsets": [{
        "partition": {"kafka_topic": "connect-test", "kafka_partition": 0}, "offset": None}]})
    assert null.status_code == 500
    assert "zombie sink tasks" in null.json()["message"]
    assert c.get("/connectors/sink/offsets").json()["offsets"][0]["offset"] == {
        "kafka_offset": 2}


def test_active_topics_and_reset(api):
    """getConnectorActiveTopics: {name: {"topics": [...]}}; reset is 202 (KIP-558)."""
    h, c, tmp = api
    create(c, file_source("s", tmp / "test.txt"))
    run(h, 2_000)
    assert c.get("/connectors/s/topics").json() == {"s": {"topics": ["connect-test"]}}
    response = c.put("/connectors/s/topics/reset")
    assert (response.status_code, response.content) == (202, b"")
    assert c.get("/connectors/s/topics").json() == {"s": {"topics": []}}


def test_connector_plugins(api):
    """ConnectorPluginsResource.listConnectorPlugins: connectors only unless
    connectorsOnly=false; each {class, type, version}."""
    _, c, _ = api
    plugins = c.get("/connector-plugins").json()
    assert {"class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
            "type": "source", "version": "4.0.0"} in plugins
    assert {p["type"] for p in plugins} == {"source", "sink"}
    everything = c.get("/connector-plugins?connectorsOnly=false").json()
    kinds = {p["class"]: p["type"] for p in everything}
    assert kinds["org.apache.kafka.connect.transforms.InsertField$Value"] == "transformation"
    assert kinds["org.apache.kafka.connect.json.JsonConverter"] == "converter"


def test_plugin_config_and_unknown_plugin(api):
    """GET /connector-plugins/{plugin}/config: ConfigKeyInfo list; 404 "Unknown plugin X."."""
    _, c, _ = api
    keys = c.get("/connector-plugins/FileStreamSource/config").json()
    assert [k["name"] for k in keys] == ["file", "topic", "batch.size"]
    batch = keys[2]
    assert (batch["type"], batch["default_value"], batch["required"]) == ("INT", "2000", False)
    assert c.get("/connector-plugins/Nope/config").json() == {
        "error_code": 404, "message": "Unknown plugin Nope."}


def test_validate_gives_config_infos(api):
    """PUT /connector-plugins/{plugin}/config/validate: 200 with ConfigInfos even when there are
    errors; a connector.class that does not match the path is 400."""
    _, c, _ = api
    response = c.put("/connector-plugins/FileStreamSinkConnector/config/validate",
                     json={"name": "v", "file": "x.txt"})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["name", "error_count", "groups", "configs"]
    assert body["name"] == "org.apache.kafka.connect.file.FileStreamSinkConnector"
    assert body["error_count"] == 2  # neither topics nor topics.regex
    assert body["groups"][:3] == ["Common", "Transforms", "Error Handling"]
    topics = next(x for x in body["configs"] if x["definition"]["name"] == "topics")
    assert topics["value"]["errors"] == ["Must configure one of topics or topics.regex"]
    assert list(topics["definition"]) == ["name", "type", "required", "default_value",
                                          "importance", "documentation", "group", "width",
                                          "display_name", "dependents", "order"]
    mismatch = c.put("/connector-plugins/FileStreamSink/config/validate",
                     json={"connector.class": "FileStreamSource"})
    assert mismatch.json() == {"error_code": 400, "message": "Included connector type "
                               "FileStreamSource does not match request type FileStreamSink"}


def test_validate_reads_numbers_as_java_parses_them(api):
    """ConfigDef.parseType: tasks.max is an INT (Integer.parseInt: no underscore), the dead
    letter queue's replication factor a SHORT (Short.parseShort: at most 32767) and
    errors.retry.timeout a LONG (Long.parseLong: no exponent), in SinkConnectorConfig."""
    _, c, _ = api
    body = c.put("/connector-plugins/FileStreamSink/config/validate", json={
        "name": "v", "topics": "t", "tasks.max": "1_0", "errors.retry.timeout": "1e3",
        "errors.deadletterqueue.topic.replication.factor": "40000",
        "errors.retry.delay.max.ms": "\t100\x00"}).json()
    errors = {x["definition"]["name"]: x["value"]["errors"] for x in body["configs"]
              if x["value"]["errors"]}
    assert errors == {
        "tasks.max": ["Invalid value 1_0 for configuration tasks.max: Not a number of type INT"],
        "errors.retry.timeout": ["Invalid value 1e3 for configuration errors.retry.timeout: Not "
                                 "a number of type LONG"],
        "errors.deadletterqueue.topic.replication.factor": [
            "Invalid value 40000 for configuration errors.deadletterqueue.topic.replication."
            "factor: Not a number of type SHORT"]}
    assert body["error_count"] == 3


def test_trailing_slashes_are_tolerated(api):
    """Jersey matches /connectors/ like /connectors (kafka-connect-api's exists() relies on it)."""
    _, c, tmp = api
    assert c.post("/connectors/", json=file_source("s", tmp / "test.txt")).status_code == 201
    assert c.get("/connectors/").json() == ["s"]
    assert c.get("/connectors/s/").json()["name"] == "s"
    assert c.get("/connectors/s/status/").status_code == 200


def test_unknown_paths_and_methods_get_error_bodies(api):
    """Jersey's WebApplicationException through ConnectExceptionMapper: an ErrorMessage body."""
    _, c, _ = api
    assert c.get("/nothing").json() == {"error_code": 404, "message": "HTTP 404 Not Found"}
    assert c.delete("/connectors").json() == {"error_code": 405,
                                              "message": "HTTP 405 Method Not Allowed"}


def _java_hash_set_bucket(method: str) -> int:
    """The bucket of a 16-slot java.util.HashSet holding ``method`` (String.hashCode, then
    HashMap.hash's spread of the high bits)."""
    h = 0
    for char in method:
        h = (31 * h + ord(char)) & 0xFFFFFFFF
    return (h ^ (h >> 16)) & 15


def test_options_answers_every_resource_with_its_methods_as_jersey_does(api):
    """Jersey's OptionsMethodProcessor with ModelProcessorUtil.getAllowedMethods: 200, ``Allow``
    with the resource's methods, OPTIONS, and HEAD beside GET, in the HashSet's order; the same
    list as a text/plain body, since Connect's RestServer turns WADL off
    (ConnectRestServerTest.testOptionsDoesNotIncludeWadlOutput). They answered 405."""
    _, c, tmp = api
    create(c, file_source("s", tmp / "test.txt"))
    expected = {
        "/": "HEAD,GET,OPTIONS",
        "/connectors": "HEAD,POST,GET,OPTIONS",
        "/connectors/s": "HEAD,DELETE,GET,OPTIONS",
        "/connectors/s/config": "HEAD,GET,OPTIONS,PUT,PATCH",
        "/connectors/s/offsets": "HEAD,DELETE,GET,OPTIONS,PATCH",
        "/connectors/s/tasks/0/restart": "POST,OPTIONS",
        "/connectors/nope/pause/": "OPTIONS,PUT",  # no lookup, and a trailing slash is fine
        "/connector-plugins/FileStreamSource/config/validate": "OPTIONS,PUT",
    }
    for path, allow in expected.items():
        response = c.options(path)
        assert response.status_code == 200, path
        assert response.headers["allow"] == allow, path
        assert response.headers["content-type"] == "text/plain", path
        assert response.text == allow.replace(",", ", "), path
        buckets = [_java_hash_set_bucket(m) for m in allow.split(",")]
        assert buckets == sorted(buckets), path


def test_options_allow_is_what_each_route_answers(api):
    """On every route of the app, a method is in ``Allow`` exactly when it is not a 405."""
    _, c, tmp = api
    create(c, file_source("s", tmp / "test.txt"))
    values = {"name": "s", "task": "0", "plugin": "FileStreamSource"}
    paths = {route.path.format(**values) for route in c.app.app.routes}
    assert len(paths) >= 19
    assert "/connectors/s/offsets" in paths
    for path in sorted(paths, key=lambda p: (-p.count("/"), p)):  # deletes come last
        allowed = set(c.options(path).headers["allow"].split(","))
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
            status = c.request(method, path).status_code
            assert (status != 405) == (method in allowed), (method, path, status)


@pytest.mark.parametrize(("accept", "content_type"), [
    ("application/json", "application/json"),
    ("text/plain;q=0.5, application/json", "application/json"),
    ("application/json;q=0.5, text/*", "text/plain"),
    ("text/html, */*", "text/html"),
])
def test_options_for_a_client_that_wants_no_text_is_empty(api, accept, content_type):
    """GenericOptionsInflector: the same ``Allow``, an empty body, the type the client put
    first; PlainTextOptionsInflector when that type is text/plain (or a range holding it)."""
    _, c, _ = api
    response = c.options("/connectors", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["allow"] == "HEAD,POST,GET,OPTIONS"
    assert response.headers["content-type"] == content_type
    assert response.text == ("" if content_type != "text/plain" else "HEAD, POST, GET, OPTIONS")


def test_options_on_an_unknown_path_is_404(api):
    """No resource matches, so no OPTIONS either (ConnectRestServerTest asks
    /connector-plugins/FileStreamSource/validate, which is not a path)."""
    _, c, _ = api
    for path in ("/nothing", "/connector-plugins/FileStreamSource/validate",
                 "/connectors/s/tasks/0"):
        response = c.options(path)
        assert (response.status_code, response.json()) == (
            404, {"error_code": 404, "message": "HTTP 404 Not Found"}), path


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain",
                                          "application/xml; charset=utf-8"])
def test_a_body_that_is_not_declared_json_is_415(api, content_type):
    """ConnectorsResource is @Consumes(APPLICATION_JSON): Jersey answers another declared type
    with 415 (the classic answer to curl --data without -H 'Content-Type: application/json');
    such a body used to be read as JSON and the connector created."""
    h, c, tmp = api
    body = json.dumps(file_source("s", tmp / "test.txt")).encode()
    response = c.post("/connectors", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert response.json() == {"error_code": 415, "message": "HTTP 415 Unsupported Media Type"}
    assert h.connectors() == []
    for declared in ("application/json; charset=UTF-8", None):
        headers = {"Content-Type": declared} if declared else {}
        name = f"s{len(h.connectors())}"
        response = c.post("/connectors", headers=headers,
                          content=json.dumps(file_source(name, tmp / "test.txt")).encode())
        assert response.status_code == 201, declared


def snapshot(h):
    return copy.deepcopy((h.configs, h.targets, h.tasks,
                          {n: h.connector_status(n) for n in h.connectors()}))


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/connectors", b"{not json"),
    ("POST", "/connectors", b"[1, 2]"),
    ("POST", "/connectors", b'"just a string"'),
    ("POST", "/connectors", b'{"name": "x", "config": ["a"]}'),
    ("POST", "/connectors", b'{"name": 5, "config": {}}'),
    ("POST", "/connectors", b'{"name": "x", "config": {"connector.class": {"a": 1}}}'),
    ("POST", "/connectors", b'{"name": "x", "config": {"connector.class": "NoSuchThing"}}'),
    ("POST", "/connectors", b'{"name": "x", "config": {"topic": "t"}}'),
    ("POST", "/connectors", b'{"name": "s", "config": {"connector.class": "FileStreamSink",'
                            b' "topics": "t", "topics.regex": "t.*"}}'),
    ("POST", "/connectors", b'{"name": "x", "config": {"connector.class": "FileStreamSink",'
                            b' "topics": "t", "transforms": "a", "transforms.a.type": "Nope"}}'),
    ("POST", "/connectors", b'{"name": "a/b", "config": {"connector.class": "FileStreamSink",'
                            b' "topics": "t"}}'),
    # a CLASS key: Kafka's validation refuses a class it cannot load (this was created, and
    # its task failed at start)
    ("POST", "/connectors", b'{"name": "x", "config": {"connector.class": "FileStreamSink",'
                            b' "topics": "t", "key.converter": "NoSuchConverter"}}'),
    ("PUT", "/connectors/s/config", b"\xff\xfe"),
    ("PUT", "/connectors/s/config", b'{"connector.class": "FileStreamSource", "topic": ""}'),
    ("PUT", "/connectors/s/config", b'{"tasks.max": "-1", "connector.class": "FileStreamSource",'
                                    b' "topic": "t"}'),
    ("PATCH", "/connectors/s/config", b'{"connector.class": "Nope"}'),
    ("PATCH", "/connectors/s/config", b"null"),
    ("PATCH", "/connectors/s/offsets", b'{"offsets": {"a": 1}}'),
    ("PATCH", "/connectors/s/offsets", b'{"offsets": [{"partition": {"filename": "x"}}]}'),
    ("PUT", "/connector-plugins/FileStreamSink/config/validate", b"[]"),
    # Jackson's parser refuses these (no NaN / Infinity, StreamReadConstraints' nesting depth):
    # deep nesting escaped as a RecursionError (a 500, and a traceback on the server's stderr)
    ("POST", "/connectors", b'{"name": "x", "config": {"connector.class": "FileStreamSource",'
                            b' "topic": "t", "batch.size": -Infinity}}'),
    pytest.param("POST", "/connectors", b"[" * 100_000 + b"]" * 100_000, id="deep array"),
    pytest.param("PUT", "/connectors/s/config", b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
                 id="deep object"),
])
def test_hostile_input_is_a_4xx_with_a_message_and_changes_nothing(api, method, path, body):
    """Bad JSON, wrong types, unknown classes, invalid values: 4xx, an error body, no change."""
    h, c, tmp = api
    create(c, file_source("s", tmp / "test.txt"))
    run(h, 1_000)
    before = snapshot(h)
    response = c.request(method, path, content=body,
                         headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    error = response.json()
    assert error["error_code"] == response.status_code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert snapshot(h) == before


def test_nan_is_not_json_so_a_stopped_connector_keeps_its_offsets(api):
    """Python's json reads NaN, Jackson does not: a NaN position used to be stored (200), and
    every later GET /offsets was a 500 (a JSON answer cannot hold NaN)."""
    h, c, tmp = api
    create(c, file_source("s", tmp / "test.txt"))
    run(h, 1_000)
    assert c.put("/connectors/s/stop").status_code == 204
    before = c.get("/connectors/s/offsets").json()
    response = c.patch("/connectors/s/offsets", content=json.dumps(
        {"offsets": [{"partition": {"filename": str(tmp / "test.txt")},
                      "offset": {"position": float("nan")}}]}),
        headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]
    assert c.get("/connectors/s/offsets").json() == before


def test_a_sink_may_subscribe_by_regex_and_the_dlq_may_not_be_an_input(api):
    """SinkConnectorConfig: topics.regex instead of topics; the DLQ topic may not be consumed."""
    h, c, tmp = api
    create(c, file_source("src", tmp / "test.txt", topic="logs-a"))
    create(c, {"name": "re", "config": {"connector.class": "FileStreamSink",
                                        "file": str(tmp / "out.txt"), "topics.regex": "logs-.*"}})
    run(h, 12_000)
    assert (tmp / "out.txt").read_text() == "foo\nbar\n"
    loop = c.post("/connectors", json=file_sink("loop", tmp / "x.txt", topics="a,dlq", **{
        "errors.deadletterqueue.topic.name": "dlq"}))
    assert loop.status_code == 400
    assert "The DLQ topic 'dlq' may not be included in the list of topics" in (
        loop.json()["message"])


def test_validate_an_unknown_plugin_is_400():
    response = client(herder()).put("/connector-plugins/Nope/config/validate", json={})
    assert response.status_code == 400
    assert response.json()["message"].startswith("Failed to find any class that implements "
                                                  "Connector and which name matches Nope")
