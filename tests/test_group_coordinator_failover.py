"""The group coordinator when its broker is cut off or crashes: who hosts the group, what a
new coordinator loads, and how the members find it again.

- **Cut off from the controller**: a broker fenced by the controller still believes it leads
  its ``__consumer_offsets`` partition, so it keeps hosting its groups and clients keep
  finding it (Kafka's ``FindCoordinator`` is answered from brokers' metadata): members stay,
  no rebalance, and offset commits (acks=all) still succeed while the controller is away.
- **Sessions on failover**: a new leader loads the group and restarts every member's session
  (``GroupMetadataManager.onLoaded`` → ``rescheduleClassicGroupMemberHeartbeat``); while no
  broker hosts the group no coordinator runs, so no session expires
  (``CoordinatorRuntime.scheduleLoadOperation`` loads on election only).
- **What is loaded**: the group as its last ``GroupMetadata`` record left it
  (``GroupMetadataManager.replay``): Stable at the last stored generation with its members and
  their assignments. A rebalance in progress, the members that joined only for it and pending
  members (KIP-394) are not loaded.
- **NOT_COORDINATOR retries**: the JoinGroup and SyncGroup requests the old coordinator held
  are answered ``NOT_COORDINATOR`` (``GroupMetadataManager.onUnloaded``); the consumers find
  the new coordinator and send them again, and it answers from what it loaded: a member id it
  never stored gets ``UNKNOWN_MEMBER_ID`` (the consumer joins under a new id), a SyncGroup of
  a generation it never stored ``ILLEGAL_GENERATION`` (the members rejoin and it forms that
  generation itself).
- **Re-election without reload**: the same broker staying leader with a new epoch reloads
  nothing (``CoordinatorRuntime``: a coordinator that is already active), so sessions are not
  restarted.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from sim import faults
from sim.consumer import Consumer
from sim.consumer import events as ev
from sim.consumer.apps import at_least_once
from sim.consumer.config import OFFSETS_TOPIC
from sim.consumer.faults import ConsumerCrash
from sim.consumer.group import group_coordinator
from sim.kernel import Kernel
from sim.records import TopicPartition

SESSION_TIMEOUT_MS = 10000
FAULT_AT_MS = 10000


def group_of_two() -> tuple[Kernel, int]:
    """Three brokers, two consumers of group g (session.timeout.ms 10000); returns the kernel
    and the broker hosting the group."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", partitions=2)
    for _ in range(2):
        consumer = Consumer(kernel, {"group.id": "g", "session.timeout.ms": SESSION_TIMEOUT_MS},
                            at_least_once)
        consumer.subscribe(["t"])
        consumer.run()
    return kernel, group_coordinator(kernel).node_for("g")


def run(kernel: Kernel, schedule: list[tuple[float, Any]], until_ms: float) -> pd.DataFrame:
    """Apply each fault at its time, run, and return the coordinator's group events."""
    for at_ms, fault in schedule:
        kernel.env.timeout(at_ms).callbacks.append(
            lambda _event, fault=fault: fault.apply(kernel))
    kernel.run(until_ms)
    frame = kernel.trace.to_frame()
    return frame[frame["kind"].str.startswith("group.")
                 & frame["component"].str.startswith("coordinator")]


def test_controller_cut_from_every_broker_removes_no_member():
    """20 s without the controller (every broker fenced, every leader -1 in its view): the
    coordinator's broker still acts as leader, members heartbeat to it, nobody is removed.
    Each fenced broker left the offsets partition's ISR but the last one fenced
    (``ReplicationControlManager.handleBrokerFenced``: an ISR never becomes empty), so at the
    heal that broker leads it and loads the group from its last record, at generation 1."""
    brokers = (0, 1, 2)
    kernel, host = group_of_two()
    group = run(kernel, [(FAULT_AT_MS, faults.NetworkPartition(("controller",), brokers)),
                         (FAULT_AT_MS + 20000, faults.HealNetwork(("controller",), brokers))],
                40000)
    gc = kernel.cluster.group_coordinator
    offsets = kernel.cluster.topics["__consumer_offsets"].partitions[gc.partition_for("g")]
    late = group[group["time_ms"] > FAULT_AT_MS]
    during = late[late["time_ms"] < FAULT_AT_MS + 20000]
    assert list(during["kind"]) == []  # no member removed, no rebalance while cut off
    new_host = offsets.leader
    assert new_host != host
    assert list(late["kind"]) == ["group.loaded"]
    assert set(late["component"]) == {f"coordinator-{new_host}"}
    assert gc.node_for("g") == new_host
    assert gc.groups["g"].generation == 1
    assert len(gc.groups["g"].members) == 2


def test_a_deposed_leader_cut_off_from_the_controller_keeps_hosting_the_group():
    """While every broker is fenced the controller shows no leader, yet the coordinator is
    the broker that still believes it leads, and the consumers find it."""
    kernel = Kernel(seed=0, brokers=3)
    consumer = Consumer(kernel, {"group.id": "g"}, at_least_once)
    gc = consumer.group_coordinator
    part = kernel.cluster.partition(OFFSETS_TOPIC, gc.partition_for("g"))
    host = part.leader
    faults.NetworkPartition(("controller",), (0, 1, 2)).apply(kernel)
    kernel.run(20000)
    assert kernel.controller.registration(part)[0] == -1
    assert gc.node_for("g") == host
    assert gc.node_seen_by("g", consumer.client_id) == host


def test_sessions_restart_when_a_new_leader_loads_the_group():
    """The coordinator's broker crashes with one member; the controller elects a new leader
    9 s later (broker.session.timeout.ms). The dead member's session runs from that load,
    not from its last heartbeat: it is removed session.timeout.ms after the election."""
    kernel, host = group_of_two()
    group = run(kernel, [(FAULT_AT_MS, faults.CrashBroker(host)),
                         (FAULT_AT_MS, ConsumerCrash("consumer-g-1"))], 40000)
    frame = kernel.trace.to_frame()
    elections = frame[(frame["kind"] == "leader.election") & (frame["topic"] == OFFSETS_TOPIC)
                      & (frame["partition"] == kernel.cluster.group_coordinator.partition_for("g"))]
    elected_ms = float(elections["time_ms"].iloc[0])
    assert elected_ms == FAULT_AT_MS + 9000
    removed = group[group["kind"] == ev.GROUP_MEMBER_REMOVED.name]
    assert len(removed) == 1
    assert removed["member"].iloc[0].startswith("consumer-g-1-")
    assert float(removed["time_ms"].iloc[0]) == elected_ms + SESSION_TIMEOUT_MS
    new_host = kernel.cluster.group_coordinator.node_for("g")
    assert new_host != host
    assert set(group[group["time_ms"] > FAULT_AT_MS]["component"]) == {
        f"coordinator-{new_host}"}


def test_no_session_expires_while_no_broker_hosts_the_group():
    """Between the crash and the election nothing removes a member, though the crashed
    member's last heartbeat is more than session.timeout.ms old by then."""
    kernel, host = group_of_two()
    group = run(kernel, [(FAULT_AT_MS - 2000, ConsumerCrash("consumer-g-1")),
                         (FAULT_AT_MS, faults.CrashBroker(host))], FAULT_AT_MS + 8999)
    assert group[group["kind"] == ev.GROUP_MEMBER_REMOVED.name].empty
    assert kernel.cluster.group_coordinator.node_for("g") == -1


# --- what a new coordinator loads: the group's last record (Kafka 4.0) -----------------------
# ``GroupMetadataManager.replay(GroupMetadataKey, GroupMetadataValue)`` rebuilds a classic group
# from its last GroupMetadata record (Stable at that generation with its members and their
# assignments, or Empty) and ``onLoaded`` only restarts sessions. The record is written when
# the leader's SyncGroup stores the assignment (or a join leaves the group Empty), never in the
# middle of a rebalance: a rebalance in progress, the members that joined only for it and the
# pending members (KIP-394) are not loaded.


def stable_group_of_two() -> tuple[Kernel, int, Any]:
    """``group_of_two`` run to FAULT_AT_MS (Stable, generation 1); returns the kernel, the host
    and the coordinator's group."""
    kernel, host = group_of_two()
    kernel.run(FAULT_AT_MS)
    return kernel, host, kernel.cluster.group_coordinator.groups["g"]


def crash_the_host_when(kernel: Kernel, host: int, condition: Any) -> float:
    """Start a third consumer, crash the host as soon as ``condition(group)`` holds, and run
    until a new leader has loaded the group; returns that time."""
    third = Consumer(kernel, {"group.id": "g", "session.timeout.ms": SESSION_TIMEOUT_MS},
                     at_least_once)
    third.subscribe(["t"])
    third.run()
    gc = kernel.cluster.group_coordinator
    assert kernel.run_until(lambda _k: condition(gc.groups["g"]), max_ms=FAULT_AT_MS + 5000)
    faults.CrashBroker(host).apply(kernel)
    assert kernel.run_until(lambda _k: gc.node_for("g") >= 0, max_ms=FAULT_AT_MS + 20000)
    loaded_ms = kernel.now_ms
    kernel.run(loaded_ms)  # the load runs once the election's moment is over
    return loaded_ms


def coordinator_events(kernel: Kernel, kind: Any) -> pd.DataFrame:
    frame = kernel.trace.to_frame()
    return frame[frame["kind"] == kind.name]


def test_a_rebalance_in_progress_is_not_loaded_by_the_new_coordinator():
    """A third consumer's JoinGroup started a rebalance; the host crashes before it ends. The
    new leader loads the group Stable at generation 1 with the two members of its record. The
    joiner's member id was never written: its JoinGroup, answered NOT_COORDINATOR and sent
    again, gets UNKNOWN_MEMBER_ID and it joins under a new id."""
    kernel, host, group = stable_group_of_two()
    first = set(group.members)
    loaded_ms = crash_the_host_when(
        kernel, host, lambda g: g.state == "PreparingRebalance" and len(g.members) == 3)
    joiner = next(iter(set(group.members) - first), None)
    assert joiner is None
    assert (group.state, group.generation, set(group.members)) == ("Stable", 1, first)
    loaded = coordinator_events(kernel, ev.GROUP_LOADED)
    assert list(loaded["time_ms"]) == [loaded_ms]
    assert list(loaded["state"]) == ["Stable"]
    assert list(loaded["generation"]) == [1]
    kernel.run(loaded_ms + 20000)
    assert (group.state, group.generation, len(group.members)) == ("Stable", 2, 3)
    joins = coordinator_events(kernel, ev.GROUP_JOIN)
    third = joins[joins["component"] == "consumer-g-3"]
    old_id = third["member"].iloc[1]  # the id it got with MEMBER_ID_REQUIRED
    retried = third[third["reason"] == "rebalance failed due to NOT_COORDINATOR"]
    assert list(retried["member"]) == [old_id]
    assert old_id not in group.members
    assert first < set(group.members)


def test_a_group_completing_its_rebalance_loads_at_its_last_stored_generation():
    """Generation 2 has been handed out (JoinGroup answered) but its assignment not stored:
    the new coordinator loads generation 1 with its assignment. The SyncGroups of generation
    2 reach it and get ILLEGAL_GENERATION (UNKNOWN_MEMBER_ID for the joiner), the members
    rejoin, and the new coordinator forms a generation 2 of its own."""
    kernel, host, group = stable_group_of_two()
    assignment = {m.member_id: list(m.assignment) for m in group.members.values()}
    loaded_ms = crash_the_host_when(kernel, host, lambda g: g.state == "CompletingRebalance")
    assert (group.state, group.generation) == ("Stable", 1)
    assert {m.member_id: m.assignment for m in group.members.values()} == assignment
    kernel.run(loaded_ms + 20000)
    generations = coordinator_events(kernel, ev.GROUP_GENERATION)
    second = generations[generations["generation"] == 2]
    new_host = kernel.cluster.group_coordinator.node_for("g")
    assert list(second["component"]) == [f"coordinator-{host}", f"coordinator-{new_host}"]
    assert (group.state, len(group.members)) == ("Stable", 3)
    assert sorted(tp for m in group.members.values() for tp in map(str, m.assignment)) == [
        "t-0", "t-1"]


def test_pending_members_are_not_loaded():
    """A new consumer got its member id (MEMBER_ID_REQUIRED, KIP-394) from the old
    coordinator: the new one does not know that id, so the consumer ends up under another."""
    kernel, host, group = stable_group_of_two()
    pending: set[str] = set()

    def has_pending(g: Any) -> bool:
        pending.update(g.pending_members)
        return bool(g.pending_members)

    loaded_ms = crash_the_host_when(kernel, host, has_pending)
    assert group.pending_members == set()
    kernel.run(loaded_ms + 20000)
    assert len(group.members) == 3
    assert not pending & set(group.members)


def test_the_same_broker_re_elected_leader_reloads_nothing():
    """The other brokers are cut from the controller, then the host, and all are healed 20 s
    later; a member crashes 5 s before the heal. The host, fenced last, stays the last member
    of the offsets partition's ISR, so on the heal it learns it was deposed and re-elected (a
    new leader epoch) in one metadata delta: its coordinator stays active
    (``CoordinatorRuntime`` ``scheduleLoadOperation``: "already active"), so the crashed
    member's session is not restarted and it is removed session.timeout.ms after its last
    heartbeat."""
    kernel, host = group_of_two()
    others = tuple(b for b in (0, 1, 2) if b != host)
    heal_ms = FAULT_AT_MS + 20000
    group = run(kernel, [(FAULT_AT_MS, faults.NetworkPartition(("controller",), others)),
                         (FAULT_AT_MS + 1000, faults.NetworkPartition(("controller",), (host,))),
                         (heal_ms - 5000, ConsumerCrash("consumer-g-1")),
                         (heal_ms, faults.HealNetwork(("controller",), (0, 1, 2)))], 45000)
    frame = kernel.trace.to_frame()
    partition = kernel.cluster.group_coordinator.partition_for("g")
    elections = frame[(frame["kind"] == "leader.election") & (frame["topic"] == OFFSETS_TOPIC)
                      & (frame["partition"] == partition) & (frame["time_ms"] == heal_ms)]
    assert list(elections["leader"]) == [host]
    # epoch 1 was the partition going offline (a leader change to none, PartitionRegistration.merge)
    assert list(elections["leader_epoch"]) == [2]
    assert group[group["kind"] == ev.GROUP_LOADED.name].empty
    removed = group[group["kind"] == ev.GROUP_MEMBER_REMOVED.name]
    assert len(removed) == 1
    assert removed["member"].iloc[0].startswith("consumer-g-1-")
    assert float(removed["time_ms"].iloc[0]) < heal_ms - 5000 + SESSION_TIMEOUT_MS


def test_offsets_commit_while_the_controller_is_away():
    """Every broker fenced: the group's host still leads its ``__consumer_offsets`` partition
    and its followers still fetch from it, so a commit (written with acks=all) succeeds and
    is read back."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", partitions=1, replication_factor=3)
    consumer = Consumer(kernel, {"group.id": "g"})
    consumer.subscribe(["t"])
    consumer.poll(timeout_ms=5000)
    faults.NetworkPartition(("controller",), (0, 1, 2)).apply(kernel)
    kernel.run(kernel.now_ms + 12_000)
    part = kernel.cluster.partition(OFFSETS_TOPIC, consumer.group_coordinator.partition_for("g"))
    assert kernel.controller.registration(part)[0] == -1
    tp = TopicPartition("t", 0)
    consumer.commit_sync({tp: 7})
    assert consumer.committed([tp])[tp].offset == 7
