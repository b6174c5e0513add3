"""What keeps a large producer run small: chunked routing, compact record streams, narrow
buffer columns and acknowledgement columns made only when read — with the same answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim.producer as producer_module
from sim.kernel import Kernel
from sim.producer import Producer
from sim.producer import streams as streams_module
from sim.producer.buffer import PENDING_ACK_RECORDS, RecordBuffer
from sim.producer.streams import RecordStream, search_sums, split_by_partition
from sim.workloads import UniformKeys, Workload


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 20), max_size=300), st.integers(1, 64))
def test_split_by_partition_in_chunks_matches_one_stable_sort(parts, chunk):
    """Grouping a chunk at a time gives every partition its records in record order, as one
    stable sort of all of them does."""
    parts = np.array(parts, np.int32)
    idx = np.arange(len(parts)) * 3 + 5  # buffer indices, not positions
    saved = streams_module.SPLIT_CHUNK
    streams_module.SPLIT_CHUNK = chunk
    try:
        groups = split_by_partition(len(parts), lambda a, z: parts[a:z], lambda a, z: idx[a:z],
                                    buffer_records=int(idx.max(initial=0)) + 1)
    finally:
        streams_module.SPLIT_CHUNK = saved
    order = np.argsort(parts, kind="stable")
    expected = {int(p): idx[order][parts[order] == p] for p in np.unique(parts)}
    assert sorted(groups) == sorted(expected)
    for p, group in groups.items():
        assert group.dtype == np.int32
        np.testing.assert_array_equal(group, expected[p])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 20), max_size=300), st.integers(1, 64), st.integers(0, 1000))
def test_split_by_partition_of_consecutive_rows_matches_their_indices(parts, chunk, first):
    """Records given as consecutive buffer rows from ``first`` (no index array) are grouped
    as when their indices are given."""
    parts = np.array(parts, np.int32)
    idx = np.arange(first, first + len(parts))
    saved = streams_module.SPLIT_CHUNK
    streams_module.SPLIT_CHUNK = chunk
    try:
        rows = split_by_partition(len(parts), lambda a, z: parts[a:z], None,
                                  buffer_records=first + len(parts), first=first)
        given = split_by_partition(len(parts), lambda a, z: parts[a:z], lambda a, z: idx[a:z],
                                   buffer_records=first + len(parts))
    finally:
        streams_module.SPLIT_CHUNK = saved
    assert sorted(rows) == sorted(given)
    for p, group in rows.items():
        assert group.dtype == np.int32
        np.testing.assert_array_equal(group, given[p])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=300))
def test_split_by_partition_past_8_bit_partition_numbers(parts):
    """Partition numbers are sorted as 8-bit ints only while they fit: past 127 they are
    grouped as correctly as below."""
    parts = np.array(parts, np.int32)
    idx = np.arange(len(parts))
    groups = split_by_partition(len(parts), lambda a, z: parts[a:z], lambda a, z: idx[a:z],
                                buffer_records=len(parts))
    assert sorted(groups) == sorted(set(parts.tolist()))
    for p, group in groups.items():
        np.testing.assert_array_equal(group, np.flatnonzero(parts == p))


@pytest.mark.parametrize(("count", "size", "wide"), [
    (3, 1 << 14, False),  # small sums
    (1 << 17, 1 << 14, False),  # the largest size times the count passes 2**31, the sum not
    (1 << 18, 1 << 14, True),  # the sum itself passes 2**31 - 1
])
def test_a_streams_running_sums_widen_only_when_they_must(count, size, wide):
    """Running sums are 32-bit unless the stream's total size needs more, even when the
    largest record times the record count would."""
    sizes = np.full(count, 1, np.int32)
    sizes[: (1 << 17) - 1 if not wide else count] = size  # one record of 1 byte at least
    stream = RecordStream(np.arange(count), np.arange(count, dtype=np.float64), sizes)
    assert stream.cs.dtype == (np.int64 if wide else np.int32)
    assert stream.cs[-1] == sizes.sum(dtype=np.int64)
    assert (stream.min_size, stream.max_size) == (int(sizes.min()), size)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5), st.integers(1, 300)), min_size=1, max_size=400),
       st.lists(st.tuples(st.floats(0, 20), st.integers(0, 2000)), min_size=1, max_size=60))
def test_a_compact_stream_answers_as_a_full_one(records, steps):
    """A stream that lets go of the records already taken finds the same records, times and
    sizes as one that keeps everything, whatever is asked in between."""
    gaps, sizes = zip(*records, strict=True)
    time_ms = np.cumsum(gaps)
    size = np.array(sizes, np.int32)
    idx = np.arange(len(time_ms))
    saved = streams_module.COMPACT_AFTER
    streams_module.COMPACT_AFTER = 4
    try:
        full, compact = (RecordStream(idx, time_ms, size, compact=c) for c in (False, True))
        now = 0.0
        for advance, room in steps:
            now += advance
            assert compact.time_when_overflowing(room) == full.time_when_overflowing(room)
            assert compact.next_time() == full.next_time()
            ends = [s.end_before(now) for s in (full, compact)]
            taken = [s.take(end) for s, end in zip((full, compact), ends, strict=True)]
            (idx_a, cs_a, base_a), (idx_b, cs_b, base_b) = taken
            np.testing.assert_array_equal(idx_a, idx_b)
            np.testing.assert_array_equal(cs_a - base_a, cs_b - base_b)
            full.pos, compact.pos = ends
            assert full.exhausted == compact.exhausted
    finally:
        streams_module.COMPACT_AFTER = saved
    assert compact.cs.dtype == np.int32
    assert compact.idx.dtype == np.int32


def test_acknowledgement_columns_are_made_only_when_read():
    """Acks wait per batch, however many, until a column is read; then every record reads as
    written at once, and later acks are written as before."""
    buf = RecordBuffer()
    n = 3 * PENDING_ACK_RECORDS
    buf.extend(n + 2)
    for lo in range(0, n, 1024):
        buf.ack(np.arange(lo, lo + 1024), lo % 5, float(lo), lo)
    assert buf._acks is None  # nothing read: no per-record acknowledgement columns yet
    np.testing.assert_array_equal(buf.offset[:n], np.arange(n))
    np.testing.assert_array_equal(buf.partition[:n], (np.arange(n) // 1024 * 1024) % 5)
    assert buf.offset[n] == -1
    assert np.isnan(buf.ack_ms[n + 1])
    rows = buf.extend(5)  # grows the acknowledgement columns too, empty for new records
    buf.ack(np.arange(rows.start, rows.stop), 2, 9.5, 100)
    np.testing.assert_array_equal(buf.offset[rows], np.arange(100, 105))
    assert buf.ack_ms[rows.start] == 9.5
    assert buf.partition[n + 1] == -1


def test_key_ids_and_record_sizes_widen_when_they_need_more_than_16_bits():
    """Key ids and record sizes start in 16 bits; a key count or record past that widens the
    column, and every earlier record keeps its key and size."""
    kernel = Kernel(seed=3, brokers=1)
    kernel.cluster.create_topic("t", partitions=2)
    producer = Producer(kernel, {"linger.ms": 0})
    producer.send("t", key="first", value=b"x")
    assert producer.buffer.key_id.dtype == np.int16
    assert producer.buffer.size.dtype == np.int16
    producer.add_workload(Workload("t", np.full(40_000, 1.0),
                                   np.arange(40_000, dtype=np.int32), np.full(40_000, 3, np.int32),
                                   [f"k{i}" for i in range(40_000)]))
    kernel.run()
    assert producer.buffer.key_id.dtype == np.int32
    big = producer.send("t", key="big", value=b"v" * 40_000)
    producer.flush()
    assert producer.buffer.size.dtype == np.int32
    results = producer.results()
    assert results["key"].iloc[0] == "first"
    assert results["key"].iloc[-2] == "k39999"
    assert results["key"].iloc[-1] == "big"
    assert big.get().partition in (0, 1)
    assert int(producer.buffer.size[producer.buffer.n - 1]) > 40_000


@pytest.mark.parametrize("rf", [1, 3])
def test_a_keyed_workload_routed_in_chunks_lands_on_its_keys_partitions(rf, monkeypatch):
    """Copied and routed a chunk at a time, every record of a keyed workload lands on its
    key's partition, at gapless offsets in send order."""
    monkeypatch.setattr(streams_module, "SPLIT_CHUNK", 1000)
    monkeypatch.setattr(producer_module, "FILL_CHUNK", 700)
    kernel = Kernel(seed=5, brokers=3)
    kernel.cluster.create_topic("w", partitions=5, replication_factor=rf)
    records = 3 * 1000 + 17
    workload = Workload.generate(kernel.spawn_rng(), "w", records, 2_000_000,
                                 keys=UniformKeys(50))
    producer = Producer(kernel, {"acks": "all"}, workload=workload)
    kernel.run()
    results = producer.results()
    assert producer.acked == records
    table = producer._partition_table(producer.topics["w"])
    np.testing.assert_array_equal(results["partition"], table[workload.key_ids])
    for _, group in results.groupby("partition"):  # offsets in send order, from 0, no gaps
        in_log = group.sort_values("offset")
        assert in_log["offset"].tolist() == list(range(len(group)))
        assert in_log["record_id"].is_monotonic_increasing


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("side", ["left", "right"])
def test_search_sums_answers_as_searchsorted_for_any_width_and_needle(dtype, side):
    """``search_sums`` gives NumPy's answer for needles of any kind, including ones beyond the
    32-bit range and fractional ones (it only changes how the needle is passed)."""
    rng = np.random.default_rng(7)
    cs = np.cumsum(rng.integers(1, 200, 5_000)).astype(dtype)
    needles = [0, -5, 1, int(cs[17]), int(cs[-1]), int(cs[-1]) + 1, 2**31 - 1, 2**31, 2**40,
               -(2**40), float(cs[100]) + 0.5, float(cs[100]) - 0.5]
    for needle in needles:
        assert search_sums(cs, needle, side) == int(cs.astype(np.int64).searchsorted(needle, side))
