"""The heap of partition ready times that sender passes read instead of scanning every partition."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from sim.producer.topic_state import ReadyTimes

PARTITIONS = 12

#: Ready-time changes: (partition, new time), with ``inf`` (nothing due) and repeated times.
changes = st.lists(
    st.tuples(st.integers(0, PARTITIONS - 1),
              st.one_of(st.just(math.inf), st.integers(0, 20).map(float))),
    max_size=80,
)


def _heap_is_consistent(ready: ReadyTimes) -> bool:
    times = ready.times
    for i, p in enumerate(ready.heap):
        if ready.slot[p] != i or times[p] == math.inf:
            return False
        if i and times[ready.heap[(i - 1) // 2]] > times[p]:
            return False
    return sorted(ready.heap) == [p for p, t in enumerate(times) if t < math.inf]


@given(changes, st.integers(0, 21).map(float))
def test_queries_agree_with_a_scan_of_every_partition(updates: list[tuple[int, float]],
                                                      now_ms: float) -> None:
    ready = ReadyTimes(PARTITIONS)
    for p, t in updates:
        ready.set(p, t)
        assert _heap_is_consistent(ready)
    times = ready.times
    assert ready.earliest() == min(times)
    assert ready.due(now_ms) == [p for p, t in enumerate(times) if t <= now_ms]
    assert ready.earliest_where(lambda p: p % 3 == 1) == min(
        [t for p, t in enumerate(times) if p % 3 == 1], default=math.inf)


def test_a_partition_with_nothing_due_leaves_the_heap() -> None:
    ready = ReadyTimes(4)
    ready.set(2, 5.0)
    ready.set(0, 3.0)
    ready.set(0, math.inf)
    assert ready.heap == [2]
    assert ready.earliest() == 5.0
    assert ready.due(4.0) == []
    assert ready.due(5.0) == [2]
