"""State stores on disk: RocksDB stores, the key format, checkpoints, changelog topics.

Each test pins a fact of Kafka Streams 4.0 (the class named in its docstring) or of the lab's
promise that a persistent store holds exactly what the in-memory store holds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.errors import StreamsError
from sim.records import TopicPartition
from sim.streams import KafkaStreams, Stores, StreamsBuilder
from sim.streams.changelog import changelog_topic
from sim.streams.materialized import Materialized
from sim.streams.rocksdb import decode_key, encode_key, read_rocksdb
from sim.streams.state_directory import read_checkpoint, write_checkpoint
from sim.streams.stores import ValueAndTimestamp, key_order
from sim.streams.windows import SessionWindow, Windowed
from tests.streams_runtime_helpers import cluster, produce

KEYS = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                 st.floats(allow_nan=False), st.text(max_size=8))


# --- the .checkpoint file ------------------------------------------------------------------------


def test_checkpoint_file_is_kafkas_offset_checkpoint_format(tmp_path):
    """``OffsetCheckpoint.write``: version line ``0``, the entry count, then ``topic partition
    offset`` lines — app ``app``, store ``store``, partition 0 at offset 42."""
    path = tmp_path / "0_0" / ".checkpoint"
    write_checkpoint(path, {TopicPartition(changelog_topic("app", "store"), 0): 42})
    assert path.read_text(encoding="utf-8").splitlines() == ["0", "1", "app-store-changelog 0 42"]
    assert read_checkpoint(path) == {TopicPartition("app-store-changelog", 0): 42}
    assert not path.with_name(".checkpoint.tmp").exists()  # written aside, then renamed


@pytest.mark.parametrize("text", ["1\n0\n", "0\n2\nt 0 1\n", "0\n1\nt zero 1\n", ""])
def test_a_malformed_checkpoint_is_refused_with_one_clear_line(tmp_path, text):
    """``OffsetCheckpoint.read`` refuses an unknown version or a wrong entry count."""
    path = tmp_path / ".checkpoint"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StreamsError, match="checkpoint"):
        read_checkpoint(path)


# --- keys: RocksDB's byte order is the stores' key order -----------------------------------------


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(KEYS, min_size=2, max_size=6))
def test_encoded_keys_sort_as_the_in_memory_stores_sort_keys(keys):
    """RocksDB iterates keys by their bytes, so a persistent store's range order is the byte
    order of the serialized keys; the encoding keeps ``key_order`` (type name, then value)."""
    keys = [k for k in keys if not (isinstance(k, float) and k == 0.0)]  # -0.0 == 0.0
    by_bytes = sorted(keys, key=encode_key)
    by_value = sorted(keys, key=key_order)
    assert [key_order(k) for k in by_bytes] == [key_order(k) for k in by_value]
    assert [decode_key(encode_key(k)) for k in keys] == keys


@settings(max_examples=200, deadline=None)
@given(key=st.text(max_size=6), other=st.text(max_size=6), start=st.integers(0, 10**12),
       other_start=st.integers(0, 10**12))
def test_window_keys_sort_by_key_then_window_start(key, other, start, other_start):
    """A window store's key is (key, window start): ``"a"`` + any start sorts before ``"ab"``,
    as Kafka's ``WindowKeySchema`` orders a key's windows together — strings are terminated."""
    pairs = sorted([(key, start), (other, other_start)], key=encode_key)
    assert pairs == sorted([(key, start), (other, other_start)])


# --- persistent stores ---------------------------------------------------------------------------


def test_persistent_key_value_store_is_a_real_rocksdb_a_learner_can_open(tmp_path):
    """``Stores.persistentKeyValueStore``: the values sit in a RocksDB database on disk; read
    back with rocksdict once the store is closed, in key order."""
    store = Stores.persistent_key_value_store("counts").build(tmp_path)
    store.put("b", ValueAndTimestamp(2, 20))
    store.put("a", ValueAndTimestamp(1, 10))
    store.put(3, "three")
    store.delete("missing")
    store.put("c", ValueAndTimestamp(9, 1))
    store.put("c", None)  # a tombstone deletes
    assert store.persistent
    assert store.approximate_num_entries() == 3
    store.close()
    files = {p.name for p in (tmp_path / "counts").iterdir()}
    assert "CURRENT" in files
    assert any(name.endswith(".log") or name.endswith(".sst")
                                      for name in files)
    assert read_rocksdb(tmp_path / "counts") == [
        (3, "three"), ("a", ValueAndTimestamp(1, 10)), ("b", ValueAndTimestamp(2, 20))]
    reopened = Stores.persistent_key_value_store("counts").build(tmp_path)
    assert reopened.get("b") == ValueAndTimestamp(2, 20)
    assert reopened.get("c") is None
    reopened.close()


OPS = st.lists(st.tuples(st.sampled_from(["put", "delete"]), st.text("abc", max_size=3),
                         st.integers(0, 50), st.integers(0, 5000)), max_size=40)


@settings(max_examples=40, deadline=None)
@given(ops=OPS)
def test_rocksdb_stores_hold_what_in_memory_stores_hold(tmp_path_factory, ops):
    """The same puts and deletes give the same key-values, in the same order, in a RocksDB and
    an in-memory store of each kind (key-value, window, session)."""
    directory = tmp_path_factory.mktemp("stores")
    pairs = [
        (Stores.in_memory_key_value_store("kv").build(),
         Stores.persistent_key_value_store("kv").build(directory)),
        (Stores.in_memory_window_store("w", 3000, 1000).build(),
         Stores.persistent_window_store("w", 3000, 1000).build(directory)),
        (Stores.in_memory_session_store("s", 3000).build(),
         Stores.persistent_session_store("s", 3000).build(directory)),
    ]
    for memory, rocks in pairs:
        assert not memory.persistent
        assert rocks.persistent
        for op, key, value, time in ops:
            for store in (memory, rocks):
                if store.name == "kv":
                    store.put(key, value) if op == "put" else store.delete(key)
                elif store.name == "w":
                    store.put(key, value if op == "put" else None, time - time % 1000)
                else:
                    store.put(Windowed(key, SessionWindow(time, time + value)),
                              value if op == "put" else None)
        assert rocks.all() == memory.all()
        for key in ("", "a", "ab", "abc", "b"):  # range queries: a RocksDB range scan
            if rocks.name == "w":
                assert rocks.fetch_range(key, 1000, 3000) == memory.fetch_range(key, 1000, 3000)
            elif rocks.name == "s":
                assert rocks.find_sessions(key, 1000, 3000) == memory.find_sessions(key, 1000,
                                                                                   3000)
        rocks.close()


def test_the_dsl_default_store_is_rocksdb_and_in_memory_on_request():
    """``default.dsl.store`` = ``rocksDB`` (``StreamsConfig``): a DSL aggregation's store is a
    RocksDB database under ``state.dir/<application.id>/<task>/rocksdb/<store>``;
    ``in_memory`` keeps it in memory (no rocksdb folder)."""
    for dsl_store, persistent in (("rocksDB", True), ("in_memory", False)):
        kernel = cluster({"in": 2})
        builder = StreamsBuilder()
        builder.stream("in").group_by_key().count(Materialized.as_("counts"))
        app = KafkaStreams(kernel, builder.build(), {"application.id": "app",
                                                     "default.dsl.store": dsl_store})
        app.start()
        kernel.run(until_ms=5_000)
        tasks = [t for th in app.threads for t in th.tasks.values()]
        assert len(tasks) == 2
        for active in tasks:
            assert active.task.stores["counts"].persistent is persistent
            database = app.state_dir / "app" / str(active.task_id) / "rocksdb" / "counts"
            assert (database / "CURRENT").exists() is persistent
        app.close()
        kernel.run(until_ms=10_000)


def test_each_instance_gets_its_own_state_directory_and_a_second_owner_fails():
    """``StateDirectory``: two instances on one state directory fail with Kafka's text; by
    default each simulated instance (its own machine) has its own folder under the kernel's
    temporary folder, with deterministic names."""
    kernel = cluster({"in": 1})
    builder = StreamsBuilder()
    builder.stream("in").group_by_key().count()
    first = KafkaStreams(kernel, builder.build(), {"application.id": "app"})
    second = KafkaStreams(kernel, builder.build(), {"application.id": "app"})
    assert (first.state_dir.name, second.state_dir.name) == ("instance-1", "instance-2")
    assert first.state_dir.parent == second.state_dir.parent
    shared = {"application.id": "app", "state.dir": str(first.state_dir)}
    with pytest.raises(StreamsError, match=r"Unable to initialize state, this can happen if "
                       r"multiple instances of Kafka Streams are running in the same state "
                       r"directory \(current state directory is \["):
        KafkaStreams(kernel, builder.build(), shared)
    first.close()  # never started: the directory is free again
    KafkaStreams(kernel, builder.build(), shared).close()


# --- changelog topics ----------------------------------------------------------------------------


def test_changelog_topics_named_configured_and_partitioned_as_kafka():
    """``ProcessorStateManager.storeChangelogTopic``: ``<application.id>-<store>-changelog``;
    ``UnwindowedUnversionedChangelogTopicConfig``: compact; ``WindowedChangelogTopicConfig``:
    compact,delete with retention = store retention + 1 day; as many partitions as tasks."""
    from sim.streams.windows import TimeWindows

    kernel = cluster({"in": 3})
    builder = StreamsBuilder()
    grouped = builder.stream("in").group_by_key()
    grouped.count(Materialized.as_("totals"))
    grouped.windowed_by(TimeWindows.of_size_and_grace(60_000, 5_000)).count(
        Materialized.as_("per-minute"))
    app = KafkaStreams(kernel, builder.build(), {"application.id": "pay"})
    app.start()
    topics = kernel.cluster.topics
    kv, windowed = topics["pay-totals-changelog"], topics["pay-per-minute-changelog"]
    assert (len(kv.partitions), len(windowed.partitions)) == (3, 3)
    assert kv.config["cleanup.policy"] == "compact"
    assert windowed.config["cleanup.policy"] == "compact,delete"
    assert windowed.config["retention.ms"] == 60_000 + 5_000 + 86_400_000
    app.close()


def test_caching_sends_fewer_changelog_records_than_no_cache():
    """``CachingKeyValueStore``: with the record cache on, repeated updates of a key within a
    commit interval reach the changelog once, at the flush; with it off, every update does."""
    counts = {}
    for cache in (0, 10 * 1024 * 1024):
        kernel = cluster({"in": 1})
        builder = StreamsBuilder()
        builder.stream("in").group_by_key().count(Materialized.as_("c"))
        app = KafkaStreams(kernel, builder.build(), {
            "application.id": "app", "statestore.cache.max.bytes": cache,
            "commit.interval.ms": 10_000})
        app.start()
        kernel.run(until_ms=3_000)
        produce(kernel, "in", [(f"k{i % 3}", i, None) for i in range(30)])
        kernel.run(until_ms=30_000)
        counts[cache] = kernel.cluster.partition("app-c-changelog", 0).log.high_watermark
        assert sorted(app.store("c").all()) == [("k0", 10), ("k1", 10), ("k2", 10)]
    assert counts[0] == 30
    assert counts[10 * 1024 * 1024] == 3


def test_state_directory_paths_do_not_depend_on_the_hash_seed():
    """Same scenario, any PYTHONHASHSEED: the same task directories and RocksDB contents."""
    script = Path(__file__).with_name("streams_state_determinism.py")
    outputs = {subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              check=True, env={"PYTHONHASHSEED": seed,
                                               "PYTHONPATH": str(script.parents[1])}).stdout
               for seed in ("0", "1", "12345")}
    assert len(outputs) == 1
    assert "0_0" in next(iter(outputs))


# --- the KIP-441 assignor ------------------------------------------------------------------------


def _tasks(n):
    from sim.streams.internal_topics import TaskId

    return [TaskId(0, p) for p in range(n)]


def test_high_availability_keeps_tasks_on_caught_up_clients_and_caps_warmups():
    """``HighAvailabilityTaskAssignor``: a newcomer lagging more than
    ``acceptable.recovery.lag`` on every task gets no active task from the caught-up owner but
    warm-up replicas, at most ``max.warmup.replicas`` of them."""
    from sim.streams.assignor import AssignmentConfigs, ThreadInfo, assign_tasks

    tasks = _tasks(6)
    members = {"a": ThreadInfo("A", 1), "b": ThreadInfo("B", 1)}
    lags = {"A": dict.fromkeys(tasks, 0), "B": dict.fromkeys(tasks, 50_000)}
    warmups: list[int] = []
    result = assign_tasks(tasks, members, {"a": set(tasks)}, set(tasks), lags,
                          AssignmentConfigs(max_warmup_replicas=2), warmups)
    assert (sorted(result["a"].active), result["b"].active) == (tasks, [])
    assert len(result["b"].standby) == 2
    assert warmups == [2]
    caught_up = {"A": dict.fromkeys(tasks, 0), "B": dict.fromkeys(tasks, 10_000)}
    result = assign_tasks(tasks, members, {"a": set(tasks)}, set(tasks), caught_up,
                          AssignmentConfigs(), warmups)
    assert (len(result["a"].active), len(result["b"].active)) == (3, 3)  # lag ≤ 10000: moves
    assert warmups[-1] == 0


def test_standbys_go_to_other_instances_never_beside_their_active():
    """``num.standby.replicas``: each stateful task gets that many standbys, each on an instance
    other than the one running it (``StandbyTaskAssignor``); stateless tasks get none."""
    from sim.streams.assignor import AssignmentConfigs, ThreadInfo, assign_tasks

    tasks = _tasks(4)
    members = {m: ThreadInfo(m.upper(), 1) for m in "abc"}
    result = assign_tasks(tasks, members, {}, set(tasks[:3]), {},
                          AssignmentConfigs(num_standby_replicas=2))
    for task in tasks:
        holders = [m for m, a in result.items() if task in a.standby]
        owner = [m for m, a in result.items() if task in a.active]
        assert len(owner) == 1
        assert owner[0] not in holders
        assert len(holders) == (2 if task in tasks[:3] else 0)


# --- changelog values of timestamped stores ------------------------------------------------------


def _changelog(kernel, topic):
    from tests.streams_runtime_helpers import read_topic

    return [(key, value, stamp) for _, key, value, stamp in read_topic(kernel, topic)]


def test_a_timestamped_stores_changelog_holds_the_plain_value_and_the_timestamp_as_the_records():
    """``ChangeLoggingTimestampedKeyValueBytesStore.log``: the changelog record's value is the
    raw value (``rawValue``), its timestamp the stored timestamp (``timestamp``): a count of 2
    whose last record came at 700 ms is the record (key, 2) at 700, not a pair."""
    kernel = cluster({"in": 1})
    builder = StreamsBuilder()
    builder.stream("in").group_by_key().count(Materialized.as_("c"))
    app = KafkaStreams(kernel, builder.build(), {"application.id": "app",
                                                 "statestore.cache.max.bytes": 0})
    app.start()
    kernel.run(until_ms=3_000)
    produce(kernel, "in", [("a", 1, 500), ("b", 1, 600), ("a", 1, 700), ("a", 1, 650)])
    kernel.run(until_ms=6_000)
    assert _changelog(kernel, "app-c-changelog") == [
        ("a", 1, 500), ("b", 1, 600), ("a", 2, 700), ("a", 3, 700)]  # max(700, 650)
    [task] = [a.task for th in app.threads for a in th.tasks.values()]
    assert task.stores["c"].get("a") == ValueAndTimestamp(3, 700)
    assert app.store("c").get("a") == 3  # interactive queries show the plain value
    app.close()


def test_a_restore_puts_value_and_record_timestamp_together_again(tmp_path):
    """``RecordConverters.rawValueToTimestampedValue``: a timestamped store restores (value,
    record timestamp) as a value-and-timestamp; a tombstone stays a delete; a plain store (the
    Processor API's ``Stores.persistentKeyValueStore``) and a session store take the value as
    it is (``StateManagerUtil.converterForStore``)."""
    from sim.streams.stores import StoreBuilder

    stamped = StoreBuilder("t", "key_value", timestamped=True).build(tmp_path / "t")
    stamped.restore_record("a", 3, 1_200)
    stamped.restore_record("b", 1, 50)
    stamped.restore_record("b", None, 60)
    assert stamped.all() == [("a", ValueAndTimestamp(3, 1_200))]
    plain = Stores.persistent_key_value_store("p").build(tmp_path / "p")
    plain.restore_record("a", 3, 1_200)
    assert plain.all() == [("a", 3)]
    session = StoreBuilder("s", "session", 10_000, timestamped=True).build()
    assert not session.timestamped
    session.restore_record(("a", 0, 10), 4, 10)
    assert session.fetch("a") == [(Windowed("a", SessionWindow(0, 10)), 4)]
    for store in (stamped, plain):
        store.close()


def test_a_windowed_count_restored_after_a_lost_disk_equals_the_store_before_the_crash():
    """A windowed count's changelog holds (key, window start) → plain count at the record's
    timestamp; a new owner without local state restores the same value-and-timestamp pairs
    (``TimestampedWindowStore``, ``ChangeLoggingTimestampedWindowBytesStore``)."""
    from sim.streams.windows import TimeWindows

    kernel = cluster({"in": 1})
    builder = StreamsBuilder()
    builder.stream("in").group_by_key().windowed_by(
        TimeWindows.of_size_and_grace(1_000, 10_000)).count(Materialized.as_("w"))
    config = {"application.id": "app", "statestore.cache.max.bytes": 0,
              "commit.interval.ms": 1_000}  # the input is committed before the crash
    first = KafkaStreams(kernel, builder.build(), config)
    first.start()
    kernel.run(until_ms=3_000)
    produce(kernel, "in", [("a", 1, 3_100), ("a", 1, 3_300), ("b", 1, 3_500), ("a", 1, 4_200)])
    kernel.run(until_ms=6_000)
    [task] = [a.task for th in first.threads for a in th.tasks.values()]
    before = task.stores["w"].all()
    assert [v for _, v in before] == [ValueAndTimestamp(2, 3_300), ValueAndTimestamp(1, 4_200),
                                      ValueAndTimestamp(1, 3_500)]
    assert [v for _, v, _ in _changelog(kernel, "app-w-changelog")] == [1, 2, 1, 1]
    first.crash(lose_state=True)
    second = first.restart()
    kernel.run(until_ms=80_000)  # the crashed member leaves after session.timeout.ms
    [task] = [a.task for th in second.threads for a in th.tasks.values()]
    assert task.stores["w"].all() == before
    second.close()
