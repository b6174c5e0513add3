"""ListOffsets: finding an offset in a partition's log by time, or its first or last offset.

What a consumer's ``offsets_for_times``, ``beginning_offsets`` and ``end_offsets`` ask the
partition leader (Kafka's ``ListOffsets`` API, ``UnifiedLog.fetchOffsetByTimestamp`` and
``Partition.fetchOffsetForTimestamp``):

- a timestamp ``t ≥ 0``: the **earliest offset whose timestamp is ≥ t**, with that record's
  timestamp, or ``None`` when no record below the high watermark has one (Kafka searches the
  segment whose largest timestamp reaches ``t`` first, then the first batch, then the first
  record that does, which is the same record);
- ``EARLIEST_TIMESTAMP`` (-2): the log start offset; ``LATEST_TIMESTAMP`` (-1): the high
  watermark (what a consumer may read up to); ``MAX_TIMESTAMP`` (-3, KIP-734): the first record
  with the largest timestamp.

Timestamps need not grow with offsets: with ``message.timestamp.type=CreateTime`` (the
default) each record keeps its producer's timestamp, which a producer may set to anything, so
"the records between t1 and t2" is not an offset range. Example: timestamps [100, 300, 200] at
offsets 0–2; ``t = 150`` → offset 1 (timestamp 300), ``t = 250`` → offset 1 too, ``t = 301``
→ ``None``. With ``LogAppendTime`` the leader stamps each batch with its own clock, so
timestamps never go backwards within a leadership.

Records the log cleaner removed are skipped (their offsets are gaps).

A consumer's lookup is refused while the leader cannot answer it safely
(:func:`offset_not_available`, KIP-207): just after a failover the new leader's high watermark
may still be below what the previous leader had already shown, so "latest" could go
backwards. The client retries (``OffsetFetcherUtils``: OFFSET_NOT_AVAILABLE is retriable).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from sim.broker.log import PartitionLog
from sim.errors import ConfigError

LATEST_TIMESTAMP = -1  # ListOffsetsRequest.LATEST_TIMESTAMP
EARLIEST_TIMESTAMP = -2  # ListOffsetsRequest.EARLIEST_TIMESTAMP
MAX_TIMESTAMP = -3  # ListOffsetsRequest.MAX_TIMESTAMP (KIP-734)


class OffsetAndTimestamp(NamedTuple):
    """Kafka's ``OffsetAndTimestamp``: an offset and the timestamp of the record there."""

    offset: int
    timestamp: int


def offset_for_timestamp(log: PartitionLog, timestamp: int) -> OffsetAndTimestamp | None:
    """ListOffsets on one log (module docstring); ``None`` when no record qualifies.

    Raises:
        ConfigError: for a negative timestamp other than the special ones.
    """
    start, stop = log.log_start_offset, log.high_watermark
    if timestamp == EARLIEST_TIMESTAMP:
        return OffsetAndTimestamp(start, -1)
    if timestamp == LATEST_TIMESTAMP:
        return OffsetAndTimestamp(stop, -1)
    if timestamp < 0 and timestamp != MAX_TIMESTAMP:
        raise ConfigError(f"ListOffsets: timestamp {timestamp} is negative; give a time in ms "
                          "≥ 0, or -1 (latest), -2 (earliest), -3 (max timestamp).")
    if stop <= start:
        return None
    stamps = log.column("timestamp_ms", start, stop)
    live = log.retained(start, stop)
    if timestamp == MAX_TIMESTAMP:
        masked = np.where(live, stamps, np.iinfo(np.int64).min)
        i = int(np.argmax(masked))
        return OffsetAndTimestamp(start + i, int(stamps[i])) if live[i] else None
    hits = np.flatnonzero((stamps >= timestamp) & live)
    if not len(hits):
        return None
    return OffsetAndTimestamp(start + int(hits[0]), int(stamps[hits[0]]))


def offset_not_available(part: Any) -> bool:
    """Whether ``part``'s leader refuses a consumer's ListOffsets with OFFSET_NOT_AVAILABLE.

    ``Partition.fetchOffsetForTimestamp`` (KIP-207): a leader whose high watermark is below the
    start offset of its leader epoch (its log end offset when it was elected) answers no
    LATEST lookup, and no lookup by time that finds nothing below the high watermark, until
    its followers' fetches move the high watermark there. Example: the old leader had
    committed up to 120, the new one holds records to 135 but its high watermark is still 100
    → refused until it reaches 135. EARLIEST is always answered. A partition without a leader
    answers nothing either (LEADER_NOT_AVAILABLE, also retried).
    """
    if part.leader < 0:
        return True
    log = part.logs[part.leader]
    return bool(log.high_watermark < log.end_offset_for_epoch(part.leader_epoch - 1))


def latest_offset(part: Any, read_committed: bool = False) -> int | None:
    """ListOffsets LATEST as ``part``'s leader answers a consumer: the high watermark, or the
    last stable offset for a read_committed one (``lastFetchableOffset``); None while it
    refuses (:func:`offset_not_available`)."""
    if offset_not_available(part):
        return None
    log = part.log
    return int(log.last_stable_offset if read_committed else log.high_watermark)


def time_lookup_frame(log: PartitionLog, times: list[int]) -> pd.DataFrame:
    """``offsets_for_times`` for several times, and what an offset range would get wrong.

    One row per time: the ``offset`` found (-1 for none) and its ``timestamp_ms``, and
    ``older_after``: records at higher offsets whose timestamp is still before the time —
    records that "start reading at offset" would wrongly count as later.
    """
    start, stop = log.log_start_offset, log.high_watermark
    stamps = log.column("timestamp_ms", start, stop)
    live = log.retained(start, stop)
    rows = []
    for time_ms in times:
        found = offset_for_timestamp(log, time_ms)
        if found is None:
            rows.append((time_ms, -1, -1, 0))
            continue
        after = slice(found.offset - start + 1, None)
        rows.append((time_ms, found.offset, found.timestamp,
                     int(((stamps[after] < time_ms) & live[after]).sum())))
    return pd.DataFrame(rows, columns=["time_ms", "offset", "timestamp_ms", "older_after"])
