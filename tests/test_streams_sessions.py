"""Session windows (``SessionWindows``, ``KStreamSessionWindowAggregate``).

The merging example is the ``SessionWindows`` javadoc's (gap 5: A@10, A@12, A@20 → [10,12] and
[20,20]; A@16 merges them into [10,20]); describe() from
TopologyTest.sessionWindowZeroArgCountShouldPreserveTopologyStructure.
"""

from __future__ import annotations

import pytest

from sim.errors import TopologyError
from sim.streams import (
    Materialized,
    SessionWindow,
    SessionWindows,
    StreamsBuilder,
    TopologyTestDriver,
    Windowed,
)


def session_counts(windows: SessionWindows):
    builder = StreamsBuilder()
    (builder.stream("clicks").group_by_key().windowed_by(windows)
     .count(Materialized.as_("sessions")).to_stream().to("counts"))
    driver = TopologyTestDriver(builder.build())
    return driver, driver.create_input_topic("clicks"), driver.create_output_topic("counts")


def w(key: str, start: int, end: int) -> Windowed:
    return Windowed(key, SessionWindow(start, end))


def test_javadoc_sessions_merge() -> None:
    """A@16 bridges [10,12] and [20,20]: both are deleted (None) and [10,20] counts 4."""
    driver, clicks, counts = session_counts(SessionWindows.of_inactivity_gap_and_grace(5, 100))
    for t in (10, 12, 20):
        clicks.pipe_input("A", "x", t)
    assert counts.read_key_values_to_list() == [
        (w("A", 10, 10), 1), (w("A", 10, 10), None), (w("A", 10, 12), 2), (w("A", 20, 20), 1)]
    clicks.pipe_input("A", "x", 16)
    records = counts.read_records_to_list()
    assert [(r.key, r.value, r.timestamp) for r in records] == [
        (w("A", 10, 12), None, 12), (w("A", 20, 20), None, 20), (w("A", 10, 20), 4, 20)]
    store = driver.get_session_store("sessions")
    assert store.fetch("A") == [(w("A", 10, 20), 4)]


def test_sessions_close_after_gap_plus_grace() -> None:
    """A session that would end before stream time − grace − gap is dropped and counted."""
    driver, clicks, counts = session_counts(SessionWindows.of_inactivity_gap_and_grace(5, 10))
    clicks.pipe_input("A", "x", 100)
    clicks.pipe_input("A", "x", 84)   # 84 < 100 - 10 - 5 = 85: dropped
    clicks.pipe_input("A", "x", 85)   # 85 ≥ 85: a new session [85,85]
    assert counts.read_key_values_to_list() == [(w("A", 100, 100), 1), (w("A", 85, 85), 1)]
    assert driver.metrics()["dropped-records-total"] == 1


def test_session_reduce_merges_with_the_reducer() -> None:
    builder = StreamsBuilder()
    (builder.stream("in").group_by_key()
     .windowed_by(SessionWindows.of_inactivity_gap_with_no_grace(10))
     .reduce(lambda a, b: a + b).to_stream().to("out"))
    driver = TopologyTestDriver(builder.build())
    topic = driver.create_input_topic("in")
    topic.pipe_input("k", 1, 0)
    topic.pipe_input("k", 2, 30)
    topic.pipe_input("k", 4, 20)
    assert driver.create_output_topic("out").read_key_values_to_list() == [
        (w("k", 0, 0), 1), (w("k", 30, 30), 2), (w("k", 30, 30), None), (w("k", 20, 30), 6)]


def test_session_count_describe() -> None:
    """TopologyTest.sessionWindowZeroArgCountShouldPreserveTopologyStructure."""
    builder = StreamsBuilder()
    (builder.stream("input-topic").group_by_key()
     .windowed_by(SessionWindows.of_inactivity_gap_with_no_grace(1)).count())
    assert str(builder.build().describe()) == (
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])\n"
        "      --> KSTREAM-AGGREGATE-0000000002\n"
        "    Processor: KSTREAM-AGGREGATE-0000000002"
        " (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])\n"
        "      --> none\n"
        "      <-- KSTREAM-SOURCE-0000000000\n\n")


@pytest.mark.parametrize(("gap", "grace"), [(0, 0), (-1, 0), (5, -1)])
def test_bad_session_windows(gap: int, grace: int) -> None:
    with pytest.raises(TopologyError):
        SessionWindows.of_inactivity_gap_and_grace(gap, grace)
