"""What every lesson panel shares: grading mode, message boxes, tables, and the run panel.

A *run panel* is the common shape of the playground and the lag panel: controls in two
columns, then a header line naming the Kafka behaviour in force, a figure and a statistics
table. Any change of a control re-runs the simulation with the controls' values (plus values
the panel keeps fixed) and redraws. Subclasses say how to simulate, draw and tabulate; the
plain functions they call are what tests exercise.
"""

from __future__ import annotations

import html
import itertools
import math
import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import pandas as pd

__all__ = [
    "GRADING_ENV_VAR",
    "GradingPlaceholder",
    "RunPanel",
    "busy",
    "figure_image",
    "grading_mode",
    "header_html",
    "message_html",
    "number_text",
    "row_html",
    "table_html",
]

GRADING_ENV_VAR = "KAFKA_LAB_GRADING"
"""Set to ``"1"`` by the batch grader (the name ``sim.grading`` uses)."""


def grading_mode() -> bool:
    """True while a notebook is being graded: factories must not build widgets then."""
    return os.environ.get(GRADING_ENV_VAR) == "1"


@dataclass(frozen=True)
class GradingPlaceholder:
    """What a widget factory returns while grading: a plain object that displays as one line."""

    name: str

    def __repr__(self) -> str:
        return f"<{self.name}: not built while grading ({GRADING_ENV_VAR}=1)>"

    def _repr_html_(self) -> str:
        return f"<em>{html.escape(repr(self))}</em>"


def message_html(text: str) -> str:
    """A clear message box (never a traceback) for settings that cannot run together."""
    return ("<div style='border-left:4px solid #C44E52;padding:4px 8px;background:#FBEAEA'>"
            f"<b>Cannot run this combination.</b> {html.escape(text)}</div>")


BUSY_HTML = ("<div style='color:#57606a;font-style:italic'>⏳ re-simulating for the new "
             "values…</div>")
"""Shown while a panel re-simulates, so a slow run never looks like a dead panel."""


@contextmanager
def busy(line: widgets.HTML, text: str = "working…") -> Iterator[None]:
    """Show a busy line while a panel computes (a replay, a fault run), cleared afterwards;
    the browser gets it at once, before the work starts."""
    line.value = f"<div style='color:#57606a;font-style:italic'>⏳ {html.escape(text)}</div>"
    try:
        yield
    finally:
        line.value = ""


def figure_image() -> widgets.Image:
    """An image widget for a panel's figure: shown at its own size and shape, never stretched
    or upscaled by the box around it (only shrunk, keeping its aspect ratio, when the output
    is narrower than the figure)."""
    return widgets.Image(format="png", layout=widgets.Layout(
        align_self="flex-start", max_width="100%", height="auto", object_fit="contain"))


def header_html(text: str) -> str:
    """The line naming the Kafka version's behaviour and the key configs in force."""
    return f"<div style='font-size:90%;color:#333'>{html.escape(text)}</div>"


_CELL_STYLE = "padding: 2px 9px 2px 0; font-size: 12px"
"""Widgets get no table styling. 12 pixels (9 pt) and 9 pixels between columns let the
stepper's thirteen trace columns fit an 848-pixel output (at 14 pixels apart they were 987)."""

_CELL = re.compile(r"<(t[hd])>")


def table_html(frame: pd.DataFrame) -> str:
    """A compact HTML table without the index, missing values blank, its columns kept apart by
    padding and its headers free to break after an underscore (``latency_`` / ``ms``); a table
    wider than the panel scrolls sideways instead of being cut off. Numbers are shown to at
    most three decimals without trailing zeros (51,065.2, not 51065.200) and aligned right;
    text is aligned left, so that sentences read from their start."""
    aligns = ["left" if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)
              or isinstance(dtype, pd.CategoricalDtype) else "right" for dtype in frame.dtypes]
    table = frame.to_html(index=False, border=0, na_rep="", float_format=number_text)
    head, body = table.split("</thead>", 1)
    table = head.replace("_", "_<wbr>") + "</thead>" + body.replace("&lt;NA&gt;", "")
    cells = itertools.count()

    def styled(match: re.Match[str]) -> str:  # cells come row by row, in column order
        align = aligns[next(cells) % len(aligns)] if aligns else "right"
        return f'<{match.group(1)} style="{_CELL_STYLE}; text-align: {align}">'

    table = _CELL.sub(styled, table)
    return f'<div style="overflow-x: auto; max-width: 100%">{table}</div>'  # a wide one scrolls


def row_html(row: Mapping[str, Any]) -> str:
    """One run's statistics as a one-row table: numbers as the caller rounded them, shown
    to at most three decimals without trailing zeros (148.8, not 148.800) and never in
    exponent form; a missing number (NaN) as an empty cell."""
    return table_html(pd.DataFrame([dict(row)]))


def number_text(value: Any) -> Any:
    """A float to at most three decimals without trailing zeros, with thousands separators
    (2,500,000, not 2.5e6; 148.8, not 148.800); NaN as nothing; anything else unchanged."""
    if not isinstance(value, float):
        return value
    if math.isnan(value):
        return ""
    return f"{value:,.3f}".rstrip("0").rstrip(".")  # fixed point: 2.5e6 stays 2,500,000


class RunPanel(widgets.VBox):
    """Controls over a header, an image and a statistics table; a change re-runs and redraws.

    Args:
        title: the panel's first line (HTML).
        controls: value name → its widget, in display order.
        fixed: values the panel passes to every run but shows no control for.
        left: how many controls go in the left column (the rest go right).

    ``result`` is the last run's result; it needs ``header`` and ``ok`` attributes. A run that
    could not be built shows its message once, without a figure.

    In a live kernel (``threaded``) a change re-simulates in a background thread: the panel
    shows a busy line at once, and when controls move faster than runs finish, only the run
    for the latest values is shown (results of stale values are dropped). Elsewhere — tests,
    scripts — a change re-simulates before returning.
    """

    def __init__(self, title: str, controls: Mapping[str, widgets.ValueWidget],
                 fixed: Mapping[str, Any], left: int) -> None:
        self.fixed = dict(fixed)
        self.controls = dict(controls)
        self.header = widgets.HTML()
        self.busy = widgets.HTML()
        self.image = figure_image()
        self.stats = widgets.HTML()
        self.result: Any = None
        self.threaded = _in_kernel()
        self._lock = threading.Lock()
        self._requested = 0
        self._worker: threading.Thread | None = None
        names = list(self.controls)
        columns = widgets.HBox([widgets.VBox([self.controls[n] for n in names[:left]]),
                                widgets.VBox([self.controls[n] for n in names[left:]])],
                               layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__([widgets.HTML(title), columns, self.header, self.busy, self.image,
                          self.stats])
        for control in self.controls.values():
            control.observe(self._changed, names="value")

    def values(self) -> dict[str, Any]:
        """The current values of the controls, plus the fixed ones."""
        return {**self.fixed, **{n: c.value for n, c in self.controls.items()}}

    def refresh(self) -> Any:
        """Re-run the simulation for the current values and redraw (in this thread)."""
        result = self.simulate(self.values())
        self._show(result, self.png(result) if result.ok else b"")
        return result

    def wait(self, timeout_s: float = 60.0) -> Any:
        """Wait for a background run to finish; returns the result shown."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout_s)
        return self.result

    @property
    def is_busy(self) -> bool:
        return bool(self.busy.value)

    def simulate(self, values: Mapping[str, Any]) -> Any:
        """One run for ``values``: a result, or one that carries a message (never raises)."""
        raise NotImplementedError

    def png(self, result: Any) -> bytes:
        """The figure of a result, as PNG bytes for the image widget."""
        raise NotImplementedError

    def stats_html(self, result: Any) -> str:
        """The statistics table of a result (or its message)."""
        raise NotImplementedError

    def _show(self, result: Any, png: bytes) -> None:
        self.result = result
        self.header.value = header_html(result.header)
        if result.ok:
            self.image.value = png
            self.image.layout.display = None
        else:  # the message says it once, in the statistics box; no empty figure
            self.image.layout.display = "none"
        self.stats.value = self.stats_html(result)
        self.busy.value = ""

    def _changed(self, _change: Mapping[str, Any]) -> None:
        if not self.threaded:
            self.refresh()
            return
        with self._lock:
            self._requested += 1
            self.busy.value = BUSY_HTML
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, daemon=True)
                self._worker.start()

    def _work(self) -> None:
        """Run for the latest values until no newer values arrived during the run."""
        while True:
            with self._lock:
                generation = self._requested
            values = self.values()
            try:
                result = self.simulate(values)
                png = self.png(result) if result.ok else b""
            except Exception as exc:  # never leave the panel busy for ever
                with self._lock:
                    self._worker = None
                    self.busy.value = message_html(f"{type(exc).__name__}: {exc}")
                raise
            with self._lock:
                if generation != self._requested:
                    continue  # stale: the controls moved on while this ran
                self._show(result, png)
                self._worker = None
                return


def _in_kernel() -> bool:
    """True inside a live Jupyter kernel, where widgets talk to a browser."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
