"""Specification of the fuzz guard's time limit: it counts this process's CPU time.

A campaign on a machine busy with other work runs slower by the wall clock, not by the CPU
time it takes; the guard's backstop must not call such a run a hang. The step limits stay the
deterministic guards (``test_fuzz.py`` pins the zero-time livelock).
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import pytest

from sim.fuzz.checker import Guard, RunawayError
from sim.kernel import Kernel


def _ticking(kernel: Kernel, events: int, work: Any) -> None:
    """A process of ``events`` 1 ms timeouts, calling ``work`` after each."""

    def ticks() -> Generator[Any, None, None]:
        for _ in range(events):
            yield kernel.env.timeout(1)
            work()

    kernel.env.process(ticks())


def test_guard_measures_cpu_time_by_default():
    """The limit's clock is the process's CPU time, not a wall clock."""
    assert Guard().clock is time.process_time


def test_a_run_waiting_on_a_busy_machine_is_not_a_hang():
    """Wall time passing without CPU time (the process waits, as it does while other
    processes hold the cores) does not trip the limit."""
    kernel = Kernel(seed=0)
    _ticking(kernel, 40, lambda: time.sleep(0.01))  # 0.4 s of wall time, next to no CPU
    guard = Guard(max_cpu_s=0.2)
    guard.CHECK_EVERY = 4
    guard.run(kernel, 100)
    assert kernel.now_ms == 100


def test_a_run_burning_cpu_past_the_limit_is_stopped():
    """A run whose events take more CPU time than ``max_cpu_s`` raises, naming CPU time."""

    def burn() -> None:
        started = time.process_time()
        while time.process_time() - started < 0.02:
            pass

    kernel = Kernel(seed=0)
    _ticking(kernel, 50, burn)  # 1 s of CPU time if it ran to the end
    guard = Guard(max_cpu_s=0.1)
    guard.CHECK_EVERY = 4
    with pytest.raises(RunawayError, match="s of CPU time"):
        guard.run(kernel, 100)
    assert kernel.now_ms < 50
