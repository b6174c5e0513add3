"""The log cleaner: compaction of ``cleanup.policy=compact`` logs (Kafka's ``LogCleaner``).

A compacted log keeps at least the last record of every key, so that it reads as a table of
latest values. Kafka's cleaner, modelled here with one cleaner thread per broker:

- ``LogCleanerManager.grabFilthiestCompactedLog``: of the broker's compacted logs, those
  whose *cleanable ratio* — dirty bytes ÷ (clean + dirty bytes) — is above
  ``min.cleanable.dirty.ratio`` (0.5), or that must be cleaned now because a dirty record is
  older than ``max.compaction.lag.ms``, the one with the highest ratio is cleaned. *Clean*
  is the part below the cleaner checkpoint (cleaned before), *dirty* what follows it up to
  the first *uncleanable* offset: the active segment's base, the last stable offset (the high
  watermark, or the first offset of an open transaction: its records may still be aborted),
  or the first segment with a record newer than ``min.compaction.lag.ms`` (whole segments
  only). The active segment is never cleaned.
- ``Cleaner.clean``: a map of each key's last offset in the dirty part (``OffsetMap``), then
  every record from the log start to the end of the dirty part is kept only if it is its
  key's latest (``shouldRetainRecord``). Keys are compared by their serialized bytes
  (``sim.payloads.key_identities``), never by a hash: a collision would delete another key's
  record. A record without a key is dropped (Kafka refuses them in compacted topics); a record
  without a record id (the lab's own internal records, such as offset commits, whose keys it
  does not keep) is never removed.
- Transactions (``CleanedTransactionMetadata``, KIP-98): records of aborted transactions
  never enter the map and are removed, so they never hide a committed value; a commit or
  abort marker stays while its transaction has records, then goes ``delete.retention.ms``
  after the first cleaning that finds the transaction empty (``_transaction_cleaning``).
- Tombstones (a null value, ``value_size == -1``): the first cleaning that keeps one gives it
  a delete horizon of *now* + ``delete.retention.ms`` (KIP-534); a later cleaning after the
  horizon removes it. A consumer lagging by more than that can miss the delete.
- Offsets never change: removed records leave gaps (``PartitionLog.remove_records``).
  Consecutive segments whose bytes fit in one ``segment.bytes`` are cleaned into one
  (``groupSegmentsBySize``), so a compacted log does not keep many tiny segments.
- Cleaning reads and writes bytes at ``log.cleaner.io.max.bytes.per.second`` (Kafka's
  ``Throttler``), so it takes visible time; an idle cleaner sleeps ``log.cleaner.backoff.ms``.

Worked example: keys A B A C A B at offsets 0–5 in closed segments, a never-cleaned log →
A's last offset is 4, B's 5, C's 3; offsets 3, 4, 5 stay and 0, 1, 2 become gaps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sim import config
from sim import trace as events
from sim.broker.log import PartitionLog
from sim.payloads import key_identities

if TYPE_CHECKING:
    from sim.broker.runtime import BrokerRuntime

LOG_CLEAN = events.register(events.EventKind(
    "log.clean", ("topic", "partition", "node", "first_dirty_offset", "end_offset", "removed",
                  "bytes_before", "bytes_after", "dirty_ratio"),
    "the log cleaner compacted a replica's log up to end_offset (removed records leave gaps)"))


@dataclass
class LogToClean:
    """One log's cleaning state (Kafka's ``LogToClean``)."""

    topic: str
    partition: int
    node: int
    log: PartitionLog
    first_dirty_offset: int
    first_uncleanable_offset: int
    clean_bytes: int
    cleanable_bytes: int
    need_compaction_now: bool = False

    @property
    def total_bytes(self) -> int:
        return self.clean_bytes + self.cleanable_bytes

    @property
    def cleanable_ratio(self) -> float:
        return self.cleanable_bytes / self.total_bytes if self.total_bytes else 0.0


MIN_IDLE_PAUSE_MS = 10.0
"""The shortest pause of an idle cleaner. Kafka accepts ``log.cleaner.backoff.ms=0`` and its
thread then spins, each empty pass (locking, measuring every log's dirty ratio) costing real
time; a simulated pass costs none, so the lab lets 10 ms pass instead of looping at one instant
(and a 60 s run does not pay for 60,000 empty scans)."""


def idle_pause_ms(backoff_ms: float) -> float:
    """How long an idle cleaner sleeps: ``log.cleaner.backoff.ms``, at least 10 ms."""
    return max(float(backoff_ms), MIN_IDLE_PAUSE_MS)


def log_to_clean(log: PartitionLog, topic_config: Mapping[str, Any], now_ms: float,
                 where: tuple[str, int, int] = ("", 0, 0)) -> LogToClean:
    """Where a log's dirty part starts and ends, and its bytes (module docstring)."""
    first_dirty = max(log.clean_offset, log.log_start_offset)
    min_lag = int(topic_config.get("min.compaction.lag.ms", 0))
    uncleanable = log.active_segment.base_offset
    clean_bytes = cleanable_bytes = 0
    earliest_dirty_ms = None
    stable = log.last_stable_offset  # ≤ the high watermark: no open transaction is cleaned
    for segment in log.closed_segments():
        if segment.end_offset <= first_dirty:
            clean_bytes += segment.size_bytes
            continue
        if (segment.end_offset > stable
                or (min_lag > 0 and segment.max_timestamp_ms > now_ms - min_lag)):
            uncleanable = segment.base_offset
            break
        cleanable_bytes += segment.size_bytes
        if segment.rolling_timestamp_ms >= 0 and earliest_dirty_ms is None:
            earliest_dirty_ms = segment.rolling_timestamp_ms
    max_lag = int(topic_config.get("max.compaction.lag.ms", 2**63 - 1))
    need_now = earliest_dirty_ms is not None and now_ms - max_lag > earliest_dirty_ms
    return LogToClean(*where, log, first_dirty, max(uncleanable, first_dirty), clean_bytes,
                      cleanable_bytes, need_now)


def is_cleanable(ltc: LogToClean, topic_config: Mapping[str, Any]) -> bool:
    """``grabFilthiestCompactedLog``'s filter: bytes to clean, and a ratio above the minimum
    or a record past ``max.compaction.lag.ms``."""
    ratio = float(topic_config.get("min.cleanable.dirty.ratio", 0.5))
    return ltc.cleanable_bytes > 0 and (ltc.need_compaction_now or ltc.cleanable_ratio > ratio)


@dataclass
class CleanResult:
    """What one cleaning removed: offsets, their record ids, and the bytes before and after."""

    removed_offsets: np.ndarray
    removed_ids: np.ndarray
    bytes_before: int
    bytes_after: int


def clean(log: PartitionLog, runtime: Any, end_offset: int, now_ms: float,
          delete_retention_ms: int) -> CleanResult:
    """``Cleaner.cleanSegments`` over the log start … ``end_offset`` (a closed segment end).

    ``runtime`` gives the producers whose keys identify records (``key_identities``).
    Vectorised: one pass of NumPy over the columns, no per-record Python.
    """
    start = log.log_start_offset
    empty = np.zeros(0, np.int64)
    if end_offset <= start:
        return CleanResult(empty, empty, 0, 0)
    _forget_truncated(log)
    first_dirty = max(log.clean_offset, start)
    offsets = np.arange(start, end_offset, dtype=np.int64)
    live = log.retained(start, end_offset)
    ids = log.column("record_id", start, end_offset)
    known = ids >= 0  # internal records (e.g. offset commits) carry no record id
    aborted, markers_gone = _transaction_cleaning(log, start, end_offset, live, now_ms,
                                                  delete_retention_ms)
    known_aborted = known & aborted  # internal records stay, as everywhere here
    keys = np.full(len(ids), -1, dtype=np.int64)
    keys[known] = key_identities(runtime, ids[known])
    keyed = live & (keys >= 0) & ~aborted  # aborted records never enter the OffsetMap
    dirty = keyed & (offsets >= first_dirty)
    # OffsetMap: each dirty key's last offset, in a table indexed by key identity (identities
    # are small dense integers); -1 for a key with no dirty record.
    last = np.full(int(keys.max()) + 2 if len(keys) else 1, -1, dtype=np.int64)
    np.maximum.at(last, keys[dirty], offsets[dirty])
    latest = offsets >= last[keys]  # keyless records (identity -1) read the unused last slot
    tombstone = log.column("value_size", start, end_offset) == -1
    horizon = _delete_horizons(log, offsets, now_ms + delete_retention_ms)
    # a tombstone this cleaning sees first is kept whatever the horizon: Kafka's first
    # cleaning only sets it (``shouldRetainDeletes``), so even delete.retention.ms=0 keeps a
    # tombstone until the next cleaning
    seen_first = offsets >= (log.clean_passes[-1][0] if log.clean_passes else start)
    keep = ((keyed & latest & (~tombstone | seen_first | (now_ms < horizon)))
            | (~known & ~markers_gone))
    keep &= ~known_aborted
    removed = live & ~keep
    sizes = log.record_sizes(start, end_offset)
    before = round(float(sizes[live].sum()))
    groups = group_segments_by_size(log, end_offset)
    log.remove_records(offsets[removed], sizes[removed])
    log.merge_segments(groups)
    if not log.clean_passes or end_offset > log.clean_passes[-1][0]:
        log.clean_passes.append((end_offset, now_ms + delete_retention_ms))
    log.clean_offset = max(log.clean_offset, end_offset)
    return CleanResult(offsets[removed], ids[removed], before,
                       round(float(sizes[keep].sum())))


def group_segments_by_size(log: PartitionLog, end_offset: int) -> list[int]:
    """``Cleaner.groupSegmentsBySize``: consecutive segments below ``end_offset`` whose bytes
    together stay within ``segment.bytes`` are cleaned into one; returns each group's size in
    segments, oldest first (sizes before this cleaning, as Kafka groups before it copies)."""
    groups: list[int] = []
    total = 0
    for segment in log.segments:
        if segment.end_offset > end_offset or segment is log.active_segment:
            break
        if groups and total + segment.size_bytes <= log.segment_bytes:
            groups[-1] += 1
            total += segment.size_bytes
        else:
            groups.append(1)
            total = segment.size_bytes
    return groups


def _forget_truncated(log: PartitionLog) -> None:
    """Drop what earlier cleanings said about offsets a truncation has since written again.

    A truncation lowers ``clean_offset`` below the offsets it cut; what cleanings covered
    there (their tombstone delete horizons, markers found empty) belongs to records that no
    longer exist, so each pass's end is capped at ``clean_offset`` and later markers forgotten
    (and markers below the log start, which retention deleted).
    Without it a tombstone at a re-written offset inherits the old pass's horizon and goes at
    its first cleaning, before ``delete.retention.ms``.
    """
    passes: list[tuple[int, float]] = []
    for end, horizon in log.clean_passes:
        end = min(end, log.clean_offset)
        if end > (passes[-1][0] if passes else log.log_start_offset - 1):
            passes.append((end, horizon))
    log.clean_passes = passes
    log.marker_horizons = {m: h for m, h in log.marker_horizons.items()
                           if log.log_start_offset <= m < log.clean_offset}


def _transaction_cleaning(log: PartitionLog, start: int, end: int, live: np.ndarray,
                          now_ms: float, delete_retention_ms: int
                          ) -> tuple[np.ndarray, np.ndarray]:
    """For offsets ``start … end-1``: the records of aborted transactions, and the markers
    this cleaning removes (Kafka's ``CleanedTransactionMetadata``, KIP-98).

    Aborted transactions' data is discarded and never supersedes a committed value. A commit
    or abort marker stays while any record of its transaction remains (``live``: before this
    cleaning, so the marker outlives the cleaning that removes its last record); the first
    cleaning that finds the transaction empty gives the marker a delete horizon of *now* +
    ``delete.retention.ms``, and a cleaning after that horizon removes it (KIP-534).

    Worked example: T1 commits A=1 (0, marker 1), T2 aborts A=2 (2, marker 3), T3 commits A=3
    (4, marker 5). Cleaning 1 removes 0 (superseded) and 2 (aborted), keeps markers 1 and 3;
    cleaning 2 finds T1 and T2 empty and sets their horizons; a cleaning after them drops both
    markers; marker 5 stays while A=3 does.
    """
    aborted = np.zeros(end - start, dtype=bool)
    markers_gone = np.zeros(end - start, dtype=bool)
    if not log.transactions.any or end <= start:
        return aborted, markers_gone
    for txn in log.transactions.aborted_between(start, end):
        for batch in log.batches_overlapping(max(txn.first_offset, start),
                                             min(txn.last_offset, end)):
            if (batch.producer_id == txn.producer_id and batch.is_transactional
                    and not batch.is_control):
                lo, hi = max(batch.base_offset, start), min(batch.last_offset + 1, end)
                aborted[lo - start:hi - start] = True
    holding: dict[int, bool] = {}  # producer id → its open transaction still has records here
    for batch in log.batches_overlapping(start, end):
        if not batch.is_transactional:
            continue
        pid = batch.producer_id
        lo, hi = max(batch.base_offset, start) - start, min(batch.last_offset + 1, end) - start
        if not batch.is_control:
            holding[pid] = holding.get(pid, False) or bool(live[lo:hi].any())
            continue
        if holding.pop(pid, False) or hi <= lo or not live[lo:hi].any():
            continue
        horizon = log.marker_horizons.get(batch.base_offset)
        if horizon is None:  # found empty now: the horizon is set, the marker kept this time
            log.marker_horizons[batch.base_offset] = now_ms + delete_retention_ms
        elif now_ms >= horizon:
            markers_gone[lo:hi] = True
            del log.marker_horizons[batch.base_offset]
    return aborted, markers_gone


def _delete_horizons(log: PartitionLog, offsets: np.ndarray, new_horizon: float) -> np.ndarray:
    """Each offset's tombstone delete horizon: that of the first cleaning that covered it,
    or ``new_horizon`` for offsets this cleaning sees first (KIP-534)."""
    if not log.clean_passes:
        return np.full(len(offsets), new_horizon)
    ends = np.array([end for end, _ in log.clean_passes], np.int64)
    horizons = np.array([h for _, h in log.clean_passes] + [new_horizon], np.float64)
    return horizons[np.searchsorted(ends, offsets, side="right")]


class LogCleaner:
    """One cleaner thread per broker, cleaning the filthiest of its compacted logs in turn."""

    def __init__(self, runtime: BrokerRuntime) -> None:
        self.runtime = runtime
        self.cluster = runtime.cluster
        # what cleanings removed, for the audit: (topic, partition, node, offsets, ids, seq)
        self.cleaned: list[tuple[str, int, int, np.ndarray, np.ndarray, int]] = []

    def start(self, broker_id: int) -> None:
        """Start broker ``broker_id``'s cleaner thread (ends with the broker process)."""
        broker = self.cluster.brokers[broker_id]
        incarnation = broker.incarnation
        if not broker.config["log.cleaner.enable"]:
            return

        def later(delay_ms: float, then: Any) -> None:
            timer = self.runtime.background_timeout(delay_ms)
            timer.callbacks.append(then)

        def look(_event: object = None) -> None:
            if broker.incarnation != incarnation or not broker.alive:
                return
            found = self.grab_filthiest(broker_id)
            if found is None:
                later(idle_pause_ms(broker.config["log.cleaner.backoff.ms"]), look)
                return
            rate = broker.config["log.cleaner.io.max.bytes.per.second"]
            # the throttle counts bytes read and (at most as many) written: model both
            work_ms = 2 * (found.total_bytes / rate) * 1000.0
            later(work_ms, lambda _e: finish(found))

        def finish(ltc: LogToClean) -> None:
            if broker.incarnation != incarnation or not broker.alive:
                return
            self.clean_now(ltc)
            look()

        later(idle_pause_ms(broker.config["log.cleaner.backoff.ms"]), look)

    def grab_filthiest(self, broker_id: int) -> LogToClean | None:
        """The broker's compacted log with the highest cleanable ratio, if any qualifies."""
        best: LogToClean | None = None
        now = self.runtime.now_ms
        for topic in self.cluster.topics.values():
            if "compact" not in config.cleanup_policies(topic.config):
                continue
            for part in topic.partitions:
                log = part.logs.get(broker_id)
                if log is None:
                    continue
                ltc = log_to_clean(log, topic.config, now, (topic.name, part.partition,
                                                            broker_id))
                if is_cleanable(ltc, topic.config) and (
                        best is None or ltc.cleanable_ratio > best.cleanable_ratio):
                    best = ltc
        return best

    def clean_now(self, ltc: LogToClean) -> CleanResult | None:
        """Clean one log up to where it was cleanable when chosen; trace and remember it."""
        log, topic = ltc.log, self.cluster.topic(ltc.topic)
        part = topic.partitions[ltc.partition]
        if part.logs.get(ltc.node) is not log:
            return None  # the replica's log was replaced (a lost disk) meanwhile
        end = min(ltc.first_uncleanable_offset, log.active_segment.base_offset,
                  log.last_stable_offset)
        result = clean(log, self.runtime, end, self.runtime.now_ms,
                       int(topic.config["delete.retention.ms"]))
        seq = len(self.runtime.trace)
        self.runtime.trace.emit(LOG_CLEAN, self.runtime.now_ms, f"broker-{ltc.node}",
                                ltc.topic, ltc.partition, ltc.node, ltc.first_dirty_offset, end,
                                len(result.removed_offsets), result.bytes_before,
                                result.bytes_after, round(ltc.cleanable_ratio, 4))
        if len(result.removed_offsets):
            self.cleaned.append((ltc.topic, ltc.partition, ltc.node, result.removed_offsets,
                                 result.removed_ids, seq))
        return result
