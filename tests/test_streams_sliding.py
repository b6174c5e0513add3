"""Sliding windows (``SlidingWindows``, ``KStreamSlidingWindowAggregate``).

The javadoc example (difference 5,000; records at 8,000, 9,200 and 12,400 → five windows) and a
brute-force property: with a grace long enough that nothing is late, whatever the arrival order,
the windows are every record's left window ``[t - d, t]`` (``[0, d]`` for records before ``d``)
plus every non-empty right window ``[t + 1, t + 1 + d]``, each counting the records inside it.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.errors import TopologyError
from sim.streams import (
    Materialized,
    SlidingWindows,
    StreamsBuilder,
    TimeWindow,
    TopologyTestDriver,
    Windowed,
)


def sliding_counts(windows: SlidingWindows):
    builder = StreamsBuilder()
    (builder.stream("in").group_by_key().windowed_by(windows)
     .count(Materialized.as_("sliding")).to_stream().to("out"))
    driver = TopologyTestDriver(builder.build())
    return driver, driver.create_input_topic("in"), driver.create_output_topic("out")


def spans(driver: TopologyTestDriver) -> dict[tuple[int, int], int]:
    return {(w.window.start_ms, w.window.end_ms): count
            for w, count in driver.get_window_store("sliding").all()}


def test_javadoc_example() -> None:
    """Five windows with 1, 2, 3, 2 and 1 records; updates come latest window first, as Kafka
    walks the store backwards, and each record's new left window last."""
    driver, topic, out = sliding_counts(SlidingWindows.of_time_difference_with_no_grace(5000))
    for t in (8000, 9200, 12400):
        topic.pipe_input("A", "x", t)
    assert spans(driver) == {(3000, 8000): 1, (4200, 9200): 2, (7400, 12400): 3,
                             (8001, 13001): 2, (9201, 14201): 1}
    assert [(r.key, r.value, r.timestamp) for r in out.read_records_to_list()] == [
        (Windowed("A", TimeWindow(3000, 8000)), 1, 8000),
        (Windowed("A", TimeWindow(8001, 13001)), 1, 9200),
        (Windowed("A", TimeWindow(4200, 9200)), 2, 9200),
        (Windowed("A", TimeWindow(8001, 13001)), 2, 12400),
        (Windowed("A", TimeWindow(9201, 14201)), 1, 12400),
        (Windowed("A", TimeWindow(7400, 12400)), 3, 12400),
    ]


def test_closed_windows_drop_late_records() -> None:
    """With no grace, windows ending before stream time take no more records; a record whose
    own left window has ended is dropped outright (both counted in dropped-records)."""
    driver, topic, _ = sliding_counts(SlidingWindows.of_time_difference_with_no_grace(10))
    topic.pipe_input("A", "x", 100)
    topic.pipe_input("A", "x", 89)   # its windows would end at 99 at the latest: dropped
    assert driver.metrics()["dropped-records-total"] == 1
    assert spans(driver) == {(90, 100): 1}


def expected_windows(times: list[int], d: int) -> dict[tuple[int, int], int]:
    """Every left window and every non-empty right window, each with the records inside."""
    starts = {max(0, t - d) for t in times}
    starts |= {t + 1 for t in times if any(t < u <= t + 1 + d for u in times)}
    return {(s, s + d): sum(s <= u <= s + d for u in times) for s in starts}


@given(times=st.lists(st.integers(0, 60), min_size=1, max_size=12),
       d=st.integers(1, 15))
def test_windows_match_brute_force_in_any_order(times: list[int], d: int) -> None:
    driver, topic, _ = sliding_counts(SlidingWindows.of_time_difference_and_grace(d, 1000))
    for t in times:
        topic.pipe_input("A", "x", t)
    assert spans(driver) == expected_windows(times, d)


def test_sliding_reduce() -> None:
    builder = StreamsBuilder()
    (builder.stream("in").group_by_key()
     .windowed_by(SlidingWindows.of_time_difference_and_grace(10, 100))
     .reduce(lambda a, b: a + b, Materialized.as_("sums")))
    driver = TopologyTestDriver(builder.build())
    topic = driver.create_input_topic("in")
    for t, v in [(20, 1), (25, 2), (40, 4)]:
        topic.pipe_input("k", v, t)
    assert {(w.window.start_ms, w.window.end_ms): v
            for w, v in driver.get_window_store("sums").all()} == {
        (10, 20): 1, (15, 25): 3, (21, 31): 2, (30, 40): 4}


@pytest.mark.parametrize(("diff", "grace"), [(-1, 0), (5, -1)])
def test_bad_sliding_windows(diff: int, grace: int) -> None:
    with pytest.raises(TopologyError):
        SlidingWindows.of_time_difference_and_grace(diff, grace)
