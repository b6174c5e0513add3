"""Stream–table joins (``KStreamImpl.join`` / ``leftJoin``, ``KStreamKTableJoinProcessor``).

The describe() golden is KStreamKTableJoinTest.expectedTopologyWithGeneratedRepartitionTopicNames
(Kafka 4.0 trunk): a re-keyed stream joined with two tables repartitions once, reuses that
repartition for the second join (its three names still use up numbers 13–15) and materializes
each table's source store under the name table() reserved.
"""

from __future__ import annotations

from sim.streams import Joined, StreamsBuilder, TopologyTestDriver

REUSED_REPARTITION = (
    "Topologies:\n"
    "   Sub-topology: 0\n"
    "    Source: KSTREAM-SOURCE-0000000000 (topics: [topic])\n"
    "      --> KSTREAM-MAP-0000000007\n"
    "    Processor: KSTREAM-MAP-0000000007 (stores: [])\n"
    "      --> KSTREAM-FILTER-0000000009\n"
    "      <-- KSTREAM-SOURCE-0000000000\n"
    "    Processor: KSTREAM-FILTER-0000000009 (stores: [])\n"
    "      --> KSTREAM-SINK-0000000008\n"
    "      <-- KSTREAM-MAP-0000000007\n"
    "    Sink: KSTREAM-SINK-0000000008 (topic: KSTREAM-MAP-0000000007-repartition)\n"
    "      <-- KSTREAM-FILTER-0000000009\n"
    "\n"
    "  Sub-topology: 1\n"
    "    Source: KSTREAM-SOURCE-0000000010 (topics: [KSTREAM-MAP-0000000007-repartition])\n"
    "      --> KSTREAM-JOIN-0000000011, KSTREAM-JOIN-0000000016\n"
    "    Processor: KSTREAM-JOIN-0000000011 (stores: [topic2-STATE-STORE-0000000001])\n"
    "      --> KSTREAM-SINK-0000000012\n"
    "      <-- KSTREAM-SOURCE-0000000010\n"
    "    Processor: KSTREAM-JOIN-0000000016 (stores: [topic3-STATE-STORE-0000000004])\n"
    "      --> KSTREAM-SINK-0000000017\n"
    "      <-- KSTREAM-SOURCE-0000000010\n"
    "    Source: KSTREAM-SOURCE-0000000002 (topics: [topic2])\n"
    "      --> KTABLE-SOURCE-0000000003\n"
    "    Source: KSTREAM-SOURCE-0000000005 (topics: [topic3])\n"
    "      --> KTABLE-SOURCE-0000000006\n"
    "    Sink: KSTREAM-SINK-0000000012 (topic: out-one)\n"
    "      <-- KSTREAM-JOIN-0000000011\n"
    "    Sink: KSTREAM-SINK-0000000017 (topic: out-two)\n"
    "      <-- KSTREAM-JOIN-0000000016\n"
    "    Processor: KTABLE-SOURCE-0000000003 (stores: [topic2-STATE-STORE-0000000001])\n"
    "      --> none\n"
    "      <-- KSTREAM-SOURCE-0000000002\n"
    "    Processor: KTABLE-SOURCE-0000000006 (stores: [topic3-STATE-STORE-0000000004])\n"
    "      --> none\n"
    "      <-- KSTREAM-SOURCE-0000000005\n\n"
)


def two_joins(first: Joined | None = None, second: Joined | None = None) -> StreamsBuilder:
    """KStreamKTableJoinTest.shouldReuseRepartitionTopicWithGeneratedName's topology."""
    builder = StreamsBuilder()
    stream_a = builder.stream("topic")
    table_b = builder.table("topic2")
    table_c = builder.table("topic3")
    rekeyed = stream_a.map(lambda k, v: (v, k))
    rekeyed.join(table_b, lambda v1, v2: v1 + v2, first).to("out-one")
    rekeyed.join(table_c, lambda v1, v2: v1 + v2, second).to("out-two")
    return builder


def test_generated_repartition_is_reused_by_the_second_join() -> None:
    topology = two_joins().build()
    assert str(topology.describe()) == REUSED_REPARTITION
    assert topology.internal_topics == ["KSTREAM-MAP-0000000007-repartition"]


def test_joined_names_make_one_repartition_per_join() -> None:
    """KStreamKTableJoinTest.expectedTopologyWithUserProvidedRepartitionTopicNames (start): a
    Joined name gives each join its own ``<name>-repartition`` and names the join node."""
    topology = two_joins(Joined.as_("first-join"), Joined.as_("second-join")).build()
    text = str(topology.describe())
    assert topology.internal_topics == ["first-join-repartition", "second-join-repartition"]
    assert text.startswith(
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: KSTREAM-SOURCE-0000000000 (topics: [topic])\n"
        "      --> KSTREAM-MAP-0000000007\n"
        "    Processor: KSTREAM-MAP-0000000007 (stores: [])\n"
        "      --> first-join-repartition-filter, second-join-repartition-filter\n"
        "      <-- KSTREAM-SOURCE-0000000000\n"
        "    Processor: first-join-repartition-filter (stores: [])\n"
        "      --> first-join-repartition-sink\n"
        "      <-- KSTREAM-MAP-0000000007\n"
        "    Processor: second-join-repartition-filter (stores: [])\n"
        "      --> second-join-repartition-sink\n"
        "      <-- KSTREAM-MAP-0000000007\n"
        "    Sink: first-join-repartition-sink (topic: first-join-repartition)\n"
        "      <-- first-join-repartition-filter\n"
        "    Sink: second-join-repartition-sink (topic: second-join-repartition)\n"
        "      <-- second-join-repartition-filter\n"
        "\n"
        "  Sub-topology: 1\n"
        "    Source: first-join-repartition-source (topics: [first-join-repartition])\n")
    assert "Processor: first-join (stores: [topic2-STATE-STORE-0000000001])" in text


def test_join_enriches_with_the_tables_current_value() -> None:
    """Each stream record sees the table as it is when the record is processed; an inner join
    drops records whose key the table lacks; deletes remove the key."""
    builder = StreamsBuilder()
    users = builder.table("users")
    clicks = builder.stream("clicks")
    clicks.join(users, lambda click, region: f"{click}@{region}").to("inner")
    clicks.left_join(users, lambda click, region: f"{click}@{region}").to("left")
    driver = TopologyTestDriver(builder.build())
    users_in, clicks_in = driver.create_input_topic("users"), driver.create_input_topic("clicks")
    clicks_in.pipe_input("alice", "c1")
    users_in.pipe_input("alice", "eu")
    clicks_in.pipe_input("alice", "c2")
    users_in.pipe_input("alice", "us")
    clicks_in.pipe_input("alice", "c3")
    users_in.pipe_input("alice", None)
    clicks_in.pipe_input("alice", "c4")
    clicks_in.pipe_input("alice", None)
    assert driver.create_output_topic("inner").read_values_to_list() == ["c2@eu", "c3@us"]
    assert driver.create_output_topic("left").read_values_to_list() == [
        "c1@None", "c2@eu", "c3@us", "c4@None"]
    assert driver.metrics()["dropped-records-total"] == 2  # the None value, in both joins


def test_join_through_a_filtered_table_reads_its_parents_store() -> None:
    """A non-materialized filtered table is looked up through its parent's store, as Kafka's
    value getters do; describe() connects the join to that store."""
    builder = StreamsBuilder()
    adults = builder.table("ages").filter(lambda name, age: age >= 18)
    builder.stream("visits").join(adults, lambda visit, age: (visit, age)).to("out")
    topology = builder.build()
    assert "Processor: KSTREAM-JOIN-0000000005 (stores: [ages-STATE-STORE-0000000000])" in str(
        topology.describe())
    driver = TopologyTestDriver(topology)
    ages, visits = driver.create_input_topic("ages"), driver.create_input_topic("visits")
    ages.pipe_input("ann", 30)
    ages.pipe_input("bob", 12)
    visits.pipe_input("ann", "v1")
    visits.pipe_input("bob", "v2")
    assert driver.create_output_topic("out").read_values_to_list() == [("v1", 30)]


def test_global_table_join_looks_up_a_derived_key() -> None:
    """A GlobalKTable join needs no co-partitioning: the lookup key comes from the record
    (``key_selector``); Kafka names even the inner join ``KSTREAM-LEFTJOIN-``."""
    builder = StreamsBuilder()
    rates = builder.global_table("rates")
    payments = builder.stream("payments")
    payments.join(rates, lambda key, value: value["currency"],
                  lambda value, rate: round(value["amount"] * rate, 2)).to("in-eur")
    topology = builder.build()
    assert "Processor: KSTREAM-LEFTJOIN-0000000004 (stores: [])" in str(topology.describe())
    driver = TopologyTestDriver(topology)
    driver.create_input_topic("rates").pipe_input("usd", 0.9)
    pay = driver.create_input_topic("payments")
    pay.pipe_input("p1", {"currency": "usd", "amount": 10})
    pay.pipe_input("p2", {"currency": "gbp", "amount": 10})
    assert driver.create_output_topic("in-eur").read_key_values_to_list() == [("p1", 9.0)]
