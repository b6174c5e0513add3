"""Figures for the consumer-groups lesson: pure functions of DataFrames that return a ``Figure``.

Like ``sim.viz``: each function draws into a new ``Figure`` (or into ``ax`` when given), never
touches pyplot's global state, and returns the figure. The frames come from
``sim.lessons.groups`` and ``sim.consumer.metrics``. ``header`` (when given) is the line naming
the Kafka version and the key consumer configs; it is drawn above the figure.

- :func:`assignment_grid`: who owns which partition, one panel per assignor (and per step);
- :func:`lag_plot` / :func:`lag_plots`: lag per partition and for the group, over time;
- :func:`rebalance_timeline` / :func:`rebalance_timelines`: each partition's owners over time,
  with the stretches it had none (the rebalance pauses) marked;
- :func:`delivery_plot` / :func:`delivery_plots`: the offsets each consumer processed around a
  crash, with the skipped and processed-twice ranges the audit found.

The model never imports this module.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

__all__ = [
    "assignment_grid",
    "consumer_color",
    "delivery_plot",
    "delivery_plots",
    "lag_plot",
    "lag_plots",
    "rebalance_timeline",
    "rebalance_timelines",
]

_PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C",
            "#CCB974", "#64B5CD", "#C44E52")
_TOPIC_COLORS = ("#A1C9F4", "#FFB482", "#8DE5A1", "#D0BBFF", "#DEBB9B", "#FAB0E4")
_PAUSE = "#C44E52"
_TWICE = "#DD8452"
_HEADER_SIZE = 8
_OUTPUT_WIDTH_IN = 8.2
"""The widest figure a notebook shows at the size it was drawn: a JupyterLab output is 848
pixels wide, and an inline figure has 100 dots per inch plus a 0.1-inch margin each side
(``bbox_inches="tight"``). A wider one is shrunk to fit, and its labels with it (three delivery
panels side by side, 13.8 inches, came out at 61 %; 8.4 inches still came out at 851 pixels)."""


_LABEL_BOX = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none",
              "alpha": 0.85}
"""Behind a label that sits on data, so that points and lines never cross its text."""


def consumer_color(index: int) -> str:
    """The colour of the ``index``-th consumer (in order of appearance)."""
    return _PALETTE[int(index) % len(_PALETTE)]


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _header(fig: Figure, header: str | None) -> None:
    """The Kafka version and configs line on top, wrapped to the figure's width."""
    if header:
        width = max(50, int(fig.get_figwidth() * 17))
        fig.suptitle(textwrap.fill(header, width=width), fontsize=_HEADER_SIZE, color="#333333")


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


# --- Assignments ----------------------------------------------------------------------------------


def _assignment_panel(ax: Axes, frame: pd.DataFrame, members: list[str],
                      topic_colors: Mapping[str, str], widest: int) -> None:
    """One assignor: a row per member, a box per partition it owns (moved ones edged red)."""
    for row, member in enumerate(members):
        y = len(members) - 1 - row
        mine = frame[(frame["member"] == member) & (frame["partition"] >= 0)]
        mine = mine.sort_values(["topic", "partition"])
        if mine.empty:
            ax.text(0.1, y, "idle", va="center", fontsize=8, color="grey", style="italic")
        for i, part in enumerate(mine.itertuples(index=False)):
            moved = bool(getattr(part, "moved", False))
            ax.add_patch(Rectangle((i + 0.05, y - 0.38), 0.9, 0.76,
                                   facecolor=topic_colors[str(part.topic)],
                                   edgecolor=_PAUSE if moved else "white",
                                   linewidth=2.2 if moved else 0.8))
            ax.text(i + 0.5, y, f"{part.topic}-{part.partition}", ha="center", va="center",
                    fontsize=7 if widest <= 6 else 5.5)
    ax.set_xlim(0, max(widest, 1))
    ax.set_ylim(-0.6, len(members) - 0.4)
    ax.set_yticks(range(len(members)), list(reversed(members)))
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)


def assignment_grid(frame: pd.DataFrame, *, header: str | None = None,
                    title: str | None = None) -> Figure:
    """Who owns which partition: one panel per assignor, one row of panels per step.

    Args:
        frame: ``sim.lessons.groups.assignment_frame`` (columns assignor, member, topic, partition;
            partition -1 marks an idle member) or ``sim.lessons.groups.steps_frame`` (adds ``step``
            and ``moved``: partitions that changed owner in that step get a red edge).
        header: the Kafka version and configs line, drawn on top.
    """
    steps = list(dict.fromkeys(frame["step"])) if "step" in frame else [None]
    assignors = list(dict.fromkeys(frame["assignor"]))
    topics = sorted(t for t in frame["topic"].dropna().unique())
    topic_colors = {t: _TOPIC_COLORS[i % len(_TOPIC_COLORS)] for i, t in enumerate(topics)}
    owned = frame[frame["partition"] >= 0]
    keys = ["step", "assignor", "member"] if "step" in frame else ["assignor", "member"]
    counts = owned.groupby(keys).size()
    widest = int(counts.max()) if len(counts) else 1
    most_members = max(
        (frame[frame["step"] == s] if s is not None else frame)["member"].nunique()
        for s in steps) if len(frame) else 1
    rows, cols = max(len(steps), 1), max(len(assignors), 1)
    fig = Figure(figsize=(min(max(2.2, 0.42 * widest + 0.9) * cols, _OUTPUT_WIDTH_IN),
                          (0.32 * most_members + 0.75) * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for r, step in enumerate(steps):
        part = frame if step is None else frame[frame["step"] == step]
        for c, assignor in enumerate(assignors):
            ax = axes[r][c]
            mine = part[part["assignor"] == assignor]
            members = list(dict.fromkeys(mine["member"]))
            if not members:
                _empty(ax, "no members")
                continue
            _assignment_panel(ax, mine, members, topic_colors, widest)
            if r == 0:
                ax.set_title(assignor, fontsize=10)
            if c == 0 and step is not None:
                ax.set_ylabel(str(step), fontsize=9)
    handles = [Patch(facecolor=color, label=topic) for topic, color in topic_colors.items()]
    if "moved" in frame and frame["moved"].any():
        handles.append(Patch(facecolor="white", edgecolor=_PAUSE, linewidth=2,
                             label="moved in this step"))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 7),
                   fontsize=8, frameon=False)
    if title:
        fig.supxlabel(title, fontsize=9)
    _header(fig, header)
    return fig


# --- Lag ------------------------------------------------------------------------------------------


def lag_plot(lag: pd.DataFrame, *, marks: Mapping[str, float] | None = None,
             header: str | None = None, title: str | None = None, ax: Axes | None = None,
             ymax: float | None = None) -> Figure:
    """Lag over time: one thin line per partition and the group's total in bold.

    Args:
        lag: per partition over time (columns time_ms, topic, partition, lag, consumer_lag),
            e.g. ``LagRun.lag``. The dashed line is the total of ``consumer_lag``
            (high watermark − position), which drops as soon as a poll returns records.
        marks: label → time in ms, drawn as dotted vertical lines (a consumer joins, …).
        ymax: upper limit of the y axis (to compare panels).
    """
    fig, ax = _axes(ax, (7, 3.2))
    if lag.empty:
        _empty(ax, "no lag data")
        return fig
    for i, ((topic, partition), part) in enumerate(lag.groupby(["topic", "partition"])):
        ax.plot(part["time_ms"] / 1000, part["lag"], color=consumer_color(i), linewidth=0.9,
                alpha=0.8, label=f"{topic}-{partition}")
    total = lag.groupby("time_ms", as_index=False)[["lag", "consumer_lag"]].sum()
    ax.plot(total["time_ms"] / 1000, total["lag"], color="black", linewidth=2,
            label="group total")
    ax.plot(total["time_ms"] / 1000, total["consumer_lag"], color="black", linewidth=1,
            linestyle="--", label="total, by position")
    for label, at_ms in (marks or {}).items():
        ax.axvline(at_ms / 1000, color="grey", linestyle=":", linewidth=1.2)
        ax.annotate(label, (at_ms / 1000, 1), xycoords=("data", "axes fraction"),
                    xytext=(3, -10), textcoords="offset points", fontsize=8, color="#333333",
                    bbox=_LABEL_BOX)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("lag (records)")
    ax.set_ylim(0, ymax if ymax is not None else max(float(total["lag"].max()) * 1.1, 10.0))
    ax.legend(fontsize=7, loc="upper left", ncols=2, framealpha=0.8)
    ax.set_title(title if title is not None else "lag: high watermark − committed offset")
    _header(fig, header)
    return fig


def lag_plots(runs: Mapping[str, pd.DataFrame], *, header: str | None = None,
              marks: Mapping[str, float] | None = None) -> Figure:
    """One :func:`lag_plot` per named run, side by side on a shared y axis, together no wider
    than a notebook output."""
    n = max(len(runs), 1)
    fig = Figure(figsize=(min(5.2 * n, _OUTPUT_WIDTH_IN), 3.4), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    peak = max((float(f.groupby("time_ms")["lag"].sum().max()) for f in runs.values()
                if not f.empty), default=10.0)
    for ax, (name, frame) in zip(axes, runs.items(), strict=False):
        lag_plot(frame, ax=ax, title=name, marks=marks, ymax=max(peak * 1.1, 10.0))
    _header(fig, header)
    return fig


# --- Rebalance pauses -----------------------------------------------------------------------------


def _consumer_colors(names: list[str]) -> dict[str, str]:
    return {name: consumer_color(i) for i, name in enumerate(names)}


def rebalance_timeline(timeline: pd.DataFrame, pauses: pd.DataFrame, *,
                       end_ms: float | None = None, ax: Axes | None = None,
                       title: str | None = None, header: str | None = None,
                       colors: Mapping[str, str] | None = None) -> Figure:
    """Each partition's owners over time, with the stretches it had none marked in red.

    Args:
        timeline: ``sim.consumer.metrics.assignment_timeline`` (consumer, topic, partition,
            start_ms, end_ms; end NaN = still owned at the end).
        pauses: ``sim.consumer.metrics.rebalance_pauses`` (topic, partition, stopped_ms,
            resumed_ms, pause_ms); each pause is labelled with its length in seconds.
        end_ms: where open intervals end (default: the last time in either frame).
    """
    fig, ax = _axes(ax, (_OUTPUT_WIDTH_IN, 3.2))
    if timeline.empty:
        _empty(ax, "no partition was ever assigned")
        return fig
    times = [timeline["start_ms"].max(), timeline["end_ms"].max(),
             pauses["resumed_ms"].max() if len(pauses) else np.nan]
    end = end_ms if end_ms is not None else float(np.nanmax(times))
    names = sorted(timeline["consumer"].unique())
    palette = dict(colors) if colors else _consumer_colors(names)
    labels = sorted({(t, int(p)) for t, p in zip(timeline["topic"], timeline["partition"],
                                                 strict=True)})
    row = {key: len(labels) - 1 - i for i, key in enumerate(labels)}
    for interval in timeline.itertuples(index=False):
        stop = end if pd.isna(interval.end_ms) else interval.end_ms
        y = row[(interval.topic, int(interval.partition))]
        ax.broken_barh([(interval.start_ms / 1000, (stop - interval.start_ms) / 1000)],
                       (y - 0.35, 0.7), facecolors=palette.get(interval.consumer, "#999999"))
    for pause in pauses.itertuples(index=False):
        y = row.get((pause.topic, int(pause.partition)))
        if y is None:
            continue
        ax.broken_barh([(pause.stopped_ms / 1000, pause.pause_ms / 1000)], (y - 0.35, 0.7),
                       facecolors="white", edgecolors=_PAUSE, hatch="////", linewidth=1)
        if pause.pause_ms >= 200:
            ax.annotate(f"{pause.pause_ms / 1000:.1f} s", (pause.resumed_ms / 1000, y + 0.35),
                        xytext=(2, 0), textcoords="offset points", fontsize=7, color=_PAUSE,
                        va="bottom")
    ax.set_yticks(list(row.values()), [f"{t}-{p}" for t, p in row])
    ax.set_xlim(0, end / 1000)
    ax.set_xlabel("simulated time (s)")
    handles = [Patch(facecolor=palette[n], label=n) for n in names if n in palette]
    handles.append(Patch(facecolor="white", edgecolor=_PAUSE, hatch="////",
                         label="no owner (paused)"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title if title is not None else "partition owners over time")
    _header(fig, header)
    return fig


def rebalance_timelines(runs: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]], *,
                        end_ms: float | None = None, header: str | None = None) -> Figure:
    """One :func:`rebalance_timeline` per named run, stacked on a shared time axis."""
    n = max(len(runs), 1)
    rows = max((f[0][["topic", "partition"]].drop_duplicates().shape[0]
                for f in runs.values()), default=1)
    fig = Figure(figsize=(_OUTPUT_WIDTH_IN, (0.28 * rows + 1.1) * n + 0.4), layout="constrained")
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    names = sorted({c for timeline, _p in runs.values() for c in timeline["consumer"]})
    colors = _consumer_colors(names)
    for ax, (name, (timeline, stops)) in zip(axes, runs.items(), strict=False):
        rebalance_timeline(timeline, stops, end_ms=end_ms, ax=ax, title=name, colors=colors)
    for ax in axes[:-1]:
        ax.set_xlabel("")
    _header(fig, header)
    return fig


# --- Delivery around a crash ----------------------------------------------------------------------


def delivery_plot(processed: pd.DataFrame, anomalies: pd.DataFrame, *, topic: str,
                  partition: int, crash_ms: float | None = None, ax: Axes | None = None,
                  title: str | None = None, header: str | None = None,
                  colors: Mapping[str, str] | None = None, legend: bool = True) -> Figure:
    """Which offsets of one partition each consumer processed when, around a crash.

    Args:
        processed: one row per processed record (consumer, topic, partition, offset,
            processed_ms), e.g. ``sim.lessons.groups.processed_records``.
        anomalies: ``sim.lessons.groups.anomalies`` (kind, topic, partition, first_offset,
            last_offset, count); skipped ranges are shaded red, processed-twice ones orange.
        crash_ms: drawn as a vertical line.
        legend: whether the panel names its consumers (:func:`delivery_plots` names them once,
            below all panels).

    The shaded ranges lie under the points, and each range's label sits in the longest stretch
    of time in which nobody processed a record of the partition, so that it covers none.
    """
    fig, ax = _axes(ax, (6, 3.4))
    mine = processed[(processed["topic"] == topic) & (processed["partition"] == partition)]
    found = anomalies[(anomalies["topic"] == topic) & (anomalies["partition"] == partition)]
    if mine.empty:
        _empty(ax, f"nothing of {topic}-{partition} was processed")
        return fig
    names = sorted(processed["consumer"].unique())
    palette = dict(colors) if colors else _consumer_colors(names)
    low, high = float(mine["offset"].min()), float(mine["offset"].max())
    if len(found):
        low = max(low, float(found["first_offset"].min()) - 300)
        high = min(high, float(found["last_offset"].max()) + 300)
    shown = mine[(mine["offset"] >= low) & (mine["offset"] <= high)]
    for name, part in shown.groupby("consumer", sort=True):
        ax.scatter(part["processed_ms"] / 1000, part["offset"], s=3, zorder=2,
                   color=palette.get(name, "#999999"), label=f"processed by {name}")
    label_x = _widest_gap(shown["processed_ms"].to_numpy(dtype=float) / 1000)
    for entry in found.itertuples(index=False):
        color = _PAUSE if entry.kind == "skipped" else _TWICE
        ax.axhspan(entry.first_offset - 0.5, entry.last_offset + 0.5, color=color, alpha=0.25,
                   zorder=1)
        ax.annotate(f"{entry.count} {entry.kind.replace('-', ' ')}",
                    (label_x, (entry.first_offset + entry.last_offset) / 2),
                    ha="center", va="center", fontsize=8, color=color, fontweight="bold",
                    zorder=5, bbox=_LABEL_BOX)
    if crash_ms is not None:
        ax.axvline(crash_ms / 1000, color="black", linestyle="--", linewidth=1)
        ax.annotate("crash", (crash_ms / 1000, 0.02), xycoords=("data", "axes fraction"),
                    xytext=(3, 0), textcoords="offset points", fontsize=8)
    ax.set_ylim(low - 20, high + 20)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel(f"offset in {topic}-{partition}")
    if legend:
        ax.legend(fontsize=7, loc="best", markerscale=3)
    ax.set_title(title if title is not None else f"processing of {topic}-{partition}")
    _header(fig, header)
    return fig


def _widest_gap(times_s: np.ndarray) -> float:
    """The middle of the longest stretch between two processing times (seconds): in a crash
    run, the time nobody owned the partition."""
    times = np.unique(times_s)
    if len(times) < 2:
        return float(times[0]) if len(times) else 0.0
    i = int(np.argmax(np.diff(times)))
    return float(times[i] + times[i + 1]) / 2


def delivery_plots(runs: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]], *, topic: str,
                   partition: int, crash_ms: float | None = None,
                   header: str | None = None) -> Figure:
    """One :func:`delivery_plot` per named run (e.g. per commit strategy), one above the other
    at a notebook output's width: side by side, three were too wide to read."""
    n = max(len(runs), 1)
    fig = Figure(figsize=(_OUTPUT_WIDTH_IN, 2.5 * n + 0.3 + (0.4 if header else 0.0)),
                 layout="constrained")
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    names = sorted({c for processed, _a in runs.values() for c in processed["consumer"]})
    colors = _consumer_colors(names)
    for ax, (name, (processed, found)) in zip(axes, runs.items(), strict=False):
        delivery_plot(processed, found, topic=topic, partition=partition, crash_ms=crash_ms,
                      ax=ax, title=name, colors=colors, legend=False)
    handles = [Line2D([], [], linestyle="", marker="o", markersize=5, color=colors[name],
                      label=f"processed by {name}") for name in names]
    if handles:  # once, below the panels: inside one, it covered the successor's records
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8,
                   frameon=False)
    _header(fig, header)
    return fig
