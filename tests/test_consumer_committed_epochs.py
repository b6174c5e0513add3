"""Committed offsets carry the leader epoch of the last record read (KIP-320).

A group member that takes a partition over from a committed offset validates that offset
against the partition's leader before fetching, as it validates its own position after a
leader change. The scenario: member ``a`` reads and commits 60 records of ``t-0``, 50 of which
only the old leader had; ``a`` leaves; an unclean election makes the stale replica (10
records) leader, and the log grows again to 65, past the committed offset. Member ``b`` then
takes the partition over. Without the epoch, offset 60 looks valid and ``b`` would read only
60-64, skipping the 50 new records at 10-59 that replaced the truncated ones.
"""

from __future__ import annotations

import pytest

from sim import faults
from sim.consumer import Consumer, LogTruncationError, OffsetAndMetadata
from sim.consumer import events as ev
from sim.consumer.fetcher import epoch_for_offset
from sim.kernel import Kernel
from sim.producer import Producer
from tests.truncation_support import TP, leader_ahead_of_its_follower, offsets_read

GROUP = {"group.id": "g", "enable.auto.commit": False}


def _commit_past_a_truncation() -> tuple[Kernel, int]:
    """Run the scenario up to ``b``'s arrival; returns the kernel and ``a``'s commit epoch."""
    world = leader_ahead_of_its_follower(brokers=3)
    a = Consumer(world.kernel, {**GROUP, "client.id": "a", "auto.offset.reset": "earliest"})
    a.subscribe(["t"])
    world.read_all(a)
    a.commit_sync()
    committed_epoch = epoch_for_offset(world.part.log, 59)
    a.close()
    world.elect_stale_replica(new_records=55)  # the log grows past the committed offset again
    assert committed_epoch is not None
    assert world.part.leader_epoch > committed_epoch
    return world.kernel, committed_epoch


def test_a_commit_of_the_positions_stores_the_last_records_leader_epoch():
    """``SubscriptionState.allConsumed`` commits ``position.offsetEpoch`` with the offset
    (``OffsetAndMetadata.leaderEpoch``), and OffsetFetch returns it (``committedLeaderEpoch``);
    offsets given by hand carry none."""
    kernel, epoch = _commit_past_a_truncation()
    gc = Consumer(kernel, {**GROUP, "client.id": "probe"}).group_coordinator
    committed = gc.fetch_committed("g", [TP])[TP]
    assert committed is not None
    assert (committed.offset, committed.leader_epoch) == (60, epoch)
    by_hand = Consumer(kernel, {"group.id": "h", "enable.auto.commit": False})
    by_hand.assign([TP])
    by_hand.commit_sync({TP: 3})
    assert gc.fetch_committed("h", [TP])[TP].leader_epoch is None


@pytest.mark.parametrize("reset", ["earliest", "latest"])
def test_a_member_taking_over_a_commit_past_a_truncation_resumes_at_the_divergence(reset):
    """``ConsumerUtils.refreshCommittedOffsets`` seeks to the committed offset with its epoch
    (``SubscriptionState.seekUnvalidated``: AWAIT_VALIDATION); OffsetsForLeaderEpoch says the
    epoch ends at 10 in the new leader's log (``OffsetsForLeaderEpochUtils``), so
    ``maybeCompleteValidation`` seeks to 10 whatever ``auto.offset.reset`` says: ``b`` reads
    all 55 records the new leader took, once, not just 60-64."""
    kernel, _ = _commit_past_a_truncation()
    b = Consumer(kernel, {**GROUP, "client.id": "b", "auto.offset.reset": reset})
    b.subscribe(["t"])
    assert offsets_read(b) == list(range(10, 65))
    resets = kernel.trace.frame(ev.CONSUMER_OFFSET_RESET)
    resets = resets[resets["component"] == "b"]
    assert resets[["from_offset", "offset"]].values.tolist() == [[60, 10]]
    assert resets["reason"].str.contains("truncation detected").all()


def test_a_member_taking_over_a_commit_past_a_truncation_without_a_reset_policy_raises():
    """With ``auto.offset.reset=none`` ``SubscriptionState.maybeCompleteValidation`` returns
    a ``LogTruncation`` and the consumer throws ``LogTruncationException`` naming the first
    offset known to diverge."""
    kernel, _ = _commit_past_a_truncation()
    b = Consumer(kernel, {**GROUP, "client.id": "b", "auto.offset.reset": "none"})
    b.subscribe(["t"])
    with pytest.raises(LogTruncationError, match="truncation detected") as raised:
        offsets_read(b)
    assert raised.value.divergent_offset == 10


def test_position_validates_a_restored_commit_first():
    """``KafkaConsumer.position`` returns only a valid position (``validPosition``): the
    committed 60 is validated against the new leader and comes back as 10."""
    kernel, _ = _commit_past_a_truncation()
    b = Consumer(kernel, {**GROUP, "client.id": "b"})
    b.assign([TP])
    assert b.committed([TP])[TP].offset == 60
    assert b.position(TP) == 10


def test_committed_returns_each_offset_with_its_leader_epoch():
    """``KafkaConsumer.committed`` returns ``OffsetAndMetadata``s whose ``leaderEpoch()`` is
    the epoch committed with the offset (OffsetFetch's ``committedLeaderEpoch``): the last
    record's for a commit of the positions, the one given for an ``OffsetAndMetadata``
    committed by hand, none for a bare offset."""
    kernel, epoch = _commit_past_a_truncation()
    b = Consumer(kernel, {**GROUP, "client.id": "b"})
    b.assign([TP])
    committed = b.committed([TP])[TP]
    assert committed == OffsetAndMetadata(60, leader_epoch=epoch)
    assert committed.leader_epoch == epoch
    b.commit_sync({TP: OffsetAndMetadata(7, leader_epoch=epoch)})
    assert b.committed([TP]) == {TP: OffsetAndMetadata(7, epoch)}
    b.commit_sync({TP: 8})
    assert b.committed([TP])[TP].leader_epoch is None


@pytest.mark.parametrize(("with_epoch", "expected"), [
    (True, list(range(10, 65))),
    (False, list(range(60, 65))),
])
def test_seek_to_an_offset_and_metadata_validates_the_position(with_epoch, expected):
    """``KafkaConsumer.seek(TopicPartition, OffsetAndMetadata)`` seeks unvalidated with the
    leader epoch (``SubscriptionState.seekUnvalidated``), so the position is validated
    before its first fetch and resumes at the divergence, 10 (not at ``earliest``, 0);
    ``seek(tp, 60)`` (no epoch)
    is taken as valid and reads only 60-64, skipping the 50 records at 10-59."""
    kernel, epoch = _commit_past_a_truncation()
    b = Consumer(kernel, {"client.id": "b", "auto.offset.reset": "earliest"})
    b.assign([TP])
    b.seek(TP, OffsetAndMetadata(60, epoch) if with_epoch else 60)
    assert offsets_read(b) == expected


def test_seek_to_the_committed_offset_and_metadata_with_no_reset_policy_raises():
    """The epoch that ``committed()`` returns makes a seek to it validated: past a
    truncation and with ``auto.offset.reset=none``, ``poll()`` throws
    ``LogTruncationException`` instead of reading on from the committed offset."""
    kernel, _ = _commit_past_a_truncation()
    b = Consumer(kernel, {**GROUP, "client.id": "b", "auto.offset.reset": "none"})
    b.assign([TP])
    b.seek(TP, b.committed([TP])[TP])
    with pytest.raises(LogTruncationError) as raised:
        b.poll(100)
    assert (raised.value.fetch_offset, raised.value.divergent_offset) == (60, 10)


def test_auto_commit_and_close_commit_the_epoch_too():
    """``ConsumerCoordinator.maybeAutoCommitOffsetsAsync`` and ``close()`` commit
    ``SubscriptionState.allConsumed()`` as ``commitSync()`` does: offsets with epochs."""
    kernel = Kernel(seed=0, brokers=1)
    kernel.cluster.create_topic("t", partitions=1, replication_factor=1)
    producer = Producer(kernel, {"linger.ms": 0})
    for i in range(20):
        producer.send("t", key=f"k{i}")
    producer.flush()
    consumer = Consumer(kernel, {"group.id": "auto", "auto.offset.reset": "earliest",
                                 "auto.commit.interval.ms": 100})
    consumer.subscribe(["t"])
    while TP not in consumer.assignment() or consumer.position(TP) < 20:
        consumer.poll(100)
    consumer.poll(200)  # an auto-commit of the 20 records read
    gc = consumer.group_coordinator
    part = kernel.cluster.partition("t", 0)
    expected = epoch_for_offset(part.log, 19)
    assert expected is not None
    committed = gc.fetch_committed("auto", [TP])[TP]
    assert committed is not None
    assert (committed.offset, committed.leader_epoch) == (20, expected)
    consumer.close()  # commits the positions again, last: an epoch-less commit would erase it
    assert gc.fetch_committed("auto", [TP])[TP].leader_epoch == expected


def test_a_restored_position_awaiting_validation_is_not_committed():
    """A position restored from a commit with an epoch awaits validation
    (``seekUnvalidated``: AWAIT_VALIDATION) until the leader answers; ``allConsumed`` takes
    only positions that ``hasValidPosition``, so while ``b`` cannot reach the new leader its
    ``commitSync()`` and auto-commit on close send nothing for ``t-0``. (Group ``h``: its
    coordinator is not on the new leader.)"""
    kernel, epoch = _commit_past_a_truncation()
    leader = kernel.cluster.partition(TP.topic, TP.partition).leader
    probe = Consumer(kernel, {"group.id": "h", "enable.auto.commit": False})
    assert probe.group_coordinator.node_for("h") != leader
    probe.assign([TP])
    probe.commit_sync({TP: OffsetAndMetadata(60, epoch)})
    b = Consumer(kernel, {"group.id": "h", "client.id": "b", "auto.offset.reset": "earliest",
                          "auto.commit.interval.ms": 100})
    faults.NetworkPartition(("b",), (leader,)).apply(kernel)
    b.subscribe(["t"])
    assert offsets_read(b, polls=60) == []
    assert b.assignment() == [TP]
    assert b.consumed_offsets() == {}
    b.commit_sync()
    b.close()
    assert b.commits().empty
