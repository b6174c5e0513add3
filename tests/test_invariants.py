"""The replication invariants find what they promise to find, and nothing on a healthy run."""

from __future__ import annotations

import numpy as np

from sim import faults
from sim.broker.log import RECORD_COLUMNS
from sim.invariants import partitions_online, replicas_agree_below_hw
from sim.kernel import Kernel
from sim.producer import Producer


def replicated(records: int = 20) -> Kernel:
    """Topic ``t`` on [0, 1, 2], ``records`` records written with acks=all and replicated."""
    kernel = Kernel(seed=3, brokers=3)
    kernel.cluster.create_topic("t", replica_assignment=[[0, 1, 2]])
    producer = Producer(kernel, {"linger.ms": 0})
    for i in range(records):
        producer.send("t", key=f"k{i}")
    producer.flush()
    kernel.run()
    return kernel


def test_a_healthy_run_violates_nothing():
    """Replicated records and a leader everywhere: both checks return no violation."""
    kernel = replicated()
    assert kernel.cluster.partition("t", 0).log.high_watermark == 20
    assert replicas_agree_below_hw(kernel) == []
    assert partitions_online(kernel) == []


def test_a_replica_that_differs_below_the_high_watermark_is_named():
    """Rewrite follower 2's log from offset 5 on: the first differing offset is reported."""
    kernel = replicated()
    part = kernel.cluster.partition("t", 0)
    log = part.logs[2]
    log.truncate_to(5)
    n = 15
    columns = {name: np.zeros(n, dtype) for name, dtype in RECORD_COLUMNS.items()}
    columns["record_id"] = np.arange(10**6, 10**6 + n, dtype=np.int64)
    log.append_batch(columns, 100 * n)
    assert replicas_agree_below_hw(kernel) == [
        "t-0: in-sync replica 2 differs from leader 0 at offset 5, below the high watermark 20"]


def test_a_short_in_sync_replica_is_named():
    """An ISR member whose log ends below the high watermark cannot hold what is committed."""
    kernel = replicated()
    kernel.cluster.partition("t", 0).logs[1].truncate_to(12)
    assert replicas_agree_below_hw(kernel) == [
        "t-0: in-sync replica 1 ends at offset 12, below the high watermark 20"]


def test_an_offline_partition_is_named():
    """Every replica crashed and fenced: the partition has no leader, and its ISR keeps only
    the last broker fenced (``ReplicationControlManager.handleBrokerFenced`` never empties an
    ISR)."""
    kernel = replicated()
    for broker in (0, 1, 2):
        faults.CrashBroker(broker).apply(kernel)
    kernel.run(kernel.now_ms + 10_000)
    assert partitions_online(kernel) == ["t-0 is offline (no leader; ISR [2])"]
