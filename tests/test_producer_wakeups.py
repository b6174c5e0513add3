"""When a custom partitioner is asked, and when the sender wakes for its records.

Before Kafka 4.0, records wait unpartitioned until a sender pass could find something to send;
with ``linger.ms=0`` ``partition()`` is asked ahead for records sent before anything else
happens. Either way a run must be exactly the run of a sender woken at every record. Since 4.0,
records are partitioned in chunks up to ``retry.backoff.ms`` ahead; without metadata changes
that must give the run of partitioning the whole workload at once.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.faults import CrashBroker, RestartBroker, SlowBroker, schedule
from sim.kernel import Kernel
from sim.murmur2 import partition_for_key
from sim.producer import Producer
from sim.producer.custom import CustomPartitioning
from sim.producer.topic_state import TopicState
from sim.workloads import NoKeys, UniformKeys, Workload


def test_next_event_ms_passes_over_the_events_it_is_told_to():
    kernel = Kernel(brokers=1)
    env = kernel.env
    times = [7.0, 3.0, 9.0, 1.0, 4.0, 2.0, 8.0]
    events = {t: env.timeout(t) for t in times}
    skip = {1.0, 2.0, 3.0}
    assert kernel.next_event_ms(lambda ev: False) == 1.0
    assert kernel.next_event_ms(lambda ev: any(ev is events[t] for t in skip)) == 4.0
    assert kernel.next_event_ms(lambda ev: True) == math.inf


class Wanderer:
    """A stateful partitioner: keys by murmur2, key-less records walk the available
    partitions, three steps further at each new batch."""

    def __init__(self) -> None:
        self.step = 0

    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        if key_bytes is not None:
            return partition_for_key(key_bytes, cluster.partition_count_for_topic(topic))
        available = cluster.available_partitions_for_topic(topic)
        partitions = available or list(range(cluster.partition_count_for_topic(topic)))
        self.step += 1
        return partitions[self.step % len(partitions)]

    def on_new_batch(self, topic, cluster, prev_partition):
        self.step += 3


def run(partitioner: str, linger_ms: int, batch_size: int, rate: int, keyed: bool,
        crash_ms: float | None, slowdown: float, version: str = "3.8") -> Kernel:
    kernel = Kernel(seed=5, brokers=3)
    kernel.cluster.create_topic("t", partitions=10)
    spec = Wanderer() if partitioner == "Wanderer" else partitioner
    producer = Producer(kernel, {"partitioner.class": spec, "lab.kafka.version": version,
                                 "linger.ms": linger_ms, "batch.size": batch_size})
    keys = UniformKeys(20) if keyed else NoKeys()
    records = 3000 if rate >= 1000 else 200
    producer.add_workload(Workload.generate(kernel.spawn_rng(), "t", records, rate, keys=keys))
    if crash_ms is not None:
        schedule(kernel, crash_ms, CrashBroker(1))
        schedule(kernel, crash_ms + 30, RestartBroker(1))
    if slowdown > 1:
        schedule(kernel, 5.0, SlowBroker(0, slowdown))
    return kernel.run()


def outcome(kernel: Kernel) -> tuple[str, str]:
    producer = next(c for c in kernel.clients if isinstance(c, Producer))
    return kernel.trace.to_frame().to_csv(), producer.results().to_csv()


@settings(max_examples=20, deadline=None)
@given(partitioner=st.sampled_from(["DefaultPartitioner", "RoundRobinPartitioner",
                                    "UniformStickyPartitioner", "Wanderer"]),
       linger_ms=st.sampled_from([0, 0, 1, 5]),
       batch_size=st.sampled_from([1024, 4096, 16384]),
       rate=st.sampled_from([2_000, 20_000, 100_000]),
       keyed=st.booleans(),
       crash_ms=st.none() | st.floats(1.0, 100.0),
       slowdown=st.sampled_from([1.0, 30.0]))
def test_lazy_sender_passes_give_the_run_of_a_sender_woken_at_every_record(
        partitioner, linger_ms, batch_size, rate, keyed, crash_ms, slowdown):
    args = (partitioner, linger_ms, batch_size, rate, keyed, crash_ms, slowdown)
    lazy = outcome(run(*args))
    with pytest.MonkeyPatch.context() as patch:  # the reference: a pass at every record
        patch.setattr(TopicState, "_per_record_wakeup_ms",
                      lambda self, leaders, blocked: self.per_record.next_time())
        eager = outcome(run(*args))
    assert lazy == eager


@settings(max_examples=15, deadline=None)
@given(partitioner=st.sampled_from(["RoundRobinPartitioner", "VipPartitioner", "Wanderer"]),
       linger_ms=st.sampled_from([0, 1, 5, 50]),
       batch_size=st.sampled_from([1024, 16384]),
       rate=st.sampled_from([5, 500, 20_000, 100_000]),
       keyed=st.booleans(),
       slowdown=st.sampled_from([1.0, 30.0]))
def test_kafka_4_partitioning_in_chunks_gives_the_run_of_partitioning_all_at_once(
        partitioner, linger_ms, batch_size, rate, keyed, slowdown):
    args = (partitioner, linger_ms, batch_size, rate, keyed, None, slowdown, "4.0")
    chunked = outcome(run(*args))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CustomPartitioning, "ahead_ms", math.inf)
        at_once = outcome(run(*args))
    assert chunked == at_once


@pytest.mark.parametrize("linger_ms", [0, 5])
def test_the_sender_does_not_wake_for_every_record(linger_ms):
    """A KIP-480 sticky producer with a slow broker: most records join a batch waiting for a
    busy leader, so far fewer simulated events than records are needed."""
    kernel = Kernel(seed=1, brokers=3)
    kernel.cluster.create_topic("t", partitions=12)
    kernel.cluster.brokers[0].set_slowdown(100)
    producer = Producer(kernel, {"partitioner.class": "DefaultPartitioner",
                                 "lab.kafka.version": "3.8", "linger.ms": linger_ms})
    producer.add_workload(Workload.generate(kernel.spawn_rng(), "t", 20_000, 100_000))
    kernel.run()
    assert producer.acked == 20_000
    assert kernel.steps < 20_000 / 4
