"""Controller decisions pinned against KRaft's controller (Kafka 4.0's ``metadata`` module).

- Any change of a partition's leader bumps its leader epoch, a change to no leader (-1)
  included: ``PartitionChangeBuilder.tryElection`` writes the new leader into the
  ``PartitionChangeRecord`` whenever it differs from the current one, and
  ``PartitionRegistration.merge`` bumps the epoch for every record that sets a leader.
- The controller hears of a broker's link to it only when that link is cut or healed: a broker
  whose link a fault leaves as it was keeps its session (its heartbeats go on, or stay lost).
  Cuts of one link add up, so healing one of two overlapping cuts leaves the link cut.
"""

from __future__ import annotations

from sim import faults
from sim.broker.controller import BROKER_SESSION_TIMEOUT_MS, ELECTION
from sim.kernel import Kernel

CRASH_AT_MS = 1000
FENCED_AT_MS = CRASH_AT_MS + BROKER_SESSION_TIMEOUT_MS


def _elections(kernel: Kernel) -> list[tuple[int, int, str]]:
    frame = kernel.trace.frame(ELECTION)
    frame = frame[frame["topic"] == "t"]
    return list(zip(frame["leader"], frame["leader_epoch"], frame["election"], strict=True))


def test_going_offline_bumps_the_leader_epoch():
    """RF 1: the only replica crashes and is fenced, the partition goes offline at epoch 1 (a
    leader change, to none); back, the broker leads at epoch 2 (PartitionRegistration.merge)."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", 1, 1)
    part = kernel.cluster.partition("t", 0)
    leader = part.leader
    faults.schedule(kernel, CRASH_AT_MS, faults.CrashBroker(leader))
    kernel.run(until_ms=FENCED_AT_MS + 1)
    assert (part.leader, part.leader_epoch) == (-1, 1)
    faults.schedule(kernel, FENCED_AT_MS + 1000, faults.RestartBroker(leader))
    kernel.run(until_ms=FENCED_AT_MS + 2000)
    assert (part.leader, part.leader_epoch) == (leader, 2)
    assert kernel.cluster.brokers[leader].leads[("t", 0)] == 2
    assert _elections(kernel) == [(-1, 1, "offline"), (leader, 2, "clean")]


def test_staying_offline_keeps_the_leader_epoch():
    """An offline partition whose ISR member is still away stays offline when another replica
    returns: no leader change, no new epoch (tryElection writes no leader then), and no
    second election in the trace: ``PartitionChangeBuilder.build`` writes no
    PartitionChangeRecord when nothing changed."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", 1, 2, {"unclean.leader.election.enable": False})
    part = kernel.cluster.partition("t", 0)
    leader, follower = part.replicas
    faults.schedule(kernel, CRASH_AT_MS, faults.CrashBroker(follower))
    faults.schedule(kernel, CRASH_AT_MS + 20_000, faults.CrashBroker(leader))
    faults.schedule(kernel, CRASH_AT_MS + 40_000, faults.RestartBroker(follower))
    kernel.run(until_ms=CRASH_AT_MS + 45_000)
    assert part.leader == -1
    assert part.isr == [leader]
    assert part.leader_epoch == 1
    assert _elections(kernel) == [(-1, 1, "offline")]


def test_an_offline_decision_the_leader_cannot_hear_carries_the_bumped_epoch():
    """The controller cut off from every broker records the partition offline at the next
    epoch while the leader, which cannot hear it, goes on at its own; after the heal the
    leader takes the record, and the controller's next leader has the epoch after it."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", 1, 3, {"min.insync.replicas": 2})
    part = kernel.cluster.partition("t", 0)
    leader = part.leader
    faults.schedule(kernel, CRASH_AT_MS, faults.NetworkPartition(("controller",), (0, 1, 2)))
    kernel.run(until_ms=FENCED_AT_MS + 1000)
    assert kernel.controller.registration(part)[0] == -1
    assert kernel.controller.registered_epoch(part) == 1
    assert (part.leader, part.leader_epoch) == (leader, 0)  # what the replicas act on
    assert kernel.cluster.brokers[leader].leads[("t", 0)] == 0
    faults.schedule(kernel, FENCED_AT_MS + 2000, faults.HealNetwork(("controller",), (0, 1, 2)))
    kernel.run(until_ms=FENCED_AT_MS + 3000)
    assert part.leader >= 0
    assert part.leader_epoch == 2
    assert kernel.cluster.brokers[part.leader].leads[("t", 0)] == 2
    elections = [(lead, epoch) for lead, epoch, _ in _elections(kernel)]
    assert set(elections[:-1]) == {(-1, 1)}  # each fenced broker: still offline, same epoch
    assert elections[-1] == (part.leader, 2)


def test_the_lesson_snapshot_shows_the_controller_s_epoch_with_its_leader():
    """While the cut-off leader has not heard the offline decision, lesson 02's replica
    snapshot shows the controller's record whole: no leader, at the bumped epoch."""
    from sim import lessons

    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", 1, 3, {"min.insync.replicas": 2})
    faults.schedule(kernel, CRASH_AT_MS, faults.NetworkPartition(("controller",), (0, 1, 2)))
    kernel.run(until_ms=FENCED_AT_MS + 1000)
    rows = lessons.replication_snapshot(kernel)
    rows = rows[rows["topic"] == "t"]
    assert set(rows["leader"]) == {-1}
    assert set(rows["leader_epoch"]) == {1}


def _connection_changes(kernel: Kernel) -> list[int]:
    """Record which brokers ``Controller.connection_changed`` hears about."""
    calls: list[int] = []
    original = kernel.controller.connection_changed

    def spy(broker_id: int) -> None:
        calls.append(broker_id)
        original(broker_id)

    kernel.controller.connection_changed = spy  # type: ignore[method-assign]
    return calls


def test_only_brokers_whose_controller_link_changed_are_reported():
    """Cutting ``[controller, 0] | [1, 2]`` changes the controller links of 1 and 2 only: broker
    0 keeps heartbeating, so its session must not look renewed or re-cut."""
    kernel = Kernel(seed=0, brokers=3)
    calls = _connection_changes(kernel)
    faults.NetworkPartition(("controller", 0), (1, 2)).apply(kernel)
    assert calls == [1, 2]
    faults.NetworkPartition((0,), ("controller",)).apply(kernel)
    assert calls == [1, 2, 0]
    faults.NetworkPartition((0, 1), ("controller",)).apply(kernel)  # already cut, both
    assert calls == [1, 2, 0]


def test_a_heal_keeps_a_link_another_cut_still_holds():
    """Two overlapping cuts of broker 0's controller link: healing the first leaves it cut (the
    cuts add up in ``Network``), so the broker is fenced a session timeout after the first cut;
    healing the second mends it and the controller unfences both brokers."""
    kernel = Kernel(seed=0, brokers=3)
    network = kernel.cluster.network
    calls = _connection_changes(kernel)
    faults.schedule(kernel, 1000, faults.NetworkPartition((0,), ("controller",)))
    faults.schedule(kernel, 2000, faults.NetworkPartition((0, 1), ("controller",)))
    faults.schedule(kernel, 3000, faults.HealNetwork((0,), ("controller",)))
    kernel.run(until_ms=3001)
    assert not network.connected(0, "controller")
    assert calls == [0, 1]  # the heal changed no controller link
    kernel.run(until_ms=FENCED_AT_MS + 1)  # 9 s after 0's first cut, 8 s after 1's
    assert kernel.controller.fenced == {0}
    kernel.run(until_ms=FENCED_AT_MS + 1001)
    assert kernel.controller.fenced == {0, 1}
    faults.schedule(kernel, FENCED_AT_MS + 2000, faults.HealNetwork((0, 1), ("controller",)))
    kernel.run(until_ms=FENCED_AT_MS + 2001)
    assert network.connected(0, "controller")
    assert kernel.controller.fenced == set()
