"""The Processor API: ``Record``, ``Processor``, ``ProcessorContext``, punctuation.

Mirrors ``org.apache.kafka.streams.processor.api`` (KIP-478). A processor receives one
:class:`Record` at a time in ``process(record)``, may read and write the state stores it is
connected to, and passes records on with ``context.forward(record)`` — to every child, or to one
child by name. ``context.schedule(interval_ms, type, punctuator)`` calls ``punctuator(timestamp)``
periodically: by **stream time** (the largest record timestamp the task has seen; advances only
when records arrive) or by **wall-clock time**. Learner code is plain Python: subclass
:class:`Processor` and override what you need.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.streams.stores import StateStore


@dataclass(frozen=True)
class Record:
    """A key, a value, a timestamp in ms and headers (``api.Record``); immutable, copy with
    ``with_key`` / ``with_value`` / ``with_timestamp``."""

    key: Any
    value: Any
    timestamp: int = 0
    headers: tuple[tuple[str, bytes], ...] = field(default=())

    def with_key(self, key: Any) -> Record:
        return replace(self, key=key)

    def with_value(self, value: Any) -> Record:
        return replace(self, value=value)

    def with_timestamp(self, timestamp: int) -> Record:
        return replace(self, timestamp=timestamp)


class PunctuationType(enum.Enum):
    """When a punctuator fires (``PunctuationType``)."""

    STREAM_TIME = "STREAM_TIME"
    WALL_CLOCK_TIME = "WALL_CLOCK_TIME"


Punctuator = Callable[[int], None]
"""Called with the current stream time (or wall-clock time) in ms."""


class Cancellable:
    """Returned by ``schedule``; ``cancel()`` stops the punctuation (``Cancellable``)."""

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ProcessorContext:
    """What a processor may ask of its task (``api.ProcessorContext``); the task implements it."""

    application_id: str
    task_id: str

    def forward(self, record: Record, child_name: str | None = None) -> None:
        raise NotImplementedError

    def schedule(self, interval_ms: int, type: PunctuationType,
                 punctuator: Punctuator) -> Cancellable:
        raise NotImplementedError

    def get_state_store(self, name: str) -> StateStore:
        raise NotImplementedError

    def current_stream_time_ms(self) -> int:
        raise NotImplementedError

    def current_system_time_ms(self) -> int:
        raise NotImplementedError


class Processor:
    """A node of a topology that you program yourself (``api.Processor``).

    Lifecycle: ``init(context)`` once before the first record, ``process(record)`` per record,
    ``close()`` when the task closes. The default ``init`` keeps the context as ``self.context``.
    """

    context: ProcessorContext

    def init(self, context: ProcessorContext) -> None:
        self.context = context

    def process(self, record: Record) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement process(record)")

    def close(self) -> None:
        """Release resources; nothing to do by default."""
