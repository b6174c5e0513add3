"""The stepper: play, pause, step forward or back through any simulation, event by event.

Built from a zero-argument factory that returns a fresh ``Kernel`` (for example
``lambda: scenarios.load("keyed").build()``). Because one seed and one setup always give the
same trace, the stepper's whole state is *how many events have been processed*: stepping back
from event ``n`` means building a fresh kernel and replaying ``n - 1`` events (deterministic
re-execution), and seeking to a time means replaying every event up to it.

The plain functions — :func:`new_state`, :func:`step_forward`, :func:`step_back`,
:func:`seek_time`, :func:`seek_step`, :func:`seek_event`, :func:`reset`, :func:`recent_events`
— work on a :class:`StepperState` and are what :func:`stepper`'s buttons call.

A stepper shows one of :data:`VIEWS`: ``"cluster"`` (log end offset per partition, inside the
broker that leads it; lessons 00 and 01) or ``"replication"`` (every replica's log end offset,
the high watermark, leaders, ISR and broker states; lesson 02), each with its line of configs in
force and its table of recent events. ``until_ms`` ends a replay at a scenario's duration, and
``bookmarks`` (label → trace ``seq``) add a "go to" list of the run's key events.
:mod:`sim.widgets.streams_stepper` builds on it: one record's way through a Streams topology, and
a store's restore, step by step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import pandas as pd
from matplotlib.figure import Figure

from sim import lessons, viz
from sim.errors import ConfigError
from sim.kernel import Kernel
from sim.widgets.panel import (
    GradingPlaceholder,
    busy,
    figure_image,
    grading_mode,
    header_html,
    number_text,
    table_html,
)

__all__ = [
    "VIEWS",
    "StepperPanel",
    "StepperState",
    "StepperView",
    "cluster_figure",
    "new_state",
    "recent_events",
    "recent_replication_events",
    "replication_figure",
    "reset",
    "seek_event",
    "seek_step",
    "seek_time",
    "status_text",
    "step_back",
    "step_events",
    "step_forward",
    "stepper",
]

KernelFactory = Callable[[], Kernel]


@dataclass
class StepperState:
    """A kernel and the number of events processed since it was built.

    ``total_steps``, ``total_events`` and ``end_ms`` describe the whole run (from one probe run
    to the end, or to ``until_ms``), so the time slider and the "event #n of #N" read-out know
    where the run ends. The read-out, the bookmarks and the event tables all number events by
    the trace's ``seq``; ``steps`` (simulation steps, several per trace event or none) is the
    replay's bookkeeping.
    """

    factory: KernelFactory
    kernel: Kernel
    steps: int = 0
    total_steps: int = 0
    end_ms: float = 0.0
    until_ms: float = math.inf
    total_events: int = 0

    @property
    def events(self) -> int:
        """Trace events written so far (the last one is ``seq`` = events − 1)."""
        return len(self.kernel.trace)

    @property
    def now_ms(self) -> float:
        return self.kernel.now_ms

    @property
    def finished(self) -> bool:
        return self.steps >= self.total_steps


def _timeline(factory: KernelFactory, until_ms: float = math.inf) -> tuple[int, float, int]:
    """Steps in the whole run (up to ``until_ms``), the time of the last, and the trace events
    written (one probe run)."""
    kernel = factory()
    steps = 0
    while kernel.env.peek() <= until_ms and kernel.step():
        steps += 1
    return steps, kernel.now_ms, len(kernel.trace)


def new_state(factory: KernelFactory, until_ms: float | None = None) -> StepperState:
    """A stepper state at time 0, with the run's length measured by one probe run.

    Args:
        until_ms: end the replay at this simulated time (a scenario's ``duration_ms``) rather
            than when no event is left.
    """
    until = math.inf if until_ms is None else float(until_ms)
    total, end_ms, events = _timeline(factory, until)
    return StepperState(factory, factory(), 0, total, end_ms, until, events)


def _replay(state: StepperState, steps: int) -> StepperState:
    """Rebuild the kernel and process exactly ``steps`` events."""
    state.kernel = state.factory()
    state.steps = 0
    return step_forward(state, steps)


def step_forward(state: StepperState, n: int = 1) -> StepperState:
    """Process up to ``n`` more events (fewer if the run ends)."""
    kernel = state.kernel
    for _ in range(max(n, 0)):
        if kernel.env.peek() > state.until_ms or not kernel.step():
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
    while kernel.env.peek() <= min(time_ms, state.until_ms) and kernel.step():
        state.steps += 1
    return state


def seek_event(state: StepperState, seq: int) -> StepperState:
    """Go to the moment just after the step that wrote trace event ``seq`` (replaying if past).

    Several trace events can come from one simulation step; the state stops after that step,
    so event ``seq`` is the last, or among the last, rows of the trace.
    """
    if len(state.kernel.trace) > seq:
        state.kernel = state.factory()
        state.steps = 0
    kernel = state.kernel
    while len(kernel.trace) <= seq and kernel.env.peek() <= state.until_ms and kernel.step():
        state.steps += 1
    return state


def step_events(state: StepperState, n: int) -> StepperState:
    """Move ``n`` trace events forward (or back, for a negative ``n``): forward runs simulation
    steps until ``n`` more events are in the trace; back replays to the last moment at which
    at most events − |n| events were in the trace (a step that wrote several events at once
    is undone whole, so back always goes back), or to time 0."""
    if n >= 0:
        target = state.events + n
        kernel = state.kernel
        while (state.events < target and kernel.env.peek() <= state.until_ms
               and kernel.step()):
            state.steps += 1
        return state
    keep = state.events + n  # events to keep
    if keep <= 0:
        return reset(state)
    probe = state.factory()
    steps = 0
    while probe.step() and len(probe.trace) <= keep:
        steps += 1
    return _replay(state, steps)


def reset(state: StepperState) -> StepperState:
    """Back to time 0 with a freshly built kernel."""
    return _replay(state, 0)


def recent_events(state: StepperState, n: int = 8,
                  kinds: Sequence[str] | None = None) -> pd.DataFrame:
    """The last ``n`` events of the trace (of ``kinds`` only, if given), without the columns
    none of them uses."""
    if kinds is None:
        frame = state.kernel.trace.tail(n)
    else:
        frame = state.kernel.trace.to_frame()
        frame = frame[frame["kind"].isin(kinds)].tail(n) if len(frame) else frame
    frame = frame.dropna(axis="columns", how="all").reset_index(drop=True)
    if "time_ms" in frame:
        frame["time_ms"] = frame["time_ms"].round(3)  # the trace's clock is in µs at most
    return frame


def recent_replication_events(state: StepperState, n: int = 8) -> pd.DataFrame:
    """The last ``n`` events of the replication story (faults, brokers, elections, ISR,
    truncations), one sentence each."""
    return lessons.replication_events(state.kernel).tail(n).reset_index(drop=True)


def status_text(state: StepperState) -> str:
    """"event #n of #N · t = … ms", numbered by the trace's ``seq`` as the event tables and
    bookmarks are."""
    last = f"#{state.events - 1:,}" if state.events else "none yet"
    return (f"event {last} of #{max(state.total_events - 1, 0):,} · "
            f"t = {number_text(float(state.now_ms))} ms "
            f"(run ends at {number_text(float(state.end_ms))} ms)")


def cluster_figure(state: StepperState) -> Figure:
    """The cluster diagram at the state's current time."""
    partitions, brokers = lessons.cluster_state(state.kernel)
    return viz.cluster_diagram(partitions, brokers, time_ms=state.now_ms)


def replication_figure(state: StepperState, *, header: bool = True) -> Figure:
    """Every replica's log end offset, the high watermark, leaders, ISR and broker states now,
    under the line of configs in force (unless ``header`` is False: the stepper panel shows
    that line above the figure already)."""
    kernel = state.kernel
    line = lessons.config_header(kernel, "replication") if header else None
    return viz.replication_view(lessons.replication_snapshot(kernel), time_ms=state.now_ms,
                                header=line)


def _replication_panel_figure(state: StepperState) -> Figure:
    return replication_figure(state, header=False)


@dataclass(frozen=True)
class StepperView:
    """What a stepper draws: a figure, the focus of its config line, and its event table."""

    figure: Callable[[StepperState], Figure]
    header_focus: str
    events: Callable[[StepperState, int], pd.DataFrame]


VIEWS: dict[str, StepperView] = {
    "cluster": StepperView(cluster_figure, "partitioning", recent_events),
    "replication": StepperView(_replication_panel_figure, "replication",
                               recent_replication_events),
}
"""The stepper's views by name."""


class StepperPanel(widgets.VBox):
    """Play/pause, step, step back, reset, speed, a time slider, the cluster, the last events.

    ``header`` replaces the line of configs in force that ``view.header_focus`` names.

    Step ▶, ◀ step back and each tick of play move by "events / tick" trace events. The figure
    is shown at its own size and shape; the event table sits under it in a box of its own that
    scrolls sideways when it is wider than the output.
    """

    def __init__(self, factory: KernelFactory, title: str, events: int, view: StepperView,
                 bookmarks: Mapping[str, int] | None = None,
                 until_ms: float | None = None, header: str | None = None) -> None:
        self.state = new_state(factory, until_ms)
        self.events_shown = events
        self.view = view
        total = max(self.state.total_events, 1)
        self.play = widgets.Play(value=0, min=0, max=total, interval=400, description="play")
        self.step_button = widgets.Button(description="step ▶",
                                          tooltip="process the next events (events / tick)")
        self.back_button = widgets.Button(description="◀ step back",
                                          tooltip="replay all but the last events (events / tick)")
        self.reset_button = widgets.Button(description="reset", tooltip="back to time 0")
        self.speed = widgets.IntSlider(value=1, min=1, max=200, description="events / tick",
                                       continuous_update=False)
        self.time = widgets.FloatSlider(value=0.0, min=0.0, max=max(self.state.end_ms, 1e-3),
                                        step=max(self.state.end_ms / 500, 1e-3),
                                        description="time (ms)", continuous_update=False,
                                        readout_format=",.1f",
                                        layout=widgets.Layout(width="600px", max_width="100%"))
        self.status = widgets.HTML()
        self.busy = widgets.HTML()
        self.events = widgets.HTML(layout=widgets.Layout(max_width="100%"))
        self.image = figure_image()
        self._syncing = False
        if header is None:
            header = lessons.config_header(self.state.kernel, view.header_focus)
        rows: list[widgets.Widget] = [
            widgets.HTML(f"<b>{title}</b>"), widgets.HTML(header_html(header)),
            widgets.HBox([self.play, self.back_button, self.step_button, self.reset_button,
                          self.speed], layout=widgets.Layout(flex_flow="row wrap")),
            self.time]
        self.bookmarks = widgets.Dropdown(options=list((bookmarks or {}).items()),
                                          description="go to", layout=widgets.Layout(
                                              width="600px", max_width="100%"))
        self.go_button = widgets.Button(description="go", tooltip="replay to this event")
        if bookmarks:
            rows.append(widgets.HBox([self.bookmarks, self.go_button]))
        rows += [self.status, self.busy, self.image, self.events]
        super().__init__(rows)
        self.go_button.on_click(self._go)
        self.play.observe(self._tick, names="value")
        self.step_button.on_click(lambda _b: self._move(lambda: step_events(
            self.state, self.speed.value)))
        self.back_button.on_click(lambda _b: self._move(lambda: step_events(
            self.state, -self.speed.value)))
        self.reset_button.on_click(self._reset)
        self.time.observe(self._seek, names="value")
        self._apply(self.state)

    def _tick(self, change: Mapping[str, Any]) -> None:
        if self._syncing or change["new"] == 0:
            return
        step_events(self.state, self.speed.value)
        if self.state.finished:
            self.play.playing = False
        self._apply(self.state)

    def _seek(self, change: Mapping[str, Any]) -> None:
        if not self._syncing:
            self._move(lambda: seek_time(self.state, float(change["new"])))

    def _go(self, _button: Any) -> None:
        if self.bookmarks.value is not None:
            self._move(lambda: seek_event(self.state, int(self.bookmarks.value)))

    def _move(self, move: Callable[[], StepperState]) -> None:
        """Move under a busy line (going back replays from time 0), then redraw."""
        with busy(self.busy, "replaying…"):
            self._apply(move())

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
        self.events.value = table_html(self.view.events(state, self.events_shown))
        self.image.value = viz.figure_png(self.view.figure(state))


def stepper(
    factory: KernelFactory,
    title: str = "Stepper",
    events: int = 8,
    *,
    view: str | StepperView = "cluster",
    bookmarks: Mapping[str, int] | None = None,
    until_ms: float | None = None,
) -> StepperPanel | GradingPlaceholder:
    """A stepper panel for the simulation that ``factory()`` builds (a fresh kernel per call).

    Args:
        view: a name from :data:`VIEWS` (``"cluster"`` or ``"replication"``) or a
            :class:`StepperView` of your own.
        bookmarks: label → trace ``seq`` of events to jump to (``lessons.replication_bookmarks``
            of a finished run of the same factory).
        until_ms: end the replay at this simulated time (a scenario's ``duration_ms``).

    Raises:
        ConfigError: for an unknown view name.
    """
    if isinstance(view, str):
        if view not in VIEWS:
            raise ConfigError(f"Unknown stepper view {view!r}; use one of {', '.join(VIEWS)}.")
        view = VIEWS[view]
    if grading_mode():
        return GradingPlaceholder(f"stepper: {title}")
    return StepperPanel(factory, title, events, view, bookmarks, until_ms)
