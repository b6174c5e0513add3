"""Specification of tiered storage across brokers (KIP-405): one ``RemoteLogManager`` per
broker, local deletion by each broker's retention task, and followers that rebuild their log's
start from the remote tier.

Kafka sources: ``RemoteLogManager`` (one per broker, tasks for the partitions it leads),
``UnifiedLog.deleteOldSegments`` / ``isSegmentEligibleForDeletion`` (local deletion on
``log.retention.check.interval.ms``), ``ReplicaManager.handleOffsetOutOfRangeError``
(OFFSET_MOVED_TO_TIERED_STORAGE for a follower) and ``TierStateMachine.buildRemoteLogAuxState``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.broker import remote_log_manager as rlm
from sim.kernel import Kernel
from sim.producer import Producer
from sim.workloads import UniformKeys, Workload

MIB = 1 << 20
BROKERS = {"remote.log.storage.system.enable": True, "remote.log.manager.task.interval.ms": 1000,
           "log.retention.check.interval.ms": 1000}


def run_tiered(setup_more=None, records: int = 6000, rate: int = 2000, rf: int = 2,
               partitions: int = 1, brokers: dict | None = None, assignment=None) -> Kernel:
    """``partitions`` tiered partitions of 1 MiB segments, ~1 KB records, 2 MiB kept locally."""
    def setup(kernel: Kernel) -> None:
        if setup_more is not None:
            setup_more(kernel)
        kernel.cluster.create_topic("events", partitions, rf, {
            "remote.storage.enable": True, "segment.bytes": MIB,
            "local.retention.bytes": 2 * MIB}, replica_assignment=assignment)
        producer = Producer(kernel, {"client.id": "writer"})
        producer.add_workload(Workload.generate(kernel.spawn_rng(), "events", records, rate,
                                                keys=UniformKeys(20), value_bytes=1000))

    return Kernel(seed=2, brokers=3, broker_configs={**BROKERS, **(brokers or {})}, setup=setup)


def test_every_broker_runs_its_own_remote_log_manager_on_its_own_interval() -> None:
    """Each broker's manager copies only the partitions it leads, at that broker's
    remote.log.manager.task.interval.ms: a broker whose interval never comes copies nothing."""
    def slow_broker_1(kernel: Kernel) -> None:
        kernel.cluster.brokers[1].config["remote.log.manager.task.interval.ms"] = 10**9

    kernel = run_tiered(slow_broker_1, partitions=2, assignment=[[0, 2], [1, 2]]).run(8000)
    tier = kernel.cluster.remote_tier
    assert sorted(tier.managers) == [0, 1, 2]
    assert [m.broker_id for m in tier.managers.values()] == [0, 1, 2]
    uploads = kernel.trace.frame(rlm.TIER_UPLOAD)
    assert set(uploads["partition"]) == {0}
    assert set(uploads["node"]) == {0}
    assert len(tier.states[("events", 1)].segments()) == 0
    assert len(kernel.cluster.partition("events", 1).log.closed_segments()) > 2


def test_tiered_local_deletion_runs_on_the_retention_check_interval() -> None:
    """Uploads happen every second, but each broker deletes local segments only when its
    retention task runs (log.retention.check.interval.ms = 5,000): every local deletion falls
    on a multiple of 5 s, and uploaded segments wait on disk until then."""
    kernel = run_tiered(brokers={"log.retention.check.interval.ms": 5000}).run(12000)
    deletes = kernel.trace.frame(rlm.TIER_DELETE)
    local = deletes[deletes["where"] == "local"]
    assert len(local) > 0
    assert set(local["node"]) == {0, 1, 2} & set(kernel.cluster.partition("events", 0).replicas)
    assert (local["time_ms"] % 5000 == 0).all()
    uploads = kernel.trace.frame(rlm.TIER_UPLOAD)
    assert not (uploads["time_ms"] % 5000 == 0).all()


def test_a_local_segment_not_uploaded_stays_whatever_local_retention_says() -> None:
    """isSegmentEligibleForDeletion: with copying stopped (an interval that never comes), the
    retention task deletes no local segment of a tiered topic, though local.retention.bytes is
    long exceeded."""
    kernel = run_tiered(brokers={"remote.log.manager.task.interval.ms": 10**9}).run(8000)
    deletes = kernel.trace.frame(rlm.TIER_DELETE)
    assert len(deletes) == 0
    assert kernel.cluster.partition("events", 0).log.size_bytes > 4 * MIB


def follower_outage(kernel: Kernel) -> None:
    """Follower 2 is down from 0.5 s to 15 s; leader 0 crashes at 2 s and fails over to 1
    when it registers again at 3 s (epoch 1), then follows: follower 2 misses a leader epoch,
    and segments tiered and deleted locally meanwhile. The ISR keeps 2, whose session has not
    timed out, until it is fenced at 9.5 s: only then can the high watermark move on."""
    controller = kernel.controller
    env = kernel.env

    def outage():
        yield env.timeout(500)
        controller.crash_broker(2)
        yield env.timeout(1500)
        controller.crash_broker(0)
        yield env.timeout(1000)
        controller.restart_broker(0)
        yield env.timeout(12_000)
        controller.restart_broker(2)

    env.process(outage())


def outage_kernel() -> Kernel:
    return run_tiered(follower_outage, records=12000, rf=3, assignment=[[0, 1, 2]]).run(15_000)


def test_a_follower_below_the_leaders_local_log_start_gets_offset_moved_to_tiered_storage(
) -> None:
    """The restarted follower fetches an offset the leader has only in the remote tier: the
    answer is OFFSET_MOVED_TO_TIERED_STORAGE, and it starts its log after the remote segment
    holding the offset just below the leader's local log start — not at its old end, nor at 0."""
    kernel = outage_kernel()
    before = kernel.cluster.partition("events", 0).logs[2].log_end_offset
    leader_start = kernel.cluster.partition("events", 0).log.log_start_offset
    kernel.run(15_500)
    events = kernel.trace.frame(rlm.REMOTE_AUX_STATE)
    assert list(events["node"]) == [2]
    row = events.iloc[0]
    assert row["error"] == rlm.OFFSET_MOVED_TO_TIERED_STORAGE
    assert row["fetch_offset"] == before < leader_start
    state = kernel.cluster.remote_tier.states[("events", 0)]
    below = state.segment_for(leader_start - 1)
    assert row["next_offset"] == below.end_offset + 1 == leader_start
    metrics = kernel.cluster.remote_tier.metrics().iloc[0]
    assert (metrics["BuildRemoteLogAuxStateRequests"], metrics["BuildRemoteLogAuxStateErrors"]) \
        == (1, 0)


def test_a_rebuilt_follower_takes_its_epoch_cache_from_the_remote_tier() -> None:
    """The follower missed epoch 1; its rebuilt epoch cache is the leader's (from the
    remote segment's leader epoch checkpoint), not its own last epoch stretched over the
    records it never saw — so after catching up it holds the leader's records and epochs and
    rejoins the ISR."""
    kernel = outage_kernel()
    kernel.run(26_000)
    part = kernel.cluster.partition("events", 0)
    leader, follower = part.log, part.logs[2]
    assert part.leader_epoch >= 1
    assert follower.log_start_offset == leader.log_start_offset > 0
    assert follower.epochs == leader.epochs
    assert follower.epochs[0][0] >= 1  # the epoch in force at the start is one it missed
    assert np.array_equal(follower.column("record_id"), leader.column("record_id"))
    assert 2 in part.isr


def test_a_rebuilt_follower_takes_the_producer_snapshot_of_the_remote_segment() -> None:
    """TierStateMachine.buildProducerSnapshotFile: straight after the rebuild, before any
    fetch, the follower knows the idempotent producer's batches up to the new start — the
    snapshot uploaded with the remote segment, the leader's batches below that offset."""
    kernel = outage_kernel()
    part = kernel.cluster.partition("events", 0)
    follower_log = part.logs[2]
    start = part.log.log_start_offset
    got = rlm.build_remote_log_aux_state(kernel.cluster, part, 2, start)
    assert got is not None
    assert got[0] == start
    assert follower_log.log_end_offset == start == follower_log.log_start_offset
    (producer_id, entry), = follower_log.producer_state.producers.items()
    assert entry.batches
    assert entry.batches[-1].last_offset == start - 1
    leader_entry = part.log.producer_state.producers[producer_id]
    assert leader_entry.batches[-1].last_offset > start  # the leader has gone on since
    assert entry.producer_epoch == leader_entry.producer_epoch


def test_without_a_remote_segment_below_the_leaders_local_start_the_follower_retries() -> None:
    """buildRemoteLogAuxState finds no remote segment for the offset (Kafka's
    RemoteStorageException): the follower's log is left as it was, and the fetcher tries
    again later."""
    kernel = outage_kernel()
    part = kernel.cluster.partition("events", 0)
    follower_log = part.logs[2]
    before = (follower_log.log_start_offset, follower_log.log_end_offset)
    state = kernel.cluster.remote_tier.states[("events", 0)]
    beyond = state.highest_copied_offset + 2
    assert rlm.build_remote_log_aux_state(kernel.cluster, part, 2, beyond) is None
    assert (follower_log.log_start_offset, follower_log.log_end_offset) == before
    assert kernel.cluster.remote_tier.metrics().iloc[0]["BuildRemoteLogAuxStateErrors"] == 1


def test_only_a_tiered_topics_follower_gets_offset_moved_to_tiered_storage() -> None:
    """follower_fetch_error: on disk → no error; below the local start but in the remote tier
    → OFFSET_MOVED_TO_TIERED_STORAGE; below the log start offset → OFFSET_OUT_OF_RANGE."""
    kernel = run_tiered(brokers={}, records=6000).run(8000)
    cluster = kernel.cluster
    part = cluster.partition("events", 0)
    local_start = part.log.log_start_offset
    assert local_start > 0
    assert rlm.follower_fetch_error(cluster, part, local_start) is None
    assert rlm.follower_fetch_error(cluster, part, local_start - 1) == \
        rlm.OFFSET_MOVED_TO_TIERED_STORAGE
    state = cluster.remote_tier.states[("events", 0)]
    state.remote_log_start_offset = local_start - 1  # as if the remote tier expired below it
    state_start = state.log_start_offset(part.log)
    assert rlm.follower_fetch_error(cluster, part, state_start - 1) == rlm.OFFSET_OUT_OF_RANGE


def test_the_trace_frame_of_rebuilds_is_empty_without_tiered_storage() -> None:
    """A cluster without tiered topics never sends OFFSET_MOVED_TO_TIERED_STORAGE."""
    def setup(kernel: Kernel) -> None:
        kernel.cluster.create_topic("plain", 1, 2, {"segment.bytes": MIB, "retention.bytes": MIB})
        Producer(kernel, {"client.id": "w"}).add_workload(Workload.generate(
            kernel.spawn_rng(), "plain", 3000, 2000, value_bytes=1000))

    kernel = Kernel(seed=1, brokers=2, setup=setup).run(3000)
    frame = kernel.trace.frame(rlm.REMOTE_AUX_STATE)
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == 0


def test_the_tiered_fuzz_profile_reaches_followers_rebuilding_from_the_remote_tier() -> None:
    """Fuzzer profile ``tiered``, seed 3, schedule 2: followers that were down come back below
    the leader's local log start, rebuild from the remote tier, and the run keeps every
    invariant (no loss, no duplicate, remote tier consistent with the replicas)."""
    from sim import scenarios
    from sim.fuzz import PROFILES, check_scenario, generate, to_yaml

    profile = PROFILES["tiered"]
    scenario = generate(profile, 3, 2)
    assert check_scenario(scenario, profile).violations == []
    kernel = scenarios.parse(to_yaml(scenario)).run()
    rebuilds = kernel.trace.frame(rlm.REMOTE_AUX_STATE)
    assert (rebuilds["error"] == rlm.OFFSET_MOVED_TO_TIERED_STORAGE).any()
    assert (rebuilds["next_offset"] > rebuilds["fetch_offset"]).all()
    assert kernel.cluster.remote_tier.consistency_problems() == []
