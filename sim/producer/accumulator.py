"""The record accumulator: per-partition queues of record batches waiting to be sent.

Mirrors ``org.apache.kafka.clients.producer.internals.RecordAccumulator`` and ``ProducerBatch``.
A record is appended to the last batch of its partition's queue if it fits in the batch's write
limit; otherwise that batch is closed (it is *full*) and a new batch is opened. A batch becomes
sendable when it is full or has waited ``linger.ms`` since it was opened (``batchReady``).

The write limit is ``batch.size``, unless the batch's first record needs more: Kafka allocates
``max(batch.size, upper bound of a batch holding that record)`` (``RecordAccumulator.append``)
and a batch always takes its first record (``MemoryRecordsBuilder.hasRoomFor``). So a record
bigger than ``batch.size`` travels in a batch of its own — with ``batch.size=0`` (which
``KafkaProducer`` raises to 1) every record does, except records small enough to fit in the
few bytes the upper bound over-estimates (up to about 17: a key-less record with an empty
value takes 7).

The lab appends many records in one call: sizes are summed with ``numpy.cumsum`` and the point
where a batch overflows is found with ``searchsorted``, so the work is per batch, not per record.
Records themselves live in the producer's column buffer; a batch keeps index arrays into it.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from typing import Any

import numpy as np

from sim.producer.streams import search_sums

RECORD_BATCH_OVERHEAD = 61
"""Bytes of a v2 record batch header (Kafka's ``DefaultRecordBatch.RECORD_BATCH_OVERHEAD``)."""


MAX_RECORD_OVERHEAD = 21
"""Bytes Kafka reserves for a record's length, timestamp, offset and attributes when it bounds a
record's size from above (``DefaultRecord.MAX_RECORD_OVERHEAD``)."""

_MAXIMUM = np.maximum.reduce
"""``ndarray.max`` without its Python wrapper (one C call: it runs for every append)."""

VARINT_LIMITS = np.array([1 << 7, 1 << 14, 1 << 21, 1 << 28], dtype=np.int64)
"""Smallest zig-zag values that need 2, 3, 4 and 5 varint bytes."""


def varint_size(values: np.ndarray) -> np.ndarray:
    """Bytes of Kafka's zig-zag varint encoding of each value (``ByteUtils.sizeOfVarint``)."""
    values = values.astype(np.int64, copy=False)
    zigzag = values << 1
    zigzag ^= values >> 63
    # one byte, plus one for each limit reached (searchsorted counts them in one pass)
    size = VARINT_LIMITS.searchsorted(zigzag, "right")
    size += 1
    return size


def record_sizes(key_bytes: np.ndarray, value_bytes: np.ndarray) -> np.ndarray:
    """Size in a batch of each record (``DefaultRecord.sizeInBytes``), without headers.

    A record body is attributes (1) + timestamp delta + offset delta (1 byte each here, a lab
    simplification) + key length varint + key + value length varint + value + header count (1),
    preceded by the body length as a varint. A null key or value has length -1 (one byte).
    """
    body = (
        4
        + varint_size(key_bytes)
        + np.maximum(key_bytes, 0)
        + varint_size(value_bytes)
        + np.maximum(value_bytes, 0)
    )
    return body + varint_size(body)


def lookup_record_sizes(key_lengths: np.ndarray, key_ids: np.ndarray, value_bytes: np.ndarray,
                        compression_ratio: float = 1.0) -> np.ndarray:
    """``record_sizes(key_lengths[key_ids], value_bytes)``, after compression, for many records.

    A record's size depends only on its key's length and its value's size, and a workload has
    few of either: the size of each distinct (key length, value size) pair is computed once
    and every record looks its own up, instead of three varint passes over every record.
    ``key_ids`` index ``key_lengths`` (-1 picks its last entry, as NumPy indexing does).
    Compressed sizes are rounded up (``ceil(size × ratio)``).
    """
    n = len(key_ids)
    lengths, key_code = np.unique(key_lengths, return_inverse=True)
    low = int(value_bytes.min()) if n else 0
    span = int(value_bytes.max()) - low + 1 if n else 1
    if len(lengths) * span > max(n, 1024):  # too many distinct pairs: compute per record
        table = None
        sizes = record_sizes(key_lengths[key_ids], value_bytes)
    else:
        table = record_sizes(lengths[:, None], np.arange(low, low + span)[None, :])
        sizes = table
    if compression_ratio != 1.0:
        sizes = np.ceil(sizes * compression_ratio).astype(np.int64)
    if table is None:
        return sizes
    # ``take`` gathers faster than ``[key_ids]`` (and reads -1 as the last entry too)
    if span == 1:  # one value size: one size per key
        return sizes[key_code.ravel(), 0].take(key_ids)
    return sizes.ravel().take(key_code.ravel().take(key_ids) * span + (value_bytes - low))


@functools.lru_cache(maxsize=4096)  # asked once per new batch, for a handful of sizes
def batch_size_upper_bound(record_size: int) -> int:
    """Kafka's upper bound of a batch holding one record of ``record_size`` bytes.

    ``DefaultRecordBatch.estimateBatchSizeUpperBound``: the batch header, plus
    ``MAX_RECORD_OVERHEAD`` in place of the record's length varint, attributes and 1-byte
    timestamp and offset deltas (``record_sizes``). For example a key-less record with an empty
    value takes 7 bytes (body 6 and its 1-byte length) and is bounded by 61 + 21 + 3 = 85.
    """
    for length_bytes in range(1, 6):  # the body's length varint takes 1 to 5 bytes
        body = record_size - length_bytes
        if int(varint_size(np.array([body]))[0]) == length_bytes:
            return RECORD_BATCH_OVERHEAD + MAX_RECORD_OVERHEAD + body - 3
    return RECORD_BATCH_OVERHEAD + MAX_RECORD_OVERHEAD + record_size  # not a lab record size


class ProducerBatch:
    """Records for one partition that will travel in one request (Kafka's ``ProducerBatch``).

    Lifecycle: *open* (accepting appends) → *full* (closed for appends, ``full_ms`` set) →
    drained (taken from its queue by the sender) → acknowledged, or retried (``retry_at_ms``).
    ``limit_bytes`` is its write limit (``MemoryRecordsBuilder.writeLimit``): the size of the
    buffer Kafka allocated for it.
    """

    __slots__ = ("attempts", "attempts_when_leader_changed", "base_sequence", "chunks",
                 "created_ms", "done", "full_ms", "leader_epoch", "limit_bytes", "max_time_ms",
                 "partition",
                 "producer_epoch", "records", "retry_at_ms", "sequence_reset", "size_bytes")

    def __init__(self, partition: int, created_ms: float, limit_bytes: int) -> None:
        self.partition = partition
        self.created_ms = created_ms
        self.limit_bytes = limit_bytes
        self.chunks: list[np.ndarray] = []
        self.records = 0
        self.max_time_ms = -math.inf  # the latest send time of its records
        self.size_bytes = RECORD_BATCH_OVERHEAD
        self.full_ms = math.inf
        self.retry_at_ms = -math.inf
        self.attempts = 0
        self.leader_epoch = -1  # the partition's leader epoch when last sent (-1: not yet)
        self.attempts_when_leader_changed = 0  # attempts made when leader_epoch last grew
        self.base_sequence = -1  # an idempotent producer's sequence and epoch, once sent
        self.producer_epoch = -1
        self.sequence_reset = False  # renumbered after an epoch bump (sequenceHasBeenReset)
        self.done = False  # acknowledged or failed: its futures are resolved

    def __repr__(self) -> str:
        state = "full" if self.is_full else "open"
        return (f"ProducerBatch(partition={self.partition}, records={self.records}, "
                f"bytes={self.size_bytes}, {state})")

    @property
    def is_full(self) -> bool:
        return self.full_ms < math.inf

    def maybe_update_leader_epoch(self, epoch: int) -> None:
        """Note a newer leader epoch of the partition, and at which attempt it was seen
        (``ProducerBatch.maybeUpdateLeaderEpoch``, KIP-951)."""
        if epoch > self.leader_epoch:
            self.leader_epoch = epoch
            self.attempts_when_leader_changed = self.attempts

    @property
    def leader_changed_for_retry(self) -> bool:
        """Whether this retry goes to a newer leader than the attempt that failed
        (``hasLeaderChangedForTheOngoingRetry``): then it skips its backoff (KIP-951)."""
        return self.attempts >= 1 and self.attempts == self.attempts_when_leader_changed

    def ready_ms(self, linger_ms: float) -> float:
        """When this batch becomes sendable: full, or ``linger.ms`` after it was opened.

        A batch that is being retried waits for its backoff too (``RecordAccumulator.ready``).
        Asked several times per batch: written out, as ``max(min(…), …)`` costs more.
        """
        ready = self.created_ms + linger_ms
        if self.full_ms < ready:
            ready = self.full_ms
        return self.retry_at_ms if self.retry_at_ms > ready else ready

    def indices(self) -> np.ndarray:
        """Buffer indices of the batch's records, in append order."""
        if len(self.chunks) > 1:  # join the chunks once: a sent batch is read several times
            self.chunks = [np.concatenate(self.chunks)]
        return self.chunks[0]


class RecordAccumulator:
    """Per-partition batch queues for one topic of one producer.

    Args:
        partitions: number of partitions of the topic.
        batch_size: Kafka's ``batch.size``; a record bigger than that gets a batch of its own.
            ``KafkaProducer`` raises 0 to 1, and so does the accumulator.
        records: the producer's record buffer (columns ``time_ms`` and ``size``).
    """

    def __init__(self, partitions: int, batch_size: int, records: Any) -> None:
        self.batch_size = max(1, batch_size)
        self.new_batch_room = max(self.batch_size - RECORD_BATCH_OVERHEAD, 0)
        """Record bytes a new batch surely takes (more if its first record is big)."""
        self.deques: list[deque[ProducerBatch]] = [deque() for _ in range(partitions)]
        self.records = records
        self.version = 0  # changes whenever a queue gains or loses a batch
        self.sizes = [0] * partitions  # batches per queue, kept in step
        self.nonempty: set[int] = set()  # partitions with a batch queued, kept in step

    def open_batch(self, partition: int) -> ProducerBatch | None:
        """The last batch of a partition if it still accepts records."""
        dq = self.deques[partition]
        if dq and not dq[-1].is_full:
            return dq[-1]
        return None

    def room(self, partition: int) -> int:
        """Record bytes the partition's open batch can still take (a new batch if none).

        Never negative: a batch at or past its write limit has none left.
        """
        batch = self.open_batch(partition)
        if batch is None:
            return self.new_batch_room
        return max(batch.limit_bytes - batch.size_bytes, 0)

    def all_batches_full(self, partition: int) -> bool:
        """Kafka's ``allBatchesFull``: the queue is empty or its last batch is full."""
        dq = self.deques[partition]
        return not dq or dq[-1].is_full

    def append(
        self,
        partition: int,
        idx: np.ndarray,
        max_bytes: float = math.inf,
        one_batch: bool = False,
        cs: np.ndarray | None = None,
        cs_base: int = 0,
        times: np.ndarray | None = None,
        in_order: bool = False,
    ) -> tuple[int, int]:
        """Append records ``idx`` (in time order) to ``partition``'s queue.

        Stops early once the bytes appended (records plus the headers of new batches) reach
        ``max_bytes`` — the record that crosses it is included — or, with ``one_batch``, when the
        open batch is full. This is how a sticky partitioner appends up to its switch points.

        ``cs``, if given, holds the running sum of the records' sizes (saves recomputing it),
        counted from ``cs_base``: the records ``idx[:k + 1]`` take ``cs[k] - cs_base`` bytes.
        A record stream passes a view of its own running sum that way, without copying it, and
        of the records' send times (``times``, else they are looked up in the buffer);
        ``in_order`` if those never decrease (a batch keeps the latest: ``max_time_ms``).

        Returns:
            (records consumed from ``idx``, bytes appended).
        """
        # ``a.item(k)`` reads one element as a Python number, faster than ``int(a[k])``
        if cs is None:
            cs = np.cumsum(self.records.cols["size"][idx])
        n = len(idx)
        dq = self.deques[partition]
        # open_batch(partition), kept equal to it below
        batch = dq[-1] if dq and dq[-1].full_ms == math.inf else None
        end_sum = cs.item(-1) if n else cs_base  # the running sum after the last record
        if times is None:
            times = self.records.cols["time_ms"][idx]
        if n and batch is not None:  # common case: everything fits in the open batch
            total = end_sum - cs_base
            if total < batch.limit_bytes - batch.size_bytes and total < max_bytes:
                batch.chunks.append(idx)
                batch.records += n
                batch.size_bytes += total
                latest = times.item(-1) if in_order else _MAXIMUM(times)
                if latest > batch.max_time_ms:
                    batch.max_time_ms = latest
                return n, total
        header = 0  # the header of a batch opened for the records, until counted as appended
        if n and batch is None and max_bytes > 0:
            batch = self._new_batch(partition, cs.item(0) - cs_base, times.item(0))
            header = RECORD_BATCH_OVERHEAD
            # common case too: the new batch takes every record and stays open
            total = end_sum - cs_base + header
            if total < batch.limit_bytes and total < max_bytes:
                batch.chunks.append(idx)
                batch.records = n
                batch.size_bytes = total
                batch.max_time_ms = times.item(-1) if in_order else _MAXIMUM(times)
                return n, total
        pos = 0
        appended = 0
        before = cs_base  # the running sum before ``pos``
        while pos < n and appended < max_bytes:
            if batch is None:
                batch = self._new_batch(partition, cs.item(pos) - before, times.item(pos))
                header = RECORD_BATCH_OVERHEAD
            room = before + batch.limit_bytes - batch.size_bytes  # the running sum that fits
            # the usual new batch takes all the rest: the search would say so (sums only grow)
            fits = n if end_sum <= room else search_sums(cs, room)
            stop = fits
            if stop <= pos:
                if batch.records:  # the next record does not fit: this batch is full
                    batch.full_ms = times.item(pos)
                    if one_batch:
                        break
                    batch = None
                    continue
                stop = pos + 1  # a record bigger than batch.size travels alone
            if max_bytes < math.inf:
                # up to and including the first record whose bytes reach the limit
                limit = before + max_bytes - appended - header
                stop = min(stop, max(search_sums(cs, limit, "left") + 1, pos + 1))
            if stop > n:
                stop = n
            batch.chunks.append(idx if stop - pos == n else idx[pos:stop])  # all: no new view
            batch.records += stop - pos
            latest = times.item(stop - 1) if in_order else _MAXIMUM(times[pos:stop])
            if latest > batch.max_time_ms:
                batch.max_time_ms = latest
            after = cs.item(stop - 1)
            grown = after - before
            batch.size_bytes += grown
            appended += grown + header
            header = 0
            pos, before = stop, after
            if batch.size_bytes >= batch.limit_bytes:  # MemoryRecordsBuilder.isFull
                batch.full_ms = times.item(stop - 1)
            elif stop == fits and pos < n and appended < max_bytes:
                # the next record does not fit (the next search would say so): this batch is full
                batch.full_ms = times.item(pos)
            else:
                continue
            if one_batch:
                break
            batch = None
        return pos, appended

    def append_record(self, partition: int, idx: np.ndarray, size: int, time_ms: float) -> bool:
        """``append`` of one record (``idx``: its index, as a one-element array) of ``size``
        bytes sent at ``time_ms``, when it simply joins the open batch or opens a new one
        (which it always leaves open). False, with nothing done, if the open batch has no
        room for it: then ``append`` closes that batch and opens the next.

        When records come slower than sender passes, each pass appends one record: this
        saves the running-sum and time views ``append`` reads.
        """
        dq = self.deques[partition]
        if dq and dq[-1].full_ms == math.inf:  # open_batch(partition)
            batch = dq[-1]
            if size >= batch.limit_bytes - batch.size_bytes:
                return False
            batch.chunks.append(idx)
            batch.records += 1
            batch.size_bytes += size
            if time_ms > batch.max_time_ms:
                batch.max_time_ms = time_ms
            return True
        # a new batch: its write limit is at least the upper bound of a batch holding the
        # record (_new_batch), so the record leaves it open
        batch = self._new_batch(partition, size, time_ms)
        batch.chunks.append(idx)
        batch.records = 1
        batch.size_bytes += size
        batch.max_time_ms = time_ms
        return True

    def _new_batch(self, partition: int, first_size: int, created_ms: float) -> ProducerBatch:
        """Open a batch at the end of ``partition``'s queue for a first record of
        ``first_size`` bytes, sent at ``created_ms``."""
        limit_bytes = self.batch_size
        # the upper bound exceeds the record by less than the two overheads: only a record
        # near batch.size needs it worked out
        if first_size + RECORD_BATCH_OVERHEAD + MAX_RECORD_OVERHEAD > limit_bytes:
            limit_bytes = max(limit_bytes, batch_size_upper_bound(first_size))
        batch = ProducerBatch(partition, created_ms, limit_bytes)
        self.deques[partition].append(batch)
        self.version += 1
        self.sizes[partition] += 1
        self.nonempty.add(partition)
        return batch

    def reenqueue(self, batch: ProducerBatch, in_sequence_order: bool) -> None:
        """Put a batch to retry back at the head of its queue (``RecordAccumulator.reenqueue``).

        An idempotent producer keeps retried batches in sequence order
        (``insertInSequenceOrder``); otherwise the batch simply goes first, so several failed
        batches can come back in a different order — how retries reorder records without
        idempotence.
        """
        dq = self.deques[batch.partition]
        self.version += 1
        self.sizes[batch.partition] += 1
        self.nonempty.add(batch.partition)
        if not in_sequence_order:
            dq.appendleft(batch)
            return
        position = 0
        while (position < len(dq) and 0 <= dq[position].base_sequence < batch.base_sequence):
            position += 1
        dq.insert(position, batch)

    def take_first(self, partition: int) -> ProducerBatch:
        """Remove and return the head batch of a partition's queue (to send or to expire)."""
        self.version += 1
        self.sizes[partition] -= 1
        if not self.sizes[partition]:
            self.nonempty.discard(partition)
        return self.deques[partition].popleft()

    def queue_sizes(self) -> np.ndarray:
        """Batches waiting per partition (what adaptive partitioning weighs): the counts kept
        as batches come and go, not a pass over every queue."""
        return np.array(self.sizes, np.int64)
