"""Stream–stream inner joins (``KStreamImplJoin``, ``KStreamKStreamJoin``, ``JoinWindows``).

describe() goldens are TopologyTest.streamStreamJoinTopologyWithDefaultStoresNames and
...WithCustomStoresNames (Kafka 4.0 trunk; they use the deprecated ``JoinWindows.of``, which
names nodes alike).
"""

from __future__ import annotations

import pytest

from sim.errors import TopologyError
from sim.streams import JoinWindows, StreamJoined, StreamsBuilder, TopologyTestDriver


def join_text(this_store: str, other_store: str) -> str:
    return (
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic1])\n"
        "      --> KSTREAM-WINDOWED-0000000002\n"
        "    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic2])\n"
        "      --> KSTREAM-WINDOWED-0000000003\n"
        f"    Processor: KSTREAM-WINDOWED-0000000002 (stores: [{this_store}])\n"
        "      --> KSTREAM-JOINTHIS-0000000004\n"
        "      <-- KSTREAM-SOURCE-0000000000\n"
        f"    Processor: KSTREAM-WINDOWED-0000000003 (stores: [{other_store}])\n"
        "      --> KSTREAM-JOINOTHER-0000000005\n"
        "      <-- KSTREAM-SOURCE-0000000001\n"
        f"    Processor: KSTREAM-JOINOTHER-0000000005 (stores: [{this_store}])\n"
        "      --> KSTREAM-MERGE-0000000006\n"
        "      <-- KSTREAM-WINDOWED-0000000003\n"
        f"    Processor: KSTREAM-JOINTHIS-0000000004 (stores: [{other_store}])\n"
        "      --> KSTREAM-MERGE-0000000006\n"
        "      <-- KSTREAM-WINDOWED-0000000002\n"
        "    Processor: KSTREAM-MERGE-0000000006 (stores: [])\n"
        "      --> none\n"
        "      <-- KSTREAM-JOINTHIS-0000000004, KSTREAM-JOINOTHER-0000000005\n\n"
    )


@pytest.mark.parametrize(("joined", "this_store", "other_store"), [
    (None, "KSTREAM-JOINTHIS-0000000004-store", "KSTREAM-JOINOTHER-0000000005-store"),
    (StreamJoined.as_("custom-name"), "custom-name-this-join-store",
     "custom-name-other-join-store"),
])
def test_stream_stream_join_describe(joined, this_store: str, other_store: str) -> None:
    builder = StreamsBuilder()
    stream1 = builder.stream("input-topic1")
    stream2 = builder.stream("input-topic2")
    stream1.join(stream2, lambda a, b: f"{a}+{b}",
                 JoinWindows.of_time_difference_and_grace(100, 1000), joined)
    assert str(builder.build().describe()) == join_text(this_store, other_store)


def test_inner_join_pairs_records_within_the_window() -> None:
    """Records of the same key at most 10 ms apart join, whichever side comes first; the result
    has the later timestamp and the joiner always gets (left value, right value)."""
    builder = StreamsBuilder()
    orders = builder.stream("orders")
    payments = builder.stream("payments")
    orders.join(payments, lambda order, payment: (order, payment),
                JoinWindows.of_time_difference_with_no_grace(10)).to("paid")
    driver = TopologyTestDriver(builder.build())
    o, p = driver.create_input_topic("orders"), driver.create_input_topic("payments")
    o.pipe_input("k1", "o1", 100)
    p.pipe_input("k1", "p1", 105)   # joins o1 (5 ms later)
    p.pipe_input("k1", "p2", 111)   # 11 ms after o1: no join
    o.pipe_input("k1", "o2", 110)   # joins p1 (5 ms before) and p2 (1 ms after)
    p.pipe_input("k2", "p3", 110)   # other key: nothing
    records = driver.create_output_topic("paid").read_records_to_list()
    assert [(r.key, r.value, r.timestamp) for r in records] == [
        ("k1", ("o1", "p1"), 105), ("k1", ("o2", "p1"), 110), ("k1", ("o2", "p2"), 111)]


def test_asymmetric_windows() -> None:
    """before/after bound how much earlier or later the other side's record may be."""
    builder = StreamsBuilder()
    left, right = builder.stream("l"), builder.stream("r")
    left.join(right, lambda a, b: b,
              JoinWindows.of_time_difference_with_no_grace(0).after(5)).to("out")
    driver = TopologyTestDriver(builder.build())
    lt, rt = driver.create_input_topic("l"), driver.create_input_topic("r")
    lt.pipe_input("k", "L", 100)
    rt.pipe_input("k", "early", 99)
    rt.pipe_input("k", "ok", 104)
    rt.pipe_input("k", "late", 106)
    assert driver.create_output_topic("out").read_values_to_list() == ["ok"]


def test_stream_join_needs_join_windows() -> None:
    builder = StreamsBuilder()
    with pytest.raises(TopologyError, match="needs JoinWindows"):
        builder.stream("c").join(builder.stream("d"), lambda a, b: a, 5)
    with pytest.raises(TopologyError, match="needs JoinWindows"):
        builder.stream("e").left_join(builder.stream("f"), lambda a, b: a, 5)
    with pytest.raises(TopologyError, match="needs another KStream"):
        builder.stream("g").outer_join(builder.table("h"), lambda a, b: a,
                                       JoinWindows.of_time_difference_with_no_grace(1))
