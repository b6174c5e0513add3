"""Where the group coordinator runs when its broker is cut off or crashes.

- A broker cut off from the controller still believes it leads its ``__consumer_offsets``
  partition, so it keeps hosting its groups and clients keep finding it (Kafka's
  ``FindCoordinator`` is answered from brokers' metadata): members stay, no rebalance.
- A new leader loads the group and restarts every member's session
  (``GroupMetadataManager.onLoaded`` → ``rescheduleClassicGroupMemberHeartbeat``); while no
  broker hosts the group no coordinator runs, so no session expires
  (``CoordinatorRuntime.scheduleLoadOperation`` loads on election only).
- The same broker staying leader with a new epoch reloads nothing (``CoordinatorRuntime``:
  a coordinator that is already active).
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
    coordinator's broker still acts as leader, members heartbeat to it, nobody is removed."""
    brokers = (0, 1, 2)
    kernel, host = group_of_two()
    group = run(kernel, [(FAULT_AT_MS, faults.NetworkPartition(("controller",), brokers)),
                         (FAULT_AT_MS + 20000, faults.HealNetwork(("controller",), brokers))],
                40000)
    gc = kernel.cluster.group_coordinator
    late = group[group["time_ms"] > FAULT_AT_MS]
    assert list(late["kind"]) == []  # no member removed, no rebalance
    assert gc.groups["g"].generation == 1
    assert len(gc.groups["g"].members) == 2
    assert set(group["component"]) == {f"coordinator-{host}"}


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
