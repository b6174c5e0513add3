"""Distributed mode: workers sharing a group.id, internal topics, and KIP-415 failover.

Sources: DistributedConfig (group.id, the three storage topics, scheduled.rebalance.max.delay.ms
= 300000, session.timeout.ms = 10000), TopicAdmin.verifyTopicCleanupPolicyOnlyCompact and
KafkaConfigBackingStore (one partition), IncrementalCooperativeAssignor (lost assignments wait
for the delay, a returning worker gets its work back, delay 0 reassigns at once),
HerderRequestHandler (409 without a known leader).
"""

from __future__ import annotations

import json

import pytest

from sim.connect import topic_records
from sim.connect.distributed import DistributedHerder
from sim.connect.errors import ConnectRestError
from sim.errors import ConfigError
from sim.kernel import Kernel
from tests.connect_support import WORKER, client

SINK = {"connector.class": "FileStreamSink", "topics": "t", "tasks.max": "2"}


def props(port, **extra):
    return {**WORKER, "group.id": "connect-cluster", "config.storage.topic": "connect-configs",
            "offset.storage.topic": "connect-offsets", "status.storage.topic": "connect-status",
            "listeners": f"http://:{port}", **{k.replace("_", "."): str(v)
                                                for k, v in extra.items()}}


def cluster(tmp_path, **extra):
    kernel = Kernel(seed=1)
    a = DistributedHerder(kernel, props(8083, **extra))
    b = DistributedHerder(kernel, props(8084, **extra))
    kernel.run(until_ms=8_000)
    a.put_connector_config("sink", {**SINK, "file": str(tmp_path / "out.txt")}, False)
    kernel.run(until_ms=20_000)
    return kernel, a, b


def tasks(h):
    return [(t["state"], t["worker_id"]) for t in h.connector_status("sink")["tasks"]]


def test_connectors_and_tasks_are_balanced_separately(tmp_path):
    """assignConnectors / assignTasks: the connector goes to 8083 (ties by worker id), and the
    tasks are spread by task count alone: task 0 to 8083 too, task 1 to 8084."""
    _, a, b = cluster(tmp_path)
    assert a.assignment == ["connector:sink", "task:sink:0"]
    assert b.assignment == ["task:sink:1"]
    assert tasks(a) == [("RUNNING", "127.0.0.1:8083"), ("RUNNING", "127.0.0.1:8084")]
    assert b.connector_status("sink") == a.connector_status("sink")  # any worker answers


def test_a_dead_workers_tasks_wait_for_the_scheduled_delay(tmp_path):
    """Default scheduled.rebalance.max.delay.ms=300000: the lost task stays unassigned from the
    rebalance after the session timeout (10 s) for 5 minutes, then moves. Its status is the
    last one written to the status topic: RUNNING on the dead worker, which could not write
    another, until the new owner writes its own."""
    kernel, a, b = cluster(tmp_path)
    b.crash()  # at 20 s
    kernel.run(until_ms=45_000)
    assert tasks(a) == [("RUNNING", "127.0.0.1:8083"), ("RUNNING", "127.0.0.1:8084")]
    assert a.assignment == ["connector:sink", "task:sink:0"]
    kernel.run(until_ms=325_000)
    assert a.assignment == ["connector:sink", "task:sink:0"]
    kernel.run(until_ms=340_000)
    assert tasks(a) == [("RUNNING", "127.0.0.1:8083"), ("RUNNING", "127.0.0.1:8083")]
    timeline = a.timeline()
    moved = timeline[(timeline.unit == "sink-1") & (timeline.event == "started")]
    assert list(moved.worker) == ["127.0.0.1:8084", "127.0.0.1:8083"]
    assert 320_000 <= moved.time_ms.iloc[1] <= 335_000


def test_with_no_delay_the_tasks_move_at_the_next_rebalance(tmp_path):
    kernel, a, b = cluster(tmp_path, scheduled_rebalance_max_delay_ms=0)
    b.crash()
    kernel.run(until_ms=29_000)
    assert tasks(a)[1] == ("RUNNING", "127.0.0.1:8084")  # the session has not expired yet
    kernel.run(until_ms=40_000)
    assert tasks(a) == [("RUNNING", "127.0.0.1:8083"), ("RUNNING", "127.0.0.1:8083")]


def test_a_worker_back_within_the_delay_gets_its_tasks_back_when_it_ends(tmp_path):
    """handleLostAssignments: the restarted worker joins empty, so it is a candidate; the lost
    task still waits for the delay, then goes to the candidate rather than to the busiest."""
    kernel, a, b = cluster(tmp_path)
    b.crash()  # at 20 s; the group notices at about 30 s
    kernel.run(until_ms=60_000)
    back = DistributedHerder(kernel, props(8084))  # the same worker, restarted
    kernel.run(until_ms=80_000)
    assert back.assignment == []
    assert "task:sink:1" not in a.assignment
    kernel.run(until_ms=340_000)
    assert back.assignment == ["task:sink:1"]
    assert tasks(a) == [("RUNNING", "127.0.0.1:8083"), ("RUNNING", "127.0.0.1:8084")]


def test_a_new_worker_gets_its_share_through_revocation(tmp_path):
    """performTaskRevocation: one worker runs a connector with 4 tasks; a second joins empty.
    Tasks above the new ceiling (2) are revoked in one rebalance and handed to the newcomer in
    the follow-up one; the connector stays (ceiling 1); nothing else stops."""
    kernel = Kernel(seed=1)
    a = DistributedHerder(kernel, props(8083))
    kernel.run(until_ms=8_000)
    a.put_connector_config("sink", {**SINK, "tasks.max": "4",
                                    "file": str(tmp_path / "out.txt")}, False)
    kernel.run(until_ms=20_000)
    assert a.assignment == ["connector:sink"] + [f"task:sink:{i}" for i in range(4)]
    b = DistributedHerder(kernel, props(8084))
    kernel.run(until_ms=40_000)
    assert a.assignment == ["connector:sink", "task:sink:2", "task:sink:3"]
    assert b.assignment == ["task:sink:0", "task:sink:1"]
    timeline = a.timeline()
    stopped = timeline[timeline.event == "stopped"]
    assert list(stopped.unit) == ["sink-0", "sink-1"]  # only what moved


def test_internal_topics_must_be_compacted_and_the_config_topic_single(tmp_path):
    kernel = Kernel(seed=1)
    kernel.cluster.create_topic("connect-configs", 1, 3, {"cleanup.policy": "delete"})
    with pytest.raises(ConfigError, match=r"required to have 'cleanup\.policy=compact'"):
        DistributedHerder(kernel, props(8083))
    other = Kernel(seed=1)
    other.cluster.create_topic("connect-configs", 2, 3, {"cleanup.policy": "compact"})
    with pytest.raises(ConfigError, match=r"single partition .* found 2 partitions\."):
        DistributedHerder(other, props(8083))
    fresh = Kernel(seed=1)
    DistributedHerder(fresh, props(8083))
    topics = fresh.cluster.topics
    assert [len(topics[t].partitions) for t in ("connect-configs", "connect-offsets",
                                                  "connect-status")] == [1, 25, 5]
    assert {topics[t].config["cleanup.policy"] for t in topics if t.startswith("connect-")} == {
        "compact"}


def test_group_id_and_storage_topics_are_required():
    with pytest.raises(ConfigError, match=r'Missing required configuration "group\.id"'):
        DistributedHerder(Kernel(seed=1), {**WORKER, "config.storage.topic": "c",
                                           "offset.storage.topic": "o",
                                           "status.storage.topic": "s"})


def test_rest_writes_are_409_until_the_group_has_a_leader(tmp_path):
    """HerderRequestHandler: no known leader (a rebalance under way) → 409."""
    kernel = Kernel(seed=1)
    a = DistributedHerder(kernel, props(8083))
    c = client(a)
    body = {"name": "sink", "config": {**SINK, "file": str(tmp_path / "out.txt")}}
    early = c.post("/connectors", json=body)
    assert early.json() == {"error_code": 409, "message": (
        "Cannot complete request momentarily due to no known leader URL, likely because a "
        "rebalance was underway.")}
    kernel.run(until_ms=8_000)
    assert c.post("/connectors", json=body).status_code == 201


def test_the_pipeline_keeps_flowing_after_failover(tmp_path):
    """File → topic → file across two workers; the worker running the source dies; its work
    moves (delay 0) and lines written afterwards still arrive, resuming from the offsets the
    dead worker had flushed to the shared offset store."""
    kernel = Kernel(seed=3)
    a = DistributedHerder(kernel, props(8083, scheduled_rebalance_max_delay_ms=0))
    b = DistributedHerder(kernel, props(8084, scheduled_rebalance_max_delay_ms=0))
    kernel.run(until_ms=8_000)
    (tmp_path / "in.txt").write_text("one\ntwo\n")
    a.put_connector_config("src", {"connector.class": "FileStreamSource", "topic": "t",
                                   "file": str(tmp_path / "in.txt")}, False)
    a.put_connector_config("sink", {**SINK, "tasks.max": "1",
                                    "file": str(tmp_path / "out.txt")}, False)
    kernel.run(until_ms=30_000)
    assert (tmp_path / "out.txt").read_text() == "one\ntwo\n"
    source_owner = a if "task:src:0" in a.assignment else b
    survivor = b if source_owner is a else a
    source_owner.crash()
    with (tmp_path / "in.txt").open("a") as f:
        f.write("three\n")
    kernel.run(until_ms=80_000)
    assert survivor.connector_status("src")["tasks"][0]["worker_id"] == \
        survivor.worker.worker_id
    assert (tmp_path / "out.txt").read_text().splitlines()[-1] == "three"
    assert set((tmp_path / "out.txt").read_text().splitlines()) == {"one", "two", "three"}
    assert source_owner.connector_active_topics("src") == {"src": {"topics": ["t"]}}


def _keys(kernel, topic):
    return [r["key"] for r in topic_records(kernel, topic)]


def test_configs_and_task_configs_are_records_of_the_config_topic(tmp_path):
    """KafkaConfigBackingStore: connector-, target-state-, task- and commit- records."""
    kernel, _a, _ = cluster(tmp_path)
    keys = _keys(kernel, "connect-configs")
    assert keys[:2] == ["target-state-sink", "connector-sink"]
    assert keys[2:] == ["task-sink-0", "task-sink-1", "commit-sink"]


def test_a_new_worker_reads_the_cluster_state_back_from_the_topics(tmp_path):
    """Every worker dies; a fresh one (another host) learns the connector, its task configs
    and statuses from the internal topics alone, and runs them."""
    kernel, a, b = cluster(tmp_path, scheduled_rebalance_max_delay_ms=0)
    a.crash()
    b.crash()
    kernel.run(until_ms=40_000)
    c = DistributedHerder(kernel, props(8085, scheduled_rebalance_max_delay_ms=0))
    assert c.configs["sink"]["file"] == str(tmp_path / "out.txt")  # read at start
    assert len(c.tasks["sink"]) == 2
    assert {t["worker_id"] for t in c.connector_status("sink")["tasks"]} == {
        "127.0.0.1:8083", "127.0.0.1:8084"}  # the dead workers' last words
    kernel.run(until_ms=60_000)
    assert tasks(c) == [("RUNNING", "127.0.0.1:8085")] * 2


def test_statuses_are_written_by_the_worker_running_each_task(tmp_path):
    """KafkaStatusBackingStore: status-connector- / status-task- records, each from its worker."""
    kernel, _a, _ = cluster(tmp_path)
    written = {(r["key"], json.loads(r["value"])["worker_id"], json.loads(r["value"])["state"])
               for r in topic_records(kernel, "connect-status")}
    assert written == {("status-connector-sink", "127.0.0.1:8083", "RUNNING"),
                       ("status-task-sink-0", "127.0.0.1:8083", "RUNNING"),
                       ("status-task-sink-1", "127.0.0.1:8084", "RUNNING")}


def test_a_followers_writes_are_forwarded_to_the_leader(tmp_path):
    """HerderRequestHandler: the follower forwards create / pause / delete to the leader's URL
    it learnt from its assignment; during a rebalance it knows no leader: 409."""
    kernel, a, b = cluster(tmp_path)
    leader, follower = (a, b) if a.is_leader() else (b, a)
    assert follower.leader_url == leader.url
    created, info = follower.put_connector_config(
        "sink2", {**SINK, "file": str(tmp_path / "o2.txt")}, False)
    assert created
    assert info["name"] == "sink2"
    assert "sink2" in leader.configs  # written by the leader and read back
    kernel.run(until_ms=30_000)
    assert "sink2" in follower.configs
    follower.rejoin()
    kernel.run(until_ms=kernel.now_ms + 1)  # JoinGroup sent, rebalance under way
    with pytest.raises(ConnectRestError, match="no known leader URL"):
        follower.delete_connector_config("sink2")
    kernel.run(until_ms=40_000)
    follower.delete_connector_config("sink2")
    kernel.run(until_ms=42_000)
    assert "sink2" not in leader.configs
    assert "sink2" not in follower.configs


def test_a_new_leader_hands_out_the_dead_leaders_work_at_once(tmp_path):
    """IncrementalCooperativeAssignor clears its view of the previous assignment when it did
    not make it: the new leader sees no lost work, so nothing waits for the delay."""
    kernel, a, b = cluster(tmp_path)
    leader, follower = (a, b) if a.is_leader() else (b, a)
    leader.crash()
    kernel.run(until_ms=45_000)
    assert follower.is_leader()
    assert sorted(follower.assignment) == ["connector:sink", "task:sink:0", "task:sink:1"]


def test_source_offsets_survive_in_the_offset_topic(tmp_path):
    """A worker that takes a source task over resumes from the offsets in the offset topic."""
    kernel = Kernel(seed=3)
    a = DistributedHerder(kernel, props(8083, scheduled_rebalance_max_delay_ms=0))
    kernel.run(until_ms=8_000)
    (tmp_path / "in.txt").write_text("one\ntwo\n")
    a.put_connector_config("src", {"connector.class": "FileStreamSource", "topic": "t",
                                   "file": str(tmp_path / "in.txt")}, False)
    kernel.run(until_ms=30_000)
    a.crash()
    b = DistributedHerder(kernel, props(8084, scheduled_rebalance_max_delay_ms=0))
    assert b.offset_store.connector_offsets("src") == [
        {"partition": {"filename": str(tmp_path / "in.txt")}, "offset": {"position": 8}}]
    with (tmp_path / "in.txt").open("a") as f:
        f.write("three\n")
    kernel.run(until_ms=60_000)
    lines = [json.loads(r["value"])["payload"] for r in topic_records(kernel, "t")]
    assert lines == ["one", "two", "three"]


def test_pause_and_resume_from_any_worker_reach_every_worker(tmp_path):
    """AbstractHerder.pauseConnector writes the target state from whichever worker is asked;
    each worker pauses what it runs when it reads it, and writes the PAUSED statuses."""
    kernel, a, b = cluster(tmp_path)
    follower = b if a.is_leader() else a
    follower.pause_connector("sink")
    kernel.run(until_ms=21_000)
    assert a.connector_status("sink")["connector"]["state"] == "PAUSED"
    assert [s for s, _ in tasks(a)] == ["PAUSED", "PAUSED"]
    follower.resume_connector("sink")
    kernel.run(until_ms=22_000)
    assert [s for s, _ in tasks(b)] == ["RUNNING", "RUNNING"]


def test_restart_with_tasks_goes_through_the_config_topic(tmp_path):
    """KIP-745 in distributed mode: the leader answers with the plan (RESTARTING) and writes a
    restart request; each worker restarts what it runs and writes RESTARTING, then RUNNING."""
    kernel, a, b = cluster(tmp_path)
    follower = b if a.is_leader() else a
    plan = follower.restart_connector_and_tasks("sink", only_failed=False, include_tasks=True)
    assert [t["state"] for t in plan["tasks"]] == ["RESTARTING", "RESTARTING"]
    assert plan["connector"]["state"] == "RESTARTING"
    kernel.run(until_ms=21_000)
    assert "restart-connector-sink" in _keys(kernel, "connect-configs")
    states = [json.loads(r["value"])["state"] for r in topic_records(kernel, "connect-status")
              if r["key"] == "status-task-sink-1"]
    assert states[-2:] == ["RESTARTING", "RUNNING"]
    assert [s for s, _ in tasks(a)] == ["RUNNING", "RUNNING"]


def test_source_offsets_altered_through_a_follower_are_read_by_every_worker(tmp_path):
    """KIP-875 in distributed mode: the offsets request is forwarded to the leader, which
    writes the new offset to the offset topic; another worker reads it back."""
    kernel = Kernel(seed=3)
    a = DistributedHerder(kernel, props(8083))
    b = DistributedHerder(kernel, props(8084))
    kernel.run(until_ms=8_000)
    (tmp_path / "in.txt").write_text("one\ntwo\n")
    a.put_connector_config("src", {"connector.class": "FileStreamSource", "topic": "t",
                                   "file": str(tmp_path / "in.txt")}, False)
    kernel.run(until_ms=30_000)
    follower = b if a.is_leader() else a
    follower.stop_connector("src")
    kernel.run(until_ms=32_000)
    status = follower.connector_status("src")
    assert (status["connector"]["state"], status["tasks"]) == ("STOPPED", [])
    partition = {"filename": str(tmp_path / "in.txt")}
    message = follower.alter_connector_offsets("src", [{"partition": partition,
                                                        "offset": {"position": 4}}])
    assert message == "The offsets for this connector have been altered successfully"
    kernel.run(until_ms=33_000)
    for herder in (a, b):
        assert herder.connector_offsets("src") == {"offsets": [
            {"partition": partition, "offset": {"position": 4}}]}


def test_a_deleted_connectors_statuses_get_tombstones(tmp_path):
    """Deleting a connector: the config and target state get tombstones, so do the statuses;
    every worker forgets it and stops what it ran of it."""
    kernel, a, b = cluster(tmp_path)
    b.delete_connector_config("sink")
    kernel.run(until_ms=22_000)
    assert a.connectors() == b.connectors() == []
    assert a.worker.tasks == {}
    assert b.worker.tasks == {}
    assert a.status_store.connectors == {}
    assert a.status_store.tasks == {}
    last = {r["key"]: r["value"] for r in topic_records(kernel, "connect-status")}
    assert last["status-connector-sink"] is None


def test_a_connector_without_a_status_yet_is_404_and_left_out_of_the_expanded_list(tmp_path):
    """AbstractHerder.connectorStatus: "No status found for connector x" until its worker
    writes one; listConnectors?expand=status leaves such a connector out."""
    kernel, a, _ = cluster(tmp_path)
    c = client(a)
    a.put_connector_config("x", {**SINK, "file": str(tmp_path / "x.txt")}, False)
    assert c.get("/connectors/x/status").json() == {
        "error_code": 404, "message": "No status found for connector x"}
    assert list(c.get("/connectors?expand=status").json()) == ["sink"]
    kernel.run(until_ms=25_000)
    assert list(c.get("/connectors?expand=status").json()) == ["sink", "x"]


def test_a_worker_reads_the_compacted_config_topic(tmp_path):
    """The config topic is compacted: after the cleaner keeps only each key's last record (and
    drops the tombstones), a new worker still builds the same view, with the latest config."""
    from sim.broker.log_cleaner import clean
    kernel, a, b = cluster(tmp_path, scheduled_rebalance_max_delay_ms=0)
    a.put_connector_config("sink", {**SINK, "file": str(tmp_path / "v2.txt")}, True)
    a.put_connector_config("gone", {**SINK, "file": str(tmp_path / "g.txt")}, False)
    kernel.run(until_ms=25_000)
    a.delete_connector_config("gone")
    kernel.run(until_ms=30_000)
    log = kernel.cluster.partition("connect-configs", 0).log
    result = clean(log, kernel, log.high_watermark, kernel.now_ms, 0)
    assert len(result.removed_offsets) > 0
    a.crash()
    b.crash()
    c = DistributedHerder(kernel, props(8085, scheduled_rebalance_max_delay_ms=0))
    assert c.connectors() == ["sink"]
    assert c.configs["sink"]["file"] == str(tmp_path / "v2.txt")
    assert len(c.tasks["sink"]) == 2
    assert c.config_store.log.positions[0] == log.high_watermark  # read to the end


def _member(worker, units):
    return json.dumps({"worker_id": worker, "assignment": units})


def test_the_assignor_revokes_above_the_new_ceiling_for_an_empty_newcomer():
    """performTaskRevocation's example: a connector and 6 tasks on A, B joins empty: tasks
    floor = ceil = 3, so A gives up 3 tasks; connectors ceil 1, so A keeps its connector.
    The follow-up round hands the 3 revoked tasks to B (assignTasks)."""
    from sim.connect.assignor import IncrementalCooperativeAssignor
    units = ["connector:c"] + [f"task:c:{i}" for i in range(6)]
    assignor = IncrementalCooperativeAssignor(300_000)
    first = assignor.perform_task_assignment({"m1": _member("A", [])}, units, 1, -1, 0.0)
    assert first["m1"]["units"] == units
    second = assignor.perform_task_assignment(
        {"m1": _member("A", units), "m2": _member("B", [])}, units, 2, 1, 1000.0)
    assert second["m1"]["revoked"] == ["task:c:0", "task:c:1", "task:c:2"]
    assert second["m2"] == {"units": [], "revoked": [], "delay_ms": 0}
    kept = second["m1"]["units"]
    third = assignor.perform_task_assignment(
        {"m1": _member("A", kept), "m2": _member("B", [])}, units, 3, 2, 1100.0)
    assert third["m2"]["units"] == ["task:c:0", "task:c:1", "task:c:2"]
    assert third["m1"] == {"units": kept, "revoked": [], "delay_ms": 0}


def test_the_assignor_fills_the_least_loaded_level_by_level():
    """assignTasks: members ranked once by task count (then worker id); the least loaded level
    is filled first, then the next, keeping that rank: B (0 tasks) gets 2 of 3 new tasks."""
    from sim.connect.assignor import IncrementalCooperativeAssignor
    units = ["connector:c", "task:c:0", "task:d:0", "task:d:1", "task:d:2"]
    assignor = IncrementalCooperativeAssignor(300_000)
    assignor.previous_assignment = {"connector:c", "task:c:0"}
    assignor.previous_generation = 1
    plan = assignor.perform_task_assignment(
        {"m1": _member("A", ["connector:c", "task:c:0"]), "m2": _member("B", [])},
        units, 2, 1, 0.0)
    assert plan["m2"]["units"] == ["task:d:0", "task:d:1"]  # level 0, then level 1 from B
    assert plan["m1"]["units"] == ["connector:c", "task:c:0", "task:d:2"]
