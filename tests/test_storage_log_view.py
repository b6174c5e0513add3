"""Specification of the log view (``sim.widgets.log_view``): what it reads of a partition across
replicas and tiers, the figures it draws, and its widget callback.

The cleaner point is the cleaner checkpoint (``LogToClean.firstDirtyOffset``) and the dirty ratio
``LogToClean.cleanableRatio`` — what ``LogCleanerManager.grabFilthiestCompactedLog`` compares
with ``min.cleanable.dirty.ratio``.
"""

from __future__ import annotations

import matplotlib as mpl

mpl.use("Agg")

import matplotlib.pyplot as plt
import pytest

from sim.broker.log_cleaner import LOG_CLEAN
from sim.lessons import storage as ls
from sim.widgets import log_view as lv
from sim.widgets.panel import GRADING_ENV_VAR, GradingPlaceholder


@pytest.fixture(scope="module")
def tiered():
    return ls.tiered_run()


@pytest.fixture(scope="module")
def dirty_views():
    return ls.dirty_ratio_views(0.9)


def inside_figure(fig) -> bool:
    """Everything drawn (texts, ticks, legend, axes) lies within the figure: nothing clipped."""
    fig.canvas.draw()
    drawn = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
    return (drawn.x0 >= -0.01 and drawn.y0 >= -0.01 and drawn.x1 <= fig.get_figwidth() + 0.01
            and drawn.y1 <= fig.get_figheight() + 0.01)


def test_the_view_has_a_lane_per_replica_leader_first_and_one_for_the_remote_tier(tiered) -> None:
    """Lanes: the leader, the other replicas, the remote tier; each replica's segments and
    offsets are its own log's; the remote lane holds the copied segments (end exclusive)."""
    part = tiered.cluster.partition("clicks", 0)
    view = lv.log_view(tiered.cluster, "clicks", 0, tiered.now_ms)
    assert view.lanes[0] == f"broker {part.leader} (leader)"
    assert view.lanes[-1] == lv.REMOTE_LANE
    assert len(view.lanes) == len(part.replicas) + 1
    for row in view.replicas.itertuples():
        log = part.logs[row.broker]
        assert (row.log_start_offset, row.high_watermark, row.log_end_offset) == (
            log.log_start_offset, log.high_watermark, log.log_end_offset)
        mine = view.segments[view.segments["lane"] == row.lane]
        assert mine["base_offset"].tolist() == [s.base_offset for s in log.segments]
        assert mine["kind"].tolist()[-1] == "active"
    remote = view.segments[view.segments["kind"] == "remote"]
    copied = tiered.cluster.remote_tier.states[("clicks", 0)].segments()
    assert remote["base_offset"].tolist() == [s.base_offset for s in copied]
    assert remote["end_offset"].tolist() == [s.end_offset + 1 for s in copied]
    assert view.log_start_offset == 0 < view.replicas["log_start_offset"].min()
    assert view.min_cleanable_dirty_ratio is None
    assert view.replicas["cleaner_point"].isna().all()


def test_the_cleaner_point_is_where_the_last_cleaning_ended(dirty_views) -> None:
    """In the 0.9 run the cleaning at 8 s cleaned up to offset 1,598: from then on every view
    shows the cleaner point there, on both replicas (each broker's cleaner cleans its own)."""
    kernel = ls.dirty_ratio_run(0.9)
    ends = ls.cleanings(kernel)["end_offset"].tolist()
    later = [v for v in dirty_views if v.time_ms >= 8000]
    assert later
    for view in later:
        assert set(view.replicas["cleaner_point"]) == {ends[-1]}


def test_the_cleaner_waits_until_the_dirty_ratio_passes_the_threshold(dirty_views) -> None:
    """Every view whose dirty ratio is at most 0.9 is followed by no cleaning within the
    cleaner's backoff (1 s); the cleanings that do run started above 0.9."""
    kernel = ls.dirty_ratio_run(0.9)
    frame = kernel.trace.frame(LOG_CLEAN)
    assert (frame["dirty_ratio"] > 0.9).all()
    for view in dirty_views:
        ratio = view.replicas["dirty_ratio"].max()
        soon = frame[(frame["time_ms"] > view.time_ms) & (frame["time_ms"] <= view.time_ms + 1000)]
        if ratio <= 0.9:
            assert len(soon) == 0
    rising = [v.replicas["dirty_ratio"].iloc[0] for v in dirty_views if v.time_ms >= 12000]
    assert rising == sorted(rising)
    assert 0.9 > rising[-1] > rising[0]


def test_the_log_view_figure_is_whole_and_sized_by_its_lanes(tiered, dirty_views) -> None:
    """8 inches wide; taller with more lanes; every label inside the figure; a y tick per
    lane, the dirty ratio written beside a compacted topic's brokers."""
    small = lv.log_view_figure(dirty_views[-1])
    big = lv.log_view_figure(lv.log_view(tiered.cluster, "clicks", 0, tiered.now_ms))
    try:
        assert small.get_figwidth() == big.get_figwidth() == 8.0
        assert big.get_figheight() > small.get_figheight()
        assert inside_figure(small)
        assert inside_figure(big)
        labels = [t.get_text() for t in small.axes[0].get_yticklabels()]
        assert len(labels) == 2
        assert all("dirty ratio 0.89" in label for label in labels)
        assert len(big.axes[0].get_yticks()) == 4
    finally:
        plt.close(small)
        plt.close(big)


def test_the_compaction_figure_draws_kept_offsets_and_gaps() -> None:
    """One box per offset and row; a removed offset is a dashed empty box (a gap), never a
    shifted one: the 'after' row has as many dashed boxes as the cleaning removed."""
    table = ls.compaction(list("ABACABD"), tombstones=[5], delete_retention_ms=1000,
                          again_after_ms=1000)
    fig = ls.compaction_figure(list("ABACABD"), tombstones=[5], delete_retention_ms=1000,
                               again_after_ms=1000)
    try:
        patches = fig.axes[0].patches
        assert len(patches) == 3 * len(table)
        dashed = [p for p in patches if p.get_linestyle() == "--"]
        assert len(dashed) == (~table["kept"]).sum() + (~table["kept_later"]).sum()
        assert [p.get_x() for p in patches[:7]] == pytest.approx(
            [o + 0.06 for o in table["offset"]])
        assert inside_figure(fig)
        texts = [t.get_text() for t in fig.axes[0].texts]
        assert texts.count("B\nnull") == 2  # before, and kept by the first cleaning
    finally:
        plt.close(fig)


def test_render_snapshot_is_a_plain_callback(dirty_views) -> None:
    """The widget's callback draws the chosen view (clamped to the list)."""
    fig = lv.render_snapshot(dirty_views, 99)
    try:
        assert f"{dirty_views[-1].time_ms:,.0f} ms" in fig.axes[0].get_title()
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="at least one view"):
        lv.render_snapshot([], 0)


def test_the_panel_is_not_built_while_grading(monkeypatch, dirty_views) -> None:
    """KAFKA_LAB_GRADING=1: a placeholder; otherwise a slider over the views' times."""
    monkeypatch.setenv(GRADING_ENV_VAR, "1")
    assert isinstance(lv.log_view_panel(dirty_views), GradingPlaceholder)
    monkeypatch.delenv(GRADING_ENV_VAR)
    panel = lv.log_view_panel(dirty_views)
    slider = panel.children[0]
    assert len(slider.options) == len(dirty_views)
    assert slider.options[0][0] == "4,000 ms"
    plt.close("all")
