"""Windows: ``TimeWindows`` (tumbling, hopping), ``SlidingWindows``, ``SessionWindows``,
``JoinWindows``, and the ``Windowed`` keys of windowed results.

Mirrors ``kstream.TimeWindows`` in Kafka 4.0. Windows are **epoch-aligned** half-open intervals
``[start, start + size)`` whose starts are multiples of the advance; a tumbling window's advance
is its size. A record belongs to every window that contains its timestamp. Worked example (size
5,000, advance 3,000): a record at 7,000 falls in [3,000, 8,000) and [6,000, 11,000).

The **grace period** says how long after a window ends it still accepts out-of-order records: a
window closes once stream time ≥ end + grace, and later records for it are dropped and counted in
``dropped-records``. :class:`SessionWindows` instead grow one window per burst of activity.
Kafka 4.0 removed ``TimeWindows.of(size)`` and its 24 h default grace; the
grace is now explicit (``of_size_with_no_grace`` = 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.errors import TopologyError


@dataclass(frozen=True, order=True)
class TimeWindow:
    """The interval [start_ms, end_ms) (``TimeWindow``)."""

    start_ms: int
    end_ms: int

    def __str__(self) -> str:
        return f"[{self.start_ms}, {self.end_ms})"


@dataclass(frozen=True, order=True)
class SessionWindow:
    """A session [start_ms, end_ms], both ends inclusive: its first and last record's times."""

    start_ms: int
    end_ms: int

    def __str__(self) -> str:
        return f"[{self.start_ms}, {self.end_ms}]"


@dataclass(frozen=True)
class Windowed:
    """A key and the window it was aggregated in: the key of a windowed KTable (``Windowed``)."""

    key: Any
    window: TimeWindow | SessionWindow

    def __str__(self) -> str:  # Kafka's Windowed.toString: "[key@start/end]"
        return f"[{self.key}@{self.window.start_ms}/{self.window.end_ms}]"


@dataclass(frozen=True)
class TimeWindows:
    """Fixed-size windows, tumbling or hopping (``TimeWindows``); build with the factories."""

    size_ms: int
    advance_ms: int
    grace_ms: int

    @classmethod
    def of_size_with_no_grace(cls, size_ms: int) -> TimeWindows:
        """Tumbling windows of ``size_ms`` that close as soon as stream time passes their end."""
        return cls.of_size_and_grace(size_ms, 0)

    @classmethod
    def of_size_and_grace(cls, size_ms: int, grace_ms: int) -> TimeWindows:
        """Tumbling windows of ``size_ms`` accepting records up to ``grace_ms`` after they end."""
        if not isinstance(size_ms, int) or size_ms <= 0:
            raise TopologyError(f"Window size (sizeMs) must be larger than zero, got {size_ms!r}.")
        if not isinstance(grace_ms, int) or grace_ms < 0:
            raise TopologyError(f"Grace period must not be negative, got {grace_ms!r}.")
        return cls(size_ms, size_ms, grace_ms)

    def advance_by(self, advance_ms: int) -> TimeWindows:
        """Hopping windows: a new window starts every ``advance_ms`` (0 < advance ≤ size)."""
        if not isinstance(advance_ms, int) or not 0 < advance_ms <= self.size_ms:
            raise TopologyError(
                "Window advancement interval should be more than zero and less than window "
                f"duration which is {self.size_ms} ms, but given advancement interval is: "
                f"{advance_ms!r} ms")
        return TimeWindows(self.size_ms, advance_ms, self.grace_ms)

    def windows_for(self, timestamp: int) -> list[TimeWindow]:
        """Every window containing ``timestamp``, earliest first (``TimeWindows.windowsFor``).

        First start = ``max(0, timestamp - size + advance)`` rounded down to a multiple of the
        advance; then one window per advance while start ≤ timestamp.
        """
        start = max(0, timestamp - self.size_ms + self.advance_ms)
        start -= start % self.advance_ms
        windows = []
        while start <= timestamp:
            windows.append(TimeWindow(start, start + self.size_ms))
            start += self.advance_ms
        return windows


@dataclass(frozen=True)
class SessionWindows:
    """Sessions: a key's records no more than ``gap_ms`` apart form one window (``SessionWindows``).

    A record within the gap of existing sessions merges them into one. Javadoc example (gap 5):
    A@10, A@12, A@20 give sessions [10, 12] and [20, 20]; A@16 then merges them into [10, 20]. A
    session closes once stream time > its end + gap + grace.
    """

    gap_ms: int
    grace_ms: int

    @classmethod
    def of_inactivity_gap_with_no_grace(cls, gap_ms: int) -> SessionWindows:
        return cls.of_inactivity_gap_and_grace(gap_ms, 0)

    @classmethod
    def of_inactivity_gap_and_grace(cls, gap_ms: int, grace_ms: int) -> SessionWindows:
        if not isinstance(gap_ms, int) or gap_ms <= 0:
            raise TopologyError(f"Gap time cannot be zero or negative, got {gap_ms!r}.")
        if not isinstance(grace_ms, int) or grace_ms < 0:
            raise TopologyError(f"Grace period must not be negative, got {grace_ms!r}.")
        return cls(gap_ms, grace_ms)


@dataclass(frozen=True)
class SlidingWindows:
    """Windows of fixed length that slide with the records (``SlidingWindows``).

    Each window is ``[start, start + time_difference]``, both ends inclusive, and exists only
    where it holds records: one ends at each record (its "left" window) and one starts just after
    it (its "right" window) if later records fall within the difference. Javadoc example (diff
    5,000; records at 8,000, 9,200, 12,400): [3000, 8000], [4200, 9200], [7400, 12400],
    [8001, 13001] and [9201, 14201].
    """

    time_difference_ms: int
    grace_ms: int

    @classmethod
    def of_time_difference_with_no_grace(cls, time_difference_ms: int) -> SlidingWindows:
        return cls.of_time_difference_and_grace(time_difference_ms, 0)

    @classmethod
    def of_time_difference_and_grace(cls, time_difference_ms: int, grace_ms: int
                                     ) -> SlidingWindows:
        if not isinstance(time_difference_ms, int) or time_difference_ms < 0:
            raise TopologyError(f"Window time difference must not be negative, got "
                                f"{time_difference_ms!r}.")
        if not isinstance(grace_ms, int) or grace_ms < 0:
            raise TopologyError(f"Window grace period must not be negative, got {grace_ms!r}.")
        return cls(time_difference_ms, grace_ms)


@dataclass(frozen=True)
class JoinWindows:
    """How close two records' timestamps must be to join (``JoinWindows``): the other record may
    be up to ``before_ms`` earlier and ``after_ms`` later; late records wait ``grace_ms``."""

    before_ms: int
    after_ms: int
    grace_ms: int

    @classmethod
    def of_time_difference_with_no_grace(cls, time_difference_ms: int) -> JoinWindows:
        return cls.of_time_difference_and_grace(time_difference_ms, 0)

    @classmethod
    def of_time_difference_and_grace(cls, time_difference_ms: int, grace_ms: int
                                     ) -> JoinWindows:
        if not isinstance(time_difference_ms, int) or time_difference_ms < 0:
            raise TopologyError(f"Window time difference must not be negative, got "
                                f"{time_difference_ms!r}.")
        if not isinstance(grace_ms, int) or grace_ms < 0:
            raise TopologyError(f"Grace period must not be negative, got {grace_ms!r}.")
        return cls(time_difference_ms, time_difference_ms, grace_ms)

    def before(self, before_ms: int) -> JoinWindows:
        return JoinWindows(before_ms, self.after_ms, self.grace_ms)

    def after(self, after_ms: int) -> JoinWindows:
        return JoinWindows(self.before_ms, after_ms, self.grace_ms)

    @property
    def size_ms(self) -> int:
        return self.before_ms + self.after_ms
