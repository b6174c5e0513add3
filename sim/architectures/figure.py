"""The comparison's figure: a pure function of the comparison's DataFrames.

Top: one hour's revenue over time as each architecture answers it, against the right answer
(the logic change marked, and an inset of the minutes around it). Below it: each
architecture's median freshness, on a log scale. One above the other, the figure is 8.2 inches
wide: a notebook shows it at full size.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

COLORS = {"batch collection": "#8c6d31", "lambda": "#d62728", "kappa": "#1f77b4",
          "streaming data lake": "#2ca02c"}


def comparison_figure(history: pd.DataFrame, table: pd.DataFrame, hour: int,
                      change_min: float):
    """The figure (module docstring) from :func:`~sim.architectures.comparison.hour_history`
    and :func:`~sim.architectures.comparison.comparison`; returns the Figure."""
    fig, (answers, freshness) = plt.subplots(2, 1, figsize=(8.2, 7.0),
                                             gridspec_kw={"height_ratios": [1.7, 1]})
    time = history["time_min"]
    answers.plot(time, history["right answer"] / 100, color="black", lw=3, alpha=0.25,
                 label="right answer")
    styles = {"batch collection": ("-", 1.6), "lambda": ("-", 1.6), "kappa": ("--", 1.6),
              "streaming data lake": (":", 2.4)}
    for name, color in COLORS.items():
        if name in history:
            style, width = styles[name]
            answers.plot(time, history[name] / 100, color=color, lw=width, ls=style, label=name,
                         drawstyle="steps-post")
    answers.axvline(change_min, color="grey", ls="--", lw=1)
    top = np.nanmax(history.drop(columns="time_min").to_numpy()) / 100
    answers.text(change_min, top * 1.02, " logic change", fontsize=9, va="bottom", color="grey")
    answers.set_ylim(0, top * 1.12)
    answers.set_xlabel("simulated time (minutes)")
    answers.set_ylabel(f"revenue of hour {hour}, all merchants (USD)")
    answers.set_title(f"What each architecture answers for hour {hour}", fontsize=10)
    answers.legend(fontsize=9, loc="upper left")
    _zoom_on_the_change(answers, history, styles, change_min)
    names = [n for n in table.index]
    median = table["freshness median (s)"].to_numpy(dtype=float)
    finite = np.where(np.isfinite(median), median, np.nan)
    bars = freshness.barh(range(len(names)), np.maximum(finite, 1),
                      color=[COLORS.get(n, "grey") for n in names])
    freshness.set_xscale("log")
    freshness.set_yticks(range(len(names)), names, fontsize=9)
    freshness.invert_yaxis()
    freshness.set_xlim(1, max(np.nanmax(finite) * 8, 100))
    for bar, value in zip(bars, median, strict=True):
        label = "never" if not np.isfinite(value) else (
            f"{value / 60:.0f} min" if value >= 120 else f"{value:.0f} s")
        freshness.text(bar.get_width() * 1.15, bar.get_y() + bar.get_height() / 2, label,
                   va="center", fontsize=9)
    freshness.set_xlabel("median freshness: arrival → answer (seconds, log scale)")
    freshness.set_title("How fresh the answer is", fontsize=10)
    fig.tight_layout()
    return fig


ZOOM_MIN = (-1.5, 3.0)
"""The inset's window, in minutes around the logic change."""


def _zoom_on_the_change(answers, history: pd.DataFrame, styles: dict, change_min: float) -> None:
    """An inset of the minutes around the logic change, in the empty lower left of the top
    panel: at the full run's scale, kappa's 70 s on the old rule (it follows lambda, then drops
    to the lake's answer when its readers switch) are a line's width."""
    start, end = change_min + ZOOM_MIN[0], change_min + ZOOM_MIN[1]
    window = history[(history["time_min"] >= start) & (history["time_min"] <= end)]
    if window.empty:
        return
    inset = answers.inset_axes((0.08, 0.1, 0.36, 0.42))
    inset.plot(window["time_min"], window["right answer"] / 100, color="black", lw=3,
               alpha=0.25, drawstyle="steps-post")
    for name, color in COLORS.items():
        if name in window and window[name].max() > 0:
            style, width = styles[name]
            inset.plot(window["time_min"], window[name] / 100, color=color, lw=width, ls=style,
                       drawstyle="steps-post")
    inset.axvline(change_min, color="grey", ls="--", lw=1)
    inset.set_xlim(start, end)
    inset.set_title(f"zoom: minutes {start:g}–{end:g}", fontsize=9)
    inset.tick_params(labelsize=9)
    indicator = answers.indicate_inset_zoom(inset, edgecolor="grey")
    for line in indicator.connectors:  # they crossed the rising curves; the box says enough
        line.set_visible(False)
