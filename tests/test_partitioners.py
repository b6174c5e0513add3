"""Partitioners: Kafka's built-in sticky logic, the legacy ones, the VIP example and name lookup."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from sim.errors import ConfigError
from sim.partitioners import (
    BuiltInPartitioner,
    ClusterMetadata,
    DefaultPartitioner,
    RoundRobinPartitioner,
    StickyPartitionCache,
    UniformStickyPartitioner,
    VipPartitioner,
    partition_for_key,
    resolve_partitioner,
)


def sequential_random():
    """Kafka's tests mock the random source with 0, 1, 2, … (BuiltInPartitionerTest)."""
    counter = itertools.count()
    return lambda: next(counter)


def test_adaptive_frequencies_are_reciprocal_to_queue_sizes():
    """Kafka's BuiltInPartitionerTest.adaptivePartitionsTest: weights max+1-queue, exact counts."""
    meta = ClusterMetadata({"a": 5})
    builtin = BuiltInPartitioner("a", 1, sequential_random())
    queue_sizes = [5, 0, 3, 0, 1]
    builtin.update_partition_load_stats(queue_sizes, [0, 1, 2, 3, 4], 5)
    cycles = 2
    frequencies = Counter()
    for _ in range(builtin.load_stats_range_end * cycles):
        frequencies[builtin.peek(meta)] += 1
        builtin.update_partition_info(1, meta)
    assert [frequencies[p] for p in range(5)] == [(6 - q) * cycles for q in queue_sizes]


def test_cumulative_frequency_table_worked_example():
    """The example in BuiltInPartitioner's comment: queues [0,3,1] → CFT [4,5,8]."""
    draws = iter(range(8))
    builtin = BuiltInPartitioner("a", 1, lambda: next(draws))
    builtin.update_partition_load_stats([0, 3, 1], [0, 1, 2], 3)
    assert builtin.load_stats_range_end == 8
    picks = [builtin.next_partition(ClusterMetadata({"a": 3})) for _ in range(8)]
    assert picks == [0, 0, 0, 0, 1, 2, 2, 2]


def test_equal_queues_mean_no_adaptive_stats():
    """All queue sizes equal and none excluded → uniform choice (no load stats)."""
    builtin = BuiltInPartitioner("a", 1, sequential_random())
    builtin.update_partition_load_stats([2, 2, 2], [0, 1, 2], 3)
    assert builtin.load_stats_range_end is None


def test_excluded_partitions_are_never_chosen():
    """Partitions left out by partitioner.availability.timeout.ms get no weight."""
    builtin = BuiltInPartitioner("a", 1, sequential_random())
    builtin.update_partition_load_stats([0, 0, 0, 0], [0, 2, 1, 3], 2)
    picks = {builtin.next_partition(ClusterMetadata({"a": 4})) for _ in range(50)}
    assert picks == {0, 2}


def test_switches_after_sticky_batch_size_bytes():
    """BuiltInPartitionerTest.stickyPartitionsTest: after 3 bytes with stickyBatchSize 3, switch."""
    meta = ClusterMetadata({"a": 3})
    builtin = BuiltInPartitioner("a", 3, sequential_random())
    first = builtin.peek(meta)
    assert not builtin.update_partition_info(1, meta)
    assert not builtin.update_partition_info(1, meta)
    assert builtin.update_partition_info(1, meta)
    assert builtin.peek(meta) != first


def test_switch_waits_for_full_batches_but_not_beyond_twice_the_batch_size():
    """With enableSwitch false the switch is deferred, but 2 × batch.size forces it."""
    meta = ClusterMetadata({"a": 3})
    builtin = BuiltInPartitioner("a", 10, sequential_random())
    builtin.peek(meta)
    assert not builtin.update_partition_info(10, meta, enable_switch=False)
    assert not builtin.update_partition_info(9, meta, enable_switch=False)
    assert builtin.update_partition_info(1, meta, enable_switch=False)


def test_single_partition_topic_always_sticks_to_it():
    """stickyPartitionsTest, topic B: one partition, switching keeps choosing 0."""
    meta = ClusterMetadata({"b": 1})
    builtin = BuiltInPartitioner("b", 1, sequential_random())
    for _ in range(10):
        assert builtin.peek(meta) == 0
        builtin.update_partition_info(1, meta)


def test_unavailable_partitions_are_skipped_unless_all_are_unavailable():
    """unavailablePartitionsTest: never pick a leaderless partition; if all are, pick any."""
    meta = ClusterMetadata({"a": 3, "c": 1}, frozenset({("a", 1), ("c", 0)}))
    builtin = BuiltInPartitioner("a", 1, sequential_random())
    picks = set()
    for _ in range(100):
        picks.add(builtin.peek(meta))
        builtin.update_partition_info(1, meta)
    assert picks == {0, 2}
    assert BuiltInPartitioner("c", 1, sequential_random()).peek(meta) == 0


def test_sticky_batch_size_must_be_positive():
    """Kafka's testStickyBatchSizeMoreThatZero."""
    with pytest.raises(ConfigError, match="stickyBatchSize"):
        BuiltInPartitioner("a", 0, sequential_random())


def test_kip480_cache_never_picks_the_same_partition_again():
    """StickyPartitionCache.nextPartition avoids the old partition when ≥ 2 are available."""
    meta = ClusterMetadata({"a": 3})
    cache = StickyPartitionCache(sequential_random())
    current = cache.partition("a", meta)
    for _ in range(20):
        new = cache.next_partition("a", meta, current)
        assert new != current
        current = new


def test_kip480_cache_uses_the_only_available_partition():
    """With one available partition the cache always returns it."""
    meta = ClusterMetadata({"a": 3}, frozenset({("a", 0), ("a", 2)}))
    cache = StickyPartitionCache(sequential_random())
    assert cache.partition("a", meta) == 1
    assert cache.next_partition("a", meta, 1) == 1


def test_round_robin_walks_available_partitions_and_ignores_keys():
    """RoundRobinPartitioner: counter from 0 over the available partitions, keys ignored."""
    meta = ClusterMetadata({"a": 4}, frozenset({("a", 2)}))
    rr = RoundRobinPartitioner()
    picks = [rr.partition("a", "same-key", b"same-key", None, None, meta) for _ in range(6)]
    assert picks == [0, 1, 3, 0, 1, 3]


def test_default_partitioner_hashes_keys_and_sticks_without_keys():
    """DefaultPartitioner (3.x): murmur2 for keys; KIP-480 sticky for key-less records."""
    meta = ClusterMetadata({"a": 6})
    partitioner = DefaultPartitioner()
    partitioner.configure({})
    assert partitioner.partition("a", "alice", b"alice", None, None, meta) == 3
    first = partitioner.partition("a", None, None, None, None, meta)
    assert partitioner.partition("a", None, None, None, None, meta) == first
    partitioner.on_new_batch("a", meta, first)
    assert partitioner.partition("a", None, None, None, None, meta) != first


def test_uniform_sticky_ignores_keys():
    """UniformStickyPartitioner puts keyed records on the sticky partition too."""
    meta = ClusterMetadata({"a": 6})
    partitioner = UniformStickyPartitioner()
    partitioner.configure({})
    picks = {partitioner.partition("a", k, k.encode(), None, None, meta) for k in "abcdef"}
    assert len(picks) == 1


def test_vip_partitioner_routes_vips_to_eight_of_ten():
    """The seed's example: VIPs on 0–7, everyone else on 8–9, each key stable."""
    meta = ClusterMetadata({"payments": 10})
    vip = VipPartitioner()
    for i in range(200):
        key = f"vip-{i}"
        p = vip.partition("payments", key, key.encode(), None, None, meta)
        assert 0 <= p < 8
        assert p == partition_for_key(key.encode(), 8)
        other = f"customer-{i}"
        q = vip.partition("payments", other, other.encode(), None, None, meta)
        assert q == 8 + partition_for_key(other.encode(), 2)


def test_vip_partitioner_needs_more_partitions_than_vip_partitions():
    """Eight VIP partitions of an eight-partition topic leave none for others: clear error."""
    with pytest.raises(ConfigError, match=r"more than 8 partitions"):
        VipPartitioner().partition("t", "vip-1", b"vip-1", None, None, ClusterMetadata({"t": 8}))


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("RoundRobinPartitioner", RoundRobinPartitioner),
        ("org.apache.kafka.clients.producer.RoundRobinPartitioner", RoundRobinPartitioner),
        ("VipPartitioner", VipPartitioner),
        ("sim.partitioners:VipPartitioner", VipPartitioner),
    ],
)
def test_partitioner_names_resolve_to_instances(name, cls):
    """partitioner.class takes Kafka's class names, short names and module:Class paths."""
    assert isinstance(resolve_partitioner(name, "4.0"), cls)


def test_removed_partitioners_need_the_older_client_version():
    """DefaultPartitioner and UniformStickyPartitioner were removed in Kafka 4.0 (KAFKA-18262)."""
    with pytest.raises(ConfigError, match=r"removed in Kafka 4\.0"):
        resolve_partitioner("org.apache.kafka.clients.producer.internals.DefaultPartitioner", "4.0")
    assert isinstance(resolve_partitioner("UniformStickyPartitioner", "3.8"),
                      UniformStickyPartitioner)


def test_unknown_partitioner_name_lists_the_known_ones():
    """A typo gets an error naming the value and the allowed names."""
    with pytest.raises(ConfigError, match="RoundRobinPartitioner") as err:
        resolve_partitioner("RoundRobin", "4.0")
    assert "'RoundRobin'" in str(err.value)


def test_object_without_partition_method_is_rejected():
    """Anything without partition(...) is not a partitioner."""
    with pytest.raises(ConfigError, match="partition"):
        resolve_partitioner(object(), "4.0")


def test_none_means_the_built_in_partitioner():
    """partitioner.class=None keeps the built-in uniform sticky partitioner."""
    assert resolve_partitioner(None, "4.0") is None
