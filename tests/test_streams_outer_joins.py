"""Left and outer joins: KStream–KStream (``KStreamImplJoin``, ``KStreamKStreamJoin`` with the
shared outer-join store of KAFKA-10847) and KTable–KTable (``KTableKTableLeftJoin``,
``KTableKTableRightJoin``, ``KTableKTableOuterJoin``).

describe() goldens are TopologyTest.streamStream{Left,Outer}JoinTopologyWith{Default,Custom}
StoresNames; the record vectors come from KStreamKStreamLeftJoinTest, KStreamKStreamOuterJoinTest,
KTableKTableLeftJoinTest.testJoin and KTableKTableOuterJoinTest.testJoin (Kafka 4.0 trunk).
"""

from __future__ import annotations

import pytest

from sim.streams import (
    JoinWindows,
    Materialized,
    StreamJoined,
    StreamsBuilder,
    TopologyTestDriver,
)


def to_string(left, right) -> str:
    """MockValueJoiner.TOSTRING_JOINER: ``value1 + "+" + value2`` with Java's "null"."""
    return f"{'null' if left is None else left}+{'null' if right is None else right}"


# -- KStream–KStream: describe() -------------------------------------------------------------

def stream_join_text(this_join: str, other_join: str, this_store: str, other_store: str,
                     shared: str, other_first: bool) -> str:
    this_node = (
        f"    Processor: {this_join} (stores: [{other_store}, {shared}])\n"
        "      --> KSTREAM-MERGE-0000000006\n"
        "      <-- KSTREAM-WINDOWED-0000000002\n")
    other_node = (
        f"    Processor: {other_join} (stores: [{this_store}, {shared}])\n"
        "      --> KSTREAM-MERGE-0000000006\n"
        "      <-- KSTREAM-WINDOWED-0000000003\n")
    return (
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic1])\n"
        "      --> KSTREAM-WINDOWED-0000000002\n"
        "    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic2])\n"
        "      --> KSTREAM-WINDOWED-0000000003\n"
        f"    Processor: KSTREAM-WINDOWED-0000000002 (stores: [{this_store}])\n"
        f"      --> {this_join}\n"
        "      <-- KSTREAM-SOURCE-0000000000\n"
        f"    Processor: KSTREAM-WINDOWED-0000000003 (stores: [{other_store}])\n"
        f"      --> {other_join}\n"
        "      <-- KSTREAM-SOURCE-0000000001\n"
        + (other_node + this_node if other_first else this_node + other_node) +
        "    Processor: KSTREAM-MERGE-0000000006 (stores: [])\n"
        "      --> none\n"
        f"      <-- {this_join}, {other_join}\n\n"
    )


@pytest.mark.parametrize(("outer", "joined", "expected"), [
    (False, None, stream_join_text(
        "KSTREAM-JOINTHIS-0000000004", "KSTREAM-OUTEROTHER-0000000005",
        "KSTREAM-JOINTHIS-0000000004-store", "KSTREAM-OUTEROTHER-0000000005-store",
        "KSTREAM-OUTERSHARED-0000000004-store", other_first=False)),
    (False, StreamJoined.as_("custom-name"), stream_join_text(
        "KSTREAM-JOINTHIS-0000000004", "KSTREAM-OUTEROTHER-0000000005",
        "custom-name-this-join-store", "custom-name-outer-other-join-store",
        "custom-name-left-shared-join-store", other_first=False)),
    (True, None, stream_join_text(
        "KSTREAM-OUTERTHIS-0000000004", "KSTREAM-OUTEROTHER-0000000005",
        "KSTREAM-OUTERTHIS-0000000004-store", "KSTREAM-OUTEROTHER-0000000005-store",
        "KSTREAM-OUTERSHARED-0000000004-store", other_first=True)),
    (True, StreamJoined.as_("custom-name"), stream_join_text(
        "KSTREAM-OUTERTHIS-0000000004", "KSTREAM-OUTEROTHER-0000000005",
        "custom-name-outer-this-join-store", "custom-name-outer-other-join-store",
        "custom-name-outer-shared-join-store", other_first=True)),
])
def test_stream_stream_left_and_outer_join_describe(outer: bool, joined, expected: str
                                                    ) -> None:
    """TopologyTest.streamStream{Left,Outer}JoinTopologyWith{Default,Custom}StoresNames."""
    builder = StreamsBuilder()
    stream1, stream2 = builder.stream("input-topic1"), builder.stream("input-topic2")
    join = stream1.outer_join if outer else stream1.left_join
    join(stream2, to_string, JoinWindows.of_time_difference_with_no_grace(100), joined)
    assert str(builder.build().describe()) == expected


def test_named_outer_join_names_its_processors() -> None:
    """``StreamJoined.with_name``: ``<name>-outer-this-join`` / ``-outer-other-join``."""
    builder = StreamsBuilder()
    builder.stream("a").outer_join(builder.stream("b"), to_string,
                                   JoinWindows.of_time_difference_with_no_grace(1),
                                   StreamJoined().with_name("j"))
    topology = builder.build()
    assert set(topology.nodes) >= {"j-this-windowed", "j-other-windowed", "j-outer-this-join",
                                   "j-outer-other-join", "j-merge"}
    assert topology.nodes["j-outer-this-join"].stores == [
        "KSTREAM-OUTEROTHER-0000000005-store", "KSTREAM-OUTERSHARED-0000000004-store"]


# -- KStream–KStream: results -------------------------------------------------------------

def stream_driver(outer: bool, windows: JoinWindows):
    builder = StreamsBuilder()
    stream1, stream2 = builder.stream("topic1"), builder.stream("topic2")
    join = stream1.outer_join if outer else stream1.left_join
    join(stream2, to_string, windows).to("out")
    driver = TopologyTestDriver(builder.build())
    return (driver, driver.create_input_topic("topic1"), driver.create_input_topic("topic2"),
            driver.create_output_topic("out"))


def triples(out) -> list[tuple]:
    return [(r.key, r.value, r.timestamp) for r in out.read_records_to_list()]


def test_left_join_emits_unmatched_only_after_the_window_closes() -> None:
    """KStreamKStreamLeftJoinTest.testLeftExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor:
    nothing early; a match suppresses A1's null result; a record on the left side that moves
    stream time past 1 + 100 emits A0 and A0-0 (their own timestamps, oldest first)."""
    _driver, left, right, out = stream_driver(False, JoinWindows.of_time_difference_and_grace(
        100, 0))
    left.pipe_input(0, "A0", 1)
    left.pipe_input(1, "A1", 2)
    left.pipe_input(0, "A0-0", 3)
    assert triples(out) == []
    right.pipe_input(1, "a1", 3)
    assert triples(out) == [(1, "A1+a1", 3)]
    left.pipe_input(2, "dummy", 401)
    assert triples(out) == [(0, "A0+null", 1), (0, "A0-0+null", 3)]
    right.pipe_input(2, "dummy", 401)
    assert triples(out) == [(2, "dummy+dummy", 401)]


def test_left_join_unmatched_emitted_by_the_right_processor() -> None:
    """...LeftJoinTest.testLeftExpiredNonJoinedRecordsAreEmittedByTheRightProcessor: the shared
    stream time lets a right record close the left side's windows."""
    _driver, left, right, out = stream_driver(False, JoinWindows.of_time_difference_and_grace(
        100, 0))
    left.pipe_input(0, "A0", 1)
    left.pipe_input(1, "A1", 2)
    left.pipe_input(0, "A0-0", 3)
    right.pipe_input(1, "a1", 3)
    assert triples(out) == [(1, "A1+a1", 3)]
    right.pipe_input(2, "dummy", 401)
    assert triples(out) == [(0, "A0+null", 1), (0, "A0-0+null", 3)]


def test_left_join_never_emits_unmatched_right_records() -> None:
    """In a left join only the left side's unmatched records come out."""
    _driver, left, right, out = stream_driver(False, JoinWindows.of_time_difference_with_no_grace(
        100))
    right.pipe_input(0, "a0", 1)
    right.pipe_input(1, "a1", 2)
    left.pipe_input(2, "dummy", 500)
    assert triples(out) == []
    right.pipe_input(3, "b", 900)  # closes dummy's window; a0, a1 never come out
    assert triples(out) == [(2, "dummy+null", 500)]


def test_left_join_duplicates_and_grace() -> None:
    """...LeftJoinTest.testLeftJoinDuplicates (first part): two left records of the same key
    and time wait together and come out together once stream time passes 0 + 100 + 10."""
    _driver, left, right, out = stream_driver(False, JoinWindows.of_time_difference_and_grace(
        100, 10))
    left.pipe_input(0, "A0", 0)
    left.pipe_input(0, "A0-0", 0)
    right.pipe_input(1, "a0", 110)  # 0 + 100 + 10 is not yet < 110: still open
    assert triples(out) == []
    right.pipe_input(2, "dummy", 500)
    assert triples(out) == [(0, "A0+null", 0), (0, "A0-0+null", 0)]


def test_left_join_ordering() -> None:
    """...LeftJoinTest.testOrdering: the expired A0 comes out before the match A1+a1 that the
    same record makes."""
    _driver, left, right, out = stream_driver(False, JoinWindows.of_time_difference_with_no_grace(
        100))
    left.pipe_input(0, "A0", 0)
    left.pipe_input(1, "A1", 100)
    assert triples(out) == []
    right.pipe_input(1, "a1", 110)
    assert triples(out) == [(0, "A0+null", 0), (1, "A1+a1", 110)]


def test_late_unmatched_record_is_emitted_at_once() -> None:
    """A record whose window already ended (t + after < stream time) cannot be matched later
    (``timeTo < streamTime``): it is emitted right away (testLowerWindowBound's G records)."""
    _driver, left, right, out = stream_driver(False, JoinWindows.of_time_difference_with_no_grace(
        100))
    right.pipe_input(9, "x", 1000)
    left.pipe_input(0, "G0", 899)
    assert triples(out) == [(0, "G0+null", 899)]


def test_outer_join_emits_both_sides_right_first_at_equal_times() -> None:
    """...OuterJoinTest.testOuterJoinDuplicates (first emission): unmatched records of both
    sides come out by timestamp, right before left at the same timestamp (the store's key is
    timestamp, side byte, key)."""
    _driver, left, right, out = stream_driver(True, JoinWindows.of_time_difference_and_grace(
        100, 10))
    left.pipe_input(0, "A0", 0)
    left.pipe_input(0, "A0-0", 0)
    right.pipe_input(1, 11, 0)
    right.pipe_input(1, 12, 0)
    right.pipe_input(1, 10, 111)
    right.pipe_input(3, 100, 211)
    assert triples(out) == [(1, "null+11", 0), (1, "null+12", 0), (0, "A0+null", 0),
                            (0, "A0-0+null", 0)]
    left.pipe_input(2, "A2", 200)
    left.pipe_input(2, "A2-0", 200)
    right.pipe_input(2, 13, 201)
    right.pipe_input(2, 14, 201)
    assert triples(out) == [(2, "A2+13", 201), (2, "A2-0+13", 201), (2, "A2+14", 201),
                            (2, "A2-0+14", 201)]
    right.pipe_input(3, 100, 1500)  # the joined A2s are gone from the store: only the others
    assert triples(out) == [(1, "null+10", 111), (3, "null+100", 211)]


def test_outer_join_asymmetric_windows() -> None:
    """...OuterJoinTest.testEmitAllNonJoinedResultsForAsymmetricWindow (before 5, after 20):
    a right record waits ``before`` past its time, a left one ``after``."""
    _driver, left, right, out = stream_driver(
        True, JoinWindows.of_time_difference_with_no_grace(5).after(20))
    left.pipe_input(0, "A0", 29)
    left.pipe_input(1, "A1", 30)
    right.pipe_input(2, 12, 31)
    right.pipe_input(3, 13, 36)
    assert triples(out) == []
    right.pipe_input(4, 14, 37)
    assert triples(out) == [(2, "null+12", 31)]
    right.pipe_input(5, 15, 50)
    assert triples(out) == [(0, "A0+null", 29), (3, "null+13", 36), (4, "null+14", 37)]


def test_running_application_throttles_emission_by_wall_clock_time() -> None:
    """Outside the test driver, non-joined records are looked for at most once per second of
    wall-clock time (``__emit.interval.ms.kstreams.outer.join.spurious.results.fix__``,
    default 1000; the driver sets 0 as Kafka's does). Here the task runs with the default."""
    builder = StreamsBuilder()
    builder.stream("topic1").left_join(builder.stream("topic2"), to_string,
                                       JoinWindows.of_time_difference_with_no_grace(10)).to("out")
    driver = TopologyTestDriver(builder.build())
    driver.task.app_configs = {}  # a running application's task: the default interval
    left, out = driver.create_input_topic("topic1"), driver.create_output_topic("out")
    left.pipe_input("a", "A", 0)  # first search (empty store) starts the 1 s throttle
    left.pipe_input("x", "X", 100)  # A's window has closed, but the throttle holds it back
    assert triples(out) == []
    driver.advance_wall_clock_time(999)
    left.pipe_input("y", "Y", 200)
    assert triples(out) == []
    driver.advance_wall_clock_time(1)
    left.pipe_input("z", "Z", 300)
    assert triples(out) == [("a", "A+null", 0), ("x", "X+null", 100), ("y", "Y+null", 200)]


def test_outer_join_null_key_is_emitted_at_once_and_null_value_dropped() -> None:
    """KIP-962: a left/outer join forwards a null-key record with None at once; a null value
    is dropped and counted in dropped-records."""
    driver, left, right, out = stream_driver(True, JoinWindows.of_time_difference_with_no_grace(
        10))
    left.pipe_input(None, "L", 5)
    right.pipe_input(None, "R", 6)
    left.pipe_input("k", None, 7)
    assert triples(out) == [(None, "L+null", 5), (None, "null+R", 6)]
    assert driver.metrics()["dropped-records-total"] == 1


# -- KTable–KTable --------------------------------------------------------------------------

def table_driver(outer: bool):
    builder = StreamsBuilder()
    table1, table2 = builder.table("topic1"), builder.table("topic2")
    join = table1.outer_join if outer else table1.left_join
    join(table2, to_string).to_stream().to("output")
    driver = TopologyTestDriver(builder.build())
    return (driver, driver.create_input_topic("topic1"), driver.create_input_topic("topic2"),
            driver.create_output_topic("output"))


@pytest.mark.parametrize("outer", [False, True])
def test_table_left_and_outer_join(outer: bool) -> None:
    """KTableKTableLeftJoinTest.testJoin / KTableKTableOuterJoinTest.testJoin: the same input;
    the two differ only at the end, when left deletes leave right rows (outer: "null+YY2")."""
    driver, t1, t2, out = table_driver(outer)
    keys = [0, 1, 2, 3]
    for i in range(2):
        t1.pipe_input(keys[i], f"X{i}", 5 + i)
    t1.pipe_input(None, "SomeVal", 42)
    assert triples(out) == [(0, "X0+null", 5), (1, "X1+null", 6)]
    for i in range(2):
        t2.pipe_input(keys[i], f"Y{i}", 10 * i)
    t2.pipe_input(None, "AnotherVal", 73)
    assert triples(out) == [(0, "X0+Y0", 5), (1, "X1+Y1", 10)]
    for k in keys:
        t1.pipe_input(k, f"XX{k}", 7)
    assert triples(out) == [(0, "XX0+Y0", 7), (1, "XX1+Y1", 10), (2, "XX2+null", 7),
                            (3, "XX3+null", 7)]
    for k in keys:
        t2.pipe_input(k, f"YY{k}", k * 5)
    assert triples(out) == [(0, "XX0+YY0", 7), (1, "XX1+YY1", 7), (2, "XX2+YY2", 10),
                            (3, "XX3+YY3", 15)]
    for k in keys:
        t1.pipe_input(k, f"XXX{k}", 6)
    assert triples(out) == [(0, "XXX0+YY0", 6), (1, "XXX1+YY1", 6), (2, "XXX2+YY2", 10),
                            (3, "XXX3+YY3", 15)]
    t2.pipe_input(0, None, 5)
    t2.pipe_input(1, None, 7)
    assert triples(out) == [(0, "XXX0+null", 6), (1, "XXX1+null", 7)]
    for k in keys:
        t1.pipe_input(k, f"XXXX{k}", 13)
    assert triples(out) == [(0, "XXXX0+null", 13), (1, "XXXX1+null", 13), (2, "XXXX2+YY2", 13),
                            (3, "XXXX3+YY3", 15)]
    t1.pipe_input(0, None, 0)
    t1.pipe_input(1, None, 42)
    t1.pipe_input(2, None, 5)
    t1.pipe_input(3, None, 20)
    if outer:
        assert triples(out) == [(0, None, 0), (1, None, 42), (2, "null+YY2", 10),
                                (3, "null+YY3", 20)]
    else:
        assert triples(out) == [(0, None, 0), (1, None, 42), (2, None, 10), (3, None, 20)]
    assert driver.metrics()["dropped-records-total"] == 2  # the two null keys


@pytest.mark.parametrize("outer", [False, True])
def test_table_join_ignores_delete_of_a_missing_row(outer: bool) -> None:
    """A tombstone for a key neither table has produces nothing (old and new value both null);
    in an outer join a right row alone comes out as ``null+value``, in a left join it does
    not."""
    _driver, t1, t2, out = table_driver(outer)
    t1.pipe_input("k", None, 1)
    t2.pipe_input("k", None, 2)
    assert triples(out) == []
    t2.pipe_input("r", "R", 3)
    assert triples(out) == ([("r", "null+R", 3)] if outer else [])


def test_table_left_join_describe_names() -> None:
    """KTableImpl.doJoin: left and outer joins use the inner join's names (KTABLE-MERGE first,
    then JOINTHIS / JOINOTHER), and a Materialized without a name draws a number before."""
    builder = StreamsBuilder()
    t1, t2 = builder.table("a"), builder.table("b")
    t1.left_join(t2, to_string, Materialized()).to_stream()
    names = set(builder.build().nodes)
    assert {"KTABLE-MERGE-0000000007", "KTABLE-JOINTHIS-0000000008",
            "KTABLE-JOINOTHER-0000000009", "KTABLE-TOSTREAM-0000000010"} <= names
