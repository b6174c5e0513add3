"""Storage benchmarks: compaction and retention of a 10,000,000-record log.

Run with ``python benchmarks/bench_storage.py [records]``. Prints, measured in this run:

(a) compaction: ``sim.broker.log_cleaner.clean`` over the whole log (10,000 keys, every record
    in closed segments) against a NumPy baseline on the same columns: the least any
    "keep the last record per key" must do (a unique over the reversed keys and a mask);
(b) retention: ``sim.broker.retention.delete_old_segments`` deleting the older half by
    ``retention.bytes`` against a NumPy baseline that slices the same half off the columns;
(c) memory per stored record before and after compaction (the removal mask costs one byte a
    record, only in blocks where the cleaner removed something).

Targets: compaction within 4× its baseline; retention no slower than its baseline (whole
segments and whole storage blocks go, nothing is copied); memory ≤ 41 bytes per record.
Each operation is timed in the same run as its baseline, so the verdict is a ratio that does
not depend on the machine or its load.
"""

from __future__ import annotations

import gc
import sys
import time
from types import SimpleNamespace

import numpy as np

from sim import config
from sim.broker.log import PartitionLog
from sim.broker.log_cleaner import clean
from sim.broker.retention import delete_old_segments

RECORDS = 10_000_000
KEYS = 10_000
BATCH = 2_000  # records per batch
RECORD_BYTES = 100
SEGMENT_BYTES = 200 * BATCH * RECORD_BYTES  # 200 batches (400,000 records) a segment


def build(records: int) -> tuple[PartitionLog, SimpleNamespace, np.ndarray]:
    """A committed log of ``records`` keyed records, and a runtime whose one producer knows
    the keys (what ``sim.payloads.key_identities`` reads)."""
    rng = np.random.default_rng(1)
    key_id = rng.integers(0, KEYS, records).astype(np.int32)
    producer = SimpleNamespace(keys=[f"key-{i}" for i in range(KEYS)],
                               buffer=SimpleNamespace(key_id=key_id))
    runtime = SimpleNamespace(clients=[producer])
    plog = PartitionLog(segment_bytes=SEGMENT_BYTES)
    for base in range(0, records, BATCH):
        n = min(BATCH, records - base)
        index = np.arange(base, base + n, dtype=np.int64)
        plog.append_batch({"timestamp_ms": index, "key_hash": key_id[base:base + n],
                           "value_size": np.full(n, RECORD_BYTES - 20, np.int32),
                           "record_id": index}, n * RECORD_BYTES)
    plog.roll()
    plog.high_watermark = plog.log_end_offset
    return plog, runtime, key_id


def baseline_compaction(key_id: np.ndarray) -> np.ndarray:
    """The least work: each key's last offset, and a mask keeping exactly those records."""
    n = len(key_id)
    _, first = np.unique(key_id[::-1], return_index=True)
    keep = np.zeros(n, dtype=bool)
    keep[n - 1 - first] = True
    return keep


def baseline_retention(columns: dict[str, np.ndarray], drop: int) -> dict[str, np.ndarray]:
    """Slice the oldest ``drop`` records off every column (a copy, as an array store must)."""
    return {name: col[drop:].copy() for name, col in columns.items()}


def timed(fn: object, *args: object) -> tuple[float, object]:
    gc.collect()
    start = time.perf_counter()
    result = fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start, result


def main(records: int = RECORDS) -> int:
    plog, runtime, key_id = build(records)
    bytes_before = plog.nbytes() / len(plog)
    base_s, keep = timed(baseline_compaction, key_id)
    ours_s, result = timed(clean, plog, runtime, plog.active_segment.base_offset, 0.0,
                           86_400_000)
    assert np.array_equal(np.flatnonzero(~keep), result.removed_offsets)
    bytes_after = plog.nbytes() / records
    compaction = ours_s / base_s
    print(f"compaction of {records:,} records ({KEYS:,} keys, {len(plog.segments)} segments): "
          f"{ours_s:.3f} s, NumPy baseline {base_s:.3f} s, ratio {compaction:.2f} (target ≤ 4)")

    plog, _, _ = build(records)
    columns = {name: plog.column(name) for name in ("timestamp_ms", "key_hash", "value_size",
                                                    "record_id")}
    topic = config.TOPIC.parse({"retention.bytes": plog.size_bytes // 2})
    ours_r, deleted = timed(delete_old_segments, plog, topic, 0.0)
    drop = plog.log_start_offset
    base_r, _ = timed(baseline_retention, columns, drop)
    retention = ours_r / base_r
    print(f"retention of {records:,} records: {len(deleted)} segments ({drop:,} records) "
          f"deleted in {ours_r * 1000:.2f} ms, NumPy baseline {base_r * 1000:.2f} ms, "
          f"ratio {retention:.3f} (target ≤ 1)")
    print(f"memory: {bytes_before:.1f} bytes per record before compaction, "
          f"{bytes_after:.1f} after (target ≤ 41)")
    ok = compaction <= 4 and retention <= 1 and bytes_after <= 41
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else RECORDS))
