"""``Topology.describe()`` prints exactly Kafka's ``TopologyDescription`` text.

Golden texts come from apache/kafka tests (4.0 trunk): ``TopologyTest``, ``SuppressTopologyTest``
and the issue's seed example; the format from ``InternalTopologyBuilder.TopologyDescription``,
names from ``InternalStreamsBuilder.newProcessorName`` / ``newStoreName`` (one counter per
builder) and ``KStreamImpl.createRepartitionedSource``.
"""

from __future__ import annotations

import re

import pytest

from sim.errors import TopologyError
from sim.streams import (
    Branched,
    Grouped,
    Materialized,
    Processor,
    Record,
    Stores,
    StreamsBuilder,
    TimeWindows,
    Topology,
)
from sim.streams.description import java_hash_set_order, java_string_hash


def words(line: str) -> list[str]:
    """Java's ``line.toLowerCase().split("\\\\W+")``: trailing empty strings dropped."""
    parts = re.split(r"\W+", line.lower())
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


class Forward(Processor):
    def process(self, record: Record) -> None:
        self.context.forward(record)


SEED = """\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [payment])
      --> KSTREAM-FILTER-0000000001
    Processor: KSTREAM-FILTER-0000000001 (stores: [])
      --> KSTREAM-SINK-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Sink: KSTREAM-SINK-0000000002 (topic: unknown-payment)
      <-- KSTREAM-FILTER-0000000001

"""


def test_seed_example_prints_the_issue_text() -> None:
    """The unknown-payment filter prints the text of issue 17, trailing blank line included."""
    builder = StreamsBuilder()
    builder.stream("payment").filter(lambda key, value: key == "unknown").to("unknown-payment")
    assert str(builder.build().describe()) == SEED
    assert repr(builder.build().describe()) == SEED


WORDCOUNT = """\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [streams-plaintext-input])
      --> KSTREAM-FLATMAPVALUES-0000000001
    Processor: KSTREAM-FLATMAPVALUES-0000000001 (stores: [])
      --> KSTREAM-KEY-SELECT-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-KEY-SELECT-0000000002 (stores: [])
      --> KSTREAM-FILTER-0000000006
      <-- KSTREAM-FLATMAPVALUES-0000000001
    Processor: KSTREAM-FILTER-0000000006 (stores: [])
      --> KSTREAM-SINK-0000000005
      <-- KSTREAM-KEY-SELECT-0000000002
    Sink: KSTREAM-SINK-0000000005 (topic: KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition)
      <-- KSTREAM-FILTER-0000000006

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000007 (topics: [KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition])
      --> KSTREAM-AGGREGATE-0000000004
    Processor: KSTREAM-AGGREGATE-0000000004 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000003])
      --> KTABLE-TOSTREAM-0000000008
      <-- KSTREAM-SOURCE-0000000007
    Processor: KTABLE-TOSTREAM-0000000008 (stores: [])
      --> KSTREAM-SINK-0000000009
      <-- KSTREAM-AGGREGATE-0000000004
    Sink: KSTREAM-SINK-0000000009 (topic: streams-wordcount-output)
      <-- KTABLE-TOSTREAM-0000000008

"""  # noqa: E501 - Kafka prints the long repartition source on one line


def wordcount_builder() -> StreamsBuilder:
    """``WordCountDemo``: flatMapValues → groupBy(word) → count() → toStream → to."""
    builder = StreamsBuilder()
    (builder.stream("streams-plaintext-input")
     .flat_map_values(words)
     .group_by(lambda key, word: word)
     .count()
     .to_stream()
     .to("streams-wordcount-output"))
    return builder


def test_wordcount_repartitions_through_the_store_named_topic() -> None:
    """WordCountDemo: count() takes store number 3, its processor 4, then the repartition sink
    5, filter 6 and source 7 (``createRepartitionedSource`` makes all three names in that order);
    the count starts sub-topology 1. Derived from ``KGroupedStreamImpl.doCount`` and
    ``GroupedStreamAggregateBuilder.build`` and checked against the naming in TopologyTest."""
    topology = wordcount_builder().build()
    assert str(topology.describe()) == WORDCOUNT
    assert topology.internal_topics == ["KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition"]


GROUPED_WINDOWED = """\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> KSTREAM-KEY-SELECT-0000000001
    Processor: KSTREAM-KEY-SELECT-0000000001 (stores: [])
      --> counts-repartition-filter
      <-- KSTREAM-SOURCE-0000000000
    Processor: counts-repartition-filter (stores: [])
      --> counts-repartition-sink
      <-- KSTREAM-KEY-SELECT-0000000001
    Sink: counts-repartition-sink (topic: counts-repartition)
      <-- counts-repartition-filter

  Sub-topology: 1
    Source: counts-repartition-source (topics: [counts-repartition])
      --> KSTREAM-AGGREGATE-0000000002
    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [counts])
      --> KTABLE-TOSTREAM-0000000006
      <-- counts-repartition-source
    Processor: KTABLE-TOSTREAM-0000000006 (stores: [])
      --> KSTREAM-MAP-0000000007
      <-- KSTREAM-AGGREGATE-0000000002
    Processor: KSTREAM-MAP-0000000007 (stores: [])
      --> KSTREAM-SINK-0000000008
      <-- KTABLE-TOSTREAM-0000000006
    Sink: KSTREAM-SINK-0000000008 (topic: output-suppressed)
      <-- KSTREAM-MAP-0000000007

"""


def test_named_store_names_the_repartition_nodes() -> None:
    """SuppressTopologyTest.NAMED_FINAL_TOPOLOGY without its suppress node (and with time windows
    instead of session windows, which name nodes alike): a store named ``counts`` gives
    ``counts-repartition-sink/-filter/-source``, and the three still use up numbers 3–5."""
    builder = StreamsBuilder()
    (builder.stream("input")
     .group_by(lambda key, value: key)
     .windowed_by(TimeWindows.of_size_and_grace(5, 5))
     .count(Materialized.as_("counts"))
     .to_stream()
     .map(lambda windowed, count: (str(windowed), count))
     .to("output-suppressed"))
    assert str(builder.build().describe()) == GROUPED_WINDOWED


def one_aggregate(source: str, processor: str, store: str) -> str:
    return (
        "Topologies:\n"
        "   Sub-topology: 0\n"
        f"    Source: {source} (topics: [input-topic])\n"
        f"      --> {processor}\n"
        f"    Processor: {processor} (stores: [{store}])\n"
        "      --> none\n"
        f"      <-- {source}\n\n"
    )


def test_zero_arg_count_names_its_store_before_itself() -> None:
    """TopologyTest.kGroupedStreamZeroArgCountShouldPreserveTopologyStructure."""
    builder = StreamsBuilder()
    builder.stream("input-topic").group_by_key().count()
    assert str(builder.build().describe()) == one_aggregate(
        "KSTREAM-SOURCE-0000000000", "KSTREAM-AGGREGATE-0000000002",
        "KSTREAM-AGGREGATE-STATE-STORE-0000000001")


def test_named_count_uses_no_store_number() -> None:
    """TopologyTest.kGroupedStreamNamedMaterializedCountShouldPreserveTopologyStructure."""
    builder = StreamsBuilder()
    builder.stream("input-topic").group_by_key().count(Materialized.as_("count-store"))
    assert str(builder.build().describe()) == one_aggregate(
        "KSTREAM-SOURCE-0000000000", "KSTREAM-AGGREGATE-0000000001", "count-store")


def test_anonymous_materialized_count_burns_a_number() -> None:
    """TopologyTest.kGroupedStreamAnonymousMaterializedCountShouldPreserveTopologyStructure:
    count(Materialized without a name) uses up one number more (kept for compatibility)."""
    builder = StreamsBuilder()
    builder.stream("input-topic").group_by_key().count(Materialized())
    assert str(builder.build().describe()) == one_aggregate(
        "KSTREAM-SOURCE-0000000000", "KSTREAM-AGGREGATE-0000000003",
        "KSTREAM-AGGREGATE-STATE-STORE-0000000002")


def test_windowed_count() -> None:
    """TopologyTest.timeWindowZeroArgCountShouldPreserveTopologyStructure."""
    builder = StreamsBuilder()
    (builder.stream("input-topic").group_by_key()
     .windowed_by(TimeWindows.of_size_with_no_grace(1)).count())
    assert str(builder.build().describe()) == one_aggregate(
        "KSTREAM-SOURCE-0000000000", "KSTREAM-AGGREGATE-0000000002",
        "KSTREAM-AGGREGATE-STATE-STORE-0000000001")


def test_windowed_count_named() -> None:
    """TopologyTest.timeWindowNamedMaterializedCountShouldPreserveTopologyStructure."""
    builder = StreamsBuilder()
    (builder.stream("input-topic").group_by_key()
     .windowed_by(TimeWindows.of_size_with_no_grace(1)).count(Materialized.as_("count-store")))
    assert str(builder.build().describe()) == one_aggregate(
        "KSTREAM-SOURCE-0000000000", "KSTREAM-AGGREGATE-0000000001", "count-store")


def table_text(last: str, store: str) -> str:
    return (
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])\n"
        "      --> KTABLE-SOURCE-0000000002\n"
        "    Processor: KTABLE-SOURCE-0000000002 (stores: [])\n"
        f"      --> {last}\n"
        "      <-- KSTREAM-SOURCE-0000000001\n"
        f"    Processor: {last} (stores: [{store}])\n"
        "      --> none\n"
        "      <-- KTABLE-SOURCE-0000000002\n\n"
    )


def test_table_map_values() -> None:
    """TopologyTest.kTableNonMaterializedMapValuesShouldPreserveTopologyStructure: table()
    takes number 0 for its (unused) store name, so the source is 1."""
    builder = StreamsBuilder()
    builder.table("input-topic").map_values(lambda value: None)
    assert str(builder.build().describe()) == table_text("KTABLE-MAPVALUES-0000000003", "")


def test_table_map_values_named_store() -> None:
    """TopologyTest.kTableNamedMaterializedMapValuesShouldPreserveTopologyStructure."""
    builder = StreamsBuilder()
    builder.table("input-topic").map_values(lambda value: None, Materialized.as_("store-name"))
    assert str(builder.build().describe()) == table_text("KTABLE-MAPVALUES-0000000003",
                                                         "store-name")


def test_table_filter_anonymous_materialized() -> None:
    """TopologyTest.kTableAnonymousMaterializedFilterShouldPreserveTopologyStructure: the
    anonymous store uses number 3 but is not kept."""
    builder = StreamsBuilder()
    builder.table("input-topic").filter(lambda key, value: False, Materialized())
    assert str(builder.build().describe()) == table_text("KTABLE-FILTER-0000000004", "")


def test_shared_store_joins_subtopologies_and_orders_parents_as_kafka() -> None:
    """TopologyTest.streamStreamJoinTopologyWithDefaultStoresNames, rebuilt node by node with
    the Processor API. Stores shared across branches make one sub-topology; the merge node lists
    ``JOINTHIS`` before ``JOINOTHER`` although sorting by (size, name) would not: Kafka fills
    each ``<--`` set while sizes still grow."""
    t = Topology()
    t.add_source("KSTREAM-SOURCE-0000000000", "input-topic1")
    t.add_source("KSTREAM-SOURCE-0000000001", "input-topic2")
    t.add_processor("KSTREAM-WINDOWED-0000000002", Forward, "KSTREAM-SOURCE-0000000000")
    t.add_processor("KSTREAM-WINDOWED-0000000003", Forward, "KSTREAM-SOURCE-0000000001")
    t.add_processor("KSTREAM-JOINTHIS-0000000004", Forward, "KSTREAM-WINDOWED-0000000002")
    t.add_processor("KSTREAM-JOINOTHER-0000000005", Forward, "KSTREAM-WINDOWED-0000000003")
    t.add_processor("KSTREAM-MERGE-0000000006", Forward, "KSTREAM-JOINTHIS-0000000004",
                    "KSTREAM-JOINOTHER-0000000005")
    t.add_state_store(Stores.in_memory_window_store("KSTREAM-JOINTHIS-0000000004-store", 1, 1),
                      "KSTREAM-WINDOWED-0000000002", "KSTREAM-JOINOTHER-0000000005")
    t.add_state_store(Stores.in_memory_window_store("KSTREAM-JOINOTHER-0000000005-store", 1, 1),
                      "KSTREAM-WINDOWED-0000000003", "KSTREAM-JOINTHIS-0000000004")
    assert str(t.describe()) == (
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic1])\n"
        "      --> KSTREAM-WINDOWED-0000000002\n"
        "    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic2])\n"
        "      --> KSTREAM-WINDOWED-0000000003\n"
        "    Processor: KSTREAM-WINDOWED-0000000002"
        " (stores: [KSTREAM-JOINTHIS-0000000004-store])\n"
        "      --> KSTREAM-JOINTHIS-0000000004\n"
        "      <-- KSTREAM-SOURCE-0000000000\n"
        "    Processor: KSTREAM-WINDOWED-0000000003"
        " (stores: [KSTREAM-JOINOTHER-0000000005-store])\n"
        "      --> KSTREAM-JOINOTHER-0000000005\n"
        "      <-- KSTREAM-SOURCE-0000000001\n"
        "    Processor: KSTREAM-JOINOTHER-0000000005"
        " (stores: [KSTREAM-JOINTHIS-0000000004-store])\n"
        "      --> KSTREAM-MERGE-0000000006\n"
        "      <-- KSTREAM-WINDOWED-0000000003\n"
        "    Processor: KSTREAM-JOINTHIS-0000000004"
        " (stores: [KSTREAM-JOINOTHER-0000000005-store])\n"
        "      --> KSTREAM-MERGE-0000000006\n"
        "      <-- KSTREAM-WINDOWED-0000000002\n"
        "    Processor: KSTREAM-MERGE-0000000006 (stores: [])\n"
        "      --> none\n"
        "      <-- KSTREAM-JOINTHIS-0000000004, KSTREAM-JOINOTHER-0000000005\n\n"
    )


def test_unconnected_sources_are_separate_subtopologies_in_order_added() -> None:
    """Each connected component is a sub-topology, numbered in the order its first node was added
    (``makeNodeGroups``); later ones are indented two spaces, the first three."""
    t = Topology()
    t.add_source("b-source", "b").add_source("a-source", "a")
    t.add_processor("a-proc", Forward, "a-source")
    text = str(t.describe())
    assert text == (
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: b-source (topics: [b])\n"
        "      --> none\n\n"
        "  Sub-topology: 1\n"
        "    Source: a-source (topics: [a])\n"
        "      --> a-proc\n"
        "    Processor: a-proc (stores: [])\n"
        "      --> none\n"
        "      <-- a-source\n\n"
    )


def test_split_names_branches_after_the_splitter() -> None:
    """``BranchedKStreamImpl``: splitter ``KSTREAM-BRANCH-0000000001``; branches are its name
    plus the Branched name or position (default branch 0), each using up a number.

    The ``-->`` list of the splitter is not sorted by final sub-tree size: Kafka connects nodes in
    Java hash order of their names (…12, …1-big, source, sink, splitter, …10). Branch 12 joins
    the splitter's set while its own sink is not yet connected (size 1) and sorts after "-big"
    by name; branch 10 arrives when 12 already has size 2. Sorting by final size would print 12
    first."""
    builder = StreamsBuilder()
    branches = (builder.stream("input").split()
                .branch(lambda k, v: v > 10, Branched.as_("-big"))
                .branch(lambda k, v: v > 5)
                .default_branch())
    assert sorted(branches) == ["KSTREAM-BRANCH-0000000001-big", "KSTREAM-BRANCH-00000000010",
                                "KSTREAM-BRANCH-00000000012"]
    branches["KSTREAM-BRANCH-00000000012"].to("medium")
    assert str(builder.build().describe()) == (
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: KSTREAM-SOURCE-0000000000 (topics: [input])\n"
        "      --> KSTREAM-BRANCH-0000000001\n"
        "    Processor: KSTREAM-BRANCH-0000000001 (stores: [])\n"
        "      --> KSTREAM-BRANCH-0000000001-big, KSTREAM-BRANCH-00000000012, "
        "KSTREAM-BRANCH-00000000010\n"
        "      <-- KSTREAM-SOURCE-0000000000\n"
        "    Processor: KSTREAM-BRANCH-00000000012 (stores: [])\n"
        "      --> KSTREAM-SINK-0000000005\n"
        "      <-- KSTREAM-BRANCH-0000000001\n"
        "    Processor: KSTREAM-BRANCH-0000000001-big (stores: [])\n"
        "      --> none\n"
        "      <-- KSTREAM-BRANCH-0000000001\n"
        "    Processor: KSTREAM-BRANCH-00000000010 (stores: [])\n"
        "      --> none\n"
        "      <-- KSTREAM-BRANCH-0000000001\n"
        "    Sink: KSTREAM-SINK-0000000005 (topic: medium)\n"
        "      <-- KSTREAM-BRANCH-00000000012\n\n"
    )


def test_user_names_still_use_up_numbers() -> None:
    """``NamedInternal.orElseGenerateWithPrefix`` burns an index even for a given name."""
    builder = StreamsBuilder()
    builder.stream("in", named="reader").filter(lambda k, v: True).to("out")
    text = str(builder.build().describe())
    assert "Processor: KSTREAM-FILTER-0000000001 (stores: [])" in text
    assert "Sink: KSTREAM-SINK-0000000002 (topic: out)" in text
    assert "Source: reader (topics: [in])" in text


def test_grouped_name_names_key_selector_and_repartition_topic() -> None:
    """``KStreamImpl.groupBy`` names the key selector with the Grouped name, and the repartition
    topic is ``<name>-repartition``."""
    builder = StreamsBuilder()
    builder.stream("in").group_by(lambda k, v: v, Grouped.as_("by-word")).count()
    topology = builder.build()
    assert topology.internal_topics == ["by-word-repartition"]
    assert "Processor: by-word (stores: [])\n      --> by-word-repartition-filter" in str(
        topology.describe())


def test_group_by_key_after_map_values_needs_no_repartition() -> None:
    """map_values keeps the key, so group_by_key aggregates in the same sub-topology; select_key
    marks the stream and the same grouping then repartitions (``repartitionRequired``)."""
    plain = StreamsBuilder()
    plain.stream("in").map_values(str).group_by_key().count()
    assert plain.build().internal_topics == []
    keyed = StreamsBuilder()
    keyed.stream("in").select_key(lambda k, v: v).map_values(str).group_by_key().count()
    assert keyed.build().internal_topics == ["KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition"]


def test_source_topics_print_in_java_hash_set_order() -> None:
    """A source's topics are a Java HashSet in ``describe()``; a pattern prints as its regex."""
    t = Topology()
    t.add_source("many", "orders", "payment", "audit")
    t.add_source("matching", re.compile("logs-.*"))
    text = str(t.describe())
    assert "Source: many (topics: [" + ", ".join(
        java_hash_set_order(["orders", "payment", "audit"])) + "])" in text
    assert "Source: matching (topics: logs-.*)" in text


def test_global_table_prints_as_a_global_store() -> None:
    """A global table's source and processor form a sub-topology "for global store (will not
    generate tasks)" that takes an id in the shared sequence (``TopologyDescription.toString``)."""
    builder = StreamsBuilder()
    builder.global_table("rates")
    builder.stream("payment").to("out")
    assert str(builder.build().describe()) == (
        "Topologies:\n"
        "   Sub-topology: 0 for global store (will not generate tasks)\n"
        "    Source: KSTREAM-SOURCE-0000000001 (topics: [rates])\n"
        "      --> KTABLE-SOURCE-0000000002\n"
        "    Processor: KTABLE-SOURCE-0000000002 (stores: [rates-STATE-STORE-0000000000])\n"
        "      --> none\n"
        "      <-- KSTREAM-SOURCE-0000000001\n"
        "  Sub-topology: 1\n"
        "    Source: KSTREAM-SOURCE-0000000003 (topics: [payment])\n"
        "      --> KSTREAM-SINK-0000000004\n"
        "    Sink: KSTREAM-SINK-0000000004 (topic: out)\n"
        "      <-- KSTREAM-SOURCE-0000000003\n\n"
    )


@pytest.mark.parametrize(("text", "expected"), [
    ("", 0), ("a", 97), ("Aa", 2112), ("BB", 2112), ("hello", 99162322),
    ("payment", -786681338), ("é", 233),
])
def test_java_string_hash(text: str, expected: int) -> None:
    """Java's ``String.hashCode`` (signed 32-bit, per UTF-16 unit), which orders HashSets."""
    assert java_string_hash(text) == expected


def test_java_hash_set_order_sorts_by_bucket() -> None:
    """"b" (98) and "a" (97) land in buckets 2 and 1 of 16, so Java iterates a before b;
    "Aa" and "BB" collide and keep insertion order."""
    assert java_hash_set_order(["b", "a"]) == ["a", "b"]
    assert java_hash_set_order(["BB", "Aa"]) == ["BB", "Aa"]
    assert java_hash_set_order(["Aa", "BB"]) == ["Aa", "BB"]


def test_explicit_repartition_names() -> None:
    """``KStreamImpl.doRepartition``: an unnamed repartition draws ``KSTREAM-REPARTITION-<n>``
    and, as a generated name, keeps generated node names; a named one uses ``<name>-repartition``
    for the topic and nodes. A grouping after it needs no second repartition."""
    from sim.streams import Repartitioned

    builder = StreamsBuilder()
    stream = builder.stream("in").select_key(lambda k, v: v)
    stream.repartition().group_by_key().count()
    stream.repartition(Repartitioned.as_("by-value")).to("out")
    topology = builder.build()
    assert topology.internal_topics == ["KSTREAM-REPARTITION-0000000002-repartition",
                                        "by-value-repartition"]
    text = str(topology.describe())
    assert ("Sink: KSTREAM-SINK-0000000003 (topic: KSTREAM-REPARTITION-0000000002-repartition)"
            in text)
    assert "Processor: KSTREAM-AGGREGATE-0000000007 (stores: [KSTREAM-AGGREGATE-STATE-STORE-" \
           "0000000006])" in text
    assert "Source: by-value-repartition-source (topics: [by-value-repartition])" in text


def test_streams_of_the_same_topic_share_one_source() -> None:
    """``InternalStreamsBuilder.mergeDuplicateSourceNodes``: a second stream() of the same topics
    reuses the first source (its own number is still used up); overlapping but different topic
    lists are an error."""
    builder = StreamsBuilder()
    builder.stream("in").to("a")
    builder.stream("in").to("b")
    assert str(builder.build().describe()) == (
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: KSTREAM-SOURCE-0000000000 (topics: [in])\n"
        "      --> KSTREAM-SINK-0000000001, KSTREAM-SINK-0000000003\n"
        "    Sink: KSTREAM-SINK-0000000001 (topic: a)\n"
        "      <-- KSTREAM-SOURCE-0000000000\n"
        "    Sink: KSTREAM-SINK-0000000003 (topic: b)\n"
        "      <-- KSTREAM-SOURCE-0000000000\n\n")
    with pytest.raises(TopologyError, match="overlapping but not equal input topics"):
        builder.stream(["in", "other"])
