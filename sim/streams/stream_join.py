"""Stream–stream joins: ``KStreamKStreamJoin`` and the shared outer-join store.

Mirrors ``KStreamKStreamJoin`` / ``KStreamKStreamJoinLeftSide`` / ``...RightSide`` and the
``TimeTracker`` of ``KStreamImplJoin`` (Kafka 4.0, the "spurious results" fix of KAFKA-10847,
on for every ``JoinWindows`` built by ``of_time_difference_*``).

Each side's join processor looks a new record up in the other side's window store and forwards
``joiner(left_value, right_value)`` for every match within the window. In a left or outer join
a record *without* a match is not emitted at once: it waits in the **outer-join store**
(``KSTREAM-OUTERSHARED-<n>-store``), keyed by (timestamp, side, key). A later match removes it
(no spurious ``(value, None)``); once its window has closed — stream time passed its timestamp
plus the window's reach plus the grace — it is emitted with None for the missing side, in
timestamp order. Both sides share one stream time per task (``TimeTracker``), so a record on
either side can close the other side's windows. In a running application the search is
throttled by wall-clock time (at most once per ``EMIT_INTERVAL_MS``); the test driver turns the
throttle off, as Kafka's does. A record already too late to find a future match (its window
end is before stream time) is emitted at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sim.streams.processor import Processor, Record
from sim.streams.stores import KeyValueStore, WindowStore, key_order

EMIT_INTERVAL_CONFIG = "__emit.interval.ms.kstreams.outer.join.spurious.results.fix__"
"""Kafka's internal config (``StreamsConfig.InternalConfig``) for the throttle below."""
EMIT_INTERVAL_MS = 1000
"""Its default: non-joined records are looked for at most once per second of wall-clock time.
Kafka's ``TopologyTestDriver`` sets it to 0 (KAFKA PR 15660), so the driver never throttles."""

_LONG_MAX = 2**63 - 1
NO_TIMESTAMP = -1


def _java_long(value: int) -> int:
    """Wrap to a signed 64-bit long, as Java's ``long`` arithmetic does (``MAX_VALUE + 1``)."""
    return (value + 2**63) % 2**64 - 2**63


class TimeTracker:
    """Stream time and the earliest waiting record, shared by both sides of one join in one
    task (``KStreamImplJoin.TimeTracker``)."""

    def __init__(self) -> None:
        self.stream_time = NO_TIMESTAMP
        self.min_time = _LONG_MAX
        self.next_time_to_emit = 0

    def advance_stream_time(self, timestamp: int) -> None:
        self.stream_time = max(self.stream_time, timestamp)

    def update_min_time(self, timestamp: int) -> None:
        self.min_time = min(self.min_time, timestamp)


@dataclass
class TimeTrackerSupplier:
    """One :class:`TimeTracker` per task, shared by the join's two processors (KAFKA-14862)."""

    trackers: dict[str, TimeTracker] = field(default_factory=dict)

    def get(self, task_id: str) -> TimeTracker:
        return self.trackers.setdefault(task_id, TimeTracker())

    def remove(self, task_id: str) -> None:
        self.trackers.pop(task_id, None)


@dataclass(frozen=True)
class TimestampedKeyAndJoinSide:
    """Key of the outer-join store (``TimestampedKeyAndJoinSide``). Kafka serializes it as
    timestamp, side byte (right 0, left 1), key, so the store iterates by timestamp, then right
    before left, then key."""

    timestamp: int
    is_left: bool
    key: Any

    def __lt__(self, other: TimestampedKeyAndJoinSide) -> bool:
        return ((self.timestamp, self.is_left, key_order(self.key))
                < (other.timestamp, other.is_left, key_order(other.key)))


class KStreamKStreamJoin(Processor):
    """One side of a stream–stream join.

    Args:
        other_store: the other side's window store.
        before_ms / after_ms: how much earlier / later the other side's record may be, seen
            from this side (the right side swaps the JoinWindows' before and after).
        windows: the JoinWindows (its before/after/grace decide when a waiting record's window
            has closed).
        joiner: the user's ``joiner(left_value, right_value)``.
        is_left: whether this processor reads the join's left stream.
        outer: whether this side's unmatched records are emitted (left side of a left join, both
            sides of an outer join).
        outer_store: the shared outer-join store (None for an inner join).
        trackers: the join's shared :class:`TimeTrackerSupplier`.
    """

    def __init__(self, other_store: str, before_ms: int, after_ms: int, windows: Any,
                 joiner: Callable[[Any, Any], Any], is_left: bool, outer: bool = False,
                 outer_store: str | None = None,
                 trackers: TimeTrackerSupplier | None = None) -> None:
        self.other_store = other_store
        self.before_ms = before_ms
        self.after_ms = after_ms
        self.windows = windows
        self.joiner = joiner
        self.is_left = is_left
        self.outer = outer
        self.outer_store_name = outer_store
        self.trackers = trackers if trackers is not None else TimeTrackerSupplier()

    def init(self, context: Any) -> None:
        super().init(context)
        self.store: WindowStore = context.get_state_store(self.other_store)
        self.outer_store: KeyValueStore | None = (
            context.get_state_store(self.outer_store_name) if self.outer_store_name else None)
        self.tracker = self.trackers.get(context.task_id)

    def close(self) -> None:
        self.trackers.remove(self.context.task_id)

    def _join(self, this_value: Any, other_value: Any) -> Any:
        if self.is_left:
            return self.joiner(this_value, other_value)
        return self.joiner(other_value, this_value)

    def process(self, record: Record) -> None:
        t = record.timestamp
        tracker = self.tracker
        tracker.advance_stream_time(t)
        if self.outer and record.key is None and record.value is not None:
            self.context.forward(record.with_value(self._join(record.value, None)))
            return
        if record.key is None or record.value is None:
            self.context.record_dropped()  # type: ignore[attr-defined]
            return
        if t == tracker.stream_time and self.outer_store is not None:
            self._emit_non_joined(record)
        time_from, time_to = max(0, t - self.before_ms), max(0, t + self.after_ms)
        matches = self.store.fetch_range(record.key, time_from, time_to)
        for other_t, other in matches:
            if self.outer_store is not None:  # the other record found its match
                self.outer_store.delete(
                    TimestampedKeyAndJoinSide(other_t, not self.is_left, record.key))
            self.context.forward(record.with_value(self._join(record.value, other))
                                 .with_timestamp(max(t, other_t)))
        if self.outer and not matches:
            if self.outer_store is None or time_to < tracker.stream_time:
                self.context.forward(record.with_value(self._join(record.value, None)))
            else:
                tracker.update_min_time(t)
                key = TimestampedKeyAndJoinSide(t, self.is_left, record.key)
                waiting = self.outer_store.get(key) or []
                self.outer_store.put(key, [*waiting, record.value])

    def _window_open(self, key: TimestampedKeyAndJoinSide) -> bool:
        """A waiting record's window is open while min time + its reach + grace ≥ stream time;
        a left record looks ``after`` ahead, a right one ``before``."""
        reach = self.windows.after_ms if key.is_left else self.windows.before_ms
        tracker = self.tracker
        return _java_long(tracker.min_time + reach + self.windows.grace_ms) >= tracker.stream_time

    def _emit_non_joined(self, record: Record) -> None:
        """``emitNonJoinedOuterRecords``: forward, oldest first, every waiting record whose
        window has closed, and delete it."""
        tracker = self.tracker
        store = self.outer_store
        assert store is not None
        if _java_long(tracker.min_time + self.after_ms + self.windows.grace_ms) \
                >= tracker.stream_time:
            return  # nothing can have closed yet
        now = self.context.current_system_time_ms()
        if now < tracker.next_time_to_emit:
            return  # throttled by wall-clock time
        configs = getattr(self.context, "app_configs", None) or {}
        tracker.next_time_to_emit = now + int(configs.get(EMIT_INTERVAL_CONFIG, EMIT_INTERVAL_MS))
        tracker.min_time = _LONG_MAX
        left_open = right_open = False
        for key, values in store.all():
            tracker.min_time = key.timestamp
            if left_open and right_open:
                break
            if self._window_open(key):
                if key.is_left:
                    left_open = True
                else:
                    right_open = True
                continue
            for value in values:
                joined = self.joiner(value, None) if key.is_left else self.joiner(None, value)
                self.context.forward(record.with_key(key.key).with_value(joined)
                                     .with_timestamp(key.timestamp))
            store.delete(key)
