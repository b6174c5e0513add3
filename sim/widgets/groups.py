"""Widget panels of the consumer-groups lesson: the assignor comparison and the lag panel.

Structure, so that tests need no browser (as in ``sim.widgets.playground``; the lag panel is a
``RunPanel`` like the playground):

- the **assignor panel** keeps an :class:`AssignorState` (the group's members and topics, and
  each assignor's current assignment). Its buttons and sliders call plain functions that
  return a new state: :func:`new_assignor_state`, :func:`add_member`, :func:`remove_member`,
  :func:`change_topics`. :func:`render_assignors` draws the four assignors side by side with
  the partitions that just moved edged in red; :func:`assignor_html` tells how many moved and
  stopped. An impossible request (removing the last member, a 13th member, …) leaves the
  assignment as it was and sets ``message``.
- the **lag panel** runs ``sim.lessons.groups.lag_run`` for its slider values:
  :func:`simulate_lag` ``(values) -> LagResult`` (a ``message`` instead of an exception for a
  bad combination), :func:`render_lag` and :func:`lag_stats_html`.

Both factories, :func:`assignor_panel` and :func:`lag_panel`, build nothing while a notebook
is graded (``KAFKA_LAB_GRADING=1``): they return a ``GradingPlaceholder``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import ipywidgets as widgets
import pandas as pd
from matplotlib.figure import Figure

from sim import viz_groups
from sim.errors import KafkaLabError
from sim.lessons import groups as lg
from sim.records import TopicPartition
from sim.viz import figure_png
from sim.widgets.panel import (
    GradingPlaceholder,
    RunPanel,
    figure_image,
    grading_mode,
    message_html,
    row_html,
    table_html,
)

__all__ = [
    "LAG_DEFAULTS",
    "MAX_MEMBERS",
    "AssignorPanel",
    "AssignorState",
    "LagPanel",
    "LagResult",
    "add_member",
    "assignor_html",
    "assignor_panel",
    "change_topics",
    "lag_panel",
    "lag_stats_html",
    "new_assignor_state",
    "remove_member",
    "render_assignors",
    "render_lag",
    "simulate_lag",
]

MAX_MEMBERS = 10
"""Most members the assignor panel allows (member ids C0…C9 sort like their numbers)."""
MAX_TOPICS = 6
MAX_PARTITIONS = 12
MAX_TOTAL_PARTITIONS = 36  # beyond this the boxes get too small to read


# --- The assignor comparison -------------------------------------------------------------------


@dataclass(frozen=True)
class AssignorState:
    """The group the assignor panel shows, and what each assignor made of its last change.

    ``assignments`` maps each assignor to its current assignment (member → partitions);
    ``changes`` has one row per assignor for the last change (``sim.lessons.groups.rebalance``:
    rounds, moved, stopped, moved_partitions); ``step`` names that change.
    """

    topics: dict[str, int]
    members: tuple[str, ...]
    assignments: dict[str, dict[str, list[TopicPartition]]]
    changes: pd.DataFrame
    step: str
    generation: int = 1
    message: str | None = None
    history: tuple[str, ...] = field(default_factory=tuple)


def _apply(state: AssignorState | None, label: str, members: list[str],
           topics: dict[str, int]) -> AssignorState:
    """Rebalance every assignor from ``state`` (None: a new group) to ``members``/``topics``."""
    generation = state.generation if state is not None else 0
    assignments: dict[str, dict[str, list[TopicPartition]]] = {}
    rows = []
    for strategy in lg.ASSIGNOR_NAMES:
        before = state.assignments[strategy] if state is not None else {}
        result = lg.rebalance(strategy, topics, before, members, generation)
        assignments[strategy] = result.after
        rows.append({"assignor": strategy, "rounds": result.rounds,
                     "moved": len(result.moved), "stopped": len(result.stopped),
                     "moved_partitions": ", ".join(map(str, result.moved)),
                     "assignment": result.after})
    history = (*state.history, label) if state is not None else (label,)
    return AssignorState(dict(topics), tuple(members), assignments, pd.DataFrame(rows), label,
                         generation + 1, None, history)


def _refuse(state: AssignorState, text: str) -> AssignorState:
    return replace(state, message=text)


def _check_topics(topics: int, partitions: int) -> str | None:
    if not 1 <= topics <= MAX_TOPICS or not 1 <= partitions <= MAX_PARTITIONS:
        return (f"Choose 1–{MAX_TOPICS} topics of 1–{MAX_PARTITIONS} partitions; got "
                f"{topics} topics of {partitions}.")
    if topics * partitions > MAX_TOTAL_PARTITIONS:
        return (f"{topics} topics × {partitions} partitions = {topics * partitions} partitions "
                f"is more than this panel draws ({MAX_TOTAL_PARTITIONS}); use fewer.")
    return None


def new_assignor_state(members: int = 3, topics: int = 4, partitions: int = 2
                       ) -> AssignorState:
    """A fresh group of ``members`` (C0, C1, …) reading ``topics`` topics of ``partitions``.

    An invalid request gives the default group with ``message`` saying why.
    """
    problem = _check_topics(topics, partitions)
    if problem is None and not 1 <= members <= MAX_MEMBERS:
        problem = f"A group here has 1–{MAX_MEMBERS} members; got {members}."
    if problem is not None:
        return replace(new_assignor_state(), message=problem)
    names = lg.member_names(members)
    return _apply(None, f"{', '.join(names)} start", names, lg.topics_of(topics, partitions))


def add_member(state: AssignorState) -> AssignorState:
    """A new member joins (the lowest free id C0…C9); every assignor rebalances."""
    if len(state.members) >= MAX_MEMBERS:
        return _refuse(state, f"The panel stops at {MAX_MEMBERS} members; remove one first.")
    name = next(n for n in lg.member_names(MAX_MEMBERS) if n not in state.members)
    members = sorted([*state.members, name], key=lambda m: int(m[1:]))
    return _apply(state, f"{name} joins", members, state.topics)


def remove_member(state: AssignorState, member: str) -> AssignorState:
    """``member`` leaves the group; every assignor rebalances."""
    if member not in state.members:
        return _refuse(state, f"{member!r} is not in the group; members are "
                              f"{', '.join(state.members)}.")
    if len(state.members) == 1:
        return _refuse(state, "That is the last member: a group needs at least one to "
                              "assign partitions to.")
    members = [m for m in state.members if m != member]
    return _apply(state, f"{member} leaves", members, state.topics)


def change_topics(state: AssignorState, topics: int, partitions: int) -> AssignorState:
    """The subscribed topics change (a metadata change also triggers a rebalance)."""
    problem = _check_topics(topics, partitions)
    if problem is not None:
        return _refuse(state, problem)
    new = lg.topics_of(topics, partitions)
    if new == state.topics:
        return replace(state, message=None)
    return _apply(state, f"{topics} topics × {partitions} partitions", list(state.members), new)


def render_assignors(state: AssignorState) -> Figure:
    """The four assignors' current assignments; partitions moved by the last change in red."""
    frame = lg.steps_frame(state.changes.assign(step=state.step))
    return viz_groups.assignment_grid(frame.drop(columns="step"),
                                      header=lg.assignor_header(state.topics, state.members))


def assignor_html(state: AssignorState) -> str:
    """The last change per assignor (moved, stopped, rounds) and any message."""
    table = state.changes[["assignor", "moved", "stopped", "rounds", "moved_partitions"]]
    table = table.rename(columns={"moved_partitions": "partitions that moved"})
    text = (f"<b>Last change: {state.step}</b> (eager assignors stop every partition; "
            "cooperative-sticky stops only what moves, in two rounds)" + table_html(table))
    return (message_html(state.message) if state.message else "") + text


class AssignorPanel(widgets.VBox):
    """Sliders for the group, add/remove buttons, the four assignors drawn side by side."""

    def __init__(self, members: int, topics: int, partitions: int) -> None:
        self.state = new_assignor_state(members, topics, partitions)
        style = {"description_width": "110px"}
        self.members = widgets.IntSlider(value=len(self.state.members), min=1,
                                         max=MAX_MEMBERS, description="members (new group)",
                                         style={"description_width": "160px"},
                                         layout=widgets.Layout(width="390px"),
                                         continuous_update=False)
        self.topics = widgets.IntSlider(value=len(self.state.topics), min=1, max=MAX_TOPICS,
                                        description="topics", style=style,
                                        continuous_update=False)
        self.partitions = widgets.IntSlider(value=next(iter(self.state.topics.values())),
                                            min=1, max=MAX_PARTITIONS,
                                            description="partitions each", style=style,
                                            continuous_update=False)
        self.add = widgets.Button(description="add member", icon="user-plus")
        self.leaving = widgets.Dropdown(options=list(self.state.members),
                                        description="member", style={"description_width":
                                                                     "60px"})
        self.remove = widgets.Button(description="remove member", icon="user-times",
                                     layout=widgets.Layout(width="auto"))
        self.image = figure_image()
        self.report = widgets.HTML()
        title = widgets.HTML("<b>Assignors side by side</b> — the same group, the lab's copies "
                             "of Kafka's four assignors.")
        super().__init__([title, widgets.HBox([self.members, self.topics, self.partitions]),
                          widgets.HBox([self.add, self.leaving, self.remove]), self.image,
                          self.report])
        self.members.observe(self._new_group, names="value")
        self.topics.observe(self._topics, names="value")
        self.partitions.observe(self._topics, names="value")
        self.add.on_click(lambda _b: self.show(add_member(self.state)))
        self.remove.on_click(lambda _b: self.show(remove_member(self.state,
                                                                str(self.leaving.value))))
        self.show(self.state)

    def show(self, state: AssignorState) -> AssignorState:
        """Adopt ``state`` and redraw."""
        self.state = state
        self.image.value = figure_png(render_assignors(state))
        self.report.value = assignor_html(state)
        self.leaving.options = list(state.members)
        return state

    def _new_group(self, _change: Mapping[str, Any]) -> None:
        self.show(new_assignor_state(self.members.value, self.topics.value,
                                     self.partitions.value))

    def _topics(self, _change: Mapping[str, Any]) -> None:
        self.show(change_topics(self.state, self.topics.value, self.partitions.value))


def assignor_panel(members: int = 3, topics: int = 4, partitions: int = 2
                   ) -> AssignorPanel | GradingPlaceholder:
    """The assignor comparison panel, starting with ``members`` on ``topics`` × ``partitions``."""
    if grading_mode():
        return GradingPlaceholder("assignor comparison panel")
    return AssignorPanel(members, topics, partitions)


# --- The lag panel --------------------------------------------------------------------------------


LAG_DEFAULTS: dict[str, Any] = {
    "consumers": 2,
    "max.poll.records": 500,
    "processing_ms": 8.0,
    "rate_per_s": 300,
    "partitions": 6,
    "backlog": 0,
    "max.poll.interval.ms": 300_000,
    "partition.assignment.strategy": "range",
    "duration_ms": 15_000,
}
"""The lag panel's values: Kafka's dotted names for consumer configs, plain names for the rest."""

MAX_CONSUMERS = 12


@dataclass
class LagResult:
    """One lag-panel run: the values used, the header, and either the run or a message."""

    values: dict[str, Any]
    header: str
    run: lg.LagRun | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.run is not None


def _lag_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(LAG_DEFAULTS))
    if unknown:
        raise KafkaLabError(f"Unknown lag panel setting(s) {', '.join(unknown)}; known: "
                            f"{', '.join(LAG_DEFAULTS)}.")
    v = {**LAG_DEFAULTS, **values}
    consumers = int(v["consumers"])
    if not 1 <= consumers <= MAX_CONSUMERS:
        raise KafkaLabError(f"consumers must be 1–{MAX_CONSUMERS} but got {consumers}.")
    if int(v["max.poll.records"]) < 1:
        raise KafkaLabError(f"max.poll.records must be at least 1 but got "
                            f"{v['max.poll.records']} (consumer config).")
    return {"consumers": consumers, "max_poll_records": int(v["max.poll.records"]),
            "processing_ms": float(v["processing_ms"]), "rate_per_s": float(v["rate_per_s"]),
            "partitions": int(v["partitions"]), "backlog": int(v["backlog"]),
            "max_poll_interval_ms": int(v["max.poll.interval.ms"]),
            "strategy": str(v["partition.assignment.strategy"]),
            "duration_ms": float(v["duration_ms"])}


def _lag_header(values: Mapping[str, Any]) -> str:
    """The header from the values alone (used when the run could not be built)."""
    try:
        return lg.config_header({
            "max.poll.records": values.get("max.poll.records"),
            "max.poll.interval.ms": values.get("max.poll.interval.ms"),
            "partition.assignment.strategy": values.get("partition.assignment.strategy"),
            "enable.auto.commit": False})
    except KafkaLabError:
        return f"Kafka {lg.KAFKA_VERSION} consumer, classic group protocol"


def simulate_lag(values: Mapping[str, Any]) -> LagResult:
    """Run the lag panel's simulation for ``values`` (missing ones from :data:`LAG_DEFAULTS`).

    Returns:
        A result with the run, or — for an invalid combination — a ``message`` naming the
        problem and the fix. Never raises for a learner's choice of settings.
    """
    merged = {**LAG_DEFAULTS, **values}
    try:
        run = lg.lag_run(**_lag_settings(values))
    except (KafkaLabError, TypeError, ValueError) as exc:
        return LagResult(merged, _lag_header(merged), message=str(exc))
    return LagResult(merged, run.header, run=run)


def render_lag(result: LagResult, *, header: bool = True) -> Figure:
    """Lag per partition and for the group over the run (or the message, in red).

    Args:
        header: draw the line of configs in force on top (the panel shows it above the
            figure already, so it passes False).
    """
    if result.run is None:
        fig = Figure(figsize=(8, 3))
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, result.message or "no result", ha="center", va="center", wrap=True,
                fontsize=10, color="#C44E52")
        return fig
    v = result.values
    title = (f"{v['consumers']} consumers · {v['rate_per_s']:g} records/s on "
             f"{v['partitions']} partitions · {v['processing_ms']:g} ms per record")
    return viz_groups.lag_plot(result.run.lag, title=title,
                               header=result.header if header else None)


def lag_stats_html(result: LagResult) -> str:
    """Peak and final lag, when it settled, poll timeouts and idle consumers (or the message)."""
    if result.run is None:
        return message_html(result.message or "")
    st = result.run.stats()
    v = result.values
    busy = min(int(v["consumers"]), int(v["partitions"]))  # extra consumers get nothing
    capacity = busy * 1000 / float(v["processing_ms"])
    settled = st["below_at_ms"]  # NaN: the lag was still 100 or more at the end
    row = {"peak lag": int(st["peak_lag"]), "lag at the end": int(st["end_lag"]),
           "lag growth per s": round(st["growth_per_s"], 1),
           "lag < 100 from (s)": "never" if math.isnan(settled) else round(settled / 1000, 1),
           "poll timeouts": st["poll_timeouts"], "idle consumers": st["idle_consumers"],
           "group capacity (records/s)": round(capacity)}
    notes = []
    poll_ms = int(v["max.poll.records"]) * float(v["processing_ms"])
    if poll_ms >= int(v["max.poll.interval.ms"]):
        notes.append(f"A full poll takes {poll_ms:g} ms, not less than max.poll.interval.ms="
                     f"{v['max.poll.interval.ms']}: members are removed from the group "
                     "before they commit.")
    if int(v["consumers"]) > int(v["partitions"]):
        notes.append(f"{v['consumers']} consumers for {v['partitions']} partitions: a "
                     "partition has one consumer per group, so the extra ones sit idle.")
    extra = "".join(f"<div style='color:#8a4b00'>{n}</div>" for n in notes)
    return row_html(row) + extra


def _lag_controls(v: Mapping[str, Any]) -> dict[str, widgets.ValueWidget]:
    style = {"description_width": "170px"}
    layout = widgets.Layout(width="420px")

    def kw(label: str) -> dict[str, Any]:
        return {"description": label, "style": style, "layout": layout,
                "continuous_update": False}

    def options(value: Any, usual: list[Any]) -> list[Any]:
        return sorted({*usual, value})

    return {
        "consumers": widgets.IntSlider(value=v["consumers"], min=1, max=MAX_CONSUMERS,
                                       **kw("consumers")),
        "max.poll.records": widgets.SelectionSlider(
            options=options(v["max.poll.records"], [1, 2, 5, 10, 50, 100, 200, 500, 1000]),
            value=v["max.poll.records"], **kw("max.poll.records")),
        "processing_ms": widgets.FloatSlider(value=v["processing_ms"], min=0.5, max=20,
                                             step=0.5, **kw("processing ms per record")),
        "rate_per_s": widgets.SelectionSlider(
            options=options(v["rate_per_s"], [100, 200, 300, 500, 750, 1000]),
            value=v["rate_per_s"], **kw("records per second")),
        "backlog": widgets.SelectionSlider(options=options(v["backlog"], [0, 1000, 3000, 6000]),
                                           value=v["backlog"], **kw("backlog at the start")),
        "max.poll.interval.ms": widgets.SelectionSlider(
            options=options(v["max.poll.interval.ms"], [3000, 10_000, 60_000, 300_000]),
            value=v["max.poll.interval.ms"], **kw("max.poll.interval.ms")),
    }


class LagPanel(RunPanel):
    """Sliders for consumers, max.poll.records and processing time; the lag they produce."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        merged = {**LAG_DEFAULTS, **values}
        fixed = {k: merged[k] for k in ("partitions", "partition.assignment.strategy",
                                        "duration_ms")}
        title = (f"<b>Lag panel</b> — topic {lg.LAG_TOPIC} with {fixed['partitions']} "
                 f"partitions; each change re-runs {fixed['duration_ms'] / 1000:g} simulated "
                 "seconds.")
        super().__init__(title, _lag_controls(merged), fixed, left=3)
        self.refresh()

    def simulate(self, values: Mapping[str, Any]) -> LagResult:
        return simulate_lag(values)

    def png(self, result: LagResult) -> bytes:
        return figure_png(render_lag(result, header=False))

    def stats_html(self, result: LagResult) -> str:
        return lag_stats_html(result)


def lag_panel(**defaults: Any) -> LagPanel | GradingPlaceholder:
    """The lag panel, starting from :data:`LAG_DEFAULTS` overlaid with ``defaults``.

    Example: ``lag_panel(consumers=3, **{"max.poll.records": 100})``.
    """
    if grading_mode():
        return GradingPlaceholder("lag panel")
    return LagPanel(defaults)
