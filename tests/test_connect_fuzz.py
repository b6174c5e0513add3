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


# -- the fuzzer's connect profile ------------------------------------------------------------

CONNECT = PROFILES["connect"]


def test_the_connect_profile_draws_valid_schedules_with_worker_faults_undone_by_the_horizon():
    """Every schedule loads as a scenario; it runs 2 or 3 workers and a sink with 2 tasks; at
    least one Connect fault is drawn; every crashed worker is restarted, every cut healed,
    before the horizon."""
    from sim import scenarios
    from sim.fuzz import fault_units, to_yaml

    kinds = set()
    for index in range(40):
        drawn = generate(CONNECT, 3, index)
        loaded = scenarios.parse(to_yaml(drawn), "drawn.yaml")
        assert loaded.connect["workers"] in (2, 3)
        assert loaded.connect["sink"]["tasks"] == 2
        assert "producers" not in drawn
        entries = drawn["faults"]
        assert any("connect_crash" in e or "connector-" in str(e) or "connect-cluster" in str(e)
                   for e in entries), drawn["description"]
        for unit in fault_units(entries):
            first = entries[unit[0]]
            kind = next(k for k in first if k != "at_ms")
            kinds.add(kind)
            if kind != "preferred_leader_election":
                assert len(unit) == 2, (first, drawn["description"])
            assert all(entries[i]["at_ms"] <= CONNECT.horizon_ms for i in unit)
    assert {"connect_crash", "network_partition", "crash_broker"} <= kinds


def test_a_scenario_refuses_connect_faults_that_do_not_fit():
    from sim import scenarios
    from sim.errors import ScenarioError
    from sim.fuzz import to_yaml

    drawn = generate(CONNECT, 3, 0)
    bad = [({**drawn, "faults": [{"at_ms": 5, "connect_restart": {"worker": "connect-1"}}]},
            "it is running then"),
           ({**drawn, "faults": [{"at_ms": 5, "connect_crash": {"worker": "connect-9"}}]},
            "connect-1, connect-2"),
           ({k: v for k, v in drawn.items() if k != "connect"} | {
               "faults": [{"at_ms": 5, "connect_crash": {"worker": "connect-1"}}]},
            "no connect section")]
    for scenario, message in bad:
        with pytest.raises(ScenarioError, match=message):
            scenarios.parse(to_yaml(scenario), "bad.yaml")


def test_a_small_connect_campaign_passes_and_sees_the_restarts_duplicates():
    """Three schedules: no violation; the duplicates at-least-once allows are counted."""
    from sim.fuzz import campaign

    result = campaign(CONNECT.scaled(300), runs=3, seed=5, out=None)
    assert result.runs == 3
    assert [f.verdict.line() for f in result.findings] == []


def _crash_schedule():
    """A connect schedule whose worker crash makes the source produce lines again."""
    for index in range(20):
        drawn = generate(CONNECT.scaled(300), 1, index)
        if any("connect_crash" in e for e in drawn["faults"]):
            return drawn
    raise AssertionError("no schedule crashes a worker")


@pytest.mark.parametrize("broken", ["sink", "source"])
def test_the_check_catches_a_pipeline_that_drops_a_record(monkeypatch, broken):
    """A sink whose ``put`` drops one record, or a source task that skips one line: the check
    names the loss (so it can fail)."""
    from sim.connect.file import FileStreamSourceTask
    from sim.connect.jdbc import JdbcSinkTask
    from sim.fuzz import check_scenario

    if broken == "sink":
        put = JdbcSinkTask.put
        dropped: list[int] = []

        def lossy_put(self, records):
            if records and not dropped:
                dropped.append(records[0].kafka_offset)
                records = records[1:]
            return put(self, records)

        monkeypatch.setattr(JdbcSinkTask, "put", lossy_put)
    else:
        poll = FileStreamSourceTask.poll
        skipped: list[str] = []

        def lossy_poll(self):
            records = poll(self)
            if records and not skipped:
                skipped.append(records[0].value)
                return records[1:] or None
            return records

        monkeypatch.setattr(FileStreamSourceTask, "poll", lossy_poll)
    verdict = check_scenario(_crash_schedule(), CONNECT)
    assert verdict.cause == f"connect-{broken}-lost", verdict.line()
    assert [v.count for v in verdict.violations if v.kind == verdict.cause] == [1]


def test_a_connect_schedule_prints_the_same_bytes_under_two_hash_seeds(tmp_path):
    """`python -m sim run FILE.yaml` of a connect schedule: identical under hash seeds 0, 1
    (the run's temporary folder, which differs from run to run, is in no output)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from sim.fuzz import to_yaml

    root = Path(__file__).resolve().parents[1]
    path = tmp_path / "connect.yaml"
    path.write_text(to_yaml(_crash_schedule()), encoding="utf-8")
    outputs = []
    for hash_seed in ("0", "1"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}
        outputs.append(subprocess.run([sys.executable, "-m", "sim", "run", str(path)], env=env,
                                      cwd=root, capture_output=True, check=True,
                                      timeout=300).stdout)
    assert outputs[0].startswith(b"Scenario: fuzz-connect-")
    assert outputs[0] == outputs[1]
    assert b"kafka-connect-" not in outputs[0]


def test_the_minimiser_keeps_a_worker_crash_with_its_restart():
    from sim.fuzz import fault_units

    faults = [{"at_ms": 1, "connect_crash": {"worker": "connect-1"}},
              {"at_ms": 2, "connect_crash": {"worker": "connect-2"}},
              {"at_ms": 3, "connect_restart": {"worker": "connect-2"}},
              {"at_ms": 4, "connect_restart": {"worker": "connect-1"}}]
    assert fault_units(faults) == [[0, 3], [1, 2]]


def test_the_pipeline_folder_goes_away_with_the_kernel():
    """The run's temporary folder (source file, database) is removed once the kernel is gone:
    nothing outside the kernel keeps its workers (and with them the kernel) alive."""
    import gc
    from pathlib import Path

    from sim import scenarios
    from sim.connect.scenario import pipeline
    from sim.fuzz import to_yaml

    kernel = scenarios.parse(to_yaml(generate(CONNECT, 1, 0)), "drawn.yaml").build()
    kernel.run(3_000)
    folder = Path(pipeline(kernel).folder.name)
    assert (folder / "in.txt").exists()
    del kernel
    gc.collect()
    assert not folder.exists()


def _finding(stem):
    import yaml

    from tests.test_fuzz import DATA

    return yaml.safe_load((DATA / f"{stem}.yaml").read_text(encoding="utf-8"))


def test_a_leader_crashing_before_writing_task_configs_leaves_no_source_without_tasks():
    """Regression (connect campaign seed 2, schedule 79): the connector's worker retries the
    task configs' write when the leader dies first, so the source gets its task and every line
    reaches the topic and the table."""
    from sim.fuzz import check_scenario

    verdict = check_scenario(_finding("connect--source-lost-task-configs-write-lost"), CONNECT)
    assert not verdict.failed, verdict.line()


def test_records_a_crashed_member_holds_back_are_tied_to_it_not_called_lost():
    """Regression (seed 2, schedule 41): the sink's group is still rebalancing at the end,
    held by a crashed worker's consumer; the missing rows are tied to that, and counted."""
    from sim.fuzz import check_scenario

    verdict = check_scenario(_finding("connect--sink-lost-group-held-by-crashed-member"),
                             CONNECT)
    assert not verdict.failed, verdict.line()
    pending = [v for v in verdict.tolerated if v.kind == "connect-sink-pending"]
    assert pending
    assert pending[0].count > 0
    assert "held by the crashed member" in pending[0].detail


def test_records_on_a_partition_a_crashed_member_owns_in_a_stable_group_are_pending():
    """Regression (seed 9523, schedule 16): a sink consumer crashed with its JoinGroup parked;
    the join completed with it (the classic coordinator keeps a member awaiting its join
    response and starts its session only then), the group got to Stable and the dead member
    owns lines-0 until its 45 s session times out, after the run. The missing rows are all on
    lines-0: tied to that member, and counted."""
    from sim.fuzz import check_scenario

    verdict = check_scenario(
        _finding("connect--sink-lost-stable-group-partition-of-crashed-member"), CONNECT)
    assert not verdict.failed, verdict.line()
    (pending,) = [v for v in verdict.tolerated if v.kind == "connect-sink-pending"]
    assert pending.count > 0
    assert "Stable at the end, lines partitions [0] held by the crashed member" in \
        pending.detail


def test_a_stable_groups_crashed_member_excuses_only_the_partitions_it_owns():
    """Records missing on a partition a live member owns stay lost, though a crashed member
    of the Stable group owns another partition."""
    from sim import scenarios
    from sim.connect.scenario import SINK
    from sim.fuzz.connect_check import held_by_crashed_member
    from tests.test_fuzz import DATA

    kernel = scenarios.load(
        DATA / "connect--sink-lost-stable-group-partition-of-crashed-member.yaml").run()
    group = f"connect-{SINK}"
    assert held_by_crashed_member(kernel, group, "lines", {0})
    assert held_by_crashed_member(kernel, group, "lines", {0, 2}) == ""
    assert held_by_crashed_member(kernel, group, "other", {0}) == ""


# -- a network fault naming a Connect client reaches each instance of it -------------------------

CUT_SOURCE_PRODUCER = {
    "name": "cut-src", "seed": 5, "duration_ms": 90000, "cluster": {"brokers": 3},
    "topics": [{"name": "lines", "partitions": 3, "replication_factor": 3}],
    "connect": {"workers": 2, "topic": "lines", "source": {"lines": 600, "rate_per_s": 20.0},
                "sink": {"tasks": 2}, "config": {"scheduled.rebalance.max.delay.ms": 0}},
    "faults": [
        {"at_ms": 25000, "network_partition": {"a": [0, 1, 2],
                                               "b": ["connector-producer-src-0"]}},
        {"at_ms": 30000, "connect_crash": {"worker": "connect-1"}},
        {"at_ms": 30000, "connect_crash": {"worker": "connect-2"}},
        {"at_ms": 31000, "connect_restart": {"worker": "connect-1"}},
        {"at_ms": 31000, "connect_restart": {"worker": "connect-2"}},
        {"at_ms": 60000, "heal_network": {"a": [0, 1, 2], "b": ["connector-producer-src-0"]}}],
}


def test_a_cut_naming_a_task_producer_reaches_the_restarted_task_too():
    """``Worker.baseProducerConfigs`` gives a restarted source task's producer the same
    ``client.id`` (``connector-producer-src-0``); the lab numbers the second instance, and a
    cut naming the id used to miss it, so the restarted task wrote every line during the cut.
    Now nothing reaches the topic from the restart until the heal, and every line after it."""
    import yaml

    from sim import scenarios

    kernel = scenarios.parse(yaml.safe_dump(CUT_SOURCE_PRODUCER), "cut.yaml").build()

    def written() -> int:
        return sum(p.log.log_end_offset for p in kernel.cluster.topic("lines").partitions)

    kernel.run(30000)
    before_restart = written()
    assert 0 < before_restart < 600
    kernel.run(59900)
    ids = [c.client_id for c in kernel.clients
           if c.client_id.startswith("connector-producer-src-0")]
    assert len(ids) == 2
    assert ids[0] == "connector-producer-src-0" != ids[1]
    assert written() == before_restart
    kernel.run(90000)
    assert written() == 600
