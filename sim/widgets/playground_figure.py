"""The playground's figure, kept between runs so that a slider move redraws only the data.

Text is most of what drawing a matplotlib figure costs (every tick label is laid out and
rendered glyph by glyph), and the axes, tick labels and legend of the playground rarely change
between two slider positions. So the figure is drawn in two layers, as matplotlib's blitting
guide does for animations:

- the *frame* — axes, ticks, axis labels and the broker legend — is drawn in full only when the
  partition layout or an axis range has to change, and a copy of its pixels is kept;
- the *data* — bars, histograms, the even-share, mean and percentile lines, their labels and the
  titles — is drawn over that copy on every run.

The axes are chosen to stay put: batch fill is a share of ``batch.size`` (0–100 %), latency is on
a logarithmic axis over fixed decades, and the count axes are rounded up to round numbers and kept
while the new data still fills them well. A learner moving a slider sees bars grow and shrink
against the same scale.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter, MaxNLocator, PercentFormatter
from PIL import Image

from sim import viz

__all__ = ["PlaygroundFigure", "nice_ceiling"]

FIGSIZE = (8.4, 5.6)
DPI = 100
"""840 pixels wide: a notebook output (848 pixels) shows the figure at full size. Records per
partition take the top row; batch fill and latency share the bottom one."""
FILL_BINS = 20
"""Batch fill bins of 5 % of ``batch.size`` each."""
LATENCY_DECADES = (0, 3)
"""The latency axis spans 1 ms to 1 s, widened by whole decades for runs outside it."""
LATENCY_BINS_PER_DECADE = 20
STEPS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
"""Axis tops are one of these times a power of ten."""
SHARE_TOP = 1.35
"""Share axes (0–100 %) end here at most, leaving room for the labels above a full bin."""
REFILL = 0.3
LABEL_BOX = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none",
             "alpha": 0.85}
"""Behind the labels on the data, so that bars and lines never cross their text."""
"""A count axis is kept while the tallest bar reaches at least this share of it."""


def nice_ceiling(value: float) -> float:
    """The smallest of :data:`STEPS` × 10^k (k any integer) at least ``value``; 1 for zero."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    top = next(step * power for step in STEPS if step * power >= value * (1 - 1e-12))
    return float(f"{top:.12g}")  # 0.6, not 0.6000000000000001


def _keep_or_round(current: float | None, needed: float, cap: float = math.inf) -> float:
    """Keep the current axis top while ``needed`` fits under it and fills it well, else round
    up to a step of :data:`STEPS` (at most ``cap``)."""
    if current is not None and REFILL * current <= needed <= current:
        return current
    return min(nice_ceiling(needed), cap)


@dataclass(frozen=True)
class Layout:
    """What the artists depend on: partitions and their leaders, which brokers are slow (by how
    much is in the title), the latency decades. A new layout rebuilds the axes."""

    leaders: tuple[int, ...]
    slow: tuple[int, ...]
    decades: tuple[int, int]


@dataclass(frozen=True)
class Limits:
    """The tops of the three count axes. New limits redraw the frame but keep the artists."""

    records: float
    batches: float
    latency: float


@dataclass
class _Run:
    """The numbers one run contributes to the figure."""

    records: int
    slow: dict[int, float]
    heights: np.ndarray
    fill: np.ndarray  # per stored batch: bytes / batch.size
    mean_records: float
    latency: np.ndarray


class PlaygroundFigure:
    """Records per partition (top), batch fill and latency (bottom) of a playground run.

    ``draw(result)`` updates the figure for a ``PlaygroundResult`` and returns it; ``png(result)``
    also encodes it for an ``ipywidgets.Image``. A panel keeps one figure from run to run: only a
    run that changes the layout or the limits pays for drawing the frame (``frames_drawn``).
    """

    def __init__(self) -> None:
        self.figure = Figure(figsize=FIGSIZE, dpi=DPI)
        self.canvas = FigureCanvasAgg(self.figure)
        grid = self.figure.add_gridspec(2, 2, left=0.1, right=0.975, bottom=0.09, top=0.94,
                                        hspace=0.5, wspace=0.3)
        self.bars_ax = self.figure.add_subplot(grid[0, :])
        self.fill_ax = self.figure.add_subplot(grid[1, 0])
        self.latency_ax = self.figure.add_subplot(grid[1, 1])
        self.message = self.figure.text(0.5, 0.5, "", ha="center", va="center", wrap=True,
                                        fontsize=10, color="#C44E52", visible=False)
        self.layout: Layout | None = None
        self.limits: Limits | None = None
        self.frames_drawn = 0
        self._background: Any = None
        self._animated: list[Artist] = []

    def draw(self, result: Any) -> Figure:
        """Show ``result``: its three panels, or its message if the run could not be built."""
        if result.summary is None:
            self._show_message(result.message or "no result")
            return self.figure
        run = _run(result)
        layout = Layout(tuple(int(b) for b in result.summary.partitions["leader"]),
                        tuple(sorted(run.slow)), _decades(run.latency, self.layout))
        rebuilt = layout != self.layout
        if rebuilt:
            self._build(layout)
        # the two histograms, as shares of all batches and of all records (bins fixed by layout)
        fill = _share(np.histogram(np.minimum(run.fill, 1.0), bins=self._fill_edges)[0])
        latency = _share(np.histogram(run.latency, bins=self._latency_edges)[0])
        limits = self._limits_for(run, fill, latency)
        self._update(run, fill, latency)
        if rebuilt or limits != self.limits or self._background is None:
            self._draw_frame(limits)
        else:
            self.canvas.restore_region(self._background)
        for artist in self._animated:
            artist.axes.draw_artist(artist)
        return self.figure

    def png(self, result: Any) -> bytes:
        """The figure for ``result`` as PNG bytes (fast zlib level: the image is redrawn often)."""
        self.draw(result)
        image = Image.frombuffer("RGBA", self.canvas.get_width_height(),
                                 self.canvas.buffer_rgba())
        out = io.BytesIO()
        image.convert("RGB").save(out, format="png", compress_level=1)
        return out.getvalue()

    # -- the frame -----------------------------------------------------------------------------

    def _show_message(self, text: str) -> None:
        for ax in self.figure.axes:
            ax.set_visible(False)
        self.message.set_text(text)
        self.message.set_visible(True)
        self.layout = self.limits = self._background = None
        self.canvas.draw()

    def _limits_for(self, run: _Run, fill: np.ndarray, latency: np.ndarray) -> Limits:
        """The count axes this run needs: the current ones where the run still fills them."""
        old = self.limits
        return Limits(
            records=_keep_or_round(old and old.records, run.heights.max(initial=0) * 1.3),
            batches=_keep_or_round(old and old.batches, fill.max(initial=0) * 1.25, SHARE_TOP),
            latency=_keep_or_round(old and old.latency, latency.max(initial=0) * 1.35,
                                   SHARE_TOP),
        )

    def _draw_frame(self, limits: Limits) -> None:
        """Draw everything but the data in full, and keep its pixels for the next runs."""
        self.limits = limits
        self.frames_drawn += 1
        self.bars_ax.set_ylim(0, limits.records)
        for ax, top in ((self.fill_ax, limits.batches), (self.latency_ax, limits.latency)):
            ax.set_ylim(0, top)
            ticks = MaxNLocator(6).tick_values(0, min(top, 1.0))
            ax.set_yticks(ticks[ticks <= min(top, 1.0) + 1e-9])  # no share above 100 %
        self.canvas.draw()
        self._background = self.canvas.copy_from_bbox(self.figure.bbox)

    def _build(self, layout: Layout) -> None:
        """Create the axes' artists for ``layout`` (data comes later, in ``_update``)."""
        self.layout = layout
        self.message.set_visible(False)
        for ax in self.figure.axes:
            ax.clear()
            ax.set_visible(True)
        self._build_bars(layout)
        self._build_fill()
        self._build_latency(layout.decades)
        self._animated = [
            *self.bars, self.even, self.even_label, self.bars_ax.title,
            self.fill_steps, self.fill_mean, self.fill_mean_label, self.fill_ax.title,
            self.latency_steps, *(a for _, line, label in self.percentiles for a in (line, label)),
        ]
        for artist in self._animated:
            artist.set_animated(True)

    def _build_bars(self, layout: Layout) -> None:
        ax = self.bars_ax
        slow = set(layout.slow)
        xs = np.arange(len(layout.leaders))
        self.bars = ax.bar(xs, np.zeros(len(xs)), edgecolor="white",
                           color=[viz.broker_color(b) for b in layout.leaders])
        for bar, leader in zip(self.bars, layout.leaders, strict=True):
            if leader in slow:
                bar.set_hatch("//")
                bar.set_edgecolor(viz.SLOW_EDGE)
        self.even = ax.axhline(0, color="black", linestyle="--", linewidth=1)
        self.even_label = ax.annotate("even share", (len(xs) - 0.6, 0), xytext=(2, 2),
                                      textcoords="offset points", fontsize=9, ha="right",
                                      va="bottom", bbox=LABEL_BOX, zorder=5)
        ax.set_xticks(xs)
        ax.set_xlim(-0.6, len(xs) - 0.4)
        ax.set_xlabel("partition")
        ax.set_ylabel("records")
        ax.yaxis.set_major_formatter(EngFormatter(sep=""))  # 800k: six digits clipped the label
        handles = [Patch(facecolor=viz.broker_color(b),
                         label=f"broker {b} (slow)" if b in slow else f"broker {b}",
                         hatch="//" if b in slow else None,
                         edgecolor=viz.SLOW_EDGE if b in slow else "white")
                   for b in sorted(set(layout.leaders))]
        ax.legend(handles=handles, fontsize=9, loc="upper right", ncols=min(len(handles), 3),
                  framealpha=0.8)

    def _build_fill(self) -> None:
        ax = self.fill_ax
        self._fill_edges = np.linspace(0.0, 1.0, FILL_BINS + 1)
        self.fill_steps = ax.stairs(np.zeros(FILL_BINS), self._fill_edges, fill=True,
                                    color="#4C72B0")
        self.fill_mean = ax.axvline(0, color="black", linestyle="--", linewidth=1)
        self.fill_mean_label = ax.annotate("", (0, 1), xycoords=("data", "axes fraction"),
                                           xytext=(3, -13), textcoords="offset points",
                                           fontsize=9)
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("batch fill (bytes / batch.size)")
        ax.set_ylabel("share of batches")

    def _build_latency(self, decades: tuple[int, int]) -> None:
        ax = self.latency_ax
        low, high = decades
        self._latency_edges = np.logspace(low, high, (high - low) * LATENCY_BINS_PER_DECADE + 1)
        self.latency_steps = ax.stairs(np.zeros(len(self._latency_edges) - 1),
                                       self._latency_edges, fill=True, color="#55A868")
        self.percentiles = []
        for q, style, dy in ((50, "--", -13), (99, ":", -27)):
            line = ax.axvline(1, color="black", linestyle=style, linewidth=1)
            label = ax.annotate(f"p{q}", (1, 1), xycoords=("data", "axes fraction"),
                                xytext=(3, dy), textcoords="offset points", fontsize=9,
                                bbox=LABEL_BOX, zorder=5)  # lines never cross the text
            self.percentiles.append((q, line, label))
        ax.set_xscale("log")
        ax.set_xlim(10.0 ** low, 10.0 ** high)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("latency, send → ack (ms, log scale)")
        ax.set_ylabel("share of records")
        ax.set_title("latency per record")

    # -- the data ------------------------------------------------------------------------------

    def _update(self, run: _Run, fill_shares: np.ndarray, latency_shares: np.ndarray) -> None:
        """Move the data artists to this run's numbers (and its two histograms' shares)."""
        for bar, height in zip(self.bars, run.heights, strict=True):
            bar.set_height(float(height))
        even = float(run.heights.sum()) / max(len(run.heights), 1)
        self.even.set_ydata([even, even])
        self.even_label.xy = (len(run.heights) - 0.6, even)
        slow = ", ".join(f"broker {b} ×{factor:g} slower" for b, factor in sorted(run.slow.items()))
        self.bars_ax.set_title(f"{run.records:,} records by partition"
                               + (f" ({slow})" if slow else ""))

        fill = run.fill
        self.fill_steps.set_data(fill_shares)
        mean = float(fill.mean()) if len(fill) else 0.0
        self.fill_mean.set_visible(len(fill) > 0)
        self.fill_mean.set_xdata([mean, mean])
        self.fill_mean_label.xy = (mean, 1)
        right = mean > 0.5  # labels go on the side with room
        self.fill_mean_label.set_text(f"mean {mean:.0%}" if len(fill) else "")
        _side(self.fill_mean_label, right)
        self.fill_ax.set_title(f"{len(fill):,} batches, {run.mean_records:.1f} records each")

        latency = run.latency
        self.latency_steps.set_data(latency_shares)
        middle = math.sqrt(self._latency_edges[0] * self._latency_edges[-1])
        for q, line, label in self.percentiles:
            v = float(np.percentile(latency, q)) if len(latency) else 1.0
            line.set_visible(len(latency) > 0)
            line.set_xdata([v, v])
            label.xy = (v, 1)
            label.set_text(f"p{q} {v:.1f} ms" if len(latency) else "")
            _side(label, v > middle)


def _run(result: Any) -> _Run:
    summary = result.summary
    batches = summary.batches
    latency = summary.records["latency_ms"].to_numpy(dtype=float)
    records = batches["records"].to_numpy() if len(batches) else np.empty(0)
    size = batches["bytes"].to_numpy(dtype=float) if len(batches) else np.empty(0)
    return _Run(
        records=int(result.records),
        slow=summary.slow_brokers,
        heights=summary.partitions["records"].to_numpy(dtype=float),
        fill=size / max(int(result.values["batch.size"]), 1),
        mean_records=float(records.mean()) if len(records) else 0.0,
        latency=latency[np.isfinite(latency) & (latency > 0)],
    )


def _decades(latency: np.ndarray, layout: Layout | None) -> tuple[int, int]:
    """The latency axis's decades: the default span, widened to hold this run and kept wide."""
    low, high = layout.decades if layout else LATENCY_DECADES
    if len(latency):
        low = min(low, math.floor(math.log10(latency.min())))
        high = max(high, math.ceil(math.log10(latency.max())))
    return low, high


def _share(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def _side(label: Any, right: bool) -> None:
    """Put an annotation to the left of its line when the line is in the right half."""
    label.set_horizontalalignment("right" if right else "left")
    label.xyann = (-3 if right else 3, label.xyann[1])
