"""Foreign-key table joins (KIP-213; ``KTableImpl.doJoinOnForeignKey``, ``foreignkeyjoin.*``)
and describe() goldens of join / repartition topologies.

Goldens in ``tests/golden/streams/`` are Kafka's own expected texts, copied from
KStreamImplTest.shouldSupportForeignKeyTableTableJoinWithKTableFromKStream and
KStreamKStreamJoinTest.expectedTopologyWith{Generated,UserNamed}RepartitionTopic(s) (Kafka 4.0
trunk). Record vectors come from the same KStreamImplTest and from
KTableKTableForeignKeyJoinIntegrationTest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import TopologyError
from sim.streams import (
    JoinWindows,
    Materialized,
    StreamJoined,
    StreamsBuilder,
    TableJoined,
    TopologyTestDriver,
)

GOLDEN = Path(__file__).parent / "golden" / "streams"


def golden(name: str) -> str:
    return (GOLDEN / f"{name}.txt").read_text()


def paren(left, right) -> str:
    """The tests' ``"(" + value1 + "," + value2 + ")"`` with Java's "null"."""
    return f"({'null' if left is None else left},{'null' if right is None else right})"


def second_field(value: str):
    return value.split("|")[1]


# -- describe() ------------------------------------------------------------------------------

def test_fk_join_describe_matches_kafka() -> None:
    """KStreamImplTest.shouldSupportForeignKeyTableTableJoinWithKTableFromKStream: two
    sub-topologies joined by the subscription and response topics; the subscription store
    lives with the right table, the resolver reads the left table's store."""
    builder = StreamsBuilder()
    left = builder.stream("input1").to_table()
    right = builder.stream("input2").to_table()
    left.join(right, second_field, paren).to_stream().to("output")
    topology = builder.build()
    assert str(topology.describe()) == golden("fk-join-kstream-to-ktable")
    assert topology.internal_topics[-2:] == [
        "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic",
        "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic"]


def test_stream_joins_with_generated_repartition_describe_matches_kafka() -> None:
    """KStreamKStreamJoinTest.shouldReuseRepartitionTopicWithGeneratedName: one repartition
    topic after ``map`` serves both joins."""
    builder = StreamsBuilder()
    stream1, stream2, stream3 = (builder.stream(t) for t in ("topic", "topic2", "topic3"))
    new_stream = stream1.map(lambda k, v: (v, k))
    windows = JoinWindows.of_time_difference_with_no_grace(100)
    new_stream.join(stream2, lambda a, b: a + b, windows).to("out-one")
    new_stream.join(stream3, lambda a, b: a + b, windows).to("out-to")
    assert str(builder.build().describe()) == golden("stream-join-generated-repartition")


def test_stream_joins_with_named_repartition_describe_matches_kafka() -> None:
    """KStreamKStreamJoinTest.shouldCreateRepartitionTopicsWithUserProvidedName."""
    builder = StreamsBuilder()
    stream1, stream2, stream3 = (builder.stream(t) for t in ("topic", "topic2", "topic3"))
    new_stream = stream1.map(lambda k, v: (v, k))
    windows = JoinWindows.of_time_difference_with_no_grace(100)
    new_stream.join(stream2, lambda a, b: a + b, windows,
                    StreamJoined().with_name("first-join")).to("out-one")
    new_stream.join(stream3, lambda a, b: a + b, windows,
                    StreamJoined().with_name("second-join")).to("out-two")
    assert str(builder.build().describe()) == golden("stream-join-named-repartition")


def test_left_and_outer_stream_joins_after_a_repartition() -> None:
    """The generated-repartition topology with ``left_join`` / ``outer_join`` instead of
    ``join`` (derived: the same numbering, Kafka's outer names and the shared stores added to
    both join processors, as in TopologyTest.streamStream{Left,Outer}Join...; store lists in
    Java HashSet order). Lines are compared as a multiset: the node order of describe() depends
    on the names' hashes."""
    builder = StreamsBuilder()
    stream1, stream2, stream3 = (builder.stream(t) for t in ("topic", "topic2", "topic3"))
    new_stream = stream1.map(lambda k, v: (v, k))
    windows = JoinWindows.of_time_difference_with_no_grace(100)
    new_stream.left_join(stream2, lambda a, b: a, windows).to("out-one")
    new_stream.outer_join(stream3, lambda a, b: a, windows).to("out-to")
    expected = (golden("stream-join-generated-repartition")
                .replace("KSTREAM-JOINOTHER-0000000010", "KSTREAM-OUTEROTHER-0000000010")
                .replace("KSTREAM-JOINTHIS-0000000018", "KSTREAM-OUTERTHIS-0000000018")
                .replace("KSTREAM-JOINOTHER-0000000019", "KSTREAM-OUTEROTHER-0000000019"))
    expected = expected.replace(
        "Processor: KSTREAM-OUTEROTHER-0000000010 (stores: [KSTREAM-JOINTHIS-0000000009-store])",
        "Processor: KSTREAM-OUTEROTHER-0000000010 (stores: [KSTREAM-JOINTHIS-0000000009-store, "
        "KSTREAM-OUTERSHARED-0000000009-store])")
    expected = expected.replace(
        "Processor: KSTREAM-JOINTHIS-0000000009 (stores: [KSTREAM-OUTEROTHER-0000000010-store])",
        "Processor: KSTREAM-JOINTHIS-0000000009 (stores: [KSTREAM-OUTERSHARED-0000000009-store, "
        "KSTREAM-OUTEROTHER-0000000010-store])")
    expected = expected.replace(
        "Processor: KSTREAM-OUTEROTHER-0000000019 (stores: [KSTREAM-OUTERTHIS-0000000018-store])",
        "Processor: KSTREAM-OUTEROTHER-0000000019 (stores: [KSTREAM-OUTERSHARED-0000000018-store, "
        "KSTREAM-OUTERTHIS-0000000018-store])")
    expected = expected.replace(
        "Processor: KSTREAM-OUTERTHIS-0000000018 (stores: [KSTREAM-OUTEROTHER-0000000019-store])",
        "Processor: KSTREAM-OUTERTHIS-0000000018 (stores: [KSTREAM-OUTERSHARED-0000000018-store, "
        "KSTREAM-OUTEROTHER-0000000019-store])")
    actual = str(builder.build().describe())
    assert sorted(actual.splitlines()) == sorted(expected.splitlines())


def test_named_fk_join_uses_table_joined_suffixes() -> None:
    """``TableJoined.as_(name)``: ``<name>-subscription-registration-topic``, ``-result``, …;
    every name still draws its number (the result table's store is then number 19)."""
    builder = StreamsBuilder()
    left = builder.table("l")
    right = builder.table("r")
    result = left.join(right, second_field, paren, TableJoined.as_("fk"))
    topology = builder.build()
    assert {"fk-subscription-registration-processor", "fk-subscription-registration-sink",
            "fk-subscription-registration-source", "fk-subscription-receive",
            "fk-subscription-join-foreign", "fk-foreign-join-subscription",
            "fk-subscription-response-sink", "fk-subscription-response-source",
            "fk-subscription-response-resolver", "fk-result"} <= set(topology.nodes)
    assert topology.internal_topics[-2:] == ["fk-subscription-registration-topic",
                                             "fk-subscription-response-topic"]
    assert topology.nodes["fk-subscription-receive"].stores == ["fk-subscription-store"]
    assert result.reserved_store == "KTABLE-FK-JOIN-OUTPUT-STATE-STORE-0000000019"


# -- results ---------------------------------------------------------------------------------

def fk_driver(left_join: bool, materialized: bool = False):
    builder = StreamsBuilder()
    left = builder.table("left_table")
    right = builder.table("right_table")
    join = left.left_join if left_join else left.join
    join(right, second_field, paren,
         Materialized.as_("store") if materialized else None).to_stream().to("output")
    driver = TopologyTestDriver(builder.build())
    return (driver, driver.create_input_topic("left_table"),
            driver.create_input_topic("right_table"), driver.create_output_topic("output"))


def test_fk_join_adds_and_removes_left_rows() -> None:
    """KStreamImplTest.shouldSupportForeignKeyTableTableJoinWithKTableFromKStream's records:
    an unreferenced right row never shows; a second reference joins; a left delete deletes."""
    builder = StreamsBuilder()
    left = builder.stream("input1").to_table()
    right = builder.stream("input2").to_table()
    left.join(right, second_field, paren).to_stream().to("output")
    driver = TopologyTestDriver(builder.build())
    lt, rt = driver.create_input_topic("input1"), driver.create_input_topic("input2")
    out = driver.create_output_topic("output")
    rt.pipe_input("rhs1", "rhsValue1")
    rt.pipe_input("rhs2", "rhsValue2")
    rt.pipe_input("rhs3", "rhsValue3")
    assert out.read_key_values_to_map() == {}
    lt.pipe_input("lhs1", "lhsValue1|rhs1")
    lt.pipe_input("lhs2", "lhsValue2|rhs2")
    assert out.read_key_values_to_map() == {"lhs1": "(lhsValue1|rhs1,rhsValue1)",
                                            "lhs2": "(lhsValue2|rhs2,rhsValue2)"}
    lt.pipe_input("lhs3", "lhsValue3|rhs1")
    assert out.read_key_values_to_list() == [("lhs3", "(lhsValue3|rhs1,rhsValue1)")]
    lt.pipe_input("lhs1", None)
    assert out.read_key_values_to_list() == [("lhs1", None)]


@pytest.mark.parametrize("left_join", [False, True])
def test_right_row_changes_reach_every_subscriber(left_join: bool) -> None:
    """A right update re-joins every left row that references it; a right delete gives a
    tombstone (inner) or ``joiner(left, None)`` (left join)."""
    _driver, lt, rt, out = fk_driver(left_join)
    rt.pipe_input("r1", "R1", 1)
    lt.pipe_input("a", "A|r1", 2)
    lt.pipe_input("b", "B|r1", 3)
    assert out.read_key_values_to_list() == [("a", "(A|r1,R1)"), ("b", "(B|r1,R1)")]
    rt.pipe_input("r1", "R1'", 4)
    records = out.read_records_to_list()
    assert [(r.key, r.value, r.timestamp) for r in records] == [("a", "(A|r1,R1')", 4),
                                                                ("b", "(B|r1,R1')", 4)]
    rt.pipe_input("r1", None, 5)
    expected = ["(A|r1,null)", "(B|r1,null)"] if left_join else [None, None]
    assert out.read_values_to_list() == expected


def test_inner_fk_join_waits_for_the_right_row_and_left_join_does_not() -> None:
    """KTableKTableForeignKeyJoinIntegrationTest.joinShouldProduceNullsWhenValueHasNonMatching
    ForeignKey: with no right row an inner join emits nothing (PROPAGATE_ONLY_IF_FK_VAL_
    AVAILABLE), a left join emits ``(value,null)`` at once."""
    _d, lt, _rt, out = fk_driver(False)
    lt.pipe_input("lhs1", "lhsValue1|rhs1", 1)
    assert out.read_key_values_to_list() == []
    _d, lt, _rt, out = fk_driver(True)
    lt.pipe_input("lhs1", "lhsValue1|rhs1", 1)
    assert out.read_key_values_to_list() == [("lhs1", "(lhsValue1|rhs1,null)")]


@pytest.mark.parametrize("left_join", [False, True])
def test_fk_change_unsubscribes_the_old_foreign_key(left_join: bool) -> None:
    """KTableKTableForeignKeyJoinIntegrationTest.shouldUnsubscribeOldForeignKeyIfLeftSideIs
    Updated: after lhs1 moves from rhs1 to rhs2, an update of rhs1 no longer reaches it. A left
    join first resolves the old key's unsubscription as ``(value,null)`` (DELETE_KEY_AND_
    PROPAGATE, derived from SubscriptionSendProcessorSupplier.leftJoinInstructions)."""
    driver, lt, rt, out = fk_driver(left_join, materialized=True)
    rt.pipe_input("rhs1", "rhsValue1", 10)
    rt.pipe_input("rhs2", "rhsValue2", 11)
    assert out.read_key_values_to_map() == {}
    lt.pipe_input("lhs1", "lhsValue1|rhs1", 12)
    assert out.read_key_values_to_map() == {"lhs1": "(lhsValue1|rhs1,rhsValue1)"}
    lt.pipe_input("lhs1", "lhsValue1|rhs2", 13)
    expected = [("lhs1", "(lhsValue1|rhs2,rhsValue2)")]
    if left_join:
        expected.insert(0, ("lhs1", "(lhsValue1|rhs2,null)"))
    assert out.read_key_values_to_list() == expected
    rt.pipe_input("rhs1", "rhsValue1Delta", 14)
    assert out.read_key_values_to_list() == []
    assert driver.get_key_value_store("store").all() == [("lhs1", "(lhsValue1|rhs2,rhsValue2)")]


def test_left_fk_join_with_null_foreign_key() -> None:
    """...IntegrationTest.shouldEmitRecordOnNullForeignKeyForLeftJoins: a null foreign key
    still gives a left-join result; an inner join drops the record (counted)."""
    for left_join, expected in ((True, [("lhs1", "(lhsValue1|rhs1,null)")]), (False, [])):
        builder = StreamsBuilder()
        left, right = builder.table("l"), builder.table("r")
        join = left.left_join if left_join else left.join
        join(right, lambda v: None, paren).to_stream().to("output")
        driver = TopologyTestDriver(builder.build())
        driver.create_input_topic("l").pipe_input("lhs1", "lhsValue1|rhs1", 1)
        assert driver.create_output_topic("output").read_key_values_to_list() == expected
        assert driver.metrics()["dropped-records-total"] == (0 if left_join else 1)


def test_deleting_a_non_joining_left_row_emits_a_tombstone_but_a_missing_one_does_not() -> None:
    """...IntegrationTest.shouldEmitTombstoneWhenDeletingNonJoiningRecords and
    shouldNotEmitTombstonesWhenDeletingNonExistingRecords (inner join)."""
    _d, lt, _rt, out = fk_driver(False)
    lt.pipe_input("lhs1", "lhsValue1|rhs1", 1)
    assert out.read_key_values_to_list() == []
    lt.pipe_input("lhs1", None, 2)
    assert out.read_key_values_to_list() == [("lhs1", None)]
    lt.pipe_input("lhs2", None, 3)
    assert out.read_key_values_to_list() == []


def test_stale_responses_are_dropped_by_hash() -> None:
    """ResponseJoinProcessorSupplier: an answer whose hash no longer matches the left value is
    stale and dropped (counted). Here an answer is delayed in the response topic while the left
    row changes; only the answer to the current value produces a result."""
    driver, lt, rt, out = fk_driver(False)
    rt.pipe_input("r1", "R1", 1)
    rt.pipe_input("r2", "R2", 1)
    held: list = []
    response_sink = driver.task.processor("KTABLE-SINK-0000000015")
    deliver = response_sink.collector

    def hold_first_answer(topic, record):
        if held:
            deliver(topic, record)
        else:
            held.append((topic, record))

    response_sink.collector = hold_first_answer
    lt.pipe_input("a", "A|r1", 2)  # its answer is held back
    lt.pipe_input("a", "A|r2", 3)  # answered at once
    assert out.read_key_values_to_list() == [("a", "(A|r2,R2)")]
    dropped = driver.metrics()["dropped-records-total"]
    deliver(*held[0])  # the late answer for A|r1 arrives now
    driver._complete_all_processable_work()
    assert out.read_key_values_to_list() == []
    assert driver.metrics()["dropped-records-total"] == dropped + 1


def test_fk_join_rejects_bad_arguments() -> None:
    builder = StreamsBuilder()
    left = builder.table("l")
    with pytest.raises(TopologyError, match="KTable of the same StreamsBuilder"):
        left.join(StreamsBuilder().table("r"), second_field, paren)
    with pytest.raises(TopologyError, match="takes TableJoined"):
        left.join(builder.table("r"), second_field, paren, "store")


def test_value_hash_is_of_serialized_bytes() -> None:
    """ResponseJoinProcessorSupplier compares hashes of the serialized left value: equal bytes,
    equal hash; a string and an integer that print alike differ; a deleted row has none."""
    from sim.streams.fk_join import value_hash

    assert value_hash("A|r1") == value_hash("A|r1")
    assert value_hash("1") != value_hash(1)
    assert value_hash(None) is None
    assert value_hash(2**40) == value_hash(2**40)
