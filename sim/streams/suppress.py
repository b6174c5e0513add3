"""``suppress``: hold a KTable's updates back and emit fewer of them (KIP-328).

Mirrors ``Suppressed``, ``Suppressed.BufferConfig`` and ``KTableSuppressProcessorSupplier``.

- ``Suppressed.until_window_closes(BufferConfig.unbounded())`` emits each window's **final**
  result once, when stream time reaches the window's end plus its grace (for sessions, end +
  gap + grace). Deletes are dropped.
- ``Suppressed.until_time_limit(ms, buffer_config)`` emits a key's latest update ``ms`` after its
  first buffered update; later updates do not restart the timer.

Stream time here is the largest timestamp the suppress node has seen. Buffered records leave in
time order (ties by key). A bounded buffer (``max_records``) emits early when full, or stops the
application (``shut_down_when_full``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.errors import StreamsError, TopologyError
from sim.streams.operations import Change
from sim.streams.processor import Processor, Record
from sim.streams.windows import Windowed


@dataclass(frozen=True)
class BufferConfig:
    """How much a suppress buffer may hold and what happens when it is full."""

    record_limit: int | None = None
    strict: bool = False

    @classmethod
    def unbounded(cls) -> BufferConfig:
        """No limit (a strict buffer: never emits early)."""
        return cls(None, True)

    @classmethod
    def max_records(cls, limit: int) -> BufferConfig:
        """At most ``limit`` keys; emits the oldest early when over."""
        if not isinstance(limit, int) or limit < 0:
            raise TopologyError(f"max records must be >= 0, got {limit!r}.")
        return cls(limit, False)

    def shut_down_when_full(self) -> BufferConfig:
        """Fail instead of emitting early (a strict buffer)."""
        return BufferConfig(self.record_limit, True)


@dataclass(frozen=True)
class Suppressed:
    """What a ``KTable.suppress`` holds back; build with the two factories."""

    final_results: bool
    time_to_wait_ms: int
    buffer_config: BufferConfig
    name: str | None = None

    @classmethod
    def until_window_closes(cls, buffer_config: BufferConfig) -> Suppressed:
        if not isinstance(buffer_config, BufferConfig) or not buffer_config.strict:
            raise TopologyError("until_window_closes needs a strict buffer: "
                                "BufferConfig.unbounded() or ....shut_down_when_full().")
        return cls(True, 0, buffer_config)

    @classmethod
    def until_time_limit(cls, time_to_wait_ms: int, buffer_config: BufferConfig) -> Suppressed:
        if not isinstance(time_to_wait_ms, int) or time_to_wait_ms < 0:
            raise TopologyError(f"time to wait must be >= 0 ms, got {time_to_wait_ms!r}.")
        if not isinstance(buffer_config, BufferConfig):
            raise TopologyError(f"buffer_config must be a BufferConfig, got {buffer_config!r}.")
        return cls(False, time_to_wait_ms, buffer_config)

    def with_name(self, name: str) -> Suppressed:
        return Suppressed(self.final_results, self.time_to_wait_ms, self.buffer_config, name)


def _tie(key: Any) -> tuple[Any, ...]:
    if isinstance(key, Windowed):
        return (str(key.key), key.window.start_ms)
    return (str(key),)


class KTableSuppress(Processor):
    """The suppress buffer: key → (buffer time, latest record), released by stream time."""

    def __init__(self, suppress_ms: int, final_results: bool, buffer_config: BufferConfig,
                 node_name: str) -> None:
        self.suppress_ms = suppress_ms
        self.final_results = final_results
        self.buffer_config = buffer_config
        self.node_name = node_name
        self.buffer: dict[Any, tuple[int, Record]] = {}
        self.observed_stream_time = -(2**63)

    def process(self, record: Record) -> None:
        self.observed_stream_time = max(self.observed_stream_time, record.timestamp)
        if self.final_results:
            time = record.key.window.end_ms
        else:
            time = record.timestamp
        previous = self.buffer.get(record.key)
        self.buffer[record.key] = (time if previous is None else previous[0], record)
        expiry = self.observed_stream_time - self.suppress_ms
        while self.buffer and self._oldest()[1][0] <= expiry:
            self._emit(self._oldest()[0])
        limit = self.buffer_config.record_limit
        if limit is not None and len(self.buffer) > limit:
            if self.buffer_config.strict:
                raise StreamsError(f"{self.node_name} buffer exceeded its max capacity. "
                                   f"Currently [{len(self.buffer)}/{limit}] records.")
            while len(self.buffer) > limit:
                self._emit(self._oldest()[0])

    def _oldest(self) -> tuple[Any, tuple[int, Record]]:
        return min(self.buffer.items(), key=lambda item: (item[1][0], _tie(item[0])))

    def _emit(self, key: Any) -> None:
        _, record = self.buffer.pop(key)
        change: Change = record.value
        if change.new_value is not None or not self.final_results:
            self.context.forward(record)
