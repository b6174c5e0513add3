"""The fault panel: break a live cluster with buttons and watch replication react.

Pick a broker, press *crash*, *restart*, *isolate* (cut it off from the other brokers; the
controller and the producer still reach it) or *heal*, or ask for a *preferred leader
election*. Each press applies the fault at the current simulated time and runs the cluster
forward for a while, so you see the controller fence a silent broker after 9 s, elect a new
leader, and the ISR and high watermark follow. The figure is ``viz.replication_view``; under it
the broker metric changes and the latest events of the replication story.

The buttons call plain functions of a :class:`FaultPanelState`, which tests call directly:
:func:`new_fault_state`, :func:`fault_for`, :func:`fire`, :func:`run_forward`,
:func:`reset_faults`, :func:`fault_figure` and :func:`fault_status`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from sim import faults, lessons, viz
from sim.errors import ConfigError, KafkaLabError
from sim.kernel import Kernel
from sim.widgets.panel import (
    GradingPlaceholder,
    busy,
    figure_image,
    grading_mode,
    header_html,
    message_html,
    table_html,
)

__all__ = [
    "FAULT_ACTIONS",
    "FaultPanel",
    "FaultPanelState",
    "fault_figure",
    "fault_for",
    "fault_panel",
    "fault_status",
    "fire",
    "live_cluster",
    "new_fault_state",
    "reset_faults",
    "run_forward",
]

KernelFactory = Callable[[], Kernel]

FAULT_ACTIONS = ("crash", "restart", "isolate", "heal", "preferred election")
"""What the panel's buttons do; all but the preferred election need a broker."""


@dataclass
class FaultPanelState:
    """A live kernel, the faults fired on it so far, and the last message (an error, or None).

    ``history`` holds ``(time_ms, what)`` for every fault fired, in order.
    """

    factory: KernelFactory
    kernel: Kernel
    history: list[tuple[float, str]] = field(default_factory=list)
    message: str | None = None

    @property
    def now_ms(self) -> float:
        return self.kernel.now_ms


def new_fault_state(factory: KernelFactory) -> FaultPanelState:
    """A fault-panel state around a fresh kernel from ``factory()`` at time 0."""
    return FaultPanelState(factory, factory())


def fault_for(kernel: Kernel, action: str, broker: int | None = None) -> faults.Fault:
    """The fault a button stands for.

    ``isolate`` cuts every link between ``broker`` and the other brokers (followers stop
    fetching from it, and it from its leaders); ``heal`` mends exactly those links.

    Raises:
        ConfigError: an unknown action, or a broker that does not exist.
    """
    if action == "preferred election":
        return faults.PreferredLeaderElection()
    if action not in FAULT_ACTIONS:
        raise ConfigError(f"Unknown fault {action!r}; use one of {', '.join(FAULT_ACTIONS)}.")
    brokers = sorted(kernel.cluster.brokers)
    if broker not in brokers:
        raise ConfigError(f"{action}: there is no broker {broker!r}; brokers are {brokers}.")
    others = tuple(b for b in brokers if b != broker)
    if action == "crash":
        return faults.CrashBroker(broker)
    if action == "restart":
        return faults.RestartBroker(broker)
    if action == "isolate":
        return faults.NetworkPartition((broker,), others)
    return faults.HealNetwork((broker,), others)


def run_forward(state: FaultPanelState, ms: float) -> FaultPanelState:
    """Run the cluster ``ms`` further; a stalled simulation becomes a message, not an error."""
    state.message = None
    try:
        lessons.advance(state.kernel, state.kernel.now_ms + max(float(ms), 0.0))
    except KafkaLabError as exc:
        state.message = str(exc)
    return state


def fire(state: FaultPanelState, action: str, broker: int | None = None,
         run_ms: float = 0.0) -> FaultPanelState:
    """Apply a fault now, note it in the history, then run ``run_ms`` further.

    A fault that cannot be applied (a broker that does not exist, a restart of a broker that
    is running, …) leaves a message and changes nothing: nothing is logged as fired.
    """
    try:
        fault = fault_for(state.kernel, action, broker)
        if isinstance(fault, faults.RestartBroker) and state.kernel.cluster.brokers[broker].alive:
            raise ConfigError(f"restart: broker {broker} is running; only a crashed broker "
                              "can be restarted (press crash first).")
        if action == "isolate" and _isolated(state.kernel, broker):
            # cuts add up (one heal mends one cut): a second isolate would need two heals
            raise ConfigError(f"isolate: broker {broker} is cut off from the other brokers "
                              "already (press heal first).")
        fault.apply(state.kernel)
    except KafkaLabError as exc:
        state.message = str(exc)
        return state
    target = "" if action == "preferred election" else f" broker {broker}"
    state.history.append((state.kernel.now_ms, f"{action}{target}"))
    return run_forward(state, run_ms)


def _isolated(kernel: Kernel, broker: int | None) -> bool:
    """Whether every link between ``broker`` and the other brokers is cut."""
    network = kernel.cluster.network
    return all(not network.connected(broker, other) for other in kernel.cluster.brokers
               if other != broker)


def reset_faults(state: FaultPanelState) -> FaultPanelState:
    """A fresh kernel at time 0, with no faults."""
    state.kernel = state.factory()
    state.history.clear()
    state.message = None
    return state


def fault_figure(state: FaultPanelState, *, header: bool = True) -> Figure:
    """The replicas now (``viz.replication_view``), under the line of configs in force
    (unless ``header`` is False: the panel shows that line above the figure already)."""
    kernel = state.kernel
    line = lessons.config_header(kernel, "replication") if header else None
    return viz.replication_view(lessons.replication_snapshot(kernel), time_ms=kernel.now_ms,
                                header=line)


def fault_status(state: FaultPanelState) -> str:
    """One line: the time, what the producer got so far, and the faults fired."""
    outcome = lessons.delivery_outcome(state.kernel)
    fired = ", ".join(f"{what} at {t:,.0f} ms" for t, what in state.history) or "none yet"
    return (f"t = {state.kernel.now_ms:,.0f} ms · records sent {outcome['sent']:,}: "
            f"acknowledged {outcome['acknowledged']:,}, waiting {outcome['waiting']:,}, "
            f"failed {outcome['failed']:,} · faults: {fired}")


class FaultPanel(widgets.VBox):
    """Broker picker, fault buttons, run controls; the replicas, metrics and story below."""

    def __init__(self, factory: KernelFactory, title: str, run_ms: float) -> None:
        self.state = new_fault_state(factory)
        brokers = sorted(self.state.kernel.cluster.brokers)
        self.broker = widgets.Dropdown(options=brokers, value=brokers[0], description="broker",
                                       layout=widgets.Layout(width="160px"))
        self.buttons = {action: widgets.Button(description=action) for action in FAULT_ACTIONS}
        self.run_ms = widgets.IntSlider(value=int(run_ms), min=0, max=30_000, step=500,
                                        description="then run (ms)", continuous_update=False,
                                        style={"description_width": "100px"})
        self.run_button = widgets.Button(description="run ▶", tooltip="run without a fault")
        self.reset_button = widgets.Button(description="reset", tooltip="back to time 0")
        self.header = widgets.HTML()
        self.status = widgets.HTML()
        self.busy = widgets.HTML()
        self.image = figure_image()
        self.metrics = widgets.HTML()
        self.story = widgets.HTML()
        super().__init__([
            widgets.HTML(f"<b>{html.escape(title)}</b>"), self.header,
            widgets.HBox([self.broker, *(self.buttons[a] for a in FAULT_ACTIONS[:4])]),
            widgets.HBox([self.buttons["preferred election"], self.run_ms, self.run_button,
                          self.reset_button]),
            self.status, self.busy, self.image, self.metrics, self.story,
        ])
        for action, button in self.buttons.items():
            button.on_click(lambda _b, action=action: self._fire(action))
        self.run_button.on_click(lambda _b: self._work(lambda: run_forward(
            self.state, self.run_ms.value)))
        self.reset_button.on_click(lambda _b: self._work(lambda: reset_faults(self.state)))
        self._show(run_forward(self.state, run_ms))

    def _fire(self, action: str) -> None:
        broker = None if action == "preferred election" else self.broker.value
        self._work(lambda: fire(self.state, action, broker, self.run_ms.value))

    def _work(self, step: Callable[[], FaultPanelState]) -> None:
        """Run ``step`` under a busy line, then show its state."""
        with busy(self.busy, "running the cluster…"):
            self._show(step())

    def _show(self, state: FaultPanelState) -> None:
        kernel = state.kernel
        self.header.value = header_html(lessons.config_header(kernel, "replication"))
        status = html.escape(fault_status(state))
        self.status.value = status + (message_html(state.message) if state.message else "")
        self.image.value = viz.figure_png(fault_figure(state, header=False))
        # labels break after an underscore, so all ten columns fit the panel's width
        self.metrics.value = lessons.breakable_labels(
            table_html(lessons.broker_metric_changes(kernel)))
        self.story.value = table_html(lessons.replication_events(kernel).tail(8))


def live_cluster(configs: Mapping[str, Any] | None = None) -> KernelFactory:
    """A factory of ``lessons.replication_kernel`` runs with ``configs`` (Kafka's names) and
    two minutes of traffic at 200 records per second — room to explore."""
    chosen = dict(configs or {})

    def factory() -> Kernel:
        return lessons.replication_kernel(chosen, traffic_ms=((0.0, 120_000.0),))

    return factory


def fault_panel(factory: KernelFactory | None = None, *,
                configs: Mapping[str, Any] | None = None, title: str = "Break the cluster",
                run_ms: float = 2000.0) -> FaultPanel | GradingPlaceholder:
    """A fault panel on the cluster ``factory()`` builds, or on :func:`live_cluster`
    ``(configs)`` — e.g. ``fault_panel(configs={"acks": "1"})``.

    Args:
        run_ms: how long each button runs the cluster after applying its fault.
    """
    if grading_mode():
        return GradingPlaceholder(f"fault panel: {title}")
    return FaultPanel(factory or live_cluster(configs), title, run_ms)
