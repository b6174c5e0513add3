"""Distributed mode: workers sharing a group.id, internal topics, and KIP-415 failover.

Sources: DistributedConfig (group.id, the three storage topics, scheduled.rebalance.max.delay.ms
= 300000, session.timeout.ms = 10000), TopicAdmin.verifyTopicCleanupPolicyOnlyCompact and
KafkaConfigBackingStore (one partition), IncrementalCooperativeAssignor (lost assignments wait
for the delay, a returning worker gets its work back, delay 0 reassigns at once),
HerderRequestHandler (409 without a known leader).
"""

from __future__ import annotations

import pytest

from sim.connect.distributed import DistributedHerder
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


def test_tasks_spread_over_the_workers(tmp_path):
    _, a, b = cluster(tmp_path)
    assert tasks(a) == [("RUNNING", "127.0.0.1:8084"), ("RUNNING", "127.0.0.1:8083")]
    assert b.connector_status("sink") == a.connector_status("sink")  # any worker answers


def test_a_dead_workers_tasks_wait_for_the_scheduled_delay(tmp_path):
    """Default scheduled.rebalance.max.delay.ms=300000: the lost task stays UNASSIGNED from the
    rebalance after the session timeout (10 s) for 5 minutes, then moves."""
    kernel, a, b = cluster(tmp_path)
    b.crash()  # at 20 s
    kernel.run(until_ms=45_000)
    assert tasks(a) == [("UNASSIGNED", "127.0.0.1:8084"), ("RUNNING", "127.0.0.1:8083")]
    kernel.run(until_ms=325_000)
    assert tasks(a)[0][0] == "UNASSIGNED"
    kernel.run(until_ms=340_000)
    assert tasks(a) == [("RUNNING", "127.0.0.1:8083"), ("RUNNING", "127.0.0.1:8083")]
    timeline = a.timeline()
    moved = timeline[(timeline.unit == "sink-0") & (timeline.event == "started")]
    assert list(moved.worker) == ["127.0.0.1:8084", "127.0.0.1:8083"]
    assert 320_000 <= moved.time_ms.iloc[1] <= 335_000


def test_with_no_delay_the_tasks_move_at_the_next_rebalance(tmp_path):
    kernel, a, b = cluster(tmp_path, scheduled_rebalance_max_delay_ms=0)
    b.crash()
    kernel.run(until_ms=29_000)
    assert tasks(a)[0][0] == "UNASSIGNED"  # the session has not expired yet
    kernel.run(until_ms=40_000)
    assert tasks(a) == [("RUNNING", "127.0.0.1:8083"), ("RUNNING", "127.0.0.1:8083")]


def test_a_worker_back_within_the_delay_gets_its_tasks_back(tmp_path):
    kernel, a, b = cluster(tmp_path)
    b.crash()
    kernel.run(until_ms=60_000)
    DistributedHerder(kernel, props(8084))  # the same worker, restarted
    kernel.run(until_ms=80_000)
    assert tasks(a) == [("RUNNING", "127.0.0.1:8084"), ("RUNNING", "127.0.0.1:8083")]


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
