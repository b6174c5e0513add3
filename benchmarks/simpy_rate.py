"""How fast this machine runs the SimPy kernel: the yardstick benchmarks scale their targets by.

Targets are set on a reference machine where SimPy processes about 2,000,000 bare timeouts per
second; a benchmark measures the rate here, beside its own run, and scales by the ratio.
"""

from __future__ import annotations

import time
from collections.abc import Generator

import simpy

REFERENCE_EVENTS_PER_S = 2_000_000  # SimPy's bare-event rate on the reference machine


def simpy_events_per_s(events: int = 300_000) -> float:
    """SimPy processing one bare timeout per step: how fast this machine runs the kernel."""
    env = simpy.Environment()

    def ticks() -> Generator[simpy.Event, None, None]:
        for _ in range(events):
            yield env.timeout(1)

    env.process(ticks())
    start = time.perf_counter()
    env.run()
    return events / (time.perf_counter() - start)
