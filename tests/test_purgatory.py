"""Specification of the purgatories' timers (``sim.broker.purgatory``).

The produce purgatory's ``ExpirationTimer`` and the fetch purgatory's ``TimerQueue`` must fire
exactly as a SimPy timeout armed at the same moment would — same time, same place among the
events of that instant, keeping a run going the same way — while a timer disarmed (or whose
request was answered) before it fires costs no event at all.
"""

from __future__ import annotations

from typing import Any

from sim.broker.purgatory import REAPER_INTERVAL_MS, ExpirationTimer, TimerQueue, _queue_at
from sim.kernel import Kernel


def _recorder(kernel: Kernel, log: list[tuple[float, str]]) -> Any:
    def note(name: str) -> Any:
        return lambda *_: log.append((kernel.now_ms, name))
    return note


def test_armed_timer_fires_where_a_timeout_armed_then_would():
    """Events at the timer's instant created before it was armed come first, those created
    after (even before the timer entered SimPy's queue) come after it."""
    kernel = Kernel(seed=0)
    env, log = kernel.env, []
    note = _recorder(kernel, log)
    timer = ExpirationTimer(kernel, note("expire"))
    env.timeout(5000).callbacks.append(note("before"))
    timer.arm(5000)
    env.timeout(5000).callbacks.append(note("after"))

    def later() -> Any:
        yield env.timeout(2000)
        env.timeout(3000).callbacks.append(note("made at 2000"))

    env.process(later())
    kernel.run(6000)
    assert log == [(5000.0, "before"), (5000.0, "expire"), (5000.0, "after"),
                   (5000.0, "made at 2000")]


def test_disarmed_timer_costs_no_event():
    """A timer disarmed before the reaper's first look never enters SimPy's queue."""
    kernel = Kernel(seed=0)
    fired: list[float] = []
    timer = ExpirationTimer(kernel, lambda: fired.append(kernel.now_ms))
    queued = len(kernel.env._queue)
    for _ in range(100):
        timer.arm(5000)
        timer.disarm()
    assert len(kernel.env._queue) == queued + 1  # the reaper alone
    kernel.run(10_000)
    assert fired == []


def test_replaced_timer_never_fires():
    """Arming again replaces the armed timer: only the new one fires."""
    kernel = Kernel(seed=0)
    fired: list[float] = []
    timer = ExpirationTimer(kernel, lambda: fired.append(kernel.now_ms))
    timer.arm(5000)
    timer.arm(300)
    kernel.run(10_000)
    assert fired == [300.0]


def test_an_armed_timer_keeps_a_run_going_and_a_disarmed_one_does_not():
    """``run()`` without an end goes on while a timer is armed (outside SimPy's queue or in
    it), and stops at once when nothing is armed but housekeeping timers."""
    kernel = Kernel(seed=0)
    fired: list[float] = []
    timer = ExpirationTimer(kernel, lambda: fired.append(kernel.now_ms))
    timer.arm(3.5 * REAPER_INTERVAL_MS)
    kernel.run()
    assert fired == [3.5 * REAPER_INTERVAL_MS]
    assert kernel.now_ms == 3.5 * REAPER_INTERVAL_MS
    timer.arm(5000)
    timer.disarm()
    kernel.run()
    assert kernel.now_ms == 3.5 * REAPER_INTERVAL_MS
    assert fired == [3.5 * REAPER_INTERVAL_MS]


class _Task:
    def __init__(self, name: str) -> None:
        self.name = name
        self.done = False


def test_timer_queue_fires_each_waiting_task_where_its_timeout_would():
    """Each timer fires ``delay`` after it was set, in its place among the events of its
    instant (events made before it first, after it later), whether or not another timer of
    the queue was in SimPy's queue when it was set; answered tasks never fire."""
    kernel = Kernel(seed=0)
    env, log = kernel.env, []
    note = _recorder(kernel, log)
    timers = TimerQueue(kernel, 500, lambda task: note(task.name)(), lambda task: not task.done)
    a, b, c = _Task("a"), _Task("b"), _Task("c")
    env.timeout(500).callbacks.append(note("before a"))
    timers.add(a)
    env.timeout(500).callbacks.append(note("after a"))
    timers.add(b)  # the same instant as a, after it

    def later() -> Any:
        yield env.timeout(100)
        b.done = True  # answered: its timer must not fire
        env.timeout(400).callbacks.append(note("made at 100"))
        timers.add(c)  # due at 600, set while a's timer is queued

    env.process(later())
    env.timeout(600).callbacks.append(note("before c"))
    kernel.run(1000)
    assert log == [(500.0, "before a"), (500.0, "a"), (500.0, "after a"),
                   (500.0, "made at 100"), (600.0, "before c"), (600.0, "c")]


def test_timer_queue_costs_no_event_for_tasks_answered_before_the_first_fires():
    """Only the first waiting timer is in SimPy's queue: a hundred tasks answered while it
    waits are dropped unseen when it fires; none of them keeps a run going."""
    kernel = Kernel(seed=0)
    fired: list[str] = []
    timers = TimerQueue(kernel, 500, lambda task: fired.append(task.name),
                        lambda task: not task.done)
    queued = len(kernel.env._queue)
    tasks = [_Task(str(k)) for k in range(100)]
    for task in tasks:
        timers.add(task)
        task.done = True
    assert len(kernel.env._queue) == queued + 1
    steps = kernel.steps
    kernel.run()  # only housekeeping left: the run stops at once
    assert kernel.steps == steps
    assert kernel.now_ms == 0
    kernel.run(2000)
    assert fired == []
    assert kernel.steps == steps + 1  # the first timer fired, found nothing, queued no other


def test_queue_at_puts_an_event_where_a_timeout_made_when_the_id_was_taken_would_be():
    """``_queue_at`` schedules under an id taken earlier: the event fires at its time, after
    events of that instant made before the id was taken and before those made after."""
    kernel = Kernel(seed=0)
    env, log = kernel.env, []
    note = _recorder(kernel, log)
    env.timeout(300).callbacks.append(note("before"))
    event_id = next(env._eid)  # a Timeout made now would get this id
    env.timeout(300).callbacks.append(note("after"))
    event = _queue_at(env, env.now + 300, event_id, note("queued"))
    assert event.triggered
    assert event.ok
    assert event.value is None
    kernel.run(1000)
    assert log == [(300.0, "before"), (300.0, "queued"), (300.0, "after")]
