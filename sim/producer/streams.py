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
from collections.abc import Callable

import numpy as np

INT8_MAX = np.iinfo(np.int8).max
INT16_MAX = np.iinfo(np.int16).max
INT32_MAX = np.iinfo(np.int32).max
INT32 = np.dtype(np.int32)  # compared by identity: ``dtype == np.int32`` costs several times more
LINEAR_SEARCH_BELOW = 8
"""Records between the surely fitting and the surely overflowing one that
``time_when_overflowing`` looks at one by one rather than search."""
COMPACT_AFTER = 1 << 16
"""Records taken from a compact stream before it lets go of their times and running sums."""
SPLIT_CHUNK = 1 << 18
"""Records grouped by partition at a time (``split_by_partition``): bounds the temporaries."""



class RecordStream:
    """Buffer indices of records in time order, with their times and cumulative sizes.

    Indices and running sums are 32-bit when their range allows (checked when the stream is
    built), as a big workload's streams hold every one of its records until they are taken in.
    A stream built with ``compact=True`` (a partition's keyed records) also lets go of the
    times and running sums of the records already taken, once they are at least half of it:
    its positions then count from the first record not taken (see ``end_before``).
    ``in_order`` says whether the send times never decrease (as the producer's buffer keeps
    them): then the latest of any run of records is its last.
    """

    __slots__ = ("compact", "cs", "idx", "in_order", "max_size", "min_size", "pos", "t")

    def __init__(self, idx: np.ndarray, time_ms: np.ndarray, sizes: np.ndarray,
                 compact: bool = False) -> None:
        self.idx = narrowest_index(idx, len(time_ms))
        self.t = time_ms[idx]
        self.in_order = bool((self.t[1:] >= self.t[:-1]).all())
        record_sizes = sizes.take(idx)  # ``take`` gathers narrow columns faster than ``[idx]``
        smallest = int(record_sizes.min()) if len(idx) else 1
        largest = int(record_sizes.max()) if len(idx) else 1
        # the sum fits 32 bits if every record is the largest and still fits: no sum needed
        wide = len(idx) * largest > INT32_MAX and int(
            record_sizes.sum(dtype=np.int64)) > INT32_MAX
        self.cs = np.cumsum(record_sizes, dtype=np.int64 if wide else np.int32)
        self.min_size = max(1, smallest)
        self.max_size = max(1, largest)
        self.pos = 0
        self.compact = compact

    def __len__(self) -> int:
        return len(self.idx)

    @property
    def exhausted(self) -> bool:
        return self.pos >= len(self.idx)

    def end_before(self, now_ms: float) -> int:
        """Stream position just past the last record sent at or before ``now_ms``.

        Callers read positions afresh after this call: it is where a compact stream drops the
        records already taken.
        """
        if self.compact and self.pos >= COMPACT_AFTER and 2 * self.pos >= len(self.idx):
            self._drop_taken()
        pos = self.pos
        t = self.t
        # just the next record (records come slower than sender passes): no search needed
        if pos < len(t) and t.item(pos) <= now_ms and (pos + 1 == len(t)
                                                     or t.item(pos + 1) > now_ms):
            return pos + 1
        return int(t.searchsorted(now_ms, "right"))

    def _drop_taken(self) -> None:
        """Forget the records before ``pos``: positions and running sums start again at 0."""
        pos = self.pos
        before = self.cs[pos - 1]
        self.idx = self.idx[pos:]  # a view: the batches taken from it still point into it
        self.t = self.t[pos:].copy()
        self.cs = self.cs[pos:] - before
        self.pos = 0

    def time_when_overflowing(self, room_bytes: int, cap_ms: float = math.inf) -> float:
        """Send time of the first upcoming record that would not fit in ``room_bytes``, or
        ``cap_ms`` if that is earlier.

        With a cap (and ``room_bytes`` not negative) the search is often not needed: the next
        ``room_bytes // max_size`` records fit whatever their sizes, so the first that does not
        fit comes no earlier than the record after them. If that one is sent at or after
        ``cap_ms``, the answer is ``cap_ms`` (a sender pass asks this for every partition it
        refreshes; records usually come slower than ``linger.ms``). Otherwise the first record
        that does not fit lies between that one and the record after the next
        ``room_bytes // min_size``: a few records, looked at one by one, when sizes vary little.
        """
        pos = self.pos
        t = self.t
        cs = self.cs
        if room_bytes < 0:
            j = search_sums(cs, (cs.item(pos - 1) if pos else 0) + room_bytes)
        else:
            surely_fit = pos + room_bytes // self.max_size  # the first record that may not fit
            if cap_ms < math.inf and (surely_fit >= len(t) or t.item(surely_fit) >= cap_ms):
                return cap_ms
            before = cs.item(pos - 1) if pos else 0
            j = surely_fit
            last = min(pos + room_bytes // self.min_size, len(cs))
            limit = before + room_bytes
            if last - j > LINEAR_SEARCH_BELOW:
                j += search_sums(cs[j:last], limit)
            else:
                while j < last and cs.item(j) <= limit:
                    j += 1
        overflow = t.item(j) if j < len(t) else math.inf
        return overflow if overflow < cap_ms else cap_ms

    def take(self, end: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Indices of records ``pos … end-1``, their running size sum, and that sum before ``pos``
        (``RecordAccumulator.append``'s ``cs`` and ``cs_base``)."""
        before = self.cs.item(self.pos - 1) if self.pos else 0
        return self.idx[self.pos : end], self.cs[self.pos : end], before

    def next_time(self) -> float:
        return self.t.item(self.pos) if self.pos < len(self.t) else math.inf


_NEEDLE32 = np.empty(1, np.int32)
"""``search_sums``' needle for 32-bit sums, filled in place: cheaper than a new scalar."""


def search_sums(cs: np.ndarray, value: float, side: str = "right") -> int:
    """``cs.searchsorted(value, side)`` for running sums of either width.

    A whole number is given to a 32-bit array as a 32-bit needle: NumPy would otherwise copy
    the whole array to 64 bits on every search (20 µs instead of 0.6 for 100,000 records).
    """
    if cs.dtype is INT32 or cs.dtype == INT32:
        if value > INT32_MAX:
            return len(cs)
        if value < -INT32_MAX - 1:
            return 0
        if value == int(value):
            _NEEDLE32[0] = value
            return cs.searchsorted(_NEEDLE32, side).item(0)  # type: ignore[call-overload]
    return int(cs.searchsorted(value, side))  # type: ignore[call-overload]


def narrowest_index(idx: np.ndarray, buffer_records: int) -> np.ndarray:
    """``idx`` as 32-bit integers if a buffer of ``buffer_records`` records allows, else 64."""
    dtype = np.int32 if buffer_records <= INT32_MAX else np.int64
    return idx.astype(dtype, copy=False)


def split_by_partition(count: int, partitions_of: Callable[[int, int], np.ndarray],
                       indices_of: Callable[[int, int], np.ndarray] | None,
                       buffer_records: int, first: int = 0) -> dict[int, np.ndarray]:
    """Records ``0 … count-1`` grouped by partition, each group in record order.

    ``partitions_of(a, z)`` and ``indices_of(a, z)`` give the partitions and buffer indices of
    records ``a … z-1``; ``indices_of`` None: they are the consecutive buffer rows from
    ``first`` on (a workload's), whose indices need no gathering. Done ``SPLIT_CHUNK`` records
    at a time — count, then fill each group in place — so that a workload of millions of
    records needs no sort or copy of all of them.
    """
    counts = np.zeros(0, np.int64)
    chunk_counts = []  # each chunk's records per partition, for its grouping below
    for a in range(0, count, SPLIT_CHUNK):
        chunk = np.bincount(partitions_of(a, min(count, a + SPLIT_CHUNK)))
        chunk_counts.append(chunk)
        if len(chunk) > len(counts):
            grown = chunk.copy()
            grown[: len(counts)] += counts
            counts = grown
        else:
            counts[: len(chunk)] += chunk
    index_dtype = np.int32 if buffer_records <= INT32_MAX else np.int64
    groups = {p: np.empty(int(counts[p]), index_dtype) for p in np.flatnonzero(counts).tolist()}
    filled = dict.fromkeys(groups, 0)
    for a, sizes in zip(range(0, count, SPLIT_CHUNK), chunk_counts, strict=True):
        z = min(count, a + SPLIT_CHUNK)
        # a stable sort of small ints is a radix sort: one pass per byte, so 8 bits when the
        # partitions allow (most topics), else 16
        parts = partitions_of(a, z).astype(
            np.int8 if len(counts) <= INT8_MAX + 1 else
            np.int16 if len(counts) <= INT16_MAX + 1 else np.int32)
        order = np.argsort(parts, kind="stable")
        ends = np.cumsum(sizes).tolist()
        idx = indices_of(a, z) if indices_of is not None else None
        for p in np.flatnonzero(sizes).tolist():
            k = filled[p]
            size = int(sizes[p])
            positions = order[ends[p] - size : ends[p]]  # in the chunk
            if idx is None:
                group = groups[p][k : k + size]
                group[:] = positions
                group += first + a
            else:
                groups[p][k : k + size] = idx[positions]
            filled[p] = k + size
    return groups
