"""``TopologyTestDriver`` runs topologies synchronously, as ``kafka-streams-test-utils`` does.

WordCount's eleven updates are those of Kafka's quickstart (``docs/streams/quickstart.html``,
cache 0). Operation semantics follow ``KStreamImpl`` / ``KTableImpl`` and their processors.
"""

from __future__ import annotations

import pytest

from sim.errors import StreamsError
from sim.streams import (
    Branched,
    Materialized,
    Processor,
    PunctuationType,
    Record,
    Stores,
    StreamsBuilder,
    Topology,
    TopologyTestDriver,
)
from tests.test_streams_describe import wordcount_builder, words

QUICKSTART_LINES = ["all streams lead to kafka", "hello kafka streams", "join kafka summit"]


def test_wordcount_gives_the_quickstarts_eleven_updates_in_order() -> None:
    """With the cache at 0 every count update is emitted: all 1 … summit 1 (quickstart)."""
    driver = TopologyTestDriver(wordcount_builder().build(),
                                {"application.id": "streams-wordcount"})
    lines = driver.create_input_topic("streams-plaintext-input")
    output = driver.create_output_topic("streams-wordcount-output")
    for line in QUICKSTART_LINES:
        lines.pipe_input(None, line)
    assert output.read_key_values_to_list() == [
        ("all", 1), ("streams", 1), ("lead", 1), ("to", 1), ("kafka", 1),
        ("hello", 1), ("kafka", 2), ("streams", 2),
        ("join", 1), ("kafka", 3), ("summit", 1),
    ]
    store = driver.get_key_value_store("KSTREAM-AGGREGATE-STATE-STORE-0000000003")
    assert store is not None
    assert store.get("kafka") == 3
    assert dict(store.all()) == {"all": 1, "streams": 2, "lead": 1, "to": 1, "kafka": 3,
                                 "hello": 1, "join": 1, "summit": 1}
    assert output.is_empty()


def test_java_split_keeps_a_leading_empty_word() -> None:
    """Java's split("\\\\W+") keeps a leading "" and drops trailing ones (kafka-facts §5.7)."""
    assert words(" Hello, World!") == ["", "hello", "world"]
    assert words("it's a test") == ["it", "s", "a", "test"]
    assert words("") == [""]


def test_repartitioned_records_carry_their_timestamps() -> None:
    """The count's output timestamp is the largest timestamp aggregated so far
    (``KStreamAggregate``), so an older record does not move it back."""
    driver = TopologyTestDriver(wordcount_builder().build())
    lines = driver.create_input_topic("streams-plaintext-input")
    output = driver.create_output_topic("streams-wordcount-output")
    lines.pipe_input(None, "a", 100)
    lines.pipe_input(None, "a", 50)
    assert [(r.key, r.value, r.timestamp) for r in output.read_records_to_list()] == [
        ("a", 1, 100), ("a", 2, 100)]


def test_seed_filter_keeps_only_unknown_payments() -> None:
    """The seed's example forwards exactly the records whose key is "unknown", in order."""
    builder = StreamsBuilder()
    builder.stream("payment").filter(lambda key, value: key == "unknown").to("unknown-payment")
    driver = TopologyTestDriver(builder.build(), {"application.id": "payments"})
    payments = driver.create_input_topic("payment")
    for i, key in enumerate(["alice", "unknown", "bob", "unknown"]):
        payments.pipe_input(key, i * 10, timestamp=i)
    records = driver.create_output_topic("unknown-payment").read_records_to_list()
    assert [(r.key, r.value, r.timestamp) for r in records] == [("unknown", 10, 1),
                                                                ("unknown", 30, 3)]


def test_stateless_operations_chain() -> None:
    """map, filter_not, flat_map, select_key and peek apply in order; peek sees every record."""
    seen = []
    builder = StreamsBuilder()
    (builder.stream("in")
     .map(lambda k, v: (v, k))
     .filter_not(lambda k, v: k == 0)
     .flat_map(lambda k, v: [(k, v), (k * 10, v)])
     .select_key(lambda k, v: f"{v}:{k}")
     .peek(lambda k, v: seen.append(k))
     .to("out"))
    driver = TopologyTestDriver(builder.build())
    topic = driver.create_input_topic("in")
    topic.pipe_input("a", 1)
    topic.pipe_input("b", 0)
    topic.pipe_input("c", 2)
    assert driver.create_output_topic("out").read_key_values_to_list() == [
        ("a:1", "a"), ("a:10", "a"), ("c:2", "c"), ("c:20", "c")]
    assert seen == ["a:1", "a:10", "c:2", "c:20"]


def test_split_routes_to_first_matching_branch_and_default() -> None:
    """A record goes to the first branch whose predicate holds; the rest to the default."""
    builder = StreamsBuilder()
    branches = (builder.stream("in").split(named="route-")
                .branch(lambda k, v: v > 10, Branched.as_("big"))
                .branch(lambda k, v: v > 5, Branched.with_consumer(lambda s: s.to("medium")))
                .default_branch(Branched.as_("small")))
    assert sorted(branches) == ["route-big", "route-small"]
    branches["route-big"].to("big")
    branches["route-small"].to("small")
    driver = TopologyTestDriver(builder.build())
    topic = driver.create_input_topic("in")
    for value in [20, 7, 1, 11, 6]:
        topic.pipe_input("k", value)
    assert driver.create_output_topic("big").read_values_to_list() == [20, 11]
    assert driver.create_output_topic("medium").read_values_to_list() == [7, 6]
    assert driver.create_output_topic("small").read_values_to_list() == [1]


def test_no_default_branch_drops_unmatched_records() -> None:
    """Without a default branch, unmatched records go nowhere."""
    builder = StreamsBuilder()
    branches = builder.stream("in").split().branch(lambda k, v: v).no_default_branch()
    next(iter(branches.values())).to("out")
    driver = TopologyTestDriver(builder.build())
    driver.create_input_topic("in").pipe_value_list([True, False, True])
    assert driver.create_output_topic("out").read_values_to_list() == [True, True]


def test_merge_interleaves_in_processing_order() -> None:
    """merge() forwards records of both streams in the order they are processed."""
    builder = StreamsBuilder()
    left = builder.stream("left").map_values(lambda v: f"L{v}")
    right = builder.stream("right").map_values(lambda v: f"R{v}")
    left.merge(right).to("out")
    driver = TopologyTestDriver(builder.build())
    lt, rt = driver.create_input_topic("left"), driver.create_input_topic("right")
    lt.pipe_input(1, 1)
    rt.pipe_input(2, 2)
    lt.pipe_input(3, 3)
    assert driver.create_output_topic("out").read_values_to_list() == ["L1", "R2", "L3"]


def test_ktable_filter_turns_removed_rows_into_deletes() -> None:
    """A KTable is a stream of updates: a row filtered out comes out as (key, None) (KTableFilter
    without old values), and a materialized filter keeps only passing rows."""
    builder = StreamsBuilder()
    (builder.table("prices", Materialized.as_("prices-store"))
     .filter(lambda k, v: v >= 10, Materialized.as_("expensive"))
     .map_values(lambda v: v * 2)
     .to_stream().to("out"))
    driver = TopologyTestDriver(builder.build())
    prices = driver.create_input_topic("prices")
    prices.pipe_input("a", 12)
    prices.pipe_input("b", 3)
    prices.pipe_input("a", 4)
    prices.pipe_input("c", None)
    assert driver.create_output_topic("out").read_key_values_to_list() == [
        ("a", 24), ("b", None), ("a", None), ("c", None)]
    assert driver.get_key_value_store("prices-store").all() == [("a", 4), ("b", 3)]
    assert driver.get_key_value_store("expensive").all() == []


def test_global_table_loads_its_store() -> None:
    """A global table's records fill its store; the store name is generated from the topic."""
    builder = StreamsBuilder()
    builder.global_table("rates")
    driver = TopologyTestDriver(builder.build())
    rates = driver.create_input_topic("rates")
    rates.pipe_input("eur", 1.1)
    rates.pipe_input("gbp", 1.3)
    rates.pipe_input("eur", 1.2)
    store = driver.get_key_value_store("rates-STATE-STORE-0000000000")
    assert store.all() == [("eur", 1.2), ("gbp", 1.3)]


def test_reduce_and_aggregate_per_key() -> None:
    """reduce starts from the first value; aggregate from the initializer."""
    builder = StreamsBuilder()
    grouped = builder.stream("in").group_by_key()
    grouped.reduce(lambda agg, v: agg + v, Materialized.as_("sum")).to_stream().to("sums")
    grouped.aggregate(list, lambda k, v, agg: [*agg, v],
                      Materialized.as_("all")).to_stream().to("lists")
    driver = TopologyTestDriver(builder.build())
    topic = driver.create_input_topic("in")
    for key, value in [("a", 1), ("b", 5), ("a", 2), ("a", None)]:
        topic.pipe_input(key, value)
    assert driver.create_output_topic("sums").read_key_values_to_list() == [
        ("a", 1), ("b", 5), ("a", 3)]
    assert driver.create_output_topic("lists").read_key_values_to_list() == [
        ("a", [1]), ("b", [5]), ("a", [1, 2])]
    assert driver.metrics()["dropped-records-total"] == 2  # the None value, once per aggregation


class CountAndPunctuate(Processor):
    """Counts per key into a store; every 10 ms of stream time forwards all counts."""

    def init(self, context) -> None:
        super().init(context)
        self.store = context.get_state_store("counts")
        self.fired: list[int] = []
        context.schedule(10, PunctuationType.STREAM_TIME, self.punctuate)

    def process(self, record: Record) -> None:
        self.store.put(record.key, (self.store.get(record.key) or 0) + 1)

    def punctuate(self, timestamp: int) -> None:
        self.fired.append(timestamp)
        for key, count in self.store.all():
            self.context.forward(Record(key, count, timestamp))


def counting_topology() -> Topology:
    topology = Topology()
    topology.add_source("source", "in")
    topology.add_processor("counter", CountAndPunctuate, "source")
    topology.add_state_store(Stores.in_memory_key_value_store("counts"), "counter")
    topology.add_sink("sink", "out", "counter")
    return topology


def test_stream_time_punctuation() -> None:
    """Stream-time schedules are aligned to 0 and fire as soon as there is data, then each time
    stream time passes the next multiple; an out-of-order record does not move stream time, and
    a jump skips the missed punctuations (``PunctuationSchedule.next``)."""
    driver = TopologyTestDriver(counting_topology())
    topic = driver.create_input_topic("in")
    processor = driver.task.processor("counter")
    topic.pipe_input("a", 1, 3)   # stream time 3: fires at 3 (scheduled for 0)
    topic.pipe_input("b", 1, 9)   # 9 < 10: nothing
    topic.pipe_input("a", 1, 12)  # 12 ≥ 10: fires
    topic.pipe_input("a", 1, 5)   # out of order: stream time stays 12
    topic.pipe_input("b", 1, 47)  # 47: fires once, next at 50
    topic.pipe_input("b", 1, 49)
    assert processor.fired == [3, 12, 47]
    out = driver.create_output_topic("out").read_key_values_to_list()
    assert out == [("a", 1), ("a", 2), ("b", 1), ("a", 3), ("b", 2)]
    assert driver.task.stream_time == 49


class WallClock(Processor):
    def init(self, context) -> None:
        super().init(context)
        self.fired: list[int] = []
        self.cancellable = context.schedule(1000, PunctuationType.WALL_CLOCK_TIME,
                                            self.fired.append)

    def process(self, record: Record) -> None:
        if record.value == "stop":
            self.cancellable.cancel()


def test_wall_clock_punctuation_only_when_the_clock_moves() -> None:
    """Wall-clock schedules start one interval after scheduling; records never fire them, only
    ``advance_wall_clock_time``; cancel() stops them."""
    topology = Topology().add_source("s", "in").add_processor("p", WallClock, "s")
    driver = TopologyTestDriver(topology, initial_wall_clock_time_ms=500)
    processor = driver.task.processor("p")
    topic = driver.create_input_topic("in")
    topic.pipe_input("k", "x", 10_000)
    assert processor.fired == []
    driver.advance_wall_clock_time(999)
    assert processor.fired == []
    driver.advance_wall_clock_time(1)
    assert processor.fired == [1500]
    driver.advance_wall_clock_time(2500)
    assert processor.fired == [1500, 4000]
    topic.pipe_input("k", "stop", 10_001)
    driver.advance_wall_clock_time(5000)
    assert processor.fired == [1500, 4000]


def test_input_topic_times_and_auto_advance() -> None:
    """Records without a timestamp get the topic's start time, advancing by auto_advance."""
    builder = StreamsBuilder()
    builder.stream("in").to("out")
    driver = TopologyTestDriver(builder.build())
    topic = driver.create_input_topic("in", start_timestamp_ms=1000, auto_advance_ms=5)
    topic.pipe_key_value_list([("a", 1), ("b", 2)])
    topic.advance_time(100)
    topic.pipe_input("c", 3)
    output = driver.create_output_topic("out")
    assert [r.timestamp for r in output.read_records_to_list()] == [1000, 1005, 1110]
    with pytest.raises(StreamsError, match="Empty topic: out"):
        output.read_value()


def test_read_key_values_to_map_keeps_last_and_deletes_tombstones() -> None:
    """read_key_values_to_map: the latest value per key; a None value removes the key."""
    builder = StreamsBuilder()
    builder.stream("in").to("out")
    driver = TopologyTestDriver(builder.build())
    driver.create_input_topic("in").pipe_key_value_list([("a", 1), ("b", 2), ("a", 3),
                                                         ("b", None)])
    assert driver.create_output_topic("out").read_key_values_to_map() == {"a": 3}


class Dedupe(Processor):
    """Forwards a key only the first time it is seen, remembering keys in a store."""

    def init(self, context) -> None:
        super().init(context)
        self.seen = context.get_state_store("seen")

    def process(self, record: Record) -> None:
        if self.seen.get(record.key) is None:
            self.seen.put(record.key, record.timestamp)
            self.context.forward(record)


def test_process_runs_a_processor_with_a_store_inside_the_dsl() -> None:
    """KStream.process(supplier, store) connects a store added with add_state_store; the result
    may have a new key, so a later grouping repartitions (``KStreamImpl.process``)."""
    builder = StreamsBuilder()
    builder.add_state_store(Stores.in_memory_key_value_store("seen"))
    deduped = builder.stream("in").process(Dedupe, "seen")
    deduped.to("out")
    deduped.group_by_key().count()
    topology = builder.build()
    assert "Processor: KSTREAM-PROCESSOR-0000000001 (stores: [seen])" in str(topology.describe())
    assert len(topology.internal_topics) == 1
    driver = TopologyTestDriver(topology)
    driver.create_input_topic("in").pipe_key_value_list([("a", 1), ("b", 2), ("a", 3)])
    assert driver.create_output_topic("out").read_key_values_to_list() == [("a", 1), ("b", 2)]
    assert driver.get_key_value_store("seen").all() == [("a", 0), ("b", 0)]


def test_repartition_round_trips_through_its_topic() -> None:
    """repartition(): records are written to the internal topic, read back and processed on."""
    builder = StreamsBuilder()
    (builder.stream("in").select_key(lambda k, v: v).repartition()
     .group_by_key().count().to_stream().to("out"))
    driver = TopologyTestDriver(builder.build())
    driver.create_input_topic("in").pipe_key_value_list([(1, "x"), (2, "y"), (3, "x")])
    assert driver.create_output_topic("out").read_key_values_to_list() == [
        ("x", 1), ("y", 1), ("x", 2)]
    assert driver.produced_topic_names() == ["KSTREAM-REPARTITION-0000000002-repartition", "out"]
