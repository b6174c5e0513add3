"""Widget panels of the Kafka Streams lesson: the grace-period slider and the record cache.

The panel counts the lesson's sensor readings (``sim.lessons.streams.SENSOR_READINGS``) in
time windows and redraws :func:`sim.viz_streams.window_timeline` whenever the window size, the
advance or the grace moves. Its callback is the plain function :func:`simulate_windows`
``(values) -> WindowResult`` (a ``message`` instead of an exception for a combination Kafka
refuses), tested without a browser.

The cache panel runs WordCount on the simulated cluster
(``sim.lessons.streams.wordcount_on_cluster``) for a cache size, a commit interval and a spacing
of the quickstart's lines; its callback is :func:`simulate_cache`, shown by :func:`cache_html`.

The factories :func:`grace_panel` and :func:`cache_panel` build nothing while a notebook is
graded (``KAFKA_LAB_GRADING=1``): they return a ``GradingPlaceholder``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from sim import viz_streams
from sim.errors import KafkaLabError
from sim.lessons import streams as ls
from sim.streams import TimeWindows
from sim.viz import figure_png
from sim.widgets.panel import GradingPlaceholder, RunPanel, grading_mode, message_html, table_html

__all__ = [
    "CachePanel",
    "CacheResult",
    "GracePanel",
    "WindowResult",
    "cache_html",
    "cache_panel",
    "grace_panel",
    "simulate_cache",
    "simulate_windows",
    "windows_html",
]

GRACE_DEFAULTS = {"size.ms": 5_000, "advance.ms": 5_000, "grace.ms": 0}


@dataclass(frozen=True)
class WindowResult:
    """One run of the panel: the windowed count, or why Kafka refuses the windows."""

    header: str
    run: ls.WindowRun | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.run is not None


def simulate_windows(values: Mapping[str, Any]) -> WindowResult:
    """Count the lesson's readings in ``TimeWindows`` of ``size.ms`` advancing by ``advance.ms``
    with ``grace.ms`` of grace."""
    size, advance, grace = (int(values[k]) for k in ("size.ms", "advance.ms", "grace.ms"))
    header = (f"Kafka 4.0 Streams: TimeWindows.of_size_and_grace({size}, {grace})"
              + (f".advance_by({advance})" if advance != size else "")
              + " · stream time = the largest timestamp seen · cache and commit interval 0")
    try:
        windows = TimeWindows.of_size_and_grace(size, grace)
        if advance != size:
            windows = windows.advance_by(advance)
    except KafkaLabError as exc:
        return WindowResult(header, message=str(exc))
    return WindowResult(header, ls.window_run(windows))


def windows_html(result: WindowResult) -> str:
    """The records that were late for a window, or the message."""
    if result.run is None:
        return message_html(result.message)
    records = result.run.records
    late = records[records["dropped"]]
    summary = (f"<b>dropped-records = {result.run.dropped}</b> "
               f"({len(late)} of {len(records)} records were late for a window)")
    if late.empty:
        return summary
    shown = late[["n", "timestamp", "stream_time", "late_for", "windows"]].rename(
        columns={"n": "#", "stream_time": "stream time", "late_for": "late for",
                 "windows": "counted in"})
    return summary + table_html(shown)


class GracePanel(RunPanel):
    """Sliders for the window size, advance and grace; the timeline and the late records."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        style = {"description_width": "90px"}
        controls = {
            "size.ms": widgets.IntSlider(value=values["size.ms"], min=1_000, max=10_000,
                                         step=1_000, description="size (ms)", style=style),
            "advance.ms": widgets.IntSlider(value=values["advance.ms"], min=1_000,
                                            max=10_000, step=1_000, description="advance (ms)",
                                            style=style),
            "grace.ms": widgets.IntSlider(value=values["grace.ms"], min=0, max=10_000, step=500,
                                          description="grace (ms)", style=style),
        }
        super().__init__("<b>Windows, late records and grace</b>", controls, {}, left=2)
        self.refresh()

    def simulate(self, values: Mapping[str, Any]) -> WindowResult:
        return simulate_windows(values)

    def png(self, result: WindowResult) -> bytes:
        if result.run is None:  # only results that ran are drawn
            return b""
        return figure_png(viz_streams.window_timeline(result.run, end_ms=26_000))

    def stats_html(self, result: WindowResult) -> str:
        return windows_html(result)


def grace_panel(**values: Any) -> GracePanel | GradingPlaceholder:
    """The grace panel, starting from ``values`` (``size.ms``, ``advance.ms``, ``grace.ms``)."""
    if grading_mode():
        return GradingPlaceholder("grace_panel")
    unknown = sorted(set(values) - set(GRACE_DEFAULTS))
    if unknown:
        raise KafkaLabError(f"grace_panel has no setting {unknown[0]!r}; it takes "
                            f"{', '.join(GRACE_DEFAULTS)}")
    return GracePanel({**GRACE_DEFAULTS, **values})


# --- The record cache -------------------------------------------------------------------------

CACHE_SIZES = [("0 (no cache)", 0), ("100 bytes", 100), ("200 bytes", 200),
               ("500 bytes", 500), ("10 MiB (default)", 10 * 1024 * 1024)]
COMMIT_INTERVALS = [("1,000 ms", 1_000), ("5,000 ms", 5_000), ("30,000 ms (default)", 30_000)]
LINE_SPACINGS = [("all at once", 0), ("10 s apart", 10_000)]


@dataclass(frozen=True)
class CacheResult:
    """What ``streams-wordcount-output`` got for one cache size, commit interval and spacing."""

    values: dict[str, int]
    output: Any  # the DataFrame of sim.lessons.streams.wordcount_on_cluster


def simulate_cache(values: Mapping[str, Any]) -> CacheResult:
    """Run WordCount on the cluster with ``statestore.cache.max.bytes``,
    ``commit.interval.ms`` and the lines ``line.every.ms`` apart."""
    chosen = {k: int(values[k]) for k in
              ("statestore.cache.max.bytes", "commit.interval.ms", "line.every.ms")}
    output = ls.wordcount_on_cluster(chosen["statestore.cache.max.bytes"],
                                     chosen["commit.interval.ms"], chosen["line.every.ms"])
    return CacheResult(chosen, output)


def cache_html(result: CacheResult) -> str:
    """How many records came out, then the records (word, count, line typed at)."""
    out = result.output
    shown = out.assign(line=(out["timestamp"] // 1000).map(lambda s: f"{s} s"))[
        ["key", "value", "line"]].rename(columns={"key": "word", "value": "count",
                                                  "line": "from the line typed at"})
    return (f"<b>{len(out)} records</b> reach streams-wordcount-output "
            f"(cache {result.values['statestore.cache.max.bytes']:,} bytes, commit every "
            f"{result.values['commit.interval.ms']:,} ms)" + table_html(shown))


class CachePanel(widgets.VBox):
    """Drop-downs for the cache size, the commit interval and the lines' spacing; the output."""

    def __init__(self) -> None:
        style = {"description_width": "210px"}
        wide = widgets.Layout(width="400px")  # room for the longest option after the label
        self.controls = {
            "statestore.cache.max.bytes": widgets.Dropdown(
                options=CACHE_SIZES, value=10 * 1024 * 1024,
                description="statestore.cache.max.bytes", style=style, layout=wide),
            "commit.interval.ms": widgets.Dropdown(
                options=COMMIT_INTERVALS, value=30_000, description="commit.interval.ms",
                style=style, layout=wide),
            "line.every.ms": widgets.Dropdown(options=LINE_SPACINGS, value=0,
                                              description="the three lines are typed",
                                              style=style, layout=wide),
        }
        self.output = widgets.HTML()
        self.result: CacheResult | None = None
        super().__init__([widgets.HTML("<b>WordCount and the record cache</b>"),
                          *self.controls.values(), self.output])
        for control in self.controls.values():
            control.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> CacheResult:
        """Re-run for the current choices and show the output."""
        self.result = simulate_cache({n: c.value for n, c in self.controls.items()})
        self.output.value = cache_html(self.result)
        return self.result


def cache_panel() -> CachePanel | GradingPlaceholder:
    """The record-cache panel (nothing is built while grading)."""
    if grading_mode():
        return GradingPlaceholder("cache_panel")
    return CachePanel()
