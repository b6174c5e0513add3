"""Specification of the cluster: replica placement, topic rules, lookups and metadata.

Replica placement is Kafka's rack-unaware assignment
(``AdminUtils.assignReplicasToBrokersRackUnaware``): leaders round-robin over the brokers from a
random start index, followers shifted by a random amount that grows by one each time the
partitions wrap around the brokers. Topic names follow
``org.apache.kafka.common.internals.Topic.validate``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.broker.cluster import MAX_TOPIC_LENGTH, Cluster, assign_replicas, validate_topic_name
from sim.errors import ConfigError, UnknownTopicError
from sim.kernel import Kernel

# --- An independent reimplementation of Kafka's algorithm ----------------------------------------


def kafka_rack_unaware(
    n_partitions: int, replication_factor: int, brokers: list[int], start_index: int, shift: int
) -> list[list[int]]:
    """``AdminUtils.assignReplicasToBrokersRackUnaware`` with a fixed start index and shift.

    Transcribed from Kafka's Scala: for each partition, bump ``nextReplicaShift`` when the
    partition id wraps around the broker array, take the first replica at
    ``(partition + startIndex) % n`` and the j-th follower at
    ``(first + 1 + (nextReplicaShift + j) % (n - 1)) % n`` (``replicaIndex``).
    """
    n = len(brokers)
    next_replica_shift = shift
    result = []
    for partition_id in range(n_partitions):
        if partition_id > 0 and partition_id % n == 0:
            next_replica_shift += 1
        first_index = (partition_id + start_index) % n
        replicas = [brokers[first_index]]
        for j in range(replication_factor - 1):
            replica_shift = 1 + (next_replica_shift + j) % (n - 1)
            replicas.append(brokers[(first_index + replica_shift) % n])
        result.append(replicas)
    return result


class FixedDraws:
    """A numpy Generator whose next ``integers(n)`` draws are given values, for pinning the start
    index and shift; every other use is passed to a real generator."""

    def __init__(self, *values: int) -> None:
        self._values = list(values)
        self._rng = np.random.default_rng(0)

    def integers(self, high: int, *args: Any, **kwargs: Any) -> Any:
        if not self._values or args or kwargs:
            return self._rng.integers(high, *args, **kwargs)
        value = self._values.pop(0)
        assert 0 <= value < high, f"draw {value} outside [0, {high})"
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rng, name)


@st.composite
def placements(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    """(partitions, replication factor, broker ids); ids distinct and sorted, not only 0..n-1."""
    brokers = sorted(draw(st.sets(st.integers(0, 50), min_size=1, max_size=8)))
    replication_factor = draw(st.integers(1, len(brokers)))
    partitions = draw(st.integers(1, 60))
    return partitions, replication_factor, brokers


# --- Replica placement ---------------------------------------------------------------------------


def test_matches_kafka_admin_test_vector() -> None:
    """5 brokers, 10 partitions, RF 3, start index and shift 0 give Kafka's expected assignment."""
    # kafka.admin.AdminTest#testReplicaAssignment:
    # AdminUtils.assignReplicasToBrokers(brokers 0-4, 10, 3, fixedStartIndex = 0).
    expected = [
        [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 0], [4, 0, 1],
        [0, 2, 3], [1, 3, 4], [2, 4, 0], [3, 0, 1], [4, 1, 2],
    ]
    assert assign_replicas(10, 3, [0, 1, 2, 3, 4], FixedDraws(0, 0)) == expected


def test_module_docstring_worked_example() -> None:
    """3 brokers, start 0, shift 0, RF 2: p0 [0, 1], p1 [1, 2], p2 [2, 0], p3 [0, 2]."""
    assert assign_replicas(4, 2, [0, 1, 2], FixedDraws(0, 0)) == [[0, 1], [1, 2], [2, 0], [0, 2]]


@given(placements(), st.data())
def test_matches_kafka_for_any_start_index_and_shift(
    shape: tuple[int, int, list[int]], data: st.DataObject
) -> None:
    """For every fixed start index and shift, the placement is exactly Kafka's."""
    partitions, rf, brokers = shape
    start = data.draw(st.integers(0, len(brokers) - 1), label="start index")
    shift = data.draw(st.integers(0, len(brokers) - 1), label="shift")
    assert assign_replicas(partitions, rf, brokers, FixedDraws(start, shift)) == (
        kafka_rack_unaware(partitions, rf, brokers, start, shift)
    )


@given(placements(), st.integers(0, 2**32 - 1))
def test_draws_start_index_then_shift_from_the_generator(
    shape: tuple[int, int, list[int]], seed: int
) -> None:
    """With a numpy Generator, start index and shift are its first two draws below n, in order."""
    partitions, rf, brokers = shape
    twin = np.random.default_rng(seed)
    start = int(twin.integers(len(brokers)))
    shift = int(twin.integers(len(brokers)))
    placed = assign_replicas(partitions, rf, brokers, np.random.default_rng(seed))
    assert placed == kafka_rack_unaware(partitions, rf, brokers, start, shift)


@given(placements(), st.integers(0, 2**32 - 1))
def test_each_partition_has_rf_distinct_brokers(
    shape: tuple[int, int, list[int]], seed: int
) -> None:
    """Every partition gets exactly RF replicas on RF different brokers of the cluster."""
    partitions, rf, brokers = shape
    for replicas in assign_replicas(partitions, rf, brokers, np.random.default_rng(seed)):
        assert len(replicas) == rf
        assert len(set(replicas)) == rf
        assert set(replicas) <= set(brokers)


@given(placements(), st.integers(0, 2**32 - 1))
def test_leaders_are_spread_evenly(shape: tuple[int, int, list[int]], seed: int) -> None:
    """Each broker leads ⌊P/n⌋ or ⌈P/n⌉ partitions, so exactly P/n when n divides P."""
    partitions, rf, brokers = shape
    n = len(brokers)
    leaders = Counter(r[0] for r in assign_replicas(partitions, rf, brokers,
                                                     np.random.default_rng(seed)))
    counts = [leaders[b] for b in brokers]
    assert set(counts) <= {partitions // n, -(-partitions // n)}
    assert sum(counts) == partitions


@given(placements(), st.integers(0, 2**32 - 1))
def test_replicas_are_spread_evenly_over_whole_rounds(
    shape: tuple[int, int, list[int]], seed: int
) -> None:
    """When n divides P, every broker holds exactly RF·P/n replicas (leaders and followers)."""
    partitions, rf, brokers = shape
    n = len(brokers)
    partitions -= partitions % n  # whole rounds only
    if partitions == 0:
        partitions = n
    held = Counter(b for r in assign_replicas(partitions, rf, brokers,
                                              np.random.default_rng(seed)) for b in r)
    assert [held[b] for b in brokers] == [rf * partitions // n] * n


@given(placements(), st.integers(0, 2**32 - 1))
def test_same_seed_same_placement(shape: tuple[int, int, list[int]], seed: int) -> None:
    """Two clusters with equally seeded generators place a topic identically."""
    partitions, rf, brokers = shape
    n = len(brokers)
    first = Cluster(n, np.random.default_rng(seed)).create_topic("t", partitions, rf)
    second = Cluster(n, np.random.default_rng(seed)).create_topic("t", partitions, rf)
    assert [p.replicas for p in first.partitions] == [p.replicas for p in second.partitions]


def test_different_seeds_eventually_place_differently() -> None:
    """Placement is random: among a few seeds, at least two place a topic differently."""
    seen = {
        tuple(tuple(p.replicas) for p in Kernel(seed=s).cluster.create_topic("t", 6, 2).partitions)
        for s in range(20)
    }
    assert len(seen) > 1


def test_created_partitions_follow_the_placement() -> None:
    """Each partition's replicas come from the placement; leader and ISR start as Kafka's."""
    cluster = Cluster(3, FixedDraws(1, 2))
    topic = cluster.create_topic("orders", partitions=4, replication_factor=2)
    expected = kafka_rack_unaware(4, 2, [0, 1, 2], 1, 2)
    assert [p.replicas for p in topic.partitions] == expected
    for p, part in enumerate(topic.partitions):
        assert (part.topic, part.partition) == ("orders", p)
        assert part.leader == part.replicas[0]  # the preferred leader
        assert part.isr == part.replicas
        assert len(part.log) == 0
    assert topic.replication_factor == 2


def test_topic_configs_are_parsed_with_topic_defaults() -> None:
    """A topic's configs are the topic defaults overlaid with the given ones, validated."""
    cluster = Cluster(3)
    topic = cluster.create_topic("logs", 2, 1, {"segment.bytes": "2097152"})
    assert topic.config["segment.bytes"] == 2097152
    assert topic.config["min.insync.replicas"] == 1
    assert all(p.log.segment_bytes == 2097152 for p in topic.partitions)
    with pytest.raises(ConfigError, match=r"min\.insync\.replicas"):
        cluster.create_topic("bad", 1, 1, {"min.insync.replicas": 0})
    assert "bad" not in cluster.topics


# --- Topic names and arguments -------------------------------------------------------------------

LEGAL_NAMES = ["orders", "a", "Orders_2024.v1-eu", "...", "_", "-", "a" * MAX_TOPIC_LENGTH]


@pytest.mark.parametrize("name", LEGAL_NAMES, ids=lambda n: n[:20])
def test_legal_topic_names_are_accepted(name: str) -> None:
    """ASCII letters, digits, '.', '_', '-' up to 249 characters make a legal name."""
    validate_topic_name(name)
    assert Cluster(1).create_topic(name).name == name


ILLEGAL_NAMES = [
    ("", "non-empty"),
    (".", "cannot be '.'"),
    ("..", "cannot be '..'"),
    ("a" * (MAX_TOPIC_LENGTH + 1), "the limit is 249"),
    ("my topic", "illegal"),
    ("orders/eu", "illegal"),
    ("tópico", "illegal"),
    ("orders:1", "illegal"),
]


@pytest.mark.parametrize(("name", "phrase"), ILLEGAL_NAMES, ids=lambda v: str(v)[:20])
def test_illegal_topic_names_are_rejected_with_the_rule(name: str, phrase: str) -> None:
    """Kafka's Topic.validate rules: not empty, not '.' or '..', ≤ 249, legal characters only."""
    with pytest.raises(ConfigError, match=phrase):
        Cluster(1).create_topic(name)


def test_trailing_newline_is_illegal() -> None:
    """A name ending in a newline contains an illegal character."""
    with pytest.raises(ConfigError, match="illegal"):
        validate_topic_name("orders\n")


def test_topic_name_max_length_is_kafkas() -> None:
    """The length limit is Kafka's Topic.MAX_NAME_LENGTH, 249."""
    assert MAX_TOPIC_LENGTH == 249


def test_non_string_topic_name_is_rejected() -> None:
    """A topic name must be a string."""
    with pytest.raises(ConfigError, match="non-empty string"):
        Cluster(1).create_topic(42)  # type: ignore[arg-type]


def test_duplicate_topic_is_rejected_and_the_first_kept(small_cluster: Cluster) -> None:
    """Creating an existing topic fails, naming it, and leaves the existing topic untouched."""
    before = small_cluster.topic("orders")
    with pytest.raises(ConfigError, match="'orders' already exists"):
        small_cluster.create_topic("orders", partitions=1)
    assert small_cluster.topic("orders") is before
    assert len(before.partitions) == 6


@pytest.mark.parametrize("partitions", [0, -3, "3", 2.0, None])
def test_bad_partition_count_is_rejected(partitions: object) -> None:
    """Partitions must be an int of at least 1; the error names the topic and the value."""
    cluster = Cluster(3)
    with pytest.raises(ConfigError) as info:
        cluster.create_topic("t", partitions=partitions)  # type: ignore[arg-type]
    assert "'t'" in str(info.value)
    assert "at least 1" in str(info.value)
    assert repr(partitions) in str(info.value)
    assert not cluster.topics


@pytest.mark.parametrize("rf", [0, 4, -1, "2"])
def test_bad_replication_factor_is_rejected(rf: object) -> None:
    """The replication factor must be between 1 and the number of brokers, said in the error."""
    cluster = Cluster(3)
    with pytest.raises(ConfigError) as info:
        cluster.create_topic("t", partitions=2, replication_factor=rf)  # type: ignore[arg-type]
    message = str(info.value)
    assert repr(rf) in message
    assert "between 1 and the number of brokers (3)" in message
    assert not cluster.topics


@pytest.mark.parametrize("brokers", [0, -1, 2.0])
def test_a_cluster_needs_at_least_one_broker(brokers: object) -> None:
    """A cluster without brokers cannot exist."""
    with pytest.raises(ConfigError, match="at least 1 broker"):
        Cluster(brokers)  # type: ignore[arg-type]


# --- Lookups -------------------------------------------------------------------------------------


def test_unknown_topic_lists_the_existing_ones(small_cluster: Cluster) -> None:
    """Asking for a missing topic raises UnknownTopicError listing the topics that exist."""
    small_cluster.create_topic("clicks")
    with pytest.raises(UnknownTopicError) as info:
        small_cluster.topic("order")
    message = str(info.value)
    assert "Unknown topic 'order'" in message
    assert "clicks, orders" in message
    assert message == info.value.args[0]  # printed as written, not quoted like a KeyError


def test_unknown_topic_on_an_empty_cluster_says_there_are_none() -> None:
    """With no topics yet, the error says so and how to create one."""
    with pytest.raises(UnknownTopicError, match=r"none yet.*create_topic"):
        Cluster(1).partition("orders", 0)


def test_unknown_topic_error_is_a_key_error(small_cluster: Cluster) -> None:
    """Code that catches KeyError for a missing topic keeps working."""
    with pytest.raises(KeyError):
        small_cluster.leader("nope", 0)


def test_leader_is_the_broker_of_the_partition_leader(small_cluster: Cluster) -> None:
    """cluster.leader(topic, p) is the Broker whose id is the partition's leader."""
    for part in small_cluster.topic("orders").partitions:
        assert small_cluster.leader("orders", part.partition).broker_id == part.leader
        assert small_cluster.partition("orders", part.partition) is part


# --- Metadata ------------------------------------------------------------------------------------


def test_metadata_is_cached_until_something_changes(small_cluster: Cluster) -> None:
    """metadata() returns the same snapshot until a topic or liveness change invalidates it."""
    first = small_cluster.metadata()
    assert small_cluster.metadata() is first
    version = small_cluster.metadata_version
    small_cluster.create_topic("clicks", 2)
    assert small_cluster.metadata_version == version + 1
    second = small_cluster.metadata()
    assert second is not first
    assert dict(second.partitions) == {"orders": 6, "clicks": 2}


def test_partitions_of_a_dead_leader_are_unavailable(small_cluster: Cluster) -> None:
    """After a broker dies (and metadata is refreshed) the partitions it leads are unavailable."""
    assert small_cluster.metadata().unavailable == frozenset()
    small_cluster.brokers[1].alive = False
    assert small_cluster.metadata().unavailable == frozenset()  # clients still see the cache
    small_cluster.metadata_changed()
    led_by_1 = {p.partition for p in small_cluster.topic("orders").partitions if p.leader == 1}
    meta = small_cluster.metadata()
    assert meta.unavailable == frozenset(("orders", p) for p in led_by_1)
    assert meta.available_partitions_for_topic("orders") == sorted(set(range(6)) - led_by_1)
    assert meta.partition_count_for_topic("orders") == 6


def test_partition_without_leader_is_unavailable(small_cluster: Cluster) -> None:
    """A partition whose leader is -1 (none) is unavailable to clients."""
    small_cluster.partition("orders", 4).leader = -1
    small_cluster.metadata_changed()
    assert small_cluster.metadata().unavailable == frozenset({("orders", 4)})


# --- Brokers -------------------------------------------------------------------------------------


def test_broker_requests_queue_behind_each_other() -> None:
    """A broker handles one request at a time: a second arrival waits for the first to finish."""
    broker = Cluster(1, broker_configs={"lab.request.time.ms": 1.0,
                                        "lab.append.mb.per.s": 1.0}).brokers[0]
    first_done = broker.handle(0.0, 1000)  # 1 ms + 1000 bytes at 1 MB/s = 1 ms more
    assert first_done == pytest.approx(2.0)
    assert broker.handle(0.5, 1000) == pytest.approx(4.0)
    assert broker.busy_ms == pytest.approx(4.0)


def test_slow_broker_takes_factor_times_longer() -> None:
    """set_slowdown(f) multiplies request handling time by f; f < 1 is rejected."""
    broker = Cluster(1, broker_configs={"lab.request.time.ms": 1.0}).brokers[0]
    normal = broker.handle(0.0, 0)
    broker.set_slowdown(10)
    assert broker.handle(100.0, 0) - 100.0 == pytest.approx(10 * normal)
    assert "slow ×10" in repr(broker)
    with pytest.raises(ConfigError, match=r"lab\.slowdown"):
        broker.set_slowdown(0.5)


def test_a_fault_naming_a_client_id_reaches_the_clients_named_after_it() -> None:
    """``Network.name_client``: a cut or a lossy link naming a ``client.id`` reaches a client
    the lab numbered (``src-7``) and registered under that id; a cut naming the numbered id
    still reaches it; an unregistered client with a similar id is not touched."""
    network = Kernel(seed=0, brokers=1).cluster.network
    network.name_client("src-7", "src")
    network.cut(0, "src")
    assert not network.connected("src-7", 0)
    assert not network.deliver(0, "src-7")
    assert network.connected("src-1", 0)
    network.heal(0, "src")
    assert network.connected("src-7", 0)
    network.set_loss(0, "src", 1.0)
    assert not network.deliver("src-7", 0)
    network.set_loss(0, "src", 0.0)
    network.cut(0, "src-7")
    assert not network.connected("src-7", 0)
    assert network.connected("src", 0)
