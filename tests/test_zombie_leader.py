"""A zombie leader (alive, cut off from the controller) and acks=all.

Kafka's ``Partition.appendRecordsToLeader`` refuses an acks=all batch with
NOT_ENOUGH_REPLICAS when the leader's own ISR is smaller than ``min.insync.replicas``. A
leader that was the last ISR member when the controller fenced it leaves the partition
offline with that ISR, and still holds that ISR itself: it must go on refusing, not append
records that it keeps when it is elected again while their requests go unanswered.
"""

from __future__ import annotations

from sim import faults
from sim import trace as events
from sim.audit import audit_kernel
from sim.broker.cluster import Network
from sim.broker.controller import ELECTION
from sim.broker.replication import PRODUCE_ERROR
from sim.kernel import Kernel
from sim.producer import Producer


def _offline_under_a_zombie() -> tuple[Kernel, Producer, int, list[int]]:
    """payments-0's other two replicas crash at 1 s (fenced at 10 s, the ISR shrinks to its
    leader, min ISR 2); then the leader is cut from the controller at 10.5 s and fenced at
    19.5 s: the partition goes offline in the controller's record, the leader a zombie that
    holds that ISR. Returns the kernel, an idempotent producer, the zombie and the others."""
    kernel = Kernel(seed=3, brokers=3)
    kernel.cluster.create_topic("payments", 1, 3, {"min.insync.replicas": 2})
    producer = Producer(kernel, {"acks": "all", "enable.idempotence": True,
                                 "request.timeout.ms": 5000, "delivery.timeout.ms": 120_000,
                                 "linger.ms": 0, "client.id": "app"})
    part = kernel.cluster.partition("payments", 0)
    zombie = part.leader
    others = [b for b in part.replicas if b != zombie]
    for broker in others:
        faults.schedule(kernel, 1_000, faults.CrashBroker(broker))
    faults.schedule(kernel, 10_500, faults.NetworkPartition((zombie,), (Network.CONTROLLER,)))
    return kernel, producer, zombie, others


def test_a_zombie_of_an_offline_partition_refuses_acks_all_below_min_isr():
    """From the fencing on, the zombie's log takes nothing: every attempt gets
    NOT_ENOUGH_REPLICAS, as before the fencing."""
    kernel, producer, zombie, _ = _offline_under_a_zombie()
    kernel.run(until_ms=20_000)
    part = kernel.cluster.partition("payments", 0)
    assert kernel.controller.registration(part) == (-1, [zombie])
    assert part.isr == [zombie]
    assert kernel.cluster.brokers[zombie].leads  # it still believes it leads
    end = part.logs[zombie].log_end_offset
    for i in range(20):
        producer.send("payments", key=f"k{i}", partition=0)
        kernel.run(until_ms=kernel.now_ms + 100)
    kernel.run(until_ms=kernel.now_ms + 10_000)
    assert part.logs[zombie].log_end_offset == end
    errors = kernel.trace.frame(PRODUCE_ERROR)
    errors = errors[errors.time_ms > 20_000]
    assert len(errors) > 0
    assert set(errors.error) == {"NOT_ENOUGH_REPLICAS"}
    # each field in its own column: the rejecting broker under ``node``, the partition under
    # ``topic`` / ``partition`` (the broker metrics count rejections by ``node``)
    columns = zip(errors.topic, errors.partition, errors.node, strict=True)
    assert set(columns) == {("payments", 0, zombie)}


def test_records_sent_to_a_zombie_are_stored_once_after_it_is_elected_again():
    """Two records go to the zombie just before it is heard again and elected (its ISR, [it],
    is all that is left); the other replicas return and more records follow at once: every
    record is acknowledged, stored once, in order. Had the zombie appended the two, they
    would stay in its log with their requests unanswered, the later batches would be appended
    after them, and their retries, refused as out of order, would expire and be written again
    under a new epoch."""
    kernel, producer, zombie, others = _offline_under_a_zombie()
    kernel.run(until_ms=25_000)
    futures = [producer.send("payments", key=f"k{i}", partition=0) for i in range(2)]
    kernel.run(until_ms=kernel.now_ms + 200)
    faults.schedule(kernel, kernel.now_ms + 1,
                    faults.HealNetwork((zombie,), (Network.CONTROLLER,)))
    for broker in others:
        faults.schedule(kernel, kernel.now_ms + 1, faults.RestartBroker(broker))
    kernel.run(until_ms=kernel.now_ms + 2_000)  # the others catch up and rejoin the ISR
    for i in range(2, 40):
        futures.append(producer.send("payments", key=f"k{i}", partition=0))
        kernel.run(until_ms=kernel.now_ms + 100)
    kernel.run(until_ms=kernel.now_ms + 150_000)
    elections = kernel.trace.frame(ELECTION)
    assert list(elections.leader) == [-1, zombie]
    assert [f.get().offset for f in futures] == list(range(40))  # all acknowledged, in order
    assert audit_kernel(kernel).duplicates == 0


def test_a_client_ignores_a_zombie_claim_older_than_the_epoch_it_has_seen():
    """The leader is cut from the controller and replaced (epoch 1). A client that has seen
    epoch 1 and then loses the new leader waits for it rather than follow the zombie's
    epoch-0 claim (Kafka's ``Metadata.updateLatestMetadata`` ignores older epochs); a client
    that never saw epoch 1 can only learn the zombie's claim, and follows it."""
    kernel = Kernel(seed=3, brokers=3)
    kernel.cluster.create_topic("payments", 1, 3)
    cluster = kernel.cluster
    part = cluster.partition("payments", 0)
    zombie = part.leader
    faults.NetworkPartition((zombie,), (Network.CONTROLLER,)).apply(kernel)
    kernel.run(kernel.now_ms + 15_000)  # fenced after broker.session.timeout.ms, re-elected
    leader = part.leader
    assert leader not in (zombie, -1)
    assert part.leader_epoch > cluster.brokers[zombie].leads[("payments", 0)]
    assert cluster.leader_seen_by("informed", part) == leader
    for client in ("informed", "late"):
        for broker in cluster.brokers:
            if broker != zombie:
                cluster.network.cut(client, broker)
    assert cluster.leader_seen_by("informed", part) == leader  # waits for the real leader
    assert cluster.leader_seen_by("late", part) == zombie


def test_a_deposed_zombie_answers_its_waiting_acks_all_batches_not_leader_at_once():
    """The leader and the producer are cut off from the rest of the cluster: the leader goes
    on as a zombie and appends the producer's acks=all batch, which nobody can replicate. When
    the cut heals and the zombie learns it no longer leads, that batch is answered
    NOT_LEADER_OR_FOLLOWER at once (Kafka's ``completeDelayedOperationsWhenNotPartitionLeader``
    when a leader becomes a follower), not after request.timeout.ms: the producer retries it
    at the new leader before the records it sends later, so the log keeps their send order.
    (It used to wait out its timeout, and a later record took the new leader's first offset.)"""
    kernel = Kernel(seed=3, brokers=3)
    kernel.cluster.create_topic("payments", 1, 3)
    producer = Producer(kernel, {"acks": "all", "linger.ms": 0, "client.id": "app",
                                 "request.timeout.ms": 30_000})
    part = kernel.cluster.partition("payments", 0)
    zombie = part.leader
    others = tuple(b for b in part.replicas if b != zombie)
    sides = ((zombie, "app"), (*others, Network.CONTROLLER))
    faults.schedule(kernel, 1_000, faults.NetworkPartition(*sides))
    faults.schedule(kernel, 21_000, faults.HealNetwork(*sides))
    kernel.run(until_ms=20_000)
    assert part.leader != zombie  # elected elsewhere once the zombie was fenced
    producer.send("payments", key="first", partition=0)
    kernel.run(until_ms=20_500)
    assert part.logs[zombie].log_end_offset == 1  # the zombie took it
    kernel.run(until_ms=21_500)
    producer.send("payments", key="second", partition=0)
    kernel.run(until_ms=60_000)
    retries = kernel.trace.frame(events.PRODUCE_RETRY)
    retries = retries[retries.time_ms >= 21_000]
    assert list(retries.error) == ["NOT_LEADER_OR_FOLLOWER"]
    assert retries.time_ms.iloc[0] < 21_100
    results = producer.results()
    assert results.error.isna().all()
    assert list(results.sort_values("offset").key) == ["first", "second"]
    assert not audit_kernel(kernel).anomalies["nonmonotonic-send"]


def test_a_run_to_the_end_stops_once_a_deposed_zombies_batches_are_answered():
    """A zombie's acks=all batch waits under a request.timeout.ms timer; once the zombie
    learns it was deposed the batch is answered, and, as Kafka cancels a completed
    operation's timer, that timer no longer keeps ``run()`` going: the run ends at the retried
    batch's answer, not 30 s later when the spent timer would fire."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", replica_assignment=[[0, 1, 2]])
    producer = Producer(kernel, {"acks": "all", "client.id": "app",
                                 "request.timeout.ms": 30_000})
    sides = ((0, "app"), (1, 2, Network.CONTROLLER))
    faults.schedule(kernel, 1_000, faults.NetworkPartition(*sides))
    kernel.run(until_ms=11_000)  # fenced and replaced by now
    assert kernel.cluster.partition("t", 0).leader != 0
    for i in range(3):
        producer.send("t", key=f"k{i}", value="v")
    kernel.run(until_ms=11_500)
    assert kernel.cluster.partition("t", 0).logs[0].log_end_offset == 3  # the zombie took them
    faults.HealNetwork(*sides).apply(kernel)
    kernel.run()
    assert producer.acked == 3
    last = kernel.trace.to_frame()["time_ms"].max()
    assert kernel.now_ms == last < 12_000
