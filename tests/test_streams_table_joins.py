"""Inner table–table joins (``KTableImpl.doJoin``, ``KTableKTableInnerJoin``).

Names and store connections follow StreamsBuilderTest.shouldAllowJoinUnmaterializedJoinedKTable
and ...MaterializedJoinedKTable (Kafka 4.0 trunk): the merge node takes its number before the
two join processors, and a stream joined with an unmaterialized join result reads both source
tables' stores.
"""

from __future__ import annotations

from sim.streams import Materialized, StreamsBuilder, TopologyTestDriver


def connected(topology, node: str) -> list[str]:
    return sorted(topology.nodes[node].stores)


def test_unmaterialized_join_result_is_read_through_both_sources() -> None:
    builder = StreamsBuilder()
    table1 = builder.table("table-topic1")
    table2 = builder.table("table-topic2")
    builder.stream("stream-topic").join(table1.join(table2, lambda a, b: a + b),
                                        lambda a, b: a + b)
    topology = builder.build()
    assert connected(topology, "KSTREAM-JOIN-0000000010") == [
        "table-topic1-STATE-STORE-0000000000", "table-topic2-STATE-STORE-0000000003"]
    assert connected(topology, "KTABLE-MERGE-0000000007") == []
    assert connected(topology, "KTABLE-JOINTHIS-0000000008") == [
        "table-topic2-STATE-STORE-0000000003"]
    assert connected(topology, "KTABLE-JOINOTHER-0000000009") == [
        "table-topic1-STATE-STORE-0000000000"]


def test_materialized_join_result_is_read_from_its_store() -> None:
    builder = StreamsBuilder()
    table1 = builder.table("table-topic1")
    table2 = builder.table("table-topic2")
    builder.stream("stream-topic").join(
        table1.join(table2, lambda a, b: a + b, Materialized.as_("store")), lambda a, b: a + b)
    topology = builder.build()
    assert connected(topology, "KSTREAM-JOIN-0000000010") == ["store"]
    assert connected(topology, "KTABLE-MERGE-0000000007") == ["store"]


def test_table_join_updates_from_either_side() -> None:
    """A row exists while both sides have the key; updates on either side re-join; a delete on
    one side deletes the joined row; the timestamp is the later of the two."""
    builder = StreamsBuilder()
    names = builder.table("names")
    emails = builder.table("emails")
    joined = names.join(emails, lambda name, email: f"{name} <{email}>",
                        Materialized.as_("contacts"))
    joined.to_stream().to("out")
    driver = TopologyTestDriver(builder.build())
    n, e = driver.create_input_topic("names"), driver.create_input_topic("emails")
    n.pipe_input(1, "Ann", 10)
    e.pipe_input(2, "bob@x", 11)
    e.pipe_input(1, "ann@x", 12)
    n.pipe_input(1, "Anna", 5)
    e.pipe_input(1, None, 20)
    records = driver.create_output_topic("out").read_records_to_list()
    assert [(r.key, r.value, r.timestamp) for r in records] == [
        (1, "Ann <ann@x>", 12), (1, "Anna <ann@x>", 12), (1, None, 20)]
    assert driver.get_key_value_store("contacts").all() == []


def test_stream_joins_an_unmaterialized_table_join() -> None:
    """Looking up a join result without a store joins the two sources' current values."""
    builder = StreamsBuilder()
    t1, t2 = builder.table("a"), builder.table("b")
    builder.stream("s").join(t1.join(t2, lambda x, y: x * y), lambda v, p: (v, p)).to("out")
    driver = TopologyTestDriver(builder.build())
    driver.create_input_topic("a").pipe_input("k", 3)
    driver.create_input_topic("b").pipe_input("k", 4)
    s = driver.create_input_topic("s")
    s.pipe_input("k", "v1")
    s.pipe_input("missing", "v2")
    assert driver.create_output_topic("out").read_values_to_list() == [("v1", 12)]


def test_to_table_then_table_join_matches_kafka() -> None:
    """KStreamImplTest.shouldSupportTableTableJoinWithKStreamToKTable: describe() and results."""
    builder = StreamsBuilder()
    table1 = builder.stream("left").to_table()
    table2 = builder.stream("right").to_table()
    table1.join(table2, lambda a, b: f"{a}+{b}").to_stream().to("output")
    topology = builder.build()
    assert str(topology.describe()) == (
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: KSTREAM-SOURCE-0000000000 (topics: [left])\n"
        "      --> KSTREAM-TOTABLE-0000000001\n"
        "    Source: KSTREAM-SOURCE-0000000003 (topics: [right])\n"
        "      --> KSTREAM-TOTABLE-0000000004\n"
        "    Processor: KSTREAM-TOTABLE-0000000001"
        " (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000002])\n"
        "      --> KTABLE-JOINTHIS-0000000007\n"
        "      <-- KSTREAM-SOURCE-0000000000\n"
        "    Processor: KSTREAM-TOTABLE-0000000004"
        " (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000005])\n"
        "      --> KTABLE-JOINOTHER-0000000008\n"
        "      <-- KSTREAM-SOURCE-0000000003\n"
        "    Processor: KTABLE-JOINOTHER-0000000008"
        " (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000002])\n"
        "      --> KTABLE-MERGE-0000000006\n"
        "      <-- KSTREAM-TOTABLE-0000000004\n"
        "    Processor: KTABLE-JOINTHIS-0000000007"
        " (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000005])\n"
        "      --> KTABLE-MERGE-0000000006\n"
        "      <-- KSTREAM-TOTABLE-0000000001\n"
        "    Processor: KTABLE-MERGE-0000000006 (stores: [])\n"
        "      --> KTABLE-TOSTREAM-0000000009\n"
        "      <-- KTABLE-JOINTHIS-0000000007, KTABLE-JOINOTHER-0000000008\n"
        "    Processor: KTABLE-TOSTREAM-0000000009 (stores: [])\n"
        "      --> KSTREAM-SINK-0000000010\n"
        "      <-- KTABLE-MERGE-0000000006\n"
        "    Sink: KSTREAM-SINK-0000000010 (topic: output)\n"
        "      <-- KTABLE-TOSTREAM-0000000009\n\n")
    driver = TopologyTestDriver(topology)
    left, right = driver.create_input_topic("left"), driver.create_input_topic("right")
    output = driver.create_output_topic("output")
    right.pipe_input("lhs1", "rhsValue1")
    right.pipe_input("rhs2", "rhsValue2")
    right.pipe_input("lhs3", "rhsValue3")
    assert output.read_key_values_to_map() == {}
    left.pipe_input("lhs1", "lhsValue1")
    left.pipe_input("lhs2", "lhsValue2")
    assert output.read_key_values_to_map() == {"lhs1": "lhsValue1+rhsValue1"}
    left.pipe_input("lhs3", "lhsValue3")
    assert output.read_key_values_to_map() == {"lhs3": "lhsValue3+rhsValue3"}
    left.pipe_input("lhs1", "lhsValue4")
    assert output.read_key_values_to_map() == {"lhs1": "lhsValue4+rhsValue1"}


def test_stream_joins_a_stream_turned_table() -> None:
    """KStreamImplTest.shouldSupportStreamTableJoinWithKStreamToKTable's describe()."""
    builder = StreamsBuilder()
    stream = builder.stream("streamTopic")
    table = builder.stream("tableTopic").to_table()
    stream.join(table, lambda a, b: f"{a}+{b}").to("output")
    assert str(builder.build().describe()) == (
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: KSTREAM-SOURCE-0000000000 (topics: [streamTopic])\n"
        "      --> KSTREAM-JOIN-0000000004\n"
        "    Processor: KSTREAM-JOIN-0000000004"
        " (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000003])\n"
        "      --> KSTREAM-SINK-0000000005\n"
        "      <-- KSTREAM-SOURCE-0000000000\n"
        "    Source: KSTREAM-SOURCE-0000000001 (topics: [tableTopic])\n"
        "      --> KSTREAM-TOTABLE-0000000002\n"
        "    Sink: KSTREAM-SINK-0000000005 (topic: output)\n"
        "      <-- KSTREAM-JOIN-0000000004\n"
        "    Processor: KSTREAM-TOTABLE-0000000002"
        " (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000003])\n"
        "      --> none\n"
        "      <-- KSTREAM-SOURCE-0000000001\n\n")
