"""The playground's figure: drawn in full only when its frame changes, otherwise blitted.

The blitted image must be exactly the image a full redraw gives, the axes must follow the data
when it no longer fits (or no longer fills them), and a new partition layout rebuilds the bars.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.text import Text
from PIL import Image

from sim.widgets import simulate_playground
from sim.widgets.playground_figure import PlaygroundFigure, nice_ceiling

SMALL = {"records": 5_000}


def run(**values):
    result = simulate_playground({**SMALL, **values})
    assert result.ok, result.message
    return result


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.mark.parametrize(("value", "expected"), [
    (0, 1.0), (1, 1.0), (1.2, 1.5), (7, 8.0), (13_000, 15_000.0), (0.067, 0.08),
    (0.6, 0.6), (101, 150.0),
])
def test_nice_ceiling_rounds_up_to_a_round_number(value, expected):
    assert nice_ceiling(value) == expected


def test_a_blitted_update_is_pixel_identical_to_a_full_redraw():
    """Drawing B over A's kept frame gives the same pixels as a fresh figure drawing B."""
    a, b = run(**{"linger.ms": 5}), run(**{"linger.ms": 3})
    reused = PlaygroundFigure()
    reused.png(a)
    blitted = reused.png(b)
    assert reused.frames_drawn == 1, "B fits A's axes, so the frame should have been kept"
    fresh = PlaygroundFigure()
    full = fresh.png(b)
    assert fresh.limits == reused.limits
    assert np.array_equal(pixels(blitted), pixels(full))
    assert not np.array_equal(pixels(reused.png(a)), pixels(full))  # the data did change


def test_axes_follow_the_data_when_it_outgrows_or_underfills_them():
    """A run five times smaller redraws the frame with new limits."""
    figure = PlaygroundFigure()
    figure.png(run())
    first = figure.limits
    figure.png(run(rate_per_s=500))  # 1,000 records instead of 5,000, in 1-record batches
    assert figure.frames_drawn == 2
    assert figure.limits.records < first.records
    heights = [bar.get_height() for bar in figure.bars]
    assert max(heights) <= figure.limits.records
    assert figure.bars_ax.get_ylim()[1] == figure.limits.records


def test_new_partition_count_rebuilds_the_bars_and_the_legend_names_slow_brokers():
    """Five partitions: five bars, hatched where the slow broker leads; the title says how slow."""
    figure = PlaygroundFigure()
    figure.draw(run())
    assert len(figure.bars) == 12
    figure.draw(run(partitions=5, slow_broker=1, slowdown=20))
    assert len(figure.bars) == 5
    labels = [t.get_text() for t in figure.bars_ax.get_legend().get_texts()]
    assert "broker 1 (slow)" in labels
    assert "broker 1 ×20 slower" in figure.bars_ax.get_title()
    hatched = [bar.get_hatch() for bar in figure.bars]
    leaders = run(partitions=5, slow_broker=1, slowdown=20).summary.partitions["leader"]
    assert hatched == ["//" if leader == 1 else None for leader in leaders]


def test_the_data_artists_show_the_run():
    """Bar heights are the records per partition; the fill and latency bins are shares."""
    result = run(keys="uniform")
    figure = PlaygroundFigure()
    figure.draw(result)
    heights = [bar.get_height() for bar in figure.bars]
    assert heights == result.summary.partitions["records"].tolist()
    assert figure.fill_steps.get_data().values.sum() == pytest.approx(1.0)
    assert figure.latency_steps.get_data().values.sum() == pytest.approx(1.0)
    p50 = figure.percentiles[0][1].get_xdata()[0]
    assert p50 == pytest.approx(result.stats["latency_p50_ms"])


def test_a_message_replaces_the_panels_and_the_next_run_brings_them_back():
    """An invalid combination shows its message alone; a valid run restores the three axes."""
    figure = PlaygroundFigure()
    bad = simulate_playground({**SMALL, "partitioner": "vip", "partitions": 8})
    figure.draw(bad)
    assert not any(ax.get_visible() for ax in figure.figure.axes)
    assert "needs at least 9" in figure.message.get_text()
    figure.draw(run())
    assert all(ax.get_visible() for ax in figure.figure.axes)
    assert not figure.message.get_visible()


def test_a_new_slowdown_keeps_the_frame():
    """Moving the slowdown slider changes the title, not the legend: no full redraw."""
    figure = PlaygroundFigure()
    figure.draw(run(slow_broker=0, slowdown=100))
    frames = figure.frames_drawn
    figure.draw(run(slow_broker=0, slowdown=80))
    assert "×80 slower" in figure.bars_ax.get_title()
    assert figure.frames_drawn == frames


def test_labels_on_the_data_sit_on_white_boxes():
    """The p50 / p99 and even-share labels have an opaque box, drawn above the lines, so that
    a neighbouring percentile line never crosses their text."""
    figure = PlaygroundFigure()
    figure.draw(simulate_playground({"records": 2_000}))
    labels = [label for _, _, label in figure.percentiles] + [figure.even_label]
    for label in labels:
        assert label.get_bbox_patch() is not None
        assert label.get_zorder() > max(line.get_zorder() for _, line, _ in figure.percentiles)


def test_tick_labels_stay_inside_the_figure():
    """The latency axis's last tick label (10³ ms) is drawn whole, a few pixels clear of the
    edge (an image scaled down in the browser blurs the last pixels)."""
    figure = PlaygroundFigure()
    figure.draw(simulate_playground({"records": 2_000}))
    renderer = figure.canvas.get_renderer()
    width = figure.figure.bbox.width
    for ax in figure.figure.axes:
        low, high = sorted(ax.get_xlim())
        for tick, label in zip(ax.get_xticks(), ax.get_xticklabels(), strict=True):
            if low <= tick <= high and label.get_text():  # drawn ticks only
                assert label.get_window_extent(renderer).x1 <= width - 4, label.get_text()


def test_axis_labels_stay_inside_the_figure_with_six_digit_counts():
    """200,000 records on one partition: the records axis counts past 100,000, and its label
    stays whole at the left edge (six-digit tick labels pushed it out of the image)."""
    figure = PlaygroundFigure()
    figure.draw(simulate_playground({"records": 200_000, "partitions": 1}))
    renderer = figure.canvas.get_renderer()
    assert figure.limits.records > 100_000
    for ax in figure.figure.axes:
        assert ax.yaxis.label.get_window_extent(renderer).x0 >= 2, ax.get_ylabel()


def test_the_figure_fits_a_notebook_output_at_full_size():
    """A notebook output is 848 pixels wide: the PNG is at most that, so it is shown at the
    size drawn, and no text is smaller than 9 pt. The three panels side by side were 1,040
    pixels and shown at 82 %."""
    figure = PlaygroundFigure()
    width, height = Image.open(io.BytesIO(figure.png(run(slow_broker=0, slowdown=10)))).size
    assert width <= 848
    assert height < width
    texts = [t for t in figure.figure.findobj(Text) if t.get_text() and t.get_visible()]
    assert min(t.get_fontsize() for t in texts) >= 9
