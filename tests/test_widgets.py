"""Specification of the widget panels, through their plain callbacks (no browser needed).

The playground's ``simulate_playground`` / ``render`` / ``stats_html``, the stepper's
``step_forward`` / ``step_back`` / ``seek_time`` / ``seek_step``, and the factories' behaviour
while grading (``KAFKA_LAB_GRADING=1``: no widgets at all).
"""

from __future__ import annotations

import importlib
import re

import ipywidgets
import pandas as pd
import pytest
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font

from sim import lessons, scenarios, widgets

# The package re-exports the factories playground() and stepper() under the modules' names.
playground_module = importlib.import_module("sim.widgets.playground")
stepper_module = importlib.import_module("sim.widgets.stepper")

SMALL = {"records": 5_000}  # keeps each playground run in the tens of milliseconds


def small_factory():
    """A fresh kernel for a short keyed run (a few hundred events)."""
    return lessons.producer_kernel(seed=3, partitions=6, records=200, rate_per_s=2_000,
                                   keys="uniform")


# --- Playground -------------------------------------------------------------------------------


@pytest.mark.parametrize("partitioner", list(lessons.PARTITIONERS))
def test_simulate_playground_runs_every_partitioner(partitioner):
    """Each dropdown choice runs, sends every record and names its Kafka version."""
    values = {**SMALL, "partitioner": partitioner}
    if partitioner == "vip":
        values.update(partitions=10, keys="vip")
    result = widgets.simulate_playground(values)
    assert result.ok, result.message
    assert result.summary.partitions["records"].sum() == 5_000
    version = lessons.PARTITIONERS[partitioner].kafka_version
    assert f"Kafka {version} client" in result.header
    assert "linger.ms=5" in result.header
    assert "batch.size=16384" in result.header
    fig = widgets.render(result)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    assert len(fig.axes[0].patches) == values.get("partitions", 12)
    assert "records / batch" in widgets.stats_html(result)


def test_simulate_playground_applies_producer_configs():
    """batch.size and linger.ms reach the producer: smaller batches mean more of them."""
    small = widgets.simulate_playground({**SMALL, "batch.size": 4096})
    large = widgets.simulate_playground({**SMALL, "batch.size": 65536, "linger.ms": 50})
    assert small.stats["batches"] > large.stats["batches"]
    assert "batch.size=4096" in small.header


def test_simulate_playground_reports_the_slow_broker():
    """A slow broker shows in the header and in the statistics."""
    result = widgets.simulate_playground({**SMALL, "slow_broker": 1, "slowdown": 50})
    assert result.ok
    assert "broker 1 ×50 slower" in result.header
    assert "slow broker's share" in widgets.stats_html(result)


@pytest.mark.parametrize(("values", "expected"), [
    ({"partitioner": "vip", "partitions": 8}, "needs at least 9"),
    ({"slow_broker": 2, "brokers": 2}, "no broker 2"),
    ({"rate_per_s": 0}, "rate_per_s must be positive"),
    ({"batch.size": -1}, "batch.size"),
    ({"bogus": 1}, "Unknown playground setting"),
])
def test_invalid_combination_gives_a_message_not_an_exception(values, expected):
    """Settings that cannot run together come back as a message, drawn and shown as HTML."""
    result = widgets.simulate_playground({**SMALL, **values})
    assert not result.ok
    assert expected in result.message
    assert "Kafka" in result.header
    assert isinstance(widgets.render(result), Figure)
    assert "Cannot run this combination" in widgets.stats_html(result)


def test_simulate_playground_is_deterministic():
    """Same values, same seed: identical per-partition counts and batch trace."""
    a = widgets.simulate_playground({**SMALL, "keys": "zipf"})
    b = widgets.simulate_playground({**SMALL, "keys": "zipf"})
    pd.testing.assert_frame_equal(a.summary.partitions, b.summary.partitions)
    pd.testing.assert_frame_equal(a.summary.batches, b.summary.batches)


def test_low_rates_simulate_at_most_two_seconds_of_traffic():
    """At 1,000 records/s the playground sends 2,000 records, not 100,000."""
    result = widgets.simulate_playground({"rate_per_s": 1000})
    assert result.records == 2_000
    assert result.summary.partitions["records"].sum() == 2_000


def test_playground_panel_reruns_when_a_control_changes():
    """Changing a control re-simulates; an invalid choice shows the message in the panel."""
    panel = widgets.playground(**SMALL)
    assert isinstance(panel, ipywidgets.Widget)
    assert panel.result.ok
    assert panel.image.value[:4] == b"\x89PNG"
    assert "Kafka 4.0 client" in panel.header.value
    panel.controls["partitions"].value = 8
    panel.controls["partitioner"].value = "vip"
    assert not panel.result.ok
    assert "needs at least 9" in panel.stats.value
    panel.controls["partitions"].value = 10
    assert panel.result.ok
    assert panel.values()["partitioner"] == "vip"


def test_an_invalid_combination_shows_its_message_once_and_no_figure():
    """The VIP partitioner on 8 partitions: the message once (in the statistics box), no
    empty figure, and a header in Kafka's spelling (``true``, not Python's ``True``) without
    the built-in partitioner's configs."""
    panel = widgets.playground(**SMALL, partitioner="vip", partitions=8)
    assert not panel.result.ok
    assert panel.image.layout.display == "none"
    shown = panel.header.value + panel.stats.value
    assert shown.count("needs at least 9") == 1
    assert "True" not in panel.header.value
    assert "partitioner." not in panel.header.value
    panel.controls["partitions"].value = 10
    assert panel.result.ok
    assert panel.image.layout.display is None


@pytest.mark.parametrize(("partitioner", "lists_them"),
                         [("built-in", True), ("round-robin", False), ("vip", False)])
def test_playground_header_lists_partitioner_configs_only_for_the_built_in_one(partitioner,
                                                                              lists_them):
    """Kafka ignores partitioner.adaptive.partitioning.enable, partitioner.ignore.keys and
    partitioner.availability.timeout.ms when partitioner.class is set (ProducerConfig docs)."""
    result = widgets.simulate_playground({**SMALL, "partitioner": partitioner,
                                          "partitions": 10, "keys": "vip"})
    assert result.ok
    assert ("partitioner.adaptive.partitioning.enable=true" in result.header) is lists_them
    assert ("partitioner.availability.timeout.ms" in result.header) is lists_them
    assert "linger.ms=5" in result.header


def test_threaded_panel_shows_busy_then_only_the_latest_values():
    """In a live kernel a change re-simulates in the background: the panel is busy at once,
    and when controls move faster than runs finish only the latest values' run is shown."""
    panel = widgets.playground(**SMALL)
    panel.threaded = True
    runs = []
    simulate = panel.simulate

    def counted(values):
        runs.append(values["partitions"])
        return simulate(values)

    panel.simulate = counted
    for partitions in (5, 6, 7, 8):
        panel.controls["partitions"].value = partitions
    assert panel.is_busy
    result = panel.wait()
    assert not panel.is_busy
    assert result.values["partitions"] == 8
    assert len(result.summary.partitions) == 8
    assert runs[-1] == 8
    assert len(runs) < 4  # stale values were skipped, not each simulated and shown


def test_row_html_shows_numbers_as_rounded_and_nan_as_an_empty_cell():
    """148.8 stays 148.8 (not 148.800), large numbers get separators and no exponent, NaN
    shows nothing."""
    from sim.widgets.panel import row_html

    html = row_html({"records / batch": 148.8, "peak": 12345.5, "from (s)": float("nan"),
                     "batches": 672, "rate": 2_500_000.0})
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html)
    assert cells == ["148.8", "12,345.5", "", "672", "2,500,000"]
    assert "padding" in html


def test_playground_greys_out_controls_that_do_not_apply():
    """The skew slider works only for Zipf keys, the slowdown only with a slow broker."""
    panel = widgets.playground(**SMALL)
    assert panel.controls["zipf_s"].disabled
    assert panel.controls["slowdown"].disabled
    panel.controls["keys"].value = "zipf"
    panel.controls["slow_broker"].value = 1
    assert not panel.controls["zipf_s"].disabled
    assert not panel.controls["slowdown"].disabled


def test_playground_greys_out_the_built_in_partitioners_configs_for_a_custom_one():
    """partitioner.adaptive.partitioning.enable and partitioner.availability.timeout.ms tune
    only the built-in partitioner; the timeout only while adaptive partitioning is on."""
    panel = widgets.playground(**SMALL)
    adaptive = panel.controls["partitioner.adaptive.partitioning.enable"]
    timeout = panel.controls["partitioner.availability.timeout.ms"]
    assert not adaptive.disabled
    assert not timeout.disabled
    adaptive.value = False
    assert not adaptive.disabled
    assert timeout.disabled
    adaptive.value = True
    panel.controls["partitioner"].value = "kip-480"
    assert adaptive.disabled
    assert timeout.disabled


def test_playground_slow_broker_menu_shows_none_and_every_broker():
    """The menu shows "none" selected (a Dropdown whose value is None shows a blank), offers
    each broker the brokers slider allows, and a broker that the run lacks gets a message."""
    panel = widgets.playground(**SMALL)
    menu = panel.controls["slow_broker"]
    assert menu.label == "none"
    assert panel.result.summary.slow_brokers == {}
    assert [label for label, _ in menu.options][1:] == [
        str(b) for b in range(panel.controls["brokers"].max)]
    panel.controls["brokers"].value = 5
    menu.value = 4
    assert panel.result.ok
    assert panel.result.summary.slow_brokers == {4: 10.0}
    panel.controls["brokers"].value = 2
    assert not panel.result.ok
    assert "no broker 4" in panel.stats.value


def test_playground_partitioner_names_fit_their_drop_down():
    """The partitioner drop-down (430 pixels, 130 of them its description) showed
    "VipPartitioner: VIPs on 8 partitions (Kafka 4.0" and lost the rest: every name is at most
    290 pixels of 13-pixel DejaVu Sans, the width of the longest one that showed whole."""
    font = FT2Font(font_manager.findfont("DejaVu Sans"))
    font.set_size(13, 72)  # 13 points at 72 dpi: 13 pixels
    menu = widgets.playground(**SMALL).controls["partitioner"]
    assert menu.layout.width == "430px"
    for label, _value in menu.options:
        font.set_text(label)
        assert font.get_width_height()[0] / 64 <= 290, label


def test_playground_accepts_defaults_off_the_slider_steps():
    """A batch.size that is not one of the slider's steps is added to its options."""
    panel = widgets.playground(**{**SMALL, "batch.size": 10_000})
    assert panel.controls["batch.size"].value == 10_000


def test_key_explorer_shows_each_step():
    """Typing a key shows murmur2, toPositive and the partition."""
    panel = widgets.key_explorer("alice", partitions=6)
    assert "partition 3" in panel.output.value
    panel.key.value = "b"
    panel.partitions.value = 3
    assert "-1,853,091,852" in panel.output.value
    assert "partition 2" in panel.output.value


# --- Stepper ----------------------------------------------------------------------------------


def test_new_state_measures_the_whole_run():
    """The probe run counts every event; the state starts at time 0."""
    state = widgets.new_state(small_factory)
    kernel = small_factory().run()
    assert state.steps == 0
    assert state.total_steps > 0
    assert state.end_ms == kernel.now_ms
    assert len(state.kernel.trace) == 0


def test_step_back_then_forward_gives_the_identical_trace():
    """Deterministic re-execution: back one event and forward again is a no-op."""
    state = widgets.step_forward(widgets.new_state(small_factory), 40)
    before = state.kernel.trace.to_frame()
    widgets.step_back(state)
    assert state.steps == 39
    widgets.step_forward(state)
    assert state.steps == 40
    pd.testing.assert_frame_equal(state.kernel.trace.to_frame(), before)


def test_step_back_several_and_at_time_zero():
    """Stepping back n events replays steps − n; stepping back at 0 stays at 0."""
    state = widgets.step_forward(widgets.new_state(small_factory), 30)
    widgets.step_back(state, 10)
    reference = widgets.step_forward(widgets.new_state(small_factory), 20)
    pd.testing.assert_frame_equal(state.kernel.trace.to_frame(),
                                  reference.kernel.trace.to_frame())
    widgets.reset(state)
    widgets.step_back(state)
    assert state.steps == 0
    assert state.now_ms == 0.0


def test_step_forward_stops_at_the_end():
    """Stepping past the last event stops there and marks the run finished."""
    state = widgets.new_state(small_factory)
    widgets.step_forward(state, state.total_steps + 100)
    assert state.steps == state.total_steps
    assert state.finished
    assert state.now_ms == state.end_ms


def test_seek_time_forward_and_back():
    """Seeking lands on the last event at or before the time, from either direction."""
    state = widgets.new_state(small_factory)
    widgets.seek_time(state, 50.0)
    at_50 = state.kernel.trace.to_frame()
    assert at_50["time_ms"].max() <= 50.0
    assert state.kernel.env.peek() > 50.0
    widgets.seek_time(state, 80.0)
    widgets.seek_time(state, 50.0)
    pd.testing.assert_frame_equal(state.kernel.trace.to_frame(), at_50)


def test_seek_step_matches_stepping():
    """seek_step(n) equals n single steps, forward or backward."""
    state = widgets.seek_step(widgets.new_state(small_factory), 25)
    widgets.seek_step(state, 10)
    reference = widgets.step_forward(widgets.new_state(small_factory), 10)
    pd.testing.assert_frame_equal(state.kernel.trace.to_frame(),
                                  reference.kernel.trace.to_frame())


def test_recent_events_and_cluster_figure():
    """The event table keeps only used columns; the cluster figure has one box per broker."""
    state = widgets.step_forward(widgets.new_state(small_factory), 5)
    frame = widgets.recent_events(state, 3)
    assert len(frame) == 3
    assert not frame.isna().all().any()
    fig = stepper_module.cluster_figure(state)
    assert isinstance(fig, Figure)
    assert f"event #{state.events - 1} of" in stepper_module.status_text(state)


def test_stepper_on_a_scenario():
    """A scenario's build() is a valid factory."""
    state = widgets.new_state(lambda: scenarios.load("round-robin-kafka-9965").build())
    widgets.seek_time(state, 100.0)
    assert state.now_ms <= 100.0
    assert state.steps > 0


def test_stepper_panel_buttons_and_slider():
    """The panel's buttons and time slider drive the same state as the plain functions; step
    ▶, ◀ step back and play move by "events / tick" trace events (a simulation step that
    writes several events moves by all of them, and back undoes it whole)."""
    panel = widgets.stepper(small_factory, title="test")
    assert isinstance(panel, ipywidgets.Widget)
    mirror = widgets.new_state(small_factory)

    def moved(n: int) -> None:
        widgets.step_events(mirror, n)
        assert (panel.state.steps, panel.state.events) == (mirror.steps, mirror.events)

    panel.step_button.click()
    moved(1)
    first = panel.state.events
    panel.step_button.click()
    moved(1)
    assert panel.state.events > first
    panel.back_button.click()
    moved(-1)
    assert panel.state.events == first
    assert f"event #{first - 1} of #" in panel.status.value
    panel.time.value = 40.0
    assert panel.state.now_ms <= 40.0
    widgets.seek_time(mirror, 40.0)
    panel.speed.value = 5
    events = panel.state.events
    panel.step_button.click()
    moved(5)
    assert panel.state.events >= events + 5
    panel.play.value = 1
    moved(5)
    assert panel.state.events >= events + 10
    panel.back_button.click()
    moved(-5)
    assert events + 5 <= panel.state.events < events + 10
    panel.reset_button.click()
    assert panel.state.steps == 0
    assert "event none yet of #" in panel.status.value
    assert panel.image.value[:4] == b"\x89PNG"


def test_step_events_moves_by_trace_events_both_ways():
    """step_events(n) adds exactly n trace events (fewer at the end) and step_events(-n)
    comes back to the same trace as stepping forward that far."""
    state = widgets.new_state(small_factory)
    widgets.step_events(state, 7)
    assert state.events == 7
    first = state.kernel.trace.to_frame()
    widgets.step_events(state, 5)
    widgets.step_events(state, -5)
    assert state.events == 7
    pd.testing.assert_frame_equal(state.kernel.trace.to_frame(), first)
    widgets.step_events(state, -100)
    assert state.events == 0
    widgets.step_events(state, 10**9)
    assert state.events == state.total_events
    assert state.finished


def test_status_numbers_events_as_the_trace_and_bookmarks_do():
    """One numbering: the read-out names the last trace seq and the run's last seq."""
    state = widgets.new_state(small_factory)
    widgets.step_events(state, 3)
    text = stepper_module.status_text(state)
    assert text.startswith(f"event #2 of #{state.total_events - 1:,}")
    assert f"(run ends at {state.end_ms:,.3f}".rstrip("0").rstrip(".") + " ms)" in text
    assert not re.search(r"\.\d*0 ms", text)  # no trailing zeros (6,000.000 ms)


def test_recent_events_show_time_to_the_microsecond():
    """No six-decimal times in the tour's event table: the trace's clock is read in µs."""
    state = widgets.step_forward(widgets.new_state(small_factory), 200)
    raw = state.kernel.trace.tail(30)["time_ms"]
    assert (raw != raw.round(3)).any()  # the clock itself has finer fractions
    times = widgets.recent_events(state, 30)["time_ms"]
    assert (times == times.round(3)).all()


def test_restarting_a_running_broker_is_a_message_not_a_fault():
    """Restart applies to a crashed broker; on a running one it is refused and not logged."""
    state = widgets.new_fault_state(widgets.live_cluster({"acks": "all"}))
    widgets.run_forward(state, 500)
    widgets.fire(state, "restart", 1, run_ms=100)
    assert "broker 1 is running" in state.message
    assert state.history == []
    assert "restart" not in " ".join(lessons.replication_events(state.kernel)["what"])
    widgets.fire(state, "crash", 1, run_ms=100)
    widgets.fire(state, "restart", 1, run_ms=100)
    assert state.message is None
    assert [what for _, what in state.history] == ["crash broker 1", "restart broker 1"]


def test_panels_state_the_config_line_once():
    """The stepper's and the fault panel's figures leave the config line to the panel's
    header; the standalone figures keep it."""
    factory = widgets.live_cluster({"acks": "1"})
    panel = widgets.stepper(factory, view="replication", until_ms=500)
    line = lessons.config_header(panel.state.kernel, "replication")
    assert line not in panel.view.figure(panel.state).axes[0].get_title()
    assert line[:40] in widgets.replication_figure(panel.state).axes[0].get_title()
    state = widgets.new_fault_state(factory)
    assert "acks=1" not in widgets.fault_figure(state, header=False).axes[0].get_title()
    assert "acks=1" in widgets.fault_figure(state).axes[0].get_title()


def test_story_tables_show_their_sentences_whole():
    """pandas shortens text past 50 characters to "..."; the replication story keeps every
    sentence whole in a notebook, and stays one such table when sliced."""
    state = widgets.new_fault_state(widgets.live_cluster({"acks": "all"}))
    widgets.run_forward(state, 500)
    widgets.fire(state, "crash", 0, run_ms=12_000)
    story = lessons.replication_events(state.kernel).tail(8)
    long = [what for what in story["what"] if len(what) > 50]
    assert long
    html = story._repr_html_()
    assert all(what in html for what in long)
    assert "..." not in html


def test_stepper_and_fault_panel_show_a_busy_line_while_they_work():
    """A replay or a fault run shows a busy line while it computes, and clears it after."""
    stepper = widgets.stepper(small_factory)
    fault = widgets.fault_panel(configs={"acks": "all"}, run_ms=100)
    for panel, method in ((stepper, stepper._move), (fault, fault._work)):
        seen = []

        def work(panel=panel, seen=seen):
            seen.append(panel.busy.value)
            return panel.state

        method(work)
        assert "⏳" in seen[0]
        assert panel.busy.value == ""


# --- Grading mode -----------------------------------------------------------------------------


def test_grading_mode_builds_no_widgets(monkeypatch):
    """With KAFKA_LAB_GRADING=1 every factory returns a placeholder and builds nothing."""
    monkeypatch.setenv("KAFKA_LAB_GRADING", "1")

    def no_widgets(*_args, **_kwargs):
        raise AssertionError("a widget was built while grading")

    monkeypatch.setattr(playground_module, "PlaygroundPanel", no_widgets)
    monkeypatch.setattr(playground_module, "KeyExplorerPanel", no_widgets)
    monkeypatch.setattr(stepper_module, "StepperPanel", no_widgets)
    made = [widgets.playground(), widgets.key_explorer(),
            widgets.stepper(small_factory, title="s")]
    for placeholder in made:
        assert isinstance(placeholder, widgets.GradingPlaceholder)
        assert not isinstance(placeholder, ipywidgets.Widget)
        assert "not built while grading" in repr(placeholder)
        assert "KAFKA_LAB_GRADING=1" in placeholder._repr_html_()


def test_grading_mode_only_when_set_to_1(monkeypatch):
    """Only the value "1" switches grading mode on."""
    monkeypatch.setenv("KAFKA_LAB_GRADING", "0")
    assert not widgets.grading_mode()
    monkeypatch.delenv("KAFKA_LAB_GRADING")
    assert not widgets.grading_mode()
    monkeypatch.setenv("KAFKA_LAB_GRADING", "1")
    assert widgets.grading_mode()


def test_table_html_aligns_text_left_and_numbers_right_without_trailing_zeros():
    """A step table's sentences read from their start (left), its numbers line up on the
    right; a time of 51,065.2 ms shows as that, not 51065.200, and 7,000 without decimals."""
    from sim.widgets.panel import table_html

    frame = pd.DataFrame({"time_ms": [51065.2, 7000.0], "step": ["crash", "restore end"],
                          "offset": pd.array([12, None], dtype="Int64")})
    html = table_html(frame)
    aligns = re.findall(r"<t[hd] [^>]*text-align: (\w+)", html)
    assert aligns == ["right", "left", "right"] * 3
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html)
    assert cells == ["51,065.2", "crash", "12", "7,000", "restore end", ""]


def test_table_html_is_compact_escaped_and_breaks_long_headers():
    """The stepper's trace table: no index, 3 decimals, blanks for missing values, 12-pixel text
    9 pixels apart and headers that may break after an underscore, so that thirteen columns fit
    an 848-pixel output (at 14 pixels apart they were 987); text is escaped."""
    from sim.widgets.panel import table_html

    frame = pd.DataFrame({"time_ms": [5.701325], "kind": ["<b>x</b>"],
                          "offset": pd.array([None], dtype="Int64")})
    html = table_html(frame)
    assert "time_<wbr>ms</th>" in html
    assert "5.701<" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "NA" not in html
    assert "padding: 2px 9px 2px 0" in html
    assert "font-size: 12px" in html
