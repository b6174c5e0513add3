"""The kernel: one object that owns simulated time, randomness, the cluster and the trace.

Time is in **milliseconds** (Kafka's configs are in ms). Randomness comes only from the kernel's
seeded ``numpy.random.Generator``; each component gets its own child stream from ``spawn_rng``
in creation order, so the same setup and seed always give the same trace.

Controls for notebooks: ``run(until_ms)``, ``run_until(condition)``, ``step()`` (one SimPy
event) and ``reset()`` (rebuild from the setup function, which is how "step back" works).

Brokers keep clocks even when idle (the ISR check every ``replica.lag.time.max.ms / 2``): such
periodic *background* timers come from ``background_timeout`` and fire like any other event, but
they alone never keep ``run()`` without a time (or ``run_until``) going, so that an idle
cluster still ends a run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from sim.cluster import Cluster
from sim.controller import Controller
from sim.errors import ConfigError, SimulationError
from sim.replication import ReplicaManager
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
        self._background = 0  # background timers waiting in the event queue
        self.cluster = Cluster(self._brokers, self.spawn_rng(), self._broker_configs)
        self.cluster.kernel = self
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
        return float(self.env.now)

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
        try:
            while (next_ms := env.peek()) != simpy.core.Infinity and next_ms <= limit:
                if until_ms is None and self._only_background_left():
                    break  # nothing but housekeeping left: the run is over
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
            self.env.step()
            self.steps += 1
        return True

    def step(self) -> bool:
        """Process exactly one event; False when there is none left (but background timers)."""
        if self.env.peek() == simpy.core.Infinity or self._only_background_left():
            return False
        self.env.step()
        self.steps += 1
        return True

    def reset(self) -> Kernel:
        """Start again from time 0 with the same seed and setup."""
        self._build()
        return self
