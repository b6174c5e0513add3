"""Segments of a partition's log: rolling by size and time, closed segments, deleting the oldest.

Kafka's rules: ``LogSegment.shouldRoll`` rolls when the batch would overflow ``segment.bytes``
or when its timestamp is more than ``segment.ms`` after the segment's first batch
(``rollingBasedTimestamp``); ``UnifiedLog.deleteSegments`` deletes whole segments from the
oldest and rolls first when every segment goes; ``LeaderEpochFileCache.truncateFromStart``
keeps the epoch in force at the new log start offset; ``ProducerStateManager
.onLogStartOffsetIncremented`` keeps producer entries. Reference sheet §7.1.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim import config
from sim.broker.log import BLOCK_RECORDS, RECORD_COLUMNS, PartitionLog, Segment, log_for
from sim.errors import ConfigError


def columns(n: int, start: int, timestamp_ms: int | None = None) -> dict[str, np.ndarray]:
    i = np.arange(start, start + n, dtype=np.int64)
    out = {name: (i * 7 + k).astype(dtype)
           for k, (name, dtype) in enumerate(RECORD_COLUMNS.items())}
    if timestamp_ms is not None:
        out["timestamp_ms"] = np.full(n, timestamp_ms, np.int64)
    return out


def append(plog: PartitionLog, n: int, size: int = 100, ts: int | None = None, **kw: int) -> int:
    return plog.append_batch(columns(n, plog.log_end_offset, ts), size, **kw)


def test_closed_segments_report_offsets_bytes_and_max_timestamp() -> None:
    """Each segment knows its base and end offsets, its bytes and its largest timestamp."""
    plog = PartitionLog(segment_bytes=1000)
    for k in range(7):  # 3 batches of 300 bytes per segment
        append(plog, 10, 300, ts=1000 + 100 * k)
    assert [(s.base_offset, s.end_offset, s.size_bytes, s.max_timestamp_ms)
            for s in plog.closed_segments()] == [(0, 30, 900, 1200), (30, 60, 900, 1500)]
    assert plog.active_segment == Segment(60, 70, 300, 1600, 1600)
    assert plog.size_bytes == sum(s.size_bytes for s in plog.segments) == 2100
    frame = plog.segments_frame()
    assert frame["file"].tolist()[1] == "00000000000000000030.log"
    assert frame["active"].tolist() == [False, False, True]


def test_segment_ms_rolls_on_the_batch_timestamp() -> None:
    """A batch more than segment.ms after the active segment's first batch rolls a new one."""
    plog = PartitionLog(segment_bytes=1 << 30, segment_ms=1000)
    append(plog, 5, ts=0)
    append(plog, 5, ts=1000)  # exactly segment.ms later: not more, stays
    append(plog, 5, ts=1001)  # more than segment.ms after the first batch: rolls
    append(plog, 5, ts=1500)
    assert [s.base_offset for s in plog.segments] == [0, 10]


def test_timestamps_going_backwards_do_not_roll() -> None:
    """Time rolling compares with the first batch's timestamp; an older batch never rolls."""
    plog = PartitionLog(segment_ms=1000)
    append(plog, 5, ts=5000)
    append(plog, 5, ts=10)
    assert len(plog.segments) == 1
    assert plog.active_segment.max_timestamp_ms == 5000


def test_delete_oldest_segments_moves_log_start_and_keeps_reading_right() -> None:
    """Deleting whole segments moves the log start offset; later offsets read as before."""
    plog = PartitionLog(segment_bytes=BLOCK_RECORDS * 10)
    for _ in range(5):  # 5 segments of BLOCK_RECORDS + 3 records each (batches of 10 bytes/rec)
        append(plog, BLOCK_RECORDS + 3, size=(BLOCK_RECORDS + 3) * 10)
        plog.roll()
    expected = plog.column("record_id", 2 * (BLOCK_RECORDS + 3))
    before = plog.nbytes()
    deleted = plog.delete_oldest_segments(2)
    assert [s.base_offset for s in deleted] == [0, BLOCK_RECORDS + 3]
    assert plog.log_start_offset == 2 * (BLOCK_RECORDS + 3)
    assert np.array_equal(plog.column("record_id"), expected)
    assert plog.records()["offset"].iloc[0] == plog.log_start_offset
    assert plog.nbytes() < before  # whole storage blocks below the start were freed
    assert plog.batches()["base_offset"].iloc[0] == plog.log_start_offset
    assert plog.size_bytes == 3 * (BLOCK_RECORDS + 3) * 10
    with pytest.raises(IndexError):
        plog.column("record_id", 0, 10)


def test_deleting_every_segment_rolls_first_and_keeps_an_empty_active_one() -> None:
    """As ``UnifiedLog.deleteSegments``: a log keeps one segment, empty at the log end offset."""
    plog = PartitionLog()
    append(plog, 4)
    plog.high_watermark = 4
    plog.delete_oldest_segments(1)
    assert plog.segments == [Segment(4)]
    assert (plog.log_start_offset, plog.log_end_offset, len(plog)) == (4, 4, 0)
    assert append(plog, 2) == 4


@pytest.mark.parametrize("count", [2, 3])
def test_deleting_every_segment_keeps_an_empty_active_one_as_it_is(count: int) -> None:
    """``UnifiedLog.deleteSegments`` rolls before deleting every segment, and ``LocalLog.roll``
    recreates an empty active segment at the same base offset, which is then left out of the
    deletion: the closed segments go, the empty active one stays (no IndexError)."""
    plog = PartitionLog()
    append(plog, 4)
    plog.roll()
    plog.high_watermark = 4
    deleted = plog.delete_oldest_segments(count)
    assert [s.base_offset for s in deleted] == [0]
    assert plog.segments == [Segment(4)]
    assert (plog.log_start_offset, plog.log_end_offset, len(plog)) == (4, 4, 0)
    assert append(plog, 2) == 4


def test_deleting_the_only_segment_of_an_empty_log_deletes_nothing() -> None:
    """A log of one empty (active) segment keeps it: ``deleteSegments`` has nothing left to
    delete once ``roll()`` has recreated it, and the log start offset stays."""
    plog = PartitionLog()
    assert plog.delete_oldest_segments(1) == []
    assert plog.segments == [Segment(0)]
    assert (plog.log_start_offset, plog.log_end_offset) == (0, 0)
    assert append(plog, 3) == 0


def test_epoch_cache_keeps_the_epoch_in_force_at_the_new_start() -> None:
    """``truncateFromStart``: the epoch covering the new start offset starts there now."""
    plog = PartitionLog(segment_bytes=300)
    append(plog, 10, 300, leader_epoch=1)
    append(plog, 10, 300, leader_epoch=1)
    append(plog, 10, 300, leader_epoch=3)
    plog.delete_oldest_segments(1)
    assert plog.epochs == [(1, 10), (3, 20)]
    plog.delete_oldest_segments(1)
    assert plog.epochs == [(3, 20)]


def test_producer_state_survives_deletion_of_its_batches() -> None:
    """The leader still knows an idempotent producer whose batches retention deleted."""
    plog = PartitionLog(segment_bytes=300)
    append(plog, 10, 300, producer_id=7, base_sequence=0)
    append(plog, 10, 300)
    plog.delete_oldest_segments(1)
    assert plog.producer_state.last_entry(7).last_seq == 9
    assert plog.producer_state.check_append(7, 0, 11) is not None  # out of order still caught


def test_follower_learns_the_leader_start_and_deletes_segments_below_it() -> None:
    """``maybeIncrementLogStartOffset``: start moves; only segments wholly below it go."""
    plog = PartitionLog(segment_bytes=300)
    for _ in range(4):
        append(plog, 10, 300)
    deleted = plog.maybe_increment_log_start_offset(25)
    assert [s.base_offset for s in deleted] == [0, 10]
    assert plog.log_start_offset == 25
    assert plog.segments[0].base_offset == 20
    assert plog.records()["offset"].iloc[0] == 25
    assert plog.maybe_increment_log_start_offset(5) == []  # never backwards
    assert plog.log_start_offset == 25


def test_truncate_after_deletion_recounts_the_cut_segment() -> None:
    """A truncation inside a segment leaves it with the bytes and timestamps it still holds."""
    plog = PartitionLog(segment_bytes=1000)
    for k in range(6):
        append(plog, 10, 300, ts=100 * k)
    plog.delete_oldest_segments(1)
    plog.truncate_to(40)
    assert plog.active_segment == Segment(30, 40, 300, 300, 300)
    assert plog.size_bytes == 300
    assert append(plog, 1, 300, ts=0) == 40


def test_full_truncation_restarts_the_log_at_an_offset() -> None:
    plog = PartitionLog()
    append(plog, 10, leader_epoch=2)
    dropped = plog.truncate_fully_and_start_at(50)
    assert len(dropped) == 10
    assert (plog.log_start_offset, plog.log_end_offset, plog.segments) == (50, 50, [Segment(50)])
    assert append(plog, 3) == 50
    assert plog.records()["offset"].tolist() == [50, 51, 52]


def test_segment_bytes_below_one_mib_needs_the_lab_flag() -> None:
    """Kafka 4.0 refuses segment.bytes < 1 MiB (KIP-1030); the lab flag is named as lab-only."""
    with pytest.raises(ConfigError, match=r"segment\.bytes"):
        config.TOPIC.parse({"segment.bytes": 1000})
    topic = config.TOPIC.parse({"lab.segment.bytes": 1000, "segment.ms": 5000})
    plog = log_for(topic)
    assert (plog.segment_bytes, plog.segment_ms) == (1000, 5000)
    assert log_for(config.TOPIC.parse({})).segment_bytes == 1 << 30
