"""Tests for sim.consumer.assignors: Kafka's vectors (kafka-facts §4), properties, cross-checks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.consumer.assignors import (
    ASSIGNORS,
    COOPERATIVE,
    EAGER,
    ConsumerPartitionAssignor,
    CooperativeStickyAssignor,
    RangeAssignor,
    RoundRobinAssignor,
    StickyAssignor,
    Subscription,
    assignor_for,
    java_hashmap_order,
    java_string_hash,
    java_string_key,
    member_order,
)
from sim.errors import ConfigError
from sim.records import TopicPartition
from tests.strategies import (
    equal_subscription_groups,
    groups_with_owned_partitions,
    mixed_subscription_groups,
)

ALL_ASSIGNORS = [RangeAssignor, RoundRobinAssignor, StickyAssignor, CooperativeStickyAssignor]
STICKY_ASSIGNORS = [StickyAssignor, CooperativeStickyAssignor]


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


def tps(spec: str) -> list[TopicPartition]:
    """'t0p0 t1p2' -> [tp('t0', 0), tp('t1', 2)]: the notation of Kafka's javadoc."""
    out = []
    for item in spec.split():
        topic, _, partition = item.rpartition("p")
        out.append(tp(topic, int(partition)))
    return out


def subs(**topics_by_member: str) -> dict[str, Subscription]:
    """subs(C0="t0 t1") -> {"C0": Subscription(("t0", "t1"))}."""
    return {m: Subscription(tuple(t.split())) for m, t in topics_by_member.items()}


def owning(topics: str, owned: str, generation: int = 1) -> Subscription:
    return Subscription(tuple(topics.split()), tuple(tps(owned)), generation)


# --- RangeAssignor (kafka-facts §4.2) ---------------------------------------------------------

def test_range_javadoc_example():
    """RangeAssignor javadoc: C0 gets the first two partitions of each topic."""
    result = RangeAssignor().assign({"t0": 3, "t1": 3}, subs(C0="t0 t1", C1="t0 t1"))
    assert result == {"C0": tps("t0p0 t0p1 t1p0 t1p1"), "C1": tps("t0p2 t1p2")}


def test_range_seven_partitions_then_a_fourth_member():
    """7 partitions over A B C, then D joins: every range shifts."""
    result = RangeAssignor().assign({"t": 7}, subs(A="t", B="t", C="t"))
    assert result == {"A": tps("tp0 tp1 tp2"), "B": tps("tp3 tp4"), "C": tps("tp5 tp6")}
    result = RangeAssignor().assign({"t": 7}, subs(A="t", B="t", C="t", D="t"))
    assert result == {
        "A": tps("tp0 tp1"), "B": tps("tp2 tp3"), "C": tps("tp4 tp5"), "D": tps("tp6")
    }


def test_range_mixed_subscriptions():
    """Each topic is split among its own subscribers only."""
    group = subs(C0="t0", C1="t0 t1", C2="t0 t1 t2")
    result = RangeAssignor().assign({"t0": 1, "t1": 2, "t2": 3}, group)
    assert result == {"C0": tps("t0p0"), "C1": tps("t1p0"), "C2": tps("t1p1 t2p0 t2p1 t2p2")}


@pytest.mark.parametrize("assignor", [RangeAssignor, RoundRobinAssignor])
def test_mixed_topics_from_kafka_tests(assignor):
    """RangeAssignorTest / RoundRobinAssignorTest.testMultipleConsumersMixedTopics."""
    group = subs(consumer1="topic1", consumer2="topic1 topic2", consumer3="topic1")
    result = assignor().assign({"topic1": 3, "topic2": 2}, group)
    assert result == {
        "consumer1": tps("topic1p0"),
        "consumer2": tps("topic1p1 topic2p0 topic2p1"),
        "consumer3": tps("topic1p2"),
    }


# --- RoundRobinAssignor (kafka-facts §4.3) ----------------------------------------------------

def test_roundrobin_javadoc_example():
    """RoundRobinAssignor javadoc: partitions are dealt alternately."""
    result = RoundRobinAssignor().assign({"t0": 3, "t1": 3}, subs(C0="t0 t1", C1="t0 t1"))
    assert result == {"C0": tps("t0p0 t0p2 t1p1"), "C1": tps("t0p1 t1p0 t1p2")}


def test_roundrobin_javadoc_unequal_subscriptions():
    """RoundRobinAssignor javadoc: members not subscribed to a topic are skipped."""
    group = subs(C0="t0", C1="t0 t1", C2="t0 t1 t2")
    result = RoundRobinAssignor().assign({"t0": 1, "t1": 2, "t2": 3}, group)
    assert result == {"C0": tps("t0p0"), "C1": tps("t1p0"), "C2": tps("t1p1 t2p0 t2p1 t2p2")}


def test_roundrobin_three_members_four_topics_then_one_leaves():
    """C0..C2 on t0..t3 x 2, then C1 leaves and the deal starts over."""
    counts = {"t0": 2, "t1": 2, "t2": 2, "t3": 2}
    group = subs(C0="t0 t1 t2 t3", C1="t0 t1 t2 t3", C2="t0 t1 t2 t3")
    assert RoundRobinAssignor().assign(counts, group) == {
        "C0": tps("t0p0 t1p1 t3p0"), "C1": tps("t0p1 t2p0 t3p1"), "C2": tps("t1p0 t2p1")
    }
    del group["C1"]
    assert RoundRobinAssignor().assign(counts, group) == {
        "C0": tps("t0p0 t1p0 t2p0 t3p0"), "C2": tps("t0p1 t1p1 t2p1 t3p1")
    }


# --- Static membership (kafka-facts §4.1) ----------------------------------------------------

@pytest.mark.parametrize(
    ("assignor", "low", "high"),
    [
        (RangeAssignor, "t1p0 t1p1 t2p0 t2p1", "t1p2 t2p2"),
        (RoundRobinAssignor, "t1p0 t1p2 t2p1", "t1p1 t2p0 t2p2"),
    ],
)
@pytest.mark.parametrize("high_is_static", [True, False])
def test_static_members_sort_by_instance_id_and_before_dynamic(assignor, low, high, high_is_static):
    """Range/RoundRobinAssignorTest.test{TwoStatic,OneStaticAndOneDynamic}Consumers...."""
    topics = ("t1", "t2")
    # consumer-a < consumer-b, but instance1 < instance2 and a static member beats a dynamic one
    high_instance = "instance2" if high_is_static else None
    group = {
        "consumer-b": Subscription(topics, group_instance_id="instance1"),
        "consumer-a": Subscription(topics, group_instance_id=high_instance),
    }
    result = assignor().assign({"t1": 3, "t2": 3}, group)
    assert result == {"consumer-b": tps(low), "consumer-a": tps(high)}


def test_roundrobin_static_members_keep_their_partitions():
    """RoundRobinAssignorTest.testStaticMemberRoundRobinAssignmentPersistent."""
    topics = ("topic1", "topic2")
    group = {
        f"consumer{i}": Subscription(topics, group_instance_id=f"instance{i}") for i in (1, 2, 3)
    }
    expected = {
        "consumer1": tps("topic1p0 topic2p1"),
        "consumer2": tps("topic1p1 topic2p2"),
        "consumer3": tps("topic1p2"),
    }
    for dynamic in ("consumer4", "consumer5"):  # a dynamic member is replaced by another
        members = {**group, dynamic: Subscription(topics)}
        result = RoundRobinAssignor().assign({"topic1": 3, "topic2": 3}, members)
        assert result == {**expected, dynamic: tps("topic2p0")}


def test_member_order_static_first_then_dynamic_by_member_id():
    """Static members sort by group.instance.id, then dynamic ones by member.id."""
    group = {
        "m3": Subscription(("t",)),
        "m9": Subscription(("t",), group_instance_id="b"),
        "m1": Subscription(("t",)),
        "m0": Subscription(("t",), group_instance_id="c"),
        "m5": Subscription(("t",), group_instance_id="a"),
    }
    assert member_order(group) == ["m5", "m9", "m0", "m1", "m3"]


# --- Java ordering helpers ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("keys", "order"),
    [
        (["consumer1", "consumer2", "consumer3", "consumer4"],
         ["consumer4", "consumer3", "consumer2", "consumer1"]),
        (["C0", "C1", "C2", "C3"], ["C3", "C0", "C1", "C2"]),
        (["c1", "c2", "c3"], ["c3", "c1", "c2"]),
        # 13 keys: the table has grown to 32 buckets (order checked on OpenJDK 17)
        ([f"member-{i}" for i in range(13)],
         ["member-5", "member-6", "member-3", "member-4", "member-12", "member-9", "member-11",
          "member-10", "member-7", "member-8", "member-1", "member-2", "member-0"]),
        # "Aa" and "BB" share a hash code: the bucket keeps insertion order (OpenJDK 17)
        (["Aa", "BB", "zz", "C10", "C2"], ["Aa", "BB", "zz", "C10", "C2"]),
        (["BB", "Aa", "C2"], ["BB", "Aa", "C2"]),
    ],
)
def test_java_hashmap_order(keys, order):
    """kafka-facts §4.4 pitfall: HashMap<String, ...> iteration order."""
    assert java_hashmap_order(keys) == order


def test_java_string_hash_known_values():
    """String.hashCode of well-known strings, including the one that hashes to Integer.MIN_VALUE."""
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("") == 0
    assert java_string_hash("polygenelubricants") == -(2**31)
    assert java_string_hash("\U0001F600") == 1772899  # two UTF-16 units


def test_java_string_order_differs_from_python_only_above_the_bmp():
    """String.compareTo works on UTF-16 units; for ASCII it equals Python's order."""
    assert sorted(["C2", "C10", "c1", "B"], key=java_string_key) == sorted(["C2", "C10", "c1", "B"])
    # U+1F600 is the surrogate pair D83D DE00, which Java sorts below U+FFFF; Python does not.
    assert java_string_key("\U0001F600") < java_string_key("\uffff")
    assert "\U0001F600" > "\uffff"


# --- Sticky assignors (kafka-facts §4.4) -------------------------------------------------------

def sticky(counts, group):
    return StickyAssignor().sticky_assignment(counts, group)


def test_sticky_fresh_two_consumers():
    """AbstractStickyAssignorTest.testTwoConsumersTwoTopicsSixPartitions."""
    group = subs(consumer1="topic1 topic2", consumer2="topic1 topic2")
    outcome = sticky({"topic1": 3, "topic2": 3}, group)
    assert outcome.assignment == {
        "consumer1": tps("topic1p0 topic1p2 topic2p1"),
        "consumer2": tps("topic1p1 topic2p0 topic2p2"),
    }
    assert outcome.transferring == {}


def test_sticky_fresh_group_matches_round_robin():
    """C0 C1 C2 on t0..t3 x 2 from scratch: same as round-robin."""
    counts = {"t0": 2, "t1": 2, "t2": 2, "t3": 2}
    group = subs(C0="t0 t1 t2 t3", C1="t0 t1 t2 t3", C2="t0 t1 t2 t3")
    assert StickyAssignor().assign(counts, group) == {
        "C0": tps("t0p0 t1p1 t3p0"), "C1": tps("t0p1 t2p0 t3p1"), "C2": tps("t1p0 t2p1")
    }


def test_sticky_member_owning_min_quota_gets_the_extra_partition():
    """AbstractStickyAssignorTest.testConsumerOwningMinQuotaExpectedMaxQuota."""
    group = {
        "consumer1": owning("topic1 topic2", "topic1p0 topic2p1"),
        "consumer2": owning("topic1 topic2", "topic1p1 topic2p2"),
    }
    outcome = sticky({"topic1": 2, "topic2": 3}, group)
    assert outcome.assignment == {
        "consumer1": tps("topic1p0 topic2p1 topic2p0"),
        "consumer2": tps("topic1p1 topic2p2"),
    }
    assert outcome.transferring == {}


def test_sticky_hashmap_order_decides_who_keeps_max_quota():
    """AbstractStickyAssignorTest.testMaxQuotaConsumerMoreThanNumExpectedMaxCapacityMembers."""
    group = {
        "consumer1": owning("topic1 topic2", "topic1p0 topic2p0"),
        "consumer2": owning("topic1 topic2", "topic1p1 topic2p1"),
        "consumer3": owning("topic1 topic2", ""),
    }
    outcome = sticky({"topic1": 2, "topic2": 2}, group)
    # consumer2 comes before consumer1 in HashMap order, so it keeps both of its partitions.
    assert outcome.assignment == {
        "consumer1": tps("topic1p0"),
        "consumer2": tps("topic1p1 topic2p1"),
        "consumer3": tps("topic2p0"),
    }
    assert outcome.transferring == {tp("topic2", 0): "consumer3"}


def test_sticky_hashmap_order_not_member_id_order():
    """Derived from §4.4: c3 precedes c1 in HashMap order, so c3 keeps two and c1 gives one up."""
    group = {"c1": owning("t", "tp0 tp1"), "c2": owning("t", ""), "c3": owning("t", "tp2 tp3")}
    outcome = sticky({"t": 4}, group)
    assert outcome.assignment == {"c1": tps("tp0"), "c2": tps("tp1"), "c3": tps("tp2 tp3")}
    assert outcome.transferring == {tp("t", 1): "c2"}


def test_sticky_all_members_under_min_quota():
    """AbstractStickyAssignorTest.testAllConsumersAreUnderMinQuota."""
    group = {
        "consumer1": owning("topic1 topic2", "topic1p0"),
        "consumer2": owning("topic1 topic2", "topic1p1"),
        "consumer3": owning("topic1 topic2", ""),
    }
    outcome = sticky({"topic1": 2, "topic2": 3}, group)
    assert outcome.assignment == {
        "consumer1": tps("topic1p0 topic2p1"),
        "consumer2": tps("topic1p1 topic2p2"),
        "consumer3": tps("topic2p0"),
    }
    assert outcome.transferring == {}


def test_sticky_general_algorithm_for_unequal_subscriptions():
    """AbstractStickyAssignorTest.testMultipleConsumersMixedTopicSubscriptions."""
    group = subs(consumer1="topic1", consumer2="topic1 topic2", consumer3="topic1")
    for assignor in (StickyAssignor(), CooperativeStickyAssignor()):
        assert assignor.assign({"topic1": 3, "topic2": 2}, group) == {
            "consumer1": tps("topic1p0 topic1p2"),
            "consumer2": tps("topic2p0 topic2p1"),
            "consumer3": tps("topic1p1"),
        }


def test_sticky_and_cooperative_when_a_consumer_joins():
    """AbstractStickyAssignorTest.testAddRemoveConsumerOneTopic, eager and cooperative."""
    counts = {"topic": 3}
    group = {
        "consumer1": owning("topic", "topicp0 topicp1 topicp2"),
        "consumer2": owning("topic", ""),
    }
    outcome = sticky(counts, group)
    assert outcome.assignment == {"consumer1": tps("topicp0 topicp1"), "consumer2": tps("topicp2")}
    assert outcome.transferring == {tp("topic", 2): "consumer2"}

    round1 = CooperativeStickyAssignor().assign(counts, group)
    assert round1 == {"consumer1": tps("topicp0 topicp1"), "consumer2": []}
    # consumer1 revoked topic-2 and rejoins; the follow-up rebalance hands it over.
    group = {m: owning("topic", " ".join(f"{p.topic}p{p.partition}" for p in parts), 2)
             for m, parts in round1.items()}
    round2 = CooperativeStickyAssignor().assign(counts, group)
    assert round2 == {"consumer1": tps("topicp0 topicp1"), "consumer2": tps("topicp2")}


@pytest.mark.parametrize(("partitions", "consumer1"), [(3, "topicp1"), (4, "topicp1 topicp3")])
def test_partition_claimed_twice_in_one_generation_is_transferring(partitions, consumer1):
    """CooperativeStickyAssignorTest.testAllConsumersHaveOwnedPartitionInvalidatedWhenClaimed...."""
    group = {
        "consumer1": owning("topic", "topicp0 topicp1"),
        "consumer2": owning("topic", "topicp0 topicp2"),
        "consumer3": owning("topic", ""),
    }
    outcome = sticky({"topic": partitions}, group)
    assert outcome.assignment["consumer3"] == tps("topicp0")
    assert outcome.transferring == {tp("topic", 0): "consumer3"}
    result = CooperativeStickyAssignor().assign({"topic": partitions}, group)
    assert result == {"consumer1": tps(consumer1), "consumer2": tps("topicp2"), "consumer3": []}


def test_stale_generation_loses_its_claims():
    """AbstractStickyAssignorTest.testOwnedPartitionsAreInvalidatedForConsumerWithStaleGeneration."""
    claims = "topicp0 topicp2 topic2p1"
    for stale in (9, -1):  # an older generation, or none at all (...WithNoGeneration)
        group = {
            "consumer1": owning("topic topic2", claims, 10),
            "consumer2": owning("topic topic2", claims, stale),
        }
        outcome = sticky({"topic": 3, "topic2": 3}, group)
        assert set(outcome.assignment["consumer1"]) == set(tps(claims))
        assert set(outcome.assignment["consumer2"]) == set(tps("topicp1 topic2p0 topic2p2"))
        assert outcome.transferring == {}


def test_partitions_go_to_the_highest_generation():
    """AbstractStickyAssignorTest.testEnsurePartitionsAssignedToHighestGeneration (as sets)."""
    topics = "topic topic2 topic3"
    group = {
        "consumer1": owning(topics, "topicp0 topic2p0 topic3p0", 10),
        "consumer2": owning(topics, "topicp1 topic2p1 topic3p1", 9),
        "consumer3": owning(topics, "topic2p1 topic3p0 topic3p2", 8),
    }
    outcome = sticky({"topic": 3, "topic2": 3, "topic3": 3}, group)
    assert {m: set(p) for m, p in outcome.assignment.items()} == {
        "consumer1": set(tps("topicp0 topic2p0 topic3p0")),
        "consumer2": set(tps("topicp1 topic2p1 topic3p1")),
        "consumer3": set(tps("topicp2 topic2p2 topic3p2")),
    }
    assert outcome.transferring == {}


# --- Unknown topics, registry --------------------------------------------------------------

@pytest.mark.parametrize("assignor", ALL_ASSIGNORS)
def test_unknown_topics_are_ignored(assignor):
    """A subscribed topic without metadata gets no partitions; a member with nothing gets []."""
    group = subs(C0="t0 ghost", C1="ghost")
    result = assignor().assign({"t0": 2, "unsubscribed": 4}, group)
    assert result == {"C0": tps("t0p0 t0p1"), "C1": []}


def test_registry_names_and_protocols():
    """Kafka's short names, Java class names and supported rebalance protocols."""
    assert list(ASSIGNORS) == ["range", "roundrobin", "sticky", "cooperative-sticky"]
    range_assignor = assignor_for("org.apache.kafka.clients.consumer.RangeAssignor")
    assert isinstance(range_assignor, RangeAssignor)
    assert isinstance(assignor_for("roundrobin"), RoundRobinAssignor)
    assert isinstance(assignor_for(StickyAssignor), StickyAssignor)
    coop = assignor_for("org.apache.kafka.clients.consumer.CooperativeStickyAssignor")
    assert isinstance(coop, CooperativeStickyAssignor)
    assert coop.supported_protocols == (COOPERATIVE, EAGER)
    assert StickyAssignor.supported_protocols == (EAGER,)


@pytest.mark.parametrize("bad", ["Range", "uniform", "", "org.apache.kafka.clients.consumer.Foo"])
def test_unknown_assignor_name_is_a_config_error(bad):
    """The message names partition.assignment.strategy and lists the allowed values."""
    with pytest.raises(ConfigError) as error:
        assignor_for(bad)
    message = str(error.value)
    assert "partition.assignment.strategy" in message
    for name in ("range", "roundrobin", "sticky", "cooperative-sticky"):
        assert name in message


# --- Properties ------------------------------------------------------------------------------

def assert_each_partition_once_to_a_subscriber(counts, group, result, missing=frozenset()):
    seen = [p for parts in result.values() for p in parts]
    assert len(seen) == len(set(seen))
    for member, parts in result.items():
        assert all(p.topic in group[member].topics for p in parts)
    expected = {
        tp(t, p) for t, n in counts.items() for p in range(n)
        if any(t in s.topics for s in group.values())
    }
    assert set(seen) == expected - set(missing)
    assert set(result) == set(group)


@pytest.mark.parametrize("assignor", ALL_ASSIGNORS)
@given(group=st.one_of(equal_subscription_groups(), mixed_subscription_groups()))
def test_fresh_group_every_partition_assigned_once_to_a_subscriber(assignor, group):
    """Each partition of each subscribed topic goes to exactly one member subscribed to it."""
    counts, subscriptions = group
    result = assignor().assign(counts, subscriptions)
    assert_each_partition_once_to_a_subscriber(counts, subscriptions, result)


@pytest.mark.parametrize("assignor", ALL_ASSIGNORS[1:])  # all but range
@given(group=equal_subscription_groups())
def test_equal_subscriptions_are_balanced(assignor, group):
    """With equal subscriptions the members' partition counts differ by at most one."""
    sizes = [len(p) for p in assignor().assign(*group).values()]
    assert max(sizes) - min(sizes) <= 1


@given(group=equal_subscription_groups())
def test_range_is_balanced_per_topic_only(group):
    """Range balances each topic on its own (counts per topic differ by at most one); the
    extras of every topic go to the same first members, so totals may differ by more."""
    counts, subscriptions = group
    result = RangeAssignor().assign(counts, subscriptions)
    for topic in counts:
        sizes = [sum(p.topic == topic for p in parts) for parts in result.values()]
        assert max(sizes) - min(sizes) <= 1


def test_range_totals_can_differ_by_more_than_one():
    """Two 1-partition topics, two members: range gives both partitions to the first member."""
    result = RangeAssignor().assign({"t0": 1, "t1": 1}, subs(C0="t0 t1", C1="t0 t1"))
    assert result == {"C0": tps("t0p0 t1p0"), "C1": []}


@given(group=groups_with_owned_partitions())
def test_sticky_with_previous_owners_is_complete(group):
    """Whatever members owned before, sticky assigns every partition once to a subscriber."""
    counts, subscriptions = group
    outcome = sticky(counts, subscriptions)
    assert_each_partition_once_to_a_subscriber(counts, subscriptions, outcome.assignment)
    if len({frozenset(s.topics) for s in subscriptions.values()}) == 1:
        sizes = [len(p) for p in outcome.assignment.values()]
        assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS)
@given(group=equal_subscription_groups(), data=st.data())
def test_survivors_keep_all_their_partitions_when_a_member_leaves(assignor, group, data):
    """Equal subscriptions: after one member leaves, every survivor keeps ALL it had, only the
    leaver's partitions move, and (cooperative too) nothing is withheld."""
    counts, subscriptions = group
    before = assignor().assign(counts, subscriptions)
    leaver = data.draw(st.sampled_from(sorted(subscriptions)))
    survivors = {
        m: Subscription(s.topics, tuple(before[m]), generation=1)
        for m, s in subscriptions.items() if m != leaver
    }
    if not survivors:
        return
    after = assignor().assign(counts, survivors)
    for member in survivors:
        assert set(before[member]) <= set(after[member])
    assert_each_partition_once_to_a_subscriber(counts, survivors, after)


@given(group=groups_with_owned_partitions())
def test_cooperative_withholds_exactly_the_moving_partitions(group):
    """Cooperative: an owned partition that stays with its owner is never removed; one that moves
    to another member is given to nobody in this round."""
    counts, subscriptions = group
    eager = sticky(counts, subscriptions).assignment
    result = CooperativeStickyAssignor().assign(counts, subscriptions)
    given_to = {p: m for m, parts in result.items() for p in parts}
    moving = set()
    for owner, sub in subscriptions.items():
        for partition in sub.owned_partitions:
            if partition in eager[owner]:
                assert given_to.get(partition) == owner
            else:
                assert partition not in given_to
                moving.add(partition)
    assert_each_partition_once_to_a_subscriber(counts, subscriptions, result, missing=moving)


@given(group=groups_with_owned_partitions(equal=True))
def test_cooperative_second_round_completes_equal_subscriptions(group):
    """Equal subscriptions: the follow-up round withholds nothing and is balanced."""
    counts, subscriptions = group
    round1 = CooperativeStickyAssignor().assign(counts, subscriptions)
    rejoined = {m: Subscription(s.topics, tuple(round1[m]), 2) for m, s in subscriptions.items()}
    round2 = CooperativeStickyAssignor().assign(counts, rejoined)
    assert_each_partition_once_to_a_subscriber(counts, subscriptions, round2)
    sizes = [len(p) for p in round2.values()]
    assert max(sizes) - min(sizes) <= 1


# --- Cross-check with kafka-python -------------------------------------------------------------
# Only dynamic members with equal subscriptions: kafka-python groups static and dynamic members
# with itertools.groupby on an unsorted list, which can reorder a mixed group. Its sticky
# assignors port Kafka's older general algorithm (KIP-54), not the constrained one with Java's
# HashMap order, so their tie-breaks differ from Kafka's and are not compared.

def kafka_python_assign(module: str, class_name: str, counts, subscriptions):
    assignors = pytest.importorskip(f"kafka.coordinator.assignors.{module}")
    cluster = SimpleNamespace(partitions_for_topic=lambda topic: set(range(counts[topic])))
    members = [
        SimpleNamespace(
            member_id=m, group_instance_id=None, metadata=SimpleNamespace(topics=list(s.topics))
        )
        for m, s in subscriptions.items()
    ]
    result = getattr(assignors, class_name).assign(cluster, members)
    return {m: sorted(tp(t, p) for t, p in a.partitions()) for m, a in result.items()}


@pytest.mark.parametrize(
    ("assignor", "module", "class_name"),
    [
        (RangeAssignor, "range", "RangePartitionAssignor"),
        (RoundRobinAssignor, "roundrobin", "RoundRobinPartitionAssignor"),
    ],
)
@given(group=equal_subscription_groups())
def test_agrees_with_kafka_python(assignor, module, class_name, group):
    """Range and round-robin agree with kafka-python on groups of dynamic members."""
    counts, subscriptions = group
    ours = {m: sorted(p) for m, p in assignor().assign(counts, subscriptions).items()}
    assert ours == kafka_python_assign(module, class_name, counts, subscriptions)


def test_every_assignor_is_a_consumer_partition_assignor():
    """The registry holds the four classic-protocol assignors."""
    assert all(issubclass(cls, ConsumerPartitionAssignor) for cls in ASSIGNORS.values())
