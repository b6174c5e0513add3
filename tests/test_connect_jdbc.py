"""The JDBC-style connectors on real SQLite files, with Confluent's config names and defaults.

Sources: confluentinc/kafka-connect-jdbc JdbcSinkConfig (insert.mode, pk.mode, pk.fields,
auto.create, delete.enabled, batch.size), SqliteDatabaseDialect (INSERT OR REPLACE for upsert),
JdbcSourceConnectorConfig (mode, incrementing.column.name, timestamp.column.name,
poll.interval.ms, batch.max.rows, topic.prefix) and TimestampIncrementingCriteria.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from sim.connect import StandaloneHerder, Worker, topic_records
from sim.consumer import events
from sim.producer import Producer
from tests.connect_support import STRING, client, herder, run

ROW = {"type": "struct", "fields": [{"type": "int32", "optional": False, "field": "id"},
                                    {"type": "string", "optional": True, "field": "name"}],
       "optional": False, "name": "row"}


def envelope(value):
    return json.dumps({"schema": ROW, "payload": value}, separators=(",", ":")).encode()


def rows(db, sql="SELECT * FROM `people` ORDER BY 1, 2"):
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def sink(name, db, **extra):
    return {"name": name, "config": {"connector.class": "JdbcSinkConnector",
                                     "connection.url": f"jdbc:sqlite:{db}", "topics": "people",
                                     **extra}}


def produce(h, records, topic="people"):
    if topic not in h.kernel.cluster.topics:
        h.kernel.cluster.create_topic(topic, 2, 3)
    producer = Producer(h.kernel, {"acks": "all", "linger.ms": 0})
    for key, value in records:
        producer.send(topic, key=key, value=None if value is None else envelope(value))
    return producer


def test_sink_defaults_are_confluents(tmp_path):
    """insert.mode=insert, pk.mode=none, auto.create=false, delete.enabled=false,
    batch.size=3000, table.name.format=${topic}, max.retries=10, retry.backoff.ms=3000."""
    keys = client(herder()).get("/connector-plugins/JdbcSinkConnector/config").json()
    defaults = {k["name"]: k["default_value"] for k in keys}
    assert {name: defaults[name] for name in (
        "insert.mode", "pk.mode", "auto.create", "delete.enabled", "batch.size",
        "table.name.format", "max.retries", "retry.backoff.ms")} == {
        "insert.mode": "insert", "pk.mode": "none", "auto.create": "false",
        "delete.enabled": "false", "batch.size": "3000", "table.name.format": "${topic}",
        "max.retries": "10", "retry.backoff.ms": "3000"}
    source = {k["name"]: k["default_value"] for k in client(herder()).get(
        "/connector-plugins/JdbcSourceConnector/config").json()}
    assert (source["poll.interval.ms"], source["batch.max.rows"]) == ("5000", "100")


def test_insert_auto_create_writes_every_record(tmp_path):
    db = tmp_path / "sink.db"
    h = herder()
    produce(h, [(None, {"id": i, "name": f"n{i}"}) for i in range(5)])
    assert client(h).post("/connectors", json=sink("s", db, **{"auto.create": "true"})
                          ).status_code == 201
    run(h, 5_000)
    assert rows(db) == [(i, f"n{i}") for i in range(5)]
    create = rows(db, "SELECT sql FROM sqlite_master WHERE name='people'")[0][0]
    assert "`id` INTEGER NOT NULL" in create
    assert "`name` TEXT NULL" in create


def test_upsert_by_record_value_keeps_the_last_value_per_key(tmp_path):
    """upsert + pk.mode=record_value + pk.fields=id: INSERT OR REPLACE, idempotent."""
    db = tmp_path / "sink.db"
    h = herder()
    produce(h, [(b"k", {"id": i % 3, "name": f"v{i}"}) for i in range(9)])  # one partition
    client(h).post("/connectors", json=sink("s", db, **{
        "auto.create": "true", "insert.mode": "upsert", "pk.mode": "record_value",
        "pk.fields": "id", "key.converter": STRING}))
    run(h, 5_000)
    assert rows(db) == [(0, "v6"), (1, "v7"), (2, "v8")]


def test_record_key_with_delete_enabled_deletes_on_tombstones(tmp_path):
    """delete.enabled=true (needs pk.mode=record_key): a null value deletes the row."""
    db = tmp_path / "sink.db"
    h = herder()
    h.kernel.cluster.create_topic("people", 1, 3)
    producer = Producer(h.kernel, {"acks": "all", "linger.ms": 0})
    for key, value in [("a", {"id": 1, "name": "x"}), ("b", {"id": 2, "name": "y"}),
                       ("a", None)]:
        producer.send("people", key=key.encode(), value=None if value is None
                      else envelope(value))
    client(h).post("/connectors", json=sink("s", db, **{
        "auto.create": "true", "insert.mode": "upsert", "pk.mode": "record_key",
        "pk.fields": "k", "delete.enabled": "true", "key.converter": STRING}))
    run(h, 5_000)
    assert rows(db, "SELECT k, id, name FROM people") == [("b", 2, "y")]


def test_delete_enabled_without_record_key_is_refused_at_create(tmp_path):
    response = client(herder()).post("/connectors", json=sink(
        "s", tmp_path / "x.db", **{"delete.enabled": "true"}))
    assert response.status_code == 400
    assert ("Primary key mode must be 'record_key' when delete support is enabled"
            in response.json()["message"])


def test_a_missing_table_without_auto_create_fails_the_task(tmp_path):
    db = tmp_path / "sink.db"
    h = herder()
    produce(h, [(None, {"id": 1, "name": "a"})])
    client(h).post("/connectors", json=sink("s", db))
    run(h, 5_000)
    task = h.connector_status("s")["tasks"][0]
    assert task["state"] == "FAILED"
    assert 'Table "people" is missing and auto-creation is disabled' in task["trace"]


def lines_pipeline(h, tmp_path, lines):
    """A file → topic → SQLite pipeline: the source hoists each line into a struct."""
    (tmp_path / "in.txt").write_text("".join(f"{line}\n" for line in lines))
    h.kernel.cluster.create_topic("lines", 1, 3)
    c = client(h)
    c.post("/connectors", json={"name": "src", "config": {
        "connector.class": "FileStreamSource", "file": str(tmp_path / "in.txt"),
        "topic": "lines", "batch.size": "7", "transforms": "hoist",
        "transforms.hoist.type": "org.apache.kafka.connect.transforms.HoistField$Value",
        "transforms.hoist.field": "line"}})
    c.post("/connectors", json={"name": "db", "config": {
        "connector.class": "JdbcSinkConnector", "topics": "lines",
        "connection.url": f"jdbc:sqlite:{tmp_path / 'out.db'}", "auto.create": "true",
        "insert.mode": "upsert", "pk.mode": "kafka"}})
    return c


def topic_rows(h, topic="lines"):
    return sorted((topic, r["partition"], r["offset"], json.loads(r["value"])["payload"]["line"])
                  for r in topic_records(h.kernel, topic))


def test_upsert_makes_redelivery_idempotent_through_a_broker_crash(tmp_path):
    """At least once: the partition leader's broker crashes, then the sink's worker dies before
    committing (so the next worker reads the records again); with upsert on the Kafka
    coordinates the table equals the topic exactly, one row per record."""
    h = herder()
    lines = [f"line {i}" for i in range(300)]
    c = lines_pipeline(h, tmp_path, lines)
    # past the group's first rebalance (group.initial.rebalance.delay.ms, 3 s): the sink has
    # read and written records and committed none
    run(h, 5_000)
    assert records_read(h, "connect-db") > 0
    leader = h.kernel.cluster.topics["lines"].partitions[0].leader
    h.kernel.controller.crash_broker(leader)
    run(h, 1_000)
    config = c.get("/connectors/db/config").json()
    h.worker.crash()  # a task restart would commit on close (WorkerSinkTask.closeAllPartitions)
    again = StandaloneHerder(Worker(h.kernel, h.worker.props))
    again.put_connector_config("db", config, allow_replace=False)
    h.kernel.controller.restart_broker(leader)
    again.kernel.run(until_ms=h.kernel.now_ms + 60_000)  # the dead member's session expires
    table = rows(tmp_path / "out.db", "SELECT * FROM lines ORDER BY 3")
    assert sorted(table) == topic_rows(h)
    assert [r[3] for r in table] == lines
    assert records_read(h, "connect-db") > len(lines)  # some were delivered twice


def records_read(h, group):
    polls = h.kernel.trace.frame(events.CONSUMER_POLL)
    return int(polls[polls["group"] == group]["records"].sum())


@pytest.mark.parametrize(("mode", "expected_rows"), [("insert", 40), ("upsert", 20)])
def test_a_worker_crash_redelivers_uncommitted_records(tmp_path, mode, expected_rows):
    """The worker dies after writing but before committing (offset.flush.interval.ms=10000):
    the next worker reads the records again. insert.mode=insert without a key duplicates rows;
    upsert on the Kafka coordinates does not."""
    h = herder()
    lines = [f"line {i}" for i in range(20)]
    c = lines_pipeline(h, tmp_path, lines)
    config = {**c.get("/connectors/db/config").json(), "insert.mode": mode,
              "pk.mode": "none" if mode == "insert" else "kafka"}
    c.put("/connectors/db/config", json=config)
    run(h, 5_000)
    assert len(rows(tmp_path / "out.db", "SELECT * FROM lines")) == 20
    h.worker.crash()
    again = StandaloneHerder(Worker(h.kernel, h.worker.props))
    again.put_connector_config("db", config, allow_replace=False)
    again.kernel.run(until_ms=h.kernel.now_ms + 60_000)  # the dead member's session expires
    table = [r[0] for r in rows(tmp_path / "out.db", "SELECT line FROM lines")]
    assert sorted(set(table)) == sorted(lines)
    assert len(table) == expected_rows


@pytest.fixture
def source_db(tmp_path):
    db = tmp_path / "src.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, updated INTEGER)")
        conn.executemany("INSERT INTO users VALUES (?, ?, ?)",
                         [(1, "ann", 100), (2, "bob", 100), (3, "cy", 200)])
    return db


def jdbc_source(h, db, **extra):
    response = client(h).post("/connectors", json={"name": "jdbc", "config": {
        "connector.class": "io.confluent.connect.jdbc.JdbcSourceConnector",
        "connection.url": f"jdbc:sqlite:{db}", "topic.prefix": "sqlite-", **extra}})
    assert response.status_code == 201, response.text


def payloads(h):
    return [json.loads(r["value"])["payload"] for r in topic_records(h.kernel, "sqlite-users")]


def execute(db, sql, *args):
    with sqlite3.connect(db) as conn:
        conn.execute(sql, args)


def test_source_bulk_copies_the_whole_table_every_poll_interval(source_db):
    h = herder()
    jdbc_source(h, source_db, mode="bulk", **{"poll.interval.ms": "2000"})
    run(h, 1_000)
    assert [p["id"] for p in payloads(h)] == [1, 2, 3]
    run(h, 2_000)
    assert [p["id"] for p in payloads(h)] == [1, 2, 3, 1, 2, 3]


def test_source_incrementing_sees_new_rows_not_updates(source_db):
    """mode=incrementing "will not detect modifications or deletions"; offsets {"incrementing"}."""
    h = herder()
    jdbc_source(h, source_db, mode="incrementing", **{"incrementing.column.name": "id"})
    run(h, 1_000)
    execute(source_db, "UPDATE users SET name='ANN' WHERE id=1")
    execute(source_db, "INSERT INTO users VALUES (4, 'dee', 300)")
    run(h, 5_000)  # poll.interval.ms 5000
    assert [(p["id"], p["name"]) for p in payloads(h)] == [
        (1, "ann"), (2, "bob"), (3, "cy"), (4, "dee")]
    run(h, 5_000)
    assert h.connector_offsets("jdbc") == {"offsets": [{"partition": {"table": "users"},
                                                        "offset": {"incrementing": 4}}]}


def test_source_waits_poll_interval_between_queries(source_db):
    h = herder()
    jdbc_source(h, source_db, mode="incrementing", **{"incrementing.column.name": "id",
                                                      "poll.interval.ms": "5000"})
    run(h, 1_000)
    execute(source_db, "INSERT INTO users VALUES (4, 'dee', 300)")
    run(h, 2_000)  # t=3000: the next query is at 5000
    assert len(payloads(h)) == 3
    run(h, 3_000)
    assert len(payloads(h)) == 4


def test_timestamp_mode_detects_updates(source_db):
    h = herder()
    jdbc_source(h, source_db, mode="timestamp", **{"timestamp.column.name": "updated"})
    run(h, 1_000)
    execute(source_db, "UPDATE users SET name='ANN', updated=500 WHERE id=1")
    run(h, 5_000)
    assert [(p["id"], p["name"]) for p in payloads(h)][-1] == (1, "ANN")
    assert len(payloads(h)) == 4


def test_timestamp_alone_misses_equal_timestamps_split_across_batches(source_db):
    """batch.max.rows=1: ann and bob share timestamp 100. timestamp mode resumes at ts > 100
    and skips bob; timestamp+incrementing resumes at (ts = 100 and id > 1) or ts > 100."""
    only_ts = herder()
    jdbc_source(only_ts, source_db, mode="timestamp", **{"timestamp.column.name": "updated",
                                                         "batch.max.rows": "1"})
    run(only_ts, 20_000)
    assert [p["id"] for p in payloads(only_ts)] == [1, 3]
    both = herder()
    jdbc_source(both, source_db, mode="timestamp+incrementing", **{
        "timestamp.column.name": "updated", "incrementing.column.name": "id",
        "batch.max.rows": "1"})
    run(both, 20_000)
    assert [p["id"] for p in payloads(both)] == [1, 2, 3]
    assert both.connector_offsets("jdbc")["offsets"][0]["offset"] == {
        "incrementing": 3, "timestamp": 200, "timestamp_nanos": 0}


def test_source_mode_must_be_given(source_db):
    response = client(herder()).post("/connectors", json={"name": "j", "config": {
        "connector.class": "JdbcSourceConnector", "connection.url": f"jdbc:sqlite:{source_db}",
        "topic.prefix": "x-", "mode": "sometimes"}})
    assert response.status_code == 400
    assert "Invalid value sometimes for configuration mode" in response.json()["message"]


@pytest.mark.parametrize(("max_retries", "state"), [("10", "RUNNING"), ("1", "FAILED")])
def test_a_locked_database_is_retried_after_retry_backoff_ms(tmp_path, max_retries, state):
    """A SQLException in put is retried max.retries times, retry.backoff.ms apart (the task asks
    for the back-off with SinkTaskContext.timeout and throws RetriableException); then it fails."""
    db = tmp_path / "sink.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER, name TEXT)")
    h = herder()
    produce(h, [(None, {"id": 1, "name": "a"})])
    client(h).post("/connectors", json=sink("s", db, **{"max.retries": max_retries,
                                                        "retry.backoff.ms": "1000"}))
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    run(h, 6_000)
    assert h.connector_status("s")["tasks"][0]["state"] == state
    blocker.execute("COMMIT")
    blocker.close()
    run(h, 2_000)
    assert rows(db) == ([(1, "a")] if state == "RUNNING" else [])


def test_update_mode_changes_existing_rows_only(tmp_path):
    """insert.mode=update: UPDATE ... WHERE key; a key with no row changes nothing."""
    db = tmp_path / "sink.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO people VALUES (1, 'old')")
    h = herder()
    produce(h, [(b"k", {"id": 1, "name": "new"}), (b"k", {"id": 2, "name": "nobody"})])
    client(h).post("/connectors", json=sink("s", db, **{
        "insert.mode": "update", "pk.mode": "record_value", "pk.fields": "id",
        "key.converter": STRING}))
    run(h, 5_000)
    assert rows(db) == [(1, "new")]


def test_record_key_struct_uses_the_key_fields(tmp_path):
    """pk.mode=record_key with a struct key: its fields are the key columns."""
    db = tmp_path / "sink.db"
    h = herder()
    h.kernel.cluster.create_topic("people", 1, 3)
    key_schema = {"type": "struct", "fields": [{"type": "string", "optional": False,
                                                "field": "k"}], "optional": False}
    producer = Producer(h.kernel, {"acks": "all", "linger.ms": 0})
    for k, name in [("a", "x"), ("a", "y"), ("b", "z")]:
        key = json.dumps({"schema": key_schema, "payload": {"k": k}}).encode()
        producer.send("people", key=key, value=envelope({"id": 0, "name": name}))
    client(h).post("/connectors", json=sink("s", db, **{
        "auto.create": "true", "insert.mode": "upsert", "pk.mode": "record_key"}))
    run(h, 5_000)
    assert rows(db, "SELECT k, name FROM people ORDER BY k") == [("a", "y"), ("b", "z")]


def test_a_new_worker_resumes_the_source_after_its_flushed_offset(source_db):
    """Source offsets {"incrementing": N} are flushed to the offset file; a new worker on the
    same file queries only newer rows."""
    offsets = source_db.parent / "connect.offsets"
    h = herder(offset_storage_file_filename=offsets)
    jdbc_source(h, source_db, mode="incrementing", **{"incrementing.column.name": "id"})
    run(h, 11_000)
    h.worker.crash()
    execute(source_db, "INSERT INTO users VALUES (4, 'dee', 300)")
    again = StandaloneHerder(Worker(h.kernel, h.worker.props))
    again.put_connector_config("jdbc", h.configs["jdbc"], allow_replace=False)
    again.kernel.run(until_ms=h.kernel.now_ms + 2_000)
    assert [p["id"] for p in payloads(h)] == [1, 2, 3, 4]
