"""The log view: one partition's segments across its replicas and the remote tier.

:func:`log_view` reads a partition as it is now into a :class:`LogView` — plain data: one row
per segment (which replica or tier holds it, its offsets and bytes, whether it is active,
closed or remote) and one row per replica with its log start offset, high watermark, log end
offset, cleaner point (the first dirty offset: below it the log cleaner has compacted) and dirty
ratio (dirty bytes ÷ cleanable bytes, what ``min.cleanable.dirty.ratio`` is compared with).
:func:`log_view_figure` draws it: segments as blocks on an offset axis, one lane per replica and
one for the remote tier, the offsets marked in each lane.

:func:`compaction_figure` draws a log before and after cleaning, one box per offset: the
offsets kept, the gaps the cleaner leaves, tombstones.

:func:`log_view_panel` is the widget: a slider over views taken at several moments of a run
(:func:`snapshots`); its callback :func:`render_snapshot` is a plain function of the views and
the slider's value. While a notebook is graded it builds nothing (``GradingPlaceholder``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sim import config
from sim.broker import remote_log_manager
from sim.broker.log_cleaner import log_to_clean
from sim.widgets.panel import GradingPlaceholder, grading_mode

__all__ = [
    "LogView",
    "compaction_figure",
    "log_view",
    "log_view_figure",
    "log_view_panel",
    "render_snapshot",
    "snapshots",
]

COLORS = {"active": "#f2b134", "closed": "#6aa4d9", "remote": "#7fc97f"}
MARKS = (  # column, label, colour, line style
    ("log_start_offset", "log start offset (on disk)", "black", "-"),
    ("high_watermark", "high watermark", "#c0392b", "--"),
    ("log_end_offset", "log end offset", "#6c3483", ":"),
    ("cleaner_point", "cleaner point", "#1e8449", "-."),
)
REMOTE_LANE = "remote tier"


@dataclass(frozen=True)
class LogView:
    """One partition at one moment (see the module docstring for the columns)."""

    topic: str
    partition: int
    time_ms: float
    segments: pd.DataFrame
    replicas: pd.DataFrame
    log_start_offset: int  # of the whole log, remote tier included
    min_cleanable_dirty_ratio: float | None  # None: not a compacted topic

    @property
    def lanes(self) -> list[str]:
        """The lanes top to bottom: replicas (leader first), then the remote tier if any."""
        lanes = self.replicas["lane"].tolist()
        if (self.segments["lane"] == REMOTE_LANE).any():
            lanes.append(REMOTE_LANE)
        return lanes


def log_view(cluster: Any, topic: str, partition: int, now_ms: float = 0.0) -> LogView:
    """Read ``topic``-``partition`` of ``cluster`` as it is at ``now_ms`` into a LogView."""
    part = cluster.partition(topic, partition)
    topic_config = part.config
    compacted = "compact" in config.cleanup_policies(topic_config)
    order = [part.leader] + [b for b in part.replicas if b != part.leader] \
        if part.leader >= 0 else list(part.replicas)
    seg_rows, rep_rows = [], []
    for broker_id in order:
        log = part.logs[broker_id]
        lane = f"broker {broker_id}" + (" (leader)" if broker_id == part.leader else "")
        for seg in log.segments:
            kind = "active" if seg is log.active_segment else "closed"
            seg_rows.append({"lane": lane, "base_offset": seg.base_offset,
                             "end_offset": seg.end_offset, "size_bytes": seg.size_bytes,
                             "kind": kind, "file": seg.file_name})
        ratio = cleaner_point = None
        if compacted:
            ltc = log_to_clean(log, topic_config, now_ms)
            ratio = round(ltc.cleanable_ratio, 3)
            cleaner_point = ltc.first_dirty_offset
        rep_rows.append({"lane": lane, "broker": broker_id,
                         "log_start_offset": log.log_start_offset,
                         "high_watermark": log.high_watermark,
                         "log_end_offset": log.log_end_offset,
                         "cleaner_point": cleaner_point, "dirty_ratio": ratio,
                         "size_bytes": log.size_bytes})
    state = remote_log_manager.remote_state(cluster, part)
    if state is not None:
        seg_rows.extend({"lane": REMOTE_LANE, "base_offset": seg.base_offset,
                         "end_offset": seg.end_offset + 1, "size_bytes": seg.size_bytes,
                         "kind": "remote", "file": seg.object_name.rsplit("/", 1)[-1]}
                        for seg in state.segments())
    return LogView(topic, partition, float(now_ms), pd.DataFrame(seg_rows),
                   pd.DataFrame(rep_rows), remote_log_manager.log_start_offset(cluster, part),
                   float(topic_config.get("min.cleanable.dirty.ratio", 0.5))
                   if compacted else None)


def _lane_label(view: LogView, lane: str) -> str:
    if lane == REMOTE_LANE:
        return REMOTE_LANE
    row = view.replicas.set_index("lane").loc[lane]
    if row["dirty_ratio"] is None or pd.isna(row["dirty_ratio"]):
        return lane
    return f"{lane}\ndirty ratio {row['dirty_ratio']:.2f}"


def log_view_figure(view: LogView, title: str | None = None, width: float = 8.0) -> Figure:
    """Segments as blocks per lane (active, closed, remote), each replica's log start offset,
    high watermark, log end offset and cleaner point; a legend below the axis."""
    lanes = view.lanes
    fig, ax = plt.subplots(figsize=(width, 1.6 + 0.55 * len(lanes)), layout="constrained")
    lo = min([view.log_start_offset, *view.segments["base_offset"].tolist()])
    hi = max(view.replicas["log_end_offset"].max(), view.segments["end_offset"].max(), lo + 1)
    span = hi - lo
    ys = {lane: len(lanes) - 1 - i for i, lane in enumerate(lanes)}
    for row in view.segments.itertuples():
        y = ys[row.lane]
        w = max(row.end_offset - row.base_offset, span * 0.004)
        ax.barh(y, w, left=row.base_offset, height=0.56, color=COLORS[row.kind],
                edgecolor="black", linewidth=0.6)
        if w / span > 0.07:
            ax.text(row.base_offset + w / 2, y, str(row.base_offset), ha="center",
                    va="center", fontsize=7)
    for row in view.replicas.itertuples():
        y = ys[row.lane]
        for column, _label, colour, style in MARKS:
            value = getattr(row, column)
            if value is None or pd.isna(value):
                continue
            ax.plot([value, value], [y - 0.4, y + 0.4], color=colour, ls=style, lw=1.6)
    ax.set_yticks([ys[lane] for lane in lanes])
    ax.set_yticklabels([_lane_label(view, lane) for lane in lanes], fontsize=8)
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    ax.set_xlim(lo - span * 0.01, hi + span * 0.02)
    ax.set_xlabel("offset", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    handles = [Patch(facecolor=COLORS[k], edgecolor="black", label=f"{k} segment")
               for k in ("closed", "active")]
    if REMOTE_LANE in lanes:
        handles.append(Patch(facecolor=COLORS["remote"], edgecolor="black",
                             label="remote segment"))
    shown = [m for m in MARKS if view.replicas[m[0]].notna().any()]
    handles += [Line2D([], [], color=c, ls=s, lw=1.6, label=label) for _, label, c, s in shown]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=7, frameon=False)
    if title is None:
        title = f"{view.topic}-{view.partition} at {view.time_ms:,.0f} ms"
        if view.log_start_offset < view.replicas["log_start_offset"].min():
            title += f": log start offset {view.log_start_offset} (remote tier)"
        if view.min_cleanable_dirty_ratio is not None:
            title += f", min.cleanable.dirty.ratio {view.min_cleanable_dirty_ratio:g}"
    ax.set_title(title, fontsize=9)
    return fig


def compaction_figure(table: pd.DataFrame, title: str = "compaction: before and after",
                      width: float = 8.0) -> Figure:
    """A log before and after cleaning, one box per offset (a ``compaction`` table: offset,
    key, tombstone, kept and optionally kept_later). Removed offsets are dashed empty boxes:
    the gaps; tombstones are grey, marked ``null``."""
    rows = [("before", None), ("after cleaning", "kept")]
    if "kept_later" in table.columns:
        rows.append(("after a later cleaning", "kept_later"))
    keys = sorted({str(k) for k in table["key"]})
    palette = plt.get_cmap("tab10")
    colour = {k: palette(i % 10) for i, k in enumerate(keys)}
    n = len(table)
    fig, ax = plt.subplots(figsize=(width, 0.75 + 0.72 * len(rows)))
    for r, (_label, column) in enumerate(rows):
        y = len(rows) - 1 - r
        for row in table.itertuples():
            kept = True if column is None else bool(getattr(row, column))
            x = row.offset
            if not kept:
                ax.add_patch(plt.Rectangle((x + 0.06, y - 0.3), 0.88, 0.6, fill=False,
                                           ls="--", lw=0.8, edgecolor="#999999"))
                continue
            face = "#d5d8dc" if row.tombstone else colour[str(row.key)]
            ax.add_patch(plt.Rectangle((x + 0.06, y - 0.3), 0.88, 0.6, facecolor=face,
                                       edgecolor="black", lw=0.7, alpha=0.9))
            text = f"{row.key}\nnull" if row.tombstone else str(row.key)
            ax.text(x + 0.5, y, text, ha="center", va="center", fontsize=8 if n < 25 else 6)
    ax.set_xlim(table["offset"].min() - 0.2, table["offset"].max() + 1.2)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([label for label, _ in reversed(rows)], fontsize=8)
    ax.set_xticks([o + 0.5 for o in table["offset"]])
    ax.set_xticklabels([str(o) for o in table["offset"]], fontsize=7)
    ax.set_xlabel("offset (dashed: a gap left by the cleaner; offsets are never renumbered)",
                  fontsize=8)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def snapshots(kernel: Any, topic: str, partition: int, times_ms: Sequence[float]
              ) -> list[LogView]:
    """Run ``kernel`` to each of ``times_ms`` (increasing) and take a view at each."""
    views = []
    for t in times_ms:
        kernel.run(until_ms=t)
        views.append(log_view(kernel.cluster, topic, partition, kernel.now_ms))
    return views


def render_snapshot(views: Sequence[LogView], index: int) -> Figure:
    """The widget's callback: the figure of view ``index`` (clamped to the views)."""
    if not views:
        raise ValueError("render_snapshot needs at least one view")
    return log_view_figure(views[max(0, min(int(index), len(views) - 1))])


def log_view_panel(views: Sequence[LogView]) -> Any:
    """A slider over ``views`` redrawing the log view (nothing is built while grading)."""
    if grading_mode():
        return GradingPlaceholder("log_view_panel")
    import ipywidgets as widgets

    views = list(views)
    slider = widgets.SelectionSlider(
        options=[(f"{v.time_ms:,.0f} ms", i) for i, v in enumerate(views)], value=0,
        description="time", continuous_update=False, layout=widgets.Layout(width="60%"))

    def show(index: int) -> None:
        render_snapshot(views, index)
        plt.show()

    return widgets.interactive(show, index=slider)
