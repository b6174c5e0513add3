"""``KTable.suppress`` (KIP-328; ``KTableSuppressProcessorSupplier``).

describe() goldens are SuppressTopologyTest's NAMED_FINAL_TOPOLOGY / ANONYMOUS_FINAL_TOPOLOGY
and the two *_INTERMEDIATE_TOPOLOGY texts (Kafka 4.0 trunk).
"""

from __future__ import annotations

import pytest

from sim.errors import StreamsError, TopologyError
from sim.streams import (
    BufferConfig,
    Grouped,
    Materialized,
    SessionWindows,
    StreamsBuilder,
    Suppressed,
    TimeWindow,
    TimeWindows,
    TopologyTestDriver,
    Windowed,
)

FINAL = (
    "Topologies:\n"
    "   Sub-topology: 0\n"
    "    Source: KSTREAM-SOURCE-0000000000 (topics: [input])\n"
    "      --> KSTREAM-KEY-SELECT-0000000001\n"
    "    Processor: KSTREAM-KEY-SELECT-0000000001 (stores: [])\n"
    "      --> counts-repartition-filter\n"
    "      <-- KSTREAM-SOURCE-0000000000\n"
    "    Processor: counts-repartition-filter (stores: [])\n"
    "      --> counts-repartition-sink\n"
    "      <-- KSTREAM-KEY-SELECT-0000000001\n"
    "    Sink: counts-repartition-sink (topic: counts-repartition)\n"
    "      <-- counts-repartition-filter\n"
    "\n"
    "  Sub-topology: 1\n"
    "    Source: counts-repartition-source (topics: [counts-repartition])\n"
    "      --> KSTREAM-AGGREGATE-0000000002\n"
    "    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [counts])\n"
    "      --> {suppress}\n"
    "      <-- counts-repartition-source\n"
    "    Processor: {suppress} (stores: [{store}])\n"
    "      --> KTABLE-TOSTREAM-{n:010d}\n"
    "      <-- KSTREAM-AGGREGATE-0000000002\n"
    "    Processor: KTABLE-TOSTREAM-{n:010d} (stores: [])\n"
    "      --> KSTREAM-MAP-{m:010d}\n"
    "      <-- {suppress}\n"
    "    Processor: KSTREAM-MAP-{m:010d} (stores: [])\n"
    "      --> KSTREAM-SINK-{s:010d}\n"
    "      <-- KTABLE-TOSTREAM-{n:010d}\n"
    "    Sink: KSTREAM-SINK-{s:010d} (topic: output-suppressed)\n"
    "      <-- KSTREAM-MAP-{m:010d}\n"
    "\n"
)


def final_topology(suppressed: Suppressed) -> str:
    """SuppressTopologyTest's session-windowed count with final-result suppression."""
    builder = StreamsBuilder()
    (builder.stream("input")
     .group_by(lambda k, v: k, Grouped())
     .windowed_by(SessionWindows.of_inactivity_gap_and_grace(5, 5))
     .count(Materialized.as_("counts"))
     .suppress(suppressed)
     .to_stream()
     .map(lambda k, v: (str(k), v))
     .to("output-suppressed"))
    return str(builder.build().describe())


def test_named_final_suppression() -> None:
    """NAMED_FINAL_TOPOLOGY: a named suppress uses no number; its store is <name>-store."""
    named = Suppressed.until_window_closes(BufferConfig.unbounded()).with_name("myname")
    assert final_topology(named) == FINAL.format(suppress="myname", store="myname-store",
                                                 n=6, m=7, s=8)


def test_anonymous_final_suppression() -> None:
    """ANONYMOUS_FINAL_TOPOLOGY: KTABLE-SUPPRESS-6 with KTABLE-SUPPRESS-STATE-STORE-7."""
    anonymous = Suppressed.until_window_closes(BufferConfig.unbounded())
    assert final_topology(anonymous) == FINAL.format(
        suppress="KTABLE-SUPPRESS-0000000006", store="KTABLE-SUPPRESS-STATE-STORE-0000000007",
        n=8, m=9, s=10)


@pytest.mark.parametrize(("name", "expected"), [
    ("asdf", "Processor: asdf (stores: [asdf-store])\n"
             "      --> KTABLE-TOSTREAM-0000000003\n"),
    (None, "Processor: KTABLE-SUPPRESS-0000000003 (stores: [KTABLE-SUPPRESS-STATE-STORE-"
           "0000000004])\n      --> KTABLE-TOSTREAM-0000000005\n"),
])
def test_intermediate_suppression(name: str | None, expected: str) -> None:
    """NAMED_ / ANONYMOUS_INTERMEDIATE_TOPOLOGY: until_time_limit on a plain count."""
    suppressed = Suppressed.until_time_limit(0, BufferConfig.unbounded())
    if name:
        suppressed = suppressed.with_name(name)
    builder = StreamsBuilder()
    builder.stream("input").group_by_key().count().suppress(suppressed).to_stream().to("output")
    text = str(builder.build().describe())
    assert "Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-" \
           "0000000001])" in text
    assert expected in text


def windowed(suppressed: Suppressed, windows: TimeWindows):
    builder = StreamsBuilder()
    (builder.stream("in").group_by_key().windowed_by(windows).count()
     .suppress(suppressed).to_stream().to("out"))
    driver = TopologyTestDriver(builder.build())
    return driver.create_input_topic("in"), driver.create_output_topic("out")


def test_until_window_closes_emits_each_window_once() -> None:
    """Final results: [0,10) is emitted, with its last count, when stream time reaches
    10 + grace 5 = 15, not before; the late record at 4 (stream time 15) is dropped."""
    topic, out = windowed(Suppressed.until_window_closes(BufferConfig.unbounded()),
                          TimeWindows.of_size_and_grace(10, 5))
    for t in (1, 3, 12, 14):
        topic.pipe_input("a", "x", t)
    assert out.read_key_values_to_list() == []
    topic.pipe_input("b", "x", 15)
    assert [(r.key, r.value, r.timestamp) for r in out.read_records_to_list()] == [
        (Windowed("a", TimeWindow(0, 10)), 2, 3)]
    topic.pipe_input("a", "x", 4)
    topic.pipe_input("a", "x", 40)
    assert out.read_key_values_to_list() == [
        (Windowed("a", TimeWindow(10, 20)), 2), (Windowed("b", TimeWindow(10, 20)), 1)]


def test_until_time_limit_does_not_restart_the_timer() -> None:
    """A key's updates are held 10 ms from its first buffered update; the latest is emitted."""
    builder = StreamsBuilder()
    (builder.stream("in").group_by_key().count()
     .suppress(Suppressed.until_time_limit(10, BufferConfig.unbounded()))
     .to_stream().to("out"))
    driver = TopologyTestDriver(builder.build())
    topic, out = driver.create_input_topic("in"), driver.create_output_topic("out")
    topic.pipe_input("a", 1, 0)
    topic.pipe_input("a", 1, 6)
    topic.pipe_input("b", 1, 9)
    assert out.read_key_values_to_list() == []
    topic.pipe_input("a", 1, 10)  # a was first buffered at 0: 0 <= 10 - 10, emit a=3
    assert out.read_key_values_to_list() == [("a", 3)]
    topic.pipe_input("c", 1, 19)  # b (buffered at 9) goes; nothing else is due
    assert out.read_key_values_to_list() == [("b", 1)]


def test_bounded_buffer_emits_early_or_fails() -> None:
    builder = StreamsBuilder()
    (builder.stream("in").group_by_key().count()
     .suppress(Suppressed.until_time_limit(1000, BufferConfig.max_records(1)))
     .to_stream().to("out"))
    driver = TopologyTestDriver(builder.build())
    topic = driver.create_input_topic("in")
    topic.pipe_input("a", 1, 0)
    topic.pipe_input("b", 1, 1)
    assert driver.create_output_topic("out").read_key_values_to_list() == [("a", 1)]
    strict = StreamsBuilder()
    (strict.stream("in").group_by_key().count()
     .suppress(Suppressed.until_time_limit(
         1000, BufferConfig.max_records(1).shut_down_when_full()).with_name("hold"))
     .to_stream().to("out"))
    driver = TopologyTestDriver(strict.build())
    topic = driver.create_input_topic("in")
    topic.pipe_input("a", 1, 0)
    with pytest.raises(StreamsError, match=r"hold buffer exceeded its max capacity"):
        topic.pipe_input("b", 1, 1)


def test_final_results_need_windows_and_a_strict_buffer() -> None:
    with pytest.raises(TopologyError, match="only defined for windowed"):
        StreamsBuilder().stream("in").group_by_key().count().suppress(
            Suppressed.until_window_closes(BufferConfig.unbounded()))
    with pytest.raises(TopologyError, match="strict buffer"):
        Suppressed.until_window_closes(BufferConfig.max_records(5))


def test_anonymous_intermediate_suppression_full_text() -> None:
    """SuppressTopologyTest.ANONYMOUS_INTERMEDIATE_TOPOLOGY, byte for byte."""
    builder = StreamsBuilder()
    (builder.stream("input").group_by_key().count()
     .suppress(Suppressed.until_time_limit(1000, BufferConfig.unbounded()))
     .to_stream().to("output"))
    assert str(builder.build().describe()) == (
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: KSTREAM-SOURCE-0000000000 (topics: [input])\n"
        "      --> KSTREAM-AGGREGATE-0000000002\n"
        "    Processor: KSTREAM-AGGREGATE-0000000002"
        " (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])\n"
        "      --> KTABLE-SUPPRESS-0000000003\n"
        "      <-- KSTREAM-SOURCE-0000000000\n"
        "    Processor: KTABLE-SUPPRESS-0000000003"
        " (stores: [KTABLE-SUPPRESS-STATE-STORE-0000000004])\n"
        "      --> KTABLE-TOSTREAM-0000000005\n"
        "      <-- KSTREAM-AGGREGATE-0000000002\n"
        "    Processor: KTABLE-TOSTREAM-0000000005 (stores: [])\n"
        "      --> KSTREAM-SINK-0000000006\n"
        "      <-- KTABLE-SUPPRESS-0000000003\n"
        "    Sink: KSTREAM-SINK-0000000006 (topic: output)\n"
        "      <-- KTABLE-TOSTREAM-0000000005\n"
        "\n")
