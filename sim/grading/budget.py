"""Time budgets: stop a learner's code that runs too long, without killing the process.

A check calls learner code that may loop forever; a grader runs whole notebook cells that may do
the same. :func:`time_budget` arms a wall-clock alarm (``SIGALRM``) and raises
:class:`BudgetExceeded` inside the running code when it fires.

Budgets nest: an inner budget never outlives the outer one. When the inner block ends, the outer
alarm is re-armed with whatever time it has left (at least a millisecond, so an outer deadline
that passed during the inner block fires right away).

A check's own simulation (the reference run an answer is compared with) runs no learner code:
:func:`untimed` stops the clock around it, so the budget bounds the learner's code only and a
right answer never runs out of time on a slower machine.

Alarms only exist on POSIX and only in the main thread; elsewhere a budget is a no-op and the
batch grader's whole-process timeout is the only limit.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BudgetExceeded", "alarms_available", "time_budget", "untimed"]

_MIN_REARM_S = 1e-3
_untimed_s = [0.0]  # seconds spent in untimed() blocks so far; budgets do not count them


class BudgetExceeded(BaseException):
    """The code ran past its time budget.

    A ``BaseException`` on purpose: learner code that says ``except Exception`` must not be able
    to swallow it and keep looping.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(f"did not finish within {seconds:g} s")
        self.seconds = seconds


def alarms_available() -> bool:
    """Whether :func:`time_budget` can actually interrupt code here (POSIX, main thread)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Run the ``with`` block for at most ``seconds`` of wall-clock time.

    Args:
        seconds: the budget; ``None`` means no limit.

    Raises:
        BudgetExceeded: inside the block, when the budget (or an enclosing one) runs out.
    """
    if seconds is None or not alarms_available():
        yield
        return
    previous_handler = signal.getsignal(signal.SIGALRM)
    previous_left_s, _ = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()
    untimed_before = _untimed_s[0]
    effective_s = min(seconds, previous_left_s) if previous_left_s > 0 else seconds

    def on_alarm(signum: int, frame: object) -> None:
        raise BudgetExceeded(effective_s)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(effective_s, _MIN_REARM_S))
    try:
        yield
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            restored = previous_handler if previous_handler is not None else signal.SIG_DFL
            signal.signal(signal.SIGALRM, restored)
            if previous_left_s > 0:
                spent = time.monotonic() - started - (_untimed_s[0] - untimed_before)
                left_s = previous_left_s - spent
                signal.setitimer(signal.ITIMER_REAL, max(left_s, _MIN_REARM_S))


@contextmanager
def untimed() -> Iterator[None]:
    """Run the ``with`` block with the budget's clock stopped: for the checker's own work only.

    The running budget (if any) is disarmed and re-armed afterwards with the time it had left.
    Never wrap learner code in it: that code would run without a limit.
    """
    if not alarms_available():
        yield
        return
    left_s, _ = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()
    if left_s > 0:
        signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        yield
    finally:
        _untimed_s[0] += time.monotonic() - started
        if left_s > 0:
            signal.setitimer(signal.ITIMER_REAL, max(left_s, _MIN_REARM_S))
