"""What a poll returns, and how it is read from the partition leaders' logs.

``ConsumerRecord`` and ``ConsumerRecords`` mirror Kafka's classes of the same names. A
``ConsumerRecords`` keeps the records of one poll as column chunks (one per partition) and makes
``ConsumerRecord`` objects only when you iterate or index it, so large polls stay cheap.

The ``Fetcher`` reads, for each assigned partition, the records from the consumer's position up
to the high watermark (consumers never see records above it), at most ``max.poll.records`` in
all. Like Kafka's fetcher (``AbstractFetch`` / ``SubscriptionState.movePartitionToEnd``) it
starts each poll after the partition that was served last, so that no partition starves.
Kafka prefetches in the background; the lab reads at poll time, so a poll that finds records
returns at once.

Tiered storage (``sim.broker.remote_log_manager``): a position below the leader's local log
start offset is read from the remote tier's Parquet object. That read takes its own time, so
the records come with a later poll, once the read is done (Kafka's ``DelayedRemoteFetch``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import pandas as pd

from sim.broker import remote_log_manager
from sim.broker.log import RECORD_COLUMNS
from sim.records import TopicPartition

FIELDS = ("timestamp_ms", "key_hash", "value_size", "record_id")
"""Record columns a ConsumerRecord carries (read from the log when the log stores them)."""


@dataclass(frozen=True, slots=True)
class ConsumerRecord:
    """One record as a poll returns it (``org.apache.kafka.clients.consumer.ConsumerRecord``).

    The lab's logs keep no payloads: ``key_hash`` is the key's murmur2 hash, ``value_size`` the
    value's length in bytes, and ``record_id`` says which producer record this is (the audit
    uses it to tell records apart; -1 when unknown).
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key_hash: int
    value_size: int
    record_id: int = -1

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True)
class Chunk:
    """Consecutive records of one partition: offsets ``first_offset … first_offset+count-1``."""

    tp: TopicPartition
    first_offset: int
    columns: dict[str, np.ndarray]

    @property
    def count(self) -> int:
        return len(self.columns["timestamp_ms"])

    @property
    def last_offset(self) -> int:
        return self.first_offset + self.count - 1

    def slice(self, start: int, stop: int) -> Chunk:
        return Chunk(self.tp, self.first_offset + start,
                     {name: col[start:stop] for name, col in self.columns.items()})

    def record(self, i: int) -> ConsumerRecord:
        cols = self.columns
        return ConsumerRecord(self.tp.topic, self.tp.partition, self.first_offset + i,
                              int(cols["timestamp_ms"][i]), int(cols["key_hash"][i]),
                              int(cols["value_size"][i]), int(cols["record_id"][i]))


class ConsumerRecords(Sequence[ConsumerRecord]):
    """The records of one poll (``org.apache.kafka.clients.consumer.ConsumerRecords``).

    A sequence of ``ConsumerRecord`` in partition order; slicing keeps it a ``ConsumerRecords``
    (so ``process(records[:10])`` works). ``partitions()``, ``records(tp)`` and ``count()``
    are Kafka's methods; ``to_frame()`` gives a DataFrame.
    """

    def __init__(self, chunks: list[Chunk] | None = None, consumer: Any = None) -> None:
        self.chunks = [c for c in (chunks or []) if c.count]
        self.consumer = consumer
        self._starts = np.cumsum([0] + [c.count for c in self.chunks])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def count(self, value: Any = None) -> int:  # type: ignore[override]
        """Number of records (Kafka's ``count()``); with an argument, Sequence's count."""
        if value is None:
            return len(self)
        return super().count(value)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __repr__(self) -> str:
        parts = ", ".join(f"{c.tp}@{c.first_offset}..{c.last_offset}" for c in self.chunks)
        return f"ConsumerRecords({len(self)} records: {parts or 'none'})"

    def __iter__(self) -> Iterator[ConsumerRecord]:
        for chunk in self.chunks:
            for i in range(chunk.count):
                yield chunk.record(i)

    @overload
    def __getitem__(self, index: int) -> ConsumerRecord: ...

    @overload
    def __getitem__(self, index: slice) -> ConsumerRecords: ...

    def __getitem__(self, index: int | slice) -> ConsumerRecord | ConsumerRecords:
        n = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step != 1:
                raise ValueError("ConsumerRecords slices must be contiguous (step 1).")
            chunks = []
            for chunk, first in zip(self.chunks, self._starts[:-1], strict=True):
                lo, hi = max(start - first, 0), min(stop - first, chunk.count)
                if lo < hi:
                    chunks.append(chunk.slice(int(lo), int(hi)))
            return ConsumerRecords(chunks, self.consumer)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"record index {index} out of range for {n} records")
        k = int(np.searchsorted(self._starts, index, side="right")) - 1
        return self.chunks[k].record(int(index - self._starts[k]))

    def partitions(self) -> list[TopicPartition]:
        """The partitions these records come from."""
        return [c.tp for c in self.chunks]

    def records(self, tp: TopicPartition) -> list[ConsumerRecord]:
        """The records of one partition."""
        return [c.record(i) for c in self.chunks if c.tp == tp for i in range(c.count)]

    def to_frame(self) -> pd.DataFrame:
        """One row per record: topic, partition, offset and the stored columns."""
        columns = ["topic", "partition", "offset", *FIELDS]
        if not self.chunks:
            return pd.DataFrame(columns=columns)
        parts = [pd.DataFrame({"topic": c.tp.topic, "partition": c.tp.partition,
                               "offset": np.arange(c.first_offset, c.last_offset + 1),
                               **c.columns}) for c in self.chunks]
        return pd.concat(parts, ignore_index=True)[columns]


def read_chunk(log: Any, tp: TopicPartition, start: int, stop: int) -> Chunk:
    """Records ``start … stop-1`` of a partition log as a chunk."""
    columns = {}
    for name in FIELDS:
        if name in RECORD_COLUMNS:
            columns[name] = log.column(name, start, stop)
        else:
            columns[name] = np.full(stop - start, -1, np.int64)
    return Chunk(tp, start, columns)


class Fetcher:
    """Reads records for one consumer, rotating over its partitions (see the module docstring)."""

    def __init__(self, read_committed: bool = False) -> None:
        self._next_first: TopicPartition | None = None
        self.read_committed = read_committed
        self.positions: dict[TopicPartition, int] = {}  # where the last fetch ended
        # the leader epoch of the last offset each fetch read (FetchPosition.offsetEpoch)
        self.epochs: dict[TopicPartition, int | None] = {}
        self._remote_reads: dict[TopicPartition, tuple[int, float, Chunk]] = {}

    def fetch(self, cluster: Any, partitions: list[TopicPartition],
              positions: dict[TopicPartition, int], max_records: int) -> list[Chunk]:
        """Chunks from ``positions`` up to each high watermark (the last stable offset with
        ``isolation.level=read_committed``), ``max_records`` in all.

        Control records are never returned, and read_committed drops the records of aborted
        transactions, but both take offsets: ``self.positions`` says where each partition's
        next fetch starts. Callers check positions against the log bounds first
        (``out_of_range``).
        """
        self.positions = {}
        self.epochs = {}
        if not partitions:
            return []
        order = list(partitions)
        if self._next_first in order:
            k = order.index(self._next_first)
            order = order[k:] + order[:k]
        chunks: list[Chunk] = []
        left = max_records
        for i, tp in enumerate(order):
            if left <= 0:
                break
            part = cluster.partition(tp.topic, tp.partition)
            log = part.log
            start = positions[tp]
            if start < log.log_start_offset:  # tiered storage: below the local log
                remote = self._remote_chunks(cluster, part, tp, start, left)
                if remote is not None:
                    chunks.extend(remote)
                    left -= sum(c.count for c in remote)
                continue
            bound = log.last_stable_offset if self.read_committed else log.high_watermark
            stop = min(bound, start + left)
            if log.cleaned_records and stop < bound:  # compacted gaps cost no fetch budget
                kept = np.flatnonzero(log.retained(start, bound))
                stop = bound if len(kept) <= left else start + int(kept[left - 1]) + 1
            if stop > start:
                if log.transactions.any or log.cleaned_records:
                    kept = _visible(log, tp, start, stop, self.read_committed)
                else:
                    kept = [read_chunk(log, tp, start, stop)]
                chunks.extend(kept)
                self.positions[tp] = stop
                self.epochs[tp] = epoch_for_offset(log, stop - 1)
                left -= sum(c.count for c in kept)
                # A partly drained partition stays first in line; a drained one goes last.
                drained = stop == bound
                self._next_first = order[(i + 1) % len(order)] if drained else tp
        return chunks

    def reading_remote(self) -> bool:
        """True while a read from the remote tier is under way."""
        return bool(self._remote_reads)

    def _remote_chunks(self, cluster: Any, part: Any, tp: TopicPartition, start: int,
                       left: int) -> list[Chunk] | None:
        """Records from the remote tier once their read is done; None while it runs.

        The first poll at ``start`` starts the read; a later poll at the same position after
        the read's latency gets its records (the position moved: a new read). Markers, and for
        read_committed the records of aborted transactions, are dropped as ``_visible`` drops
        them; ``self.positions`` moves past them.
        """
        now = cluster.runtime.now_ms
        pending = self._remote_reads.get(tp)
        if pending is None or pending[0] != start:
            manager = cluster.remote_log_manager
            got = manager.read(part, start, left) if manager is not None else None
            if got is None:
                return None
            columns, latency_ms = got
            pending = (start, now + latency_ms, columns)
            self._remote_reads[tp] = pending
        if now < pending[1]:
            return None
        del self._remote_reads[tp]
        columns = pending[2]
        keep = ~columns["control"]
        if self.read_committed:
            keep &= ~columns["aborted"]
        kept = np.flatnonzero(keep)
        end = int(kept[left - 1]) + 1 if len(kept) > left else len(keep)
        keep[end:] = False
        self.positions[tp] = start + end
        edges = np.flatnonzero(np.diff(np.concatenate(([0], keep.view(np.int8), [0]))))
        return [Chunk(tp, start + int(a), {name: columns[name][a:b] for name in FIELDS})
                for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _visible(log: Any, tp: TopicPartition, start: int, stop: int,
             read_committed: bool) -> list[Chunk]:
    """Offsets ``start … stop-1`` without control records, without the offsets the log
    cleaner removed (compaction leaves gaps) and, for read_committed, without the records of
    aborted transactions (Kafka's ``CompletedFetch`` with the fetch response's aborted
    transactions), as chunks of consecutive offsets."""
    keep = log.retained(start, stop)
    if not log.transactions.any:
        batches: list[Any] = []
        aborted: list[Any] = []
    else:
        batches = log.batches_overlapping(start, stop)
        aborted = log.transactions.aborted_between(start, stop) if read_committed else []
    for batch in batches:
        drop = batch.is_control or (batch.is_transactional and any(
            t.producer_id == batch.producer_id and t.first_offset <= batch.base_offset
            <= t.last_offset for t in aborted))
        if drop:
            keep[max(batch.base_offset - start, 0):batch.last_offset + 1 - start] = False
    edges = np.flatnonzero(np.diff(np.concatenate(([0], keep.view(np.int8), [0]))))
    return [read_chunk(log, tp, start + int(a), start + int(b))
            for a, b in zip(edges[::2], edges[1::2], strict=True)]


def epoch_for_offset(log: Any, offset: int) -> int | None:
    """The leader epoch of the batch holding ``offset``, from the log's epoch cache (None
    below the cache's first entry, e.g. an offset read from the remote tier)."""
    epoch = None
    for e, start in log.epochs:
        if start > offset:
            break
        epoch = e
    return epoch


def out_of_range(log: Any, position: int, log_start_offset: int | None = None) -> bool:
    """True when ``position`` is outside the log (Kafka's OFFSET_OUT_OF_RANGE).

    ``log_start_offset`` is the partition's start with its remote tier, when it has one.
    """
    start = log.log_start_offset if log_start_offset is None else log_start_offset
    return position < start or position > log.log_end_offset


def log_start_offset(cluster: Any, part: Any) -> int:
    """Where a consumer can start reading ``part``: the remote tier counts for a tiered topic."""
    return remote_log_manager.log_start_offset(cluster, part)


def chunks_of(records: Any) -> list[Chunk]:
    """Chunks for ``process()``: from a ``ConsumerRecords``, one record, or a list of them."""
    if isinstance(records, ConsumerRecords):
        return list(records.chunks)
    if isinstance(records, ConsumerRecord):
        records = [records]
    chunks: list[Chunk] = []
    run: list[ConsumerRecord] = []
    for record in [*records, None]:
        if run and (record is None or record.topic_partition != run[-1].topic_partition
                    or record.offset != run[-1].offset + 1):
            columns = {name: np.array([getattr(r, name) for r in run], np.int64)
                       for name in FIELDS}
            chunks.append(Chunk(run[0].topic_partition, run[0].offset, columns))
            run = []
        if record is not None:
            if not isinstance(record, ConsumerRecord):
                raise TypeError(f"process() takes records from poll(), not {record!r}.")
            run.append(record)
    return chunks
