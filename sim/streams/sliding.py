"""``KStreamSlidingWindowAggregate``: aggregation over :class:`SlidingWindows`.

A record at ``t`` (difference ``d``) belongs to every existing window covering ``t``, and may
create up to three windows: its own left window ``[t - d, t]``, its right window
``[t + 1, t + 1 + d]`` (if a later record already falls in it) and the right window of the
previous record (if ``t`` falls in it). Windows are found by start time in
``[t - 2d, t + 1]``, latest first, as Kafka's stores iterate backwards. Records earlier than ``d``
share the window ``[0, d]``, since windows cannot start before 0. A record whose window would end
before stream time − grace is dropped and counted, per window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.streams.operations import Change, _drop
from sim.streams.processor import Processor, Record
from sim.streams.stores import ValueAndTimestamp, WindowStore
from sim.streams.windows import SlidingWindows, TimeWindow, Windowed


class KStreamSlidingWindowAggregate(Processor):
    """Sliding-window count / aggregate / reduce (``initializer`` None means reduce)."""

    def __init__(self, store_name: str, windows: SlidingWindows,
                 initializer: Callable[[], Any] | None,
                 aggregator: Callable[[Any, Any, Any], Any]) -> None:
        self.store_name = store_name
        self.windows = windows
        self.initializer = initializer
        self.aggregator = aggregator
        self.observed_stream_time = -(2**63)

    def init(self, context: Any) -> None:
        super().init(context)
        self.store: WindowStore = context.get_state_store(self.store_name)

    def _initial(self) -> Any:
        return None if self.initializer is None else self.initializer()

    def process(self, record: Record) -> None:
        if record.key is None or record.value is None:
            _drop(self)
            return
        d = self.windows.time_difference_ms
        t = record.timestamp
        self.observed_stream_time = max(self.observed_stream_time, t)
        close_time = self.observed_stream_time - self.windows.grace_ms
        if t + d < close_time:
            _drop(self)
            return
        if t < d:
            self._process_early(record, close_time)
        else:
            self._process(record, close_time)

    def _windows(self, key: Any, time_from: int, time_to: int
                 ) -> list[tuple[int, ValueAndTimestamp]]:
        return self.store.fetch_range(key, time_from, time_to)

    def _process(self, record: Record, close_time: int) -> None:
        d, t = self.windows.time_difference_ms, record.timestamp
        starts: set[int] = set()
        left_agg: ValueAndTimestamp | None = None
        right_agg: ValueAndTimestamp | None = None
        left_exists = right_exists = False
        previous: int | None = None
        for start, stored in reversed(self._windows(record.key, max(0, t - 2 * d), t + 1)):
            starts.add(start)
            end = start + d
            if start == t + 1:
                right_exists = True
            elif end > t:
                if right_agg is None:
                    right_agg = stored
                self._update(start, stored, record, close_time)
            elif end == t:
                left_exists = True
                self._update(start, stored, record, close_time)
                if stored.timestamp < t:
                    previous = stored.timestamp
                else:
                    return
            else:  # the window ends before t: the previous record's left window
                left_agg = stored
                previous = stored.timestamp
                break
        if previous is not None and previous + 1 not in starts and previous + 1 + d >= t:
            self._update(previous + 1, ValueAndTimestamp(self._initial(), t), record, close_time)
        if not left_exists:
            if previous is not None and t - d <= previous and left_agg is not None:
                seed = ValueAndTimestamp(left_agg.value, t)
                self._update(t - d, seed, record, close_time)
            else:
                self._update(t - d, ValueAndTimestamp(self._initial(), t), record, close_time)
        if not right_exists and right_agg is not None and right_agg.timestamp > t:
            self._create_right(t, right_agg, record)

    def _process_early(self, record: Record, close_time: int) -> None:
        t = record.timestamp
        combined: tuple[int, ValueAndTimestamp] | None = None
        right_agg: ValueAndTimestamp | None = None
        right_exists = False
        starts: set[int] = set()
        previous: int | None = None
        for start, stored in self._windows(record.key, 0, t + 1):
            starts.add(start)
            if start == 0:
                combined = (start, stored)
                if stored.timestamp < t:
                    previous = stored.timestamp
            elif start <= t:
                right_agg = stored
                self._update(start, stored, record, close_time)
            else:  # start == t + 1
                right_exists = True
        if right_agg is None and combined is not None and combined[1].timestamp > t:
            right_agg = combined[1]
        if not right_exists and right_agg is not None and right_agg.timestamp > t:
            self._create_right(t, right_agg, record)
        if previous is not None and previous + 1 not in starts:
            self._update(previous + 1, ValueAndTimestamp(self._initial(), t), record, close_time)
        if combined is None:
            self._update(0, ValueAndTimestamp(self._initial(), t), record, close_time)
        else:
            self._update(0, combined[1], record, close_time)

    def _create_right(self, t: int, right_agg: ValueAndTimestamp, record: Record) -> None:
        """The new record's right window starts with what the later records aggregated."""
        start = t + 1
        self.store.put(record.key, right_agg, start)
        self._forward(record, start, right_agg.value, right_agg.timestamp)

    def _update(self, start: int, current: ValueAndTimestamp, record: Record, close_time: int
                ) -> None:
        """Add the record to the window starting at ``start`` (``updateWindowAndForward``)."""
        d = self.windows.time_difference_ms
        if start + d < close_time:
            _drop(self)
            return
        old = current.value
        if old is None and self.initializer is None:
            new = record.value  # reduce: the first value is the aggregate
        else:
            new = self.aggregator(record.key, record.value, old)
        timestamp = record.timestamp if old is None else max(record.timestamp, current.timestamp)
        self.store.put(record.key, ValueAndTimestamp(new, timestamp), start)
        self._forward(record, start, new, timestamp)

    def _forward(self, record: Record, start: int, value: Any, timestamp: int) -> None:
        window = TimeWindow(start, start + self.windows.time_difference_ms)
        self.context.forward(Record(Windowed(record.key, window), Change(value), timestamp,
                                    record.headers))
