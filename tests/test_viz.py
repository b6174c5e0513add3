"""Specification of the lesson figures (``sim.viz``) and lesson computations (``sim.lessons``).

The second half backs, one test per claim, every number that the markdown of
``notebooks/00_tour.ipynb`` and ``notebooks/01_partitioners.ipynb`` states, calling the same
functions with the same arguments as the notebook cells.
"""

from __future__ import annotations

import io
import re
from functools import partial

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from PIL import Image

from sim import (
    Kernel,
    Producer,
    UniformKeys,
    Workload,
    config,
    lessons,
    metrics,
    vip_customers,
    viz,
    widgets,
)
from sim import trace as events
from sim.errors import ConfigError

KEYS = [f"key-{i}" for i in range(1000)]  # the key set of lesson 01, section 4


def _java_partition(key: str, n: int) -> int:
    """An independent oracle: kafka-python's murmur2 (unsigned) masked and taken modulo n."""
    default = pytest.importorskip("kafka.partitioner.default")
    return (default.murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % n


# --- Figures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_run() -> lessons.RunSummary:
    return lessons.run(records=5_000, rate_per_s=50_000, slow_broker=0, slowdown=20)


def test_partition_bars_draws_one_bar_per_partition_coloured_by_leader(slow_run):
    """Twelve partitions give twelve bars; each bar has its leader broker's colour."""
    fig = viz.partition_bars(slow_run.partitions, slow_brokers=slow_run.slow_brokers)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.patches) == 12
    for bar, leader in zip(ax.patches, slow_run.partitions["leader"], strict=True):
        assert bar.get_facecolor()[:3] == pytest.approx(
            tuple(int(viz.broker_color(leader)[i:i + 2], 16) / 255 for i in (1, 3, 5)))


def test_partition_bars_marks_the_even_share_and_the_slow_broker(slow_run):
    """The dashed line sits at total / partitions; slow-broker bars are hatched."""
    fig = viz.partition_bars(slow_run.partitions, slow_brokers={0: 20.0})
    ax = fig.axes[0]
    even = slow_run.partitions["records"].sum() / 12
    assert any(line.get_ydata()[0] == pytest.approx(even) for line in ax.get_lines())
    hatched = [bar.get_hatch() == "//" for bar in ax.patches]
    assert hatched == list(slow_run.partitions["leader"] == 0)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "broker 0 (slow ×20)" in labels


def test_partition_bars_grid_has_one_panel_per_run(slow_run):
    """A grid of three runs has three axes of bars."""
    fig = viz.partition_bars_grid({"a": slow_run.partitions, "b": slow_run.partitions,
                                   "c": slow_run.partitions})
    assert len(fig.axes) == 3
    assert all(len(ax.patches) == 12 for ax in fig.axes)


def test_partition_bars_grid_puts_four_runs_two_to_a_row_with_one_legend(slow_run):
    """Lesson 01's four slow-broker runs: a 2 × 2 grid no wider than a notebook shows at full
    size, with the broker legend once and the even-share label on a white box."""
    fig = viz.partition_bars_grid({name: slow_run.partitions for name in "abcd"},
                                  slow_brokers={0: 100})
    positions = sorted({(round(ax.get_position().x0, 2), round(ax.get_position().y0, 2))
                        for ax in fig.axes})
    assert len(positions) == 4
    assert len({x for x, _ in positions}) == 2
    assert len({y for _, y in positions}) == 2
    assert fig.get_figwidth() * 100 <= 1000
    assert all(ax.get_legend() is None for ax in fig.axes)
    assert len(fig.legends) == 1
    tallest = float(slow_run.partitions["records"].max())
    assert all(ax.get_ylim()[1] >= tallest for ax in fig.axes)  # no bar cut off
    label = next(t for t in fig.axes[0].texts if t.get_text() == "even share")
    assert label.get_bbox_patch() is not None


def test_figure_png_draws_every_panel_figure_at_one_width():
    """Panel figures are drawn at one width whatever their size in inches."""
    widths = set()
    for size in ((7, 3.2), (8.5, 4.2)):
        fig = Figure(figsize=size)
        fig.add_subplot()
        with Image.open(io.BytesIO(viz.figure_png(fig))) as image:
            widths.add(image.width)
    assert widths == {viz.PANEL_WIDTH_PX}


def test_replication_view_at_time_zero_has_whole_offsets_only():
    """At t = 0 every log is empty: the y axis shows 0 and 1, never 0.2, 0.4, …"""
    kernel = lessons.replication_kernel({}, traffic_ms=((0.0, 1000.0),))
    fig = viz.replication_view(lessons.replication_snapshot(kernel), time_ms=0.0)
    ax = fig.axes[0]
    fig.canvas.draw()
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert ticks
    assert all(float(t).is_integer() for t in ticks)


def test_replication_timeline_merges_marks_that_would_pile_up():
    """Five marks within 1 % of the run share one line and one label saying how many more."""
    series = pd.DataFrame({"time_ms": [0.0, 10_000.0, 40_000.0], "series": ["HW"] * 3,
                           "value": [0, 50, 100]})
    marks = pd.DataFrame({"time_ms": [20_000.0, 20_010.0, 20_020.0, 20_030.0, 20_100.0,
                                      35_000.0],
                          "label": ["crash broker 0", "election", "shrink", "shrink", "fence",
                                    "restart"]})
    fig = viz.replication_timeline(series, marks)
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == ["crash broker 0 (+4 more)", "restart"]
    assert len([line for line in fig.axes[0].lines if line.get_linestyle() == ":"]) == 2


def test_cluster_diagram_shows_the_boxes_whole_and_readable_labels():
    """The broker boxes' bottom edges are inside the axes; partition labels are ≥ 8 pt."""
    partitions = pd.DataFrame({"topic": "t", "partition": range(6), "leader": [0, 1, 2] * 2,
                               "log_end_offset": [0] * 6})
    fig = viz.cluster_diagram(partitions)
    ax = fig.axes[0]
    assert ax.get_ylim()[0] < 0
    sizes = [t.get_fontsize() for t in ax.texts if t.get_text().startswith("p")]
    assert len(sizes) == 6
    assert min(sizes) >= 8


def test_cumulative_records_draws_one_line_per_partition_ending_at_its_count(slow_run):
    """Each partition that got records has a step line ending at its record count."""
    leaders = dict(zip(slow_run.partitions["partition"], slow_run.partitions["leader"],
                       strict=True))
    fig = viz.cumulative_records(slow_run.batches, leaders=leaders)
    lines = fig.axes[0].get_lines()
    used = slow_run.partitions.loc[slow_run.partitions["records"] > 0, "records"]
    assert len(lines) == len(used)
    assert sorted(line.get_ydata()[-1] for line in lines) == sorted(used)


def test_cluster_diagram_draws_brokers_and_partition_bars():
    """3 broker boxes plus one bar per partition; the slow broker's label says so."""
    kernel = lessons.producer_kernel(records=2_000, slow_broker=1, slowdown=50).run()
    partitions, brokers = lessons.cluster_state(kernel)
    fig = viz.cluster_diagram(partitions, brokers, time_ms=kernel.now_ms)
    ax = fig.axes[0]
    rectangles = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(rectangles) == 3 + 12
    texts = [t.get_text() for t in ax.texts]
    assert "broker 1\nslow ×50" in texts
    assert str(int(partitions["log_end_offset"].max())) in texts


def test_key_moves_plot_has_one_bar_per_partition_count():
    """Four new partition counts give four bars, with the expected fraction as markers."""
    table = lessons.moved_fractions(KEYS[:100], 12, [6, 13, 16, 24])
    fig = viz.key_moves_plot(table)
    assert len(fig.axes[0].patches) == 4


def test_kafka_overview_and_figure_png():
    """The overview figure renders to PNG bytes."""
    png = viz.figure_png(viz.kafka_overview())
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_kafka_overview_clients_talk_to_the_cluster_not_to_one_broker():
    """Producers' arrows end, and consumers' arrows start, on the cluster's frame: arrows
    that touched broker 0's box read as "producers send to broker 0". No label overlaps a
    box or the frame."""
    fig = viz.kafka_overview()
    ax = fig.axes[0]
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    [frame] = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    left, right = frame.get_x(), frame.get_x() + frame.get_width()
    brokers = [p for p in ax.patches if isinstance(p, Rectangle) and not p.get_fill()]
    # each arrow's x extent, head included (the path's last vertex closes the polygon)
    arrows = [p.get_path().vertices[:-1, 0] for p in ax.patches
              if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 4
    touching = [x for xs in arrows for x in (xs.min(), xs.max())
                if min(abs(x - left), abs(x - right)) < 0.1]
    assert len(touching) == 4  # one end of each arrow
    assert not any(b.get_x() - 0.05 <= x <= b.get_x() + b.get_width() + 0.05
                   for x in touching for b in brokers)
    renderer = canvas.get_renderer()
    boxes = [p.get_window_extent(renderer) for p in ax.patches
             if not isinstance(p, FancyArrowPatch)]
    for text in ax.texts:
        if "\n" in text.get_text() or text.get_text() in ("poll()", "Kafka cluster"):
            extent = text.get_window_extent(renderer)
            assert not any(extent.overlaps(box) for box in boxes), text.get_text()


def test_inline_figures_fit_a_notebook_output(slow_run):
    """A notebook output is 848 pixels wide; the inline backend draws at 100 dpi and adds 0.1
    inch each side, so a figure of 8.2 inches is the widest shown at full size. The overview
    and the replication timeline were 9 inches (shown at 93 %), the grid of bars 8.4 (851 px)."""
    series = pd.DataFrame({"time_ms": [0.0, 1.0], "series": ["HW"] * 2, "value": [0, 1]})
    figures = [viz.kafka_overview(), viz.replication_timeline(series),
               viz.partition_bars_grid({name: slow_run.partitions for name in "abcd"})]
    for fig in figures:
        assert fig.get_figwidth() <= viz.OUTPUT_WIDTH_IN
        assert (viz.OUTPUT_WIDTH_IN + 0.2) * 100 <= 848
    texts = [t for t in figures[0].axes[0].texts if t.get_text()]
    assert min(t.get_fontsize() for t in texts) >= 9


def test_compact_table_keeps_every_column_and_row():
    """The tour's trace: thirteen columns were 978 pixels in an 848-pixel output. The compact
    table hides only the index, rounds to 3 decimals and leaves a missing value blank."""
    frame = pd.DataFrame({"seq": [0, 1], "time_ms": [5.701325, 6.2],
                          "offset": pd.array([0, None], dtype="Int64")})
    html = viz.compact_table(frame).to_html()
    assert all(f">{name.replace('_', '_<wbr>')}</th>" in html for name in frame.columns)
    assert "5.701<" in html
    assert "5.701325" not in html
    assert "<NA>" not in html
    assert "nan" not in html
    assert 'class="row_heading' not in html  # no index column


def test_compact_table_aligns_text_columns_left_and_numbers_right():
    """The tour's trace: ``component`` (categorical) and ``kind`` (text) read from the left,
    header and cells, which JupyterLab would align right; number columns keep its default."""
    frame = pd.DataFrame({"seq": [0, 1], "component": pd.Categorical(["tour", "broker-0"]),
                          "kind": ["request.sent", "log.append"], "time_ms": [5.0, 5.7],
                          "offset": pd.array([None, 0], dtype="Int64")})
    html = viz.compact_table(frame).to_html()
    left = set(re.findall(r"#T_\w+ (t[hd])\.col(\d+) \{\s*text-align: left;", html))
    assert left == {(cell, column) for cell in ("th", "td") for column in ("1", "2")}


# --- Lesson computations ---------------------------------------------------------------------


def test_key_moves_matches_an_independent_murmur2_for_doubling():
    """12 → 24: key_moves agrees key by key with kafka-python's murmur2."""
    moves = lessons.key_moves(KEYS, 12, 24)
    old = [_java_partition(k, 12) for k in KEYS]
    new = [_java_partition(k, 24) for k in KEYS]
    assert moves["old_partition"].tolist() == old
    assert moves["new_partition"].tolist() == new
    assert int(moves["moved"].sum()) == sum(o != n for o, n in zip(old, new, strict=True))


def test_doubling_moves_a_key_to_old_plus_n_or_nowhere():
    """h % 2N is h % N or h % N + N: a moved key goes exactly N partitions up."""
    moves = lessons.key_moves(KEYS, 12, 24)
    moved = moves[moves["moved"]]
    assert (moved["new_partition"] == moved["old_partition"] + 12).all()
    assert (moves.loc[~moves["moved"], "new_partition"] < 12).all()


def test_expected_moved_fraction():
    """1 − min(N, M) / lcm(N, M): 12→24 and 12→6 move half, 12→13 moves 12 of 13."""
    assert lessons.expected_moved_fraction(12, 24) == 0.5
    assert lessons.expected_moved_fraction(12, 6) == 0.5
    assert lessons.expected_moved_fraction(12, 13) == pytest.approx(1 - 1 / 13)
    assert lessons.expected_moved_fraction(12, 16) == 0.75
    assert lessons.expected_moved_fraction(5, 5) == 0.0
    with pytest.raises(ConfigError):
        lessons.expected_moved_fraction(0, 3)


def test_key_route_steps():
    """bytes → murmur2 → toPositive → % N, with Kafka's vectors (kafka-facts 1.4)."""
    route = lessons.key_route("21", 10)
    assert route["murmur2"] == -973932308
    assert route["to_positive"] == 1173551340
    assert route["partition"] == 0
    assert lessons.key_route(1, 3)["murmur2"] == -173113808  # IntegerSerializer, 4 bytes
    with pytest.raises(ConfigError):
        lessons.key_route("x", 0)


def test_partitions_at_rebuilds_log_end_offsets_from_the_trace():
    """At the end, the trace-derived log end offsets equal the logs'; at t=0 they are 0."""
    kernel = lessons.producer_kernel(records=3_000, keys="uniform").run()
    partitions = metrics.partition_metrics(kernel)
    appends = kernel.trace.frame(events.LOG_APPEND)
    at_end = lessons.partitions_at(partitions, appends, kernel.now_ms)
    assert at_end["log_end_offset"].tolist() == partitions["log_end_offset"].tolist()
    assert lessons.partitions_at(partitions, appends, 0.0)["log_end_offset"].sum() == 0


def test_producer_kernel_rejects_impossible_settings():
    """Unknown names, a missing slow broker and VIP on 8 partitions are ConfigErrors."""
    with pytest.raises(ConfigError, match="Unknown partitioner"):
        lessons.producer_kernel(partitioner="magic")
    with pytest.raises(ConfigError, match="no broker 3"):
        lessons.producer_kernel(slow_broker=3)
    with pytest.raises(ConfigError, match="at least 9"):
        lessons.producer_kernel(partitioner="vip", partitions=8)
    with pytest.raises(ConfigError, match="key distribution"):
        lessons.producer_kernel(keys="gaussian")


def test_producer_kernel_reset_rebuilds_the_identical_run():
    """Same seed and setup: reset() and run again give the identical trace."""
    kernel = lessons.producer_kernel(records=2_000, keys="zipf").run()
    first = kernel.trace.to_frame()
    second = kernel.reset().run().trace.to_frame()
    pd.testing.assert_frame_equal(first, second)


def test_config_header_names_version_and_key_configs():
    """The header says which Kafka version's behaviour and which configs are in force."""
    kernel = lessons.producer_kernel(partitioner="kip-480", slow_broker=0, slowdown=5)
    header = lessons.config_header(kernel)
    for part in ("Kafka 3.8 client", "DefaultPartitioner", "acks=all", "linger.ms=5",
                 "batch.size=16384", "enable.idempotence=true", "broker 0 ×5 slower"):
        assert part in header


# --- Claims in notebooks/00_tour.ipynb ------------------------------------------------------


@pytest.fixture(scope="module")
def tour_kernel() -> Kernel:
    kernel = Kernel(seed=7, brokers=3)
    kernel.cluster.create_topic("orders", partitions=6)
    workload = Workload.generate(kernel.spawn_rng(), "orders", 2_000, rate_per_s=10_000,
                                 keys=UniformKeys(100))
    Producer(kernel, {"client.id": "tour"}, workload=workload)
    return kernel.run()


def test_tour_all_records_arrive_in_far_fewer_events(tour_kernel):
    """"all 2,000 records arrived, but not evenly" and "far fewer events than records"."""
    partitions = metrics.partition_metrics(tour_kernel)
    assert partitions["records"].sum() == 2_000
    assert partitions["records"].nunique() > 1
    assert len(tour_kernel.trace) < 2_000


TOUR_SMALL_RUN = partial(lessons.producer_kernel, seed=7, topic="orders", partitions=6,
                         records=300, rate_per_s=1_000, keys="uniform")


def test_tour_stepper_first_events_and_linger():
    """request.sent, then log.append, then request.completed; the first request at 5 ms."""
    state = widgets.new_state(TOUR_SMALL_RUN)
    widgets.step_forward(state, 10)
    kinds = state.kernel.trace.to_frame()["kind"].tolist()
    first = [kinds.index(k) for k in ("request.sent", "log.append", "request.completed")]
    assert first == sorted(first)
    assert first[0] == 0
    assert state.kernel.trace.to_frame()["time_ms"].iloc[0] == pytest.approx(5.0)


def test_tour_step_back_equals_stopping_one_event_earlier():
    """20 forward then one back gives the trace of stopping after 19 events."""
    state = widgets.new_state(TOUR_SMALL_RUN)
    widgets.step_back(widgets.step_forward(state, 20))
    other = widgets.step_forward(widgets.new_state(TOUR_SMALL_RUN), 19)
    pd.testing.assert_frame_equal(state.kernel.trace.to_frame(), other.kernel.trace.to_frame())
    assert state.steps == 19


# --- Claims in notebooks/01_partitioners.ipynb ----------------------------------------------


def test_lesson01_alice_lands_on_partition_3_of_6():
    """Section 1: three sends of key alice to 6 partitions all land on partition 3."""
    kernel = Kernel(seed=42, brokers=3)
    kernel.cluster.create_topic("orders", partitions=6)
    producer = Producer(kernel, {"client.id": "shop"})
    parts = [producer.send("orders", key="alice", value=f"order {i}").get().partition
             for i in range(3)]
    assert parts == [3, 3, 3]
    assert lessons.key_route("alice", 6)["partition"] == 3


def test_lesson01_key_b_mask_versus_abs():
    """Section 1: key b on 3 partitions: toPositive gives 2, abs() would give 0."""
    route = lessons.key_route("b", 3)
    assert route["murmur2"] < 0
    assert route["partition"] == 2
    assert abs(route["murmur2"]) % 3 == 0


@pytest.fixture(scope="module")
def keyless() -> lessons.Comparison:
    return lessons.compare({
        "RoundRobinPartitioner": {"partitioner": "round-robin"},
        "KIP-480 sticky (3.8)": {"partitioner": "kip-480"},
        "uniform sticky (built-in)": {},
    }, records=50_000)


def test_lesson01_keyless_round_robin_even_small_batches_four_to_a_request(keyless):
    """Section 2: round robin is even with about 42 records per batch, three times as many
    batches as uniform sticky, yet the fewest requests: a ready broker's every partition is
    drained (``RecordAccumulator.drainBatchesForOneNode``), and each broker leads 4 of the 12
    partitions, so its batches travel four to a request."""
    t = keyless.table
    rr, sticky = t.loc["RoundRobinPartitioner"], t.loc["uniform sticky (built-in)"]
    kip480 = t.loc["KIP-480 sticky (3.8)"]
    assert rr["max_over_even"] == pytest.approx(1.0, abs=0.001)
    assert round(rr["records_per_batch"]) == 42
    assert 3 * sticky["batches"] <= rr["batches"] < 4 * sticky["batches"]
    assert rr["batches"] == 4 * rr["requests"]
    assert rr["requests"] < min(sticky["requests"], kip480["requests"])
    assert rr["latency_p50_ms"] > max(sticky["latency_p50_ms"], kip480["latency_p50_ms"])


def test_lesson01_keyless_sticky_fills_batches_roughly_even(keyless):
    """Section 2: KIP-480 about 115 and uniform sticky about 130 records a batch (a full
    16 KiB is 149): the partition stuck to next is drained half full when a neighbour on its
    broker fills. Most of their requests carry one batch; both are only roughly even."""
    t = keyless.table
    assert round(t.loc["KIP-480 sticky (3.8)", "records_per_batch"]) == 115
    assert round(t.loc["uniform sticky (built-in)", "records_per_batch"]) == 130
    for name in ("KIP-480 sticky (3.8)", "uniform sticky (built-in)"):
        row = t.loc[name]
        assert row["batches"] < 1.3 * row["requests"]
        assert 1.0 < row["max_over_even"] < 1.6


@pytest.fixture(scope="module")
def linger() -> pd.DataFrame:
    return lessons.compare({f"linger.ms={ms}": {"config": {"linger.ms": ms}}
                            for ms in (0, 5, 20, 100)}, rate_per_s=10_000, records=20_000).table


def test_lesson01_linger_fills_batches_until_they_are_full(linger):
    """Section 2: linger 0 sends a couple of records per batch; more linger, fuller batches,
    fewer requests, more latency; from 20 ms batches fill before the linger expires (about
    128 records on average, neighbours drained with them) and 100 ms changes nothing."""
    rpb = linger["records_per_batch"].tolist()
    assert rpb[0] < 3
    assert rpb == sorted(rpb)
    assert linger["requests"].tolist() == sorted(linger["requests"], reverse=True)
    assert linger["latency_p50_ms"].iloc[0] < linger["latency_p50_ms"].iloc[1] < \
        linger["latency_p50_ms"].iloc[2]
    assert linger.loc["linger.ms=20"].equals(linger.loc["linger.ms=100"])
    assert round(linger.loc["linger.ms=20", "records_per_batch"]) == 128


def test_lesson01_batch_size_trades_latency_for_fewer_requests():
    """Section 2: bigger batch.size: more records per batch, fewer requests, more latency."""
    t = lessons.compare({f"batch.size={size}": {"config": {"batch.size": size}}
                         for size in (4096, 16384, 65536)}, records=50_000).table
    assert t["records_per_batch"].is_monotonic_increasing
    assert t["requests"].is_monotonic_decreasing
    assert t["latency_p50_ms"].is_monotonic_increasing


def test_lesson01_zipf_busiest_partition_over_three_times_even():
    """Section 3: Zipf s=1.2 → busiest > 3× even share; uniform keys about 1.1×."""
    assert lessons.run(keys="zipf", zipf_s=1.2).stats["max_over_even"] > 3
    assert lessons.run(keys="uniform").stats["max_over_even"] == pytest.approx(1.1, abs=0.05)


def test_lesson01_partition_count_changes():
    """Section 4: 12→24 moves about half of the 1,000 keys, 12→13 about 92 %."""
    moves = lessons.moved_fractions(KEYS, 12, [6, 13, 16, 24]).set_index("new_partitions")
    assert moves.loc[24, "moved_fraction"] == pytest.approx(0.5, abs=0.03)
    assert moves.loc[13, "moved_fraction"] == pytest.approx(0.92, abs=0.02)
    assert moves.loc[13, "expected_fraction"] == pytest.approx(1 - 12 / 156)
    for m in (6, 13, 16, 24):
        assert moves.loc[m, "moved_fraction"] == pytest.approx(
            lessons.expected_moved_fraction(12, m), abs=0.03)


@pytest.fixture(scope="module")
def slow() -> pd.DataFrame:
    no_linger = {"linger.ms": 0}
    return lessons.compare({
        "KIP-480 sticky (3.8)": {"partitioner": "kip-480", "config": no_linger},
        "uniform sticky, not adaptive": {
            "config": {**no_linger, "partitioner.adaptive.partitioning.enable": False}},
        "uniform sticky, adaptive": {"config": no_linger},
        "adaptive + availability timeout 10 ms": {
            "config": {**no_linger, "partitioner.availability.timeout.ms": 10}},
    }, records=50_000, slow_broker=0, slowdown=100).table


def test_lesson01_defaults_the_lesson_quotes():
    """Sections 2 and 5: batch.size 16 KiB, linger.ms 5 (Kafka 4.0), adaptive on, timeout off;
    section 7: 20 VIPs with 80 % of the traffic and 200 ordinary customers."""
    producer = config.PRODUCER.defaults()
    assert producer["batch.size"] == 16384
    assert producer["linger.ms"] == 5
    assert producer["partitioner.adaptive.partitioning.enable"] is True
    assert producer["partitioner.availability.timeout.ms"] == 0
    customers = vip_customers()
    vips = [k for k in customers.key_list if k.startswith("vip-")]
    assert len(vips) == 20
    assert len(customers.key_list) - len(vips) == 200
    assert customers.probabilities()[:20].sum() == pytest.approx(0.8)


def test_lesson01_slow_broker_leads_4_of_12_partitions():
    """Section 5: broker 0 leads 4 of the 12 partitions."""
    kernel = lessons.producer_kernel(records=10, slow_broker=0, slowdown=100)
    partitions, _brokers = lessons.cluster_state(kernel)
    assert int((partitions["leader"] == 0).sum()) == 4


def test_lesson01_kip480_piles_onto_the_slow_broker(slow):
    """Section 5: KIP-480 gives the slow broker over 90 % of records and latency explodes."""
    kip480 = slow.loc["KIP-480 sticky (3.8)"]
    assert kip480["slow_broker_share"] > 0.9
    assert kip480["latency_p50_ms"] > 100 * slow.loc["uniform sticky, adaptive",
                                                     "latency_p50_ms"]


def test_lesson01_adaptive_partitioning_routes_around_the_slow_broker(slow):
    """Section 5: not adaptive > 1/3; adaptive < 1/3; with the availability timeout, less."""
    share = slow["slow_broker_share"]
    assert share["uniform sticky, not adaptive"] > 1 / 3
    assert share["uniform sticky, adaptive"] < 1 / 3
    assert share["adaptive + availability timeout 10 ms"] < share["uniform sticky, adaptive"]


def test_lesson01_round_robin_kafka_9965():
    """Section 6: Kafka 3.8: only partitions 1 and 3 get records (1,000 each); 4.0: 500 each."""
    rr = lessons.compare({
        "Kafka 3.8": {"partitioner": "round-robin-3.8"},
        "Kafka 4.0": {"partitioner": "round-robin"},
    }, partitions=4, brokers=2, records=2_000, rate_per_s=100, config={"linger.ms": 0})
    assert rr.runs["Kafka 3.8"].partitions["records"].tolist() == [0, 1000, 0, 1000]
    assert rr.runs["Kafka 4.0"].partitions["records"].tolist() == [500, 500, 500, 500]


def test_lesson01_vip_partitioner():
    """Section 7: 0–7 hold 80 % and only VIPs; one VIP partition is empty; the busiest VIP
    partition has two to three times the load of the lightest used one."""
    vip = lessons.run(partitioner="vip", partitions=10, keys="vip", records=50_000,
                      rate_per_s=50_000)
    records = vip.partitions["records"]
    assert records[:8].sum() / records.sum() == pytest.approx(0.8, abs=0.01)
    placed = vip.records
    assert placed.loc[placed["partition"] < 8, "key"].str.startswith("vip-").all()
    assert not placed.loc[placed["partition"] >= 8, "key"].str.startswith("vip-").any()
    vip_parts = records[:8]
    assert int((vip_parts == 0).sum()) == 1
    ratio = vip_parts.max() / vip_parts[vip_parts > 0].min()
    assert 2 <= ratio <= 3
