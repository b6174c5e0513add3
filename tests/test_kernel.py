"""Specification of the kernel: determinism, time control, reset and random streams.

"Same setup and seed, same trace" is the lab's central promise: a lesson's numbers must come out
the same for every learner, and a golden output must not drift.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from sim import scenarios
from sim.errors import SimulationError
from sim.kernel import Kernel
from sim.producer import Producer
from sim.workloads import UniformKeys, Workload

KEYLESS = "keyless-uniform-sticky"


@functools.cache
def scenario(name: str) -> scenarios.Scenario:
    return scenarios.load(name)


def run(name: str, seed: int | None = None) -> Kernel:
    return scenario(name).run(seed)


def small_setup(kernel: Kernel) -> None:
    """A small key-less and keyed load on one topic, for cheap determinism checks."""
    kernel.cluster.create_topic("orders", partitions=6, replication_factor=2)
    Producer(kernel, {"client.id": "keyless", "linger.ms": 1},
             Workload.generate(kernel.spawn_rng(), "orders", 2000, 50_000))
    Producer(kernel, {"client.id": "keyed"},
             Workload.generate(kernel.spawn_rng(), "orders", 2000, 50_000, keys=UniformKeys(40)))


def timers(kernel: Kernel, times_ms: list[float]) -> list[float]:
    """Schedule a plain SimPy event at each time; return the list each appends its time to."""
    processed: list[float] = []
    for t in times_ms:
        event = kernel.env.timeout(t)
        event.callbacks.append(lambda _e, t=t: processed.append(t))
    return processed


# --- Determinism ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["keyed", KEYLESS])
def test_same_seed_gives_identical_trace_and_results(name: str) -> None:
    """A scenario run twice with its seed gives the same trace and results, field by field."""
    first, second = run(name), run(name)
    pd.testing.assert_frame_equal(first.trace.to_frame(), second.trace.to_frame())
    assert len(first.clients) == len(second.clients) == 1
    pd.testing.assert_frame_equal(first.clients[0].results(), second.clients[0].results())
    assert first.now_ms == second.now_ms


def test_different_seed_changes_the_keyless_trace() -> None:
    """Key-less partitioning is random: another seed picks other sticky partitions."""
    first, other = run(KEYLESS), run(KEYLESS, seed=7)
    assert other.seed == 7
    assert not first.trace.to_frame().equals(other.trace.to_frame())
    first_parts = first.clients[0].results()["partition"].to_numpy()
    other_parts = other.clients[0].results()["partition"].to_numpy()
    assert not np.array_equal(first_parts, other_parts)


def test_same_seed_gives_identical_partition_contents() -> None:
    """Two identical runs store the same records at the same offsets of every partition."""
    logs = []
    for _ in range(2):
        kernel = Kernel(seed=3, setup=small_setup).run()
        logs.append([p.log.records() for p in kernel.cluster.topic("orders").partitions])
    for first, second in zip(*logs, strict=True):
        pd.testing.assert_frame_equal(first, second)


def test_same_seed_gives_identical_batch_index() -> None:
    """Identical runs store identical batch indexes, producer ids included (no memory addresses)."""
    kernels = [Kernel(seed=3, setup=small_setup).run() for _ in range(3)]  # all kept alive
    indexes = [
        pd.concat([p.log.batches() for p in k.cluster.topic("orders").partitions],
                  ignore_index=True)
        for k in kernels
    ]
    for other in indexes[1:]:
        pd.testing.assert_frame_equal(indexes[0], other)


# --- run(until_ms) -------------------------------------------------------------------------------


def test_run_until_a_time_stops_there_and_continues_to_the_same_end() -> None:
    """run(t) stops at t with every earlier event done; resuming ends exactly as one full run."""
    kernel = scenario(KEYLESS).build()
    kernel.run(50.0)
    assert kernel.now_ms == 50.0
    frame = kernel.trace.to_frame()
    assert len(frame) > 0
    assert frame["time_ms"].max() <= 50.0
    assert kernel.env.peek() >= 50.0  # nothing earlier is left unprocessed
    kernel.run()
    pd.testing.assert_frame_equal(kernel.trace.to_frame(), run(KEYLESS).trace.to_frame())


def test_run_until_a_time_advances_an_idle_clock(kernel: Kernel) -> None:
    """With nothing scheduled, run(t) still moves the clock to t."""
    kernel.run(100.0)
    assert kernel.now_ms == 100.0
    kernel.run(100.0)  # running to "now" is allowed and does nothing
    assert kernel.now_ms == 100.0


def test_run_includes_events_at_the_stop_time(kernel: Kernel) -> None:
    """Events scheduled exactly at until_ms are processed by run(until_ms)."""
    processed = timers(kernel, [10.0, 20.0, 20.0, 30.0])
    kernel.run(20.0)
    assert processed == [10.0, 20.0, 20.0]
    kernel.run()
    assert processed == [10.0, 20.0, 20.0, 30.0]
    assert kernel.now_ms == 30.0


def test_running_backwards_is_an_error(kernel: Kernel) -> None:
    """run(t) with t earlier than now raises SimulationError naming both times and reset()."""
    kernel.run(50.0)
    with pytest.raises(SimulationError, match=r"until 10.*already at 50.*reset\(\)"):
        kernel.run(10.0)
    assert kernel.now_ms == 50.0


# --- step() --------------------------------------------------------------------------------------


def test_step_processes_exactly_one_event(kernel: Kernel) -> None:
    """Each step() processes one event, even when several share a time, and counts it."""
    processed = timers(kernel, [5.0, 5.0, 10.0])
    assert kernel.step() is True
    assert (processed, kernel.now_ms, kernel.steps) == ([5.0], 5.0, 1)
    assert kernel.step() is True
    assert (processed, kernel.now_ms, kernel.steps) == ([5.0, 5.0], 5.0, 2)
    assert kernel.step() is True
    assert (processed, kernel.now_ms, kernel.steps) == ([5.0, 5.0, 10.0], 10.0, 3)


def test_step_returns_false_when_nothing_is_left(kernel: Kernel) -> None:
    """step() on an empty schedule returns False and changes nothing."""
    assert kernel.step() is False
    assert (kernel.now_ms, kernel.steps) == (0.0, 0)
    timers(kernel, [1.0])
    assert kernel.step() is True
    assert kernel.step() is False
    assert kernel.steps == 1


def test_step_after_running_an_idle_kernel_finds_nothing(kernel: Kernel) -> None:
    """After run(t) with nothing scheduled, step() returns False: nothing is left to do."""
    kernel.run(100.0)
    assert kernel.step() is False
    assert kernel.steps == 0


def test_stepping_through_a_scenario_matches_running_it() -> None:
    """Stepping a while and then running gives the same trace as running straight through."""
    kernel = scenario(KEYLESS).build()
    for _ in range(25):
        assert kernel.step()
    kernel.run()
    pd.testing.assert_frame_equal(kernel.trace.to_frame(), run(KEYLESS).trace.to_frame())


# --- run_until(condition) ------------------------------------------------------------------------


def test_run_until_stops_as_soon_as_the_condition_holds(kernel: Kernel) -> None:
    """run_until(cond) processes events only until cond first holds, then returns True."""
    processed = timers(kernel, [float(t) for t in range(1, 11)])
    assert kernel.run_until(lambda _k: len(processed) >= 3) is True
    assert processed == [1.0, 2.0, 3.0]
    assert kernel.now_ms == 3.0


def test_run_until_a_condition_already_true_does_nothing(kernel: Kernel) -> None:
    """A condition that holds already returns True without processing an event."""
    timers(kernel, [1.0])
    assert kernel.run_until(lambda _k: True) is True
    assert kernel.steps == 0


def test_run_until_returns_false_when_events_run_out(kernel: Kernel) -> None:
    """If the condition never holds, every event is processed and the answer is False."""
    processed = timers(kernel, [1.0, 2.0])
    assert kernel.run_until(lambda _k: False) is False
    assert processed == [1.0, 2.0]


def test_run_until_respects_max_ms(kernel: Kernel) -> None:
    """run_until(cond, max_ms) processes no event later than max_ms and returns False."""
    processed = timers(kernel, [1.0, 5.0, 6.0, 9.0])
    assert kernel.run_until(lambda _k: False, max_ms=5.0) is False
    assert processed == [1.0, 5.0]
    assert kernel.now_ms == 5.0


# --- reset() -------------------------------------------------------------------------------------


def test_reset_reproduces_the_same_trace_from_scratch() -> None:
    """reset() rebuilds from the setup at time 0; running again gives the same trace."""
    kernel = Kernel(seed=11, setup=small_setup)
    first = kernel.run().trace.to_frame()
    assert kernel.reset() is kernel
    assert (kernel.now_ms, len(kernel.trace), kernel.steps) == (0.0, 0, 0)
    assert [p.client_id for p in kernel.clients] == ["keyless", "keyed"]
    assert all(len(p.log) == 0 for p in kernel.cluster.topic("orders").partitions)
    pd.testing.assert_frame_equal(kernel.run().trace.to_frame(), first)


def test_reset_after_a_partial_run_reproduces_the_scenario() -> None:
    """Resetting halfway through a scenario and running gives the scenario's full trace."""
    kernel = scenario(KEYLESS).build()
    kernel.run(30.0)
    kernel.reset().run()
    pd.testing.assert_frame_equal(kernel.trace.to_frame(), run(KEYLESS).trace.to_frame())


def test_repr_names_seed_time_and_topics(small_cluster: object, kernel: Kernel) -> None:
    """The kernel's repr shows its seed, time, brokers and topics, for notebooks."""
    assert repr(kernel) == "Kernel(seed=0, now_ms=0, brokers=3, topics=['orders'], events=0)"


# --- Random streams ------------------------------------------------------------------------------


def test_spawned_streams_are_reproducible() -> None:
    """The n-th stream spawned by equally seeded kernels draws the same numbers."""
    first, second = Kernel(seed=5), Kernel(seed=5)
    for _ in range(3):
        np.testing.assert_array_equal(first.spawn_rng().integers(0, 2**31, 20),
                                      second.spawn_rng().integers(0, 2**31, 20))


def test_spawned_streams_differ_from_each_other_and_across_seeds() -> None:
    """Two streams of one kernel differ, and so do the first streams of different seeds."""
    kernel = Kernel(seed=5)
    a, b = kernel.spawn_rng(), kernel.spawn_rng()
    assert not np.array_equal(a.integers(0, 2**31, 20), b.integers(0, 2**31, 20))
    assert not np.array_equal(Kernel(seed=5).spawn_rng().integers(0, 2**31, 20),
                              Kernel(seed=6).spawn_rng().integers(0, 2**31, 20))


def test_spawned_streams_are_independent_of_other_draws() -> None:
    """What one stream (or the kernel's own generator) draws never shifts another stream."""
    busy = Kernel(seed=9)
    busy.rng.random(1000)
    a, b = busy.spawn_rng(), busy.spawn_rng()
    a.random(5000)
    quiet = Kernel(seed=9)
    quiet.spawn_rng()
    np.testing.assert_array_equal(b.random(10), quiet.spawn_rng().random(10))


def test_run_without_a_time_refuses_when_consumers_poll_forever() -> None:
    """Consumers never stop polling, so run() needs an end time — and says how to give one."""
    from sim.consumer import Consumer

    kernel = Kernel(seed=0)
    kernel.cluster.create_topic("t", partitions=1)
    Consumer(kernel, {"group.id": "g"}).subscribe(["t"])
    with pytest.raises(SimulationError, match=r"kernel\.run\(until_ms="):
        kernel.run()
    kernel.run(1000)
    assert kernel.now_ms == 1000


# --- The livelock guard --------------------------------------------------------------------------


class Spinner:
    """A component whose loop waits 0 ms for ever: simulated time can never advance."""

    client_id = "spinner-1"

    def __init__(self, kernel: Kernel) -> None:
        self.env = kernel.env

    def spin(self):
        while True:
            yield from self.pause()

    def pause(self):
        yield self.env.timeout(0)


def spinning_kernel(at_ms: float = 250.0) -> Kernel:
    kernel = Kernel(seed=0, brokers=1)
    spinner = Spinner(kernel)
    kernel.env.timeout(at_ms).callbacks.append(lambda _e: kernel.env.process(spinner.spin()))
    return kernel


def test_a_zero_time_livelock_is_an_error_naming_the_process() -> None:
    """A loop that waits 0 ms again and again ends the run with SimulationError (at the default
    limit, never a hang), naming the instant, the generators and the client that owns them."""
    kernel = spinning_kernel()
    with pytest.raises(SimulationError) as info:
        kernel.run(10_000)
    message = str(info.value)
    assert "stopped at 250 ms" in message
    assert "zero-time livelock" in message
    assert "Spinner.spin → Spinner.pause (of spinner-1)" in message
    assert kernel.now_ms == 250


def test_the_livelock_guard_also_watches_step_by_step_runs() -> None:
    """run_until() and step() (what a notebook's blocking calls use) raise as run() does."""
    kernel = spinning_kernel(at_ms=5.0)
    kernel.max_steps_per_instant = 500
    with pytest.raises(SimulationError, match=r"Spinner\.spin"):
        kernel.run_until(lambda _k: False)


def test_many_events_at_one_instant_below_the_limit_are_fine() -> None:
    """The guard counts events in a row at one instant: a burst up to the limit runs, and
    time moving on starts the count again."""
    kernel = Kernel(seed=0, brokers=1)
    kernel.max_steps_per_instant = 100
    processed = timers(kernel, [7.0] * 100 + [8.0] * 100)
    kernel.run(10)
    assert processed == [7.0] * 100 + [8.0] * 100
    timers(kernel, [1.0] * 101)  # delays: all at 11 ms
    with pytest.raises(SimulationError, match="events in a row"):
        kernel.run(20)
