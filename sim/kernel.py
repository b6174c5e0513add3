"""The kernel: one object that owns simulated time, randomness, the cluster and the trace.

Time is in **milliseconds** (Kafka's configs are in ms). Randomness comes only from the kernel's
seeded ``numpy.random.Generator``; each component gets its own child stream from ``spawn_rng``
in creation order, so the same setup and seed always give the same trace.

Controls for notebooks: ``run(until_ms)``, ``run_until(condition)``, ``step()`` (one SimPy
event) and ``reset()`` (rebuild from the setup function, which is how "step back" works).

A run never hangs: if simulated time stops advancing (more than ``max_steps_per_instant``
events in a row at one instant, a *zero-time livelock* such as a loop that waits 0 ms again
and again), the kernel raises ``SimulationError`` naming the process that keeps resuming.

Brokers keep clocks even when idle (the ISR check every ``replica.lag.time.max.ms / 2``): such
periodic *background* timers come from ``background_timeout`` and fire like any other event, but
they alone never keep ``run()`` without a time (or ``run_until``) going, so that an idle
cluster still ends a run.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from sim.broker.cluster import Cluster
from sim.broker.controller import Controller
from sim.broker.replication import ReplicaManager
from sim.errors import ConfigError, SimulationError
from sim.trace import Trace


class Kernel:
    """Owns a ``simpy.Environment``, a seeded generator, the ``Cluster`` and the ``Trace``.

    Args:
        seed: the run's seed; the same seed and setup give an identical trace.
        brokers: number of brokers in the cluster.
        broker_configs: broker configs applied to every broker (see ``sim.config.BROKER``).
        setup: optional function called with the kernel after every (re)build, which creates
            topics and clients; ``reset()`` calls it again.
    """

    max_steps_per_instant = 100_000
    """Events in a row at one simulated instant before the run counts as a livelock. The
    built-in scenarios need at most a few dozen; raise it on a kernel for a giant group."""

    def __init__(
        self,
        seed: int = 0,
        brokers: int = 3,
        broker_configs: dict[str, Any] | None = None,
        setup: Callable[[Kernel], Any] | None = None,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ConfigError(f"Kernel(seed={seed!r}): a seed is an integer ≥ 0.")
        self.seed = seed
        self._brokers = brokers
        self._broker_configs = broker_configs
        self._setup = setup
        self.clients: list[Any] = []
        self.stop_ms = -math.inf  # while run() runs: when it stops (clients may look ahead)
        self._build()

    def _build(self) -> None:
        self.env = simpy.Environment()
        self.rng = np.random.default_rng(self.seed)
        self.trace = Trace()
        self.clients = []
        self.steps = 0
        self._step_ms, self._step_same = math.nan, 0  # step()'s livelock guard
        self._background = 0  # background timers waiting in the event queue
        self.cluster = Cluster(self._brokers, self.spawn_rng(), self._broker_configs)
        self.cluster.runtime = self
        self.replicas = ReplicaManager(self)
        self.controller = Controller(self, self.replicas)
        if self._setup is not None:
            self._setup(self)

    def __repr__(self) -> str:
        return (f"Kernel(seed={self.seed}, now_ms={self.now_ms:g}, "
                f"brokers={len(self.cluster.brokers)}, topics={list(self.cluster.topics)}, "
                f"events={len(self.trace)})")

    @property
    def now_ms(self) -> float:
        """Simulated time in ms, as a float. Read for nearly every event, so it reads SimPy's
        clock directly (``Environment.now`` is a property around ``_now``)."""
        return float(self.env._now)

    def spawn_rng(self) -> np.random.Generator:
        """A child random stream for one component, independent of the others."""
        return self.rng.spawn(1)[0]

    def background_timeout(self, delay_ms: float) -> simpy.Timeout:
        """A timer for periodic housekeeping that alone does not keep a run going."""
        self._background += 1
        timer = self.env.timeout(delay_ms)
        timer.callbacks.append(self._background_fired)
        return timer

    def make_background(self, timer: simpy.Timeout) -> None:
        """Let a pending ``timer`` that turned out to be moot stop keeping a run going."""
        self._background += 1
        timer.callbacks.append(self._background_fired)

    def make_foreground(self, timer: simpy.Timeout) -> None:
        """Undo ``make_background``: the pending ``timer`` keeps a run going again."""
        timer.callbacks.remove(self._background_fired)
        self._background -= 1

    def _background_fired(self, _event: simpy.Event) -> None:
        self._background -= 1

    def _only_background_left(self) -> bool:
        return len(self.env._queue) <= self._background  # SimPy has no public view of its queue

    def register(self, client: Any) -> None:
        """Called by clients so that the kernel can find and summarise them."""
        self.clients.append(client)

    def run(self, until_ms: float | None = None) -> Kernel:
        """Run until simulated time ``until_ms`` (or until nothing is left to do)."""
        if until_ms is not None and (isinstance(until_ms, bool)
                                     or not isinstance(until_ms, int | float | np.number)
                                     or math.isnan(until_ms)):
            raise SimulationError(f"run(until_ms={until_ms!r}): give a time in ms, or None to "
                                  "run until nothing is left to do.")
        if until_ms == math.inf:
            until_ms = None
        if until_ms is None and any(hasattr(client, "poll") for client in self.clients):
            raise SimulationError(
                "Consumers poll forever, so this run would never end: give a time, e.g. "
                "kernel.run(until_ms=kernel.now_ms + 10_000)."
            )
        if until_ms is not None and until_ms < self.env.now:
            raise SimulationError(
                f"Cannot run until {until_ms} ms: the simulation is already at {self.now_ms} ms. "
                "Use reset() to start again."
            )
        env = self.env
        limit = simpy.core.Infinity if until_ms is None else until_ms
        self.stop_ms = limit
        last_ms, same, max_same = math.nan, 0, self.max_steps_per_instant  # livelock guard
        try:
            while (next_ms := env.peek()) != simpy.core.Infinity and next_ms <= limit:
                if until_ms is None and self._only_background_left():
                    break  # nothing but housekeeping left: the run is over
                if next_ms != last_ms:
                    last_ms, same = next_ms, 1
                elif (same := same + 1) > max_same:
                    self._livelock(next_ms)
                env.step()
                self.steps += 1
        finally:
            self.stop_ms = -math.inf
        if until_ms is not None and self.env.now < until_ms:
            # move an idle clock forward with an event of its own (SimPy's run(until=...) would
            # leave its spent stop event queued); it is not counted as a step
            self.env.timeout(until_ms - self.env.now)
            self.env.step()
        return self

    def next_event_ms(self, passed_over: Callable[[simpy.Event], bool]) -> float:
        """When the next scheduled event happens, not counting those ``passed_over`` says to.

        Reads SimPy's event queue, a heap of ``(time, priority, id, event)``: an event's
        children are never earlier, so only passed-over events have their children visited.
        """
        queue = self.env._queue  # SimPy has no public view of its queue
        best = math.inf
        todo = [0]
        while todo:
            k = todo.pop()
            if k < len(queue) and queue[k][0] < best:
                if passed_over(queue[k][3]):
                    todo += (2 * k + 1, 2 * k + 2)
                else:
                    best = queue[k][0]
        return best

    def run_until(self, condition: Callable[[Kernel], bool], max_ms: float = float("inf")) -> bool:
        """Step until ``condition(kernel)`` holds; False if time ran out or nothing was left."""
        while not condition(self):
            nxt = self.env.peek()
            if nxt == simpy.core.Infinity or nxt > max_ms or (
                    max_ms == float("inf") and self._only_background_left()):
                return False
            self._count_step(nxt)
            self.env.step()
            self.steps += 1
        return True

    def step(self) -> bool:
        """Process exactly one event; False when there is none left (but background timers)."""
        next_ms = self.env.peek()
        if next_ms == simpy.core.Infinity or self._only_background_left():
            return False
        self._count_step(next_ms)
        self.env.step()
        self.steps += 1
        return True

    def _count_step(self, next_ms: float) -> None:
        """The livelock guard of step() and run_until(), as in run()."""
        if next_ms != self._step_ms:
            self._step_ms, self._step_same = next_ms, 1
        else:
            self._step_same += 1
            if self._step_same > self.max_steps_per_instant:
                self._livelock(next_ms)

    def reset(self) -> Kernel:
        """Start again from time 0 with the same seed and setup."""
        self._build()
        return self

    # -- the livelock guard ------------------------------------------------------------------

    def _livelock(self, at_ms: float, sample: int = 1000) -> None:
        """Raise ``SimulationError`` for time stuck at ``at_ms``, naming who keeps resuming.

        Steps up to ``sample`` more events and names the process resumed most often (by its
        chain of generators and the client that owns it), else the most frequent callback.
        """
        processes: Counter[str] = Counter()
        callbacks: Counter[str] = Counter()
        env = self.env
        for _ in range(sample):
            if env.peek() != at_ms:
                break
            for callback in env._queue[0][3].callbacks or ():  # the event step() processes next
                is_process = isinstance(getattr(callback, "__self__", None), simpy.Process)
                (processes if is_process else callbacks)[_describe(callback)] += 1
            env.step()
        seen = processes or callbacks
        culprit = seen.most_common(1)[0][0] if seen else "no process (the queue drained)"
        raise SimulationError(
            f"Simulated time stopped at {at_ms:g} ms: more than {self.max_steps_per_instant:,} "
            f"events in a row happened at that instant (a zero-time livelock). The one that "
            f"keeps resuming is {culprit}: a loop there waits 0 ms again and again. Fix its "
            "time comparison (compare one way only), or raise kernel.max_steps_per_instant if "
            "this many events at one instant are real.")


def _describe(callback: Callable[..., Any]) -> str:
    """A SimPy callback in words: ``process Owner.method → Owner.method (of client-id)``."""
    target = getattr(callback, "__self__", None)
    generator = getattr(target, "_generator", None)
    if isinstance(target, simpy.Process) and generator is not None:
        names, owner = [], ""
        while generator is not None:
            names.append(generator.gi_code.co_qualname)
            frame_self = (generator.gi_frame.f_locals.get("self")
                          if generator.gi_frame is not None else None)
            owner = _owner(frame_self) or owner
            generator = generator.gi_yieldfrom
        return f"process {' → '.join(names)}" + (f" (of {owner})" if owner else "")
    name = getattr(callback, "__qualname__", repr(callback))
    cells = getattr(callback, "__closure__", None) or ()
    owners = [_owner(cell.cell_contents) for cell in cells if _has_contents(cell)]
    owner = next((o for o in owners if o), "")
    return f"callback {name}" + (f" (of {owner})" if owner else "")


def _owner(obj: Any) -> str:
    """The client id of a client, or of the consumer a coordinator belongs to."""
    for candidate in (obj, getattr(obj, "consumer", None)):
        client_id = getattr(candidate, "client_id", None)
        if isinstance(client_id, str) and client_id:
            return client_id
    return ""


def _has_contents(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises ValueError
    except ValueError:
        return False
    return True


def kernel_of(owner: Any, client: str) -> Kernel:
    """The kernel a client runs on: a ``Kernel``, or anything holding one as ``.kernel`` (a
    scenario, a lesson's experiment). Anything else is a one-line ``ConfigError``."""
    kernel = getattr(owner, "kernel", owner)
    if not isinstance(kernel, Kernel):
        raise ConfigError(f"{client}(kernel, config): the first argument is the lab's Kernel, "
                          f"e.g. {client}(Kernel(seed=1), {{...}}), but got {owner!r}.")
    return kernel
