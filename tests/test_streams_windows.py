"""Time windows, grace periods and late records (``TimeWindows``, ``KStreamWindowAggregate``).

Vectors from kafka-facts §5.6 (``TimeWindows.windowsFor``, epoch-aligned windows) and the
issue's hopping example; grace from ``KStreamWindowAggregate.process`` (a window accepts a
record while its end > observed stream time − grace; otherwise the record is dropped and
counted in ``dropped-records``).
"""

from __future__ import annotations

import pytest

from sim.errors import TopologyError
from sim.streams import (
    Materialized,
    StreamsBuilder,
    TimeWindow,
    TimeWindows,
    TopologyTestDriver,
    Windowed,
)


def spans(windows: list[TimeWindow]) -> list[tuple[int, int]]:
    return [(w.start_ms, w.end_ms) for w in windows]


@pytest.mark.parametrize(("timestamp", "expected"), [
    (0, [(0, 5000)]), (4999, [(0, 5000)]), (5000, [(5000, 10000)]),
])
def test_tumbling_windows(timestamp: int, expected: list[tuple[int, int]]) -> None:
    """Tumbling 5,000: [0, 5000) holds 4,999; 5,000 starts the next window."""
    assert spans(TimeWindows.of_size_with_no_grace(5000).windows_for(timestamp)) == expected


@pytest.mark.parametrize(("timestamp", "expected"), [
    (7000, [(3000, 8000), (6000, 11000)]),
    (4999, [(0, 5000), (3000, 8000)]),
    (5000, [(3000, 8000)]),
    (12000, [(9000, 14000), (12000, 17000)]),
    (0, [(0, 5000)]),
])
def test_hopping_windows(timestamp: int, expected: list[tuple[int, int]]) -> None:
    """Hopping 5,000 / 3,000: a record at 7,000 is in [3000, 8000) and [6000, 11000)."""
    windows = TimeWindows.of_size_with_no_grace(5000).advance_by(3000)
    assert spans(windows.windows_for(timestamp)) == expected


@pytest.mark.parametrize("make", [
    lambda: TimeWindows.of_size_with_no_grace(0),
    lambda: TimeWindows.of_size_and_grace(10, -1),
    lambda: TimeWindows.of_size_with_no_grace(10).advance_by(11),
    lambda: TimeWindows.of_size_with_no_grace(10).advance_by(0),
])
def test_bad_windows_are_rejected(make) -> None:
    """Sizes > 0, grace ≥ 0 and 0 < advance ≤ size, as Kafka's factories check."""
    with pytest.raises(TopologyError):
        make()


def windowed_counts(windows: TimeWindows):
    builder = StreamsBuilder()
    (builder.stream("clicks").group_by_key()
     .windowed_by(windows).count(Materialized.as_("clicks-per-window"))
     .to_stream().to("counts"))
    driver = TopologyTestDriver(builder.build(), {"application.id": "clicks"})
    return driver, driver.create_input_topic("clicks"), driver.create_output_topic("counts")


def test_hopping_count_updates_both_windows() -> None:
    """A record at 7,000 updates the counts of [3000, 8000) and [6000, 11000), in that order."""
    driver, clicks, counts = windowed_counts(
        TimeWindows.of_size_with_no_grace(5000).advance_by(3000))
    clicks.pipe_input("u", "x", 4000)
    clicks.pipe_input("u", "x", 7000)
    assert counts.read_key_values_to_list() == [
        (Windowed("u", TimeWindow(0, 5000)), 1),
        (Windowed("u", TimeWindow(3000, 8000)), 1),
        (Windowed("u", TimeWindow(3000, 8000)), 2),
        (Windowed("u", TimeWindow(6000, 11000)), 1),
    ]
    store = driver.get_window_store("clicks-per-window")
    assert store.fetch("u", 3000) == 2
    assert store.fetch_range("u", 0, 6000) == [(3000, 2), (6000, 1)]
    assert str(Windowed("u", TimeWindow(3000, 8000))) == "[u@3000/8000]"


def test_grace_accepts_late_records_until_the_window_closes() -> None:
    """Tumbling 5,000 with grace 1,000: at stream time 5,999 a record for [0, 5000) still
    counts; at 6,000 the window has closed and the record is dropped and counted."""
    driver, clicks, counts = windowed_counts(TimeWindows.of_size_and_grace(5000, 1000))
    clicks.pipe_input("u", "x", 1000)
    clicks.pipe_input("u", "x", 5999)
    clicks.pipe_input("u", "x", 4000)  # stream time 5999: 5000 > 5999 - 1000, accepted
    clicks.pipe_input("u", "x", 6000)
    clicks.pipe_input("u", "x", 4500)  # stream time 6000: 5000 > 5000 fails, dropped
    assert counts.read_key_values_to_list() == [
        (Windowed("u", TimeWindow(0, 5000)), 1),
        (Windowed("u", TimeWindow(5000, 10000)), 1),
        (Windowed("u", TimeWindow(0, 5000)), 2),
        (Windowed("u", TimeWindow(5000, 10000)), 2),
    ]
    assert driver.metrics()["dropped-records-total"] == 1


def test_no_grace_drops_a_record_for_an_ended_window() -> None:
    """With no grace, once stream time reaches a window's end, records for it are dropped; a
    hopping record is dropped only for the windows that closed, counted once per closed window
    (``AbstractKStreamTimeWindowAggregateProcessor.logSkippedRecordForExpiredWindow``)."""
    driver, clicks, counts = windowed_counts(
        TimeWindows.of_size_with_no_grace(5000).advance_by(3000))
    clicks.pipe_input("u", "x", 8000)
    counts.read_records_to_list()
    clicks.pipe_input("u", "x", 4999)  # [0,5000) and [3000,8000) both closed at 8000
    clicks.pipe_input("u", "x", 7999)  # [3000,8000) closed; [6000,11000) open
    assert counts.read_key_values_to_list() == [(Windowed("u", TimeWindow(6000, 11000)), 2)]
    assert driver.metrics()["dropped-records-total"] == 3


def test_window_store_forgets_windows_past_retention() -> None:
    """The DSL's window store keeps size + grace: older windows expire (``InMemoryWindowStore``)."""
    driver, clicks, _ = windowed_counts(TimeWindows.of_size_and_grace(1000, 500))
    clicks.pipe_input("u", "x", 100)
    assert driver.get_window_store("clicks-per-window").fetch("u", 0) == 1
    clicks.pipe_input("u", "x", 1600)  # window start 1000: 0 > 1000 - 1500, still kept
    assert driver.get_window_store("clicks-per-window").fetch("u", 0) == 1
    clicks.pipe_input("u", "x", 2600)  # window start 2000: 0 <= 2000 - 1500, expired
    assert driver.get_window_store("clicks-per-window").fetch("u", 0) is None


def test_windowed_counts_are_per_key() -> None:
    """Windows of different keys are counted apart; a None key is dropped."""
    driver, clicks, counts = windowed_counts(TimeWindows.of_size_with_no_grace(10))
    clicks.pipe_input("a", 1, 1)
    clicks.pipe_input("b", 1, 2)
    clicks.pipe_input(None, 1, 3)
    clicks.pipe_input("a", 1, 4)
    assert counts.read_key_values_to_list() == [
        (Windowed("a", TimeWindow(0, 10)), 1), (Windowed("b", TimeWindow(0, 10)), 1),
        (Windowed("a", TimeWindow(0, 10)), 2)]
    assert driver.metrics()["dropped-records-total"] == 1
