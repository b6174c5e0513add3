"""Specification of a partition's log: offsets, columns, the batch index, segments and memory.

Segment rules come from Kafka's storage layer (``LogSegment.shouldRoll``: roll when the
segment's size would exceed ``segment.bytes`` with the incoming batch; ``LogFileUtils``: files
named by the base offset, zero-padded to 20 digits). The team's reference sheet, section 7.1.
The leader epoch cache answers as Kafka's ``LeaderEpochFileCache.endOffsetFor`` (KIP-101,
KIP-279).
"""

from __future__ import annotations

import tracemalloc
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.broker import log
from sim.broker.log import (
    BATCH_COLUMNS,
    BLOCK_RECORDS,
    RECORD_COLUMNS,
    PartitionLog,
    Segment,
    log_changes,
)


def columns(n: int, start: int = 0) -> dict[str, np.ndarray]:
    """Record columns for positions ``start … start+n-1``; every value encodes its position and
    column, so a record moved, dropped or mixed up between columns shows."""
    i = np.arange(start, start + n, dtype=np.int64)
    return {name: ((i + 1) * (2 * k + 3) - 1000 * k).astype(dtype)
            for k, (name, dtype) in enumerate(RECORD_COLUMNS.items())}


def append(plog: PartitionLog, n: int, size_bytes: int = 100, **kwargs: int) -> int:
    """Append ``n`` records that continue the log's positions; return the base offset."""
    return plog.append_batch(columns(n, plog.log_end_offset), size_bytes, **kwargs)


# --- Offsets and columns -------------------------------------------------------------------------


def test_offsets_are_consecutive_across_block_boundaries() -> None:
    """Each batch's base offset is the previous log end offset, even across storage blocks."""
    sizes = [BLOCK_RECORDS - 1, 1, 1, 2 * BLOCK_RECORDS + 5, 17, BLOCK_RECORDS]
    plog = PartitionLog()
    expected_base = 0
    for n in sizes:
        assert append(plog, n) == expected_base
        expected_base += n
        assert plog.log_end_offset == expected_base
    assert len(plog) == sum(sizes)
    assert plog.records()["offset"].tolist() == list(range(sum(sizes)))


def test_columns_round_trip_exactly_across_blocks() -> None:
    """Every stored column equals the appended values, in offset order, with its dtype."""
    plog = PartitionLog()
    for n in [BLOCK_RECORDS - 3, 10, 3 * BLOCK_RECORDS + 1, 2]:
        append(plog, n)
    expected = columns(len(plog))
    for name, dtype in RECORD_COLUMNS.items():
        column = plog.column(name)
        assert column.dtype == dtype
        np.testing.assert_array_equal(column, expected[name])


@given(st.lists(st.integers(0, 40), max_size=30), st.data())
def test_any_sequence_of_appends_round_trips(sizes: list[int], data: st.DataObject) -> None:
    """With tiny blocks (so appends cross them often), offsets and columns survive any appends,
    and any offset range reads back exactly."""
    with mock.patch.object(log, "BLOCK_RECORDS", 8):
        plog = PartitionLog()
        for n in sizes:
            append(plog, n)
        total = sum(sizes)
        assert len(plog) == plog.log_end_offset == total
        assert plog.batch_count == len(sizes)
        expected = pd.DataFrame({"offset": np.arange(total, dtype=np.int64), **columns(total)})
        pd.testing.assert_frame_equal(plog.records(), expected)
        start = data.draw(st.integers(0, total), label="start")
        stop = data.draw(st.integers(start, total), label="stop")
        pd.testing.assert_frame_equal(plog.records(start, stop),
                                      expected.iloc[start:stop].reset_index(drop=True))


def test_records_frame_has_offset_then_record_columns() -> None:
    """records() gives one row per record: offset, then the record columns."""
    plog = PartitionLog()
    append(plog, 3)
    append(plog, 2)
    frame = plog.records()
    assert list(frame.columns) == ["offset", *RECORD_COLUMNS]
    assert frame["offset"].dtype == np.int64
    assert len(frame) == 5


def test_reading_a_column_returns_a_copy() -> None:
    """Changing an array read from the log never changes the log."""
    plog = PartitionLog()
    append(plog, 5)
    column = plog.column("value_size")
    column[:] = -1
    np.testing.assert_array_equal(plog.column("value_size"), columns(5)["value_size"])


# --- The batch index -----------------------------------------------------------------------------


def test_batches_index_one_row_per_append() -> None:
    """batches() lists every batch: offset, records, bytes, producer, epochs, sequence."""
    plog = PartitionLog()
    append(plog, 3, 120, producer_id=7, leader_epoch=0, base_sequence=0)
    append(plog, 5, 200, producer_id=8, leader_epoch=2, base_sequence=10)
    append(plog, 1, 70)
    frame = plog.batches()
    assert list(frame.columns) == list(BATCH_COLUMNS)
    plain = {"is_transactional": False, "is_control": False}
    assert [r | plain for r in frame.to_dict("records")] == frame.to_dict("records")
    assert [{k: v for k, v in r.items() if k not in plain}
            for r in frame.to_dict("records")] == [
        {"base_offset": 0, "records": 3, "size_bytes": 120, "producer_id": 7, "leader_epoch": 0,
         "base_sequence": 0, "producer_epoch": 0},
        {"base_offset": 3, "records": 5, "size_bytes": 200, "producer_id": 8, "leader_epoch": 2,
         "base_sequence": 10, "producer_epoch": 0},
        {"base_offset": 8, "records": 1, "size_bytes": 70, "producer_id": -1, "leader_epoch": 0,
         "base_sequence": -1, "producer_epoch": 0},
    ]
    assert plog.batch_count == 3
    assert plog.size_bytes == 390


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 10_000)), max_size=40))
def test_batch_index_tiles_the_offsets(appends: list[tuple[int, int]]) -> None:
    """Batches are contiguous: each starts where the previous ended; bytes add up."""
    plog = PartitionLog()
    for n, size in appends:
        append(plog, n, size)
    frame = plog.batches()
    ends = (frame["base_offset"] + frame["records"]).tolist()
    assert frame["base_offset"].tolist() == [0, *ends][: len(appends)]
    assert plog.log_end_offset == (ends[-1] if ends else 0)
    assert plog.size_bytes == sum(size for _, size in appends)


def test_batches_from_reads_whole_batches_up_to_max_bytes() -> None:
    """A read from a batch boundary returns whole batches within max_bytes, at least one."""
    plog = PartitionLog()
    for size in (100, 200, 300, 400):
        append(plog, 10, size)
    assert [b.base_offset for b in plog.batches_from(10)] == [10, 20, 30]
    assert [b.base_offset for b in plog.batches_from(10, max_bytes=500)] == [10, 20]
    # Like a Kafka fetch (KIP-74), the first batch comes even when it alone exceeds the limit.
    assert [b.base_offset for b in plog.batches_from(30, max_bytes=1)] == [30]
    assert plog.batches_from(40) == []


@given(st.lists(st.sampled_from([0, 1, 1, 1, 2, 5]), max_size=30), st.integers(1, 400))
def test_batches_from_any_offset_is_every_batch_from_there(sizes: list[int],
                                                            max_bytes: int) -> None:
    """From any offset (empty batches included, which share their base offset with the next
    batch), a read returns every batch whose base offset is at or after it; with ``max_bytes``
    a prefix of those: at least one batch, and no more than fit in ``max_bytes``."""
    plog = PartitionLog()
    for i, n in enumerate(sizes):
        append(plog, n, 50 + 30 * (i % 4))
    every = [log.Batch(*row) for row in plog.batches().itertuples(index=False)]
    for offset in range(plog.log_end_offset + 2):
        expected = [b for b in every if b.base_offset >= offset]
        assert plog.batches_from(offset) == expected
        limited = plog.batches_from(offset, max_bytes)
        assert limited == expected[: len(limited)]
        assert bool(limited) == bool(expected)
        assert len(limited) <= 1 or sum(b.size_bytes for b in limited) <= max_bytes
        if len(limited) < len(expected):  # stopped where the next batch would overflow
            assert sum(b.size_bytes for b in expected[: len(limited) + 1]) > max_bytes


# --- Leader epochs, follower copies and truncation -----------------------------------------------


def epoch_log() -> PartitionLog:
    """Offsets 0-9 in epoch 0, 10-14 in epoch 2, 15-19 in epoch 5."""
    plog = PartitionLog()
    append(plog, 10, leader_epoch=0)
    append(plog, 5, leader_epoch=2)
    append(plog, 5, leader_epoch=5)
    return plog


def test_leader_epoch_cache_records_where_each_epoch_starts() -> None:
    """The cache holds (epoch, start offset) for each new epoch, in order."""
    plog = epoch_log()
    assert plog.epochs == [(0, 0), (2, 10), (5, 15)]
    assert plog.latest_epoch == 5
    assert PartitionLog().latest_epoch == -1


@pytest.mark.parametrize(("epoch", "end"), [(0, 10), (1, 10), (2, 15), (4, 15), (5, 20)])
def test_end_offset_for_epoch(epoch: int, end: int) -> None:
    """An epoch ends where the next higher epoch starts; the latest epoch ends at the LEO."""
    # LeaderEpochFileCache.endOffsetFor: higherEntry(epoch).startOffset, or LEO for the latest.
    assert epoch_log().end_offset_for_epoch(epoch) == end


def test_follower_copy_keeps_offsets_columns_and_epochs() -> None:
    """A follower copying the leader's batches ends up with an identical log."""
    leader = epoch_log()
    follower = PartitionLog()
    follower.copy_batches_from(leader, leader.batches_from(0, max_bytes=250))
    assert follower.log_end_offset == 15
    follower.copy_batches_from(leader, leader.batches_from(15))
    pd.testing.assert_frame_equal(follower.records(), leader.records())
    pd.testing.assert_frame_equal(follower.batches(), leader.batches())
    assert follower.epochs == leader.epochs


def test_follower_copy_rejects_a_gap() -> None:
    """Batches must continue the follower's log end offset exactly."""
    leader = epoch_log()
    with pytest.raises(ValueError, match="does not follow"):
        PartitionLog().copy_batches_from(leader, leader.batches_from(10))


def test_truncate_drops_records_at_and_after_the_offset() -> None:
    """truncate_to(o) returns the dropped records and leaves offsets 0 … o-1 untouched."""
    plog = epoch_log()
    before = plog.records()
    plog.high_watermark = 18
    dropped = plog.truncate_to(12)
    pd.testing.assert_frame_equal(dropped, before.iloc[12:].reset_index(drop=True))
    pd.testing.assert_frame_equal(plog.records(), before.iloc[:12])
    assert plog.log_end_offset == 12
    assert plog.high_watermark == 12
    assert plog.epochs == [(0, 0), (2, 10)]
    assert plog.batches()[["base_offset", "records"]].values.tolist() == [[0, 10], [10, 2]]
    assert append(plog, 3) == 12  # the log continues from the truncation point


def test_truncate_past_the_end_changes_nothing() -> None:
    """Truncating at or beyond the log end offset drops nothing."""
    plog = epoch_log()
    assert plog.truncate_to(20).empty
    assert plog.log_end_offset == 20
    assert plog.batch_count == 3


def test_truncation_keeps_the_producer_epoch_a_marker_bumped() -> None:
    """After a truncation the producer state is rebuilt from what the log keeps, markers
    included: a newer epoch seen only in a marker (the coordinator aborted the producer's
    transaction) still fences the old epoch's late batches (``ProducerStateManager`` reloads
    from snapshots that replay ``appendEndTxnMarker``)."""
    from sim.broker.producer_state import INVALID_PRODUCER_EPOCH

    plog = PartitionLog()
    append(plog, 2, producer_id=7, base_sequence=0, producer_epoch=0, is_transactional=True)
    marker = columns(1, plog.log_end_offset)
    marker["key_hash"][:] = 0  # ABORT
    plog.append_batch(marker, 70, producer_id=7, producer_epoch=1, is_transactional=True,
                      is_control=True)
    append(plog, 3)  # another client's records, truncated away below
    assert plog.producer_state.check_append(7, 0, 2) == INVALID_PRODUCER_EPOCH
    plog.truncate_to(3)
    assert plog.log_end_offset == 3
    assert plog.producer_state.check_append(7, 0, 2) == INVALID_PRODUCER_EPOCH
    assert plog.producer_state.check_append(7, 1, 0) is None  # the new epoch starts at 0


# --- Segments ------------------------------------------------------------------------------------


def test_segment_file_names_are_20_digit_base_offsets() -> None:
    """A segment is named by its base offset zero-padded to 20 digits, as Kafka's files."""
    assert Segment(0).file_name == "00000000000000000000.log"
    assert Segment(170).file_name == "00000000000000000170.log"
    assert Segment(2**63 - 1).file_name == "09223372036854775807.log"


def test_segment_rolls_when_the_next_batch_would_not_fit() -> None:
    """With 1000-byte segments and 300-byte batches of 10 records, segments hold 3 batches."""
    # Sizes 300, 600, 900 fit; 900 + 300 > 1000 rolls, so segments start at 0, 30, 60, 90.
    plog = PartitionLog(segment_bytes=1000)
    for _ in range(10):
        append(plog, 10, 300)
    assert [s.base_offset for s in plog.segments] == [0, 30, 60, 90]
    assert plog.segments[1].file_name == "00000000000000000030.log"


def test_batch_that_exactly_fills_a_segment_stays_in_it() -> None:
    """Reaching segment.bytes exactly does not roll; only exceeding it does (shouldRoll)."""
    plog = PartitionLog(segment_bytes=900)
    for _ in range(4):  # 300, 600, 900 fit exactly; the 4th batch rolls
        append(plog, 10, 300)
    assert [s.base_offset for s in plog.segments] == [0, 30]


def test_segments_roll_at_the_offsets_where_batches_overflow() -> None:
    """Uneven batches roll at the base offset of the first batch that would overflow."""
    plog = PartitionLog(segment_bytes=1000)
    # Segment sizes after each append: 400, 900 | 700 | 500, 950 | 100 (a roll at each "|").
    for n, size in [(5, 400), (7, 500), (3, 700), (11, 500), (2, 450), (4, 100)]:
        append(plog, n, size)
    # base offsets: 0, 5, 12, 15, 26, 28
    assert [s.base_offset for s in plog.segments] == [0, 12, 15, 28]


def test_oversized_first_batch_does_not_leave_an_empty_segment() -> None:
    """A batch larger than segment.bytes goes into the empty segment; the next one rolls."""
    plog = PartitionLog(segment_bytes=100)
    append(plog, 4, 500)
    append(plog, 4, 500)
    assert [s.base_offset for s in plog.segments] == [0, 4]


def test_default_segment_size_is_one_gibibyte() -> None:
    """Without a topic config a log uses Kafka's default segment.bytes, 1 GiB."""
    assert PartitionLog().segment_bytes == 1073741824


# --- Empty log -----------------------------------------------------------------------------------


def test_empty_log() -> None:
    """A new log: no records, offsets 0, one empty segment at 0, empty frames with columns."""
    plog = PartitionLog()
    assert len(plog) == 0
    assert (plog.log_start_offset, plog.log_end_offset, plog.high_watermark) == (0, 0, 0)
    assert plog.segments == [Segment(0)]
    assert plog.batch_count == 0
    assert plog.size_bytes == 0
    assert plog.nbytes() == 0
    assert plog.epochs == []
    assert plog.batches_from(0) == []
    for name, dtype in RECORD_COLUMNS.items():
        column = plog.column(name)
        assert len(column) == 0
        assert column.dtype == dtype
    records = plog.records()
    assert records.empty
    assert list(records.columns) == ["offset", *RECORD_COLUMNS]
    batches = plog.batches()
    assert batches.empty
    assert list(batches.columns) == list(BATCH_COLUMNS)


def test_empty_batch_keeps_offsets() -> None:
    """Appending zero records records a batch but does not move the log end offset."""
    plog = PartitionLog()
    append(plog, 3)
    assert append(plog, 0, 61) == 3
    assert plog.log_end_offset == 3
    assert plog.batch_count == 2


def test_changes_counts_every_move_of_any_log() -> None:
    """``log_changes`` moves whenever any log's end, high watermark or start moves (and when a
    reader such as the remote tier bumps it), not when nothing moved."""
    first, second = PartitionLog(), PartitionLog()
    before = log_changes.count
    append(first, 3)
    second.high_watermark = 0  # no move
    first.high_watermark = 2
    first.log_start_offset = 1
    log_changes.count += 1  # as sim.broker.remote_log_manager counts a remote read
    assert log_changes.count == before + 4


def test_unknown_column_is_a_key_error() -> None:
    """Asking for a column the log does not store fails."""
    plog = PartitionLog()
    append(plog, 1)
    with pytest.raises(KeyError):
        plog.column("headers")


# --- Memory --------------------------------------------------------------------------------------

MILLION = 1_000_000
RECORDS_PER_BATCH = 149  # a full 16 KiB batch of 100-byte values, as the producer makes them


def _million_record_log() -> PartitionLog:
    plog = PartitionLog()
    batch = columns(RECORDS_PER_BATCH)
    for _ in range(-(-MILLION // RECORDS_PER_BATCH)):
        plog.append_batch(batch, 16384)
    return plog


def test_a_million_records_report_at_most_40_bytes_each() -> None:
    """nbytes() / records stays at or under 40 bytes with over a million records."""
    plog = _million_record_log()
    assert len(plog) >= MILLION
    assert plog.nbytes() / len(plog) <= 40


def test_a_million_records_really_take_at_most_40_bytes_each() -> None:
    """Memory actually allocated (traced), batch index included, is ≤ 40 bytes per record."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        plog = _million_record_log()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert used / len(plog) <= 40


# --- Sealed (narrowed) blocks --------------------------------------------------------------------


def _wide_columns(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Columns whose values span each type's whole range, so no block can be narrowed."""
    return {name: rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, n, dtype=dtype,
                               endpoint=True)
            for name, dtype in RECORD_COLUMNS.items()}


def test_full_blocks_are_stored_narrower_and_read_back_exactly() -> None:
    """A full block of timestamps, value sizes and record ids in a small range takes fewer
    bytes than the open width, and every value, read in any range, is the one appended."""
    plog = PartitionLog()
    for _ in range(3):
        append(plog, BLOCK_RECORDS)
    assert plog.nbytes() < 24 * len(plog) + 100 * plog.batch_count
    expected = columns(3 * BLOCK_RECORDS)
    for name, dtype in RECORD_COLUMNS.items():
        got = plog.column(name)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, expected[name])
        np.testing.assert_array_equal(plog.column(name, 5, BLOCK_RECORDS + 7),
                                      expected[name][5 : BLOCK_RECORDS + 7])


def test_values_spanning_whole_types_survive_sealing() -> None:
    """Values that fit no narrower type (extremes of int32 and int64) are kept exactly."""
    rng = np.random.default_rng(5)
    data = _wide_columns(2 * BLOCK_RECORDS + 3, rng)
    plog = PartitionLog()
    plog.append_batch(data, 100)
    for name in RECORD_COLUMNS:
        np.testing.assert_array_equal(plog.column(name), data[name])


@given(st.integers(1, 7), st.integers(0, 3), st.data())
def test_truncating_into_a_sealed_block_then_appending_wider_values(
        cut: int, blocks: int, data: st.DataObject) -> None:
    """A block sealed narrow, cut by a truncation and written again with values far outside its
    former range, reads back exactly: a cut block is widened before it is written."""
    with mock.patch.object(log, "BLOCK_RECORDS", 8):
        plog = PartitionLog()
        append(plog, 8 * (blocks + 1))  # every block full, hence sealed
        offset = 8 * blocks + cut
        plog.truncate_to(offset)
        rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
        wide = _wide_columns(20, rng)
        plog.append_batch(wide, 100)
        kept = columns(offset)
        for name in RECORD_COLUMNS:
            np.testing.assert_array_equal(plog.column(name),
                                          np.concatenate([kept[name], wide[name]]))


def test_a_follower_copies_a_run_of_batches_exactly() -> None:
    """A run of fetched batches, across blocks and segment rolls, gives the follower the same
    records, batches and segments as the leader."""
    leader = PartitionLog(segment_bytes=1000)
    for n in [3, BLOCK_RECORDS, 1, 50, BLOCK_RECORDS - 10, 7]:
        append(leader, n, size_bytes=300, leader_epoch=2)
    follower = PartitionLog(segment_bytes=1000)
    batches = leader.batches_from(0)
    follower.copy_batches_from(leader, batches[:2])
    follower.copy_batches_from(leader, batches[2:])
    pd.testing.assert_frame_equal(follower.records(), leader.records())
    pd.testing.assert_frame_equal(follower.batches(), leader.batches())
    pd.testing.assert_frame_equal(follower.segments_frame(), leader.segments_frame())
    assert follower.epochs == leader.epochs
    with pytest.raises(ValueError, match="does not follow"):
        follower.copy_batches_from(leader, batches[-1:])


BATCH_KINDS = st.sampled_from(["one", "one", "one", "few", "txn", "marker", "epoch"])


@given(st.lists(BATCH_KINDS, max_size=60), st.lists(st.integers(1, 4), min_size=1))
def test_a_follower_fetching_as_it_goes_ends_like_its_leader(kinds: list[str],
                                                             fetches: list[int]) -> None:
    """A follower that copies the leader's new batches a few at a time (mostly one record
    each, as under light load: idempotent, transactional, markers, new leader epochs, segment
    rolls) ends with the leader's records, batches, segments, epochs, sizes, producer state
    and transaction state."""
    with mock.patch.object(log, "BLOCK_RECORDS", 8):
        leader = PartitionLog(segment_bytes=400)
        follower = PartitionLog(segment_bytes=400)
        epoch = sequence = 0
        for i, kind in enumerate(kinds):
            n = 3 if kind == "few" else 1
            cols = columns(n, leader.log_end_offset)
            if kind == "marker":  # an abort or commit marker of producer 9's transaction
                cols["key_hash"][:] = i % 2
                leader.append_batch(cols, 70, 9, epoch, is_transactional=True,
                                    is_control=True)
            elif kind == "txn":
                leader.append_batch(cols, 90, 9, epoch, sequence, is_transactional=True)
                sequence += 1
            else:
                epoch += kind == "epoch"
                leader.append_batch(cols, 60 + 20 * n, 7, epoch, i)
            take = fetches[i % len(fetches)]
            if i % take == 0 or i == len(kinds) - 1:
                follower.copy_batches_from(leader, leader.batches_from(follower.log_end_offset))
        pd.testing.assert_frame_equal(follower.records(), leader.records())
        pd.testing.assert_frame_equal(follower.batches(), leader.batches())
        pd.testing.assert_frame_equal(follower.segments_frame(), leader.segments_frame())
        assert (follower.epochs, follower.size_bytes, follower.log_end_offset) == (
            leader.epochs, leader.size_bytes, leader.log_end_offset)
        assert repr(follower.producer_state) == repr(leader.producer_state)
        assert (follower.transactions.ongoing, follower.transactions.aborted) == (
            leader.transactions.ongoing, leader.transactions.aborted)


# --- Followers' full blocks kept once in memory --------------------------------------------------


class _Buffer:
    """A ``RecordSource`` (a producer's buffer): record ``i`` has the columns ``columns`` gives
    position ``i``."""

    def __init__(self, records: int) -> None:
        self.cols = columns(records)

    def record_columns(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {name: column[idx] for name, column in self.cols.items()}

    def max_timestamp(self, idx: np.ndarray) -> int:
        return int(self.cols["timestamp_ms"][idx].max())


def test_batches_appended_by_reference_read_as_if_copied() -> None:
    """A leader keeps a produced batch as indices into the producer's buffer (``append_from``)
    and writes its records into the blocks when something reads them: a log so appended, read,
    appended to with copied batches (a marker) and truncated between, holds exactly what the
    same batches copied one by one give, across block boundaries."""
    with mock.patch.object(log, "BLOCK_RECORDS", 8):
        buffer = _Buffer(200)
        lazy, copied = PartitionLog(segment_bytes=300), PartitionLog(segment_bytes=300)
        at = 0
        for i, n in enumerate([3, 1, 9, 8, 2, 17, 1, 5, 30, 4]):
            idx = np.arange(at, at + n, dtype=np.int32)
            at += n
            lazy.append_from(buffer, idx, 40 * n, 7, 1, i)
            copied.append_batch(buffer.record_columns(idx), 40 * n, 7, 1, i)
            if i % 3 == 1:  # a read writes what is pending
                np.testing.assert_array_equal(lazy.column("record_id"),
                                              copied.column("record_id"))
            if i == 5:  # a copied batch after pending ones
                for plog in (lazy, copied):
                    plog.append_batch(columns(2, 500), 80)
            if i == 7:
                for plog in (lazy, copied):
                    plog.truncate_to(plog.log_end_offset - 3)
        pd.testing.assert_frame_equal(lazy.records(), copied.records())
        pd.testing.assert_frame_equal(lazy.batches(), copied.batches())
        pd.testing.assert_frame_equal(lazy.segments_frame(), copied.segments_frame())
        assert repr(lazy.producer_state) == repr(copied.producer_state)
        assert lazy.nbytes() == copied.nbytes()


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(1, 20), st.booleans()), max_size=40))
def test_pending_batches_of_one_or_several_producers_are_written_in_offset_order(
        appends: list[tuple[int, int, bool]]) -> None:
    """Batches appended by reference from one producer (written a block's worth at a time,
    cut by the running record count) or from two in turn (a run per producer) read back as
    the same batches copied one by one, whenever a read writes them."""
    with mock.patch.object(log, "BLOCK_RECORDS", 8):
        buffers = [_Buffer(1000), _Buffer(1000)]
        buffers[1].cols["record_id"] += 5000  # the two producers' records differ
        lazy, copied = PartitionLog(segment_bytes=300), PartitionLog(segment_bytes=300)
        taken = [0, 0]
        for source, n, read in appends:
            idx = np.arange(taken[source], taken[source] + n, dtype=np.int32)
            taken[source] += n
            lazy.append_from(buffers[source], idx, 40 * n, 7)
            copied.append_batch(buffers[source].record_columns(idx), 40 * n, 7)
            if read:
                np.testing.assert_array_equal(lazy.column("record_id"),
                                              copied.column("record_id"))
        pd.testing.assert_frame_equal(lazy.records(), copied.records())
        assert lazy.nbytes() == copied.nbytes()


def _leader_and_follower(records: int, batch: int = 5, by_reference: bool = False
                         ) -> tuple[PartitionLog, PartitionLog]:
    """A leader with ``records`` records in ``batch``-record batches and a follower that copied
    them all, a few batches per fetch (as a follower does), with small segments.
    ``by_reference``: the leader appended the batches as indices into a producer's buffer
    (``append_from``), which the follower takes as they are."""
    leader, follower = PartitionLog(segment_bytes=500), PartitionLog(segment_bytes=500)
    buffer = _Buffer(records)
    for _ in range(records // batch):
        if by_reference:
            start = leader.log_end_offset
            leader.append_from(buffer, np.arange(start, start + batch), 100, leader_epoch=1)
        else:
            append(leader, batch, leader_epoch=1)
    batches = leader.batches_from(0)
    for at in range(0, len(batches), 3):
        follower.copy_batches_from(leader, batches[at : at + 3])
    return leader, follower


def test_a_follower_counts_its_copy_but_stores_full_blocks_once() -> None:
    """A follower's log reports the leader's bytes (each replica has its own copy on disk), yet
    the full blocks it copied take almost no memory beyond the leader's: they keep the leader's
    arrays, which never change."""
    leader = PartitionLog()
    for _ in range(10):
        append(leader, BLOCK_RECORDS)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        follower = PartitionLog()
        batches = leader.batches_from(0)
        for at in range(0, len(batches), 3):
            follower.copy_batches_from(leader, batches[at : at + 3])
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    pd.testing.assert_frame_equal(follower.records(), leader.records())
    assert follower.nbytes() == leader.nbytes()
    assert used < leader.nbytes() / 10


def test_a_follower_keeping_up_one_record_at_a_time_copies_every_value() -> None:
    """A follower that fetches each one-record batch as the leader appends it (the usual fetch
    of a replica keeping up) ends with the leader's records, batches, segments and producer
    state, across block boundaries and after the leader's log start moved past a block; the
    blocks it filled keep the leader's arrays."""
    with mock.patch.object(log, "BLOCK_RECORDS", 8):
        leader, follower = PartitionLog(segment_bytes=300), PartitionLog(segment_bytes=300)
        for i in range(30):
            leader.append_batch(columns(1, leader.log_end_offset), 40, 7, 0, i)
            follower.copy_batches_from(leader, leader.batches_from(follower.log_end_offset))
            if i == 20:  # retention on both replicas: blocks are dropped, offsets keep going
                follower.maybe_increment_log_start_offset(
                    leader.delete_oldest_segments(1)[-1].end_offset)
        pd.testing.assert_frame_equal(follower.records(), leader.records())
        pd.testing.assert_frame_equal(follower.batches(), leader.batches())
        pd.testing.assert_frame_equal(follower.segments_frame(), leader.segments_frame())
        assert repr(follower.producer_state) == repr(leader.producer_state)
        assert follower._blocks[0].cols["record_id"] is leader._blocks[0].cols["record_id"]


def test_a_follower_taking_batches_by_reference_stores_full_blocks_once() -> None:
    """A follower that took the leader's batches as the leader holds them (indices into a
    producer's buffer) ends with the leader's records, batches and segments, and its full
    blocks, once written, keep the leader's arrays."""
    with mock.patch.object(log, "BLOCK_RECORDS", 8):
        leader, follower = _leader_and_follower(60, by_reference=True)
        assert follower._pending  # nothing was read or copied yet
        pd.testing.assert_frame_equal(follower.records(), leader.records())
        pd.testing.assert_frame_equal(follower.batches(), leader.batches())
        pd.testing.assert_frame_equal(follower.segments_frame(), leader.segments_frame())
        assert follower._blocks[2].cols["record_id"] is leader._blocks[2].cols["record_id"]


def test_a_follower_that_diverged_keeps_its_own_blocks() -> None:
    """Full blocks with different records than the leader's at the same offsets (a follower
    that wrote under an older leader) stay the follower's own."""
    with mock.patch.object(log, "BLOCK_RECORDS", 8):
        leader, follower = PartitionLog(), PartitionLog()
        append(leader, 6)
        append(leader, 20)
        # the same values in another order: the same smallest value in each column
        follower.append_batch({name: c[::-1].copy() for name, c in columns(6).items()}, 100)
        follower.copy_batches_from(leader, leader.batches_from(6))
        expected = pd.concat([follower.records(0, 6), leader.records(6, 26)], ignore_index=True)
        pd.testing.assert_frame_equal(follower.records(), expected)
        assert not follower.records().equals(leader.records())


LEADER_CHANGES = st.sampled_from(["truncate", "clean", "retention", "restart", "lose"])


@given(st.lists(st.tuples(LEADER_CHANGES, st.integers(0, 10**6)), min_size=1, max_size=4),
       st.booleans(), st.booleans())
def test_a_followers_records_survive_anything_done_to_the_leaders_log(
        changes: list[tuple[str, int]], follower_first: bool, by_reference: bool) -> None:
    """With tiny blocks (most of them full and shared with the follower), whatever later
    happens to the leader's log — truncation into a full block and new, different records
    written there, cleaning, retention, a restart at another offset, a lost disk (a new
    empty log) — leaves the follower's records exactly as copied; and the follower's own
    truncation and appends leave the leader's alone. Also when the leader held its batches by
    reference and the follower took them so (``by_reference``)."""
    with mock.patch.object(log, "BLOCK_RECORDS", 8):
        leader, follower = _leader_and_follower(60, by_reference=by_reference)
        copied = follower.records()
        if follower_first:  # the follower diverges first: the leader must not see it
            kept = leader.records()
            follower.truncate_to(13)
            follower.append_batch(columns(20, 5000), 100)
            pd.testing.assert_frame_equal(leader.records(), kept)
            copied = follower.records()
        for change, n in changes:
            if change == "truncate":
                leader.truncate_to(leader.log_start_offset + n % max(len(leader), 1))
                leader.append_batch(columns(11, 7000 + n % 97), 100, leader_epoch=2)
            elif change == "clean" and len(leader):
                offsets = np.unique(leader.log_start_offset + np.arange(0, len(leader), 3))
                leader.remove_records(offsets, np.ones(len(offsets)))
            elif change == "retention":
                leader.delete_oldest_segments(min(1 + n % 3, len(leader.closed_segments())))
            elif change == "restart":
                leader.truncate_fully_and_start_at(leader.log_end_offset + n % 5)
                leader.append_batch(columns(17, 9000), 100)
            else:
                leader = PartitionLog(segment_bytes=500)
                leader.append_batch(columns(9, 3000), 100)
            pd.testing.assert_frame_equal(follower.records(), copied)


def test_shared_blocks_refuse_writes() -> None:
    """A full block's arrays are read-only, so no replica can change one another keeps."""
    with mock.patch.object(log, "BLOCK_RECORDS", 8):
        leader, follower = _leader_and_follower(20)
        for plog in (leader, follower):
            array = plog._blocks[0]["record_id"]
            with pytest.raises(ValueError, match="read-only"):
                array[0] = 1
