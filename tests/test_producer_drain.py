"""The sender drains a ready broker's every partition, as Kafka's ``RecordAccumulator`` does.

``RecordAccumulator.ready`` finds the brokers that lead a partition with a sendable head batch
(full, or ``linger.ms`` old); ``drainBatchesForOneNode`` then takes the head batch of *each*
partition such a broker leads, sendable or not, from a per-broker rotating index, until
``max.request.size`` is reached.
"""

from __future__ import annotations

from sim import trace as events
from sim.kernel import Kernel
from sim.producer import Producer


def _producer(partitions: int, brokers: int = 1, **configs) -> tuple[Kernel, Producer]:
    kernel = Kernel(seed=0, brokers=brokers)
    kernel.cluster.create_topic("t", partitions=partitions)
    return kernel, Producer(kernel, {"client.id": "app", **configs})


def _send_at(kernel: Kernel, producer: Producer, at_ms: float, partition: int):
    """Run the simulation to ``at_ms``, then send one record to ``partition``."""
    kernel.run(at_ms)
    return producer.send("t", value="x" * 50, partition=partition)


def test_a_ready_broker_drains_the_batches_that_are_not_ready_yet():
    """Partition 0's batch lingers out at 100 ms; partitions 1–3 (same broker) opened theirs at
    50 ms. All four leave in one request at 100 ms: 1–3 wait 50 ms, not their own 100."""
    kernel, producer = _producer(4, **{"linger.ms": 100})
    first = _send_at(kernel, producer, 0.0, 0)
    later = [_send_at(kernel, producer, 50.0, p) for p in (1, 2, 3)]
    kernel.run(1_000)
    sent = kernel.trace.frame(events.REQUEST_SENT)
    assert sent["batches"].tolist() == [4]
    assert sent["time_ms"].tolist() == [100.0]
    assert first.get().latency_ms >= 100
    assert all(50 <= f.get().latency_ms < 60 for f in later)


def test_a_broker_with_nothing_sendable_is_not_drained():
    """Two partitions led by different brokers: the one whose batch is ready leaves at 100 ms,
    the other waits its own linger.ms (until 150 ms)."""
    kernel, producer = _producer(2, brokers=2, **{"linger.ms": 100})
    leaders = [kernel.cluster.partition("t", p).leader for p in (0, 1)]
    assert leaders[0] != leaders[1]
    _send_at(kernel, producer, 0.0, 0)
    _send_at(kernel, producer, 50.0, 1)
    kernel.run(1_000)
    sent = kernel.trace.frame(events.REQUEST_SENT)
    assert sent["time_ms"].tolist() == [100.0, 150.0]
    assert sent["node"].tolist() == leaders


def test_a_full_request_stops_the_drain_and_the_next_one_starts_there():
    """max.request.size fits two batches: the first request takes partitions 0 and 1 and
    stops at 2, where the next drain starts (2 and 3). A drain that goes all the way round
    leaves Kafka's index on the partition before its start."""
    kernel, producer = _producer(4, **{"linger.ms": 100, "max.request.size": 300,
                                       "max.in.flight.requests.per.connection": 5})
    for p in range(4):
        _send_at(kernel, producer, 0.0, p)
    kernel.run(1_000)
    appended = kernel.trace.frame(events.LOG_APPEND)
    sent = kernel.trace.frame(events.REQUEST_SENT)
    assert sent["batches"].tolist() == [2, 2]
    assert appended["partition"].tolist() == [0, 1, 2, 3]
    assert producer.sender._drain_index[0] == 1  # the round began at 2: it ends before it


def test_a_partition_not_yet_in_the_transaction_stops_the_drain():
    """``RecordAccumulator.shouldStopDrainBatchesForPartition``: a batch of a partition the
    coordinator has not added to the transaction yet (``isSendToPartitionAllowed``) stops the
    drain of its broker — the batches the rotation reaches after it wait too, and leave with it
    once AddPartitionsToTxn is answered, in one request."""
    kernel = Kernel(seed=0, brokers=1)
    kernel.cluster.create_topic("t", partitions=3)
    producer = Producer(kernel, {"transactional.id": "app", "linger.ms": 0})
    producer.init_transactions()
    producer.begin_transaction()
    for p in (0, 1):
        producer.send("t", value="x", partition=p)
    producer.flush()  # partitions 0 and 1 join the transaction; the next drain starts at 2
    assert producer.sender._drain_index[0] % 3 == 2
    first = len(kernel.trace.frame(events.REQUEST_SENT))
    producer.send("t", value="x", partition=2)  # new: AddPartitionsToTxn first
    producer.send("t", value="x", partition=0)  # in the transaction, but behind 2 in the rotation
    producer.flush()
    later = kernel.trace.frame(events.REQUEST_SENT).iloc[first:]
    assert later["batches"].tolist() == [2]
    appended = kernel.trace.frame(events.LOG_APPEND)
    assert appended["partition"].tolist()[-2:] == [2, 0]
