"""Retention (``cleanup.policy=delete``): whole closed segments by size and by time.

Kafka's rules: ``UnifiedLog.deleteOldSegments`` runs the log-start-offset, ``retention.bytes``
and ``retention.ms`` passes; ``deletableSegments`` stops at the first kept segment, at a segment
not wholly below the high watermark and at an empty active segment; the time rule is
``now - segment.largestTimestamp > retention.ms``; the size rule deletes while
``size - retention.bytes - segment.size >= 0``. ``LogManager`` runs it every
``log.retention.check.interval.ms``. A consumer below the log start offset gets
OFFSET_OUT_OF_RANGE and follows ``auto.offset.reset``. Reference sheet §7.1.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim import config
from sim.broker.log import RECORD_COLUMNS, PartitionLog
from sim.broker.retention import delete_old_segments
from sim.consumer import Consumer, OffsetOutOfRangeError
from sim.kernel import Kernel
from sim.producer import Producer
from sim.records import TopicPartition
from sim.workloads import Workload


def filled(sizes_and_times: list[tuple[int, int]], segment_bytes: int = 300) -> PartitionLog:
    """A log with one 10-record batch per (size, timestamp), everything committed."""
    plog = PartitionLog(segment_bytes=segment_bytes)
    for size, ts in sizes_and_times:
        n = 10
        cols = {name: np.zeros(n, dtype) for name, dtype in RECORD_COLUMNS.items()}
        cols["timestamp_ms"] = np.full(n, ts, np.int64)
        plog.append_batch(cols, size)
    plog.high_watermark = plog.log_end_offset
    return plog


def topic(**configs: object) -> dict[str, object]:
    return config.TOPIC.parse(configs)


def test_retention_bytes_deletes_whole_oldest_segments_only() -> None:
    """Worked example of sim.broker.retention: 1000 bytes, retention.bytes 500 → one goes."""
    plog = filled([(300, 0), (300, 0), (300, 0), (100, 0)])
    deleted = delete_old_segments(plog, topic(**{"retention.bytes": 500}), now_ms=0)
    assert [(s.base_offset, why) for s, why in deleted] == [(0, "retention.bytes")]
    assert plog.log_start_offset == 10
    assert plog.size_bytes == 700  # above 500: deleting the next would go below it


def test_retention_ms_uses_each_segments_largest_timestamp_and_stops_at_the_first_kept() -> None:
    """A segment with a recent timestamp stops the walk: old segments after a kept one stay
    (``deletableSegments`` deletes an oldest prefix only)."""
    plog = filled([(300, 100), (300, 5000), (300, 100), (300, 100)])
    deleted = delete_old_segments(plog, topic(**{"retention.ms": 1000}), now_ms=5500)
    assert [s.base_offset for s, _ in deleted] == [0]  # 5500-100 > 1000; 5500-5000 is not
    assert plog.log_start_offset == 10


def test_retention_ms_breach_is_strictly_greater() -> None:
    plog = filled([(300, 1000), (300, 9000)])
    assert delete_old_segments(plog, topic(**{"retention.ms": 1000}), now_ms=2000) == []
    assert len(delete_old_segments(plog, topic(**{"retention.ms": 1000}), now_ms=2001)) == 1


def test_nothing_at_or_above_the_high_watermark_is_deleted() -> None:
    """A segment not wholly below the HW stays, so the log start never passes the HW."""
    plog = filled([(300, 0), (300, 0), (300, 0)])
    plog.high_watermark = 15
    deleted = delete_old_segments(plog, topic(**{"retention.ms": 1}), now_ms=10_000)
    assert [s.base_offset for s, _ in deleted] == [0]


def test_an_expired_active_segment_goes_after_a_roll() -> None:
    """All segments expired: the active one is rolled and deleted; an empty one remains."""
    plog = filled([(300, 0), (100, 0)])
    deleted = delete_old_segments(plog, topic(**{"retention.ms": 10}), now_ms=1000)
    assert len(deleted) == 2
    assert (plog.log_start_offset, plog.log_end_offset, len(plog.segments)) == (20, 20, 1)
    assert delete_old_segments(plog, topic(**{"retention.ms": 10}), now_ms=5000) == []


def test_compact_policy_alone_never_deletes_by_retention() -> None:
    plog = filled([(300, 0), (300, 0), (300, 0)])
    assert delete_old_segments(plog, topic(**{"cleanup.policy": "compact", "retention.ms": 1,
                                              "retention.bytes": 0}), now_ms=10**6) == []
    assert len(delete_old_segments(plog, topic(**{"cleanup.policy": "compact,delete",
                                                  "retention.ms": 1}), now_ms=10**6)) == 3


def retention_kernel(brokers: int = 3) -> tuple[Kernel, Producer]:
    kernel = Kernel(seed=1, brokers=brokers,
                    broker_configs={"log.retention.check.interval.ms": 1000})
    kernel.cluster.create_topic("t", 1, brokers, {"lab.segment.bytes": 20_000,
                                                  "retention.ms": 5000})
    producer = Producer(kernel)
    producer.add_workload(Workload.generate(kernel.spawn_rng(), "t", 2000, 200))
    return kernel, producer


def test_brokers_delete_segments_in_the_background_on_every_replica() -> None:
    """Every replica's log start moves; deletions are traced; the idle run still ends."""
    kernel, _ = retention_kernel()
    kernel.run()  # no time given: ends although retention timers keep ticking
    part = kernel.cluster.partition("t", 0)
    events = kernel.trace.to_frame()
    deleted = events[events["kind"] == "log.segment.delete"]
    assert len(deleted) > 0
    assert (events["kind"] == "log.segment.roll").sum() > 0
    starts = {b: log.log_start_offset for b, log in part.logs.items()}
    assert len(set(starts.values())) == 1
    assert starts[part.leader] > 0
    assert starts[part.leader] == part.log.segments[0].base_offset
    # each deletion happens at a retention check: a multiple of the interval
    assert (deleted["time_ms"] % 1000 == 0).all()


def test_consumer_below_the_log_start_resets_by_auto_offset_reset() -> None:
    """OFFSET_OUT_OF_RANGE after retention: earliest moves to the new log start offset."""
    kernel, _ = retention_kernel(brokers=1)
    consumer = Consumer(kernel, {"group.id": "g", "auto.offset.reset": "earliest",
                                 "max.poll.records": 10, "enable.auto.commit": False})
    tp = TopicPartition("t", 0)
    consumer.assign([tp])
    kernel.run(until_ms=1500)
    first = consumer.poll(0)
    assert first[0].offset == 0
    kernel.run(until_ms=12_000)
    start = kernel.cluster.partition("t", 0).log.log_start_offset
    assert start > 10
    records = consumer.poll(0)
    assert records[0].offset == start


def test_follower_behind_the_leaders_log_start_starts_over_there() -> None:
    """A follower down while retention deletes what it lacks gets OFFSET_OUT_OF_RANGE: it
    empties its log and starts at the leader's log start offset (``truncateFullyAndStartAt``),
    then catches up and agrees with the leader."""
    kernel, _ = retention_kernel()
    part = kernel.cluster.partition("t", 0)
    follower = next(b for b in part.replicas if b != part.leader)
    kernel.run(until_ms=500)
    kernel.controller.crash_broker(follower)
    kernel.run(until_ms=12_000)
    behind = part.logs[follower].log_end_offset
    assert part.log.log_start_offset > behind  # retention ran past what the follower has
    kernel.controller.restart_broker(follower)
    kernel.run(until_ms=20_000)
    log = part.logs[follower]
    assert log.log_end_offset == part.log.log_end_offset
    assert log.log_start_offset == part.log.log_start_offset
    start = max(log.log_start_offset, part.log.log_start_offset)
    assert np.array_equal(log.column("record_id", start), part.log.column("record_id", start))
    events = kernel.trace.to_frame()
    reasons = events.loc[(events["kind"] == "log.segment.delete")
                         & (events["node"] == follower), "reason"]
    assert "fetch offset out of range" in set(reasons)
    assert follower in part.isr


def test_segment_rolls_are_traced_on_leader_and_followers() -> None:
    kernel, _ = retention_kernel()
    kernel.run(until_ms=3000)
    events = kernel.trace.to_frame()
    rolls = events[events["kind"] == "log.segment.roll"]
    part = kernel.cluster.partition("t", 0)
    for broker, log in part.logs.items():
        mine = rolls.loc[rolls["node"] == broker, "base_offset"].astype(int).tolist()
        assert mine == [s.base_offset for s in log.segments[1:]]


def test_out_of_range_reset_is_traced_and_none_raises() -> None:
    """The reset names where the consumer was and where it went; with auto.offset.reset=none
    the position below the log start is OffsetOutOfRangeError (Kafka's
    ``OffsetOutOfRangeException``)."""
    for policy in ("earliest", "none"):
        kernel, _ = retention_kernel(brokers=1)
        consumer = Consumer(kernel, {"group.id": "g", "auto.offset.reset": policy,
                                     "max.poll.records": 10, "enable.auto.commit": False})
        tp = TopicPartition("t", 0)
        consumer.assign([tp])
        kernel.run(until_ms=1500)
        consumer.seek(tp, 0)
        assert consumer.poll(0)[0].offset == 0
        kernel.run(until_ms=12_000)
        start = kernel.cluster.partition("t", 0).log.log_start_offset
        if policy == "none":
            with pytest.raises(OffsetOutOfRangeError, match="outside the log"):
                consumer.poll(0)
            continue
        consumer.poll(0)
        resets = kernel.trace.to_frame().query("kind == 'consumer.offset.reset'")
        assert resets[["from_offset", "offset"]].values.tolist() == [[10, start]]
