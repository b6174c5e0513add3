"""Widget panel of the Kafka Streams lesson: the grace-period slider.

The panel counts the lesson's sensor readings (``sim.lessons.streams.SENSOR_READINGS``) in
time windows and redraws :func:`sim.viz_streams.window_timeline` whenever the window size, the
advance or the grace moves. Its callback is the plain function :func:`simulate_windows`
``(values) -> WindowResult`` (a ``message`` instead of an exception for a combination Kafka
refuses), tested without a browser.

The factory :func:`grace_panel` builds nothing while a notebook is graded
(``KAFKA_LAB_GRADING=1``): it returns a ``GradingPlaceholder``.
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

__all__ = ["GracePanel", "WindowResult", "grace_panel", "simulate_windows", "windows_html"]

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
        assert result.run is not None
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
