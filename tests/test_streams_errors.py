"""Hostile topologies and processors fail with one clear line from ``sim.errors``.

Messages follow Kafka's ``TopologyException`` ("Invalid topology: …") and ``StreamsException``
texts (``InternalTopologyBuilder``, ``ProcessorContextImpl.forward`` / ``getStateStore``).
"""

from __future__ import annotations

import pytest

from sim.errors import KafkaLabError, StreamsError, TopologyError
from sim.streams import (
    Materialized,
    Processor,
    Record,
    Stores,
    StreamsBuilder,
    Topology,
    TopologyTestDriver,
)


def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text
    assert isinstance(error.value, KafkaLabError)
    return text


class ForwardToGhost(Processor):
    def process(self, record: Record) -> None:
        self.context.forward(record, "ghost")


class PeekAtStore(Processor):
    def process(self, record: Record) -> None:
        self.context.get_state_store("secret")


class ForwardNotARecord(Processor):
    def process(self, record: Record) -> None:
        self.context.forward((record.key, record.value))


def run(processor: type[Processor], *stores: str) -> None:
    topology = Topology().add_source("s", "in").add_processor("p", processor, "s")
    topology.add_sink("child", "out", "p")
    for store in stores:
        topology.add_state_store(Stores.in_memory_key_value_store(store))
    TopologyTestDriver(topology).create_input_topic("in").pipe_input("k", "v")


def test_forward_to_unknown_child() -> None:
    """Forwarding to a node that is not a child names the node and the real children."""
    with pytest.raises(StreamsError) as error:
        run(ForwardToGhost)
    assert "Unknown downstream node: ghost" in one_line(error)
    assert "['child']" in str(error.value)


def test_store_not_connected() -> None:
    """A store that exists but is not connected to the processor is refused, with the fix."""
    with pytest.raises(StreamsError) as error:
        run(PeekAtStore, "secret")
    assert "Processor p has no access to StateStore secret" in one_line(error)


def test_forward_needs_a_record() -> None:
    with pytest.raises(StreamsError) as error:
        run(ForwardNotARecord)
    assert "forward() takes a Record" in one_line(error)


@pytest.mark.parametrize(("build", "message"), [
    (lambda t: t.add_processor("p", Processor, "nowhere"),
     "Predecessor processor nowhere is not added yet for p"),
    (lambda t: t.add_source("s", "other"), "Processor s is already added."),
    (lambda t: t.add_source("s2", "in"), "Topic in has already been registered by another"),
    (lambda t: t.add_sink("k", "out"), "Sink k must have at least one parent"),
    (lambda t: t.add_sink("k", "out", "s").add_processor("q", Processor, "k"),
     "Sink k cannot be used a parent."),
    (lambda t: t.add_source("empty"), "You must provide at least one topic"),
    (lambda t: t.connect_processor_and_state_stores("s", "missing"),
     "StateStore missing is not added yet."),
    (lambda t: t.add_state_store(Stores.in_memory_key_value_store("st"), "s"),
     "cannot connect a state store st to a source node or a sink node."),
    (lambda t: t.add_processor("p", "not callable", "s"), "needs a supplier"),
])
def test_bad_topologies(build, message: str) -> None:
    """Processor API misuse fails while building, as Kafka's TopologyException does."""
    topology = Topology().add_source("s", "in")
    with pytest.raises(TopologyError) as error:
        build(topology)
    assert message in one_line(error)
    assert str(error.value).startswith("Invalid topology: ")


def test_supplier_must_return_a_processor() -> None:
    topology = Topology().add_source("s", "in").add_processor("p", lambda: 42, "s")
    with pytest.raises(StreamsError) as error:
        TopologyTestDriver(topology)
    assert "returned 42, not a Processor" in one_line(error)


@pytest.mark.parametrize(("build", "message"), [
    (lambda b: b.stream("in").filter("yes"), "filter() needs a function"),
    (lambda b: b.stream("in").group_by_key().count(Materialized.as_("bad name")),
     "Name 'bad name' of Materialized is illegal"),
    (lambda b: b.stream("in").group_by_key().count("store"), "materialized must be"),
    (lambda b: b.stream("in").group_by_key().windowed_by(5), "windowed_by() takes TimeWindows"),
    (lambda b: b.stream("in").merge("other"), "merge() needs another KStream"),
])
def test_bad_dsl_calls(build, message: str) -> None:
    with pytest.raises(TopologyError) as error:
        build(StreamsBuilder())
    assert message in one_line(error)


def test_map_must_return_a_pair() -> None:
    """map's function must return (key, value); anything else stops with a clear error."""
    builder = StreamsBuilder()
    builder.stream("in").map(lambda k, v: v).to("out")
    driver = TopologyTestDriver(builder.build())
    with pytest.raises(StreamsError) as error:
        driver.create_input_topic("in").pipe_input("k", "v")
    assert "must return a (key, value) pair, got 'v'" in one_line(error)


def test_unknown_input_topic_and_bad_timestamps() -> None:
    builder = StreamsBuilder()
    builder.stream("in").to("out")
    driver = TopologyTestDriver(builder.build())
    with pytest.raises(StreamsError) as error:
        driver.create_input_topic("inn")
    assert "Unknown topic: inn; the topology reads ['in']" in one_line(error)
    with pytest.raises(StreamsError) as error:
        driver.create_input_topic("in").pipe_input("k", "v", -5)
    assert "timestamp is milliseconds >= 0" in one_line(error)
    with pytest.raises(StreamsError):
        driver.advance_wall_clock_time(-1)


class ScheduleBadly(Processor):
    def init(self, context) -> None:
        context.schedule(0, "STREAM_TIME", print)


def test_bad_schedule() -> None:
    topology = Topology().add_source("s", "in").add_processor("p", ScheduleBadly, "s")
    with pytest.raises(StreamsError) as error:
        TopologyTestDriver(topology)
    assert "minimum supported scheduling interval is 1 millisecond" in one_line(error)


def test_driver_rejects_bad_config() -> None:
    builder = StreamsBuilder()
    builder.stream("in").to("out")
    with pytest.raises(KafkaLabError) as error:
        TopologyTestDriver(builder.build(), {"comit.interval.ms": 0})
    assert "Did you mean commit.interval.ms" in one_line(error)


def test_flat_map_values_returning_a_string_is_refused() -> None:
    """A str is iterable in Python but is not a list of values: say so instead of splitting it
    into characters."""
    builder = StreamsBuilder()
    builder.stream("in").flat_map_values(lambda line: line.lower()).to("out")
    driver = TopologyTestDriver(builder.build())
    with pytest.raises(StreamsError) as error:
        driver.create_input_topic("in").pipe_input(None, "Hello")
    assert "flat_map_values must return a list" in one_line(error)
