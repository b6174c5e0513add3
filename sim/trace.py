"""The event trace: every component reports what it did, as typed events.

An event is (time_ms, component, kind, fields). Each ``EventKind`` declares its fields once, and
events of one kind are stored as rows of a per-kind buffer, so that emitting costs one tuple and
``Trace.to_frame()`` builds one pandas DataFrame per kind and stacks them in emission order.

Vocabulary of the kinds the producer side emits:

- ``request.sent``: a producer sent one produce request (several batches) to a broker.
- ``log.append``: a broker appended one record batch to a partition's log.
- ``request.completed``: the producer received the response to a produce request.
- ``sticky.switch``: a sticky partitioner moved to another partition (KIP-480 / KIP-794).
- ``fault``: a scheduled or interactive fault was applied (a slow broker, for now).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class EventKind:
    """A kind of event and the names of the fields it carries."""

    name: str
    fields: tuple[str, ...]
    doc: str


REQUEST_SENT = EventKind(
    "request.sent", ("node", "batches", "records", "bytes"), "a produce request left the client"
)
LOG_APPEND = EventKind(
    "log.append",
    ("node", "topic", "partition", "offset", "records", "bytes", "producer"),
    "a leader appended a record batch; offset is the batch's base offset",
)
REQUEST_COMPLETED = EventKind(
    "request.completed", ("node", "batches", "records", "latency_ms"), "a produce response arrived"
)
STICKY_SWITCH = EventKind(
    "sticky.switch", ("topic", "partition", "previous"), "the sticky partition changed"
)
FAULT = EventKind("fault", ("node", "fault", "detail"), "a fault was applied")
PRODUCE_RETRY = EventKind(
    "produce.retry", ("topic", "partition", "error", "attempt"), "a failed batch will be retried"
)
PRODUCE_FAILED = EventKind(
    "produce.failed", ("topic", "partition", "error", "records"),
    "a batch failed for good: its records' futures raise",
)

KINDS: dict[str, EventKind] = {
    k.name: k
    for k in (REQUEST_SENT, LOG_APPEND, REQUEST_COMPLETED, STICKY_SWITCH, FAULT, PRODUCE_RETRY,
              PRODUCE_FAILED)
}

BASE_COLUMNS = ("seq", "time_ms", "component", "kind")


def register(kind: EventKind) -> EventKind:
    """Declare an event kind from another module (consumers, replication, …) and return it."""
    known = KINDS.get(kind.name)
    if known is not None and known != kind:
        raise ValueError(f"Event kind {kind.name!r} is already declared with other fields.")
    KINDS[kind.name] = kind
    return kind


class Trace:
    """Collects events cheaply and turns them into DataFrames on demand."""

    def __init__(self) -> None:
        self._rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self._seq = 0
        self._frames: dict[str, tuple[int, pd.DataFrame]] = {}  # last frame of each kind

    def __len__(self) -> int:
        return self._seq

    def emit(self, kind: EventKind, time_ms: float, component: str, *values: Any) -> None:
        """Record one event; ``values`` follow ``kind.fields`` in order."""
        self._rows[kind.name].append((self._seq, time_ms, component, kind.name, *values))
        self._seq += 1

    def count(self, kind: EventKind) -> int:
        return len(self._rows.get(kind.name, ()))

    def frame(self, kind: EventKind) -> pd.DataFrame:
        """The events of one kind, one column per field, in emission order.

        Summaries ask for the same kind several times: the frame is built once per number of
        events and each caller gets its own copy.
        """
        rows = self._rows.get(kind.name, [])
        cached = self._frames.get(kind.name)
        if cached is None or cached[0] != len(rows):
            cached = (len(rows), pd.DataFrame(rows, columns=[*BASE_COLUMNS, *kind.fields]))
            self._frames[kind.name] = cached
        return cached[1].copy()

    def to_frame(self) -> pd.DataFrame:
        """All events in emission order; fields a kind lacks are left empty."""
        parts = []
        for name, rows in self._rows.items():
            kind = KINDS[name]
            parts.append(pd.DataFrame(rows, columns=[*BASE_COLUMNS, *kind.fields]))
        if not parts:
            return pd.DataFrame(columns=list(BASE_COLUMNS))
        integer = {column for part in parts for column in part.columns
                   if pd.api.types.is_integer_dtype(part[column])}
        integer -= {column for part in parts for column in part.columns
                    if not pd.api.types.is_integer_dtype(part[column])}
        frame = pd.concat(parts, ignore_index=True).sort_values("seq", kind="stable")
        frame = frame.reset_index(drop=True)
        # a field only some kinds have is missing for the others: keep it integer, not float
        partial = {column for column in integer if any(column not in part for part in parts)}
        return frame.astype({column: "Int64" for column in partial})

    def tail(self, n: int = 10) -> pd.DataFrame:
        """The last ``n`` events (for a stepper's event table)."""
        return self.to_frame().tail(n)
