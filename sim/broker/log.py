"""A partition's log, stored column-wise.

Kafka stores a partition as a sequence of record batches in segment files. Here a log keeps one
entry per batch (base offset, producer, leader epoch, size) and per-record columns (timestamp,
key hash, value size and the id of the produced record) in fixed-size numpy blocks, so that
millions of records fit in memory and nothing is copied as the log grows. A full block is
*sealed*: each column is stored as differences from its smallest value in the narrowest integer
type that holds them (timestamps and record ids span a small range within a block), about 11 to
14 bytes per record instead of 24; reading widens them back. A sealed block never changes, so a
follower whose block holds the same records as the leader's keeps the leader's arrays rather
than a second copy (each replica's log still counts them as its own bytes, as each Kafka replica
has its own segment files). A produced batch is kept as indices into the producer's buffer (a
``RecordSource``) until something reads the log's records: only then are its columns written
into the blocks (``append_from``); a follower fetching such batches takes them the same way.

Vocabulary:

- *segment*: a run of whole batches, as Kafka's ``00000000000000000170.log`` files; the last one
  is the *active* segment, the only one appended to; the others are *closed*. A new segment is
  rolled when the next batch would make the active one exceed ``segment.bytes``, or when the
  batch's timestamp is more than ``segment.ms`` after the active segment's first batch
  (``LogSegment.shouldRoll``).
- *log start offset*: the first offset still in the log; deleting the oldest whole segments
  (retention, ``sim.broker.retention``) moves it forward on the leader, and followers learn it
  through their fetches.
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

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd

from sim import config
from sim import trace as events
from sim.broker.producer_state import NUM_BATCHES_TO_RETAIN, ProducerStateManager
from sim.broker.transaction_index import TransactionIndex

SEGMENT_ROLL = events.register(events.EventKind(
    "log.segment.roll", ("topic", "partition", "node", "base_offset", "reason"),
    "a replica closed its active segment and started a new one at base_offset"))

BLOCK_RECORDS = 1 << 14
"""Records per storage block: big enough to amortise, small enough that the one open (not yet
sealed, full-width) block of each log wastes little memory."""

RECORD_COLUMNS = {
    "timestamp_ms": np.int64, "key_hash": np.int32, "value_size": np.int32, "record_id": np.int64,
}
_NARROW = (np.uint8, np.uint16, np.uint32)
"""The types a sealed block's column may be stored in (as ``value - smallest``), narrowest
first."""
_NARROWED = ("timestamp_ms", "value_size", "record_id")
"""Columns stored as differences from a base when sealed (key hashes span all of int32)."""


class _Block:
    """``BLOCK_RECORDS`` records' columns, and the mask of those the log cleaner removed (only
    a block with a removal has one).

    *Open* while records are appended: every column has its ``RECORD_COLUMNS`` type. *Sealed*
    once full: a column is stored as ``value - base`` in the narrowest of ``_NARROW`` that fits,
    the base being its smallest value (``bases`` keeps each base). A sealed block's arrays are
    read-only (NumPy refuses writes to them); one a truncation cuts into is opened again, on new
    arrays, before anything is written to it. So a follower's sealed block holding the same
    records as the leader's can keep the leader's arrays instead of its own (``share``): in
    Kafka each replica has its own file of the same bytes, here they are stored once. Only the
    arrays are shared; the mask of removed records, and everything else, stays per replica.
    """

    __slots__ = ("bases", "cols", "removed", "sealed")

    def __init__(self) -> None:
        self.cols = {name: np.empty(BLOCK_RECORDS, dtype) for name, dtype in RECORD_COLUMNS.items()}
        self.bases = dict.fromkeys(RECORD_COLUMNS, 0)
        self.removed: np.ndarray | None = None
        self.sealed = False

    def __getitem__(self, name: str) -> np.ndarray:
        """The stored array of a column (writable only while the block is open)."""
        return self.cols[name]

    def read(self, name: str, a: int, z: int) -> np.ndarray:
        """Records ``a … z-1`` of column ``name`` with its ``RECORD_COLUMNS`` type: a view of an
        open block, a new array from a sealed one."""
        part = self.cols[name][a:z]
        if not self.sealed:
            return part
        out = part.astype(RECORD_COLUMNS[name])
        base = self.bases[name]
        if base:
            out += base
        return out

    def seal(self) -> None:
        """Store each column in the narrowest type its values fit (the block is full)."""
        for name in _NARROWED:
            col = self.cols[name]
            lo, hi = int(col.min()), int(col.max())
            for narrow in _NARROW:
                if hi - lo <= np.iinfo(narrow).max and narrow().itemsize < col.itemsize:
                    self.cols[name] = (col - col.dtype.type(lo)).astype(narrow)
                    self.bases[name] = lo
                    break
        for col in self.cols.values():
            col.flags.writeable = False
        self.sealed = True

    def share(self, other: _Block) -> None:
        """Keep ``other``'s arrays instead of this block's if both are sealed and hold the same
        records (a follower's copy of the leader's block): the same bytes are stored once."""
        if not (self.sealed and other.sealed) or self.bases != other.bases:
            return
        mine, theirs = self.cols, other.cols
        if all(mine[n] is theirs[n] or (mine[n].dtype == theirs[n].dtype
                                        and np.array_equal(mine[n], theirs[n]))
               for n in RECORD_COLUMNS):
            self.cols = dict(theirs)

    def unseal(self) -> None:
        """Widen every column back to its ``RECORD_COLUMNS`` type, so that it can be written."""
        if self.sealed:
            self.cols = {name: self.read(name, 0, BLOCK_RECORDS) for name in RECORD_COLUMNS}
            self.bases = dict.fromkeys(RECORD_COLUMNS, 0)
            self.sealed = False

    def nbytes(self) -> int:
        """The bytes of this block's columns and mask, shared arrays included."""
        removed = 0 if self.removed is None else self.removed.nbytes
        return sum(a.nbytes for a in self.cols.values()) + removed

BATCH_COLUMNS = ("base_offset", "records", "size_bytes", "producer_id", "leader_epoch",
                 "base_sequence", "producer_epoch", "is_transactional", "is_control")


_BASE_OFFSET = itemgetter(0)
"""A ``Batch``'s base offset, the key the batch index is sorted by."""


@dataclass
class Segment:
    """A log segment: named by its base offset, as Kafka's 00000000000000000170.log files are.

    ``end_offset`` is one past its last record (the next segment's base offset once it is
    closed), ``size_bytes`` the bytes of its batches, ``max_timestamp_ms`` the largest record
    timestamp in it (-1 while empty): retention by time reads that (Kafka's
    ``LogSegment.maxTimestampSoFar``). ``rolling_timestamp_ms`` is the largest timestamp of its
    first batch, from which ``segment.ms`` is measured (``rollingBasedTimestamp``).
    """

    base_offset: int
    end_offset: int = -1
    size_bytes: int = 0
    max_timestamp_ms: int = -1
    rolling_timestamp_ms: int = -1

    def __post_init__(self) -> None:
        if self.end_offset < 0:
            self.end_offset = self.base_offset

    @property
    def file_name(self) -> str:
        return f"{self.base_offset:020d}.log"

    @property
    def empty(self) -> bool:
        return self.size_bytes == 0 and self.end_offset == self.base_offset


_MAXIMUM = np.maximum.reduce
"""``ndarray.max`` without its Python wrapper (one C call: it runs for every batch)."""


def largest_timestamp(timestamps: np.ndarray) -> int:
    """The largest of a batch's timestamps (-1 for none), in whole milliseconds (the floor, of
    send times that are not). A typical batch holds a few records, for which Python's ``max``
    over a list is several times cheaper than a NumPy reduction."""
    n = len(timestamps)
    if n == 1:  # the commonest batch: its only timestamp
        return int(timestamps.item())
    if n <= 64:
        return int(max(timestamps.tolist())) if n else -1
    return int(_MAXIMUM(timestamps))


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


class RecordSource(Protocol):
    """Where a produced batch's records are: a producer's buffer. A leader's log keeps the
    batch as indices into it and writes the records' columns into its blocks only when
    something reads them (``PartitionLog.append_from``)."""

    def record_columns(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """The ``RECORD_COLUMNS`` of records ``idx``, as the log stores them."""
        ...

    def max_timestamp(self, idx: np.ndarray) -> int:
        """The largest CreateTime of records ``idx``."""
        ...


DEFAULT_SEGMENT_BYTES = 1 << 30  # segment.bytes, 1 GiB
DEFAULT_SEGMENT_MS = 604_800_000  # segment.ms, 7 days


def log_for(topic_config: Mapping[str, Any]) -> PartitionLog:
    """A new empty log with a topic's segment settings (``lab.segment.bytes`` or
    ``segment.bytes``, and ``segment.ms``)."""
    return PartitionLog(config.segment_bytes(topic_config),
                        int(topic_config.get("segment.ms", DEFAULT_SEGMENT_MS)))


class LogChanges:
    """How many times any log's end, high watermark or start has moved.

    Readers that found nothing to read need not look again until this count, or the metadata,
    has changed (a consumer's idle polls). It lives in its own object rather than in
    ``PartitionLog``: it moves for nearly every event, and CPython forgets what it cached about
    a class's attributes whenever one of them is assigned.
    """

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


log_changes = LogChanges()


class _LogPosition:
    """An offset of ``PartitionLog`` whose every change counts in ``log_changes``.

    It defines ``__set__`` only: CPython then reads the attribute from the log's own
    ``__dict__``, as a plain attribute, and only assignments come here. The high watermark and
    the log start offset are read for every fetch, so reading them costs no function call.
    A change of the high watermark also tells the transaction index, which keeps the markers
    not yet below it (``UnifiedLog.updateHighWatermarkMetadata``).
    """

    def __init__(self, is_high_watermark: bool = False) -> None:
        self.is_high_watermark = is_high_watermark

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __set__(self, log: PartitionLog, offset: int) -> None:
        values = log.__dict__
        old = values.get(self.name)
        if offset == old:
            return
        values[self.name] = offset
        if old is None:  # the log is being made
            return
        log_changes.count += 1
        if self.is_high_watermark and log.transactions.completed:
            log.transactions.on_high_watermark_updated(offset)


class PartitionLog:
    """The records of one replica of one partition.

    Records are appended a batch at a time; offsets are consecutive from ``log_start_offset``.
    ``segment_bytes`` and ``segment_ms`` decide when a new segment starts (see the module
    docstring). The segment API for retention and tiering: ``segments`` (oldest first, the last
    is active), ``active_segment``, ``closed_segments()`` and ``delete_oldest_segments(n)``.
    ``log_changes`` counts changes to any log, the high watermark's and the log start
    offset's included (``_LogPosition``).
    """

    high_watermark = _LogPosition(is_high_watermark=True)
    log_start_offset = _LogPosition()

    def __init__(self, segment_bytes: int = DEFAULT_SEGMENT_BYTES,
                 segment_ms: int = DEFAULT_SEGMENT_MS) -> None:
        self._stored: list[_Block] = []  # read through ``_blocks``
        # batches appended by reference, not yet in the blocks, in offset order: (base offset,
        # source, record indices, largest timestamp)
        self._pending: list[tuple[int, RecordSource, np.ndarray, int]] = []
        self._copied_from: PartitionLog | None = None  # the leader whose pending batches this
        # follower took last: its blocks, once written, keep the leader's full ones' arrays
        self._block_base = 0  # the offset stored first in block 0
        self._batches: list[Batch] = []
        self.segment_bytes = segment_bytes
        self.segment_ms = segment_ms
        self.segments: list[Segment] = [Segment(0)]
        self.log_start_offset = 0
        self.log_end_offset = 0
        self.high_watermark = 0
        self.size_bytes = 0
        self.epochs: list[tuple[int, int]] = []  # leader epoch cache: (epoch, start offset)
        self.producer_state = ProducerStateManager()  # idempotent producers, from the log
        self.cleaned_records = 0  # records the log cleaner removed, ever (their offsets are gaps)
        self.clean_offset = 0  # the cleaner checkpoint: offsets below it have been cleaned
        # each cleaning's (end offset, tombstone delete horizon ms), oldest first (KIP-534)
        self.clean_passes: list[tuple[int, float]] = []
        # transaction markers found with no data left: offset → delete horizon ms (KIP-534)
        self.marker_horizons: dict[int, float] = {}
        self.transactions = TransactionIndex()  # open transactions and aborted ones, from the log

    def __len__(self) -> int:
        return self.log_end_offset - self.log_start_offset

    def __repr__(self) -> str:
        return (f"PartitionLog(records={len(self)}, batches={len(self._batches)}, "
                f"leo={self.log_end_offset}, hw={self.high_watermark})")

    @property
    def _blocks(self) -> list[_Block]:
        """The storage blocks, with every record appended so far written in them."""
        if self._pending:
            self._write_pending()
        return self._stored

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
        timestamps = columns["timestamp_ms"]
        n = len(timestamps)
        self._write_blocks(columns, n, self.log_end_offset)
        # Batch(...) without the Python-level __new__ a NamedTuple calls: half the cost
        batch = tuple.__new__(Batch, (self.log_end_offset, n, size_bytes, producer_id,
                                      leader_epoch, base_sequence, producer_epoch,
                                      is_transactional, is_control))
        return self._add_batch(batch, largest_timestamp(timestamps),
                               int(columns["key_hash"][0]) if is_control else -1)

    def append_from(self, source: RecordSource, idx: np.ndarray, size_bytes: int,
                    producer_id: int = -1, leader_epoch: int = 0, base_sequence: int = -1,
                    producer_epoch: int = 0, is_transactional: bool = False) -> int:
        """Append one produced batch, records ``idx`` of ``source``; return its offset.

        The batch is entered at once (offsets, segments, producer state); its records' columns
        are written into the blocks when something first reads the blocks, for all the batches
        appended so far at once (``_write_pending``). A leader that nobody reads from (no
        follower, no consumer yet) so never copies its records batch by batch.
        """
        base = self.log_end_offset
        max_timestamp = source.max_timestamp(idx)
        self._pending.append((base, source, idx, max_timestamp))
        batch = tuple.__new__(Batch, (base, len(idx), size_bytes, producer_id, leader_epoch,
                                      base_sequence, producer_epoch, is_transactional, False))
        return self._add_batch(batch, max_timestamp, -1)

    def _write_pending(self) -> None:
        """Write the records of the batches ``append_from`` appended into the blocks, in
        offset order: one read of the source per run of its batches, at most about a block's
        records at a time (so that a long run needs little memory besides its blocks)."""
        pending, self._pending = self._pending, []
        start = at = pending[0][0]
        sources = [entry[1] for entry in pending]
        if sources.count(sources[0]) == len(sources):  # one producer's batches (the usual
            # case): the chunks are cut from the running record count, without a loop here
            indices = [entry[2] for entry in pending]
            ends = np.cumsum(np.fromiter(map(len, indices), np.int64, len(indices)))
            lo = 0
            while lo < len(indices):
                before = int(ends[lo - 1]) if lo else 0
                # up to and with the batch that brings the chunk to BLOCK_RECORDS records
                hi = int(ends.searchsorted(before + BLOCK_RECORDS, "left")) + 1
                count = int(ends[min(hi, len(indices)) - 1]) - before
                self._write_blocks(sources[0].record_columns(
                    np.concatenate(indices[lo:hi], dtype=np.int64)), count, at)
                at += count
                lo = hi
        else:
            run: list[np.ndarray] = []
            count = 0
            for i, (_, source, idx, _) in enumerate(pending):
                run.append(idx)
                count += len(idx)
                if (i + 1 == len(pending) or sources[i + 1] is not source
                        or count >= BLOCK_RECORDS):
                    self._write_blocks(source.record_columns(np.concatenate(run,
                                                                            dtype=np.int64)),
                                       count, at)
                    at += count
                    run, count = [], 0
        if self._copied_from is not None:  # as copy_batches_from does for the blocks it fills
            self._share_full_blocks(self._copied_from, start, at)

    def _add_batch(self, batch: Batch, max_timestamp: int, control_type: int) -> int:
        """Enter ``batch``, whose records were just written past the log end (where it
        starts): segments, epochs, the batch index, producer and transaction state, the log
        end. Returns its base offset.

        A new segment is rolled first if the batch would overflow the active one, or comes
        more than ``segment.ms`` after its first batch (``LogSegment.shouldRoll``). This runs
        for every batch every replica stores, so the batch's fields are unpacked once.
        """
        (base, n, size_bytes, producer_id, leader_epoch, base_sequence, producer_epoch,
         is_transactional, _) = batch
        active = self.segments[-1]
        if active.size_bytes and (
                active.size_bytes > self.segment_bytes - size_bytes
                or (active.rolling_timestamp_ms >= 0
                    and max_timestamp - active.rolling_timestamp_ms > self.segment_ms)):
            active = self.roll()
        if active.rolling_timestamp_ms < 0:
            active.rolling_timestamp_ms = max_timestamp
        active.end_offset = base + n
        active.size_bytes += size_bytes
        if max_timestamp > active.max_timestamp_ms:
            active.max_timestamp_ms = max_timestamp
        epochs = self.epochs
        if leader_epoch > (epochs[-1][0] if epochs else -1):  # a new latest_epoch
            epochs.append((leader_epoch, base))
        self._batches.append(batch)
        if base_sequence >= 0:
            self.producer_state.update(producer_id, producer_epoch, base_sequence, n, base)
        elif producer_id >= 0:  # a marker, or a coordinator's transactional offsets: a
            # newer epoch fences the older one on every replica
            self.producer_state.update_epoch(producer_id, producer_epoch)
        if is_transactional:
            self.transactions.append(batch, control_type)
        self.log_end_offset += n
        log_changes.count += 1
        self.size_bytes += size_bytes
        return base

    def _write_blocks(self, columns: Mapping[str, np.ndarray], n: int, start: int) -> None:
        """Copy ``n`` records into the storage blocks at offset ``start`` (where the written
        records end), adding blocks as they fill up and sealing each one that is full."""
        blocks = self._blocks  # (batches appended by reference before these are written first)
        block_index, fill = divmod(start - self._block_base, BLOCK_RECORDS)
        if block_index < len(blocks) and fill + n < BLOCK_RECORDS:
            # the usual case: all in the open last block
            cols = blocks[block_index].cols
            if n == 1:  # setting one Python int costs a third of what a one-element slice does
                for name, column in cols.items():
                    column[fill] = columns[name].item()
            else:
                for name, column in cols.items():
                    column[fill : fill + n] = columns[name]
            return
        done = 0
        while done < n:
            block_index, fill = divmod(start - self._block_base + done, BLOCK_RECORDS)
            if block_index == len(blocks):
                blocks.append(_Block())
            take = min(n - done, BLOCK_RECORDS - fill)
            block = blocks[block_index]
            for name in RECORD_COLUMNS:
                block.cols[name][fill : fill + take] = columns[name][done : done + take]
            done += take
            if fill + take == BLOCK_RECORDS:
                block.seal()

    # -- segments ------------------------------------------------------------------------------

    @property
    def active_segment(self) -> Segment:
        """The segment appends go to (always the last; never deleted or cleaned while active)."""
        return self.segments[-1]

    def closed_segments(self) -> list[Segment]:
        """Every segment but the active one, oldest first."""
        return self.segments[:-1]

    def roll(self) -> Segment:
        """Close the active segment and start a new empty one at the log end offset.

        An empty active segment is kept as it is (Kafka never leaves two empty segments).
        """
        if not self.segments[-1].empty:
            self.segments.append(Segment(self.log_end_offset))
        return self.segments[-1]

    def delete_oldest_segments(self, count: int) -> list[Segment]:
        """Delete the ``count`` oldest segments, whole, and move the log start offset past them.

        Retention's primitive (``UnifiedLog.deleteSegments``). When every segment goes, the
        active one is rolled first, so that a log always keeps one (empty) active segment. An
        active segment that is empty already stays: Kafka's ``roll()`` deletes and recreates it
        at the same base offset, the log end offset, and ``deleteSegments`` leaves it out of
        the segments it deletes; so a ``count`` covering every segment of a log whose active
        one is empty deletes the others only (none, for a log of one empty segment).
        The records' storage is freed block by block; the leader epoch cache keeps the epoch in
        force at the new start (``LeaderEpochFileCache.truncateFromStart``); the producer state
        is kept, as Kafka keeps it when the log start offset moves
        (``ProducerStateManager.onLogStartOffsetIncremented`` only drops unreplicated
        transactions). Returns the deleted segments.
        """
        if count <= 0:
            return []
        if count >= len(self.segments):
            count = len(self.segments)
            if self.segments[-1].empty:
                count -= 1  # recreated as it is: not deleted
            else:
                self.roll()
        if count == 0:
            return []
        deleted = self.segments[:count]
        del self.segments[:count]
        self._move_log_start(self.segments[0].base_offset, deleted)
        return deleted

    def maybe_increment_log_start_offset(self, offset: int) -> list[Segment]:
        """Move the log start offset up to ``offset`` (a follower learning the leader's).

        Kafka's ``UnifiedLog.maybeIncrementLogStartOffset`` plus the next retention pass's
        ``deleteLogStartOffsetBreachedSegments``: the start never moves back nor past the log
        end offset, and every segment wholly below it is deleted. Returns the deleted segments.
        """
        offset = min(offset, self.log_end_offset)
        if offset <= self.log_start_offset:  # the usual case: after every follower fetch
            return []
        below = 0
        while below + 1 < len(self.segments) and self.segments[below + 1].base_offset <= offset:
            below += 1
        deleted = self.segments[:below]
        del self.segments[:below]
        self._move_log_start(offset, deleted)
        return deleted

    def truncate_fully_and_start_at(self, offset: int) -> pd.DataFrame:
        """Drop every record and restart the log, empty, at ``offset``.

        Kafka's ``UnifiedLog.truncateFullyAndStartAt``.

        What a follower does when the offset it needs is below the leader's log start offset:
        it can never fetch it, so it starts again at the leader's start. Returns the dropped
        records.
        """
        dropped = self.records()
        self._blocks.clear()
        self._batches.clear()
        self._block_base = self.log_start_offset = self.log_end_offset = offset
        log_changes.count += 1
        self.high_watermark = offset
        self.size_bytes = 0
        self.segments = [Segment(offset)]
        self.epochs = [(self.epochs[-1][0], offset)] if self.epochs else []
        self.clean_offset = offset
        self.clean_passes = []
        self.transactions = TransactionIndex()
        return dropped

    def _move_log_start(self, offset: int, deleted: list[Segment]) -> None:
        self.log_start_offset = offset
        self.high_watermark = max(self.high_watermark, offset)
        self.size_bytes -= sum(s.size_bytes for s in deleted)
        del self._batches[:self._batch_index(offset)]
        drop = (offset - self._block_base) // BLOCK_RECORDS
        del self._blocks[:drop]
        self._block_base += drop * BLOCK_RECORDS
        older = [e for e in self.epochs if e[1] <= offset]
        self.epochs = ([(older[-1][0], offset)] if older else []) + [
            e for e in self.epochs if e[1] > offset]

    def merge_segments(self, groups: list[int]) -> None:
        """Replace runs of the oldest segments by one segment each (the log cleaner writes a
        group of cleaned segments as one file, named by the first one's base offset).

        ``groups`` gives each run's length in segments, oldest first; the active segment is
        never merged.
        """
        merged: list[Segment] = []
        at = 0
        for count in groups:
            run = self.segments[at : at + count]
            at += count
            if any(s is self.segments[-1] for s in run):
                raise ValueError("the active segment cannot be merged")
            merged.append(Segment(run[0].base_offset, run[-1].end_offset,
                                  sum(s.size_bytes for s in run),
                                  max(s.max_timestamp_ms for s in run),
                                  run[0].rolling_timestamp_ms))
        self.segments = merged + self.segments[at:]

    def segments_frame(self) -> pd.DataFrame:
        """One row per segment: file name, offsets, bytes, max timestamp, active or closed."""
        rows = [(s.file_name, s.base_offset, s.end_offset, s.size_bytes, s.max_timestamp_ms,
                 s is self.segments[-1]) for s in self.segments]
        return pd.DataFrame(rows, columns=["file", "base_offset", "end_offset", "size_bytes",
                                           "max_timestamp_ms", "active"])

    # -- reading ---------------------------------------------------------------------------------

    @property
    def batch_count(self) -> int:
        return len(self._batches)

    def column(self, name: str, start: int | None = None, stop: int | None = None) -> np.ndarray:
        """One record column for offsets ``start … stop-1`` (default: the whole log)."""
        first = self.log_start_offset if start is None else start
        last = self.log_end_offset if stop is None else stop
        if last <= first:
            return np.empty(0, RECORD_COLUMNS[name])
        if first < self.log_start_offset or last > self.log_end_offset:
            raise IndexError(f"offsets {first}..{last - 1} are outside the log "
                             f"({self.log_start_offset}..{self.log_end_offset - 1})")
        lo = first - self._block_base
        hi = last - self._block_base
        first_block, last_block = lo // BLOCK_RECORDS, (hi - 1) // BLOCK_RECORDS
        if first_block == last_block:
            block = self._blocks[first_block]
            at = first_block * BLOCK_RECORDS
            part = block.read(name, lo - at, hi - at)
            return part if block.sealed else part.copy()
        parts = [self._blocks[b].read(name, max(lo - b * BLOCK_RECORDS, 0),
                                      min(hi - b * BLOCK_RECORDS, BLOCK_RECORDS))
                 for b in range(first_block, last_block + 1)]
        return np.concatenate(parts)

    def _read_columns(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Every record column for offsets ``start … stop-1`` (inside the log), to be copied at
        once: views of an open block where possible, so not to be kept or changed."""
        lo, hi = start - self._block_base, stop - self._block_base
        b = lo // BLOCK_RECORDS
        if hi > lo and (hi - 1) // BLOCK_RECORDS == b and start >= self.log_start_offset \
                and stop <= self.log_end_offset:
            block = self._blocks[b]
            at = b * BLOCK_RECORDS
            a, z = lo - at, hi - at
            if not block.sealed:  # the usual case, the open block at the log end: views
                cols = block.cols  # (written out: no comprehension's frame for every fetch)
                return {"timestamp_ms": cols["timestamp_ms"][a:z],
                        "key_hash": cols["key_hash"][a:z],
                        "value_size": cols["value_size"][a:z],
                        "record_id": cols["record_id"][a:z]}
            return {name: block.read(name, a, z) for name in RECORD_COLUMNS}
        return {name: self.column(name, start, stop) for name in RECORD_COLUMNS}

    def retained(self, start: int | None = None, stop: int | None = None) -> np.ndarray:
        """For offsets ``start … stop-1``: True where a record is still there, False where the
        log cleaner removed it (``sim.broker.log_cleaner``); offsets are never renumbered."""
        first = self.log_start_offset if start is None else start
        last = self.log_end_offset if stop is None else stop
        out = np.ones(max(last - first, 0), dtype=bool)
        if last <= first or not self.cleaned_records:
            return out
        lo, hi = first - self._block_base, last - self._block_base
        for b in range(lo // BLOCK_RECORDS, (hi - 1) // BLOCK_RECORDS + 1):
            mask = self._blocks[b].removed
            if mask is None:
                continue
            a, z = max(lo - b * BLOCK_RECORDS, 0), min(hi - b * BLOCK_RECORDS, BLOCK_RECORDS)
            at = b * BLOCK_RECORDS + a - lo
            out[at : at + z - a] = ~mask[a:z]
        return out

    def remove_records(self, offsets: np.ndarray, size_bytes: np.ndarray) -> None:
        """The log cleaner removes the records at ``offsets`` (sorted, in closed segments).

        Their offsets become gaps; ``size_bytes`` (one per record) comes off their segments'
        and the log's sizes. The batch index keeps every batch (Kafka keeps a cleaned batch's
        offsets, and the last batch of each producer, for the producer state).
        """
        if not len(offsets):
            return
        positions = np.asarray(offsets, np.int64) - self._block_base
        blocks = positions // BLOCK_RECORDS
        cuts = np.flatnonzero(np.diff(blocks)) + 1  # positions are sorted: one run per block
        for run in np.split(positions, cuts):
            b = int(run[0]) // BLOCK_RECORDS
            block = self._blocks[b]
            mask = block.removed
            if mask is None:
                mask = block.removed = np.zeros(BLOCK_RECORDS, dtype=bool)
            mask[run - b * BLOCK_RECORDS] = True
        bases = np.array([s.base_offset for s in self.segments], np.int64)
        where = np.searchsorted(bases, offsets, side="right") - 1
        freed = np.bincount(where, weights=size_bytes, minlength=len(bases))
        for segment, gone in zip(self.segments, freed, strict=True):
            segment.size_bytes -= int(np.rint(gone))
        self.size_bytes = sum(s.size_bytes for s in self.segments)
        self.cleaned_records += len(offsets)

    def record_sizes(self, start: int, stop: int) -> np.ndarray:
        """Bytes of each record ``start … stop-1``: its batch's bytes shared evenly."""
        first, last = self._batch_index(start), self._batch_index(stop)
        if first and self._batches[first - 1].last_offset >= start:
            first -= 1
        batches = self._batches[first:last]
        if not batches:
            return np.zeros(max(stop - start, 0))
        per = np.array([b.size_bytes / max(b.records, 1) for b in batches])
        counts = np.array([b.records for b in batches], np.int64)
        sizes = np.repeat(per, counts)
        skip = start - batches[0].base_offset
        return sizes[skip : skip + stop - start]

    def records(self, start: int | None = None, stop: int | None = None) -> pd.DataFrame:
        """The records still in the log as a DataFrame with an ``offset`` column (offsets the
        log cleaner removed are gaps)."""
        first = self.log_start_offset if start is None else start
        last = self.log_end_offset if stop is None else stop
        offsets = np.arange(first, max(first, last), dtype=np.int64)
        frame = pd.DataFrame({"offset": offsets,
                              **{n: self.column(n, first, last) for n in RECORD_COLUMNS}})
        if not self.cleaned_records:
            return frame
        return frame[self.retained(first, last)].reset_index(drop=True)

    def batches(self) -> pd.DataFrame:
        """One row per stored record batch."""
        return pd.DataFrame(self._batches,
                            columns=list(BATCH_COLUMNS))

    def batches_from(self, offset: int, max_bytes: int | None = None) -> list[Batch]:
        """Whole batches starting at ``offset`` (a batch boundary), up to about ``max_bytes``."""
        i = self._batch_index(offset)
        if max_bytes is None:
            return self._batches[i:]
        batches = self._batches
        end = len(batches)
        if i >= end - 1:  # the newest batch or none: the usual fetch of a follower keeping up
            return batches[i:]
        out: list[Batch] = []
        size = 0
        while i < end:
            batch = batches[i]
            if out and size + batch.size_bytes > max_bytes:
                break
            out.append(batch)
            size += batch.size_bytes
            i += 1
        return out

    def batches_overlapping(self, start: int, stop: int) -> list[Batch]:
        """The batches holding any of offsets ``start … stop-1``."""
        first = max(self._batch_index(start) - 1, 0)
        return [b for b in self._batches[first:self._batch_index(stop)] if b.last_offset >= start]

    def copy_batches_from(self, leader: PartitionLog, batches: list[Batch]) -> None:
        """A follower appends batches fetched from ``leader``, keeping offsets and epochs.

        The fetched run of batches is read and written one slice per column; each batch is then
        entered as ``append_batch`` would (segments roll between batches as on the leader).
        """
        if not batches:
            return
        if leader.cleaned_records:  # batches may arrive with gaps: one at a time
            for batch in batches:
                self._copy_batch_from(leader, batch)
            return
        if self._copy_pending_from(leader, batches):
            return  # the usual fetch of a follower keeping up: batches the leader has not
            # written either
        if len(batches) == 1 and self._copy_record_from(leader, batches[0]):
            return  # a follower keeping up with batches of one record
        start = at = self.log_end_offset
        for batch in batches:
            if not batch.records:  # an empty batch: one at a time too
                for each in batches:
                    self._copy_batch_from(leader, each)
                return
            if batch.base_offset != at:
                raise ValueError(f"fetched batch at {batch.base_offset} does not follow this "
                                 f"log's end {at}")
            at += batch.records
        columns = leader._read_columns(start, at)
        self._write_blocks(columns, at - start, start)
        if (at - self._block_base) // BLOCK_RECORDS > (start - self._block_base) // BLOCK_RECORDS:
            self._share_full_blocks(leader, start, at)  # the copy filled a block
        if len(batches) == 1:  # the usual fetch of a busy partition: one batch
            batch = batches[0]
            self._add_batch(batch, largest_timestamp(columns["timestamp_ms"]),
                            int(columns["key_hash"][0]) if batch.is_control else -1)
            return
        starts = [b.base_offset - start for b in batches]
        max_timestamps = np.maximum.reduceat(columns["timestamp_ms"], starts).tolist()
        key_hash = columns["key_hash"]
        for batch, max_timestamp, first in zip(batches, max_timestamps, starts, strict=True):
            # a fetched batch is stored as the leader stored it (a Batch never changes)
            self._add_batch(batch, max_timestamp, int(key_hash[first]) if batch.is_control
                            else -1)

    def _copy_pending_from(self, leader: PartitionLog, batches: list[Batch]) -> bool:
        """Append fetched batches that ``leader`` holds by reference (``append_from``, not
        written to its blocks yet) by reference too: nothing is read or copied. False
        (nothing appended) unless every batch is one of those and starts this log's end."""
        pending = leader._pending
        first = batches[0].base_offset
        if not pending or first < pending[0][0] or first != self.log_end_offset:
            return False
        n = len(batches)
        i = len(pending) - n  # usually the leader's newest batches: a follower keeping up
        if i < 0 or pending[i][0] != first:
            i = bisect_left(pending, first, key=_BASE_OFFSET)
        entries = pending[i : i + n]
        # pending batches are a run of the leader's newest ones, without gaps: the run fetched
        # is there if its first and last batches are
        if len(entries) != n or entries[0][0] != first or (
                entries[-1][0] != batches[-1].base_offset):
            return False
        self._copied_from = leader
        for entry, batch in zip(entries, batches, strict=True):
            self._pending.append(entry)
            self._add_batch(batch, entry[3], -1)  # as the leader stored it
        return True

    def _copy_record_from(self, leader: PartitionLog, batch: Batch) -> bool:
        """Copy a fetched batch of one record, value by value, if it is where a follower keeping
        up finds it: in the leader's open block, and going into this log's open block without
        filling it. False (nothing copied) otherwise. Copying four values costs a third of
        reading and writing four one-record slices."""
        offset = batch.base_offset
        if (batch.records != 1 or batch.is_control or offset != self.log_end_offset
                or not leader.log_start_offset <= offset < leader.log_end_offset):
            return False
        source, at = divmod(offset - leader._block_base, BLOCK_RECORDS)
        block_index, fill = divmod(offset - self._block_base, BLOCK_RECORDS)
        if (fill + 1 == BLOCK_RECORDS or block_index == len(self._blocks)
                or leader._blocks[source].sealed):
            return False
        theirs = leader._blocks[source].cols
        mine = self._blocks[block_index].cols
        timestamp = theirs["timestamp_ms"].item(at)  # also the batch's max timestamp
        mine["timestamp_ms"][fill] = timestamp
        mine["key_hash"][fill] = theirs["key_hash"].item(at)
        mine["value_size"][fill] = theirs["value_size"].item(at)
        mine["record_id"][fill] = theirs["record_id"].item(at)
        self._add_batch(batch, timestamp, -1)
        return True

    def _copy_batch_from(self, leader: PartitionLog, batch: Batch) -> None:
        """Copy one fetched batch, with the gaps the leader's cleaner left in it."""
        if batch.base_offset != self.log_end_offset:
            raise ValueError(f"fetched batch at {batch.base_offset} does not follow this "
                             f"log's end {self.log_end_offset}")
        stop = batch.base_offset + batch.records
        columns = {n: leader.column(n, batch.base_offset, stop) for n in RECORD_COLUMNS}
        self.append_batch(columns, batch.size_bytes, batch.producer_id, batch.leader_epoch,
                          batch.base_sequence, batch.producer_epoch, batch.is_transactional,
                          batch.is_control)
        self._share_full_blocks(leader, batch.base_offset, stop)
        if leader.cleaned_records:  # a cleaned batch arrives with its gaps
            gaps = batch.base_offset + np.flatnonzero(~leader.retained(batch.base_offset, stop))
            self.remove_records(gaps, self.record_sizes(batch.base_offset, stop)[
                gaps - batch.base_offset])

    def _share_full_blocks(self, leader: PartitionLog, start: int, stop: int) -> None:
        """The blocks that copying offsets ``start … stop-1`` from ``leader`` filled (and
        sealed) keep the leader's arrays where the leader's block at the same offsets holds the
        same records (``_Block.share``): a fetched record is then stored once in memory, though
        each replica's log still counts it (``nbytes``, segment and log sizes)."""
        first = (start - self._block_base) // BLOCK_RECORDS
        full = (stop - self._block_base) // BLOCK_RECORDS
        for b in range(first, full):
            at, misaligned = divmod(self._block_base + b * BLOCK_RECORDS - leader._block_base,
                                    BLOCK_RECORDS)
            if not misaligned and 0 <= at < len(leader._blocks):
                self._blocks[b].share(leader._blocks[at])

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
        log_changes.count += 1
        self.high_watermark = min(self.high_watermark, offset)
        self.epochs = [(e, start) for e, start in self.epochs if start < offset]
        needed = (offset - self._block_base + BLOCK_RECORDS - 1) // BLOCK_RECORDS
        del self._blocks[needed:]
        block_index, fill = divmod(offset - self._block_base, BLOCK_RECORDS)
        if block_index < len(self._blocks):  # the cut block is written again
            cut_block = self._blocks[block_index]
            cut_block.unseal()
            if cut_block.removed is not None:
                cut_block.removed[fill:] = False
        self.clean_offset = min(self.clean_offset, offset)
        self._truncate_segments(offset)
        self._reload_producer_state()
        if self.transactions.any:
            self.transactions.reload((b, int(self.column("key_hash", b.base_offset,
                                                         b.base_offset + 1)[0]))
                                     for b in self._batches if b.is_transactional)
        return dropped

    @property
    def last_stable_offset(self) -> int:
        """The LSO: below it every transaction is decided (``UnifiedLog.lastStableOffset``).

        The first offset of the oldest transaction that is open, or decided with its marker
        not yet below the high watermark (``ProducerStateManager.unreplicatedTxns``: a marker
        that a new leader may not have), or the high watermark if that is lower. A transaction
        that never ends holds it back (a *hanging* transaction).
        """
        return min(self.high_watermark, self.transactions.first_unstable_offset(
            self.high_watermark))

    def _truncate_segments(self, offset: int) -> None:
        """Drop segments at or after ``offset``; recount the cut one (``LogSegment.truncateTo``)."""
        self.segments = ([s for s in self.segments if s.base_offset < offset]
                         or [Segment(offset)])
        active = self.segments[-1]
        active.end_offset = min(active.end_offset, offset)
        first = self._batch_index(active.base_offset)
        kept = self._batches[first:]
        active.size_bytes = sum(b.size_bytes for b in kept)
        stamps = self.column("timestamp_ms", max(active.base_offset, self.log_start_offset),
                             active.end_offset)
        active.max_timestamp_ms = int(stamps.max()) if len(stamps) else -1
        if kept:
            active.rolling_timestamp_ms = int(self.column(
                "timestamp_ms", kept[0].base_offset, kept[0].base_offset + kept[0].records).max()
                if kept[0].records else -1)
        else:
            active.rolling_timestamp_ms = -1

    def _reload_producer_state(self) -> None:
        """Rebuild the producer state from what the log still holds (``truncateAndReload``).

        Each producer's entry needs only its last ``NUM_BATCHES_TO_RETAIN`` batches of its
        latest epoch, so the log is read backwards until every producer known before is
        complete (or the log's start is reached).
        """
        pending = set(self.producer_state.producers)
        latest: dict[int, int] = {}  # each producer's newest epoch still in the log
        kept: dict[int, list[Batch]] = {}
        for batch in reversed(self._batches):
            if not pending:
                break
            pid = batch.producer_id
            if pid not in pending:
                continue
            if batch.producer_epoch != latest.setdefault(pid, batch.producer_epoch):
                pending.discard(pid)  # an older epoch: the entry holds only the latest one
                continue
            if batch.base_sequence < 0:  # a marker or a coordinator's offsets: the epoch only
                continue
            mine = kept.setdefault(pid, [])
            mine.append(batch)
            if len(mine) == NUM_BATCHES_TO_RETAIN:
                pending.discard(pid)
        ordered = sorted((b for batches in kept.values() for b in batches),
                         key=lambda b: b.base_offset)
        self.producer_state.reload((b.producer_id, b.producer_epoch, b.base_sequence, b.records,
                                    b.base_offset) for b in ordered)
        for pid, epoch in latest.items():  # a newer epoch seen only in a marker still fences
            if pid not in kept:
                self.producer_state.update_epoch(pid, epoch)

    def _batch_index(self, offset: int) -> int:
        """Index of the first batch whose base offset is ≥ ``offset`` (a binary search).

        A follower's fetch usually asks for the newest batch, or for none (at the log end):
        those two are looked at first.
        """
        batches = self._batches
        n = len(batches)
        if not n or batches[-1][0] < offset:  # past every batch's base offset
            return n
        if n == 1 or batches[-2][0] < offset:  # the newest batch
            return n - 1
        return bisect_left(batches, offset, key=_BASE_OFFSET)

    def nbytes(self) -> int:
        """Bytes this replica's log stores: its record columns and the batch index (about 100
        bytes a batch). Columns a sealed block shares with another replica's log count in full
        for each: every replica of a Kafka partition keeps its own copy on its own disk."""
        return sum(block.nbytes() for block in self._blocks) + 100 * len(self._batches)
