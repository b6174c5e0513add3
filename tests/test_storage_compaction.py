"""Log compaction (``cleanup.policy=compact``): what the log cleaner keeps, and when it runs.

Kafka's rules, from ``LogCleanerManager`` (``grabFilthiestCompactedLog``, ``cleanableOffsets``:
the active segment and segments newer than ``min.compaction.lag.ms`` are uncleanable;
``maxCompactionDelay``; the cleanable ratio must be above ``min.cleanable.dirty.ratio``, the
filthiest log goes first) and ``Cleaner`` (``buildOffsetMap``: each key's last offset in the
dirty part; ``cleanSegments`` / ``shouldRetainRecord``: keep a record only if it is its key's
latest, drop keyless records, keep a tombstone until its delete horizon — set to now +
``delete.retention.ms`` by the first cleaning that sees it, KIP-534). Offsets are never
renumbered. Reference sheet §7.2.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.broker.log import RECORD_COLUMNS, PartitionLog
from sim.broker.log_cleaner import clean, is_cleanable, log_to_clean
from sim.consumer import Consumer
from sim.kernel import Kernel
from sim.producer import Producer
from sim.records import TopicPartition

TP = TopicPartition("t", 0)
NO_CLEANER = {"log.cleaner.enable": False, "lab.network.latency.ms": 0}


def make_topic(kernel_configs: dict[str, object] | None = None) -> Callable[[Kernel], None]:
    def setup(kernel: Kernel) -> None:
        kernel.cluster.create_topic("t", 1, 1, {"cleanup.policy": "compact",
                                                **(kernel_configs or {})})
    return setup


def compacted(keys_values: list[tuple[str | None, object]], per_segment: int = 2,
              configs: dict[str, object] | None = None,
              broker_configs: dict[str, object] | None = None) -> tuple[Kernel, PartitionLog]:
    """A compacted topic t with one record per batch and ``per_segment`` batches a segment;
    the cleaner thread is off unless ``broker_configs`` turns it on."""
    kernel = Kernel(seed=0, brokers=1, broker_configs={**NO_CLEANER, **(broker_configs or {})},
                    setup=make_topic(configs))
    producer = Producer(kernel, {"linger.ms": 0, "max.in.flight.requests.per.connection": 1})
    log = kernel.cluster.partition("t", 0).log
    for k, (key, value) in enumerate(keys_values):
        producer.send("t", key=key, value=value, partition=0, timestamp=1000 + k)
        producer.flush()
        if k == 0:
            log.segment_bytes = log.size_bytes * per_segment
    return kernel, log


def test_worked_example_keeps_the_last_record_per_key_and_leaves_gaps() -> None:
    """A B A C A B (+ an active segment): offsets 3, 4, 5 stay; 0, 1, 2 are gaps."""
    kernel, log = compacted([("A", 1), ("B", 1), ("A", 2), ("C", 1), ("A", 3), ("B", 2),
                             ("D", 1)])
    assert log.active_segment.base_offset == 6
    result = clean(log, kernel, log.active_segment.base_offset, kernel.now_ms, 86_400_000)
    assert result.removed_offsets.tolist() == [0, 1, 2]
    assert log.records()["offset"].tolist() == [3, 4, 5, 6]
    assert log.log_end_offset == 7  # offsets never renumbered
    assert log.size_bytes < result.bytes_before + log.active_segment.size_bytes


def test_active_segment_is_never_cleaned() -> None:
    """All updates of one key sit in the active segment: nothing is cleanable, nothing goes."""
    kernel, log = compacted([("A", k) for k in range(5)], per_segment=100)
    assert log.closed_segments() == []
    ltc = log_to_clean(log, kernel.cluster.topic("t").config, kernel.now_ms)
    assert ltc.cleanable_bytes == 0
    assert not is_cleanable(ltc, kernel.cluster.topic("t").config)
    clean(log, kernel, ltc.first_uncleanable_offset, kernel.now_ms, 0)
    assert len(log.records()) == 5


def test_keys_compare_by_serialized_bytes_not_by_hash() -> None:
    """Two different keys with the same murmur2 hash slot both survive; equal keys do not."""
    kernel, log = compacted([("A", 1), ("A", 2), ("B", 1), ("B", 2), ("Z", 0)])
    ids = log.column("record_id")
    hashes = log.column("key_hash").copy()
    # force a hash collision between A and B in the stored column: identity must not care
    hashes[:] = 7
    log._blocks[0]["key_hash"][: len(hashes)] = hashes
    clean(log, kernel, log.active_segment.base_offset, kernel.now_ms, 86_400_000)
    kept = log.records()
    assert kept["offset"].tolist() == [1, 3, 4]
    assert set(kept["record_id"]) == {ids[1], ids[3], ids[4]}


def test_dirty_ratio_selection_cleans_only_above_min_cleanable_ratio() -> None:
    """Cleanable ratio = dirty bytes / (clean + dirty); cleaned only when above the minimum."""
    kernel, log = compacted([("A", k) for k in range(9)], per_segment=2)
    config = dict(kernel.cluster.topic("t").config)
    ltc = log_to_clean(log, config, kernel.now_ms)
    assert (ltc.clean_bytes, ltc.cleanable_ratio) == (0, 1.0)
    clean(log, kernel, ltc.first_uncleanable_offset, kernel.now_ms, 86_400_000)
    assert log.clean_offset == 8
    ltc = log_to_clean(log, config, kernel.now_ms)
    assert ltc.cleanable_bytes == 0
    assert not is_cleanable(ltc, config)
    # more updates: now clean = 1 record's bytes, dirty = 4 records' → ratio 0.8
    producer = kernel.clients[0]
    for k in range(4):
        producer.send("t", key="A", value=k, partition=0)
        producer.flush()
    ltc = log_to_clean(log, config, kernel.now_ms)
    assert round(ltc.cleanable_ratio, 3) == 0.8
    assert is_cleanable(ltc, {**config, "min.cleanable.dirty.ratio": 0.79})
    assert not is_cleanable(ltc, {**config, "min.cleanable.dirty.ratio": 0.8})  # strictly above


def test_min_compaction_lag_keeps_recent_segments_dirty() -> None:
    kernel, log = compacted([("A", k) for k in range(7)], per_segment=2,
                            configs={"min.compaction.lag.ms": 10_000})
    config = kernel.cluster.topic("t").config
    # records carry timestamps 1000…1006: with now = 11_003 only segments up to 1003 qualify
    ltc = log_to_clean(log, config, now_ms=11_003.5)
    assert ltc.first_uncleanable_offset == 4
    assert log_to_clean(log, config, now_ms=5_000).cleanable_bytes == 0


def test_max_compaction_lag_forces_cleaning_below_the_ratio() -> None:
    kernel, log = compacted([("A", 1), ("B", 1), ("C", 1), ("D", 1), ("E", 1)], per_segment=2,
                            configs={"max.compaction.lag.ms": 5000,
                                     "min.cleanable.dirty.ratio": 0.99})
    config = kernel.cluster.topic("t").config
    clean(log, kernel, 2, kernel.now_ms, 0)  # clean the first segment: ratio drops below 0.99
    assert not is_cleanable(log_to_clean(log, config, now_ms=5_000), config)
    late = log_to_clean(log, config, now_ms=1002 + 5001)
    assert late.need_compaction_now
    assert is_cleanable(late, config)


def test_tombstone_is_kept_for_delete_retention_ms_after_the_cleaning_that_saw_it() -> None:
    """KIP-534: the horizon is the first cleaning's time + delete.retention.ms."""
    kernel, log = compacted([("A", 1), ("A", None), ("B", 1), ("B", 2), ("C", 1)],
                            per_segment=2)
    end = log.active_segment.base_offset
    clean(log, kernel, end, now_ms=50_000, delete_retention_ms=1000)
    assert log.records()["offset"].tolist() == [1, 3, 4]  # A's tombstone kept, A=1 gone
    clean(log, kernel, end, now_ms=50_999, delete_retention_ms=1000)
    assert 1 in log.records()["offset"].tolist()
    clean(log, kernel, end, now_ms=51_000, delete_retention_ms=1000)
    assert log.records()["offset"].tolist() == [3, 4]


def test_consumer_reads_a_compacted_log_across_gaps_and_moves_past_them() -> None:
    kernel, log = compacted([("A", 1), ("B", 1), ("A", 2), ("B", 2), ("A", 3), ("B", 3),
                             ("C", 1)])
    clean(log, kernel, log.active_segment.base_offset, kernel.now_ms, 86_400_000)
    consumer = Consumer(kernel, {"group.id": "g", "auto.offset.reset": "earliest",
                                 "max.poll.records": 2})
    consumer.assign([TP])
    first = [r.offset for r in consumer.poll(0)]
    assert first == [4, 5]  # the gaps 0-3 cost no part of max.poll.records
    seen = list(first)
    for _ in range(4):
        seen += [r.offset for r in consumer.poll(0)]
    assert seen == [4, 5, 6]
    assert consumer.position(TP) == 7


def test_the_cleaner_thread_runs_in_the_background_at_its_io_rate() -> None:
    """Cleaning takes (bytes read + written) / log.cleaner.io.max.bytes.per.second."""
    kernel, _log = compacted([("A", k) for k in range(9)], per_segment=2,
                            broker_configs={"log.cleaner.enable": True,
                                            "log.cleaner.backoff.ms": 1000,
                                            "log.cleaner.io.max.bytes.per.second": 100})
    kernel.run(until_ms=60_000)
    cleanings = kernel.trace.to_frame().query("kind == 'log.clean'")
    assert len(cleanings) >= 1
    first = cleanings.iloc[0]
    assert first["removed"] == 7  # A's 8 records in closed segments keep only offset 7
    total = first["bytes_before"]
    # chosen at a backoff tick (a multiple of 1000 ms), done 2 × bytes / rate later
    assert (first["time_ms"] - 2 * total / 100 * 1000) % 1000 == 0


def test_a_zero_cleaner_backoff_is_accepted_and_the_idle_cleaner_still_lets_time_pass() -> None:
    """Kafka accepts ``log.cleaner.backoff.ms=0`` (``atLeast(0)`` in ``CleanerConfig``); its idle
    thread spins. The simulated one pauses 10 ms per empty pass instead of stalling the clock."""
    kernel, _log = compacted([("A", k) for k in range(9)], per_segment=2,
                            broker_configs={"log.cleaner.enable": True,
                                            "log.cleaner.backoff.ms": 0})
    kernel.run(until_ms=5_000)
    assert kernel.now_ms == 5_000
    cleanings = kernel.trace.to_frame().query("kind == 'log.clean'")
    # an eager cleaner cleans as segments close, in several passes: still A's last record only
    assert cleanings["removed"].sum() == 7


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ABCDE"), st.one_of(st.none(), st.integers(0, 9))),
                min_size=1, max_size=30),
       st.integers(1, 4), st.lists(st.integers(0, 30), max_size=3))
def test_compacted_log_reads_the_same_latest_value_per_key(ops, per_segment, cut_points):
    """After any cleanings, the latest value per key (tombstone = deleted) is unchanged."""
    kernel, log = compacted(ops, per_segment=per_segment)
    producer = kernel.clients[0]

    def table() -> dict[object, object]:
        latest = {}
        frame = log.records()
        for rid, size in zip(frame["record_id"], frame["value_size"], strict=True):
            index = int(rid) & ((1 << 40) - 1)
            key = producer.keys[int(producer.buffer.key_id[index])]
            latest[key] = None if size == -1 else producer.values[index]
        return {k: v for k, v in latest.items() if v is not None}

    before = table()
    for cut in sorted(cut_points):
        end = min(cut, log.active_segment.base_offset)
        # a cleaning ends at a segment boundary
        end = max([s.base_offset for s in log.segments if s.base_offset <= end] or [0])
        clean(log, kernel, end, kernel.now_ms, 0)
    clean(log, kernel, log.active_segment.base_offset, kernel.now_ms + 1, 0)
    assert table() == before
    offsets = log.records()["offset"].to_numpy()
    assert np.all(np.diff(offsets) > 0)  # never renumbered, never reordered


def test_compacted_topic_refuses_records_without_a_key() -> None:
    """``LogValidator.validateKey``: INVALID_RECORD, not retried; keyed records are written."""
    kernel, log = compacted([("A", 1)])
    producer = kernel.clients[0]
    producer.send("t", key=None, value="v", partition=0)
    producer.send("t", key="B", value="v", partition=0)
    producer.flush()
    results = producer.results()
    assert results["error"].iloc[-2] == "INVALID_RECORD"
    assert results["error"].isna().iloc[-1]
    assert len(log.records()) == 2
    events = kernel.trace.to_frame()
    assert (events["kind"] == "produce.error").sum() == 1


def test_cleaned_segments_that_fit_together_are_merged() -> None:
    """``Cleaner.groupSegmentsBySize``: grouped by their sizes before a cleaning, so a first
    cleaning of full segments keeps them apart and the next one merges the small results."""
    kernel, log = compacted([("A", k) for k in range(9)], per_segment=2)
    one = log.segments[0].size_bytes // 2  # bytes of one record
    assert [(s.base_offset, s.end_offset) for s in log.closed_segments()] == [
        (0, 2), (2, 4), (4, 6), (6, 8)]
    clean(log, kernel, 8, kernel.now_ms, 86_400_000)
    assert [s.size_bytes for s in log.closed_segments()] == [0, 0, 0, one]
    clean(log, kernel, 8, kernel.now_ms, 86_400_000)
    merged = log.closed_segments()
    assert [(s.file_name, s.base_offset, s.end_offset, s.size_bytes) for s in merged] == [
        ("00000000000000000000.log", 0, 8, one)]
    assert log.records()["offset"].tolist() == [7, 8]


def test_records_without_a_record_id_are_never_removed() -> None:
    """The lab's internal records (offset commits) carry no record id, so no key: kept."""
    kernel, log = compacted([("A", 1), ("A", 2)], per_segment=1)
    cols = {name: np.full(2, -1, dtype) for name, dtype in RECORD_COLUMNS.items()}
    log.append_batch(cols, log.segments[0].size_bytes)
    log.roll()
    log.high_watermark = log.log_end_offset
    clean(log, kernel, log.active_segment.base_offset, kernel.now_ms, 0)
    assert log.records()["offset"].tolist() == [1, 2, 3]
