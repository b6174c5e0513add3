"""The stepper: play, pause, step forward or back through any simulation, event by event.

Built from a zero-argument factory that returns a fresh ``Kernel`` (for example
``lambda: scenarios.load("keyed").build()``). Because one seed and one setup always give the
same trace, the stepper's whole state is *how many events have been processed*: stepping back
from event ``n`` means building a fresh kernel and replaying ``n - 1`` events (deterministic
re-execution), and seeking to a time means replaying every event up to it.

The plain functions — :func:`new_state`, :func:`step_forward`, :func:`step_back`,
:func:`seek_time`, :func:`seek_step`, :func:`reset`, :func:`recent_events` — work on a
:class:`StepperState` and are what :func:`stepper`'s buttons call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import pandas as pd
from matplotlib.figure import Figure

from sim import lessons, viz
from sim.kernel import Kernel
from sim.widgets.playground import GradingPlaceholder, grading_mode, header_html, table_html

__all__ = [
    "StepperPanel",
    "StepperState",
    "cluster_figure",
    "new_state",
    "recent_events",
    "reset",
    "seek_step",
    "seek_time",
    "status_text",
    "step_back",
    "step_forward",
    "stepper",
]

KernelFactory = Callable[[], Kernel]


@dataclass
class StepperState:
    """A kernel and the number of events processed since it was built.

    ``total_steps`` and ``end_ms`` describe the whole run (from one probe run to the end), so
    the time slider and the "event n of N" read-out know where the run ends.
    """

    factory: KernelFactory
    kernel: Kernel
    steps: int = 0
    total_steps: int = 0
    end_ms: float = 0.0

    @property
    def now_ms(self) -> float:
        return self.kernel.now_ms

    @property
    def finished(self) -> bool:
        return self.steps >= self.total_steps


def _timeline(factory: KernelFactory) -> tuple[int, float]:
    """Events in the whole run and the time of the last one (one probe run)."""
    kernel = factory()
    steps = 0
    while kernel.step():
        steps += 1
    return steps, kernel.now_ms


def new_state(factory: KernelFactory) -> StepperState:
    """A stepper state at time 0, with the run's length measured by one probe run."""
    total, end_ms = _timeline(factory)
    return StepperState(factory, factory(), 0, total, end_ms)


def _replay(state: StepperState, steps: int) -> StepperState:
    """Rebuild the kernel and process exactly ``steps`` events."""
    state.kernel = state.factory()
    state.steps = 0
    return step_forward(state, steps)


def step_forward(state: StepperState, n: int = 1) -> StepperState:
    """Process up to ``n`` more events (fewer if the run ends)."""
    for _ in range(max(n, 0)):
        if not state.kernel.step():
            break
        state.steps += 1
    return state


def step_back(state: StepperState, n: int = 1) -> StepperState:
    """Go back ``n`` events by deterministic re-execution: rebuild, replay ``steps - n``."""
    return _replay(state, max(state.steps - max(n, 0), 0))


def seek_step(state: StepperState, steps: int) -> StepperState:
    """Go to the moment just after event number ``steps`` (forward, or back by replaying)."""
    steps = max(steps, 0)
    if steps < state.steps:
        return _replay(state, steps)
    return step_forward(state, steps - state.steps)


def seek_time(state: StepperState, time_ms: float) -> StepperState:
    """Go to the last event at or before ``time_ms`` (replaying from the start if earlier)."""
    if time_ms < state.kernel.now_ms:
        state.kernel = state.factory()
        state.steps = 0
    kernel = state.kernel
    while kernel.env.peek() <= time_ms and kernel.step():
        state.steps += 1
    return state


def reset(state: StepperState) -> StepperState:
    """Back to time 0 with a freshly built kernel."""
    return _replay(state, 0)


def recent_events(state: StepperState, n: int = 8) -> pd.DataFrame:
    """The last ``n`` events of the trace, without the columns none of them uses."""
    frame = state.kernel.trace.tail(n)
    return frame.dropna(axis="columns", how="all").reset_index(drop=True)


def status_text(state: StepperState) -> str:
    """"event n of N · t = … ms"."""
    return (f"event {state.steps} of {state.total_steps} · t = {state.now_ms:.3f} ms "
            f"(run ends at {state.end_ms:.1f} ms)")


def cluster_figure(state: StepperState) -> Figure:
    """The cluster diagram at the state's current time."""
    partitions, brokers = lessons.cluster_state(state.kernel)
    return viz.cluster_diagram(partitions, brokers, time_ms=state.now_ms)


class StepperPanel(widgets.VBox):
    """Play/pause, step, step back, reset, speed, a time slider, the last events, the cluster."""

    def __init__(self, factory: KernelFactory, title: str, events: int) -> None:
        self.state = new_state(factory)
        self.events_shown = events
        total = max(self.state.total_steps, 1)
        self.play = widgets.Play(value=0, min=0, max=total, interval=400, description="play")
        self.step_button = widgets.Button(description="step ▶", tooltip="process one event")
        self.back_button = widgets.Button(description="◀ step back",
                                          tooltip="replay all events but the last")
        self.reset_button = widgets.Button(description="reset", tooltip="back to time 0")
        self.speed = widgets.IntSlider(value=1, min=1, max=200, description="events / tick",
                                       continuous_update=False)
        self.time = widgets.FloatSlider(value=0.0, min=0.0, max=max(self.state.end_ms, 1e-3),
                                        step=max(self.state.end_ms / 500, 1e-3),
                                        description="time (ms)", continuous_update=False,
                                        readout_format=".2f",
                                        layout=widgets.Layout(width="600px"))
        self.status = widgets.HTML()
        self.events = widgets.HTML()
        self.image = widgets.Image(format="png")
        self._syncing = False
        header = header_html(lessons.config_header(self.state.kernel))
        super().__init__([
            widgets.HTML(f"<b>{title}</b>"), widgets.HTML(header),
            widgets.HBox([self.play, self.back_button, self.step_button, self.reset_button,
                          self.speed]),
            self.time, self.status, widgets.HBox([self.image, self.events]),
        ])
        self.play.observe(self._tick, names="value")
        self.step_button.on_click(lambda _b: self._apply(step_forward(self.state)))
        self.back_button.on_click(lambda _b: self._apply(step_back(self.state)))
        self.reset_button.on_click(self._reset)
        self.time.observe(self._seek, names="value")
        self._apply(self.state)

    def _tick(self, change: Mapping[str, Any]) -> None:
        if self._syncing or change["new"] == 0:
            return
        step_forward(self.state, self.speed.value)
        if self.state.finished:
            self.play.playing = False
        self._apply(self.state)

    def _seek(self, change: Mapping[str, Any]) -> None:
        if not self._syncing:
            self._apply(seek_time(self.state, float(change["new"])))

    def _reset(self, _button: Any) -> None:
        self.play.playing = False
        self._syncing = True
        self.play.value = 0
        self._syncing = False
        self._apply(reset(self.state))

    def _apply(self, state: StepperState) -> None:
        """Redraw the read-outs for ``state`` without re-triggering the time slider."""
        self._syncing = True
        try:
            self.time.value = min(state.now_ms, self.time.max)
        finally:
            self._syncing = False
        self.status.value = status_text(state)
        self.events.value = table_html(recent_events(state, self.events_shown))
        self.image.value = viz.figure_png(cluster_figure(state))


def stepper(factory: KernelFactory, title: str = "Stepper",
            events: int = 8) -> StepperPanel | GradingPlaceholder:
    """A stepper panel for the simulation that ``factory()`` builds (a fresh kernel per call)."""
    if grading_mode():
        return GradingPlaceholder(f"stepper: {title}")
    return StepperPanel(factory, title, events)
