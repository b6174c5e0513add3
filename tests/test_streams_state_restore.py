"""Crash and restore: changelogs rebuild stores, checkpoints shorten restores, standbys and
KIP-441 warm-ups keep failover short.

Kafka classes pinned here: ``StoreChangelogReader`` (restore from the checkpoint or the
beginning, up to the end offset seen at registration; ``OffsetOutOfRange`` → corrupted → wipe),
``ProcessorStateManager`` / ``AbstractTask.maybeCheckpoint`` (checkpoint past 10,000 records or
on clean close, never at a crash), ``StandbyTask``, ``HighAvailabilityTaskAssignor`` (caught-up
clients, warm-up replicas, probing rebalances).
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.faults import schedule
from sim.records import TopicPartition
from sim.streams import KafkaStreams, StreamsBuilder
from sim.streams.events import STREAMS_CHECKPOINT, STREAMS_RESTORE
from sim.streams.faults import StreamsCrash, StreamsRestart
from sim.streams.kafka_streams import instances
from sim.streams.materialized import Materialized
from sim.streams.state_directory import write_checkpoint
from sim.streams.stores import ValueAndTimestamp
from tests.streams_runtime_helpers import cluster, produce


def counting_app(kernel, config=None, instances=2):
    builder = StreamsBuilder()
    builder.stream("in").group_by_key().count(Materialized.as_("counts")).to_stream().to("out")
    settings_ = {"application.id": "app", "commit.interval.ms": 1000, **(config or {})}
    apps = [KafkaStreams(kernel, builder.build(), settings_) for _ in range(instances)]
    for app in apps:
        app.start()
    return apps


def feed(kernel, rounds, keys=10, step_ms=200, start=0):
    """``rounds`` batches of one record per key; returns the true count per key."""
    for i in range(rounds):
        produce(kernel, "in", [(f"k{j}", start + i, None) for j in range(keys)])
        kernel.run(until_ms=kernel.now_ms + step_ms)
    return Counter({f"k{j}": rounds for j in range(keys)})


def restored_rows(app):
    frame = app.restore_frame()
    return frame[(frame.kind == "active") & (frame.state == "COMPLETED")]


def plain(items):
    return {k: v.value if isinstance(v, ValueAndTimestamp) else v for k, v in items}


# --- a restored store equals the store before the crash ------------------------------------------


@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(crash_round=st.integers(1, 25), lose_state=st.booleans(), seed=st.integers(0, 3),
       partitions=st.integers(1, 3))
def test_a_restored_store_equals_the_store_before_the_crash(crash_round, lose_state, seed,
                                                            partitions):
    """Without a record cache every store change goes to the changelog; after a crash (state
    directory kept or lost) the new owner's restored store equals, key by key, the crashed
    owner's store at the crash, before it processes anything (``StoreChangelogReader``)."""
    kernel = cluster({"in": partitions, "out": partitions}, seed=seed)
    apps = counting_app(kernel, {"statestore.cache.max.bytes": 0})
    kernel.run(until_ms=4_000)
    feed(kernel, crash_round)
    before = {t: dict(a.task.stores["counts"].all()) for th in apps[0].threads
              for t, a in th.tasks.items()}
    seen = {}
    for thread in apps[1].threads:
        original = thread.reader.on_restored

        def snapshot(task_id, thread=thread, original=original):
            seen[task_id] = dict(thread.tasks[task_id].task.stores["counts"].all())
            original(task_id)

        thread.reader.on_restored = snapshot
    apps[0].crash(lose_state=lose_state)
    feed(kernel, 5, start=crash_round)
    kernel.run(until_ms=kernel.now_ms + 60_000)
    assert set(before) <= set(seen)  # every task of the crashed instance moved and restored
    for task_id, store in before.items():
        assert seen[task_id] == store


# --- at-least-once counts ------------------------------------------------------------------------


@pytest.mark.slow
@settings(max_examples=5, deadline=None)
@given(crashes=st.dictionaries(st.integers(0, 1), st.tuples(st.integers(6_000, 30_000),
                                                            st.booleans()), min_size=1),
       seed=st.integers(0, 3))
def test_at_least_once_counts_are_never_below_the_true_counts(crashes, seed):
    """``at_least_once``: records processed since the last commit are processed again after a
    crash, so a restored count can include them twice — never less than the truth."""
    kernel = cluster({"in": 2, "out": 2}, seed=seed)
    apps = counting_app(kernel, {"commit.interval.ms": 5_000})
    names = [app.client_id for app in apps]
    for instance, (at, lose_state) in sorted(crashes.items()):
        schedule(kernel, at, StreamsCrash(names[instance], lose_state))
        schedule(kernel, at + 2_000, StreamsRestart(names[instance]))
    truth = feed(kernel, 150, step_ms=200)
    kernel.run(until_ms=kernel.now_ms + 120_000)
    live = [i for i in instances(kernel) if i.state is KafkaStreams.State.RUNNING]
    counts = {}
    for app in live:
        counts.update(plain(app.store("counts").all()))
    assert set(counts) == set(truth)
    assert all(counts[k] >= truth[k] for k in truth)


def test_a_crash_after_processing_before_the_commit_double_counts():
    """Kafka's documented at-least-once effect: the changelog already holds the counts of
    records whose input offsets were not committed; they are read and counted again."""
    kernel = cluster({"in": 1, "out": 1})
    apps = counting_app(kernel, {"commit.interval.ms": 60_000, "statestore.cache.max.bytes": 0})
    kernel.run(until_ms=8_000)
    owner = next(a for a in apps if any(th.tasks for th in a.threads))
    other = next(a for a in apps if a is not owner)
    truth = feed(kernel, 20)
    owner.crash()
    kernel.run(until_ms=kernel.now_ms + 60_000)
    counts = plain(other.store("counts").all())
    assert all(counts[k] == 2 * truth[k] for k in truth)  # nothing was committed: all twice


# --- checkpoints ---------------------------------------------------------------------------------


def checkpoint_restore(lose_state):
    kernel = cluster({"in": 1, "out": 1})
    [app] = counting_app(kernel, {"statestore.cache.max.bytes": 0, "commit.interval.ms": 500},
                         instances=1)
    kernel.run(until_ms=3_000)
    feed(kernel, 60, keys=200, step_ms=100)  # 12,000 changelog records: one checkpoint
    feed(kernel, 5, keys=200, step_ms=100, start=60)
    kernel.run(until_ms=kernel.now_ms + 2_000)
    checkpoint = app.state_dir / "app" / "0_0" / ".checkpoint"
    lines = checkpoint.read_text(encoding="utf-8").splitlines()
    changelog_end = kernel.cluster.partition("app-counts-changelog", 0).log.high_watermark
    app.crash(lose_state=lose_state)
    restarted = app.restart()
    kernel.run(until_ms=kernel.now_ms + 60_000)
    [row] = restored_rows(restarted).to_dict("records")
    return lines, changelog_end, row, restarted


def test_restore_from_the_checkpoint_reads_fewer_records_than_from_scratch():
    """``AbstractTask.maybeCheckpoint``: past 10,000 changelog records a commit rewrites the
    checkpoint (counted from the offsets last checkpointed or restored,
    ``offsetSnapshotSinceLastFlush``); a crash writes none. A restart with the state directory
    kept restores from the checkpointed offset + 1; one that lost it restores the whole
    changelog — and takes longer."""
    lines, end, kept, restarted = checkpoint_restore(lose_state=False)
    assert lines[:2] == ["0", "1"]
    topic, partition, offset = lines[2].split()
    assert (topic, partition) == ("app-counts-changelog", "0")
    assert 10_000 < int(offset) < end - 1  # the commits after it did not rewrite it
    assert kept["start_offset"] == int(offset) + 1
    assert kept["restored"] == end - int(offset) - 1
    _, end_lost, lost, _ = checkpoint_restore(lose_state=True)
    assert (lost["start_offset"], lost["restored"]) == (0, end_lost)
    assert kept["restored"] < lost["restored"]
    assert kept["end_ms"] - kept["start_ms"] < lost["end_ms"] - lost["start_ms"]
    assert restarted.process_id == restarted.client_id.removeprefix("app-")
    written = restarted.kernel.trace.frame(STREAMS_CHECKPOINT)
    assert len(written) == 1  # the restored offsets count as checkpointed: no rewrite at once


def test_a_clean_close_writes_the_checkpoint_and_a_restart_restores_nothing():
    """A clean close always checkpoints (``closeClean``): the next start restores nothing."""
    kernel = cluster({"in": 1, "out": 1})
    [app] = counting_app(kernel, instances=1)
    kernel.run(until_ms=3_000)
    feed(kernel, 10)
    app.close()
    kernel.run(until_ms=kernel.now_ms + 5_000)
    end = kernel.cluster.partition("app-counts-changelog", 0).log.high_watermark
    checkpoint = (app.state_dir / "app" / "0_0" / ".checkpoint").read_text(encoding="utf-8")
    assert checkpoint.splitlines() == ["0", "1", f"app-counts-changelog 0 {end - 1}"]
    restarted = app.restart()
    kernel.run(until_ms=kernel.now_ms + 60_000)
    [row] = restored_rows(restarted).to_dict("records")
    assert (row["start_offset"], row["end_offset"], row["restored"]) == (end, end, 0)
    assert plain(restarted.store("counts").all()) == {f"k{j}": 10 for j in range(10)}


def test_a_checkpoint_beyond_the_log_is_a_corrupted_task_restored_from_scratch(tmp_path):
    """``OffsetOutOfRange`` on the restore consumer → ``TaskCorruptedException``: the store is
    wiped and restored from the log start (a ``corrupted`` restore event)."""
    kernel = cluster({"in": 1, "out": 1})
    [app] = counting_app(kernel, {"state.dir": str(tmp_path)}, instances=1)
    kernel.run(until_ms=3_000)
    feed(kernel, 10)
    app.close()
    kernel.run(until_ms=kernel.now_ms + 5_000)
    write_checkpoint(tmp_path / "app" / "0_0" / ".checkpoint",
                     {TopicPartition("app-counts-changelog", 0): 1_000_000})
    restarted = app.restart()
    kernel.run(until_ms=kernel.now_ms + 30_000)

    actions = list(kernel.trace.frame(STREAMS_RESTORE).action)
    assert "corrupted" in actions
    end = kernel.cluster.partition("app-counts-changelog", 0).log.high_watermark
    [row] = restored_rows(restarted).to_dict("records")
    assert (row["start_offset"], row["restored"]) == (0, end)
    assert plain(restarted.store("counts").all()) == {f"k{j}": 10 for j in range(10)}


def test_a_standby_whose_changelog_was_truncated_below_its_position_restores_from_scratch():
    """A standby read changelog records that an unclean election then truncated, and could not
    fetch while the new leader's log grew past its position. Its restore consumer validates
    the position at the new leader epoch (KIP-320, OffsetsForLeaderEpoch): the epoch ends below
    it, ``LogTruncationException`` (``auto.offset.reset=none``, an ``InvalidOffsetException``)
    → ``TaskCorruptedException`` (``StoreChangelogReader``): the store is wiped and follows the
    log from its start, so it ends holding exactly what the changelog holds. Unvalidated, it
    kept the truncated records and skipped the new leader's records below its position."""
    from sim import faults
    from sim.kernel import Kernel
    from sim.payloads import payload
    from sim.producer import Producer
    from sim.streams.changelog_reader import StoreChangelogReader
    from sim.streams.internal_topics import TaskId
    from sim.streams.stores import InMemoryKeyValueStore

    kernel = Kernel(seed=0, brokers=3, broker_configs={"replica.lag.time.max.ms": 5000})
    kernel.cluster.create_topic("counts-changelog", replica_assignment=[[0, 1, 2]],
                                configs={"unclean.leader.election.enable": True})
    producer = Producer(kernel, {"acks": "1", "enable.idempotence": False, "linger.ms": 0})

    def write() -> object:
        for i in range(6000):
            producer.send("counts-changelog", key=f"k{i}", value=i, partition=0)
            yield kernel.env.timeout(10)

    kernel.env.process(write())
    reader = StoreChangelogReader(kernel, "t", lambda _task: None)
    store = InMemoryKeyValueStore("counts")
    changelog = reader.register(TaskId(0, 0), store, TopicPartition("counts-changelog", 0),
                                None, active=False)
    kernel.env.process(reader.run())
    # broker 1 falls out of the ISR, then the other two crash: 1 is elected uncleanly
    faults.schedule(kernel, 2_000, faults.NetworkPartition((1,), (0, 2)))
    faults.schedule(kernel, 8_000, faults.NetworkPartition((1,), (reader.client_id,)))
    for broker in (0, 2):
        faults.schedule(kernel, 9_000, faults.CrashBroker(broker))
    faults.schedule(kernel, 9_500, faults.HealNetwork((1,), (0, 2)))
    faults.schedule(kernel, 40_000, faults.HealNetwork((1,), (reader.client_id,)))
    kernel.run(until_ms=9_000)
    read = changelog.position
    part = kernel.cluster.partition("counts-changelog", 0)
    kernel.run(until_ms=40_000)
    assert part.leader == 1
    kept = part.log.end_offset_for_epoch(0)
    assert kept < read < part.log.log_end_offset  # the case under test
    kernel.run(until_ms=80_000)
    log = part.log
    assert changelog.position == log.high_watermark == log.log_end_offset
    replayed = dict(payload(kernel, record_id) for record_id in
                    log.column("record_id", log.log_start_offset, log.log_end_offset).tolist())
    assert dict(store.all()) == replayed
    actions = kernel.trace.frame(STREAMS_RESTORE)
    corrupted = actions[actions.action == "corrupted"]
    assert list(zip(corrupted.start_offset, corrupted.end_offset, strict=True)) == [(read, 0)]


# --- standbys and KIP-441 ------------------------------------------------------------------------


def failover_restored(standbys):
    kernel = cluster({"in": 2, "out": 2})
    apps = counting_app(kernel, {"num.standby.replicas": standbys,
                                 "statestore.cache.max.bytes": 0})
    kernel.run(until_ms=4_000)
    feed(kernel, 40)
    kernel.run(until_ms=kernel.now_ms + 2_000)
    meta = apps[1].metadata_for_local_threads()[0]
    apps[0].crash(lose_state=True)
    kernel.run(until_ms=kernel.now_ms + 60_000)
    rows = restored_rows(apps[1])
    return meta, rows[rows.start_ms > 10_000], kernel


def test_a_standby_makes_failover_restore_almost_nothing():
    """``num.standby.replicas=1``: the surviving instance has a warm copy of the crashed one's
    task (``StandbyTask``); failover promotes it and restores only what it had not read (here
    nothing), where without a standby it restores the whole changelog partition."""
    meta, warm, _ = failover_restored(1)
    assert [t.task_id for t in meta.standby_tasks] != []
    [promoted] = warm.to_dict("records")
    assert promoted["restored"] == 0
    assert promoted["start_offset"] == promoted["end_offset"] > 0
    meta, cold, kernel = failover_restored(0)
    assert meta.standby_tasks == ()
    [row] = cold.to_dict("records")
    end = kernel.cluster.partition("app-counts-changelog", row["partition"]).log.high_watermark
    assert (row["start_offset"], row["restored"]) == (0, end)


def test_an_eos_standby_checkpoints_past_the_threshold_and_its_promotion_deletes_the_file():
    """Under exactly_once_v2 a standby holds committed records only, so its commits checkpoint
    it past 10,000 records (``StandbyTask.postCommit`` → ``maybeCheckpoint``, EOS or not). When
    it is promoted, the checkpoint is read and deleted as for any task initialised under EOS
    (``ProcessorStateManager.initializeStoreOffsetsFromCheckpoint``, recycled stores included):
    left on disk it would vouch, after a crash, for a store holding the active task's
    uncommitted writes."""
    from sim.streams.internal_topics import TaskId

    kernel = cluster({"in": 1, "out": 1})
    apps = counting_app(kernel, {"num.standby.replicas": 1, "statestore.cache.max.bytes": 0,
                                 "processing.guarantee": "exactly_once_v2",
                                 "session.timeout.ms": 10_000})
    produce(kernel, "in", [("k0", 0, None)])
    kernel.run(until_ms=15_000)
    [warm] = [a for a in apps if a.metadata_for_local_threads()[0].standby_tasks]
    [active] = [a for a in apps if a is not warm]
    produce(kernel, "in", [(f"k{j % 50}", j, None) for j in range(10_050)])
    kernel.run(until_ms=kernel.now_ms + 20_000)
    path = warm.state_directory.checkpoint_path(TaskId(0, 0))
    checkpoints = kernel.trace.frame(STREAMS_CHECKPOINT)
    assert (checkpoints.component.str.startswith(warm.client_id)).any()
    assert path.exists()
    active.crash()
    kernel.run(until_ms=kernel.now_ms + 30_000)
    assert [t.task_id for t in warm.metadata_for_local_threads()[0].active_tasks] == ["0_0"]
    assert not path.exists()


def test_warm_up_replica_then_probing_rebalance_moves_the_active_back():
    """KIP-441 (``HighAvailabilityTaskAssignor``): an instance back without state is not caught
    up (lag > ``acceptable.recovery.lag``), so its task stays where it runs and it gets a warm-up
    replica; the probing rebalance ``probing.rebalance.interval.ms`` later moves the task back."""
    kernel = cluster({"in": 2, "out": 2})
    apps = counting_app(kernel, {"acceptable.recovery.lag": 5,
                                 "probing.rebalance.interval.ms": 60_000})
    kernel.run(until_ms=4_000)
    feed(kernel, 20)
    apps[0].crash(lose_state=True)
    kernel.run(until_ms=kernel.now_ms + 60_000)
    assert len([t for m in apps[1].metadata_for_local_threads() for t in m.active_tasks]) == 2
    back = apps[0].restart()
    kernel.run(until_ms=kernel.now_ms + 20_000)
    [meta] = back.metadata_for_local_threads()
    assert meta.active_tasks == ()
    assert len(meta.standby_tasks) == 1  # the warm-up replica
    warmup = back.restore_frame()
    assert list(warmup.kind) == ["standby"]
    assert warmup.remaining.iloc[0] == 0
    kernel.run(until_ms=kernel.now_ms + 60_000)  # the probing rebalance
    [meta] = back.metadata_for_local_threads()
    assert len(meta.active_tasks) == 1
    assert meta.standby_tasks == ()
    assert len([t for m in apps[1].metadata_for_local_threads() for t in m.active_tasks]) == 1
    promoted = restored_rows(back).to_dict("records")
    assert [r["restored"] for r in promoted] == [0]  # the warm-up had it all


def test_a_caught_up_newcomer_takes_its_share_at_once():
    """With changelogs shorter than ``acceptable.recovery.lag`` every instance is caught up
    (an instance without state lags the whole changelog), so balance moves tasks at once."""
    kernel = cluster({"in": 2, "out": 2})
    [first] = counting_app(kernel, instances=1)
    kernel.run(until_ms=4_000)
    feed(kernel, 5)
    [second] = counting_app(kernel, instances=1)
    kernel.run(until_ms=kernel.now_ms + 20_000)
    assert [len(m.active_tasks) for a in (first, second)
            for m in a.metadata_for_local_threads()] == [1, 1]
    assert all(m.standby_tasks == () for m in second.metadata_for_local_threads())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_threads_per_instance_hand_tasks_and_standbys_over_without_lock_errors(seed):
    """With two stream threads per instance, an instance joining and another leaving move
    standbys and active tasks between threads of one instance; a task's RocksDB has one owner at
    a time (``StateDirectory`` task locks), so a thread takes a standby over from its sibling
    instead of opening the database twice (RocksDB would refuse: its ``LOCK`` is held)."""
    kernel = cluster({"in": 4, "out": 4}, seed=seed)
    config = {"num.stream.threads": 2, "num.standby.replicas": 1}
    first = counting_app(kernel, config)
    kernel.run(until_ms=6_000)
    truth = feed(kernel, 10)
    [joined] = counting_app(kernel, config, instances=1)
    truth += feed(kernel, 10, start=10)
    first[0].close()
    kernel.run(until_ms=kernel.now_ms + 60_000)
    survivors = (first[1], joined)
    assert [a.state for a in survivors] == [KafkaStreams.State.RUNNING] * 2
    counts = {**plain(survivors[0].store("counts").all()),
              **plain(survivors[1].store("counts").all())}
    assert all(counts[k] >= truth[k] for k in truth)
    standbys = sorted(t.task_id for a in survivors for m in a.metadata_for_local_threads()
                      for t in m.standby_tasks)
    assert standbys == ["0_0", "0_1", "0_2", "0_3"]


@pytest.mark.parametrize("mbps", [1, 4])
def test_restore_time_follows_changelog_bytes_over_the_network(mbps):
    """The restore consumer fetches at most 1,000 records at a time (``max.poll.records``), each
    fetch a round trip to the leader plus its bytes at the link bandwidth: a slower link or a
    longer changelog takes proportionally longer."""
    from sim.kernel import Kernel
    from sim.streams.changelog_reader import MAX_POLL_RECORDS, RECORD_OVERHEAD_BYTES

    kernel = Kernel(seed=1, brokers=1, broker_configs={"lab.network.bandwidth.mbps": mbps})
    for topic in ("in", "out"):
        kernel.cluster.create_topic(topic, 1)
    [app] = counting_app(kernel, {"statestore.cache.max.bytes": 0}, instances=1)
    kernel.run(until_ms=3_000)
    feed(kernel, 30, keys=100, step_ms=300)
    kernel.run(until_ms=kernel.now_ms + 3_000)
    log = kernel.cluster.partition("app-counts-changelog", 0).log
    end = log.high_watermark
    size = int(log.column("value_size", 0, end).sum()) + RECORD_OVERHEAD_BYTES * end
    app.crash(lose_state=True)
    restarted = app.restart()
    kernel.run(until_ms=kernel.now_ms + 60_000)
    [row] = restored_rows(restarted).to_dict("records")
    assert row["restored"] == end == 3_000
    fetches = -(-end // MAX_POLL_RECORDS)
    latency = kernel.cluster.brokers[0].latency_ms
    expected = fetches * 2 * latency + size / (mbps * 1e6 / 8 / 1000)
    assert row["end_ms"] - row["start_ms"] == pytest.approx(expected, abs=1e-6)


def test_in_memory_stores_have_no_checkpoint_and_always_restore_from_the_start():
    """``ProcessorStateManager.checkpoint`` writes only persistent stores' offsets: an
    in-memory store comes back empty after any restart and restores its whole changelog."""
    kernel = cluster({"in": 1, "out": 1})
    [app] = counting_app(kernel, {"default.dsl.store": "in_memory"}, instances=1)
    kernel.run(until_ms=3_000)
    feed(kernel, 10)
    app.close()
    kernel.run(until_ms=kernel.now_ms + 5_000)
    assert not (app.state_dir / "app" / "0_0" / ".checkpoint").exists()
    assert not (app.state_dir / "app" / "0_0" / "rocksdb").exists()
    restarted = app.restart()
    kernel.run(until_ms=kernel.now_ms + 30_000)
    end = kernel.cluster.partition("app-counts-changelog", 0).log.high_watermark
    [row] = restored_rows(restarted).to_dict("records")
    assert (row["start_offset"], row["restored"]) == (0, end)
    assert plain(restarted.store("counts").all()) == {f"k{j}": 10 for j in range(10)}


def test_crash_and_restart_refuse_the_wrong_state_with_one_clear_line():
    """A crash needs a running instance, a restart a stopped one; a fault naming no instance
    lists the instances there are."""
    from sim.errors import ConfigError, StreamsError

    kernel = cluster({"in": 1, "out": 1})
    [app] = counting_app(kernel, instances=1)
    with pytest.raises(StreamsError, match="crash\\(\\) or close\\(\\) it before restarting"):
        app.restart()
    with pytest.raises(ConfigError, match=f"instances are: {app.client_id}"):
        StreamsCrash("nobody").apply(kernel)
    app.crash()
    with pytest.raises(StreamsError, match="Only a running instance can crash"):
        app.crash()


def test_scenario_files_crash_and_restart_streams_instances():
    """``streams_crash`` / ``streams_restart`` faults in a scenario file: the crashed
    instance's tasks move, the restarted one (same client id, a new process) rejoins, and every
    input record still has its result (at-least-once)."""
    import yaml

    from sim import scenarios
    from sim.errors import ScenarioError
    from tests.streams_runtime_helpers import read_topic

    data = {
        "name": "s", "seed": 1, "duration_ms": 90_000,
        "topics": [{"name": "in", "partitions": 2}, {"name": "out", "partitions": 2}],
        "producers": [{"workload": {"topic": "in", "records": 300, "rate_per_s": 10,
                                    "keys": {"uniform": 10}}}],
        "streams": [{"application.id": "app", "app": "tag", "input": "in", "output": "out",
                     "instances": 2, "config": {"commit.interval.ms": 5000}}],
        "faults": [{"at_ms": 10_000, "streams_crash": {"instance": "app-1",
                                                       "lose_state": True}},
                   {"at_ms": 15_000, "streams_restart": {"instance": "app-1"}}],
    }
    kernel = scenarios.parse(yaml.safe_dump(data), "s.yaml").run()
    inputs = {(key, time) for _, key, _, time in read_topic(kernel, "in")}
    outputs = [(key, time) for _, key, _, time in read_topic(kernel, "out")]
    assert len(inputs) == 300
    assert set(outputs) == inputs
    live = [i for i in instances(kernel) if i.state is KafkaStreams.State.RUNNING]
    assert sorted(i.client_id for i in live) == ["app-1", "app-2"]
    data["faults"] = [{"at_ms": 10_000, "streams_crash": {"instance": "app-1",
                                                          "lose_state": "yes"}}]
    with pytest.raises(ScenarioError, match=r"faults\[0\]\.streams_crash\.lose_state"):
        scenarios.parse(yaml.safe_dump(data), "s.yaml")


# --- the instance's state while its tasks restore -------------------------------------------------


def test_an_instance_is_rebalancing_until_its_restoring_tasks_are_restored():
    """``StreamThread`` leaves PARTITIONS_ASSIGNED for RUNNING only once no active task is
    restoring (``TaskManager.checkStateUpdater`` returns true; ``tryToCompleteRestoration``
    without the state updater), so the instance that took over a crashed one's tasks stays
    REBALANCING while it restores their stores, and is RUNNING only at or after the last
    restore's end."""
    from sim.streams.events import STREAMS_STATE

    kernel = cluster({"in": 2, "out": 2}, seed=3)
    apps = counting_app(kernel, {"statestore.cache.max.bytes": 0})
    kernel.run(until_ms=4_000)
    feed(kernel, 40)
    crash_ms = kernel.now_ms
    apps[0].crash(lose_state=True)
    kernel.run(until_ms=crash_ms + 60_000)
    survivor = apps[1].client_id
    restores = kernel.trace.frame(STREAMS_RESTORE)
    ends = restores[(restores.action == "end") & (restores.time_ms > crash_ms)
                    & restores.component.str.startswith(survivor)]
    assert len(ends)  # the survivor restored the crashed instance's tasks
    states = kernel.trace.frame(STREAMS_STATE)
    states = states[(states.component == survivor) & (states.time_ms > crash_ms)]
    assert "REBALANCING" in set(states.new)
    running = states[states.new == "RUNNING"]
    assert len(running)
    assert running.time_ms.min() >= ends.time_ms.max()
    assert apps[1].state is KafkaStreams.State.RUNNING
