"""The Streams runtime on the simulated cluster: ``KafkaStreams(kernel, topology, config)``.

Each test runs real instances (consumer group, producer, brokers) on a kernel and reads what they
wrote from the partition logs.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sim.errors import ConfigError, MissingSourceTopicError, StreamsError, TopologyError
from sim.murmur2 import murmur2, to_positive
from sim.records import serialize
from sim.streams import (
    KafkaStreams,
    Processor,
    PunctuationType,
    Record,
    Repartitioned,
    StreamsBuilder,
    TimeWindows,
    TopologyTestDriver,
)
from sim.streams import events as streams_events
from tests.streams_runtime_helpers import (
    QUICKSTART_LINES,
    cluster,
    java_split_words,
    key_values,
    produce,
    read_topic,
)

ROOT = Path(__file__).resolve().parent.parent


def wordcount_topology() -> StreamsBuilder:
    """WordCountDemo: flatMapValues(split) → groupBy(word) → count → toStream → to."""
    builder = StreamsBuilder()
    (builder.stream("streams-plaintext-input").flat_map_values(java_split_words)
     .group_by(lambda key, word: word).count().to_stream().to("streams-wordcount-output"))
    return builder


def run_wordcount(config: dict) -> tuple[KafkaStreams, list]:
    kernel = cluster({"streams-plaintext-input": 1, "streams-wordcount-output": 1})
    streams = KafkaStreams(kernel, wordcount_topology().build(),
                           {"application.id": "streams-wordcount", **config})
    streams.start()
    produce(kernel, "streams-plaintext-input", [(None, line, None) for line in QUICKSTART_LINES])
    kernel.run(until_ms=40_000)  # past one commit interval (30 s)
    return streams, key_values(kernel, "streams-wordcount-output")


# -- WordCount and the record cache ---------------------------------------------------------

def test_wordcount_without_cache_emits_kafkas_eleven_updates_in_order():
    """Kafka's quickstart (``docs/streams/quickstart.html``, ``WordCountDemo`` with
    ``statestore.cache.max.bytes=0``): the output topic holds eleven updates in this order."""
    _, output = run_wordcount({"statestore.cache.max.bytes": 0})
    assert output == [("all", 1), ("streams", 1), ("lead", 1), ("to", 1), ("kafka", 1),
                      ("hello", 1), ("kafka", 2), ("streams", 2), ("join", 1), ("kafka", 3),
                      ("summit", 1)]


def test_wordcount_with_default_cache_emits_one_update_per_word_in_last_update_order():
    """``NamedCache``: with the default 10 MiB cache and all lines inside one commit interval,
    the commit's flush forwards each word once, in the order of its latest update; the final
    counts equal the uncached run's."""
    streams, cached = run_wordcount({})
    _, uncached = run_wordcount({"statestore.cache.max.bytes": 0})
    assert streams.config["statestore.cache.max.bytes"] == 10 * 1024 * 1024
    assert cached == [("all", 1), ("lead", 1), ("to", 1), ("hello", 1), ("streams", 2),
                      ("join", 1), ("kafka", 3), ("summit", 1)]
    assert len(cached) < len(uncached)
    assert dict(cached) == dict(uncached)


def test_a_small_cache_evicts_and_forwards_before_the_commit():
    """``ThreadCache.maybeEvict``: a cache too small for the words flushes before the commit, so
    more updates come out than with the default cache, but still fewer than without one."""
    _, small = run_wordcount({"statestore.cache.max.bytes": 150})
    _, default = run_wordcount({})
    _, none = run_wordcount({"statestore.cache.max.bytes": 0})
    assert len(default) < len(small) < len(none)
    assert dict(small) == dict(none)


def test_the_test_driver_behaves_as_cache_zero_whatever_the_config():
    """``TopologyTestDriver``: caching and the commit interval behave as 0 (Kafka's driver)."""
    with TopologyTestDriver(wordcount_topology().build(),
                            {"statestore.cache.max.bytes": 10 * 1024 * 1024}) as driver:
        topic = driver.create_input_topic("streams-plaintext-input")
        for line in QUICKSTART_LINES:
            topic.pipe_input(None, line)
        out = driver.create_output_topic("streams-wordcount-output").read_key_values_to_list()
    assert len(out) == 11


def test_interactive_query_reads_the_counts_across_local_tasks():
    """``KafkaStreams.store``: the count store over the instance's tasks (the repartition topic
    has 3 partitions, so 3 tasks hold a share of the words each)."""
    from sim.streams import Materialized

    kernel = cluster({"streams-plaintext-input": 3, "streams-wordcount-output": 1})
    builder = StreamsBuilder()
    (builder.stream("streams-plaintext-input").flat_map_values(java_split_words)
     .group_by(lambda key, word: word).count(Materialized.as_("counts-store")))
    streams = KafkaStreams(kernel, builder.build(), {"application.id": "iq"})
    with pytest.raises(StreamsError, match=r"KafkaStreams is not running\. State is CREATED\."):
        streams.store("counts-store")
    streams.start()
    produce(kernel, "streams-plaintext-input", [(None, line, None) for line in QUICKSTART_LINES])
    kernel.run(until_ms=40_000)
    store = streams.store("counts-store")
    assert store.get("kafka") == 3
    assert store.get("absent") is None
    assert sorted(store.all()) == sorted(Counter(
        w for line in QUICKSTART_LINES for w in java_split_words(line)).items())
    assert len(store.stores) == 3
    with pytest.raises(StreamsError, match="no such store is registered"):
        streams.store("nope")


# -- the test driver and the runtime agree --------------------------------------------------

def mixed_topology() -> StreamsBuilder:
    builder = StreamsBuilder()
    stream = builder.stream("in").filter(lambda k, v: v % 3 != 0).map_values(lambda v: v * 10)
    stream.to("mapped")
    stream.group_by_key().count().to_stream().to("counts")
    return builder


INPUT = [(f"k{i % 5}", i, 1000 + 7 * i) for i in range(60)]


def driver_output(builder: StreamsBuilder, topics: list[str]) -> dict[str, list]:
    with TopologyTestDriver(builder.build()) as driver:
        source = driver.create_input_topic("in")
        for key, value, timestamp in INPUT:
            source.pipe_input(key, value, timestamp)
        return {t: [(r.key, r.value, r.timestamp) for r in
                    driver.create_output_topic(t).read_records_to_list()] for t in topics}


def test_runtime_and_test_driver_give_the_same_output_on_one_partition():
    """Same topology, same input, one partition: the same records in the same order, with the
    same timestamps (cache 0, as the driver)."""
    kernel = cluster({"in": 1, "mapped": 1, "counts": 1})
    streams = KafkaStreams(kernel, mixed_topology().build(),
                           {"application.id": "same", "statestore.cache.max.bytes": 0})
    streams.start()
    produce(kernel, "in", INPUT)
    kernel.run(until_ms=40_000)
    expected = driver_output(mixed_topology(), ["mapped", "counts"])
    for topic in ("mapped", "counts"):
        assert [(k, v, t) for _, k, v, t in read_topic(kernel, topic)] == expected[topic]


def test_runtime_matches_the_test_driver_per_key_on_many_partitions():
    """With 4 input partitions and 2 instances, each key's records stay in order: the output per
    key equals the driver's."""
    kernel = cluster({"in": 4, "mapped": 3, "counts": 2})
    topology = mixed_topology().build()
    config = {"application.id": "per-key", "statestore.cache.max.bytes": 0}
    instances = [KafkaStreams(kernel, topology, config) for _ in range(2)]
    for streams in instances:
        streams.start()
    kernel.run(until_ms=8_000)
    produce(kernel, "in", INPUT)
    kernel.run(until_ms=50_000)
    expected = driver_output(mixed_topology(), ["mapped", "counts"])
    for topic in ("mapped", "counts"):
        got = read_topic(kernel, topic)
        for key in {k for k, _, _ in INPUT}:
            assert [(k, v, t) for _, k, v, t in got if k == key] == \
                [r for r in expected[topic] if r[0] == key]
    tasks = [t.task_id for s in instances for m in s.metadata_for_local_threads()
             for t in m.active_tasks]
    assert sorted(tasks) == ["0_0", "0_1", "0_2", "0_3"]


# -- tasks, assignment, stickiness ----------------------------------------------------------

def active_tasks(streams: KafkaStreams) -> list[str]:
    return sorted(t.task_id for m in streams.metadata_for_local_threads() for t in m.active_tasks)


def passthrough() -> StreamsBuilder:
    builder = StreamsBuilder()
    builder.stream("in").map_values(lambda v: v).to("out")
    return builder


def test_two_instances_share_six_tasks_three_each():
    """``StreamsPartitionAssignor`` / ``HighAvailabilityTaskAssignor``: 6 partitions → tasks
    ``0_0`` … ``0_5`` (``TaskId``: sub-topology_partition), balanced 3 and 3, every task once,
    each task's partition assigned to the thread's consumer."""
    kernel = cluster({"in": 6, "out": 6})
    topology = passthrough().build()
    a = KafkaStreams(kernel, topology, {"application.id": "six"})
    b = KafkaStreams(kernel, topology, {"application.id": "six"})
    a.start()
    b.start()
    kernel.run(until_ms=10_000)
    assert a.state is KafkaStreams.State.RUNNING
    assert b.state is KafkaStreams.State.RUNNING
    assert sorted(active_tasks(a) + active_tasks(b)) == [f"0_{p}" for p in range(6)]
    assert len(active_tasks(a)) == len(active_tasks(b)) == 3
    for streams in (a, b):
        (thread,) = streams.metadata_for_local_threads()
        owned = sorted(f"{tp.topic}-{tp.partition}" for tp in streams.threads[0].consumer
                       .assignment())
        assert owned == sorted(f"in-{t.task_id[2:]}" for t in thread.active_tasks)
        assert thread.thread_name.endswith("-StreamThread-1")
        assert thread.consumer_client_id == thread.thread_name + "-consumer"


def test_adding_an_instance_moves_tasks_to_it_and_closing_it_moves_them_back():
    """Sticky assignment (``HighAvailabilityTaskAssignor``, ``assignTasksToThreads``): a new
    instance takes tasks only from the others (each keeps a subset of what it had), weighted by
    threads; when it closes, its tasks return and the old owners keep theirs. No scheduler."""
    kernel = cluster({"in": 6, "out": 6})
    topology = passthrough().build()
    a = KafkaStreams(kernel, topology, {"application.id": "sticky"})
    b = KafkaStreams(kernel, topology, {"application.id": "sticky"})
    a.start()
    b.start()
    kernel.run(until_ms=10_000)
    before = {"a": set(active_tasks(a)), "b": set(active_tasks(b))}
    c = KafkaStreams(kernel, topology, {"application.id": "sticky", "num.stream.threads": 2})
    c.start()
    kernel.run(until_ms=30_000)
    during = {"a": set(active_tasks(a)), "b": set(active_tasks(b)), "c": set(active_tasks(c))}
    assert during["a"] <= before["a"]
    assert during["b"] <= before["b"]
    assert len(during["c"]) == 3  # 2 of 4 threads → half of the 6 tasks
    assert sorted(during["a"] | during["b"] | during["c"]) == [f"0_{p}" for p in range(6)]
    assert sum(map(len, during.values())) == 6
    per_thread = [len(m.active_tasks) for m in c.metadata_for_local_threads()]
    assert sorted(per_thread) == [1, 2]
    c.close()
    kernel.run(until_ms=90_000)
    assert c.state is KafkaStreams.State.NOT_RUNNING
    after = {"a": set(active_tasks(a)), "b": set(active_tasks(b))}
    assert after["a"] >= during["a"]
    assert after["b"] >= during["b"]
    assert len(after["a"]) == len(after["b"]) == 3
    assert sorted(after["a"] | after["b"]) == [f"0_{p}" for p in range(6)]


def test_states_follow_kafkas_state_machine():
    """``KafkaStreams.State``: CREATED → REBALANCING → RUNNING → PENDING_SHUTDOWN →
    NOT_RUNNING, each change in the trace; the thread goes STARTING → RUNNING →
    PENDING_SHUTDOWN → DEAD (``StreamThread.State``); start() twice is refused."""
    kernel = cluster({"in": 2, "out": 2})
    streams = KafkaStreams(kernel, passthrough().build(), {"application.id": "states"})
    assert streams.state is KafkaStreams.State.CREATED
    streams.start()
    assert streams.state is KafkaStreams.State.REBALANCING

    def thread_states() -> list[str]:
        return [m.thread_state for m in streams.metadata_for_local_threads()]

    assert thread_states() == ["STARTING"]
    with pytest.raises(StreamsError, match="already started or already stopped"):
        streams.start()
    kernel.run(until_ms=10_000)
    assert streams.state is KafkaStreams.State.RUNNING
    assert thread_states() == ["RUNNING"]
    streams.close()
    assert streams.state is KafkaStreams.State.PENDING_SHUTDOWN
    assert thread_states() == ["PENDING_SHUTDOWN"]
    kernel.run(until_ms=20_000)
    assert streams.state is KafkaStreams.State.NOT_RUNNING
    assert thread_states() == ["DEAD"]
    changes = kernel.trace.frame(streams_events.STREAMS_STATE)
    assert list(zip(changes.old, changes.new, strict=True)) == [
        ("CREATED", "REBALANCING"), ("REBALANCING", "RUNNING"),
        ("RUNNING", "PENDING_SHUTDOWN"), ("PENDING_SHUTDOWN", "NOT_RUNNING")]


def test_a_thread_committing_its_revoked_tasks_is_partitions_revoked_not_running():
    """``StreamsRebalanceListener.onPartitionsRevoked`` sets the thread PARTITIONS_REVOKED
    before ``TaskManager.handleRevocation`` commits, and a thread in PARTITIONS_REVOKED keeps
    the instance REBALANCING (``KafkaStreams.StreamStateListener``). The member is already
    STABLE in its new generation meanwhile (``SyncGroupResponseHandler``): that must not make
    the thread, or the instance, RUNNING while the revocation's flush waits for the producer."""
    from sim.faults import HealNetwork, NetworkPartition, schedule

    kernel = cluster({"in": 4, "out": 4})
    config = {"application.id": "app", "num.stream.threads": 2, "commit.interval.ms": 60_000,
              "producer.delivery.timeout.ms": 8_000, "producer.request.timeout.ms": 2_000}
    first = KafkaStreams(kernel, passthrough().build(), config)
    first.start()
    kernel.run(until_ms=15_000)
    assert first.state is KafkaStreams.State.RUNNING
    for thread in first.threads:  # their sends wait: a revocation's flush lasts
        cut = (0,), (thread.producer.client_id,)
        schedule(kernel, 15_100, NetworkPartition(*cut))
        schedule(kernel, 60_000, HealNetwork(*cut))
    for i in range(5):
        produce(kernel, "in", [(f"k{j}", i, None) for j in range(8)])
        kernel.run(until_ms=kernel.now_ms + 100)
    KafkaStreams(kernel, passthrough().build(), config).start()
    revoking = []
    while not revoking and kernel.now_ms < 40_000:
        kernel.run(until_ms=kernel.now_ms + 100)
        revoking = [t for t in first.threads if t._revoking]
    assert revoking, "no thread of the first instance was revoking tasks"
    assert {t.state for t in revoking} == {"PARTITIONS_REVOKED"}
    assert first.state is KafkaStreams.State.REBALANCING


def test_a_failing_processor_puts_the_instance_in_error_and_raises_from_the_run():
    """An exception in a processor kills its thread; the default uncaught-exception handler
    (``SHUTDOWN_CLIENT``) takes the instance to ERROR, and the error reaches the caller."""
    kernel = cluster({"in": 1, "out": 1})
    builder = StreamsBuilder()
    builder.stream("in").map_values(lambda v: 1 // v).to("out")
    streams = KafkaStreams(kernel, builder.build(), {"application.id": "boom"})
    streams.start()
    produce(kernel, "in", [("k", 1, None), ("k", 0, None)])
    with pytest.raises(ZeroDivisionError) as error:
        kernel.run(until_ms=10_000)
    original = error.value.__cause__ or error.value  # SimPy re-raises a copy
    assert any("StreamThread-1" in note for note in original.__notes__)
    assert streams.state is KafkaStreams.State.ERROR


# -- errors at start --------------------------------------------------------------------------

def test_a_join_of_topics_with_different_partition_counts_fails_with_kafkas_error():
    """``CopartitionedTopicsEnforcer``: ``Invalid topology: Topics not co-partitioned:
    [{left=3, right=4}]`` (a ``TopologyException``), and the instance is in ERROR."""
    kernel = cluster({"left": 3, "right": 4, "joined": 3})
    builder = StreamsBuilder()
    table = builder.table("right")
    builder.stream("left").join(table, lambda a, b: (a, b)).to("joined")
    streams = KafkaStreams(kernel, builder.build(), {"application.id": "copart"})
    with pytest.raises(TopologyError) as error:
        streams.start()
    assert str(error.value) == "Invalid topology: Topics not co-partitioned: [{left=3, right=4}]"
    assert streams.state is KafkaStreams.State.ERROR


def test_a_join_of_co_partitioned_topics_starts():
    kernel = cluster({"left": 3, "right": 3, "joined": 3})
    builder = StreamsBuilder()
    table = builder.table("right")
    builder.stream("left").join(table, lambda a, b: f"{a}+{b}").to("joined")
    streams = KafkaStreams(kernel, builder.build(), {"application.id": "copart-ok"})
    streams.start()
    kernel.run(until_ms=5_000)
    produce(kernel, "right", [("x", "R", 1)])
    kernel.run(until_ms=6_000)
    produce(kernel, "left", [("x", "L", 2)])
    kernel.run(until_ms=40_000)
    assert key_values(kernel, "joined") == [("x", "L+R")]


def test_missing_source_topics_fail_the_start():
    """``MissingSourceTopicException``: source topics must exist before the application starts
    (Streams creates only internal topics)."""
    kernel = cluster({"out": 1})
    streams = KafkaStreams(kernel, passthrough().build(), {"application.id": "missing"})
    with pytest.raises(MissingSourceTopicError, match=r"Missing source topics\. \['in'\]"):
        streams.start()
    assert streams.state is KafkaStreams.State.ERROR


@pytest.mark.parametrize(("config", "message"), [
    ({}, 'Missing required configuration "application.id"'),
    ({"application.id": "x", "num.stream.thread": 2}, "num.stream.thread"),
    ({"application.id": "x", "num.stream.threads": 0}, "num.stream.threads"),
    ({"application.id": "x", "processing.guarantee": "exactly_once"}, "processing.guarantee"),
    ({"application.id": "x", "commit.interval.ms": -1}, "commit.interval.ms"),
    ({"application.id": "x", "statestore.cache.max.bytes": "lots"},
     "statestore.cache.max.bytes"),
])
def test_bad_configs_are_rejected_with_one_line(config, message):
    """``StreamsConfig``: unknown names and bad values raise a one-line ConfigError."""
    kernel = cluster({"in": 1, "out": 1})
    with pytest.raises(ConfigError, match=message) as error:
        KafkaStreams(kernel, passthrough().build(), config)
    assert "\n" not in str(error.value)


def test_defaults_are_kafka_4_defaults():
    """``StreamsConfig`` 4.0 defaults used by the runtime."""
    kernel = cluster({"in": 1, "out": 1})
    streams = KafkaStreams(kernel, passthrough().build(), {"application.id": "defaults"})
    assert {name: streams.config[name] for name in (
        "num.stream.threads", "commit.interval.ms", "processing.guarantee",
        "statestore.cache.max.bytes", "num.standby.replicas", "acceptable.recovery.lag",
        "max.warmup.replicas", "probing.rebalance.interval.ms")} == {
        "num.stream.threads": 1, "commit.interval.ms": 30000,
        "processing.guarantee": "at_least_once", "statestore.cache.max.bytes": 10485760,
        "num.standby.replicas": 0, "acceptable.recovery.lag": 10000,
        "max.warmup.replicas": 2, "probing.rebalance.interval.ms": 600000}


# -- repartition topics -----------------------------------------------------------------------

def test_repartition_topic_is_named_sized_and_keyed_by_murmur2():
    """``RepartitionTopics`` / ``InternalTopologyBuilder.decorateTopic``: the group_by writes to
    ``<application.id>-<store>-repartition`` with as many partitions as its upstream source
    (the max of them), and each record lands on ``toPositive(murmur2(key bytes)) % n``."""
    kernel = cluster({"streams-plaintext-input": 5, "streams-wordcount-output": 2})
    streams = KafkaStreams(kernel, wordcount_topology().build(),
                           {"application.id": "streams-wordcount"})
    streams.start()
    name = "streams-wordcount-KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition"
    assert len(kernel.cluster.topics[name].partitions) == 5
    produce(kernel, "streams-plaintext-input",
            [(None, line, None) for line in QUICKSTART_LINES * 3])
    kernel.run(until_ms=40_000)
    rows = read_topic(kernel, name)
    assert len(rows) == 33
    for partition, key, _, _ in rows:
        assert partition == to_positive(murmur2(serialize(key))) % 5
    tasks = sorted(t["task"] for _, t in streams.tasks_frame().iterrows())
    assert tasks == [f"{s}_{p}" for s in (0, 1) for p in range(5)]


def test_repartitioned_with_number_of_partitions_fixes_the_count():
    """``Repartitioned.withNumberOfPartitions`` overrides the upstream count."""
    kernel = cluster({"in": 2, "out": 1})
    builder = StreamsBuilder()
    (builder.stream("in").repartition(Repartitioned.as_("spread").with_number_of_partitions(7))
     .to("out"))
    streams = KafkaStreams(kernel, builder.build(), {"application.id": "rp"})
    streams.start()
    assert len(kernel.cluster.topics["rp-spread-repartition"].partitions) == 7
    produce(kernel, "in", [(f"k{i}", i, None) for i in range(20)])
    kernel.run(until_ms=40_000)
    assert sorted(v for _, v in key_values(kernel, "out")) == list(range(20))


# -- time: late records, punctuation, commits -------------------------------------------------

def test_late_records_are_dropped_and_counted():
    """``KStreamWindowAggregate``: tumbling 5000 with grace 1000; after stream time 6000 a record
    at 4000 (window [0, 5000)) is dropped and counted in ``dropped-records``; one at 5500 is
    not. The count uses the task's own stream time across out-of-order input."""
    kernel = cluster({"in": 1, "out": 1})
    builder = StreamsBuilder()
    (builder.stream("in").group_by_key()
     .windowed_by(TimeWindows.of_size_and_grace(5000, 1000)).count()
     .to_stream().map(lambda k, v: (k.key, v)).to("out"))
    streams = KafkaStreams(kernel, builder.build(),
                           {"application.id": "late", "statestore.cache.max.bytes": 0})
    streams.start()
    produce(kernel, "in", [("a", 1, 1000), ("a", 2, 6000), ("a", 3, 4000), ("a", 4, 5500)])
    kernel.run(until_ms=40_000)
    frame = streams.tasks_frame()
    assert frame["dropped"].tolist() == [1]
    assert frame["stream_time"].tolist() == [6000]
    assert key_values(kernel, "out") == [("a", 1), ("a", 1), ("a", 2)]


class Ticker(Processor):
    """Punctuates every 1000 ms of stream time and every 2000 ms of wall-clock time."""

    def init(self, context):
        super().init(context)
        context.schedule(1000, PunctuationType.STREAM_TIME,
                         lambda t: context.forward(Record("stream", t, t)))
        context.schedule(2000, PunctuationType.WALL_CLOCK_TIME,
                         lambda t: context.forward(Record("wall", t, t)))

    def process(self, record):
        pass


def test_stream_time_and_wall_clock_punctuation_on_the_cluster():
    """``PunctuationType`` / ``PunctuationQueue.maybePunctuate``: a stream-time punctuator fires
    as records move stream time past its next time (schedules aligned to 0), once per jump and
    with the current stream time (500, then 2500 skipping 1000-2000); wall-clock punctuators
    fire as simulated time passes, without input."""
    kernel = cluster({"in": 1, "out": 1})
    builder = StreamsBuilder()
    builder.stream("in").process(Ticker).to("out")
    streams = KafkaStreams(kernel, builder.build(), {"application.id": "tick"})
    streams.start()
    kernel.run(until_ms=5_000)
    produce(kernel, "in", [("k", 0, 500), ("k", 0, 2500), ("k", 0, 2600)])
    kernel.run(until_ms=12_000)
    out = key_values(kernel, "out")
    assert [v for k, v in out if k == "stream"] == [500, 2500]
    wall = [v for k, v in out if k == "wall"]
    assert len(wall) >= 3
    assert all(b - a >= 2000 for a, b in itertools.pairwise(wall))
    assert streams.tasks_frame()["punctuations"].tolist() == [2 + len(wall)]


def committed(kernel, group: str, topic: str) -> int | None:
    from sim.consumer.group import group_coordinator
    from sim.records import TopicPartition

    tp = TopicPartition(topic, 0)
    return group_coordinator(kernel).fetch_offsets(group, [tp])[tp]


@pytest.mark.parametrize("interval", [1_000, 30_000])
def test_offsets_are_committed_every_commit_interval(interval):
    """``commit.interval.ms``: processed offsets reach the group only at a commit; with the
    default 30 s nothing is committed 10 s after processing, with 1 s it is."""
    kernel = cluster({"in": 1, "out": 1})
    streams = KafkaStreams(kernel, passthrough().build(),
                           {"application.id": "ci", "commit.interval.ms": interval})
    streams.start()
    kernel.run(until_ms=5_000)
    produce(kernel, "in", [("k", i, None) for i in range(10)])
    kernel.run(until_ms=15_000)
    assert len(key_values(kernel, "out")) == 10  # processed either way
    assert committed(kernel, "ci", "in") == (10 if interval == 1_000 else None)
    kernel.run(until_ms=40_000)
    assert committed(kernel, "ci", "in") == 10
    commits = kernel.trace.frame(streams_events.STREAMS_COMMIT)
    assert commits["task"].tolist()[-1] == "0_0"


# -- observability ------------------------------------------------------------------------------

def test_trace_frames_and_metrics_describe_the_run():
    """Trace events per task (process, forward, commit), per-node records in/out and lag."""
    kernel = cluster({"in": 2, "out": 2})
    builder = StreamsBuilder()
    builder.stream("in").filter(lambda k, v: v % 2 == 0).to("out")
    streams = KafkaStreams(kernel, builder.build(), {"application.id": "obs"})
    streams.start()
    produce(kernel, "in", [(f"k{i}", i, None) for i in range(40)])
    kernel.run(until_ms=40_000)
    processed = kernel.trace.frame(streams_events.STREAMS_PROCESS)
    assert len(processed) == 40
    assert set(processed["task"]) == {"0_0", "0_1"}
    metrics = streams.processor_metrics().groupby("node")[["records_in", "records_out"]].sum()
    assert metrics.loc["KSTREAM-SOURCE-0000000000"].tolist() == [40, 40]
    assert metrics.loc["KSTREAM-FILTER-0000000001"].tolist() == [40, 20]
    assert metrics.loc["KSTREAM-SINK-0000000002"].tolist() == [20, 0]
    forwards = kernel.trace.frame(streams_events.STREAMS_FORWARD)
    assert Counter(forwards["node"])["KSTREAM-FILTER-0000000001"] == 20
    frame = streams.tasks_frame()
    assert frame["lag"].tolist() == [0, 0]
    assert frame["processed"].sum() == 40


def test_follow_one_record_through_the_topology():
    """The stepper's view: one record's process event, then each forward in depth-first order
    (source → filter → map_values → sink); a filtered-out record stops at the filter."""
    kernel = cluster({"in": 1, "out": 1})
    builder = StreamsBuilder()
    builder.stream("in").filter(lambda k, v: v > 0).map_values(lambda v: -v).to("out")
    streams = KafkaStreams(kernel, builder.build(), {"application.id": "follow"})
    streams.start()
    produce(kernel, "in", [("a", 5, None), ("b", -5, None)])
    kernel.run(until_ms=10_000)
    path = streams.follow("in", 0, 0)
    assert path["kind"].tolist() == ["streams.process"] + ["streams.forward"] * 3
    assert list(zip(path["node"][1:], path["detail"][1:], strict=True)) == [
        ("KSTREAM-SOURCE-0000000000", "KSTREAM-FILTER-0000000001"),
        ("KSTREAM-FILTER-0000000001", "KSTREAM-MAPVALUES-0000000002"),
        ("KSTREAM-MAPVALUES-0000000002", "KSTREAM-SINK-0000000003")]
    dropped = streams.follow("in", 0, 1)
    assert dropped["node"].tolist() == ["", "KSTREAM-SOURCE-0000000000"]
    assert streams.follow("in", 0, 7).empty


def test_lag_shows_records_not_yet_processed():
    """Per-task lag = the input partitions' high watermark minus the task's position: records
    appended but not yet polled count, and the lag is 0 again once they are processed."""
    kernel = cluster({"in": 1, "out": 1})
    streams = KafkaStreams(kernel, passthrough().build(), {"application.id": "lag"})
    streams.start()
    kernel.run(until_ms=5_000)
    assert streams.tasks_frame()["lag"].tolist() == [0]
    produce(kernel, "in", [("k", i, None) for i in range(5)])
    log = kernel.cluster.topics["in"].partitions[0].log
    assert kernel.run_until(lambda k: log.high_watermark == 5)
    assert streams.tasks_frame()["lag"].tolist() == [5]
    kernel.run(until_ms=kernel.now_ms + 1_000)
    assert streams.tasks_frame()["lag"].tolist() == [0]
    assert streams.tasks_frame()["processed"].tolist() == [5]


# -- determinism --------------------------------------------------------------------------------

SCRIPT = """
from sim.streams import KafkaStreams, StreamsBuilder
from tests.streams_runtime_helpers import cluster, produce, read_topic
kernel = cluster({"in": 4, "out": 3})
builder = StreamsBuilder()
builder.stream("in").flat_map_values(lambda v: v.split()).group_by(lambda k, w: w).count() \\
    .to_stream().to("out")
apps = [KafkaStreams(kernel, builder.build(), {"application.id": "det"}) for _ in range(2)]
for app in apps:
    app.start()
produce(kernel, "in", [(f"k{i}", f"w{i % 7} w{i % 3} z", None) for i in range(50)])
kernel.run(until_ms=45_000)
print(read_topic(kernel, "out"))
print(kernel.trace.to_frame().to_csv())
"""


def test_same_seed_same_bytes_under_any_hash_seed():
    """Deterministic under any ``PYTHONHASHSEED``: two interpreters, same trace and output."""
    outputs = []
    for hash_seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env,
                              capture_output=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr.decode()
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1]
    assert b"streams.process" in outputs[0]


# -- the producer hook the runtime uses ---------------------------------------------------------

def test_producer_send_keeps_the_given_timestamp_and_refuses_negative_ones():
    """``ProducerRecord.timestamp``: a record sent with a timestamp keeps it in the log (sinks
    write the processed record's time); a negative one is refused as Kafka's
    ``ProducerRecord`` constructor does."""
    from sim.errors import ProduceError
    from sim.producer import Producer

    kernel = cluster({"t": 1})
    producer = Producer(kernel, {})
    producer.send("t", "k", "v", timestamp=123)
    producer.send("t", "k", "w")
    producer.flush()
    assert [t for _, _, _, t in read_topic(kernel, "t")] == [123, 0]  # 0: the send time
    with pytest.raises(ProduceError, match=r"Invalid timestamp: -1\. Timestamp should always "
                                           r"be non-negative or null\."):
        producer.send("t", "k", "v", timestamp=-1)


# -- faults ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("broker", [0, 1, 2])
def test_a_broker_crash_loses_no_record_at_least_once(broker):
    """At-least-once through a broker crash (leaders move, the group coordinator may move): the
    stream threads' consumers and producers ride it out, and every input record's result is in
    the output (with the idempotent producer, exactly once here)."""
    from sim.faults import CrashBroker, RestartBroker, schedule
    from sim.kernel import Kernel

    kernel = Kernel(seed=3, brokers=3)
    kernel.cluster.create_topic("in", 3, 3)
    kernel.cluster.create_topic("out", 3, 3)
    builder = StreamsBuilder()
    builder.stream("in").map_values(lambda v: v + 1000).to("out")
    apps = [KafkaStreams(kernel, builder.build(), {"application.id": "ft",
                                                   "commit.interval.ms": 1000})
            for _ in range(2)]
    for app in apps:
        app.start()
    schedule(kernel, 12_000, CrashBroker(broker))
    schedule(kernel, 40_000, RestartBroker(broker))
    for i in range(30):
        produce(kernel, "in", [(f"k{j}", i * 10 + j, None) for j in range(10)])
        kernel.run(until_ms=kernel.now_ms + 1000)
    kernel.run(until_ms=120_000)
    assert sorted(v for _, v in key_values(kernel, "out")) == list(range(1000, 1300))
    assert [app.state for app in apps] == [KafkaStreams.State.RUNNING] * 2
