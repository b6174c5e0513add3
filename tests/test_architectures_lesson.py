"""Lesson 09 (architectures): every number the lesson's text states, from the same helpers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.text import Text

from sim.architectures.figure import COLORS
from sim.lessons import architectures as la

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "09_architectures.ipynb"


@pytest.fixture(scope="module")
def run():
    return la.lesson_run(la.LESSON_SEED)


@pytest.fixture(scope="module")
def text() -> str:
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    return " ".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def test_first_code_cell_makes_the_run_with_the_lesson_seed() -> None:
    """The lesson's first code cell names the seed the tests use."""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    first = next(c for c in cells if c["cell_type"] == "code")
    assert f"seed={la.LESSON_SEED}" in "".join(first["source"])


def test_workload_numbers(run, text) -> None:
    """2,879 payments, 199 late, 426 out of order; the rule changes at minute 165; payment 20
    happened at minute 1.92 and arrives at minute 23.52."""
    summary = la.workload_summary(run).iloc[0]
    assert summary["payments"] == 2879
    assert summary["late (arrive 5-40 min after)"] == 199
    assert summary["arrive out of order"] == 426
    assert summary["rule changes at (min)"] == 165
    sample = la.payments_sample(run).set_index("payment")
    assert sample.loc[20, "event (min)"] == 1.92
    assert sample.loc[20, "arrival (min)"] == 23.52
    assert sample.loc[20, "late"]
    for stated in ("2,879 payments", "199 of them late", "426", "minute 1.92", "minute 23.52"):
        assert stated in text


def test_batch_collection_numbers(run) -> None:
    """The first report at minute 65 from the first hour's two files; the next run at 125;
    a median freshness of about 45 minutes."""
    runs = la.batch_runs(run)
    assert runs["run (min)"].tolist()[:2] == [65, 125]
    assert runs["files"].iloc[0] == 2
    median = la.full_table(run).loc["batch collection", "freshness median (s)"]
    assert 40 * 60 <= median <= 50 * 60


def test_lambda_numbers(run) -> None:
    """The run at minute 185 uses v2 and covers hours 0-2; hour 3 comes from the speed layer,
    too high by exactly its vouchers (474,200 cents); hour 2 is short by 37,250 cents; a median
    freshness of about 17 s; 7 wrong cells at the end."""
    batch = la.lambda_batch_runs(run)
    last = batch.iloc[-1]
    assert (last["run (min)"], last["covers hours before"], last["rule"]) == (185, 3, "v2")
    drift = la.lambda_drift(run).set_index("hour")
    assert drift.loc[3, "layer"] == "speed"
    assert drift.loc[3, "difference"] == drift.loc[3, "vouchers in the hour"] == 474_200
    assert drift.loc[2, "difference"] == -37_250
    table = la.full_table(run)
    assert round(table.loc["lambda", "freshness median (s)"]) == 17
    assert table.loc["lambda", "wrong cells at the end"] == 7
    assert table.loc["lambda", "code paths"] == 2


def test_kappa_numbers(run) -> None:
    """The switch 70 s after the change, the oldest hour's 687 records read from Parquet."""
    kappa = la.kappa_reprocessing(run).iloc[0]
    assert kappa["started (min)"] == 165
    assert kappa["reprocessing (s)"] == 70
    assert kappa["records read remotely"] == 687
    table = la.full_table(run)
    assert table.loc["kappa", "history restated after (s)"] == 70
    assert table.loc["kappa", "wrong cells at the end"] == 0


def test_lake_numbers(run) -> None:
    """1,427 records from Parquet, 1,452 from the brokers, 69 missed by offset ranges; at minute
    60 nothing in the remote tier yet, at 120 only the first hour's 687 of 1,423."""
    reads = la.lake_reads(run).iloc[0]
    assert (reads["remote"], reads["local"], reads["missed_by_offset_range"]) == (1427, 1452, 69)
    tiers = la.lake_tiers(run).set_index("time (min)")
    assert tuple(tiers.loc[60]) == (687, 0)
    assert tuple(tiers.loc[120]) == (1423, 687)
    assert la.full_table(run).loc["streaming data lake", "wrong cells at the end"] == 0


def test_figure_has_both_panels(run) -> None:
    """The figure draws the hour's history and the freshness bars, one bar per architecture."""
    fig = la.figure(run, hour=2)
    answers, freshness = fig.axes
    assert len(freshness.patches) == 4
    assert "hour 2" in answers.get_title()


def test_figure_zooms_on_kappas_seventy_seconds_on_the_old_rule(run) -> None:
    """The text says kappa keeps the old rule for 70 s after the change, then drops to the new
    one: at the run's scale that is a line's width, so an inset shows minutes 163.5–168. In it
    kappa's line stays on lambda's (still counting vouchers) until the switch, 70 s after the
    change (to the 10 s sampling step), then on the lake's."""
    fig = la.figure(run, hour=2)
    answers, _freshness = fig.axes
    (inset,) = answers.child_axes
    assert inset.get_xlim() == (163.5, 168.0)
    lines = {line.get_color(): line for line in inset.get_lines()}
    time = np.asarray(lines[COLORS["kappa"]].get_xdata())
    kappa, lam, lake = (np.asarray(lines[COLORS[n]].get_ydata())
                        for n in ("kappa", "lambda", "streaming data lake"))
    switched = time[np.flatnonzero(kappa != lam)[0]]
    assert (switched - 165) * 60 == pytest.approx(70, abs=10)
    assert la.kappa_reprocessing(run)["reprocessing (s)"].iloc[0] == 70
    after = time >= switched
    assert np.all(kappa[after] < 0.9 * lam[after])  # the vouchers are gone
    assert np.allclose(kappa[after], lake[after], rtol=0.02)  # a few seconds behind the lake
    assert "inset" in " ".join(
        "".join(c["source"]) for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
        if c["cell_type"] == "markdown")


def test_figure_fits_a_notebook_output_at_full_size(run) -> None:
    """The panels stand one above the other, at most 8.4 inches (840 pixels, a notebook output
    is 848) with text of 9 pt or more; side by side they were 1,090 pixels and shown at 78 %."""
    fig = la.figure(run, hour=2)
    answers, freshness = fig.axes
    assert fig.get_figwidth() * fig.dpi <= 840
    assert answers.get_position().y0 > freshness.get_position().y1
    fig.canvas.draw()
    tight = fig.get_tightbbox(fig.canvas.get_renderer())
    assert (tight.width + 0.2) * fig.dpi <= 848  # the inline backend's bbox_inches="tight"
    texts = [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
    assert min(t.get_fontsize() for t in texts) >= 9


def test_outage_numbers() -> None:
    """During the outage the lake stays at about 5 s; lambda and kappa show the payments about
    300 s after they arrived, all of them by the end; batch collection shows nothing."""
    table = la.outage_table(la.outage_run(la.LESSON_SEED))
    during = table["freshness during the outage (s)"]
    assert during["streaming data lake"] <= 10
    for name in ("lambda", "kappa"):
        assert 270 <= during[name] <= 330
        assert table.loc[name, "shown by the end (%)"] == 100
    assert table.loc["batch collection", "shown by the end (%)"] == 0


def test_a_time_never_reached_shows_as_never(run, text) -> None:
    """Batch collection never shows some payments: its 95th-percentile freshness is infinite
    in the data and reads "never" in the table, as the lesson's text says (not "inf")."""
    table = la.full_table(run)
    assert math.isinf(table.loc["batch collection", "freshness p95 (s)"])
    html = table._repr_html_()
    assert "never" in html
    assert ">inf<" not in html
    assert "*never*: more than 5 % of the payments" in text


def test_every_column_of_the_comparison_is_explained(run, text) -> None:
    """The paragraph after the first comparison table names each of its measured columns in
    bold (``shown by the end`` and ``reprocessing`` were shown without a word on them)."""
    flat = " ".join(text.split())
    table = la.table_so_far(run, 1)
    for column in table.columns:
        if column == "when a component crashes":  # the sentences printed under the table
            continue
        name = column.split(" (")[0].removesuffix(" median").removesuffix(" p95")
        assert f"**{name}**" in flat, column
