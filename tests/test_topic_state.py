"""The heap of partition ready times that sender passes read instead of scanning every partition."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from sim import trace as events
from sim.faults import CrashBroker, RestartBroker, schedule
from sim.kernel import Kernel
from sim.producer import Producer
from sim.producer.topic_state import ReadyTimes, ScannedReadyTimes
from sim.workloads import NoKeys, UniformKeys, Workload
from tests.strategies import READY_PARTITIONS, ready_time_changes


def _heap_is_consistent(ready: ReadyTimes) -> bool:
    times = ready.times
    for i, p in enumerate(ready.heap):
        if ready.slot[p] != i or times[p] == math.inf:
            return False
        if i and times[ready.heap[(i - 1) // 2]] > times[p]:
            return False
    return sorted(ready.heap) == [p for p, t in enumerate(times) if t < math.inf]


@given(ready_time_changes, st.integers(0, 21).map(float))
def test_queries_agree_with_a_scan_of_every_partition(updates: list[tuple[int, float]],
                                                      now_ms: float) -> None:
    ready = ReadyTimes(READY_PARTITIONS)
    for p, t in updates:
        ready.set(p, t)
        assert _heap_is_consistent(ready)
    times = ready.times
    assert ready.earliest() == min(times)
    assert ready.due(now_ms) == [p for p, t in enumerate(times) if t <= now_ms]
    assert ready.earliest_where(lambda p: p % 3 == 1) == min(
        [t for p, t in enumerate(times) if p % 3 == 1], default=math.inf)


@given(ready_time_changes, st.integers(0, 21).map(float), st.integers(0, 7))
def test_a_few_partitions_scanned_answer_as_the_heap_does(updates: list[tuple[int, float]],
                                                          now_ms: float, mask: int) -> None:
    """``ScannedReadyTimes`` (a topic of few partitions) answers every query of a sender pass
    as the heap does, through any changes of ready times."""
    heap, scanned = ReadyTimes(READY_PARTITIONS), ScannedReadyTimes(READY_PARTITIONS)
    flags = [bool(mask >> (p % 3) & 1) for p in range(READY_PARTITIONS)]
    for p, t in updates:
        heap.set(p, t)
        scanned.set(p, t)
        assert scanned.times == heap.times
        assert scanned.earliest() == heap.earliest()
        assert scanned.due(now_ms) == heap.due(now_ms)
        assert scanned.earliest_of(flags) == heap.earliest_of(flags)
        assert scanned.earliest_where(flags.__getitem__) == heap.earliest_where(
            flags.__getitem__)
    asked: list[int] = []
    scanned.earliest_where(lambda q: asked.append(q) or False)
    assert sorted(set(asked)) == [p for p, t in enumerate(heap.times) if t < math.inf]


def test_a_partition_with_nothing_due_leaves_the_heap() -> None:
    ready = ReadyTimes(4)
    ready.set(2, 5.0)
    ready.set(0, 3.0)
    ready.set(0, math.inf)
    assert ready.heap == [2]
    assert ready.earliest() == 5.0
    assert ready.due(4.0) == []
    assert ready.due(5.0) == [2]


def test_counts_and_ready_times_stay_in_step_through_crashes_and_retries() -> None:
    """Through a broker crash (retries re-enqueue batches, expiries take them out) the queue
    sizes the accumulator keeps equal its queues' lengths, and the heap's due partitions equal
    a scan of every partition's ready time."""
    kernel = Kernel(seed=5, brokers=3)
    kernel.cluster.create_topic("t", partitions=40)
    producers = [Producer(kernel, {"linger.ms": 5, "delivery.timeout.ms": 600,
                                   "request.timeout.ms": 200, "enable.idempotence": False,
                                   "acks": "1"}),
                 Producer(kernel, {"linger.ms": 0})]
    for producer, keys in zip(producers, (NoKeys(), UniformKeys(50)), strict=True):
        producer.add_workload(Workload.generate(kernel.spawn_rng(), "t", 8_000, 10_000,
                                                keys=keys, value_bytes=(50, 400)))
    schedule(kernel, 200.0, CrashBroker(1))
    schedule(kernel, 700.0, RestartBroker(1))
    checked = 0
    while kernel.step():
        for producer in producers:
            state = producer.topics["t"]
            acc = state.accumulator
            assert acc.queue_sizes().tolist() == [len(dq) for dq in acc.deques]
            now = kernel.now_ms
            assert state.ready.due(now) == [p for p, t in enumerate(state.next_ready) if t <= now]
            assert state.ready.earliest() == min(state.next_ready)
        checked += 1
    assert checked > 1000
    assert kernel.trace.count(events.PRODUCE_RETRY) > 0  # batches did go back to their queues
