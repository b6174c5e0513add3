"""Purgatory timers: requests that wait for something, or for their deadline, whichever first.

Kafka's ``DelayedOperationPurgatory`` files each waiting request under its deadline in a
hierarchical timing wheel (``SystemTimer``) that an ``ExpiredOperationReaper`` thread advances
every 200 ms; a request completed before its deadline is simply taken out of its bucket. SimPy
cannot take an event back out of its queue: a timer armed for an acks=all request that the high
watermark answers a few milliseconds later still fires seconds later, to find nothing (about
2,800 such wake-ups in a fuzz schedule of 3,000 records).

So ``ExpirationTimer.arm`` only *reserves* the timer: it takes its place among the events of
its instant then (SimPy's event id, the tie-breaker between events at the same time), but it
enters SimPy's queue only once a reaper, waking every ``REAPER_INTERVAL_MS`` while a timer is
armed, finds it still armed and due before the reaper's next wake-up. It then fires exactly
where a timer put in the queue when it was armed would have fired, so runs are the same event
for event; a timer disarmed before that costs no event at all. While a timer is armed, one
event in the queue (the timer itself, or else the reaper) keeps a run going, as the armed
timer alone did before.

The fetch purgatory's deadlines (``replica.fetch.wait.max.ms``, 500 ms) are too short for a
reaper to gain anything, but they all come ``delay`` after they were set, so they fall due in
the order they were set. ``TimerQueue`` keeps them in that order with the places their timers
would have had, and only the first one whose request still waits is in SimPy's queue: a
follower's fetch that the leader's next append answers a few milliseconds after it parked costs
no event at all (in a steady acks=all flow nearly all of them).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simpy.events import NORMAL

if TYPE_CHECKING:
    from sim.broker.runtime import BrokerRuntime

REAPER_INTERVAL_MS = 1000.0
"""How often the reaper looks at the armed timer while one is armed. It decides only how early
a timer enters SimPy's queue, never when it fires, so it is chosen for few wake-ups (Kafka's
reaper advances its wheel every 200 ms)."""


def _queue_at(env: Any, at_ms: float, event_id: int, callback: Callable[[Any], None]) -> Any:
    """Put a new, already triggered event into SimPy's queue at ``at_ms`` under the reserved
    ``event_id``, as ``env.timeout`` would have at the time the id was taken; ``callback`` runs
    when it fires. Returns the event.

    The one place that touches SimPy's queue and event internals (SimPy has no public way to
    schedule an event under an id taken earlier); the ids come from SimPy's counter,
    ``next(env._eid)``, taken when a timer is set.
    """
    event = env.event()
    event._ok, event._value = True, None  # triggered, like a Timeout
    event.callbacks.append(callback)
    heapq.heappush(env._queue, (at_ms, NORMAL, event_id, event))
    return event


@dataclass
class _Slot:
    """An armed timer: when it fires and its place among events of that instant."""

    at_ms: float
    event_id: int
    event: Any = None
    """The SimPy event once the timer is in the queue."""


class ExpirationTimer:
    """One timer at a time, calling ``expire`` when the armed one fires (``SystemTimer``)."""

    def __init__(self, runtime: BrokerRuntime, expire: Callable[[], None]) -> None:
        self.runtime = runtime
        self._expire = expire
        self._armed: _Slot | None = None
        self._reaper: Any = None
        self._reaper_ms = math.inf
        self._reaper_keeps_run = False

    def arm(self, delay_ms: float) -> None:
        """Fire ``expire`` in ``delay_ms``, as ``env.timeout(delay_ms)`` would, instead of the
        armed timer (if any)."""
        env = self.runtime.env
        now = env.now
        if self._armed is not None:
            self._drop(self._armed)
        slot = _Slot(now + delay_ms, next(env._eid))  # the id a Timeout made now would get
        self._armed = slot
        if self._reaper is None:
            if slot.at_ms > now + REAPER_INTERVAL_MS:
                self._start_reaper()
            else:
                self._enqueue(slot)
        elif slot.at_ms <= self._reaper_ms:  # due before the reaper looks again
            self._enqueue(slot)
        self._keep_run()

    def disarm(self) -> None:
        """Nothing waits any more: the armed timer will not fire ``expire``."""
        if self._armed is not None:
            self._drop(self._armed)
            self._armed = None
        self._keep_run()

    def _drop(self, slot: _Slot) -> None:
        if slot.event is not None:  # already queued: it fires, finds nothing, and must not
            self.runtime.make_background(slot.event)  # keep a run going meanwhile

    def _enqueue(self, slot: _Slot) -> None:
        """Put the timer in SimPy's queue under its reserved place (what ``Timeout`` does)."""
        slot.event = _queue_at(self.runtime.env, slot.at_ms, slot.event_id,
                               lambda _event: self._fired(slot))

    def _fired(self, slot: _Slot) -> None:
        if slot is not self._armed:
            return  # replaced by an earlier deadline, or disarmed
        self._armed = None
        self._expire()  # may arm the next timer
        self._keep_run()

    def _start_reaper(self) -> None:
        env = self.runtime.env
        self._reaper = env.timeout(REAPER_INTERVAL_MS)
        self._reaper_ms = env.now + REAPER_INTERVAL_MS  # the time SimPy gives it
        self._reaper_keeps_run = True
        self._reaper.callbacks.append(self._reap)

    def _reap(self, _event: Any) -> None:
        """Queue the armed timer if it is due before the next look; else look again later."""
        self._reaper, self._reaper_ms, self._reaper_keeps_run = None, math.inf, False
        slot = self._armed
        if slot is not None and slot.event is None:
            if slot.at_ms <= self.runtime.env.now + REAPER_INTERVAL_MS:
                self._enqueue(slot)
            else:
                self._start_reaper()
        self._keep_run()

    def _keep_run(self) -> None:
        """The reaper keeps a run going exactly while an armed timer is not in the queue."""
        needed = self._armed is not None and self._armed.event is None
        if self._reaper is not None and needed != self._reaper_keeps_run:
            if needed:
                self.runtime.make_foreground(self._reaper)
            else:
                self.runtime.make_background(self._reaper)
            self._reaper_keeps_run = needed


class TimerQueue:
    """Timers that all fire ``delay_ms`` after they were set, each calling ``expire(task)``
    exactly where ``background_timeout(delay_ms)`` made at ``add`` would have fired, if its
    task still ``waits`` then (Kafka's ``SystemTimer`` with one ``TimerTask`` per
    ``DelayedFetch``).

    Only the first timer whose task still waits is in SimPy's queue; timers before it whose
    task was completed are dropped unseen, since theirs would fire to find nothing. The one in
    the queue may still fire after its task was completed: that costs one event, then the next
    waiting timer goes in. Like the housekeeping timers they replace, these never keep a run
    going.
    """

    def __init__(self, runtime: BrokerRuntime, delay_ms: float, expire: Callable[[Any], None],
                 waits: Callable[[Any], bool]) -> None:
        self.runtime = runtime
        self.delay_ms = delay_ms
        self._expire = expire
        self._waits = waits
        self._timers: deque[tuple[float, int, Any]] = deque()  # (at, event id, task), in order
        self._queued = False  # whether the first timer is in SimPy's queue

    def add(self, task: Any) -> None:
        """Fire ``expire(task)`` in ``delay_ms`` unless ``task`` stops waiting first."""
        env = self.runtime.env
        # the id a Timeout made now would get: its place among the events of its instant
        self._timers.append((env.now + self.delay_ms, next(env._eid), task))
        if not self._queued:
            self._queue_first()

    def _queue_first(self) -> None:
        """Put the first timer whose task still waits in SimPy's queue, in its place."""
        timers = self._timers
        while timers and not self._waits(timers[0][2]):
            timers.popleft()
        if not timers:
            return
        at_ms, event_id, _task = timers[0]
        self.runtime.make_background(_queue_at(self.runtime.env, at_ms, event_id, self._fired))
        self._queued = True

    def _fired(self, _event: Any) -> None:
        self._queued = False
        _at, _id, task = self._timers.popleft()
        if self._waits(task):
            self._expire(task)  # may add a timer, which then queues the first one
        if not self._queued:
            self._queue_first()
