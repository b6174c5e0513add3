"""Which leader a client takes for a partition: what the brokers it reaches tell it.

A Kafka client learns leaders from metadata responses of the brokers it can reach
(``Metadata.updateLatestMetadata``); each broker answers from the metadata it replicated from
the controller (``KRaftMetadataCache``). A broker cut off from the controller may go on
believing it leads (a zombie), and a client that reaches it writes there. A client that does
not reach it hears from the other brokers — an offline partition has no leader — and stops
writing to it; Kafka's producer also closes a connection whose request timed out and cannot
open it again across the cut.
"""

from __future__ import annotations

from sim import faults
from sim.broker.controller import BROKER_SESSION_TIMEOUT_MS
from sim.kernel import Kernel
from sim.producer import Producer


def test_a_client_cut_off_from_a_zombie_leader_takes_the_offline_partition_from_the_others():
    """One replica, on broker 1, which is cut off from the controller at 1 s and fenced a
    session later: the partition goes offline, but broker 1 does not hear it and goes on
    leading. A producer that reaches broker 1 still writes there; cut off from it, it learns
    from brokers 0 and 2 that the partition has no leader."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", replica_assignment=[[1]])
    producer = Producer(kernel, {"acks": "1"})
    part = kernel.cluster.partition("t", 0)
    faults.schedule(kernel, 1000, faults.NetworkPartition((1,), ("controller",)))
    kernel.run(until_ms=1000 + BROKER_SESSION_TIMEOUT_MS + 500)
    assert kernel.controller.registration(part)[0] == -1  # offline for the controller
    assert kernel.cluster.brokers[1].leads[("t", 0)] == part.leader_epoch  # a zombie
    seen = kernel.cluster.leader_seen_by
    assert seen(producer.client_id, part) == 1
    faults.NetworkPartition((1,), (producer.client_id,)).apply(kernel)
    assert seen(producer.client_id, part) == -1
    # reaching the zombie again, the client ignores its claim: the epoch is older than the
    # offline partition's, which it has seen
    faults.HealNetwork((1,), (producer.client_id,)).apply(kernel)
    assert seen(producer.client_id, part) == -1
