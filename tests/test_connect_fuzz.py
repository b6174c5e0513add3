"""The fault fuzzer's schedules against a Connect pipeline: file → topic → SQLite.

Each schedule is one the fuzzer draws for its "safe" profile (``sim.fuzz.generate``: broker
crashes and restarts, slow brokers, network partitions, lossy links, all undone by the horizon).
The pipeline runs through it with Connect's producer settings (``Worker.baseProducerConfigs``:
acks=all, one request in flight, no delivery timeout) and the safe topic settings. Checked:
every line of the file reaches the table (no loss), and the table, keyed by Kafka coordinates
with upsert, equals the topic exactly (redelivered records are idempotent). In distributed mode
the workers crash halfway and a new one takes over from the internal topics alone.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from sim.connect import DistributedHerder, StandaloneHerder, Worker, topic_records
from sim.faults import from_spec, schedule
from sim.fuzz import PROFILES, generate
from sim.kernel import Kernel
from tests.connect_support import WORKER

LINES = 400


def pipeline(tmp_path, index):
    drawn = generate(PROFILES["safe"], seed=11, index=index)
    kernel = Kernel(seed=drawn["seed"], brokers=3,
                    broker_configs=drawn["cluster"]["broker_configs"])
    kernel.cluster.create_topic("lines", 3, 3, {"min.insync.replicas": 2,
                                                "unclean.leader.election.enable": False})
    for spec in drawn["faults"]:
        at_ms, fault = from_spec(spec, 3)
        schedule(kernel, at_ms, fault)
    source = tmp_path / "in.txt"
    source.write_text("")
    herder = StandaloneHerder(Worker(kernel, WORKER))
    herder.put_connector_config("src", {
        "connector.class": "FileStreamSource", "topic": "lines", "file": str(source),
        "transforms": "hoist",
        "transforms.hoist.type": "org.apache.kafka.connect.transforms.HoistField$Value",
        "transforms.hoist.field": "line"}, allow_replace=False)
    herder.put_connector_config("db", {
        "connector.class": "JdbcSinkConnector", "topics": "lines", "tasks.max": "2",
        "connection.url": f"jdbc:sqlite:{tmp_path / 'out.db'}", "auto.create": "true",
        "insert.mode": "upsert", "pk.mode": "kafka"}, allow_replace=False)
    return drawn, kernel, herder, source


@pytest.mark.parametrize("index", range(6))
def test_fuzzed_faults_lose_no_line_and_the_table_equals_the_topic(tmp_path, index):
    drawn, kernel, herder, source = pipeline(tmp_path, index)
    horizon = drawn["duration_ms"] - PROFILES["safe"].settle_ms
    lines = [f"line {i}" for i in range(LINES)]
    for chunk in range(8):  # lines arrive while the faults happen
        with source.open("a") as f:
            f.writelines(f"{line}\n" for line in lines[chunk * 50:(chunk + 1) * 50])
        kernel.run(until_ms=horizon * (chunk + 1) / 8)
    kernel.run(until_ms=drawn["duration_ms"] + 30_000)
    states = [t["state"] for name in ("src", "db")
              for t in herder.connector_status(name)["tasks"]]
    assert states == ["RUNNING"] * 3, drawn["description"]
    topic = sorted((r["partition"], r["offset"], json.loads(r["value"])["payload"]["line"])
                   for r in topic_records(kernel, "lines"))
    with sqlite3.connect(tmp_path / "out.db") as db:
        table = sorted(db.execute("SELECT __connect_partition, __connect_offset, line "
                                  "FROM lines").fetchall())
    assert table == topic, drawn["description"]
    assert {line for _, _, line in table} == set(lines), drawn["description"]
    assert len(topic) < LINES + 200, drawn["description"]  # resumed from the offset topic


def distributed_props(port):
    return {**WORKER, "group.id": "connect-cluster", "config.storage.topic": "connect-configs",
            "offset.storage.topic": "connect-offsets", "status.storage.topic": "connect-status",
            "listeners": f"http://:{port}", "scheduled.rebalance.max.delay.ms": "0"}


@pytest.mark.parametrize("index", range(3))
def test_a_worker_taking_over_reads_the_state_back_from_the_topics(tmp_path, index):
    """Distributed mode under the fuzzer's faults: both first workers crash mid-run, and a new
    worker, which shares no memory with them, takes over from what the internal topics hold
    (connector configs, task configs, source offsets). No line is lost; the table equals the
    topic."""
    drawn = generate(PROFILES["safe"], seed=11, index=index)
    kernel = Kernel(seed=drawn["seed"], brokers=3,
                    broker_configs=drawn["cluster"]["broker_configs"])
    kernel.cluster.create_topic("lines", 3, 3, {"min.insync.replicas": 2,
                                                "unclean.leader.election.enable": False})
    for spec in drawn["faults"]:
        at_ms, fault = from_spec(spec, 3)
        schedule(kernel, at_ms, fault)
    source = tmp_path / "in.txt"
    source.write_text("")
    first = [DistributedHerder(kernel, distributed_props(port)) for port in (8083, 8084)]
    kernel.run(until_ms=8_000)
    first[0].put_connector_config("src", {
        "connector.class": "FileStreamSource", "topic": "lines", "file": str(source),
        "transforms": "hoist",
        "transforms.hoist.type": "org.apache.kafka.connect.transforms.HoistField$Value",
        "transforms.hoist.field": "line"}, allow_replace=False)
    first[0].put_connector_config("db", {
        "connector.class": "JdbcSinkConnector", "topics": "lines", "tasks.max": "2",
        "connection.url": f"jdbc:sqlite:{tmp_path / 'out.db'}", "auto.create": "true",
        "insert.mode": "upsert", "pk.mode": "kafka"}, allow_replace=False)
    horizon = drawn["duration_ms"] - PROFILES["safe"].settle_ms
    lines = [f"line {i}" for i in range(LINES)]
    for chunk in range(8):
        with source.open("a") as f:
            f.writelines(f"{line}\n" for line in lines[chunk * 50:(chunk + 1) * 50])
        kernel.run(until_ms=8_000 + horizon * (chunk + 1) / 8)
        if chunk == 3:
            for herder in first:
                herder.crash()
            new = DistributedHerder(kernel, distributed_props(8085))
    kernel.run(until_ms=drawn["duration_ms"] + 60_000)
    assert sorted(new.assignment) == ["connector:db", "connector:src", "task:db:0",
                                      "task:db:1", "task:src:0"], drawn["description"]
    states = [t["state"] for name in ("src", "db") for t in new.connector_status(name)["tasks"]]
    assert states == ["RUNNING"] * 3, drawn["description"]
    topic = sorted((r["partition"], r["offset"], json.loads(r["value"])["payload"]["line"])
                   for r in topic_records(kernel, "lines"))
    with sqlite3.connect(tmp_path / "out.db") as db:
        table = sorted(db.execute("SELECT __connect_partition, __connect_offset, line "
                                  "FROM lines").fetchall())
    assert table == topic, drawn["description"]
    assert {line for _, _, line in table} == set(lines), drawn["description"]
    assert len(topic) < LINES + 200, drawn["description"]  # resumed from the offset topic
