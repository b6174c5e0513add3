"""Exactly once in Kafka Streams (``processing.guarantee=exactly_once_v2``, KIP-447).

Kafka classes pinned here: ``ActiveTaskCreator`` / ``StreamsProducer`` (one transactional producer
per stream thread, ``transactional.id`` ``<application.id>-<processId>-<threadIdx>``;
``commitTransaction`` sends the offsets with the consumer's group metadata, then commits),
``StreamsConfig`` EOS overrides (``isolation.level=read_committed``, ``transaction.timeout.ms``
10,000, ``commit.interval.ms`` 100), ``ProcessorStateManager`` (the checkpoint is deleted once read
under EOS; a store with data and no checkpoint is corrupted and wiped), ``StreamTask.postCommit``
(no checkpoint at a commit under EOS), ``TaskManager.handleLostAll`` (lost tasks close dirty,
the open transaction is aborted and the producer replaced), ``StoreChangelogReader`` (an active
task restores to the high watermark listed read_uncommitted, KAFKA-10167).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.broker.transaction_coordinator import TXN_STATE
from sim.consumer import Consumer
from sim.consumer.events import CONSUMER_ASSIGNED, CONSUMER_LOST
from sim.consumer.fetcher import _visible
from sim.errors import InvalidStateStoreError
from sim.faults import HealNetwork, NetworkPartition, schedule
from sim.payloads import payload
from sim.records import TopicPartition
from sim.streams import KafkaStreams
from sim.streams.events import STREAMS_PROCESS, STREAMS_TASK
from sim.streams.faults import StreamsCrash, StreamsRestart
from sim.streams.kafka_streams import instances
from sim.streams.scenario import StreamsHang
from tests.streams_runtime_helpers import cluster, read_topic
from tests.test_streams_state_restore import counting_app, feed, plain, restored_rows

EOS = {"processing.guarantee": "exactly_once_v2"}


def live_counts(kernel):
    counts = {}
    for app in instances(kernel):
        if app.state is KafkaStreams.State.RUNNING:
            counts.update(plain(app.store("counts").all()))
    return counts


def read_committed(kernel, topic):
    """What a read_committed reader of ``topic`` sees: (key, value) per record, in order."""
    consumer = Consumer(kernel, {"isolation.level": "read_committed",
                                 "auto.offset.reset": "earliest", "group.id": "reader"})
    consumer.subscribe([topic])
    seen = []
    for _ in range(40):
        records = consumer.poll(200)
        seen += [payload(kernel, r.record_id) for r in records]
    return seen


def test_each_thread_gets_a_transactional_producer_named_as_kafka_names_it():
    """``<application.id>-<processId>-<threadIdx>`` (EOS v2), read_committed consumers."""
    kernel = cluster({"in": 2, "out": 2})
    [app] = counting_app(kernel, {**EOS, "num.stream.threads": 2}, instances=1)
    ids = [t.producer.config["transactional.id"] for t in app.threads]
    assert ids == [f"app-{app.process_id}-1", f"app-{app.process_id}-2"]
    assert all(t.consumer.config["isolation.level"] == "read_committed" for t in app.threads)
    assert all(t.producer.config["transaction.timeout.ms"] == 10_000 for t in app.threads)
    assert app.config["commit.interval.ms"] == 1000  # set explicitly by counting_app


def test_a_crash_before_the_commit_counts_once_under_eos_and_twice_at_least_once():
    """The at-least-once double count of ``test_a_crash_after_processing_before_the_commit``
    does not happen under EOS: the changelog writes of the open transaction are aborted and
    restore reads committed records only; the read_committed output has no duplicates."""
    results = {}
    for guarantee in ("at_least_once", "exactly_once_v2"):
        kernel = cluster({"in": 1, "out": 1})
        apps = counting_app(kernel, {"processing.guarantee": guarantee,
                                     "commit.interval.ms": 60_000,
                                     "statestore.cache.max.bytes": 0})
        kernel.run(until_ms=8_000)
        owner = next(a for a in apps if any(th.tasks for th in a.threads))
        other = next(a for a in apps if a is not owner)
        truth = feed(kernel, 20)
        owner.crash()
        kernel.run(until_ms=kernel.now_ms + 80_000)
        results[guarantee] = (truth, plain(other.store("counts").all()),
                              read_committed(kernel, "out"))
    truth, counts, _ = results["at_least_once"]
    assert all(counts[k] == 2 * truth[k] for k in truth)
    truth, counts, output = results["exactly_once_v2"]
    assert counts == dict(truth)
    assert len(output) == len(set(output))  # (key, count) pairs: no update written twice
    assert {k: max(v for kk, v in output if kk == k) for k, _ in output} == dict(truth)


def test_random_crash_schedules_count_exactly_under_eos_and_double_at_least_once():
    """Crashes (state kept or lost), restarts and hangs past the session timeout, at random
    times: under exactly_once_v2 the counts equal the true counts and the read_committed
    output never repeats an update; the same schedules under at_least_once count too much."""
    over = [run_schedule(seed) for seed in range(4)]
    assert all(o["exactly_once_v2"] == 0 for o in over)
    assert all(o["at_least_once"] >= 0 for o in over)
    assert sum(o["at_least_once"] for o in over) > 0  # the check can fail


def run_schedule(seed):
    rng = np.random.default_rng(seed)
    faults = []
    for instance in (0, 1):
        at = int(rng.integers(6_000, 30_000))
        kind = ["crash", "crash-lose", "hang"][int(rng.integers(0, 3))]
        faults.append((instance, at, kind))
    over = {}
    for guarantee in ("at_least_once", "exactly_once_v2"):
        kernel = cluster({"in": 2, "out": 2}, seed=seed)
        apps = counting_app(kernel, {"processing.guarantee": guarantee,
                                     "commit.interval.ms": 5_000 if guarantee ==
                                     "at_least_once" else 100})
        names = [a.client_id for a in apps]
        for instance, at, kind in faults:
            if kind == "hang":
                schedule(kernel, at, StreamsHang(names[instance], 15_000))
            else:
                schedule(kernel, at, StreamsCrash(names[instance], kind == "crash-lose"))
                schedule(kernel, at + 2_000, StreamsRestart(names[instance]))
        truth = feed(kernel, 150, step_ms=200)
        kernel.run(until_ms=kernel.now_ms + 120_000)
        counts = live_counts(kernel)
        output = read_committed(kernel, "out")
        if guarantee == "exactly_once_v2":
            assert counts == dict(truth), faults
            assert len(output) == len(set(output)), faults
        over[guarantee] = sum(counts[k] - truth[k] for k in truth)
    return over


def test_latency_frame_shows_the_cost_of_exactly_once():
    """A record becomes visible to read_committed readers at its transaction's commit, not at
    its ack: end-to-end latency grows with ``commit.interval.ms``."""
    means = {}
    for guarantee, interval in (("at_least_once", 1000), ("exactly_once_v2", 1000)):
        kernel = cluster({"in": 1, "out": 1})
        [app] = counting_app(kernel, {"processing.guarantee": guarantee,
                                      "commit.interval.ms": interval,
                                      "statestore.cache.max.bytes": 0}, instances=1)
        kernel.run(until_ms=5_000)
        feed(kernel, 20, start=5_000, step_ms=200)
        kernel.run(until_ms=kernel.now_ms + 5_000)
        frame = app.latency_frame()
        assert len(frame) == 200
        means[guarantee] = frame.latency_ms.mean()
    assert means["exactly_once_v2"] > means["at_least_once"] + 200


def task_events(kernel, detail_prefix):
    frame = kernel.trace.frame(STREAMS_TASK)
    return frame[frame.iloc[:, -1].astype(str).str.startswith(detail_prefix)]


def test_eos_checkpoint_is_read_once_and_a_store_without_one_is_wiped_and_restored():
    """Under EOS a clean close writes the checkpoint; the next start reads it (restoring
    nothing) and deletes it; after a crash the store has data but no checkpoint, so it is
    wiped and restored from the changelog's start — and counts stay exact."""
    kernel = cluster({"in": 1, "out": 1})
    [app] = counting_app(kernel, {**EOS, "statestore.cache.max.bytes": 0}, instances=1)
    kernel.run(until_ms=3_000)
    truth = feed(kernel, 10)
    app.close()
    kernel.run(until_ms=kernel.now_ms + 2_000)
    checkpoint = app.state_dir / "app" / "0_0" / ".checkpoint"
    assert checkpoint.exists()
    restarted = app.restart()
    kernel.run(until_ms=kernel.now_ms + 5_000)
    assert not checkpoint.exists()  # deleted once read
    [row] = restored_rows(restarted).to_dict("records")
    assert row["restored"] == 0
    assert task_events(kernel, "corrupted").empty
    truth += feed(kernel, 10, start=10)
    restarted.crash()
    again = restarted.restart()
    kernel.run(until_ms=kernel.now_ms + 60_000)  # the old member leaves at session timeout
    assert not task_events(kernel, "corrupted: counts wiped").empty
    [row] = restored_rows(again).to_dict("records")
    assert row["start_offset"] == 0
    log = kernel.cluster.partition("app-counts-changelog", 0).log
    committed = _visible(log, TopicPartition("app-counts-changelog", 0), 0, row["end_offset"],
                         read_committed=True)
    assert row["restored"] == sum(c.count for c in committed)  # from scratch, committed only
    assert plain(again.store("counts").all()) == dict(truth)


# --- interactive queries ---------------------------------------------------------------------


def test_query_metadata_for_key_names_the_active_and_standby_threads_of_the_keys_partition():
    """``queryMetadataForKey``: the partition is the producer's for the key; the active is
    the thread running that task, the standbys those holding its standby."""
    kernel = cluster({"in": 4, "out": 4})
    apps = counting_app(kernel, {"num.standby.replicas": 1})
    kernel.run(until_ms=8_000)
    feed(kernel, 3)
    for key in ("k0", "k1", "k7"):
        meta = apps[0].query_metadata_for_key("counts", key)
        [record] = [r for r in read_topic(kernel, "in") if r[1] == key][:1]
        assert meta.partition == record[0]
        owner = next(a for a in apps if any(th.name == meta.active for th in a.threads))
        assert owner.store("counts").get(key) == 3
        other = next(a for a in apps if a is not owner)
        assert meta.standbys == (other.threads[0].name,)
        assert other.store("counts").get(key) is None  # the standby is not queried


def test_store_raises_invalid_state_store_while_a_task_restores():
    """A thread with a restoring task serves none of its stores (``InvalidStateStoreException``)
    until the restore completes."""
    kernel = cluster({"in": 1, "out": 1})
    [app] = counting_app(kernel, {"statestore.cache.max.bytes": 0}, instances=1)
    kernel.run(until_ms=3_000)
    feed(kernel, 40, keys=200, step_ms=100)
    app.crash(lose_state=True)
    restarted = app.restart()
    errors = []
    [thread] = restarted.threads
    original = thread.reader.on_restored

    def query_then_finish(task_id):  # the last batch is in, the task is still restoring
        with pytest.raises(InvalidStateStoreError, match="is restoring") as error:
            restarted.store("counts")
        errors.append(str(error.value))
        original(task_id)

    thread.reader.on_restored = query_then_finish
    kernel.run(until_ms=kernel.now_ms + 60_000)
    assert len(errors) == 1
    assert "\n" not in errors[0]
    assert restarted.store("counts").get("k5") >= 40  # at least once: maybe more


# --- restore timeline ----------------------------------------------------------------------------


def test_restore_timeline_shows_running_until_the_crash_then_restoring_then_running():
    """The crashed owner's running bar ends at the crash; the new owner restores (its restore
    ends when the changelog reader says so) and then runs; the figure has one row per
    (thread, task)."""
    from sim.streams.drawing import plot_restore_timeline
    from sim.streams.events import STREAMS_RESTORE
    from sim.streams.restore_timeline import timeline_frame

    kernel = cluster({"in": 1, "out": 1})
    apps = counting_app(kernel, {"statestore.cache.max.bytes": 0})
    kernel.run(until_ms=8_000)
    owner = next(a for a in apps if any(th.tasks for th in a.threads))
    other = next(a for a in apps if a is not owner)
    feed(kernel, 20, keys=100)
    crash_ms = kernel.now_ms
    owner.crash()
    kernel.run(until_ms=kernel.now_ms + 60_000)
    frame = timeline_frame(kernel)
    mine = frame[frame.thread == owner.threads[0].name]
    assert mine.iloc[-1].state == "running"
    assert mine.iloc[-1].end_ms == crash_ms
    theirs = frame[(frame.thread == other.threads[0].name) & (frame.start_ms > crash_ms)]
    assert list(theirs.state) == ["restoring", "running"]
    restores = kernel.trace.frame(STREAMS_RESTORE)
    end = restores[(restores.component == other.threads[0].name)
                   & (restores.action == "end")].time_ms.max()
    assert theirs.iloc[0].end_ms == end
    assert theirs.iloc[1].end_ms == kernel.now_ms
    figure = plot_restore_timeline(kernel)
    assert len(figure.axes[0].get_yticklabels()) == len(frame.groupby(["thread", "task"]))
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert legend == ["restoring", "running"]  # no standby here: none is listed


def test_a_commit_marker_as_the_changelogs_last_record_still_completes_the_restore():
    """Under EOS the changelog ends with a transaction marker, which takes an offset but is
    no record: the restore consumer's position passes it (read_committed, end offset = the
    high watermark), so the restore completes instead of waiting for a record at that offset
    (the "never caught up" trap of clients that compare the last record's offset)."""
    kernel = cluster({"in": 1, "out": 1})
    apps = counting_app(kernel, {**EOS, "statestore.cache.max.bytes": 0})
    kernel.run(until_ms=8_000)
    owner = next(a for a in apps if any(th.tasks for th in a.threads))
    other = next(a for a in apps if a is not owner)
    truth = feed(kernel, 5)
    kernel.run(until_ms=kernel.now_ms + 2_000)  # everything committed
    log = kernel.cluster.partition("app-counts-changelog", 0).log
    [last] = [b for b in log.batches_overlapping(log.log_end_offset - 1, log.log_end_offset)]
    assert last.is_control
    end = log.log_end_offset
    owner.crash()
    kernel.run(until_ms=kernel.now_ms + 60_000)
    [row] = restored_rows(other).to_dict("records")
    assert row["end_offset"] == end
    assert row["restored"] == 50  # data records only
    assert plain(other.store("counts").all()) == dict(truth)


def test_a_thread_fenced_by_the_group_loses_its_tasks_and_rejoins_owning_nothing():
    """An instance hangs past its session timeout while records keep coming; the group gives
    its tasks to the other instance. When it wakes its commit is refused (a stale generation):
    like ``StreamThread.handleTaskMigrated`` it closes every task dirty and rejoins as a new
    member that owns nothing — it processes nothing and creates no task until the group
    assigns it partitions again — and the read_committed output never repeats an update."""
    kernel = cluster({"in": 2, "out": 2})
    apps = counting_app(kernel, {**EOS, "commit.interval.ms": 100,
                                 "session.timeout.ms": 10_000,
                                 "statestore.cache.max.bytes": 0})
    kernel.run(until_ms=8_000)
    hung = next(a for a in apps if any(th.tasks for th in a.threads))
    schedule(kernel, kernel.now_ms + 1_000, StreamsHang(hung.client_id, 15_000))
    truth = feed(kernel, 150, step_ms=200)
    kernel.run(until_ms=kernel.now_ms + 60_000)
    thread = f"{hung.client_id}-StreamThread-1"
    tasks = kernel.trace.frame(STREAMS_TASK)
    tasks = tasks[tasks.component == thread]
    aborted = tasks[tasks.action.str.startswith("transaction aborted")]
    assert len(aborted) >= 1
    since = aborted.seq.iloc[0]
    assigned = kernel.trace.frame(CONSUMER_ASSIGNED)
    assigned = assigned[(assigned.component == f"{thread}-consumer") & (assigned.seq > since)]
    until = assigned.seq.iloc[0] if len(assigned) else math.inf
    between = tasks[(tasks.seq > since) & (tasks.seq < until)]
    assert set(between.action) <= {"closed"}  # lost, none revived
    processed = kernel.trace.frame(STREAMS_PROCESS)
    assert processed[(processed.component == thread) & (processed.seq > since)
                     & (processed.seq < until)].empty
    assert live_counts(kernel) == dict(truth)
    output = read_committed(kernel, "out")
    assert len(output) == len(set(output))


def test_partitions_lost_with_a_transaction_open_abort_it_and_replace_the_producer():
    """A thread cut from its group coordinator (but not from the input's leader) goes on
    processing into an open transaction while its session expires; after the heal its
    heartbeat learns it lost its tasks. Kafka's ``StreamsRebalanceListener.onPartitionsLost``
    → ``TaskManager.handleLostAll`` closes every task dirty, which aborts the transaction
    (``RecordCollectorImpl.closeDirty`` → ``StreamsProducer.abortTransaction``), and replaces
    the producer (``ActiveTaskCreator.reInitializeProducer``), whose ``initTransactions``
    bumps the epoch. Committing the lost tasks' writes later, without their input offsets,
    would make the next owner count those records again: the read_committed output would
    repeat every update (counts 1, 1, 2, 2, …)."""
    kernel = cluster({"in": 1, "out": 1}, brokers=3)
    [app] = counting_app(kernel, {**EOS, "commit.interval.ms": 60_000,
                                  "session.timeout.ms": 10_000,
                                  "producer.transaction.timeout.ms": 120_000,
                                  "statestore.cache.max.bytes": 0}, instances=1)
    kernel.run(until_ms=8_000)
    coordinator = kernel.cluster.group_coordinator.node_for("app")
    assert kernel.cluster.partition("in", 0).leader != coordinator  # it can still fetch
    [thread] = app.threads
    cut = NetworkPartition((thread.consumer.client_id,), (coordinator,))
    cut.apply(kernel)
    truth = feed(kernel, 10)
    old = thread.producer.txn
    assert old.state == "IN_TRANSACTION"
    assert thread.tasks
    kernel.run(until_ms=23_000)  # the session expires meanwhile
    HealNetwork(cut.side_a, cut.side_b).apply(kernel)
    kernel.run(until_ms=kernel.now_ms + 100_000)

    lost = kernel.trace.frame(CONSUMER_LOST)
    assert (lost.component == thread.consumer.client_id).any()
    states = kernel.trace.frame(TXN_STATE)
    mine = states[states.transactional_id == old.transactional_id]
    ended = mine[mine.state.isin(["PrepareAbort", "PrepareCommit"])]
    first = ended.iloc[0]
    assert first.state == "PrepareAbort"
    assert first.producer_epoch == old.producer_epoch
    assert thread.producer is not old.producer
    assert thread.producer.txn.producer_epoch == old.producer_epoch + 1
    assert live_counts(kernel) == dict(truth)
    output = read_committed(kernel, "out")
    assert sorted(output) == sorted((k, n) for k in truth for n in range(1, truth[k] + 1))


def test_a_restore_waits_for_an_open_transaction_instead_of_stopping_below_later_commits():
    """Fuzz finding (streams campaign, seed 10606, schedule 23): enricher-2 crashes losing its
    state with a transaction open on changelog partition 2; enricher-1 takes task 0_2 and
    commits counts above the open transaction, which holds the last stable offset back until
    the coordinator aborts it (transaction.timeout.ms). enricher-2 comes back and gets 0_2
    again before that. Streams lists the restore's end offset read_uncommitted
    (``StoreChangelogReader.endOffsetForChangelogs``, KAFKA-10167): the high watermark, above
    enricher-1's commits, so the read_committed restore waits for the abort and then reads
    them; it must not stop at the last stable offset with enricher-1's counts missing."""
    from pathlib import Path

    from sim import scenarios
    from sim.audit import events_of

    path = (Path(__file__).parent / "data" / "fuzz"
            / "streams--undercount-restore-stopped-below-an-open-transaction.yaml")
    loaded = scenarios.load(path)
    kernel = loaded.build()
    kernel.run(loaded.duration_ms)
    restart_ms = next(f["at_ms"] for f in loaded.faults if "streams_restart" in f)
    restores = events_of(kernel, ("streams.restore",))
    mine = restores[(restores["task"] == "0_2") & (restores["time_ms"] > restart_ms)]
    start = mine[mine["action"] == "start"].iloc[0]
    end = mine[mine["action"] == "end"].iloc[0]
    markers = events_of(kernel, ("txn.marker",))
    changelog = markers[(markers["topic"] == "enricher-counts-changelog")
                        & (markers["partition"] == 2)]
    committed = changelog[(changelog["marker"] == "COMMIT")
                          & (changelog["time_ms"] < start["time_ms"])]
    aborted_ms = changelog[changelog["marker"] == "ABORT"]["time_ms"].min()
    assert start["time_ms"] < aborted_ms < end["time_ms"]
    assert start["end_offset"] > committed["offset"].max()
    assert end["restored"] > 0


def test_a_restore_registered_while_a_new_leader_lags_waits_for_its_end_offset():
    """The changelog's leader 0 crashes, then follower 2 (still in the ISR); at 0's fencing
    follower 1 leads with the ISR [1, 2] and the high watermark its last fetch taught it, below
    0's. Until 2 is fenced too, 1's high watermark stays below the start of its leader epoch,
    and ``ListOffsets`` answers OFFSET_NOT_AVAILABLE (``Partition.fetchOffsetForTimestamp``):
    a restore registered then gets its end offset only afterwards, and restores every record
    0 had committed instead of completing below them."""
    from sim.streams.changelog_reader import COMPLETED, StoreChangelogReader
    from sim.streams.internal_topics import TaskId
    from sim.streams.stores import InMemoryKeyValueStore
    from tests.failover_support import lagging_leader

    kernel, _, committed = lagging_leader("counts-changelog")
    done = []
    reader = StoreChangelogReader(kernel, "t", done.append)
    changelog = reader.register(TaskId(0, 0), InMemoryKeyValueStore("counts"),
                                TopicPartition("counts-changelog", 0), None, active=True)
    kernel.env.process(reader.run())
    assert kernel.run_until(lambda k: done, max_ms=kernel.now_ms + 10_000)
    assert changelog.state == COMPLETED
    assert changelog.end_offset >= committed
    # no transactions and nothing compacted: one record per offset
    assert changelog.restored >= committed
