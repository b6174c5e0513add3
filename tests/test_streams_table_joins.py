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
