"""Which replica KRaft's controller elects: only what it has heard counts (Kafka 4.0).

The controller learns of a crash or of a cut link only when the broker's heartbeats have
stopped for ``broker.session.timeout.ms`` and it fences the broker
(``BrokerHeartbeatManager.findOneStaleBroker``, ``ReplicationControlManager
.maybeFenceOneStaleBroker``). Until then the broker is *active*: registered and unfenced
(``ClusterControlManager.isActive``), so an acceptable leader in
``ReplicationControlManager.generateLeaderAndIsrUpdates``:

- a clean election takes the first replica of the target ISR that is active
  (``PartitionChangeBuilder.isValidNewLeader``), crashed or cut off as it may be;
- an unclean one the first active replica at all (``PartitionChangeBuilder.electAnyLeader``);
- the target ISR is the ISR without the fenced broker (``handleBrokerFenced``), never emptied
  (``PartitionChangeBuilder.build`` keeps the ISR rather than write an empty one when
  eligible leader replicas are off): members that are silent but not fenced stay.

A broker learns that it leads from the metadata log: one that crashed or cannot reach the
controller does not lead until it hears of it, or is fenced and another replica elected.
"""

from __future__ import annotations

import pytest

from sim import faults
from sim.broker.controller import BROKER_SESSION_TIMEOUT_MS, ELECTION
from sim.broker.replication import NOT_LEADER_OR_FOLLOWER, PRODUCE_ERROR
from sim.kernel import Kernel
from sim.producer import Producer

SESSION = BROKER_SESSION_TIMEOUT_MS


def _cluster(replicas: list[int], configs: dict | None = None) -> Kernel:
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", replica_assignment=[replicas], configs=configs or {})
    return kernel


def _elections(kernel: Kernel) -> list[tuple[float, int, str, str]]:
    frame = kernel.trace.frame(ELECTION)
    frame = frame[frame["topic"] == "t"]
    return list(zip(frame["time_ms"], frame["leader"], frame["election"], frame["isr"],
                    strict=True))


def _send_until(kernel: Kernel, producer: Producer, until_ms: float) -> None:
    """One record every 100 ms until ``until_ms``."""
    while kernel.now_ms < until_ms:
        producer.send("t", key=f"k{int(kernel.now_ms)}")
        kernel.run(until_ms=kernel.now_ms + 100)


def test_a_crashed_leader_leads_until_fenced_after_its_cut_off_follower_left_the_isr():
    """Case (a): replicas [0, 1]; 1 is cut off from the controller at 3 s, leader 0 crashes at
    5 s. 1's session ends first: fenced at 12 s it leaves the ISR, and the crashed 0 stays the
    leader in the controller's record (``handleBrokerFenced`` elects only where the fenced
    broker led). Fenced at 14 s, 0 is the ISR's last member: the partition is offline with
    the ISR [0]; 1, fenced, is no unclean candidate either (``isAcceptableLeader``), so the
    election finds nobody: offline, not unclean."""
    kernel = _cluster([0, 1], {"unclean.leader.election.enable": True})
    part = kernel.cluster.partition("t", 0)
    faults.schedule(kernel, 3000, faults.NetworkPartition((1,), ("controller",)))
    faults.schedule(kernel, 5000, faults.CrashBroker(0))
    kernel.run(until_ms=3000 + SESSION + 500)
    assert kernel.controller.fenced == {1}
    assert kernel.controller.registration(part) == (0, [0])
    kernel.run(until_ms=5000 + SESSION + 500)
    assert kernel.controller.registration(part) == (-1, [0])
    # no candidate at all: traced as offline, though unclean election is enabled
    assert _elections(kernel) == [(5000 + SESSION, -1, "offline", "[0]")]


def test_a_crashed_follower_not_yet_fenced_is_elected_and_nobody_leads_until_it_is():
    """Case (b): replicas [0, 1, 2]; leader 0 crashes at 5 s, follower 1 at 6 s. At 0's
    fencing (14 s) 1 is still active, first in the target ISR [1, 2]: the controller elects it
    (``PartitionChangeBuilder.electAnyLeader``), and 2 follows a leader that is gone. Produce
    requests fail until 1 is fenced at 15 s and 2 is elected with the ISR [2]."""
    kernel = _cluster([0, 1, 2])
    part = kernel.cluster.partition("t", 0)
    producer = Producer(kernel, {"acks": "1", "linger.ms": 0, "request.timeout.ms": 300,
                                 "retry.backoff.ms": 50, "delivery.timeout.ms": 120_000})
    faults.schedule(kernel, 5000, faults.CrashBroker(0))
    faults.schedule(kernel, 6000, faults.CrashBroker(1))
    _send_until(kernel, producer, 17_000)
    kernel.run(until_ms=20_000)
    assert _elections(kernel) == [(5000 + SESSION, 1, "clean", "[1, 2]"),
                                  (6000 + SESSION, 2, "clean", "[2]")]
    assert (part.leader, part.isr) == (2, [2])
    results = producer.results()
    acked = results["ack_ms"].dropna()
    assert not acked.between(5000, 6000 + SESSION).any()  # no leader acknowledges
    assert (acked > 6000 + SESSION).sum() > 10


@pytest.mark.parametrize("fault", ["crash", "cut"])
def test_an_unclean_election_takes_an_active_replica_that_crashed_or_was_cut_off(fault):
    """Case (c): replicas [0, 1], unclean elections on; 1 is out of the ISR (it restarted
    without reaching 0). Leader 0 crashes at 20 s and 1 crashes or is cut off from the
    controller at 21 s. Fenced at 29 s, 0 is the last ISR member; 1, still active, is the
    unclean candidate (``electAnyLeader`` with ``Election.UNCLEAN``), and leads with the ISR
    [1] in the controller's record, though it cannot. Fenced at 30 s, it leaves the partition
    offline."""
    kernel = _cluster([0, 1], {"unclean.leader.election.enable": True})
    part = kernel.cluster.partition("t", 0)
    faults.schedule(kernel, 1000, faults.CrashBroker(1))
    faults.schedule(kernel, 11_000, faults.NetworkPartition((0,), (1,)))
    faults.schedule(kernel, 12_000, faults.RestartBroker(1))
    faults.schedule(kernel, 20_000, faults.CrashBroker(0))
    faults.schedule(kernel, 21_000, faults.CrashBroker(1) if fault == "crash"
                    else faults.NetworkPartition((1,), ("controller",)))
    kernel.run(until_ms=20_000)
    assert part.isr == [0]
    assert not kernel.controller.fenced
    kernel.run(until_ms=20_000 + SESSION + 500)
    assert kernel.controller.registration(part) == (1, [1])
    assert ("t", 0) not in kernel.cluster.brokers[1].leads  # it did not hear of it
    kernel.run(until_ms=21_000 + SESSION + 500)
    assert kernel.controller.registration(part) == (-1, [1])
    assert [(lead, isr) for _, lead, _, isr in _elections(kernel)] == [(1, "[1]"), (-1, "[1]")]


def test_a_leader_change_keeps_unfenced_silent_members_in_the_isr():
    """Case (d): replicas [0, 1, 2]; 2 is cut off from the controller at 6 s (it still fetches
    from 0), leader 0 crashes at 5 s. At 0's fencing (14 s) the new ISR is the old one without
    0 — [1, 2], 2 included: KRaft's target ISR drops only the fenced broker
    (``generateLeaderAndIsrUpdates``). 2 leaves it when it is fenced in turn, at 15 s."""
    kernel = _cluster([0, 1, 2])
    part = kernel.cluster.partition("t", 0)
    faults.schedule(kernel, 5000, faults.CrashBroker(0))
    faults.schedule(kernel, 6000, faults.NetworkPartition((2,), ("controller",)))
    kernel.run(until_ms=5000 + SESSION + 500)
    assert _elections(kernel) == [(5000 + SESSION, 1, "clean", "[1, 2]")]
    assert (part.leader, part.isr) == (1, [1, 2])
    kernel.run(until_ms=6000 + SESSION + 500)
    assert (part.leader, part.isr) == (1, [1])


@pytest.mark.parametrize("heal_at_ms", [14_500, None])
def test_a_leader_elected_while_cut_off_answers_not_leader_until_it_hears(heal_at_ms):
    """Replicas [0, 1]: leader 0 crashes at 5 s, 1 is cut off from the controller at 6 s. At
    14 s the controller elects 1, which does not hear it and answers produce requests with
    NOT_LEADER_OR_FOLLOWER (its metadata still names 0). It leads once its link heals
    (14.5 s); not healed, it is fenced at 15 s and the partition goes offline, its ISR [1]."""
    kernel = _cluster([0, 1])
    part = kernel.cluster.partition("t", 0)
    producer = Producer(kernel, {"acks": "1", "linger.ms": 0, "request.timeout.ms": 300,
                                 "retry.backoff.ms": 50, "delivery.timeout.ms": 120_000})
    faults.schedule(kernel, 5000, faults.CrashBroker(0))
    faults.schedule(kernel, 6000, faults.NetworkPartition((1,), ("controller",)))
    if heal_at_ms is not None:
        faults.schedule(kernel, heal_at_ms, faults.HealNetwork((1,), ("controller",)))
    _send_until(kernel, producer, 16_000)
    errors = kernel.trace.frame(PRODUCE_ERROR)
    refused = errors[(errors["node"] == 1) & (errors["error"] == NOT_LEADER_OR_FOLLOWER)]
    assert len(refused) > 0
    assert refused["time_ms"].min() >= 5000 + SESSION
    acked = producer.results()["ack_ms"].dropna()
    assert not acked.between(5000, 5000 + SESSION).any()
    if heal_at_ms is None:
        assert refused["time_ms"].max() < 6000 + SESSION
        assert kernel.controller.registration(part) == (-1, [1])
        assert not acked.between(5000, 16_000).any()
    else:
        assert refused["time_ms"].max() < heal_at_ms
        assert part.leader == 1
        assert kernel.cluster.brokers[1].leads[("t", 0)] == part.leader_epoch == 1
        assert acked.between(heal_at_ms, 16_000).sum() > 5


def test_a_broker_that_crashes_while_cut_off_is_fenced_a_session_after_the_cut():
    """The session runs from the last heartbeat the controller *received*
    (``BrokerHeartbeatManager.hasValidSession``: ``lastContactNs + sessionTimeoutNs``). Broker
    1, cut off from the controller at 3 s, sends nothing it can hear after that; its crash at
    6 s changes nothing the controller knows, so it is fenced at 12 s, not 15 s."""
    kernel = _cluster([0, 1, 2])
    faults.schedule(kernel, 3000, faults.NetworkPartition((1,), ("controller",)))
    faults.schedule(kernel, 6000, faults.CrashBroker(1))
    kernel.run(until_ms=3000 + SESSION + 1)
    assert kernel.controller.fenced == {1}
