"""The trace's frames are the same whatever the storage: pinned per built-in scenario, and equal
to building them from one tuple per event (``ReferenceTrace``, the original implementation) for
any mix of value types."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import trace as events
from sim.trace import BASE_COLUMNS, KINDS, EventKind, Trace
from tests.trace_fingerprints import (
    FINGERPRINTS,
    fingerprint,
    pinned_names,
    scenario_fingerprints,
)

PINNED = json.loads(FINGERPRINTS.read_text())


class ReferenceTrace:
    """The trace as first written: one tuple per event, frames built by pandas from the rows."""

    def __init__(self) -> None:
        self._rows: dict[str, list[tuple[Any, ...]]] = {}
        self._kinds: dict[str, EventKind] = {}
        self._seq = 0

    def emit(self, kind: EventKind, time_ms: float, component: str, *values: Any) -> None:
        self._rows.setdefault(kind.name, []).append((self._seq, time_ms, component, kind.name,
                                                     *values))
        self._kinds[kind.name] = kind
        self._seq += 1

    def frame(self, kind: EventKind) -> pd.DataFrame:
        return pd.DataFrame(self._rows.get(kind.name, []), columns=[*BASE_COLUMNS, *kind.fields])

    def to_frame(self) -> pd.DataFrame:
        parts = [pd.DataFrame(rows, columns=[*BASE_COLUMNS, *self._kinds[name].fields])
                 for name, rows in self._rows.items()]
        if not parts:
            return pd.DataFrame(columns=list(BASE_COLUMNS))
        integer = {column for part in parts for column in part.columns
                   if pd.api.types.is_integer_dtype(part[column])}
        integer -= {column for part in parts for column in part.columns
                    if not pd.api.types.is_integer_dtype(part[column])}
        frame = pd.concat(parts, ignore_index=True).sort_values("seq", kind="stable")
        frame = frame.reset_index(drop=True)
        partial = {column for column in integer if any(column not in part for part in parts)}
        return frame.astype({column: "Int64" for column in partial})


@pytest.mark.slow
@pytest.mark.parametrize("name", pinned_names())
def test_every_built_in_scenario_keeps_its_trace_frames(name: str) -> None:
    """Each built-in scenario's whole frame, tail and per-kind frames match the pinned ones."""
    pinned = PINNED[name]
    now = scenario_fingerprints(name)
    assert now["to_frame"] == pinned["to_frame"]
    assert now["tail"] == pinned["tail"]
    assert now["kinds"] == pinned["kinds"]


def test_every_built_in_scenario_is_pinned() -> None:
    """The fingerprint file covers exactly the built-in scenarios with a reproducible trace."""
    assert sorted(PINNED) == sorted(pinned_names())
    assert len(PINNED) >= 27


A = EventKind("test.a", ("node", "topic", "size"), "a test kind")
B = EventKind("test.b", ("node", "error", "ratio"), "another")
C = EventKind("test.c", ("topic", "flag"), "a third")

VALUES = st.one_of(
    st.integers(-5, 5), st.integers(2**53 - 2, 2**53 + 2), st.sampled_from([2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=False, width=64), st.sampled_from(["x", "y", ""]),
    st.none(), st.booleans(), st.just(np.int64(7)), st.just(np.float64(0.5)),
    st.tuples(st.integers(0, 3)))
TYPED = {"int": st.integers(-(2**40), 2**40), "float": st.floats(-1e6, 1e6),
         "str": st.sampled_from(["orders", "payments", "NOT_LEADER"]),
         "str_or_none": st.one_of(st.none(), st.sampled_from(["a", "b"]))}


@st.composite
def emissions(draw: st.DrawFn, mixed: bool) -> list[tuple[EventKind, float, str, tuple[Any, ...]]]:
    """Events of three kinds, each field either one typed strategy or anything (``mixed``)."""
    field_values = {}
    for kind in (A, B, C):
        for f in kind.fields:
            if mixed and draw(st.booleans()):
                field_values[kind.name, f] = VALUES
            else:
                field_values[kind.name, f] = TYPED[draw(st.sampled_from(sorted(TYPED)))]
    out = []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from([A, B, C]))
        time_ms = draw(st.one_of(st.floats(0, 1e6), st.integers(0, 1000))) if mixed else \
            draw(st.floats(0, 1e6))
        component = draw(st.sampled_from(["producer", "broker-0", "faults"]))
        out.append((kind, time_ms, component,
                    tuple(draw(field_values[kind.name, f]) for f in kind.fields)))
    return out


def assert_same_frame(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same columns, dtypes, index and values (value types included)."""
    assert fingerprint(got) == fingerprint(want)
    pd.testing.assert_frame_equal(got, want, check_index_type=False)


def check_against_reference(batch: list[tuple[EventKind, float, str, tuple[Any, ...]]],
                            chunk: int) -> None:
    trace, reference = Trace(), ReferenceTrace()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(events, "CHUNK", chunk)
        for kind, time_ms, component, values in batch:
            trace.emit(kind, time_ms, component, *values)
            reference.emit(kind, time_ms, component, *values)
        for kind in (A, B, C):
            assert_same_frame(trace.frame(kind), reference.frame(kind))
        try:
            whole = reference.to_frame()
        except (TypeError, ValueError) as error:  # pandas cannot stack these values at all
            with pytest.raises(type(error)):
                trace.to_frame()
            return
        assert_same_frame(trace.to_frame(), whole)
        for n in (0, 3, -2):
            assert_same_frame(trace.tail(n), whole.tail(n))
            assert_same_frame(trace.head(n), whole.head(n))


@settings(max_examples=40, deadline=None)
@given(emissions(mixed=False), st.sampled_from([1, 2, 4096]))
def test_typed_fields_give_the_frames_of_row_tuples(batch: list[Any], chunk: int) -> None:
    """Ints, floats and strings (with None): frames equal the ones built from row tuples."""
    check_against_reference(batch, chunk)


@settings(max_examples=40, deadline=None)
@given(emissions(mixed=True), st.sampled_from([1, 3, 4096]))
def test_any_values_give_the_frames_of_row_tuples(batch: list[Any], chunk: int) -> None:
    """Mixed types, booleans, huge integers, tuples: still the frames of row tuples."""
    check_against_reference(batch, chunk)


def test_emit_checks_the_number_of_values() -> None:
    """An event with fewer or more values than its kind's fields is refused when emitted."""
    trace = Trace()
    with pytest.raises(ValueError, match=r"fault.*3 values|fault"):
        trace.emit(events.FAULT, 1.0, "faults", 0, "slow_broker")
    assert len(trace) == 0


def test_tail_does_not_build_the_whole_frame() -> None:
    """tail() and head() build frames of their rows only, even for a long trace."""
    trace = Trace()
    for i in range(20_000):
        trace.emit(events.REQUEST_SENT, float(i), "producer", 0, 1, 10, 1000)
        trace.emit(events.LOG_APPEND, i + 0.5, "broker-0", 0, "orders", i % 3, i, 10, 1000,
                   "producer")
    tail = trace.tail(3)
    assert list(tail.index) == [39_997, 39_998, 39_999]
    assert tail["seq"].tolist() == [39_997, 39_998, 39_999]
    assert tail["partition"].isna().tolist() == [False, True, False]
    assert tail["partition"].dropna().tolist() == [19_998 % 3, 19_999 % 3]
    assert trace.head(2)["kind"].tolist() == ["request.sent", "log.append"]
    assert str(tail["partition"].dtype) == "Int64"


def test_kinds_registered_elsewhere_still_work() -> None:
    """Kinds from other modules (consumers) are columns like the producer's."""
    assert set(KINDS) >= {"log.append", "fault"}
