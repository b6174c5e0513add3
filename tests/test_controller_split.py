"""The controller cut off from the brokers (a *controller split*), as KRaft behaves.

A KRaft broker learns leaders and ISRs from the metadata log, which it fetches from the
controller: cut off, it keeps its last image. The controller fences the silent brokers after
``broker.session.timeout.ms`` and records the partitions offline, but no broker hears it:

- the leader goes on leading with the ISR it holds, and its followers go on fetching from it
  (``ReplicaFetcherThread`` targets the leader of the broker's last image), so acks=all writes
  with ``min.insync.replicas`` 2 keep being acknowledged while they reach each other;
- the ISR cannot change (``AlterPartition`` goes to the controller), so a follower that cannot
  fetch holds the high watermark back and acks=all requests time out;
- once the controller is back, the brokers learn its decisions and it elects a leader from its
  ISR: nothing acknowledged is lost.
"""

from __future__ import annotations

import pandas as pd

from sim import faults
from sim.broker.controller import BROKER_SESSION_TIMEOUT_MS
from sim.broker.replication import HW_ADVANCE, PRODUCE_ERROR, REQUEST_TIMED_OUT
from sim.broker.transaction_coordinator import COMPLETE_COMMIT, TRANSACTION_STATE_TOPIC
from sim.consumer import Consumer
from sim.kernel import Kernel
from sim.producer import Producer
from sim.records import TopicPartition

SPLIT_AT_MS = 2000
HEAL_AT_MS = 30_000
BROKERS = (0, 1, 2)


def split_cluster() -> tuple[Kernel, Producer]:
    """RF 3, min.insync.replicas 2, an acks=all producer; the controller is cut from every
    broker at 2 s (the brokers and the producer still reach each other)."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", 1, 3, {"min.insync.replicas": 2})
    producer = Producer(kernel, {"acks": "all", "linger.ms": 0, "request.timeout.ms": 5000,
                                 "delivery.timeout.ms": 120_000})
    faults.schedule(kernel, SPLIT_AT_MS, faults.NetworkPartition(("controller",), BROKERS))
    return kernel, producer


def send_until(kernel: Kernel, producer: Producer, until_ms: float) -> None:
    """One record every 250 ms until ``until_ms``."""
    while kernel.now_ms < until_ms:
        producer.send("t", key=f"k{int(kernel.now_ms)}")
        kernel.run(until_ms=kernel.now_ms + 250)


def acknowledged(producer: Producer) -> pd.DataFrame:
    results = producer.results()
    return results[results["ack_ms"].notna()]


def test_acks_all_writes_go_on_while_the_brokers_reach_each_other():
    """Fenced at 11 s, the partition is offline in the controller's view; the leader and its
    followers never hear it: every record sent up to 30 s is acknowledged within a second and
    is on every replica."""
    kernel, producer = split_cluster()
    part = kernel.cluster.partition("t", 0)
    leader = part.leader
    send_until(kernel, producer, HEAL_AT_MS - 1000)
    kernel.run(until_ms=HEAL_AT_MS - 1)
    assert kernel.controller.fenced == set(BROKERS)
    assert kernel.controller.registration(part)[0] == -1  # offline, in the controller's view
    assert kernel.cluster.believed_leader(part) == leader
    results = producer.results()
    late = results[results["send_ms"] > SPLIT_AT_MS + BROKER_SESSION_TIMEOUT_MS]
    assert len(late) > 50
    assert late["ack_ms"].notna().all()
    assert (late["latency_ms"] < 1000).all()
    assert kernel.trace.frame(PRODUCE_ERROR).empty
    assert {log.log_end_offset for log in part.logs.values()} == {len(results)}
    assert part.logs[leader].high_watermark == len(results)


def test_nothing_acknowledged_is_lost_once_the_controller_returns():
    """After the heal the controller elects a leader from its ISR and the others follow it:
    every acknowledged record is committed there, once, and writes go on."""
    kernel, producer = split_cluster()
    faults.schedule(kernel, HEAL_AT_MS, faults.HealNetwork(("controller",), BROKERS))
    send_until(kernel, producer, HEAL_AT_MS + 10_000)
    kernel.run(until_ms=HEAL_AT_MS + 30_000)
    part = kernel.cluster.partition("t", 0)
    assert part.leader >= 0
    assert kernel.controller.registration(part)[0] == part.leader
    assert kernel.controller.fenced == set()
    acked = acknowledged(producer)
    log = part.log
    committed = log.column("record_id", log.log_start_offset, log.high_watermark).tolist()
    assert len(committed) == len(set(committed))
    assert set(acked["record_id"]) <= set(committed)
    assert (acked["send_ms"] > HEAL_AT_MS + 2000).any()
    assert sorted(part.isr) == list(BROKERS)


def test_a_follower_cut_from_its_leader_still_holds_the_high_watermark_back():
    """Also cut from the leader, a follower cannot fetch, and the leader cannot drop it from
    the ISR without the controller: the high watermark stops and acks=all writes time out."""
    kernel, producer = split_cluster()
    part = kernel.cluster.partition("t", 0)
    follower = next(b for b in part.replicas if b != part.leader)
    faults.schedule(kernel, SPLIT_AT_MS, faults.NetworkPartition((follower,), (part.leader,)))
    send_until(kernel, producer, HEAL_AT_MS - 1000)
    kernel.run(until_ms=HEAL_AT_MS - 1)
    advances = kernel.trace.frame(HW_ADVANCE)
    assert (advances["time_ms"] <= SPLIT_AT_MS + 100).all()
    results = producer.results()
    assert results.loc[results["send_ms"] > SPLIT_AT_MS, "ack_ms"].isna().all()
    errors = kernel.trace.frame(PRODUCE_ERROR)
    assert len(errors) > 0
    assert set(errors["error"]) == {REQUEST_TIMED_OUT}


def test_transactions_commit_while_the_controller_is_away():
    """The transaction coordinator is the broker acting as leader of the id's
    ``__transaction_state`` partition: its acks=all state writes and the markers go on, so a
    transaction begun and committed while every broker is fenced completes, and a
    read_committed consumer sees its records."""
    kernel = Kernel(seed=3, brokers=3)
    kernel.cluster.create_topic("out", 1, 3, {"min.insync.replicas": 2})
    producer = Producer(kernel, {"transactional.id": "app-1", "linger.ms": 0})
    producer.init_transactions()
    coordinator = kernel.cluster.transaction_coordinator
    state = kernel.cluster.partition(TRANSACTION_STATE_TOPIC,
                                     coordinator.partition_for("app-1"))
    faults.NetworkPartition(("controller",), BROKERS).apply(kernel)
    kernel.run(until_ms=kernel.now_ms + BROKER_SESSION_TIMEOUT_MS + 1000)
    assert kernel.controller.registration(state)[0] == -1
    assert coordinator.node_for("app-1") == kernel.cluster.believed_leader(state)
    producer.begin_transaction()
    for i in range(5):
        producer.send("out", key=f"k{i}", value=i, partition=0)
    producer.commit_transaction()
    kernel.run(until_ms=kernel.now_ms + 100)
    assert coordinator.state_of("app-1").state == COMPLETE_COMMIT
    consumer = Consumer(kernel, {"isolation.level": "read_committed",
                                 "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition("out", 0)])
    assert [r.offset for r in consumer.poll(timeout_ms=5)] == list(range(5))  # marker at 5


def test_a_follower_that_hears_the_controller_stops_fetching_from_an_offline_partition():
    """Broker 2, out of the ISR, stays with the controller while leader 0 and follower 1 are
    cut off from it at 8 s. Fenced at 17 s, 0 cannot be replaced (1 is fenced too, 2 is not in
    the ISR): the controller records the partition offline, 0 leaving the ISR for 1, its last
    member (KRaft, which fences one broker at a time, elects 1 and then takes it offline with
    the same ISR). Broker 2 hears that and stops fetching from 0 (Kafka removes the partition
    from its fetcher); broker 1 does not, and keeps copying 0's log."""
    kernel = Kernel(seed=1, brokers=3, broker_configs={"replica.lag.time.max.ms": 5000})
    kernel.cluster.create_topic("t", replica_assignment=[[0, 1, 2]])
    part = kernel.cluster.partition("t", 0)
    producer = Producer(kernel, {"acks": "1", "linger.ms": 0})
    faults.schedule(kernel, 0, faults.NetworkPartition((2,), (0,)))
    faults.schedule(kernel, 8000, faults.HealNetwork((2,), (0,)))
    faults.schedule(kernel, 8000, faults.NetworkPartition((0, 1), ("controller",)))
    send_until(kernel, producer, 16_900)
    assert part.isr == [0, 1]
    ends = {b: part.logs[b].log_end_offset for b in BROKERS}
    assert ends[2] == ends[0] == ends[1]  # 2 caught up, but its leader cannot add it back
    send_until(kernel, producer, 25_000)
    assert kernel.controller.registration(part) == (-1, [1])
    assert part.leader == 0
    assert part.logs[1].log_end_offset == part.logs[0].log_end_offset > ends[0] + 20
    assert part.logs[2].log_end_offset <= ends[0] + 1


def test_a_fenced_leader_leaves_the_isr_and_its_successor_must_hear_of_it():
    """Leader 0 crashes losing its disk at 5 s and restarts empty at 6 s, cut off from the
    controller; followers 1 and 2 are cut off from it at 10 s. Fenced at 14 s, 0 leaves the
    ISR, and the controller elects 1, which is still unfenced: it knows only what it has heard
    (``generateLeaderAndIsrUpdates`` accepts any active broker, ``ClusterControlManager
    .isActive``). Broker 1 cannot hear that and does not lead. Fenced in turn at 19 s, 1 and
    2 leave the partition offline with 2, its last ISR member. When the links heal, 0
    registers first but is not elected: the leader is a replica that holds every acknowledged
    record."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", replica_assignment=[[0, 1, 2]],
                                configs={"min.insync.replicas": 2})
    part = kernel.cluster.partition("t", 0)
    producer = Producer(kernel, {"acks": "all", "linger.ms": 0, "request.timeout.ms": 5000,
                                 "delivery.timeout.ms": 120_000})
    faults.schedule(kernel, 5000, faults.CrashBroker(0, lose_disk=True))
    faults.schedule(kernel, 5500, faults.NetworkPartition((0,), ("controller",)))
    faults.schedule(kernel, 6000, faults.RestartBroker(0))
    faults.schedule(kernel, 10_000, faults.NetworkPartition((1, 2), ("controller",)))
    faults.schedule(kernel, 25_000, faults.HealNetwork((0, 1, 2), ("controller",)))
    send_until(kernel, producer, 4900)
    kernel.run(until_ms=15_000)
    assert kernel.controller.registration(part) == (1, [1, 2])
    assert ("t", 0) not in kernel.cluster.brokers[1].leads
    kernel.run(until_ms=20_000)
    assert kernel.controller.registration(part) == (-1, [2])
    kernel.run(until_ms=40_000)
    assert part.leader in (1, 2)
    acked = acknowledged(producer)
    assert len(acked) > 10
    log = part.log
    assert set(acked["record_id"]) <= set(log.column("record_id", 0, log.high_watermark))


def test_cutting_a_link_already_cut_does_not_extend_the_brokers_session():
    """Broker 1 is cut off from the controller at 2 s, and again (a second fault on the same
    link) at 6 s: the controller has heard nothing since 2 s, so it fences 1 at 11 s, one
    ``broker.session.timeout.ms`` after the first cut, not 15 s."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", 1, 3)
    faults.schedule(kernel, SPLIT_AT_MS, faults.NetworkPartition((1,), ("controller",)))
    faults.schedule(kernel, 6000, faults.NetworkPartition((1, 2), ("controller",)))
    kernel.run(until_ms=SPLIT_AT_MS + BROKER_SESSION_TIMEOUT_MS + 1)
    assert kernel.controller.fenced == {1}
    kernel.run(until_ms=6000 + BROKER_SESSION_TIMEOUT_MS + 1)
    assert kernel.controller.fenced == {1, 2}
