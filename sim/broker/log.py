"""A partition's log, stored column-wise.

Kafka stores a partition as a sequence of record batches in segment files. Here a log keeps one
entry per batch (base offset, producer, leader epoch, size) and per-record columns (timestamp,
key hash, value size and the id of the produced record) in fixed-size numpy blocks, so that
millions of records fit in memory (about 24 bytes per record) and nothing is copied as the log
grows.

Vocabulary:

- *log start offset*: the first offset still in the log (retention moves it forward later).
- *log end offset* (LEO): the offset the next appended record will get.
- *high watermark* (HW): records below it are committed and visible to consumers.
- *leader epoch cache*: ``(epoch, start offset)`` for every leader epoch in this log, which a
  replica uses to find where its log diverges from a new leader's (KIP-101, KIP-279).
- *producer state*: each idempotent producer's epoch and last batches' sequences, kept as
  batches are appended and rebuilt after a truncation (``sim.broker.producer_state``).

A record's *record id* says which producer record it is (``producer id << 40 | index``), so an
audit can tell a lost record from a duplicate or from another record at the same offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from sim.broker.producer_state import NUM_BATCHES_TO_RETAIN, ProducerStateManager
from sim.broker.transaction_index import TransactionIndex

BLOCK_RECORDS = 1 << 16
"""Records per storage block: big enough to amortise, small enough not to waste memory."""

RECORD_COLUMNS = {
    "timestamp_ms": np.int64, "key_hash": np.int32, "value_size": np.int32, "record_id": np.int64,
}
BATCH_COLUMNS = ("base_offset", "records", "size_bytes", "producer_id", "leader_epoch",
                 "base_sequence", "producer_epoch", "is_transactional", "is_control")


@dataclass(frozen=True)
class Segment:
    """A log segment: named by its base offset, as Kafka's 00000000000000000170.log files are."""

    base_offset: int

    @property
    def file_name(self) -> str:
        return f"{self.base_offset:020d}.log"


class Batch(NamedTuple):
    """One stored record batch (a row of the batch index)."""

    base_offset: int
    records: int
    size_bytes: int
    producer_id: int = -1
    leader_epoch: int = 0
    base_sequence: int = -1
    producer_epoch: int = 0
    is_transactional: bool = False  # attribute bit 4: written inside a transaction (KIP-98)
    is_control: bool = False  # attribute bit 5: a commit or abort marker, never shown to apps

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.records - 1


class PartitionLog:
    """The records of one replica of one partition.

    Records are appended a batch at a time; offsets are consecutive from ``log_start_offset``.
    ``segment_bytes`` decides when a new segment starts (Kafka rolls a segment when the next
    batch would not fit).
    """

    changes = 0
    """Bumped (for every log) whenever a log's end, high watermark or start moves: readers that
    found nothing to read need not look again until it, or the metadata, has changed."""

    def __init__(self, segment_bytes: int = 1 << 30) -> None:
        self._blocks: list[dict[str, np.ndarray]] = []
        self._batches: list[Batch] = []
        self.segment_bytes = segment_bytes
        self.segments: list[Segment] = [Segment(0)]
        self._segment_size = 0
        self._log_start_offset = 0
        self.log_end_offset = 0
        self._high_watermark = 0
        self.size_bytes = 0
        self.epochs: list[tuple[int, int]] = []  # leader epoch cache: (epoch, start offset)
        self.producer_state = ProducerStateManager()  # idempotent producers, from the log
        self.transactions = TransactionIndex()  # open transactions and aborted ones, from the log

    def __len__(self) -> int:
        return self.log_end_offset - self.log_start_offset

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @high_watermark.setter
    def high_watermark(self, offset: int) -> None:
        if offset != self._high_watermark:
            self._high_watermark = offset
            PartitionLog.changes += 1

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @log_start_offset.setter
    def log_start_offset(self, offset: int) -> None:
        if offset != self._log_start_offset:
            self._log_start_offset = offset
            PartitionLog.changes += 1

    def __repr__(self) -> str:
        return (f"PartitionLog(records={len(self)}, batches={len(self._batches)}, "
                f"leo={self.log_end_offset}, hw={self.high_watermark})")

    @property
    def latest_epoch(self) -> int:
        return self.epochs[-1][0] if self.epochs else -1

    def append_batch(
        self,
        columns: dict[str, np.ndarray],
        size_bytes: int,
        producer_id: int = -1,
        leader_epoch: int = 0,
        base_sequence: int = -1,
        producer_epoch: int = 0,
        is_transactional: bool = False,
        is_control: bool = False,
    ) -> int:
        """Append one record batch (one array per ``RECORD_COLUMNS`` name); return its offset.

        Transactional and control batches also update the transaction state
        (``sim.broker.transaction_index``): where open transactions start, which were aborted.
        """
        n = len(columns["timestamp_ms"])
        base = self.log_end_offset
        if self._segment_size and self._segment_size + size_bytes > self.segment_bytes:
            self.segments.append(Segment(base))
            self._segment_size = 0
        self._segment_size += size_bytes
        if leader_epoch > self.latest_epoch:
            self.epochs.append((leader_epoch, base))
        block_index, fill = divmod(base - self.log_start_offset, BLOCK_RECORDS)
        if block_index < len(self._blocks) and fill + n <= BLOCK_RECORDS:
            block = self._blocks[block_index]  # the usual case: the batch fits in the last block
            for name in RECORD_COLUMNS:
                block[name][fill : fill + n] = columns[name]
        else:
            self._write_blocks(columns, n)
        batch = Batch(base, n, size_bytes, producer_id, leader_epoch, base_sequence,
                      producer_epoch, is_transactional, is_control)
        self._batches.append(batch)
        if base_sequence >= 0:
            self.producer_state.update(producer_id, producer_epoch, base_sequence, n, base)
        if is_control:  # a marker of a newer epoch fences the older one on every replica
            self.producer_state.update_marker(producer_id, producer_epoch)
        if is_transactional:
            self.transactions.append(batch, int(columns["key_hash"][0]) if is_control else -1)
        self.log_end_offset += n
        PartitionLog.changes += 1
        self.size_bytes += size_bytes
        return base

    def _write_blocks(self, columns: dict[str, np.ndarray], n: int) -> None:
        """Copy ``n`` new records into the storage blocks, adding blocks as they fill up."""
        done = 0
        while done < n:
            position = self.log_end_offset - self.log_start_offset + done
            block_index, fill = divmod(position, BLOCK_RECORDS)
            if block_index == len(self._blocks):
                self._blocks.append({name: np.empty(BLOCK_RECORDS, dtype)
                                     for name, dtype in RECORD_COLUMNS.items()})
            take = min(n - done, BLOCK_RECORDS - fill)
            block = self._blocks[block_index]
            for name in RECORD_COLUMNS:
                block[name][fill : fill + take] = columns[name][done : done + take]
            done += take

    @property
    def batch_count(self) -> int:
        return len(self._batches)

    def column(self, name: str, start: int | None = None, stop: int | None = None) -> np.ndarray:
        """One record column for offsets ``start … stop-1`` (default: the whole log)."""
        first = self.log_start_offset if start is None else start
        last = self.log_end_offset if stop is None else stop
        if last <= first:
            return np.empty(0, RECORD_COLUMNS[name])
        lo = first - self.log_start_offset
        hi = last - self.log_start_offset
        parts = []
        for b in range(lo // BLOCK_RECORDS, (hi - 1) // BLOCK_RECORDS + 1):
            block = self._blocks[b][name]
            parts.append(block[max(lo - b * BLOCK_RECORDS, 0) : min(hi - b * BLOCK_RECORDS,
                                                                    BLOCK_RECORDS)])
        return parts[0].copy() if len(parts) == 1 else np.concatenate(parts)

    def records(self, start: int | None = None, stop: int | None = None) -> pd.DataFrame:
        """The records as a DataFrame with an ``offset`` column."""
        first = self.log_start_offset if start is None else start
        last = self.log_end_offset if stop is None else stop
        offsets = np.arange(first, max(first, last), dtype=np.int64)
        return pd.DataFrame({"offset": offsets,
                             **{n: self.column(n, first, last) for n in RECORD_COLUMNS}})

    def batches(self) -> pd.DataFrame:
        """One row per stored record batch."""
        return pd.DataFrame(self._batches,
                            columns=list(BATCH_COLUMNS))

    def batches_from(self, offset: int, max_bytes: int | None = None) -> list[Batch]:
        """Whole batches starting at ``offset`` (a batch boundary), up to about ``max_bytes``."""
        i = self._batch_index(offset)
        out: list[Batch] = []
        size = 0
        for batch in self._batches[i:]:
            if out and max_bytes is not None and size + batch.size_bytes > max_bytes:
                break
            out.append(batch)
            size += batch.size_bytes
        return out

    def batches_overlapping(self, start: int, stop: int) -> list[Batch]:
        """The batches holding any of offsets ``start … stop-1``."""
        first = max(self._batch_index(start) - 1, 0)
        return [b for b in self._batches[first:self._batch_index(stop)] if b.last_offset >= start]

    def copy_batches_from(self, leader: PartitionLog, batches: list[Batch]) -> None:
        """A follower appends batches fetched from ``leader``, keeping offsets and epochs."""
        for batch in batches:
            if batch.base_offset != self.log_end_offset:
                raise ValueError(f"fetched batch at {batch.base_offset} does not follow this "
                                 f"log's end {self.log_end_offset}")
            stop = batch.base_offset + batch.records
            columns = {n: leader.column(n, batch.base_offset, stop) for n in RECORD_COLUMNS}
            self.append_batch(columns, batch.size_bytes, batch.producer_id, batch.leader_epoch,
                              batch.base_sequence, batch.producer_epoch, batch.is_transactional,
                              batch.is_control)

    def end_offset_for_epoch(self, epoch: int) -> int:
        """Kafka's ``LeaderEpochFileCache.endOffsetFor``: where ``epoch`` ends in this log.

        The start offset of the first later epoch, or the log end offset if ``epoch`` is the
        latest one here. A follower truncates to this to drop what diverged (KIP-279).
        """
        later = [start for e, start in self.epochs if e > epoch]
        return later[0] if later else self.log_end_offset

    def truncate_to(self, offset: int) -> pd.DataFrame:
        """Drop every record at or after ``offset``; return the dropped records."""
        if offset >= self.log_end_offset:
            return self.records(self.log_end_offset, self.log_end_offset)
        offset = max(offset, self.log_start_offset)
        dropped = self.records(offset, self.log_end_offset)
        keep = self._batch_index(offset)
        if keep and self._batches[keep - 1].last_offset >= offset:  # cut inside a batch
            cut = self._batches[keep - 1]
            records = offset - cut.base_offset
            self._batches[keep - 1] = Batch(cut.base_offset, records,
                                            cut.size_bytes * records // cut.records,
                                            cut.producer_id, cut.leader_epoch, cut.base_sequence,
                                            cut.producer_epoch, cut.is_transactional,
                                            cut.is_control)
        self.size_bytes -= sum(b.size_bytes for b in self._batches[keep:])
        del self._batches[keep:]
        self.log_end_offset = offset
        PartitionLog.changes += 1
        self.high_watermark = min(self.high_watermark, offset)
        self.epochs = [(e, start) for e, start in self.epochs if start < offset]
        needed = (offset - self.log_start_offset + BLOCK_RECORDS - 1) // BLOCK_RECORDS
        del self._blocks[needed:]
        self.segments = [s for s in self.segments if s.base_offset < offset] or [Segment(offset)]
        self._reload_producer_state()
        if self.transactions.any:
            self.transactions.reload((b, int(self.column("key_hash", b.base_offset,
                                                         b.base_offset + 1)[0]))
                                     for b in self._batches if b.is_transactional)
        return dropped

    @property
    def last_stable_offset(self) -> int:
        """The LSO: below it every transaction is decided (``UnifiedLog.lastStableOffset``).

        The first offset of the oldest open transaction, or the high watermark if that is lower.
        A transaction that never ends holds it back (a *hanging* transaction).
        """
        return min(self.high_watermark, self.transactions.first_unstable_offset(
            self.log_end_offset))

    def _reload_producer_state(self) -> None:
        """Rebuild the producer state from what the log still holds (``truncateAndReload``).

        Each producer's entry needs only its last ``NUM_BATCHES_TO_RETAIN`` batches of its
        latest epoch, so the log is read backwards until every producer known before is
        complete (or the log's start is reached).
        """
        pending = set(self.producer_state.producers)
        kept: dict[int, list[Batch]] = {}
        for batch in reversed(self._batches):
            if not pending:
                break
            pid = batch.producer_id
            if batch.base_sequence < 0 or pid not in pending:
                continue
            mine = kept.setdefault(pid, [])
            if mine and batch.producer_epoch != mine[0].producer_epoch:
                pending.discard(pid)  # an older epoch: the entry holds only the latest one
                continue
            mine.append(batch)
            if len(mine) == NUM_BATCHES_TO_RETAIN:
                pending.discard(pid)
        ordered = sorted((b for batches in kept.values() for b in batches),
                         key=lambda b: b.base_offset)
        self.producer_state.reload((b.producer_id, b.producer_epoch, b.base_sequence, b.records,
                                    b.base_offset) for b in ordered)

    def _batch_index(self, offset: int) -> int:
        """Index of the first batch whose base offset is ≥ ``offset``."""
        lo, hi = 0, len(self._batches)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._batches[mid].base_offset < offset:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def nbytes(self) -> int:
        """Memory held by the stored columns and the batch index (about 100 bytes a batch)."""
        blocks = sum(a.nbytes for block in self._blocks for a in block.values())
        return blocks + 100 * len(self._batches)
