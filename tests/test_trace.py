"""Specification of the event trace: typed kinds, emission order, and frames per kind or overall."""

from __future__ import annotations

import math
from unittest import mock

import pandas as pd
import pytest

from sim import trace as events
from sim.trace import BASE_COLUMNS, KINDS, Trace


def sample_trace() -> Trace:
    """Five events of three kinds, interleaved."""
    trace = Trace()
    trace.emit(events.REQUEST_SENT, 1.0, "producer", 0, 2, 30, 4000)
    trace.emit(events.LOG_APPEND, 1.5, "broker-0", 0, "orders", 3, 0, 30, 4000, "producer")
    trace.emit(events.STICKY_SWITCH, 1.5, "producer", "orders", 5, 3)
    trace.emit(events.LOG_APPEND, 1.6, "broker-0", 0, "orders", 1, 0, 12, 1500, "producer")
    trace.emit(events.REQUEST_COMPLETED, 2.0, "producer", 0, 2, 42, 1.0)
    return trace


def test_every_kind_is_registered_under_its_name() -> None:
    """KINDS maps each kind's name to the kind, and field names never clash with base columns."""
    for name, kind in KINDS.items():
        assert kind.name == name
        assert not set(kind.fields) & set(BASE_COLUMNS), name
        assert len(set(kind.fields)) == len(kind.fields), name
        assert kind.doc


def test_to_frame_keeps_emission_order_across_kinds() -> None:
    """The whole-trace frame lists events in the order they were emitted, whatever their kind."""
    frame = sample_trace().to_frame()
    assert frame["kind"].tolist() == [
        "request.sent", "log.append", "sticky.switch", "log.append", "request.completed",
    ]
    assert frame["seq"].tolist() == [0, 1, 2, 3, 4]
    assert frame["time_ms"].tolist() == [1.0, 1.5, 1.5, 1.6, 2.0]
    assert list(frame.index) == [0, 1, 2, 3, 4]


def test_to_frame_leaves_fields_a_kind_lacks_empty() -> None:
    """Each row carries its own kind's fields; fields of other kinds are missing (NaN)."""
    frame = sample_trace().to_frame()
    assert list(frame.columns[: len(BASE_COLUMNS)]) == list(BASE_COLUMNS)
    all_fields = {f for kind in KINDS.values() if kind.name in set(frame["kind"])
                  for f in kind.fields}
    assert set(frame.columns) == set(BASE_COLUMNS) | all_fields
    switch = frame.iloc[2]
    assert (switch["topic"], switch["partition"], switch["previous"]) == ("orders", 5, 3)
    assert pd.isna(switch["node"])
    assert pd.isna(switch["bytes"])
    append = frame.iloc[3]
    assert (append["node"], append["partition"], append["records"]) == (0, 1, 12)
    assert pd.isna(append["previous"])


def test_frame_of_one_kind_has_its_fields_as_columns() -> None:
    """frame(kind) has the base columns then the kind's fields, one row per event of it."""
    frame = sample_trace().frame(events.LOG_APPEND)
    assert list(frame.columns) == [*BASE_COLUMNS, *events.LOG_APPEND.fields]
    assert frame["seq"].tolist() == [1, 3]
    assert frame["partition"].tolist() == [3, 1]
    assert frame["producer"].tolist() == ["producer", "producer"]
    assert set(frame["kind"]) == {"log.append"}


def test_count_and_len() -> None:
    """len() counts every event; count(kind) only that kind's."""
    trace = sample_trace()
    assert len(trace) == 5
    assert trace.count(events.LOG_APPEND) == 2
    assert trace.count(events.FAULT) == 0


def test_counts_stay_exact_across_chunks() -> None:
    """Counts, frames and order stay exact when a kind's events fill several chunks (values
    become typed arrays every ``CHUNK`` events) while another kind's do not."""
    trace = Trace()
    n = 2 * events.CHUNK + 7
    for i in range(n):
        trace.emit(events.LOG_APPEND, float(i), "broker-0", 0, "t", 0, i, 1, 70, 5)
        if i % 1000 == 0:
            trace.emit(events.FAULT, float(i), "faults", 1, "slow_broker", f"at {i}")
        if i == events.CHUNK + 1:  # a frame asked for between chunks
            assert len(trace.frame(events.LOG_APPEND)) == events.CHUNK + 2
    faults = n // 1000 + 1
    assert (trace.count(events.LOG_APPEND), trace.count(events.FAULT)) == (n, faults)
    assert len(trace) == n + faults
    appends = trace.frame(events.LOG_APPEND)
    assert appends["offset"].tolist() == list(range(n))
    assert trace.to_frame()["seq"].tolist() == list(range(n + faults))


def test_an_event_with_the_wrong_number_of_values_is_refused_and_not_counted() -> None:
    """Values must match the kind's fields; a refused event leaves the trace as it was."""
    trace = sample_trace()
    for values in ((0, 2, 30), (0, 2, 30, 4000, 5)):
        with pytest.raises(ValueError, match=r"request\.sent"):
            trace.emit(events.REQUEST_SENT, 3.0, "producer", *values)
    with pytest.raises(ValueError, match="fault"):  # a kind's first event
        trace.emit(events.FAULT, 3.0, "faults", 1)
    assert (len(trace), trace.count(events.REQUEST_SENT), trace.count(events.FAULT)) == (5, 1, 0)
    trace.emit(events.REQUEST_SENT, 3.0, "producer", 1, 1, 1, 1)
    assert trace.to_frame()["seq"].tolist() == [0, 1, 2, 3, 4, 5]


def test_tail_returns_the_last_events() -> None:
    """tail(n) is the last n events in emission order."""
    tail = sample_trace().tail(2)
    assert tail["seq"].tolist() == [3, 4]


@pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))
def test_empty_frame_of_a_kind_still_has_its_columns(kind: events.EventKind) -> None:
    """With no events of a kind, its frame is empty but has the right columns."""
    frame = Trace().frame(kind)
    assert frame.empty
    assert list(frame.columns) == [*BASE_COLUMNS, *kind.fields]


def test_empty_trace() -> None:
    """An empty trace has no events; its frame is empty with the base columns."""
    trace = Trace()
    assert len(trace) == 0
    frame = trace.to_frame()
    assert frame.empty
    assert list(frame.columns) == list(BASE_COLUMNS)
    assert trace.tail().empty


def test_values_are_stored_as_given() -> None:
    """Emitted values come back unchanged (no rounding of times, no casting of names)."""
    trace = Trace()
    trace.emit(events.FAULT, math.pi, "faults", 2, "slow_broker", "factor=30")
    row = trace.frame(events.FAULT).iloc[0]
    assert row["time_ms"] == math.pi
    assert (row["component"], row["node"], row["fault"], row["detail"]) == (
        "faults", 2, "slow_broker", "factor=30")


def test_other_modules_register_their_kinds() -> None:
    """register() adds a kind once; the same declaration again is fine, other fields are not."""
    kind = events.EventKind("lesson.note", ("text",), "a note")
    with mock.patch.dict(KINDS):
        assert events.register(kind) is kind
        assert events.register(events.EventKind("lesson.note", ("text",), "a note")) is not None
        with pytest.raises(ValueError, match="already declared"):
            events.register(events.EventKind("lesson.note", ("other",), "a note"))
        trace = Trace()
        trace.emit(kind, 1.0, "teacher", "hello")
        trace.emit(events.FAULT, 2.0, "faults", 0, "slow_broker", "factor=2")
        frame = trace.to_frame()
        assert frame["kind"].tolist() == ["lesson.note", "fault"]
        assert frame.loc[0, "text"] == "hello"
    assert "lesson.note" not in KINDS


def test_built_in_kinds_cannot_be_redeclared_differently() -> None:
    """A module cannot change the fields of a kind the producer already emits."""
    with mock.patch.dict(KINDS), pytest.raises(ValueError, match=r"log\.append"):
        events.register(events.EventKind("log.append", ("node",), "other"))
