"""Replication under faults: zombie leaders, registration, idle clocks, the produce purgatory.

Each test is the smallest run that shows one rule of Kafka's KRaft replication; the invariants
of ``sim.invariants`` (in-sync replicas agree below the high watermark, every partition online
once faults heal) are checked wherever they must hold.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim import faults
from sim import trace as events
from sim.broker.controller import BROKER_SESSION_TIMEOUT_MS, ELECTION
from sim.broker.log import PartitionLog
from sim.broker.replication import (
    ISR_CHANGE,
    PRODUCE_ERROR,
    REQUEST_TIMED_OUT,
    end_offset_for,
    truncation_offset,
)
from sim.invariants import partitions_online, replicas_agree_below_hw
from sim.kernel import Kernel
from sim.producer import Producer
from sim.workloads import Workload


def kernel_with_topic(seed: int = 1, **broker_configs) -> Kernel:
    """Three brokers, topic ``t``: one partition on [0, 1, 2], broker 0 leading."""
    kernel = Kernel(seed=seed, brokers=3, broker_configs=broker_configs or None)
    kernel.cluster.create_topic("t", replica_assignment=[[0, 1, 2]])
    return kernel


def broker_states(kernel: Kernel, node: int) -> list[tuple[float, str]]:
    frame = kernel.trace.frame(events.KINDS["broker.state"])
    rows = frame[frame["node"] == node]
    return list(zip(rows["time_ms"].tolist(), rows["state"].tolist(), strict=True))


def produce_errors(kernel: Kernel) -> list[tuple[float, str]]:
    frame = kernel.trace.frame(PRODUCE_ERROR)
    return list(zip(frame["time_ms"].tolist(), frame["error"].tolist(), strict=True))


# -- a deposed (zombie) leader ------------------------------------------------------------------


def zombie_run(heal_ms: float | None = None) -> Kernel:
    """Broker 0 leads, then loses the controller at 1 s; the producer reaches only broker 0
    until 15 s. Fenced at 10 s, broker 0 still believes it leads and appends acks=1 writes."""
    kernel = kernel_with_topic()
    Producer(kernel, {"acks": "1", "client.id": "app"},
             workload=Workload.generate(kernel.spawn_rng(), "t", 4000, 200))
    faults.schedule(kernel, 1000, faults.NetworkPartition((0,), ("controller",)))
    faults.schedule(kernel, 1000, faults.NetworkPartition(("app",), (1, 2)))
    faults.schedule(kernel, 15_000, faults.HealNetwork(("app",), (1, 2)))
    if heal_ms is not None:
        faults.schedule(kernel, heal_ms, faults.HealNetwork((0,), ("controller",)))
    return kernel


def test_a_zombie_leader_neither_fetches_nor_rejoins_the_isr():
    """A leader deposed while cut off from the controller keeps acting as leader, so it must not
    also replicate from the new leader: its own appends would pass for fetched records and let it
    back into the ISR with a log that differs below the high watermark."""
    kernel = zombie_run()
    kernel.run(16_000)
    part = kernel.cluster.partition("t", 0)
    assert (part.leader, part.leader_epoch) == (1, 1)
    assert kernel.cluster.brokers[0].leads == {("t", 0): 0}  # it still believes it leads
    assert 0 not in part.isr
    assert part.logs[0].log_end_offset > part.log.log_end_offset  # its zombie appends
    assert replicas_agree_below_hw(kernel) == []
    assert kernel.trace.frame(ISR_CHANGE)["isr"].tolist() == []


def test_a_zombie_leader_truncates_to_the_new_epoch_then_follows():
    """Once it hears the controller (KIP-101/279) it drops what the new leader lacks, fetches
    and rejoins the ISR holding exactly the leader's records."""
    kernel = zombie_run(heal_ms=20_000)
    kernel.run(30_000)
    part = kernel.cluster.partition("t", 0)
    assert kernel.cluster.brokers[0].leads == {}
    truncate = kernel.trace.frame(events.KINDS["log.truncate"])
    assert truncate[["time_ms", "node", "leader_epoch"]].values.tolist() == [[20_000.0, 0, 0]]
    assert part.isr == [1, 2, 0]
    assert replicas_agree_below_hw(kernel) == []
    ids = [part.logs[b].column("record_id").tolist() for b in (0, 1, 2)]
    assert ids[0] == ids[1] == ids[2]


def test_a_follower_cut_from_the_controller_stays_out_of_the_isr_once_fenced():
    """The controller admits only registered, unfenced brokers to an ISR (KIP-841): a fenced
    follower that still fetches from the leader catches up but is not added back."""
    kernel = kernel_with_topic()
    Producer(kernel, {"acks": "1"}, workload=Workload.generate(kernel.spawn_rng(), "t", 4000,
                                                               200))
    faults.schedule(kernel, 1000, faults.NetworkPartition((2,), ("controller",)))
    kernel.run(15_000)
    part = kernel.cluster.partition("t", 0)
    assert 2 in kernel.controller.fenced
    assert part.isr == [0, 1]
    assert part.logs[2].log_end_offset >= part.log.high_watermark  # caught up all the same
    faults.HealNetwork((2,), ("controller",)).apply(kernel)
    kernel.run(16_000)
    assert part.isr == [0, 1, 2]


def build_log(epochs: list[tuple[int, int]], log_end_offset: int) -> PartitionLog:
    """A log whose leader epoch cache is ``epochs`` [(epoch, start offset)]."""
    log = PartitionLog()
    bounds = [start for _, start in epochs] + [log_end_offset]
    for (epoch, start), stop in zip(epochs, bounds[1:], strict=True):
        n = stop - start
        columns = {"timestamp_ms": np.zeros(n, np.int64), "key_hash": np.zeros(n, np.int32),
                   "value_size": np.zeros(n, np.int32),
                   "record_id": np.arange(start, stop, dtype=np.int64)}
        log.append_batch(columns, 10 * n, leader_epoch=epoch)
    return log


def test_end_offset_for_answers_like_the_leader_epoch_cache():
    """LeaderEpochFileCache.endOffsetFor: the floor epoch, with where the next one starts."""
    epochs = [(0, 0), (1, 80), (3, 120)]
    assert end_offset_for(epochs, 200, 3) == (3, 200)
    assert end_offset_for(epochs, 200, 2) == (1, 120)
    assert end_offset_for(epochs, 200, 0) == (0, 80)
    assert end_offset_for(epochs, 200, 5) == (-1, -1)
    assert end_offset_for([(2, 10)], 50, 1) == (1, 10)


@pytest.mark.parametrize(("leader", "follower", "expected"), [
    # the follower's latest epoch is the leader's: keep up to where it ends there
    (([(0, 0), (1, 80)], 100), ([(0, 0), (1, 80)], 120), 100),
    (([(0, 0), (1, 80)], 100), ([(0, 0)], 90), 80),
    # the leader never had the follower's epoch 2: two rounds (AbstractFetcherThread)
    (([(0, 0), (1, 80), (3, 120)], 200), ([(0, 0), (2, 100)], 150), 80),
])
def test_truncation_offset_follows_kip_279(leader, follower, expected):
    """A follower keeps only what its epochs share with the leader's, asking again when the
    leader answers with an earlier epoch than the one asked for."""
    assert truncation_offset(build_log(*leader), leader[0][-1][0], build_log(*follower)) == (
        expected)


def test_a_new_leader_without_appends_still_ends_the_old_epoch_at_its_election():
    """The new leader's cache holds its epoch from the election on, at its log end then."""
    leader, follower = build_log([(0, 0)], 50), build_log([(0, 0), (1, 50)], 70)
    assert truncation_offset(leader, 2, follower) == 50


# -- registration, fencing and elections (KRaft heartbeats) -------------------------------------


def test_a_broker_restarted_while_cut_from_the_controller_stays_fenced_until_heard():
    """A broker registers only when the controller hears from it; healing the link then
    elects a leader for the partition that was left without one."""
    kernel = kernel_with_topic()
    faults.schedule(kernel, 1000, faults.CrashBroker(0))
    faults.schedule(kernel, 3000, faults.NetworkPartition(("controller",), (0, 1, 2)))
    faults.schedule(kernel, 4000, faults.RestartBroker(0))
    faults.schedule(kernel, 5000, faults.HealNetwork(("controller",), (0, 1, 2)))
    kernel.run(4500)
    assert broker_states(kernel, 0) == [(1000.0, "crashed"), (4000.0, "restarted")]
    kernel.run(30_000)
    assert broker_states(kernel, 0)[2:] == [(5000.0, "fenced"), (5000.0, "unfenced")]
    elections = kernel.trace.frame(ELECTION)
    assert elections[["time_ms", "leader", "election"]].values.tolist() == [
        [5000.0, 1, "clean"]]
    assert partitions_online(kernel) == []


def test_an_unreachable_restarted_broker_is_fenced_when_its_old_session_expires():
    """Crashed at 1 s and back at 4 s but unheard, its old session ends at 10 s: fenced then,
    and unfenced at its first heartbeat after the link heals at 20 s."""
    kernel = kernel_with_topic()
    faults.schedule(kernel, 1000, faults.CrashBroker(0))
    faults.schedule(kernel, 2000, faults.NetworkPartition((0,), ("controller",)))
    faults.schedule(kernel, 4000, faults.RestartBroker(0))
    faults.schedule(kernel, 20_000, faults.HealNetwork((0,), ("controller",)))
    kernel.run(30_000)
    fenced_at = 1000.0 + BROKER_SESSION_TIMEOUT_MS
    assert broker_states(kernel, 0) == [(1000.0, "crashed"), (4000.0, "restarted"),
                                        (fenced_at, "fenced"), (20_000.0, "unfenced")]
    assert kernel.cluster.partition("t", 0).isr == [1, 2, 0]


def test_a_partition_offline_while_the_controller_was_cut_off_gets_a_leader_when_it_heals():
    """The leader crashes while the controller is isolated: nobody can be elected then, and
    the election happens once the controller reaches the survivors again."""
    kernel = kernel_with_topic()
    faults.schedule(kernel, 1000, faults.NetworkPartition(("controller",), (0, 1, 2)))
    faults.schedule(kernel, 12_000, faults.HealNetwork(("controller",), (0, 1, 2)))
    kernel.run(11_000)
    part = kernel.cluster.partition("t", 0)
    assert kernel.controller.registration(part)[0] == -1  # every broker fenced at 10 s
    kernel.run(20_000)
    assert partitions_online(kernel) == []
    assert kernel.controller.fenced == set()


# -- clocks of an idle cluster; the produce purgatory ---------------------------------------------


def test_an_idle_leader_still_shrinks_the_isr_and_times_out_acks_all():
    """Both followers cut from the leader, one acks=all record, nothing else: the waiting
    request gets REQUEST_TIMED_OUT after request.timeout.ms, and the ISR shrinks once
    replica.lag.time.max.ms passed, at an isr-expiration check (every lag / 2)."""
    kernel = kernel_with_topic(**{"replica.lag.time.max.ms": 5000})
    producer = Producer(kernel, {"request.timeout.ms": 4000, "linger.ms": 0})
    faults.NetworkPartition((1, 2), (0,)).apply(kernel)
    producer.send("t", key="k")
    kernel.run(10_000)
    appended = kernel.trace.frame(events.LOG_APPEND)["time_ms"].iloc[0]
    timed_out = [e for e in produce_errors(kernel) if e[1] == REQUEST_TIMED_OUT]
    assert timed_out[0] == (pytest.approx(appended + 4000), REQUEST_TIMED_OUT)
    shrinks = kernel.trace.frame(ISR_CHANGE)
    assert shrinks[["time_ms", "isr"]].values.tolist()[0] == [7500.0, "[0]"]


def test_an_idle_cluster_run_ends():
    """Background clocks (the ISR checks) alone never keep run() going."""
    kernel = kernel_with_topic()
    Producer(kernel).send("t", key="k")
    kernel.run()
    assert kernel.now_ms < 100
    assert kernel.step() is False


def test_acks_all_waits_with_a_frozen_high_watermark_when_the_isr_drops_below_min():
    """min.insync.replicas=2, both followers crash: once they are fenced the ISR is [0] and the
    high watermark is frozen (KAFKA-15583). The waiting request is not failed at once with
    NOT_ENOUGH_REPLICAS_AFTER_APPEND — that answer needs the high watermark to reach it
    (Partition.checkEnoughReplicasReachOffset) — so it times out (DelayedProduce)."""
    kernel = Kernel(seed=1, brokers=3)
    kernel.cluster.create_topic("t", replica_assignment=[[0, 1, 2]],
                                configs={"min.insync.replicas": 2})
    producer = Producer(kernel, {"linger.ms": 0, "delivery.timeout.ms": 60_000})
    faults.CrashBroker(1).apply(kernel)
    faults.CrashBroker(2).apply(kernel)
    producer.send("t", key="k")
    kernel.run(20_000)
    part = kernel.cluster.partition("t", 0)
    assert part.isr == [0]
    assert part.log.log_end_offset == 1
    assert part.log.high_watermark == 0
    assert produce_errors(kernel) == []  # still waiting at 20 s, after the shrink at 9 s
    kernel.run(40_000)
    appended = kernel.trace.frame(events.LOG_APPEND)["time_ms"].iloc[0]
    assert produce_errors(kernel)[0] == (pytest.approx(appended + 30_000), REQUEST_TIMED_OUT)
    assert "NOT_ENOUGH_REPLICAS_AFTER_APPEND" not in {e for _, e in produce_errors(kernel)}


def test_answered_requests_leave_no_timer_that_keeps_a_run_going():
    """Two producers with different request timeouts: once every acks=all request is
    answered, run() ends at the last real event, not at a stale purgatory deadline."""
    kernel = kernel_with_topic()
    slow = Producer(kernel, {"linger.ms": 0, "request.timeout.ms": 60_000, "client.id": "a"})
    fast = Producer(kernel, {"linger.ms": 0, "request.timeout.ms": 5_000, "client.id": "b"})
    slow.send("t", key="k1")
    fast.send("t", key="k2")
    kernel.run()
    assert slow.acked == fast.acked == 1
    assert kernel.now_ms < 100


def test_a_follower_that_caught_up_while_its_leader_was_cut_off_rejoins_after_the_heal() -> None:
    """Kafka's follower fetches again every ``replica.fetch.wait.max.ms`` even with nothing new,
    and each fetch lets the leader retry the ISR expansion (``Partition.maybeExpandIsr``). Here
    the followers caught up while leader 0 could not reach the controller; after every fault is
    healed they must rejoin, so the high watermark reaches the log end and the run goes on.
    (Parked until the next append, they stayed out forever: the HW froze below min ISR, acks=all
    producers and read_committed readers stopped.)"""
    from pathlib import Path

    from sim import scenarios

    path = Path(__file__).parent / "data" / "fuzz" / (
        "transactions--eos-extra-new-leader-hw-behind.yaml")
    kernel = scenarios.load(str(path)).run()
    for topic in ("payments", "payments-out"):
        for p in range(3):
            part = kernel.cluster.partition(topic, p)
            assert sorted(part.isr) == [0, 1, 2], (topic, p, part.isr)
            assert part.log.high_watermark == part.log.log_end_offset, (topic, p)
