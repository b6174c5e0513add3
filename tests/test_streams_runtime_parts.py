"""The parts of the Streams runtime on their own: the task assignor, internal topics and
co-partitioning, the record cache; plus a property test of the runtime on the cluster."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.errors import TopologyError
from sim.streams import JoinWindows, KafkaStreams, StreamsBuilder, TopologyTestDriver
from sim.streams.assignor import ThreadInfo, assign_tasks, balanced_sticky
from sim.streams.internal_topics import TaskId, prepare
from sim.streams.processor import Record
from sim.streams.record_cache import ThreadCache
from tests.streams_runtime_helpers import cluster, key_values, produce, read_topic
from tests.test_streams_properties import OPERATIONS, apply, reference


def tasks(n: int, subtopology: int = 0) -> list[TaskId]:
    return [TaskId(subtopology, p) for p in range(n)]


# -- the task assignor ------------------------------------------------------------------------

def test_task_ids_print_as_kafka_does():
    """``TaskId.toString``: ``<subtopology>_<partition>``; parse is its inverse."""
    assert str(TaskId(1, 12)) == "1_12"
    assert TaskId.parse("1_12") == TaskId(1, 12)
    assert sorted([TaskId(1, 0), TaskId(0, 10), TaskId(0, 2)]) == [
        TaskId(0, 2), TaskId(0, 10), TaskId(1, 0)]


def test_balanced_over_instances_weighted_by_threads_then_over_threads():
    """``HighAvailabilityTaskAssignor`` balances by load = tasks / threads; within an instance
    ``assignTasksToThreads`` gives each thread an equal share (±1)."""
    members = {"m1": ThreadInfo("p1", 1), "m2": ThreadInfo("p2", 1), "m3": ThreadInfo("p2", 2)}
    result = assign_tasks(tasks(6) + tasks(3, 1), members, {})
    counts = {m: len(a.active) for m, a in result.items()}
    assert counts == {"m1": 3, "m2": 3, "m3": 3}
    assert sorted(t for a in result.values() for t in a.active) == sorted(tasks(6) + tasks(3, 1))
    assert all(a.standby == [] for a in result.values())


def test_instances_keep_their_previous_tasks_up_to_their_share():
    """Stickiness (``ClientState.prevActiveTasks``): a member keeps what it owned while under its
    share; only the surplus moves, to the least loaded member."""
    previous = {"m1": set(tasks(6))}
    members = {"m1": ThreadInfo("p1", 1), "m2": ThreadInfo("p2", 1)}
    result = assign_tasks(tasks(6), members, previous)
    assert set(result["m1"].active) <= previous["m1"]
    assert len(result["m1"].active) == len(result["m2"].active) == 3
    again = assign_tasks(tasks(6), members, {m: set(a.active) for m, a in result.items()})
    assert {m: a.active for m, a in again.items()} == {m: a.active for m, a in result.items()}


@given(n=st.integers(0, 40), weights=st.lists(st.integers(1, 4), min_size=1, max_size=5),
       seed=st.randoms(use_true_random=False))
def test_balanced_sticky_is_a_partition_with_fair_shares(n, weights, seed):
    """Every task exactly once; each owner gets floor or ceil of its weighted share; an owner
    never loses a previous task while it holds fewer than its floor share."""
    owners = [f"o{i}" for i in range(len(weights))]
    weight = dict(zip(owners, weights, strict=True))
    all_tasks = tasks(n)
    previous = {o: set() for o in owners}
    for task in all_tasks:
        previous[seed.choice(owners)].add(task)
    result = balanced_sticky(all_tasks, owners, weight, previous)
    assert sorted(t for ts in result.values() for t in ts) == all_tasks
    total = sum(weights)
    for owner in owners:
        share = n * weight[owner] / total
        assert int(share) <= len(result[owner]) <= int(share) + 1
        kept = previous[owner] & set(result[owner])
        assert len(kept) >= min(len(previous[owner]), int(share))


# -- internal topics and co-partitioning ------------------------------------------------------

def test_repartition_topics_take_the_max_of_their_upstream_sources():
    """``RepartitionTopics.setRepartitionSourceTopicPartitionCount``: a repartition topic fed by
    a sub-topology reading topics of 2 and 5 partitions gets 5; tasks follow."""
    builder = StreamsBuilder()
    builder.stream(["a", "b"]).group_by(lambda k, v: v).count()
    metadata = prepare(builder.build(), "app", {"a": 2, "b": 5})
    (topic,) = metadata.repartition_topics
    assert metadata.partitions[topic] == 5
    assert metadata.broker_topic(topic) == f"app-{topic}"
    assert [str(t) for t in metadata.tasks] == [f"{s}_{p}" for s in (0, 1) for p in range(5)]


def test_stream_stream_join_of_unequal_topics_is_refused():
    """``CopartitionedTopicsEnforcer.getSamePartitions`` for a windowed stream–stream join."""
    builder = StreamsBuilder()
    (builder.stream("clicks")
     .join(builder.stream("views"), lambda a, b: a,
           JoinWindows.of_time_difference_with_no_grace(10))
     .to("out"))
    with pytest.raises(TopologyError, match=r"^Invalid topology: Topics not co-partitioned: "
                                            r"\[\{clicks=2, views=3\}\]$"):
        prepare(builder.build(), "app", {"clicks": 2, "views": 3, "out": 1})


def test_a_repartitioned_join_side_takes_the_other_sides_partition_count():
    """``CopartitionedTopicsEnforcer.enforce``: a repartition topic in a co-partition group is
    set to the external topics' count (here 4, although its upstream has 2)."""
    builder = StreamsBuilder()
    table = builder.table("table")
    builder.stream("events").select_key(lambda k, v: v).join(table, lambda a, b: b).to("out")
    metadata = prepare(builder.build(), "app", {"events": 2, "table": 4, "out": 1})
    (topic,) = metadata.repartition_topics
    assert metadata.partitions[topic] == 4


def test_an_enforced_repartition_count_that_does_not_match_is_refused():
    """``CopartitionedTopicsEnforcer``: ``Number of partitions [3] of repartition topic [...]
    doesn't match number of partitions [4] of the source topic.``"""
    from sim.streams import Repartitioned

    builder = StreamsBuilder()
    table = builder.table("table")
    (builder.stream("events").repartition(Repartitioned.as_("r").with_number_of_partitions(3))
     .join(table, lambda a, b: b).to("out"))
    with pytest.raises(TopologyError, match=r"Number of partitions \[3\] of repartition topic "
                                            r"\[app-r-repartition\] doesn't match number of "
                                            r"partitions \[4\] of the source topic\."):
        prepare(builder.build(), "app", {"events": 2, "table": 4, "out": 1})


def test_stream_stream_join_runs_on_the_cluster():
    kernel = cluster({"clicks": 3, "views": 3, "out": 3})
    builder = StreamsBuilder()
    (builder.stream("clicks")
     .join(builder.stream("views"), lambda c, v: f"{c}/{v}",
           JoinWindows.of_time_difference_with_no_grace(1000))
     .to("out"))
    streams = KafkaStreams(kernel, builder.build(), {"application.id": "ssj"})
    streams.start()
    produce(kernel, "views", [("u", "v1", 5000), ("w", "v2", 5000)])
    produce(kernel, "clicks", [("u", "c1", 5500), ("w", "c2", 9000)])
    kernel.run(until_ms=40_000)
    assert key_values(kernel, "out") == [("u", "c1/v1")]


def test_global_table_is_loaded_before_the_stream_is_processed():
    """``GlobalStreamThread``: every instance reads the whole global topic (2 partitions, while
    the stream has 3) before its stream threads start; the join needs no co-partitioning."""
    kernel = cluster({"customers": 2, "orders": 3, "out": 1})
    produce(kernel, "customers", [("c1", "Ann", None), ("c2", "Bob", None)])
    kernel.run(until_ms=1_000)
    builder = StreamsBuilder()
    customers = builder.global_table("customers")
    (builder.stream("orders").join(customers, lambda key, customer: customer,
                                   lambda order, name: f"{order} by {name}").to("out"))
    streams = KafkaStreams(kernel, builder.build(), {"application.id": "glob"})
    streams.start()
    produce(kernel, "orders", [("o1", "c2", None), ("o2", "c1", None)])
    kernel.run(until_ms=40_000)
    assert sorted(key_values(kernel, "out")) == [("o1", "c2 by Bob"), ("o2", "c1 by Ann")]
    streams.close()
    kernel.run(until_ms=45_000)
    assert streams.state is KafkaStreams.State.NOT_RUNNING
    assert streams._global_consumer.lifecycle == "closed"


# -- the record cache -------------------------------------------------------------------------

def test_cache_flush_forwards_latest_value_per_key_in_last_update_order():
    """``NamedCache``: the sum example of Kafka's memory-management docs, <A,1> <D,5> <A,20>
    <A,300>: one entry per key, flushed in the order of each key's latest update (D, then A)."""
    flushed: list[list[Record]] = []
    cache = ThreadCache(10_000)
    named = cache.named("0_0-agg", flushed.append)
    for key, total in [("A", 1), ("D", 5), ("A", 21), ("A", 321)]:
        cache.put(named, Record(key, total, 0))
    assert flushed == []
    assert named.flush() == 2
    assert [(r.key, r.value) for r in flushed[0]] == [("D", 5), ("A", 321)]
    assert named.hits == 2


def test_a_full_cache_flushes_the_cache_written_to():
    """``ThreadCache.maybeEvict``: over ``max_bytes`` the written cache is flushed."""
    flushed: list[list[Record]] = []
    cache = ThreadCache(100)
    named = cache.named("0_0-agg", flushed.append)
    cache.put(named, Record("a", 1, 0))
    assert flushed == []
    cache.put(named, Record("b" * 80, 1, 0))
    assert [[r.key for r in batch] for batch in flushed] == [["a", "b" * 80]]
    assert cache.evictions == 1
    assert cache.size_bytes() == 0


# -- a property of the runtime ----------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 6)), max_size=4),
       records=st.lists(st.tuples(st.integers(-20, 20), st.integers(-50, 50),
                                  st.integers(0, 10_000)), max_size=20),
       out_partitions=st.integers(1, 3))
def test_stateless_topology_on_the_cluster_matches_plain_python(steps, records, out_partitions):
    """A stateless chain run by ``KafkaStreams`` writes what applying its functions gives:
    the same records (key, value, timestamp), in input order for every key."""
    kernel = cluster({"in": 1, "out": out_partitions})
    builder = StreamsBuilder()
    stream = builder.stream("in")
    expected = list(records)
    for op, n in steps:
        stream = apply(stream, op, n)
        expected = reference(expected, op, n)
    stream.to("out")
    streams = KafkaStreams(kernel, builder.build(), {"application.id": "prop"})
    streams.start()
    produce(kernel, "in", records)
    kernel.run(until_ms=35_000)
    got = [(k, v, t) for _, k, v, t in read_topic(kernel, "out")]
    assert Counter(got) == Counter(expected)
    for key in {k for k, _, _ in expected}:
        assert [r for r in got if r[0] == key] == [r for r in expected if r[0] == key]


def test_a_pattern_source_reads_the_matching_topics_but_not_internal_ones():
    """A ``Pattern`` source subscribes to every matching topic at start, never to internal
    topics such as ``__consumer_offsets`` (``exclude.internal.topics``)."""
    import re

    builder = StreamsBuilder()
    builder.stream(re.compile(r".*s")).to("out")
    metadata = prepare(builder.build(), "app", {"orders": 2, "payments": 3, "out": 1,
                                                "__consumer_offsets": 50})
    assert metadata.subscribed_topics() == ["orders", "payments"]
    assert [str(t) for t in metadata.tasks] == ["0_0", "0_1", "0_2"]


def fk_join_topology() -> StreamsBuilder:
    builder = StreamsBuilder()
    orders = builder.table("orders")
    customers = builder.table("customers")
    (orders.join(customers, lambda order: order.split(":")[0], lambda o, c: f"{o} by {c}")
     .to_stream().to("out"))
    return builder


def test_foreign_key_join_topics_are_co_partitioned_with_their_tables():
    """KIP-213 (``KTableImpl.doJoinOnForeignKey`` copartitions the subscription topic with the
    right table and the response topic with the left one; ``RepartitionTopics`` resolves the
    two sub-topologies that feed each other): with orders on 3 partitions and customers on 2,
    the registration topic gets 2 and the response topic 3."""
    metadata = prepare(fk_join_topology().build(), "fk", {"orders": 3, "customers": 2, "out": 1})
    counts = {t.split("-")[-3]: metadata.partitions[t] for t in metadata.repartition_topics}
    assert counts == {"REGISTRATION": 2, "RESPONSE": 3}
    assert [str(t) for t in metadata.tasks] == ["0_0", "0_1", "0_2", "1_0", "1_1"]


def test_foreign_key_join_on_the_cluster_matches_the_test_driver():
    """The same foreign-key join through the test driver and on a cluster whose tables are
    partitioned differently: the same final result per order."""
    kernel = cluster({"orders": 3, "customers": 2, "out": 1})
    streams = KafkaStreams(kernel, fk_join_topology().build(),
                           {"application.id": "fk", "statestore.cache.max.bytes": 0})
    streams.start()
    kernel.run(until_ms=5_000)
    customers = [("c1", "Ann", 1), ("c2", "Bob", 2)]
    orders = [("o1", "c1:10", 3), ("o2", "c2:20", 4), ("o3", "c1:5", 5), ("o1", "c2:11", 6)]
    produce(kernel, "customers", customers)
    kernel.run(until_ms=6_000)
    produce(kernel, "orders", orders)
    kernel.run(until_ms=40_000)
    got = dict(key_values(kernel, "out"))
    with TopologyTestDriver(fk_join_topology().build()) as driver:
        for topic, rows in (("customers", customers), ("orders", orders)):
            source = driver.create_input_topic(topic)
            for key, value, timestamp in rows:
                source.pipe_input(key, value, timestamp)
        expected = driver.create_output_topic("out").read_key_values_to_map()
    assert got == expected == {"o1": "c2:11 by Bob", "o2": "c2:20 by Bob", "o3": "c1:5 by Ann"}
