"""Which leader a follower cut off from the controller fetches from (Kafka 4.0, KRaft).

A KRaft broker learns leadership only from the metadata log it replicates from the controller
quorum: ``BrokerMetadataPublisher`` hands each new image to ``ReplicaManager.applyDelta``,
whose ``makeFollowers`` points the replica fetchers at the leader (and leader epoch) of that
image. A follower that cannot hear the controller keeps fetching from the leader of its last
image, with that leader epoch in each request:

- from a broker that now leads in a newer epoch, or follows, the answer is an error
  (``Partition.getLocalLog``: FENCED_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER), and
  ``AbstractFetcherThread`` copies nothing — on FENCED_LEADER_EPOCH it stops fetching the
  partition until new metadata comes (``onPartitionFenced``);
- from a crashed broker, no answer at all;
- a leader elected after the cut is not followed until the follower hears the controller
  again; then it truncates where needed and catches up from it.

While such a follower stays in the ISR it holds the high watermark back, until the controller
fences it (``broker.session.timeout.ms``) and takes it out of the ISR.
"""

from __future__ import annotations

from sim import faults
from sim.broker.controller import BROKER_SESSION_TIMEOUT_MS
from sim.kernel import Kernel
from sim.producer import Producer

SESSION = BROKER_SESSION_TIMEOUT_MS


def _cluster() -> tuple[Kernel, Producer]:
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", replica_assignment=[[0, 1, 2]])
    producer = Producer(kernel, {"acks": "1", "linger.ms": 0, "retry.backoff.ms": 50,
                                 "delivery.timeout.ms": 120_000})
    return kernel, producer


def _send_until(kernel: Kernel, producer: Producer, until_ms: float) -> None:
    """One record every 100 ms until ``until_ms``."""
    while kernel.now_ms < until_ms:
        producer.send("t", key=f"k{int(kernel.now_ms)}")
        kernel.run(until_ms=kernel.now_ms + 100)


def _record_ids(kernel: Kernel, broker: int) -> list[int]:
    return [int(i) for i in kernel.cluster.partition("t", 0).logs[broker].records()["record_id"]]


def test_a_cut_off_follower_does_not_follow_a_leader_elected_after_the_cut():
    """Replicas [0, 1, 2]. Leader 0 crashes at 1 s; follower 2 is cut off from the controller
    (not from the brokers) at 5 s. At 0's fencing (10 s) the controller elects 1 with the ISR
    [1, 2] (epoch 1), which 2 never hears: its metadata still names 0 in epoch 0, a broker that
    does not answer, so it copies none of 1's records. The high watermark stays where it was
    until 2 is fenced (14 s) and leaves the ISR. Once its link heals (16 s), 2 hears of leader
    1 and catches up from it."""
    kernel, producer = _cluster()
    part = kernel.cluster.partition("t", 0)
    faults.schedule(kernel, 1000, faults.CrashBroker(0))
    faults.schedule(kernel, 5000, faults.NetworkPartition((2,), ("controller",)))
    faults.schedule(kernel, 16_000, faults.HealNetwork((2,), ("controller",)))
    _send_until(kernel, producer, 10_000)
    assert (part.leader, part.leader_epoch, part.isr) == (1, 1, [1, 2])
    assert kernel.controller.leader_known_by(2, part) == (0, 0)
    assert kernel.controller.leader_known_by(1, part) == (1, 1)
    held_leo = part.logs[2].log_end_offset
    held_hw = part.logs[1].high_watermark
    _send_until(kernel, producer, 10_000 + 3900)  # 13.9 s: 2 is still in the ISR
    assert part.isr == [1, 2]
    assert part.logs[1].log_end_offset > held_leo + 20  # the new leader took writes...
    assert part.logs[2].log_end_offset == held_leo  # ...its cut-off follower copied none
    assert part.logs[1].high_watermark == held_hw  # and stay above the high watermark
    _send_until(kernel, producer, 5000 + SESSION + 500)  # 2 fenced at 14 s
    assert part.isr == [1]
    assert part.logs[1].high_watermark == part.logs[1].log_end_offset
    assert part.logs[2].log_end_offset == held_leo
    _send_until(kernel, producer, 17_000)  # healed at 16 s
    kernel.run(until_ms=18_000)
    assert kernel.controller.leader_known_by(2, part) == (1, 1)
    assert part.logs[2].log_end_offset == part.logs[1].log_end_offset
    assert _record_ids(kernel, 2) == _record_ids(kernel, 1)


def test_a_cut_off_follower_of_a_deposed_leader_copies_nothing_until_it_hears():
    """Replicas [0, 1, 2]; 0 crashes at 1 s, 1 leads from 10 s (epoch 1), 0 restarts at 11 s
    and rejoins the ISR. Follower 2 is cut off from the controller at 15 s; at 16 s a preferred
    leader election moves leadership back to 0 (epoch 2). 1 hears it and follows 0; 2 keeps
    fetching from 1 in epoch 1, which 1 refuses (FENCED_LEADER_EPOCH: it is in epoch 2 now),
    so 2 copies none of 0's records and, still in the ISR, holds the high watermark back. Its
    link heals at 21 s, before its session runs out (24 s): it learns of leader 0 from the
    metadata and catches up, though nobody writes any more."""
    kernel, producer = _cluster()
    part = kernel.cluster.partition("t", 0)
    faults.schedule(kernel, 1000, faults.CrashBroker(0))
    faults.schedule(kernel, 11_000, faults.RestartBroker(0))
    faults.schedule(kernel, 15_000, faults.NetworkPartition((2,), ("controller",)))
    faults.schedule(kernel, 21_000, faults.HealNetwork((2,), ("controller",)))
    _send_until(kernel, producer, 16_000)
    assert (part.leader, part.leader_epoch, part.isr) == (1, 1, [1, 2, 0])
    kernel.controller.preferred_leader_election()
    assert (part.leader, part.leader_epoch) == (0, 2)
    assert kernel.controller.leader_known_by(2, part) == (1, 1)
    assert kernel.controller.leader_known_by(1, part) == (0, 2)
    held_leo = part.logs[2].log_end_offset
    held_hw = part.logs[0].high_watermark
    _send_until(kernel, producer, 19_000)
    kernel.run(until_ms=20_900)
    assert part.isr == [1, 2, 0]
    assert part.logs[0].log_end_offset > held_leo + 20
    assert part.logs[1].log_end_offset == part.logs[0].log_end_offset  # 1 follows 0
    assert part.logs[2].log_end_offset == held_leo
    assert part.logs[0].high_watermark == held_hw
    kernel.run(until_ms=22_000)  # healed at 21 s, never fenced
    assert 2 not in kernel.controller.fenced
    assert kernel.controller.leader_known_by(2, part) == (0, 2)
    assert part.logs[2].log_end_offset == part.logs[0].log_end_offset
    assert _record_ids(kernel, 2) == _record_ids(kernel, 0)
    assert part.logs[0].high_watermark == part.logs[0].log_end_offset


def test_a_broker_restarted_while_cut_off_from_the_controller_follows_no_leader():
    """Replicas [0, 1, 2], leader 0. Follower 2 crashes at 1 s, is cut off from the controller
    at 2 s and restarts (disk kept) at 3 s. The new process learns nothing from its metadata
    log until it reaches the controller (``BrokerServer.startup`` waits for the broker's
    initial metadata catch-up, ``BrokerLifecycleManager.initialCatchUpFuture``; the
    ``MetadataLoader`` publishes no image before it), so it fetches from nobody, and, still in
    the ISR, holds the high watermark back. Its link heals at 8 s: it registers, learns leader
    0 and catches up."""
    kernel, producer = _cluster()
    part = kernel.cluster.partition("t", 0)
    faults.schedule(kernel, 1000, faults.CrashBroker(2))
    faults.schedule(kernel, 2000, faults.NetworkPartition((2,), ("controller",)))
    faults.schedule(kernel, 3000, faults.RestartBroker(2))
    faults.schedule(kernel, 8000, faults.HealNetwork((2,), ("controller",)))
    _send_until(kernel, producer, 3000)
    held_leo = part.logs[2].log_end_offset
    held_hw = part.logs[0].high_watermark
    assert kernel.controller.leader_known_by(2, part) == (-1, -1)
    _send_until(kernel, producer, 7900)
    assert part.isr == [0, 1, 2]
    assert part.logs[0].log_end_offset > held_leo + 20
    assert part.logs[2].log_end_offset == held_leo
    assert part.logs[0].high_watermark == held_hw
    kernel.run(until_ms=9000)
    assert kernel.controller.leader_known_by(2, part) == (0, 0)
    assert part.logs[2].log_end_offset == part.logs[0].log_end_offset
    assert part.logs[0].high_watermark == part.logs[0].log_end_offset
