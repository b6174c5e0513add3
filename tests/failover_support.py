"""A failover to a lagging leader: the set-up of the KIP-207 tests (consumer and Streams).

Topic ``topic`` has one partition on brokers 0, 1, 2 (leader 0, ``min.insync.replicas=1``) and
takes 2,000 records at 200 a second with ``acks=all``. Leader 0 crashes at 9 s, then follower 2
(still in the ISR) at 9.5 s; at 0's fencing follower 1 leads with the ISR [1, 2] and the high
watermark its last fetch taught it, below 0's, until 2 is fenced too. Until then 1's high
watermark is below the start of its leader epoch, and ``ListOffsets`` for "latest" answers
OFFSET_NOT_AVAILABLE (``Partition.fetchOffsetForTimestamp``).
"""

from __future__ import annotations

from typing import Any

from sim import faults
from sim.kernel import Kernel
from sim.producer import Producer
from sim.workloads import UniformKeys, Workload


def lagging_leader(topic: str) -> tuple[Kernel, Any, int]:
    """The kernel just after broker 1 took over ``topic``'s partition 0, the partition and
    0's last high watermark (what consumers were shown)."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic(topic, replica_assignment=[[0, 1, 2]],
                                configs={"min.insync.replicas": 1})
    workload = Workload.generate(kernel.spawn_rng(), topic, 2000, 200,
                                 keys=UniformKeys(100), value_bytes=100)
    Producer(kernel, {"acks": "all"}, workload=workload)
    part = kernel.cluster.partition(topic, 0)
    faults.schedule(kernel, 9_000, faults.CrashBroker(0))
    faults.schedule(kernel, 9_500, faults.CrashBroker(2))
    kernel.run(until_ms=9_000)
    shown = part.logs[0].high_watermark
    assert kernel.run_until(lambda k: part.leader == 1, max_ms=30_000)
    assert part.log.high_watermark < shown  # the new leader lags: the case under test
    return kernel, part, shown
