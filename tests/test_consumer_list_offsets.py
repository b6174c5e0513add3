"""The consumer's offset lookups after a failover: a new leader whose high watermark is still
below the start of its leader epoch refuses "latest" (OFFSET_NOT_AVAILABLE,
``Partition.fetchOffsetForTimestamp``, KIP-207; ``PartitionTest.testMonotonicOffsetsAfter
LeaderChange``), so a consumer's end offsets and ``auto.offset.reset=latest`` never go below
what the previous leader had shown; the client retries (``OffsetFetcherUtils``)."""

from __future__ import annotations

import pytest

from sim.broker.list_offsets import latest_offset, offset_not_available
from sim.consumer import Consumer, OffsetNotAvailableError
from sim.kernel import Kernel
from sim.producer import Producer
from sim.records import TopicPartition
from tests.failover_support import lagging_leader

TP = TopicPartition("orders", 0)


def test_end_offsets_never_go_below_what_the_old_leader_showed():
    """While the new leader lags, ``end_offsets`` refuses (Kafka's client would retry) instead
    of answering its high watermark, below the end the old leader showed; once the high
    watermark reaches the start of the epoch it answers, at or past that end."""
    kernel, part, shown = lagging_leader("orders")
    consumer = Consumer(kernel, {"client.id": "reader"})
    assert offset_not_available(part)
    assert latest_offset(part) is None
    with pytest.raises(OffsetNotAvailableError, match="OFFSET_NOT_AVAILABLE"):
        consumer.end_offsets([TP])
    assert kernel.run_until(lambda k: not offset_not_available(part),
                            max_ms=kernel.now_ms + 10_000)
    assert consumer.end_offsets([TP])[TP] >= shown


def test_a_latest_reset_waits_for_the_new_leader_instead_of_going_back():
    """A consumer assigned the partition while the new leader lags, with
    auto.offset.reset=latest, gets no position (AWAIT_RESET) and reads nothing the old leader
    had already shown as committed: the reset is retried until the leader can answer."""
    kernel, _part, shown = lagging_leader("orders")
    consumer = Consumer(kernel, {"client.id": "tail", "auto.offset.reset": "latest"})
    consumer.assign([TP])
    with pytest.raises(OffsetNotAvailableError):
        consumer.position(TP)
    read: list[int] = []
    for _ in range(30):
        read += [r.offset for r in consumer.poll(500)]
    assert consumer.position(TP) >= shown
    assert read
    assert min(read) >= shown  # the old leader had shown up to 1,800 (the old code read 1,798)
    assert consumer.subscriptions.awaiting_reset == {}


def test_seek_to_end_waits_too():
    """``seek_to_end`` resets lazily, as Kafka's (``requestOffsetReset(LATEST)``): while the
    leader lags the partition waits, and the next polls set its position at or past the old
    leader's end."""
    kernel, _part, shown = lagging_leader("orders")
    consumer = Consumer(kernel, {"client.id": "tail"})
    consumer.assign([TP])
    consumer.seek_to_end([TP])
    assert TP in consumer.subscriptions.awaiting_reset
    for _ in range(30):
        consumer.poll(500)
    assert consumer.position(TP) >= shown


def test_a_time_lookup_past_the_lagging_high_watermark_is_refused_below_it_answered():
    """``fetchOffsetForTimestamp`` by time while the leader lags: a record found below the
    high watermark is answered; finding none there is OFFSET_NOT_AVAILABLE (the record may
    sit between the lagging high watermark and what the old leader had committed)."""
    kernel, part, _shown = lagging_leader("orders")
    consumer = Consumer(kernel, {"client.id": "reader"})
    log = part.log
    first = int(log.column("timestamp_ms", 0, 1)[0])
    assert consumer.offsets_for_times({TP: first})[TP].offset == 0
    with pytest.raises(OffsetNotAvailableError):
        consumer.offsets_for_times({TP: 10**12})
    assert kernel.run_until(lambda k: not offset_not_available(part),
                            max_ms=kernel.now_ms + 10_000)
    assert consumer.offsets_for_times({TP: 10**12}) == {TP: None}


def test_end_offsets_of_a_read_committed_consumer_are_the_last_stable_offsets():
    """``endOffsets`` answers the last stable offset under read_committed
    (``KafkaConsumer.endOffsets``; ``Partition.fetchOffsetForTimestamp``'s
    ``lastFetchableOffset``): an open transaction holds it below the high watermark."""
    kernel = Kernel(seed=0, brokers=1)
    kernel.cluster.create_topic("orders", 1, 1)
    producer = Producer(kernel, {"transactional.id": "t"})
    producer.init_transactions()
    producer.begin_transaction()
    producer.send("orders", key="k", value="v")
    producer.flush()
    log = kernel.cluster.partition("orders", 0).log
    assert log.last_stable_offset < log.high_watermark
    committed = Consumer(kernel, {"isolation.level": "read_committed"})
    uncommitted = Consumer(kernel, {"client.id": "other"})
    assert committed.end_offsets([TP]) == {TP: log.last_stable_offset}
    assert uncommitted.end_offsets([TP]) == {TP: log.high_watermark}
