"""Consumer groups: the classic protocol's rebalances, timeouts, static members and lag."""

from __future__ import annotations

import functools

import pandas as pd
import pytest

from sim import faults
from sim.audit import audit_kernel
from sim.consumer import Consumer, metrics
from sim.consumer import events as ev
from sim.consumer.apps import at_least_once, auto_commit
from sim.consumer.assignors import RangeAssignor, Subscription
from sim.consumer.config import OFFSETS_TOPIC
from sim.consumer.errors import GroupProtocolError
from sim.consumer.faults import ConsumerCrash, ConsumerHang, ConsumerRestart, SlowConsumer
from sim.consumer.group import group_coordinator
from sim.consumer.offsets import java_abs, partition_for
from sim.kernel import Kernel
from sim.producer import Producer
from sim.records import TopicPartition
from sim.workloads import Workload

NO_LATENCY = {"lab.network.latency.ms": 0}


def world(partitions: int = 6, records: int = 6000, rate: float = 1000.0,
          **coordinator: object) -> Kernel:
    """One broker without latency, topic t fed at ``rate`` records a second from time 0."""
    kernel = Kernel(seed=0, brokers=1, broker_configs=NO_LATENCY)
    kernel.cluster.create_topic("t", partitions=partitions)
    if coordinator:
        group_coordinator(kernel, coordinator)
    producer = Producer(kernel, {"partitioner.class": "RoundRobinPartitioner"})
    producer.add_workload(Workload.generate(kernel.spawn_rng(), "t", records, rate))
    return kernel


def member(kernel: Kernel, app=auto_commit, ms: float = 1.0, **config: object) -> Consumer:
    base = {"group.id": "g", "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
            "enable.auto.commit": app is auto_commit}
    consumer = Consumer(kernel, {**base, **config}, app, ms)
    consumer.subscribe(["t"])
    return consumer.run()


def events(kernel: Kernel, kind) -> pd.DataFrame:
    return kernel.trace.frame(kind)


def generation_times(kernel: Kernel) -> list[float]:
    return list(events(kernel, ev.GROUP_GENERATION)["time_ms"])


# -- where a group lives --------------------------------------------------------------------------

def test_group_partition_follows_kafkas_partition_for():
    """Utils.abs(groupId.hashCode()) % 50: "billing".hashCode() is -109829509, so partition 9."""
    assert partition_for("billing", 50) == 9
    assert partition_for("g", 50) == 103 % 50  # "g".hashCode() == 103
    assert java_abs(-(2**31)) == 0


def test_coordinator_is_the_leader_of_the_groups_offsets_partition():
    """__consumer_offsets is created on first use with 50 partitions; its leader coordinates."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", partitions=1)
    Consumer(kernel, {"group.id": "billing"})
    offsets = kernel.cluster.topic(OFFSETS_TOPIC)
    assert len(offsets.partitions) == 50
    assert offsets.replication_factor == 3
    coordinator = group_coordinator(kernel)
    assert coordinator.node_for("billing") == offsets.partitions[9].leader


def test_commits_are_records_in_the_offsets_topic():
    """Every successful commit appends a batch to the group's __consumer_offsets partition."""
    kernel = world()
    member(kernel, at_least_once)
    kernel.run(8000)
    log = kernel.cluster.partition(OFFSETS_TOPIC, partition_for("g", 50)).log
    consumer = metrics.consumers(kernel)[0]
    assert log.batch_count == (consumer.commits().drop_duplicates("seq")["error"] == "").sum() > 0


# -- the first rebalance --------------------------------------------------------------------------

def test_first_rebalance_waits_group_initial_rebalance_delay():
    """An empty group's first rebalance waits 3000 ms; a second member extends it by 3000."""
    alone = world()
    member(alone)
    alone.run(7000)
    assert generation_times(alone) == [3000.0]
    pair = world()
    member(pair)
    member(pair)
    pair.run(7000)
    assert generation_times(pair) == [6000.0]
    no_delay = world(**{"group.initial.rebalance.delay.ms": 0})
    member(no_delay)
    no_delay.run(100)
    assert generation_times(no_delay) == [0.0]


def test_the_leader_runs_range_as_kafkas_range_assignor_does():
    """Two members on six partitions: each generation's assignment is RangeAssignor's."""
    kernel = world()
    first, second = member(kernel), member(kernel)
    kernel.run(7000)
    [generation] = metrics.generations(kernel, "g")
    subscriptions = {first.member_id: Subscription(("t",)),
                     second.member_id: Subscription(("t",))}
    expected = RangeAssignor().assign({"t": 6}, subscriptions)
    assert generation["assignments"] == {
        c.client_id: [str(tp) for tp in expected[c.member_id]] for c in (first, second)}
    assert generation["leader"] == first.client_id


# -- eager versus cooperative ---------------------------------------------------------------------

@functools.cache
def rebalanced(strategy: str, fresh: int = 0) -> Kernel:
    """Two members, then a third joins at 10 s; run to 20 s (``fresh`` defeats the cache)."""
    kernel = world(records=10000, rate=500)
    config = {"partition.assignment.strategy": [strategy]}
    member(kernel, **config)
    member(kernel, **config)
    late = Consumer(kernel, {"group.id": "g", "auto.offset.reset": "earliest", **config},
                    auto_commit, 1.0)
    late.subscribe(["t"])
    kernel.env.timeout(10000).callbacks.append(lambda _e: late.run())
    kernel.run(20000)
    return kernel


def test_eager_members_revoke_everything_before_rejoining():
    """With range (eager), each member gives up all its partitions before JoinGroup."""
    kernel = rebalanced("range")
    revoked = events(kernel, ev.CONSUMER_REVOKED)
    assert len(revoked) == 2
    assert (revoked["assignment"] == "").all()
    joins = events(kernel, ev.GROUP_JOIN)
    for row in revoked.itertuples():
        rejoin = joins[(joins["component"] == row.component) & (joins["seq"] > row.seq)]
        assert rejoin["time_ms"].iloc[0] == row.time_ms
    pauses = metrics.rebalance_pauses(kernel, "g")
    assert len(pauses) == 6  # every partition stopped (stop the world)


def test_cooperative_never_revokes_a_partition_that_stays():
    """With cooperative-sticky only moving partitions are revoked, then a follow-up rebalance.

    Partitions that stay keep being consumed throughout, so only the moved ones pause.
    """
    kernel = rebalanced("cooperative-sticky")
    gens = metrics.generations(kernel, "g")
    assert [g["generation"] for g in gens] == [1, 2, 3]
    before, withheld, after = (g["assignments"] for g in gens)
    revoked = events(kernel, ev.CONSUMER_REVOKED)
    for row in revoked.itertuples():
        for tp in row.partitions.split(","):
            assert tp not in withheld[row.component]
            assert tp in before[row.component]
    moved = {tp for name, tps in after.items() for tp in tps if tp not in before.get(name, [])}
    assert withheld["consumer-g-3"] == []
    assert set(after["consumer-g-3"]) == moved
    pauses = metrics.rebalance_pauses(kernel, "g")
    assert set(pauses["topic"] + "-" + pauses["partition"].astype(str)) == moved


# -- failures: session timeout, poll timeout, hang, static membership -----------------------------

def test_session_timeout_removes_a_crashed_member():
    """The coordinator removes a silent member session.timeout.ms after its last heartbeat."""
    kernel = world(partitions=2)
    crashed, survivor = member(kernel), member(kernel)
    faults.schedule(kernel, 10500, ConsumerCrash(crashed.client_id))
    kernel.run(30000)
    removed = events(kernel, ev.GROUP_MEMBER_REMOVED)
    # Assigned at 6000 ms; heartbeats at 9000, 12000…; the last before the crash is at 9000.
    assert list(removed["time_ms"]) == [9000.0 + 10000]
    assert "session timeout" in removed["reason"].iloc[0]
    assert set(survivor.assignment()) == {TopicPartition("t", 0), TopicPartition("t", 1)}


def test_exceeding_max_poll_interval_makes_the_member_leave_and_its_commit_fail():
    """Processing one poll for longer than max.poll.interval.ms: the heartbeat thread leaves
    the group, the late commit fails, and what it processed is processed again elsewhere."""
    kernel = world(partitions=2, records=20000)
    config = {"max.poll.interval.ms": 1000, "max.poll.records": 100}
    slow, other = member(kernel, at_least_once, **config), member(kernel, at_least_once, **config)
    faults.schedule(kernel, 8000, SlowConsumer(slow.client_id, 20))
    kernel.run(20000)
    left = events(kernel, ev.CONSUMER_LEFT)
    assert left["reason"].str.startswith("poll timeout").any()
    assert (slow.commits()["error"] == "NOT_IN_GROUP").any()
    assert audit_kernel(kernel).processed_twice > 0
    assert other.state == "running"


def test_a_hang_longer_than_the_session_makes_a_zombie_whose_commit_is_refused():
    """A member frozen past session.timeout.ms is replaced; when it wakes up its commit fails."""
    kernel = world(partitions=2, records=30000)
    zombie, _ = member(kernel, at_least_once, 2.0), member(kernel, at_least_once, 2.0)
    faults.schedule(kernel, 7000, ConsumerHang(zombie.client_id, 15000))
    kernel.run(30000)
    removed = events(kernel, ev.GROUP_MEMBER_REMOVED)
    assert removed["member"].str.startswith(zombie.client_id).any()
    errors = set(zombie.commits()["error"])
    assert errors & {"UNKNOWN_MEMBER_ID", "ILLEGAL_GENERATION", "NOT_IN_GROUP"}
    assert zombie.generation >= 0  # it rejoined after waking up


def test_a_static_member_back_within_the_session_keeps_its_assignment():
    """group.instance.id: a crash and a restart within session.timeout.ms cause no rebalance."""
    kernel = world()
    a = member(kernel, **{"group.instance.id": "a"})
    member(kernel, **{"group.instance.id": "b"})
    faults.schedule(kernel, 9000, ConsumerCrash(a.client_id))
    faults.schedule(kernel, 12000, ConsumerRestart(a.client_id))
    kernel.run(25000)
    assert generation_times(kernel) == [6000.0]
    assert [str(tp) for tp in a.assignment()] == ["t-0", "t-1", "t-2"]
    assert events(kernel, ev.GROUP_MEMBER_REMOVED).empty


def test_a_static_member_that_stays_away_is_removed_at_session_timeout():
    """A static member sends no LeaveGroup: its partitions wait for the session to expire."""
    kernel = world()
    a = member(kernel, **{"group.instance.id": "a"})
    b = member(kernel, **{"group.instance.id": "b"})
    faults.schedule(kernel, 10500, ConsumerCrash(a.client_id))
    kernel.run(25000)
    removed = events(kernel, ev.GROUP_MEMBER_REMOVED)
    assert list(removed["time_ms"]) == [9000.0 + 10000]  # last heartbeat at 9000
    assert len(b.assignment()) == 6


def test_a_dynamic_member_that_closes_leaves_at_once():
    """close() sends LeaveGroup: the group rebalances without waiting for a timeout."""
    kernel = world()
    leaving, staying = member(kernel), member(kernel)
    kernel.env.timeout(9000).callbacks.append(lambda _e: leaving.close())
    kernel.run(15000)
    removed = events(kernel, ev.GROUP_MEMBER_REMOVED)
    assert removed["reason"].iloc[0].startswith("left the group")
    assert removed["time_ms"].iloc[0] < 9100
    assert len(staying.assignment()) == 6
    assert leaving.state == "closed"


def test_members_without_a_common_assignor_cannot_join():
    """INCONSISTENT_GROUP_PROTOCOL: the second member's poll raises a clear error."""
    kernel = world()
    member(kernel, **{"partition.assignment.strategy": ["range"]})
    member(kernel, **{"partition.assignment.strategy": ["roundrobin"]})
    with pytest.raises(GroupProtocolError, match="give all members a common assignor"):
        kernel.run(5000)


# -- lag ------------------------------------------------------------------------------------------

def test_lag_frames_follow_both_definitions():
    """lag = high watermark − committed; consumer_lag = high watermark − position."""
    kernel = world(partitions=1, records=3000)
    member(kernel, auto_commit, 0.5, **{"auto.commit.interval.ms": 1000})
    kernel.run(6000)
    frame = metrics.lag(kernel, "g", every_ms=500)
    last = frame.iloc[-1]
    assert last["high_watermark"] == 3000
    assert last["lag"] == last["high_watermark"] - last["committed"]
    assert last["consumer_lag"] == last["high_watermark"] - last["position"]
    assert (frame["lag"].dropna() >= frame["consumer_lag"].dropna().reindex(
        frame["lag"].dropna().index)).all()
    total = metrics.group_lag(kernel, "g", every_ms=500)
    assert list(total["time_ms"]) == list(frame["time_ms"])


def test_same_seed_gives_the_same_trace():
    """Two runs of one setup produce identical traces, member ids included."""
    first, second = rebalanced("cooperative-sticky"), rebalanced("cooperative-sticky", 1)
    pd.testing.assert_frame_equal(first.trace.to_frame(), second.trace.to_frame())
