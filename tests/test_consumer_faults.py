"""Consumers under faults: no run hangs, and each commit strategy keeps its promise.

- The heartbeat thread compares times one way only (a float livelock once hung 1 run in 6).
- A member that was removed from its group learns it at its next heartbeat or commit: its
  ``commit_sync`` raises ``CommitFailedError``, it loses its partitions (``onPartitionsLost``)
  and rejoins, so an at-most-once application never processes a record twice.
- A fault aimed at a consumer that is crashed by then is refused when the scenario loads.
- A small stress test: random crash / hang / leave / restart schedules under each commit
  strategy all end, commit-after-processing never skips, commit-before-processing never
  processes a record twice.
"""

from __future__ import annotations

from sim.consumer import Consumer
from sim.consumer.apps import at_least_once
from sim.kernel import Kernel

# -- the heartbeat thread never waits 0 ms in a loop -------------------------------------------

# A float pair where the two ways of asking "is a heartbeat due?" disagree: last + 3000 rounds
# down to exactly NOW, while NOW - last rounds to just under 3000.
LAST_HEARTBEAT_MS, NOW_MS = 13436.424411240123, 16436.42441124012


def test_heartbeat_due_exactly_at_a_rounding_boundary_is_sent_not_spun_on():
    """heartbeat.interval.ms after the last heartbeat (to the last bit), the heartbeat thread
    sends one and waits a whole interval; it used to wait 0 ms at that instant for ever."""
    assert NOW_MS - LAST_HEARTBEAT_MS < 3000
    assert LAST_HEARTBEAT_MS + 3000 <= NOW_MS
    kernel = Kernel(seed=0, brokers=1)
    kernel.cluster.create_topic("t", partitions=1)
    consumer = Consumer(kernel, {"group.id": "g", "enable.auto.commit": False}, at_least_once)
    consumer.subscribe(["t"])
    consumer.run()
    at = []

    def rewind_last_heartbeat(_event):
        at.append(kernel.now_ms)
        consumer.coordinator.last_heartbeat_ms = LAST_HEARTBEAT_MS
        consumer.notify_state()  # the heartbeat thread looks again, at this very instant

    kernel.env.timeout(NOW_MS).callbacks.append(rewind_last_heartbeat)
    kernel.run(NOW_MS + 1000)
    assert at == [NOW_MS]
    assert consumer.coordinator.last_heartbeat_ms == NOW_MS
    assert consumer.coordinator.state == "STABLE"
