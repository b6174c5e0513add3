"""Helpers for lesson 09 (architectures) and exercise 09.

The lesson runs the workload of :mod:`sim.architectures` once (:func:`lesson_run`, cached: the
same seed gives the same run) and shows it one architecture at a time, the comparison table
growing as it goes (:func:`table_so_far`). Every function returns a DataFrame or a figure, so
that each notebook cell stays a line or two and ``tests/test_architectures_lesson.py`` backs
each number the lesson states by calling the same function. Times are shown in minutes.
"""

from __future__ import annotations

import functools
import html
import math
from typing import Any, ClassVar

import pandas as pd

from sim.architectures import (
    ArchitectureRun,
    Workload,
    comparison,
    hour_history,
    run_payments,
    simulate,
)
from sim.architectures.comparison import NAMES
from sim.architectures.data_lake import query_revenue
from sim.architectures.figure import comparison_figure
from sim.architectures.workload import HOUR_MS, MINUTE_MS
from sim.broker.remote_log_manager import REMOTE_READ
from sim.lessons.whole_text import WholeTextFrame

LESSON_SEED = 9
"""The seed of the lesson's run."""

EXERCISE_SEED = 21
EXERCISE_WORKLOAD = Workload(hours=3, every_ms=20_000, change_ms=100 * MINUTE_MS)
"""Exercise 09's run: three hours of payments, one every 20 s on average, the rule changing at
1 h 40 min; one broker and one partition per topic, to keep it quick."""
EXERCISE_TOPOLOGY = {"partitions": 1, "replication_factor": 1}


SENTENCE_COLUMNS = ("when a component crashes",)
"""Columns of whole sentences (not numbers) in the comparison."""


def _number(value: Any, column: str) -> str:
    """A number as the comparison shows it: prices to 4 decimals, other fractions to 1; an
    infinite time (a payment never shown, a history never restated) as "never"."""
    if isinstance(value, float):
        if math.isinf(value):
            return "never"
        if math.isnan(value):
            return ""
        return f"{value:,.4f}" if column.startswith("storage") else f"{value:,.1f}"
    return str(value)


class ComparisonFrame(WholeTextFrame):
    """The comparison as a DataFrame whose notebook display fits a JupyterLab page (about
    850 pixels of output): column labels wrap, numbers are rounded, and the sentences go below
    the table (``sentences_below``) or wrap within a column of their own."""

    _metadata: ClassVar[list[str]] = ["sentences_below"]
    sentences_below = True

    @property
    def _constructor(self) -> Any:
        return ComparisonFrame

    def _repr_html_(self) -> str | None:
        texts = [c for c in self.columns if c in SENTENCE_COLUMNS]
        shown = self.drop(columns=texts) if self.sentences_below else self
        styler = shown.style.format(
            {c: functools.partial(_number, column=c) for c in shown.columns if c not in texts})
        styler.set_table_styles([
            {"selector": "th.col_heading", "props": "white-space: normal; max-width: 7.5em; "
             "vertical-align: bottom; text-align: right"},
            {"selector": "th.row_heading", "props": "white-space: nowrap"},
            {"selector": "td", "props": "text-align: right"}])
        if not self.sentences_below and texts:
            styler.set_properties(subset=texts, **{  # JupyterLab right-aligns table cells
                "white-space": "normal", "min-width": "16em", "max-width": "24em",
                "text-align": "left !important"})
            styler.set_table_styles({column: [{"selector": "th", "props":
                                               "text-align: left !important"}]
                                     for column in texts}, overwrite=False)
        table = styler.to_html()
        if not self.sentences_below or not texts:
            return table
        notes = "".join(
            f"<p style='margin: 0.3em 0'><b>{html.escape(str(column))}</b></p><ul "
            "style='margin-top: 0'>" + "".join(
                f"<li><b>{html.escape(str(name))}</b>: {html.escape(str(text))}</li>"
                for name, text in self[column].items()) + "</ul>"
            for column in texts)
        return table + notes


def _shown(frame: pd.DataFrame, sentences_below: bool = True) -> ComparisonFrame:
    out = ComparisonFrame(frame)
    out.sentences_below = sentences_below
    return out


@functools.cache
def lesson_run(seed: int = LESSON_SEED) -> ArchitectureRun:
    """The lesson's run: four hours of payments, the rule changing at 2 h 45 min."""
    return simulate(seed=seed)


@functools.cache
def exercise_run(seed: int = EXERCISE_SEED) -> ArchitectureRun:
    """Exercise 09's run (:data:`EXERCISE_WORKLOAD`)."""
    return simulate(EXERCISE_WORKLOAD, seed=seed, **EXERCISE_TOPOLOGY)


OUTAGE_WORKLOAD = Workload(hours=2, every_ms=10_000, change_ms=100 * MINUTE_MS)
OUTAGE_MIN = (60, 70)
"""The outage section's run: two hours of payments; every processing component is down from
minute 60 to minute 70 (the brokers stay up)."""


@functools.cache
def outage_run(seed: int = LESSON_SEED) -> ArchitectureRun:
    """Two hours of payments with every processing component down for ten minutes."""
    start, end = OUTAGE_MIN
    return simulate(OUTAGE_WORKLOAD, seed=seed, outage=(start * MINUTE_MS, end * MINUTE_MS),
                    **EXERCISE_TOPOLOGY)


def outage_table(run: ArchitectureRun) -> pd.DataFrame:
    """For a run with an outage: each architecture's freshness overall and for the payments
    that arrived during the outage, how much it showed by the end, and what broke."""
    columns = ["freshness median (s)", "freshness during the outage (s)",
               "shown by the end (%)", "when a component crashes"]
    return _shown(_comparison(run)[columns].copy(), sentences_below=False)


def exercise_payments(seed: int = EXERCISE_SEED) -> pd.DataFrame:
    """The payments of exercise 09's run, without running it (times in ms)."""
    return run_payments(EXERCISE_WORKLOAD, seed, **EXERCISE_TOPOLOGY)


def _comparison(run: ArchitectureRun) -> pd.DataFrame:
    """The run's comparison, computed once per run."""
    cached = getattr(run, "_comparison_cache", None)
    if cached is None:
        cached = comparison(run)
        run._comparison_cache = cached  # type: ignore[attr-defined]
    return cached


def table_so_far(run: ArchitectureRun, architectures: int) -> pd.DataFrame:
    """The comparison's first ``architectures`` rows, in the lesson's order (its sentences
    shown whole, below the numbers)."""
    return _shown(_comparison(run).iloc[:architectures].copy())


def full_table(run: ArchitectureRun) -> pd.DataFrame:
    """The whole comparison (its sentences shown whole, below the numbers)."""
    return _shown(_comparison(run).copy())


def workload_summary(run: ArchitectureRun) -> pd.DataFrame:
    """How many payments, how many late, how many by voucher, and when the rule changes."""
    pay = run.payments
    return pd.DataFrame([{
        "payments": len(pay),
        "late (arrive 5-40 min after)": int(pay["late"].sum()),
        "arrive out of order": int((pay["event_ms"] < pay["event_ms"].cummax().shift(
            fill_value=0)).sum()),
        "paid by voucher": int((pay["method"] == "voucher").sum()),
        "rule changes at (min)": run.workload.change_ms / MINUTE_MS,
    }])


def payments_sample(run: ArchitectureRun, rows: int = 8) -> pd.DataFrame:
    """The first late payments and their neighbours, times in minutes."""
    pay = run.payments.copy()
    first_late = int(pay.index[pay["late"]][0])
    part = pay.iloc[max(first_late - rows // 2, 0): first_late + rows // 2].copy()
    part["event (min)"] = (part["event_ms"] / MINUTE_MS).round(2)
    part["arrival (min)"] = (part["arrival_ms"] / MINUTE_MS).round(2)
    return part[["payment", "merchant", "service", "method", "amount_cents", "event (min)",
                 "arrival (min)", "late"]]


def at(run: ArchitectureRun, minutes: float) -> pd.DataFrame:
    """Every architecture's answer (in cents) and the right one, at ``minutes``."""
    table = run.table_at(minutes * MINUTE_MS)
    return table.rename(columns={k: v for k, v in NAMES.items()})


def batch_runs(run: ArchitectureRun) -> pd.DataFrame:
    """The bulk jobs of batch collection: when each ran, how many files and payments it read,
    and the rule it used (the report itself keeps none of this)."""
    frame = pd.DataFrame(run.variants["batch"].runs)
    frame["run (min)"] = frame["run_ms"] / MINUTE_MS
    return frame[["run (min)", "files", "payments", "rule"]]


def batch_files(run: ArchitectureRun) -> list[str]:
    """The files the services dumped, as ``service/file``."""
    return [f"{p.parent.name}/{p.name}" for p in run.variants["batch"].files()]


def lambda_batch_runs(run: ArchitectureRun) -> pd.DataFrame:
    """The serving database's ``batch_runs`` table, times in minutes."""
    rows = run.variants["lambda"].db.execute(
        "SELECT run_ms / 60000.0, covered_until_hour, rule, payments FROM batch_runs").fetchall()
    return pd.DataFrame(rows, columns=["run (min)", "covers hours before", "rule", "payments"])


def lambda_serving(run: ArchitectureRun) -> pd.DataFrame:
    """What the serving layer's merge query returns now (end of the run): per merchant and
    hour, the revenue, the layer it comes from, and the right answer."""
    rows = run.variants["lambda"].merged()
    frame = pd.DataFrame(rows, columns=["merchant", "hour", "revenue", "layer"])
    right = run.truth_at(run.end_ms)
    frame["right answer"] = [int(right[(m, h)]) for m, h in zip(frame["merchant"], frame["hour"],
                                                                strict=True)]
    frame["difference"] = frame["revenue"] - frame["right answer"]
    return frame


def lambda_drift(run: ArchitectureRun) -> pd.DataFrame:
    """Per hour at the end of the run: the layer answering it, lambda's revenue minus the
    right answer (all merchants), and the voucher payments of that hour seen so far."""
    serving = lambda_serving(run)
    pay = run.payments[run.payments["arrival_ms"] <= run.end_ms]
    vouchers = pay[pay["method"] == "voucher"].groupby(pay["event_ms"] // HOUR_MS)[
        "amount_cents"].sum()
    out = serving.groupby("hour").agg(layer=("layer", "first"),
                                      difference=("difference", "sum"))
    out["vouchers in the hour"] = vouchers.reindex(out.index, fill_value=0)
    return out.reset_index()


def kappa_reprocessing(run: ArchitectureRun) -> pd.DataFrame:
    """The reprocessing: when the second instance started and when readers switched (min),
    how long it took (s), and the reads it served from the remote tier meanwhile."""
    kappa = run.variants["kappa"]
    start, switch = kappa.reprocessing["start_ms"], kappa.reprocessing["switch_ms"]
    reads = run.kernel.trace.frame(REMOTE_READ)
    during = reads[(reads["time_ms"] >= start) & (reads["time_ms"] <= switch)]
    return pd.DataFrame([{"started (min)": round(start / MINUTE_MS, 2),
                          "switched (min)": round(switch / MINUTE_MS, 2),
                          "reprocessing (s)": (switch - start) / 1000,
                          "reads from the remote tier": len(during),
                          "records read remotely": int(during["records"].sum())}])


def lake_query(run: ArchitectureRun, from_hour: int = 0, rule: str = "v2") -> pd.DataFrame:
    """A query over the log from ``from_hour``: revenue per merchant (columns) and hour
    (rows), in cents."""
    answer, _reads = query_revenue(run.kernel, run.topic, run.workload, rule,
                                   from_hour * HOUR_MS)
    return answer.unstack(level=0)


def lake_reads(run: ArchitectureRun, from_hour: int = 0) -> pd.DataFrame:
    """Where that query read its records, and what an offset range per hour would miss."""
    _answer, reads = query_revenue(run.kernel, run.topic, run.workload, "v2",
                                   from_hour * HOUR_MS)
    return pd.DataFrame([reads])


def lake_tiers(run: ArchitectureRun, every_min: int = 30) -> pd.DataFrame:
    """Every ``every_min`` minutes: records in the log and records already in the remote
    tier (the Parquet table's lag behind the log)."""
    frame = run.variants["lake"].cold_lag()
    frame["time (min)"] = frame["time_ms"] / MINUTE_MS
    picked = frame[frame["time_ms"] % (every_min * MINUTE_MS) == 0]
    return picked[["time (min)", "in_log", "in_remote_tier"]].reset_index(drop=True)


def figure(run: ArchitectureRun, hour: int = 2):
    """The comparison's figure for ``hour``."""
    return comparison_figure(hour_history(run, hour), _comparison(run), hour,
                             run.workload.change_ms / MINUTE_MS)
