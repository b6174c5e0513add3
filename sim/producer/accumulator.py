"""The record accumulator: per-partition queues of record batches waiting to be sent.

Mirrors ``org.apache.kafka.clients.producer.internals.RecordAccumulator`` and ``ProducerBatch``.
A record is appended to the last batch of its partition's queue if it fits in ``batch.size``
bytes; otherwise that batch is closed (it is *full*) and a new batch is opened. A batch becomes
sendable when it is full or has waited ``linger.ms`` since it was opened (``batchReady``).

The lab appends many records in one call: sizes are summed with ``numpy.cumsum`` and the point
where a batch overflows is found with ``searchsorted``, so the work is per batch, not per record.
Records themselves live in the producer's column buffer; a batch keeps index arrays into it.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

RECORD_BATCH_OVERHEAD = 61
"""Bytes of a v2 record batch header (Kafka's ``DefaultRecordBatch.RECORD_BATCH_OVERHEAD``)."""


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


class ProducerBatch:
    """Records for one partition that will travel in one request (Kafka's ``ProducerBatch``).

    Lifecycle: *open* (accepting appends) → *full* (closed for appends, ``full_ms`` set) →
    drained (taken from its queue by the sender) → acknowledged, or retried (``retry_at_ms``).
    """

    __slots__ = ("attempts", "base_sequence", "chunks", "created_ms", "done", "full_ms",
                 "partition", "producer_epoch", "records", "retry_at_ms", "sequence_reset",
                 "size_bytes")

    def __init__(self, partition: int, created_ms: float) -> None:
        self.partition = partition
        self.created_ms = created_ms
        self.chunks: list[np.ndarray] = []
        self.records = 0
        self.size_bytes = RECORD_BATCH_OVERHEAD
        self.full_ms = math.inf
        self.retry_at_ms = -math.inf
        self.attempts = 0
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

    def ready_ms(self, linger_ms: float) -> float:
        """When this batch becomes sendable: full, or ``linger.ms`` after it was opened.

        A batch that is being retried waits for its backoff too (``RecordAccumulator.ready``).
        """
        return max(min(self.created_ms + linger_ms, self.full_ms), self.retry_at_ms)

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
        records: the producer's record buffer (columns ``time_ms`` and ``size``).
    """

    def __init__(self, partitions: int, batch_size: int, records: Any) -> None:
        self.batch_size = batch_size
        self.deques: list[deque[ProducerBatch]] = [deque() for _ in range(partitions)]
        self.records = records
        self.version = 0  # changes whenever a queue gains or loses a batch

    def open_batch(self, partition: int) -> ProducerBatch | None:
        """The last batch of a partition if it still accepts records."""
        dq = self.deques[partition]
        if dq and not dq[-1].is_full:
            return dq[-1]
        return None

    def room(self, partition: int) -> int:
        """Record bytes the partition's open batch can still take (a new batch if none)."""
        batch = self.open_batch(partition)
        if batch is None:
            return self.batch_size - RECORD_BATCH_OVERHEAD
        return self.batch_size - batch.size_bytes

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
    ) -> tuple[int, int]:
        """Append records ``idx`` (in time order) to ``partition``'s queue.

        Stops early once the bytes appended (records plus the headers of new batches) reach
        ``max_bytes`` — the record that crosses it is included — or, with ``one_batch``, when the
        open batch is full. This is how a sticky partitioner appends up to its switch points.

        ``cs``, if given, holds the running sum of the records' sizes (saves recomputing it),
        counted from ``cs_base``: the records ``idx[:k + 1]`` take ``cs[k] - cs_base`` bytes.
        A record stream passes a view of its own running sum that way, without copying it.

        Returns:
            (records consumed from ``idx``, bytes appended).
        """
        # ``a.item(k)`` reads one element as a Python number, faster than ``int(a[k])``
        time_ms = self.records.cols["time_ms"]
        if cs is None:
            cs = np.cumsum(self.records.cols["size"][idx])
        n = len(idx)
        dq = self.deques[partition]
        batch = self.open_batch(partition)  # kept equal to open_batch(partition) below
        if n and batch is not None:  # common case: everything fits in the open batch
            total = cs.item(-1) - cs_base
            if total < self.batch_size - batch.size_bytes and total < max_bytes:
                batch.chunks.append(idx)
                batch.records += n
                batch.size_bytes += total
                return n, total
        pos = 0
        appended = 0
        while pos < n and appended < max_bytes:
            header = 0
            if batch is None:
                batch = ProducerBatch(partition, time_ms.item(idx.item(pos)))
                dq.append(batch)
                self.version += 1
                header = RECORD_BATCH_OVERHEAD
            before = cs.item(pos - 1) if pos else cs_base
            fits = int(cs.searchsorted(before + self.batch_size - batch.size_bytes, "right"))
            stop = fits
            if stop <= pos:
                if batch.records:  # the next record does not fit: this batch is full
                    batch.full_ms = time_ms.item(idx.item(pos))
                    if one_batch:
                        break
                    batch = None
                    continue
                stop = pos + 1  # a record bigger than batch.size travels alone
            if max_bytes < math.inf:
                # up to and including the first record whose bytes reach the limit
                limit = before + max_bytes - appended - header
                stop = min(stop, max(int(cs.searchsorted(limit, "left")) + 1, pos + 1))
            stop = min(stop, n)
            batch.chunks.append(idx[pos:stop])
            batch.records += stop - pos
            grown = cs.item(stop - 1) - before
            batch.size_bytes += grown
            appended += grown + header
            pos = stop
            if batch.size_bytes >= self.batch_size:
                batch.full_ms = time_ms.item(idx.item(stop - 1))
            elif stop == fits and pos < n and appended < max_bytes:
                # the next record does not fit (the next search would say so): this batch is full
                batch.full_ms = time_ms.item(idx.item(pos))
            else:
                continue
            if one_batch:
                break
            batch = None
        return pos, appended

    def reenqueue(self, batch: ProducerBatch, in_sequence_order: bool) -> None:
        """Put a batch to retry back at the head of its queue (``RecordAccumulator.reenqueue``).

        An idempotent producer keeps retried batches in sequence order
        (``insertInSequenceOrder``); otherwise the batch simply goes first, so several failed
        batches can come back in a different order — how retries reorder records without
        idempotence.
        """
        dq = self.deques[batch.partition]
        self.version += 1
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
        return self.deques[partition].popleft()

    def queue_sizes(self) -> list[int]:
        """Batches waiting per partition (what adaptive partitioning weighs)."""
        return list(map(len, self.deques))
