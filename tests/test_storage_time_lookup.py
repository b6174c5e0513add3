"""Lookup by time: ``ListOffsets`` / the consumer's ``offsets_for_times``.

Kafka's ``KafkaConsumer.offsetsForTimes``: per partition the earliest offset whose timestamp is
≥ the target, with that timestamp (``OffsetAndTimestamp``), or ``null``; a negative target is an
``IllegalArgumentException``. ``UnifiedLog.fetchOffsetByTimestamp`` searches the first segment,
batch and record whose (largest) timestamp reaches the target, and ``Partition
.fetchOffsetForTimestamp`` answers nothing at or above the high watermark. Special timestamps:
``ListOffsetsRequest`` -1 latest, -2 earliest, -3 max timestamp (KIP-734). With
``message.timestamp.type=LogAppendTime`` the leader stamps records with its clock. Reference
sheet §7.4.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.broker.list_offsets import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_TIMESTAMP,
    OffsetAndTimestamp,
    offset_for_timestamp,
)
from sim.broker.log import RECORD_COLUMNS, PartitionLog
from sim.consumer import Consumer
from sim.errors import ConfigError
from sim.kernel import Kernel
from sim.producer import Producer
from sim.records import TopicPartition

TP = TopicPartition("t", 0)


def log_with(stamps: list[int], hw: int | None = None) -> PartitionLog:
    plog = PartitionLog()
    for ts in stamps:
        cols = {name: np.zeros(1, dtype) for name, dtype in RECORD_COLUMNS.items()}
        cols["timestamp_ms"] = np.array([ts], np.int64)
        plog.append_batch(cols, 100)
    plog.high_watermark = plog.log_end_offset if hw is None else hw
    return plog


def test_pinned_example_from_the_issue() -> None:
    """Timestamps [100, 200, 300] at offsets 0–2: 150 → offset 1, 301 → None."""
    plog = log_with([100, 200, 300])
    assert offset_for_timestamp(plog, 150) == OffsetAndTimestamp(1, 200)
    assert offset_for_timestamp(plog, 100) == OffsetAndTimestamp(0, 100)
    assert offset_for_timestamp(plog, 0) == OffsetAndTimestamp(0, 100)
    assert offset_for_timestamp(plog, 301) is None


def test_non_monotonic_timestamps_give_the_earliest_offset_not_the_closest_time() -> None:
    """[100, 300, 200]: 150 and 250 both → offset 1 (timestamp 300), though 200 is closer."""
    plog = log_with([100, 300, 200, 50])
    assert offset_for_timestamp(plog, 150) == OffsetAndTimestamp(1, 300)
    assert offset_for_timestamp(plog, 250) == OffsetAndTimestamp(1, 300)
    assert offset_for_timestamp(plog, 301) is None


def test_nothing_at_or_above_the_high_watermark_is_answered() -> None:
    plog = log_with([100, 200, 300], hw=2)
    assert offset_for_timestamp(plog, 250) is None
    assert offset_for_timestamp(plog, LATEST_TIMESTAMP) == OffsetAndTimestamp(2, -1)


def test_special_timestamps() -> None:
    """-2 the log start, -1 the high watermark, -3 the first record with the largest time."""
    plog = log_with([100, 300, 200, 300])
    assert offset_for_timestamp(plog, EARLIEST_TIMESTAMP).offset == 0
    assert offset_for_timestamp(plog, LATEST_TIMESTAMP).offset == 4
    assert offset_for_timestamp(plog, MAX_TIMESTAMP) == OffsetAndTimestamp(1, 300)
    with pytest.raises(ConfigError, match="negative"):
        offset_for_timestamp(plog, -7)


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=40), st.integers(0, 1100))
def test_answer_is_the_minimum_offset_with_a_timestamp_at_least_the_target(
        stamps: list[int], target: int) -> None:
    plog = log_with(stamps)
    found = offset_for_timestamp(plog, target)
    expected = next((i for i, ts in enumerate(stamps) if ts >= target), None)
    assert (None if found is None else found.offset) == expected
    if found is not None:
        assert found.timestamp == stamps[found.offset]


def skewed_kernel(timestamp_type: str) -> tuple[Kernel, Consumer]:
    """Records sent at 0, 10, 20, 30 ms with CreateTimes 1000, 5000, 2000, 3000."""
    kernel = Kernel(seed=0, brokers=1)
    kernel.cluster.create_topic("t", 1, 1, {"message.timestamp.type": timestamp_type})
    producer = Producer(kernel, {"linger.ms": 0})
    for k, ts in enumerate([1000, 5000, 2000, 3000]):
        kernel.run(until_ms=10 * k)
        producer.send("t", key=f"k{k}", value="v", timestamp=ts)
    producer.flush()
    return kernel, Consumer(kernel, {"group.id": "g", "auto.offset.reset": "earliest"})


def test_offsets_for_times_with_producer_timestamps_that_go_backwards() -> None:
    """CreateTime keeps the producer's timestamps; seek() to the answer reads from there."""
    _kernel, consumer = skewed_kernel("CreateTime")
    found = consumer.offsets_for_times({TP: 1500, ("t", 0): 1500})
    assert found == {TP: OffsetAndTimestamp(1, 5000)}
    assert consumer.offsets_for_times({TP: 5001}) == {TP: None}
    assert consumer.beginning_offsets([TP]) == {TP: 0}
    assert consumer.end_offsets([TP]) == {TP: 4}
    consumer.assign([TP])
    consumer.seek(TP, found[TP].offset)
    assert [r.timestamp_ms for r in consumer.poll(0)] == [5000, 2000, 3000]
    with pytest.raises(ConfigError, match="target time"):
        consumer.offsets_for_times({TP: -1})


def test_log_append_time_replaces_producer_timestamps_with_the_leaders_clock() -> None:
    kernel, consumer = skewed_kernel("LogAppendTime")
    stamps = kernel.cluster.partition("t", 0).log.column("timestamp_ms").tolist()
    assert stamps == sorted(stamps)
    assert max(stamps) < 1000
    assert consumer.offsets_for_times({TP: 1000}) == {TP: None}
