"""How records get their partition and reach the accumulator (``KafkaProducer.doSend``).

Kafka decides a record's partition in this order (``KafkaProducer.partition``):

1. an explicit partition in the record;
2. ``partitioner.class``, if set — one call per record: before Kafka 4.0 the *per-record*
   route, where records wait until a sender pass takes them in (``onNewBatch`` needs the
   batches of the moment); since 4.0 the records are partitioned in chunks, ahead of their send
   time, and routed like keyed ones;
3. a key, unless ``partitioner.ignore.keys`` — ``toPositive(murmur2(key)) % partitions``;
   the lab hashes each distinct key once and routes per partition in bulk (*keyed* route);
4. otherwise the built-in uniform sticky partitioner (KIP-794) — the *sticky* route, which
   appends runs of consecutive records to one partition until the switch point.

A ``RecordStream`` is the records of one route in time order, with their cumulative sizes, so
that "how many records until this batch is full?" is one ``searchsorted``.
"""

from __future__ import annotations

import math

import numpy as np


class RecordStream:
    """Buffer indices of records in time order, with their times and cumulative sizes."""

    __slots__ = ("cs", "idx", "min_size", "pos", "t")

    def __init__(self, idx: np.ndarray, time_ms: np.ndarray, sizes: np.ndarray) -> None:
        self.idx = idx
        self.t = time_ms[idx]
        record_sizes = sizes[idx]
        self.cs = np.cumsum(record_sizes)
        self.min_size = max(1, int(record_sizes.min())) if len(idx) else 1
        self.pos = 0

    def __len__(self) -> int:
        return len(self.idx)

    @property
    def exhausted(self) -> bool:
        return self.pos >= len(self.idx)

    def end_before(self, now_ms: float) -> int:
        """Stream position just past the last record sent at or before ``now_ms``."""
        return int(self.t.searchsorted(now_ms, "right"))

    def time_when_overflowing(self, room_bytes: int) -> float:
        """Send time of the first upcoming record that would not fit in ``room_bytes``."""
        before = self.cs.item(self.pos - 1) if self.pos else 0
        j = int(self.cs.searchsorted(before + room_bytes, "right"))
        return self.t.item(j) if j < len(self.t) else math.inf

    def take(self, end: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Indices of records ``pos … end-1``, their running size sum, and that sum before ``pos``
        (``RecordAccumulator.append``'s ``cs`` and ``cs_base``)."""
        before = self.cs.item(self.pos - 1) if self.pos else 0
        return self.idx[self.pos : end], self.cs[self.pos : end], before

    def next_time(self) -> float:
        return self.t.item(self.pos) if self.pos < len(self.t) else math.inf
