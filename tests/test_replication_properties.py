"""Replication invariants under random fault schedules (Jepsen-style, with Hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sim import faults
from sim.invariants import partitions_online, replicas_agree_below_hw
from sim.kernel import Kernel
from sim.producer import Producer
from sim.workloads import UniformKeys, Workload
from tests.strategies import fault_schedules

HORIZON_MS = 60_000


def run_with_faults(schedule, seed: int, acks: str = "all", unclean: bool = False):
    kernel = Kernel(seed=seed, brokers=3)
    kernel.cluster.create_topic("t", partitions=3, replication_factor=3, configs={
        "min.insync.replicas": 2, "unclean.leader.election.enable": unclean})
    workload = Workload.generate(kernel.spawn_rng(), "t", 3000, 50, keys=UniformKeys(20))
    producer = Producer(kernel, {"acks": acks, "client.id": "app",
                                 "delivery.timeout.ms": 30_000, "request.timeout.ms": 5_000},
                        workload=workload)
    for at_ms, fault in schedule:
        faults.schedule(kernel, at_ms, fault)
    kernel.run(HORIZON_MS + 60_000)  # everything restarted and healed, plenty of time to settle
    return kernel, producer


def committed(kernel: Kernel, partition: int) -> list[int]:
    log = kernel.cluster.partition("t", partition).log
    return log.column("record_id", log.log_start_offset, log.high_watermark).tolist()


@settings(max_examples=15, deadline=None)
@given(schedule=fault_schedules(horizon_ms=HORIZON_MS), seed=st.integers(0, 1000))
def test_safe_configuration_never_loses_an_acknowledged_record(schedule, seed):
    """RF 3, min.insync.replicas 2, acks=all, no unclean election: nothing acknowledged is lost."""
    kernel, producer = run_with_faults(schedule, seed)
    results = producer.results()
    for p in range(3):
        acked = set(results.loc[(results["partition"] == p) & results["ack_ms"].notna(),
                                "record_id"])
        assert acked <= set(committed(kernel, p))


@settings(max_examples=15, deadline=None)
@given(schedule=fault_schedules(horizon_ms=HORIZON_MS), seed=st.integers(0, 1000))
def test_replicas_agree_below_the_high_watermark_and_partitions_come_back(schedule, seed):
    """Committed data is the same on every in-sync replica, and with every crash restarted and
    every cut healed, every partition has a leader again 60 s later (sim.invariants)."""
    kernel, _ = run_with_faults(schedule, seed)
    assert replicas_agree_below_hw(kernel) == []
    assert partitions_online(kernel) == []
