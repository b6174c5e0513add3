"""A log truncated under a consumer: the set-up of the KIP-320 tests.

Topic ``t`` has one partition, replication factor 2 and unclean leader election on. The leader
and a follower both take 10 records; then the follower is cut off from the leader, drops out of
the ISR, and the leader alone takes 50 more (one a second). A consumer reads those 60 records.
Crashing the leader then makes the stale follower leader by an unclean election, under a new
leader epoch, with a log of 10 records: offsets 10-59 are gone, and the records the new leader
takes next get those offsets again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim import faults
from sim.consumer import Consumer
from sim.kernel import Kernel
from sim.producer import Producer
from sim.records import TopicPartition

TP = TopicPartition("t", 0)
SHARED = 10  # records both replicas have
LEADER_ONLY = 50  # records only the old leader has: offsets 10-59


@dataclass
class Truncation:
    """The world of the module docstring; ``elect_stale_replica()`` truncates the log."""

    kernel: Kernel
    producer: Producer
    leader: int
    stale: int

    @property
    def part(self) -> Any:
        return self.kernel.cluster.partition(TP.topic, TP.partition)

    def read_all(self, consumer: Consumer) -> None:
        """Poll ``consumer`` until its position on ``t-0`` is past the leader's 60 records."""
        while TP not in consumer.assignment() or consumer.position(TP) < SHARED + LEADER_ONLY:
            consumer.poll(100)

    def elect_stale_replica(self, new_records: int) -> None:
        """Crash the leader: the stale replica (10 records) becomes leader under a higher
        epoch, then takes ``new_records`` records (at offsets 10, 11, …)."""
        old_epoch = self.part.leader_epoch
        faults.CrashBroker(self.leader).apply(self.kernel)
        self.kernel.run(self.kernel.now_ms + 20000)
        assert (self.part.leader, self.part.log.log_end_offset) == (self.stale, SHARED)
        assert self.part.leader_epoch > old_epoch
        for i in range(new_records):
            self.producer.send(TP.topic, key=f"new{i}")
        self.producer.flush()
        self.kernel.run(self.kernel.now_ms + 100)
        assert self.part.log.high_watermark == SHARED + new_records


def leader_ahead_of_its_follower(brokers: int) -> Truncation:
    """Topic ``t`` with 60 records, the last 50 on the leader only (module docstring)."""
    kernel = Kernel(seed=0, brokers=brokers)
    kernel.cluster.create_topic(TP.topic, partitions=1, replication_factor=2,
                                configs={"unclean.leader.election.enable": True})
    part = kernel.cluster.partition(TP.topic, TP.partition)
    leader, stale = part.leader, next(b for b in part.replicas if b != part.leader)
    producer = Producer(kernel, {"linger.ms": 0})
    for i in range(SHARED):
        producer.send(TP.topic, key=f"k{i}")
    producer.flush()
    kernel.run(kernel.now_ms + 50)
    faults.NetworkPartition((stale,), (leader,)).apply(kernel)
    for i in range(LEADER_ONLY):  # the stale replica drops out of the ISR; the leader goes on
        producer.send(TP.topic, key=f"late{i}")
        producer.flush()
        kernel.run(kernel.now_ms + 1000)
    return Truncation(kernel, producer, leader, stale)


def offsets_read(consumer: Consumer, polls: int = 40) -> list[int]:
    """The offsets ``polls`` polls of 100 ms return, in order."""
    return [r.offset for _ in range(polls) for r in consumer.poll(100)]
