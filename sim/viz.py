"""Figures for the lessons: pure functions of DataFrames that return a matplotlib ``Figure``.

Each function takes the frames that ``sim.metrics``, ``sim.lessons`` or the trace produce, draws
into a new ``Figure`` (or into ``ax`` if given, to compose panels) and returns the figure. No
function calls ``plt.show`` or touches pyplot's global state, so a notebook shows a figure by
making it the cell's last expression, and nothing needs closing. The model never imports this
module.

Colours: partitions are coloured by their leader broker (broker 0 = first colour of the cycle, …);
a slow broker is hatched and its label says how much slower it is. In the replication figures a
replica has its broker's colour, the leader a thick black frame, a replica outside the ISR is
hatched and pale, a crashed broker's replica grey, and the high watermark is a red dashed line.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch, Rectangle
from matplotlib.ticker import MaxNLocator

if TYPE_CHECKING:  # jinja2 and pandas' Styler load only when a table is styled
    from pandas.io.formats.style import Styler

__all__ = [
    "OUTPUT_WIDTH_IN",
    "SLOW_EDGE",
    "broker_color",
    "cluster_diagram",
    "compact_table",
    "cumulative_records",
    "figure_png",
    "kafka_overview",
    "key_moves_plot",
    "partition_bars",
    "partition_bars_grid",
    "replication_timeline",
    "replication_view",
]

_PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C",
            "#CCB974", "#64B5CD", "#C44E52")
SLOW_EDGE = "#C44E52"
"""Edge colour of a slow broker's partitions (they are hatched too)."""
_HW_COLOUR = "#C44E52"
_DOWN_COLOUR = "#BBBBBB"
_STATE_COLOURS = {"up": "#1a7f37", "down": "#cf222e", "fenced": "#bc4c00", "isolated": "#8250df"}
_LABEL_BOX = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none",
              "alpha": 0.85}
"""Behind a label that sits on bars or lines, so that they never cross its text."""
OUTPUT_WIDTH_IN = 8.2
"""The widest inline figure a notebook shows at the size drawn: its output is 848 pixels wide,
and the inline backend draws at 100 dpi with a 0.1-inch margin each side."""
PANEL_WIDTH_PX = 840
"""Every panel's figure is drawn this wide, so panels line up and are never upscaled in a
JupyterLab output (narrower outputs shrink the image, keeping its shape)."""


def broker_color(broker: int) -> str:
    """The colour of a broker (and of the partitions it leads)."""
    return _PALETTE[int(broker) % len(_PALETTE)]


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _broker_label(broker: int, slow: Mapping[int, float]) -> str:
    """A legend label for a broker, saying how much slower it is if it is in ``slow``."""
    factor = slow.get(int(broker))
    return f"broker {broker} (slow ×{factor:g})" if factor else f"broker {broker}"


def partition_bars(
    partitions: pd.DataFrame,
    *,
    slow_brokers: Mapping[int, float] | None = None,
    value: str = "records",
    title: str | None = None,
    ax: Axes | None = None,
    legend_inside: bool = False,
) -> Figure:
    """Records per partition as bars coloured by leader broker, with the even share as a line.

    Args:
        partitions: ``sim.metrics.partition_metrics`` (columns partition, leader, records).
        slow_brokers: broker id → slowdown; their partitions are hatched.
        value: the column to draw (``records``, ``bytes`` or ``batches``).
        legend_inside: put the broker legend inside the axes (leaving headroom for it) rather
            than to the right, for figures with a fixed layout.
    """
    fig, ax = _axes(ax, (7, 3.2))
    slow = dict(slow_brokers or {})
    leaders = partitions["leader"].to_numpy()
    heights = partitions[value].to_numpy()
    xs = partitions["partition"].to_numpy()
    bars = ax.bar(xs, heights, color=[broker_color(b) for b in leaders], edgecolor="white")
    for bar, leader in zip(bars, leaders, strict=True):
        if int(leader) in slow:
            bar.set_hatch("//")
            bar.set_edgecolor(SLOW_EDGE)
    if len(partitions):
        even = heights.sum() / len(partitions)
        ax.axhline(even, color="black", linestyle="--", linewidth=1)
        ax.annotate("even share", (xs.max() + 0.4, even), xytext=(2, 2),
                    textcoords="offset points", fontsize=8, ha="right", va="bottom",
                    bbox=_LABEL_BOX, zorder=5)
    ax.set_xticks(xs)
    ax.set_xlabel("partition")
    ax.set_ylabel(value)
    handles = [Patch(facecolor=broker_color(b), label=_broker_label(b, slow),
                     hatch="//" if b in slow else None,
                     edgecolor=SLOW_EDGE if b in slow else "white")
               for b in sorted({int(b) for b in leaders})]
    if handles and legend_inside:
        ax.set_ylim(0, max(float(heights.max()) if len(heights) else 1.0, 1.0) * 1.3)
        ax.legend(handles=handles, fontsize=7, loc="upper right", ncols=min(len(handles), 3),
                  framealpha=0.8)
    elif handles:
        ax.legend(handles=handles, title="leader", fontsize=8, title_fontsize=8,
                  loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title if title is not None else f"{value} per partition")
    return fig


def partition_bars_grid(runs: Mapping[str, pd.DataFrame], *,
                        slow_brokers: Mapping[int, float] | None = None,
                        value: str = "records") -> Figure:
    """One :func:`partition_bars` panel per named run on a shared y axis: side by side for
    one or two runs, two to a row for more (so that four panels stay readable at the width of
    a notebook). The broker legend is drawn once, above the panels."""
    n = max(len(runs), 1)
    cols = n if n <= 2 else 2
    rows = -(-n // cols)
    fig = Figure(figsize=(4.1 * cols, 3.0 * rows + 0.4), layout="constrained")  # 820 px wide
    axes = fig.subplots(rows, cols, sharey=True, squeeze=False).ravel()
    handles: list = []
    for ax, (name, frame) in zip(axes, runs.items(), strict=False):
        partition_bars(frame, slow_brokers=slow_brokers, value=value, title=name, ax=ax)
        legend = ax.get_legend()
        if legend is not None:
            handles = handles or list(legend.legend_handles)
            legend.remove()
    for ax in axes[len(runs):]:
        fig.delaxes(ax)  # an odd number of runs leaves one slot empty
    if handles:
        fig.legend(handles=handles, loc="outside upper center", ncols=len(handles),
                   fontsize=8, frameon=False)
    return fig


def cumulative_records(appends: pd.DataFrame, *, ax: Axes | None = None,
                       leaders: Mapping[int, int] | None = None,
                       title: str | None = None) -> Figure:
    """Records appended to each partition over simulated time (from the ``log.append`` trace).

    Args:
        appends: ``kernel.trace.frame(LOG_APPEND)``.
        leaders: partition → leader broker, to colour lines by broker (else one colour each).
    """
    fig, ax = _axes(ax, (7, 3.5))
    for i, (partition, group) in enumerate(appends.groupby("partition", sort=True)):
        color = broker_color(leaders[int(partition)]) if leaders else _PALETTE[i % len(_PALETTE)]
        t = np.concatenate([[0.0], group["time_ms"].to_numpy()])
        total = np.concatenate([[0], group["records"].cumsum().to_numpy()])
        ax.step(t, total, where="post", color=color, linewidth=1.2)
        ax.annotate(f"p{int(partition)}", (t[-1], total[-1]), xytext=(2, 0),
                    textcoords="offset points", fontsize=7, color=color, va="center")
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel("records in the log")
    ax.set_title(title if title is not None else "records per partition over time")
    return fig


def cluster_diagram(
    partitions: pd.DataFrame,
    brokers: pd.DataFrame | None = None,
    *,
    time_ms: float | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Brokers as boxes; inside each, the partitions it leads as bars of their log end offset.

    Args:
        partitions: columns topic, partition, leader, log_end_offset (``partition_metrics`` or
            ``lessons.partitions_at``).
        brokers: columns broker and slowdown (``lessons.cluster_state``); slow brokers get a red
            frame and a "slow ×N" label. Without it, brokers are taken from the leaders.
    """
    fig, ax = _axes(ax, (8, 3.2))
    if brokers is not None and len(brokers):
        ids = [int(b) for b in brokers["broker"]]
        slow = {int(b): float(s) for b, s in zip(brokers["broker"], brokers["slowdown"],
                                                  strict=True) if s > 1}
    else:
        ids = sorted({int(b) for b in partitions["leader"]})
        slow = {}
    top = max(int(partitions["log_end_offset"].max()) if len(partitions) else 0, 1)
    width, gap = 1.0, 0.25
    for i, broker in enumerate(ids):
        x0 = i * (width + gap)
        edge = SLOW_EDGE if broker in slow else "#333333"
        ax.add_patch(Rectangle((x0, 0), width, 1.25, fill=False, edgecolor=edge,
                               linewidth=2.5 if broker in slow else 1.2))
        label = f"broker {broker}" + (f"\nslow ×{slow[broker]:g}" if broker in slow else "")
        ax.text(x0 + width / 2, 1.3, label, ha="center", va="bottom", fontsize=10,
                color=edge)
        led = partitions[partitions["leader"] == broker].sort_values(["topic", "partition"])
        n = len(led)
        if n == 0:
            ax.text(x0 + width / 2, 0.6, "no leaders", ha="center", fontsize=8, color="grey")
            continue
        slot = (width - 0.1) / n
        for j, row in enumerate(led.itertuples(index=False)):
            height = row.log_end_offset / top
            bx = x0 + 0.05 + j * slot
            ax.add_patch(Rectangle((bx + slot * 0.1, 0.1), slot * 0.8, max(height, 0.002),
                                   color=broker_color(broker),
                                   hatch="//" if broker in slow else None))
            ax.text(bx + slot / 2, 0.02, f"p{row.partition}", ha="center", va="bottom",
                    fontsize=10 if n <= 4 else 8 if n <= 8 else 6)
            ax.text(bx + slot / 2, 0.12 + height, f"{row.log_end_offset}", ha="center",
                    va="bottom", fontsize=9 if n <= 4 else 7 if n <= 8 else 5,
                    rotation=90 if n > 6 else 0)
    ax.set_xlim(-0.1, len(ids) * (width + gap))
    ax.set_ylim(-0.05, 1.55)  # room for the boxes' bottom edges
    ax.set_axis_off()
    when = f" at {time_ms:.1f} ms" if time_ms is not None else ""
    ax.set_title(title if title is not None else f"log end offset per partition{when}")
    return fig


def key_moves_plot(table: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Fraction of keys that change partition for each new partition count.

    Args:
        table: ``lessons.moved_fractions`` (columns new_partitions, moved_fraction,
            expected_fraction, old_partitions).
    """
    fig, ax = _axes(ax, (7, 3.2))
    xs = np.arange(len(table))
    ax.bar(xs, table["moved_fraction"], color="#DD8452", label="keys that moved")
    ax.scatter(xs, table["expected_fraction"], color="black", marker="_", s=400, zorder=3,
               label="1 − min(N, M) / lcm(N, M)")
    ax.set_xticks(xs, [str(m) for m in table["new_partitions"]])
    old = int(table["old_partitions"].iloc[0]) if len(table) else 0
    ax.set_xlabel(f"new partition count (was {old})")
    ax.set_ylabel("fraction of keys moved")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("keys that change partition when the partition count changes")
    return fig


def _titled(ax: Axes, title: str, header: str | None) -> None:
    """A title, with the line of configs in force wrapped underneath in small print."""
    if header:
        title = title + "\n" + "\n".join(textwrap.wrap(header, 100))
    ax.set_title(title, fontsize=8 if header else None)


def replication_view(
    snapshot: pd.DataFrame,
    *,
    time_ms: float | None = None,
    header: str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Each partition's replicas as bars of their log end offset, with the high watermark.

    Under each bar: its broker, its role and the broker's state (up, down, fenced, isolated).
    Above each partition: its leader, leader epoch and ISR.

    Args:
        snapshot: ``lessons.replication_snapshot`` (one row per replica).
        header: the line of configs in force (``lessons.config_header(kernel, "replication")``).
    """
    fig, ax = _axes(ax, (OUTPUT_WIDTH_IN, 4.2))
    top = max(int(snapshot["log_end_offset"].max()) if len(snapshot) else 0, 1)
    ticks: list[float] = []
    labels: list[str] = []
    states: list[str] = []
    x = 0.0
    for (topic, partition), rows in snapshot.groupby(["topic", "partition"], sort=True):
        xs = x + np.arange(len(rows))
        for xi, row in zip(xs, rows.itertuples(index=False), strict=True):
            leader = row.role == "leader"
            ax.bar(xi, row.log_end_offset, width=0.75,
                   color=broker_color(row.broker) if row.alive else _DOWN_COLOUR,
                   alpha=1.0 if row.in_isr else 0.45, hatch=None if row.in_isr else "//",
                   edgecolor="black" if leader else "white", linewidth=2.2 if leader else 0.8)
            ax.text(xi, row.log_end_offset + top * 0.02, f"{row.log_end_offset:,}",
                    ha="center", va="bottom", fontsize=8)
            ticks.append(float(xi))
            zombie = " (thinks it leads)" if row.believes_leader and not leader else ""
            labels.append(f"broker {row.broker}\n{row.role}{zombie}\n{row.broker_state}")
            states.append(row.broker_state)
        hw = int(rows["high_watermark"].iloc[0])
        ax.hlines(hw, xs[0] - 0.45, xs[-1] + 0.45, colors=_HW_COLOUR, linestyles="--",
                  linewidth=1.6)
        ax.annotate(f"HW {hw:,}", (xs[-1] + 0.45, hw), xytext=(2, 0),
                    textcoords="offset points", fontsize=8, color=_HW_COLOUR, va="center",
                    bbox=_LABEL_BOX)
        first = rows.iloc[0]
        isr = [int(b) for b in rows.loc[rows["in_isr"], "broker"]]
        who = f"leader {first['leader']}" if first["leader"] >= 0 else "OFFLINE (no leader)"
        ax.text(float(xs.mean()), top * 1.13, f"{topic}-{partition} · {who} · epoch "
                f"{first['leader_epoch']} · ISR {isr}", ha="center", fontsize=9)
        x = float(xs[-1]) + 2.0
    ax.set_xticks(ticks, labels, fontsize=8)
    for tick, state in zip(ax.get_xticklabels(), states, strict=True):
        tick.set_color(_STATE_COLOURS.get(state, "black"))
    ax.set_xlim(-0.7, max(x - 1.0, 1.0))
    ax.set_ylim(0, top * 1.25)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # offsets are whole numbers
    ax.set_ylabel("log end offset")
    handles = [Patch(facecolor="white", edgecolor="black", linewidth=2.2, label="leader"),
               Patch(facecolor="#999999", alpha=0.45, hatch="//", edgecolor="white",
                     label="not in ISR"),
               Patch(facecolor=_DOWN_COLOUR, label="broker down"),
               Line2D([], [], color=_HW_COLOUR, linestyle="--", label="high watermark")]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    when = f" at {time_ms:,.1f} ms" if time_ms is not None else ""
    _titled(ax, title if title is not None else f"replicas{when}", header)
    return fig


def replication_timeline(series: pd.DataFrame, marks: pd.DataFrame | None = None, *,
                         ax: Axes | None = None, title: str | None = None) -> Figure:
    """Leaders' log end offsets and the high watermark over time, with the story's events.

    Args:
        series: ``time_ms``, ``series`` ("LEO broker N" or "HW") and ``value``
            (``lessons.replication_timeline``).
        marks: ``time_ms`` and ``label``; drawn as dotted lines, labels of one instant joined.
    """
    fig, ax = _axes(ax, (OUTPUT_WIDTH_IN, 3.4))
    end = float(series["time_ms"].max()) if len(series) else 0.0
    for name, group in series.groupby("series", sort=True):
        t = np.concatenate([group["time_ms"].to_numpy(), [end]])
        v = np.concatenate([group["value"].to_numpy(), group["value"].to_numpy()[-1:]])
        if name == "HW":  # zero until the first advance
            t, v = np.concatenate([[0.0], t]), np.concatenate([[0], v])
            ax.step(t, v, where="post", color=_HW_COLOUR, linestyle="--", linewidth=1.6,
                    label="high watermark", zorder=3)
        else:
            broker = int(str(name).rsplit(" ", 1)[-1])
            ax.step(t, v, where="post", color=broker_color(broker), linewidth=1.4,
                    label=f"log end offset, broker {broker} (as leader)")
    if marks is not None and len(marks):
        for time_ms, labels in _nearby_marks(marks, span_ms=max(end, 1.0)):
            ax.axvline(time_ms, color="#888888", linestyle=":", linewidth=0.8)
            ax.annotate(_joined(labels), (time_ms, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(2, -4), textcoords="offset points", rotation=90, fontsize=7,
                        va="top", color="#555555", bbox=_LABEL_BOX)
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel("offset")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # clear of the marks
    ax.set_title(title if title is not None else "leader's log end offset and high watermark")
    return fig


MARK_GAP = 0.02
"""Marks closer than this share of the run's length share one line and one label."""


def _nearby_marks(marks: pd.DataFrame, span_ms: float) -> list[tuple[float, list[str]]]:
    """The marks grouped by time, with marks closer than :data:`MARK_GAP` of the run merged
    into the group of the first (their labels would otherwise pile up on one spot)."""
    groups: list[tuple[float, list[str]]] = []
    for time_ms, group in marks.sort_values("time_ms", kind="stable").groupby("time_ms",
                                                                             sort=True):
        labels = [str(label) for label in group["label"]]
        if groups and float(time_ms) - groups[-1][0] < MARK_GAP * span_ms:
            groups[-1][1].extend(labels)
        else:
            groups.append((float(time_ms), labels))
    return groups


def _joined(labels: list[str], width: int = 44) -> str:
    """One short line for the labels of one spot: the first in full (or shortened), then how
    many more happened there."""
    first = textwrap.shorten(labels[0], width, placeholder="…")
    more = len(labels) - 1
    return first + (f" (+{more} more)" if more else "")


def _box(ax: Axes, x: float, y: float, w: float, h: float, text: str, color: str) -> None:
    ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor="#333333", alpha=0.9))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12,
                                 color="#333333"))


def kafka_overview(*, brokers: int = 3, partitions: int = 6, ax: Axes | None = None) -> Figure:
    """Kafka in one picture: producers → partitions led by brokers → consumer group."""
    fig, ax = _axes(ax, (OUTPUT_WIDTH_IN, 3.4))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.35, 4.4)
    ax.set_axis_off()
    for i, name in enumerate(("producer A", "producer B")):
        _box(ax, 0.2, 2.6 - 1.6 * i, 1.6, 0.8, name, "#F2F2F2")
    bw = 4.6 / brokers
    for b in range(brokers):
        x = 2.8 + b * bw
        ax.add_patch(Rectangle((x, 0.3), bw - 0.2, 3.6, fill=False, edgecolor="#333333"))
        ax.text(x + (bw - 0.2) / 2, 4.0, f"broker {b}", ha="center", fontsize=9)
        mine = [p for p in range(partitions) if p % brokers == b]
        for j, p in enumerate(mine):
            y = 3.1 - j * 0.9
            _box(ax, x + 0.15, y, bw - 0.5, 0.6, f"orders-{p}", broker_color(b))
            for k in range(4):  # records in the log, oldest on the left
                ax.add_patch(Rectangle((x + 0.2 + k * 0.18, y + 0.05), 0.14, 0.12,
                                       facecolor="white", edgecolor="#555555", linewidth=0.5))
    for i, name in enumerate(("consumer 1", "consumer 2")):
        _box(ax, 8.2, 2.6 - 1.6 * i, 1.6, 0.8, name, "#F2F2F2")
    ax.text(9.0, 0.25, "consumer group", ha="center", fontsize=9, style="italic")
    # the clients talk to the cluster (each partition's leader), not to one broker
    ax.add_patch(FancyBboxPatch((2.65, 0.15), 4.75, 4.15, boxstyle="round,pad=0.02",
                                fill=False, edgecolor="#888888", linestyle="--"))
    ax.text(5.0, -0.15, "Kafka cluster", ha="center", fontsize=9, style="italic")
    for i in range(2):
        _arrow(ax, (1.8, 3.0 - 1.6 * i), (2.65, 2.1))
        _arrow(ax, (7.4, 2.1), (8.2, 3.0 - 1.6 * i))
    ax.text(1.0, 3.75, "send(key, value)\n→ partitioner", ha="center", fontsize=9)
    ax.text(9.0, 3.75, "poll()", ha="center", fontsize=9)
    ax.set_title("Kafka in one picture: a topic's partitions spread over brokers")
    return fig


def compact_table(frame: pd.DataFrame) -> Styler:
    """``frame`` shown without its index, numbers to 3 decimals, a blank where a value is
    missing, text at 12 pixels (9 pt) with less padding, and headers that may break after an
    underscore (``latency_`` / ``ms``), so that a wide frame (a trace's thirteen columns, 978
    pixels as a plain DataFrame) fits a notebook's 848 pixels instead of scrolling. Text
    columns (a trace's ``component`` and ``kind``) read from the left: JupyterLab aligns every
    cell right."""
    padding = "padding: 0.3em 0.35em; font-size: 12px"
    text = [name for name, dtype in frame.dtypes.items()
            if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))]
    left = [{"selector": cells, "props": "text-align: left"} for cells in ("th", "td")]
    return (frame.style.hide(axis="index").format(precision=3, na_rep="")
            .format_index(lambda label: str(label).replace("_", "_<wbr>"), axis="columns")
            .set_table_styles([{"selector": "th", "props": padding},
                               {"selector": "td", "props": padding}])
            .set_table_styles(dict.fromkeys(text, left), overwrite=False))


def figure_png(fig: Figure, dpi: float | None = None) -> bytes:
    """The figure as PNG bytes (for an ``ipywidgets.Image``): :data:`PANEL_WIDTH_PX` wide
    unless ``dpi`` is given (within 72–120 dpi, so that text stays readable)."""
    if dpi is None:
        dpi = min(max(PANEL_WIDTH_PX / fig.get_figwidth(), 72.0), 120.0)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
