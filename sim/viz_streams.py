"""Figures for the Kafka Streams lesson: pure functions of lesson results that return a ``Figure``.

Like ``sim.viz``: each function draws into a new ``Figure`` (or into ``ax`` when given), never
touches pyplot's global state, and returns the figure.

- :func:`window_timeline`: records on an event-time axis (numbered in the order they arrived,
  out-of-order ones marked, late ones crossed out) above the windows they were counted in, each
  window with its final count and its grace period;
- :func:`task_timeline`: which Streams instance ran each task over time, with the stretches a
  task had no owner (a rebalance) hatched;
- :func:`tasks_table`: ``KafkaStreams.tasks_frame()`` narrow enough for a notebook.

The model never imports this module.
"""

from __future__ import annotations

import re

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from pandas.io.formats.style import Styler

from sim.lessons.streams import WindowRun, no_owner
from sim.streams import SessionWindows, TimeWindows
from sim.viz import compact_table

__all__ = ["task_timeline", "tasks_table", "window_timeline"]

_IN_ORDER = "#4C72B0"
_OUT_OF_ORDER = "#DD8452"
_LATE = "#C44E52"
_WINDOW = "#A1C9F4"
_GRACE = "#D9D9D9"
_INSTANCE_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#8172B3", "#937860", "#DA8BC3")


def _rows_of(counts: pd.DataFrame, windows: TimeWindows | SessionWindows) -> list[int]:
    """The row each window is drawn in: overlapping hopping windows go to separate rows."""
    if isinstance(windows, TimeWindows):
        per = max(1, windows.size_ms // windows.advance_ms)
        return [int(start // windows.advance_ms) % per for start in counts["start"]]
    return [0] * len(counts)


def window_timeline(run: WindowRun, *, title: str | None = None, ax: Axes | None = None,
                    end_ms: int | None = None) -> Figure:
    """Records (top row) and the windows that counted them (rows below), on event time.

    Each record is a dot at its timestamp, labelled with its arrival number: blue in order,
    orange out of order but counted, a red cross when it was late for its windows (dropped and
    counted in ``dropped-records``), red-edged when late for one window but counted in another.
    Each window is a bar ``[start, end)`` labelled with its final count; the grey stretch after
    a time window is its grace period.
    """
    counts = run.counts
    rows = _rows_of(counts, run.windows)
    window_rows = max(rows, default=0) + 1
    if ax is None:
        fig = Figure(figsize=(8.2, 1.5 + 0.42 * (window_rows + 1)), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure  # type: ignore[assignment]
    grace = run.windows.grace_ms if isinstance(run.windows, TimeWindows) else 0
    record_y = window_rows + 0.3
    for start, end, count, row in zip(counts["start"], counts["end"], counts["count"], rows,
                                      strict=True):
        y = window_rows - 1 - row
        width = max(end - start, 150)  # a one-record session still shows
        if grace:
            ax.add_patch(Rectangle((start + width, y - 0.3), grace, 0.6, facecolor=_GRACE,
                                   edgecolor="none"))
        ax.add_patch(Rectangle((start, y - 0.3), width, 0.6, facecolor=_WINDOW,
                               edgecolor="#4C72B0", linewidth=0.8))
        ax.text(start + width / 2, y, f"{count}", ha="center", va="center", fontsize=9,
                fontweight="bold")
    records = run.records
    labelled: list[float] = []  # timestamps of the labels placed above the dots
    partly = False  # a record late for one window and counted in another (hopping)
    for row in records.itertuples(index=False):
        lost = row.dropped and not row.windows
        partly = partly or (row.dropped and not lost)
        color = _LATE if lost else (_OUT_OF_ORDER if row.out_of_order else _IN_ORDER)
        edge = _LATE if row.dropped else color
        ax.plot([row.timestamp], [record_y], marker="X" if lost else "o", color=color,
                markeredgecolor=edge, markeredgewidth=2 if row.dropped else 1, markersize=8,
                linestyle="none")
        crowded = any(abs(row.timestamp - t) < 700 for t in labelled)  # a label already there
        if not crowded:
            labelled.append(row.timestamp)
        ax.annotate(f"#{row.n}", (row.timestamp, record_y), xytext=(0, -15 if crowded else 7),
                    textcoords="offset points", ha="center", fontsize=8, color=color)
    right = end_ms if end_ms is not None else max(
        [*records["timestamp"], *(counts["end"] + grace)], default=1000) + 1000
    # time windows are aligned on the epoch, so their axis starts at 0; sessions start where
    # their records do (the lesson's clicks begin at 10 s: from 0 the left half stayed empty)
    left = 0 if isinstance(run.windows, TimeWindows) or records.empty else max(
        0, int(records["timestamp"].min()) // 2000 * 2000 - 2000)
    ax.set_xlim(left, right)
    ax.set_ylim(-0.7, record_y + 0.9)
    ax.tick_params(axis="y", length=0)
    ax.set_yticks([*[window_rows - 1 - r for r in range(window_rows)], record_y])
    ax.set_yticklabels([*["windows"] + [""] * (window_rows - 1), "records"], fontsize=9)
    ticks = range(left, int(right) + 1, 1000 if right - left <= 12_000 else 2000)
    ax.set_xticks(list(ticks))
    ax.set_xticklabels([f"{t / 1000:g}" for t in ticks], fontsize=8)
    ax.set_xlabel("event time (s)", fontsize=9)
    ax.grid(axis="x", color="#EEEEEE")
    ax.set_axisbelow(True)
    legend = [Line2D([], [], marker="o", color=_IN_ORDER, linestyle="none", label="in order"),
              Line2D([], [], marker="o", color=_OUT_OF_ORDER, linestyle="none",
                     label="out of order, counted"),
              Line2D([], [], marker="X", color=_LATE, linestyle="none",
                     label="late: dropped"),
              *([Line2D([], [], marker="o", color=_OUT_OF_ORDER, markeredgecolor=_LATE,
                        markeredgewidth=2, linestyle="none",
                        label="late for one window, counted in another")] if partly else []),
              Patch(facecolor=_WINDOW, edgecolor="#4C72B0", label="window (final count)")]
    if grace:
        legend.append(Patch(facecolor=_GRACE, label=f"grace ({grace:,} ms)"))
    fig.legend(handles=legend, loc="outside lower center", ncol=min(len(legend), 4), fontsize=8,
               frameon=False)  # five entries on one line were wider than the figure
    heading = title or f"{run.kind} windows: dropped-records = {run.dropped}"
    ax.set_title(heading, fontsize=10, loc="left")
    return fig


def task_timeline(owners: pd.DataFrame, *, marks: dict[str, int] | None = None,
                  end_ms: float | None = None, title: str | None = None,
                  ax: Axes | None = None) -> Figure:
    """Each task's owner over time: one row per task, coloured by instance.

    ``owners`` has one row per stretch a task ran on an instance (``task``, ``instance``,
    ``from_ms``, ``to_ms``), as ``sim.lessons.streams.ownership`` gives it. From time 0, every
    stretch without an owner is hatched (the group forming, a rebalance moving the task);
    ``marks`` (label → ms) are drawn as vertical lines.
    """
    tasks = sorted(owners["task"].unique(), key=lambda t: tuple(int(x) for x in t.split("_")))
    instances = sorted(owners["instance"].unique())
    colors = {name: _INSTANCE_COLORS[i % len(_INSTANCE_COLORS)] for i, name in
              enumerate(instances)}
    if ax is None:
        fig = Figure(figsize=(8.2, 1.3 + 0.32 * len(tasks)), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure  # type: ignore[assignment]
    right = end_ms if end_ms is not None else owners["to_ms"].max()
    gaps = no_owner(owners, 0.0)
    for row, task in enumerate(tasks):
        y = len(tasks) - 1 - row
        mine = owners[owners["task"] == task]
        for name, begin, finish in mine[["instance", "from_ms", "to_ms"]].itertuples(
                index=False, name=None):
            ax.add_patch(Rectangle((begin / 1000, y - 0.35), (finish - begin) / 1000, 0.7,
                                   facecolor=colors[name], edgecolor="none"))
        for begin, finish in gaps[gaps["task"] == task][["from_ms", "to_ms"]].itertuples(
                index=False, name=None):
            ax.add_patch(Rectangle((begin / 1000, y - 0.35), (finish - begin) / 1000, 0.7,
                                   facecolor="white", edgecolor=_LATE, hatch="////",
                                   linewidth=0))
    for label, at in (marks or {}).items():
        ax.axvline(at / 1000, color="#333333", linestyle="--", linewidth=1)
        ax.text(at / 1000, len(tasks) - 0.45, f" {label}", fontsize=8, va="bottom")
    ax.set_xlim(0, right / 1000)
    ax.set_ylim(-0.6, len(tasks) + 0.1)
    ax.set_yticks(range(len(tasks)))
    ax.set_yticklabels(list(reversed(tasks)), fontsize=8)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("simulated time (s)", fontsize=9)
    ax.set_ylabel("task", fontsize=9)
    legend = [Patch(facecolor=colors[n], label=n) for n in instances]
    legend.append(Patch(facecolor="white", edgecolor=_LATE, hatch="////", label="no owner"))
    fig.legend(handles=legend, loc="outside lower center", ncol=len(legend), fontsize=8,
               frameon=False)
    ax.set_title(title or "Which instance runs each task", fontsize=10, loc="left")
    return fig


_PROCESS_ID = re.compile(r"-([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def tasks_table(tasks: pd.DataFrame) -> Styler:
    """``tasks_frame()`` as a :func:`~sim.viz.compact_table`, each default client id
    (``<application.id>-<process UUID>``) cut to the UUID's first eight digits
    (``payments-e5724557``): with the whole UUID the table was 875 pixels, wider than a
    notebook's output."""
    short = tasks["instance"].str.replace(_PROCESS_ID, r"-\1", regex=True)
    return compact_table(tasks.assign(instance=short))
