"""Specification of lesson 02's computations, figures and panels (replication).

The first part pins ``sim.lessons.replication``, the replication figures of ``sim.viz`` and the
stepper's replication view and fault panel of ``sim.widgets`` through their plain functions. The
second part backs, one test per claim, every number the markdown of
``notebooks/02_replication.ipynb`` states, calling the same functions with the same arguments as
the notebook cells.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import ipywidgets
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from sim import faults, lessons, scenarios, viz, widgets
from sim import trace as events
from sim.audit import audit_kernel
from sim.errors import ConfigError, SimulationError
from sim.kernel import Kernel

SAFE = {"acks": "all", "min.insync.replicas": 2}  # the lesson's live cluster


def _acks1() -> scenarios.Scenario:
    return scenarios.load("acks1-leader-crash")


@pytest.fixture(scope="module")
def acks1_run() -> Kernel:
    """The built-in acks1-leader-crash scenario, run to its end."""
    return _acks1().run()


@pytest.fixture(scope="module")
def unclean_run() -> Kernel:
    """The built-in unclean-election scenario, run to its end."""
    return scenarios.load("unclean-election").run()


def _by_broker(snapshot: pd.DataFrame) -> dict[int, dict[str, object]]:
    return {int(row["broker"]): row for row in snapshot.to_dict("records")}


# --- Snapshots and broker states ----------------------------------------------------------------


def test_snapshot_has_one_row_per_replica_with_the_documented_columns():
    """Three replicas of payments-0: leader 0, followers 1 and 2, all in sync, at time 0."""
    kernel = lessons.replication_kernel(SAFE)
    snapshot = lessons.replication_snapshot(kernel)
    assert tuple(snapshot.columns) == lessons.SNAPSHOT_COLUMNS
    assert list(snapshot["broker"]) == [0, 1, 2]
    assert list(snapshot["role"]) == ["leader", "follower", "follower"]
    assert snapshot["in_isr"].all()
    assert (snapshot["broker_state"] == "up").all()
    assert list(snapshot["believes_leader"]) == [True, False, False]
    assert (snapshot["log_end_offset"] == 0).all()


def test_snapshot_high_watermark_is_the_smallest_leo_of_the_isr_after_replication():
    """With followers caught up, the HW equals every in-sync replica's log end offset."""
    kernel = lessons.advance(lessons.replication_kernel(SAFE), 2_000)
    snapshot = lessons.replication_snapshot(kernel)
    in_sync = snapshot[snapshot["in_isr"]]
    assert (snapshot["high_watermark"] == in_sync["log_end_offset"].min()).all()


def test_snapshot_shows_an_offline_partition_and_the_zombie_leader():
    """A crashed, unfenced leader is still the leader; a partition without replicas is offline."""
    kernel = lessons.replication_kernel({"acks": "1"}, rate_per_s=0.001)
    faults.CrashBroker(0).apply(kernel)
    rows = _by_broker(lessons.replication_snapshot(kernel))
    assert rows[0]["role"] == "leader"
    assert rows[0]["broker_state"] == "down"
    for b in (1, 2):
        faults.CrashBroker(b).apply(kernel)
    lessons.advance(kernel, 10_000)
    snapshot = lessons.replication_snapshot(kernel)
    assert (snapshot["role"] == "offline").all()
    assert (snapshot["leader"] == -1).all()


def test_broker_state_up_down_fenced_isolated():
    """up by default; isolated when cut from every broker or the controller; fenced; down."""
    kernel = lessons.replication_kernel(SAFE, rate_per_s=0.001)
    assert [lessons.broker_state(kernel, b) for b in range(3)] == ["up"] * 3
    faults.NetworkPartition((2,), (0, 1)).apply(kernel)
    assert [lessons.broker_state(kernel, b) for b in range(3)] == ["up", "up", "isolated"]
    faults.NetworkPartition((1,), ("controller",)).apply(kernel)
    assert lessons.broker_state(kernel, 1) == "isolated"
    lessons.advance(kernel, 10_000)
    assert lessons.broker_state(kernel, 1) == "fenced"
    faults.CrashBroker(0).apply(kernel)
    assert lessons.broker_state(kernel, 0) == "down"


# --- Replication runs ---------------------------------------------------------------------------


def test_replication_kernel_routes_configs_by_kafka_tables():
    """Producer configs go to the producer, topic configs to the topic; RF places replicas."""
    kernel = lessons.replication_kernel({"acks": "1", "min.insync.replicas": 2,
                                         "unclean.leader.election.enable": True,
                                         "replication.factor": 2})
    producer = kernel.clients[0]
    topic = kernel.cluster.topic(lessons.REPLICATION_TOPIC)
    assert producer.config["acks"] == "1"
    assert topic.config["min.insync.replicas"] == 2
    assert topic.config["unclean.leader.election.enable"] is True
    assert topic.partitions[0].replicas == [0, 1]


@pytest.mark.parametrize(("configs", "message"), [
    ({"min.insync.replica": 2}, "Did you mean min.insync.replicas"),
    ({"replication.factor": 4}, "between 1 and the number of brokers"),
    ({"replication.factor": "3"}, "whole number"),
    ({"acks": "1", "enable.idempotence": True}, "conflicts with acks=1"),
    ({"acks": "most"}, "acks"),
])
def test_replication_kernel_rejects_bad_configs_with_a_clear_error(configs, message):
    """Unknown names, impossible replication factors and refused combinations are errors."""
    with pytest.raises(ConfigError, match=message):
        lessons.replication_kernel(configs)


def test_replication_kernel_sends_only_in_its_traffic_windows():
    """Two windows at 100 records/s give 100 + 50 records, sent only inside the windows."""
    run = lessons.replication_run(rate_per_s=100, traffic_ms=[(0, 1_000), (3_000, 3_500)])
    records = run.kernel.clients[0].results()
    assert len(records) == 150
    sent = records["send_ms"]
    assert (((sent >= 0) & (sent < 1_000)) | ((sent >= 3_000) & (sent < 3_500))).all()
    assert run.end_ms == 13_500


def test_replication_kernel_is_replayable():
    """reset() rebuilds the identical run, faults included."""
    kernel = lessons.replication_kernel(SAFE, faults=[(500, faults.CrashBroker(1))])
    lessons.advance(kernel, 12_000)
    first = kernel.trace.to_frame()
    kernel.reset()
    lessons.advance(kernel, 12_000)
    pd.testing.assert_frame_equal(kernel.trace.to_frame(), first)


def test_advance_moves_the_clock_and_refuses_to_spin_forever():
    """advance() reaches until_ms; a run stuck at one instant raises a SimulationError."""
    kernel = Kernel(seed=0, brokers=1)
    assert lessons.advance(kernel, 1_234).now_ms == 1_234

    def spin():
        while True:
            yield kernel.env.timeout(0)

    kernel.env.process(spin())
    with pytest.raises(SimulationError, match="stopped advancing at 1234"):
        lessons.advance(kernel, 5_000, stall_steps=1_000)


def test_delivery_outcome_counts_only_records_already_sent():
    """Mid-run, future records of the workload are not counted: at 1,000 ms the records sent
    at 0, 5, …, 1,000 ms (201 of them) are."""
    kernel = lessons.advance(lessons.replication_kernel(SAFE), 1_000)
    outcome = lessons.delivery_outcome(kernel)
    assert tuple(outcome) == lessons.OUTCOME_COLUMNS
    assert outcome["sent"] == 201
    assert outcome["acknowledged"] + outcome["waiting"] + outcome["failed"] == 201


@pytest.mark.parametrize("name", ["acks1-leader-crash", "unclean-election", "safe-replication",
                                  "isr-shrink", "retries-duplicates"])
def test_delivery_outcome_agrees_with_the_audit(name):
    """lost = the audit's lost-write + unseen; duplicates = the audit's duplicates."""
    kernel = scenarios.load(name).run()
    outcome = lessons.delivery_outcome(kernel)
    report = audit_kernel(kernel)
    assert outcome["lost"] == report.lost + report.unseen
    assert outcome["duplicates"] == report.duplicates
    assert outcome["acknowledged"] == report.acknowledged


def test_broker_metric_changes_count_isr_changes_errors_and_truncations(acks1_run):
    """acks1-leader-crash: broker 1 won one election and expanded the ISR once; broker 0 lost
    600 records to truncation."""
    metrics = lessons.broker_metric_changes(acks1_run).set_index("broker")
    assert metrics.loc[1, "leader_elections"] == 1
    assert metrics.loc[1, "isr_expands"] == 1
    assert metrics.loc[1, "leader_partitions"] == 1
    assert metrics.loc[0, "records_truncated"] == 600
    assert metrics["failed_produce_requests"].sum() == 0
    totals = lessons.metric_totals(acks1_run)
    assert tuple(totals) == lessons.METRIC_COLUMNS
    assert totals["under_replicated_max"] == 1
    assert totals["under_replicated_end"] == 0


def test_failed_produce_requests_count_what_kafka_counts(produce_errors_kernel: Kernel):
    """``FailedProduceRequestsPerSec`` is marked for refused appends (NOT_ENOUGH_REPLICAS, an
    out-of-order sequence), not for NOT_LEADER_OR_FOLLOWER (``ReplicaManager.appendToLocalLog``)
    nor for an acks=all request that timed out waiting, which is an expired delayed produce
    (``ExpiresPerSec``)."""
    kernel = produce_errors_kernel
    metrics = lessons.broker_metric_changes(kernel).set_index("broker")
    assert metrics["failed_produce_requests"].to_dict() == {0: 2, 1: 0}
    assert metrics["expired_produce_requests"].to_dict() == {0: 1, 1: 1}
    totals = lessons.metric_totals(kernel)
    assert (totals["failed_produce_requests"], totals["expired_produce_requests"]) == (2, 2)


def test_the_per_broker_table_lets_its_long_column_labels_break(acks1_run):
    """In a notebook a label may break after an underscore (``<wbr>``), so the ten columns fit
    an output about 850 pixels wide; the frame's column names stay as they are."""
    metrics = lessons.broker_metric_changes(acks1_run)
    html = metrics.set_index("broker")._repr_html_()
    assert "<th>failed_<wbr>produce_<wbr>requests</th>" in html
    assert "<th>under_<wbr>replicated_<wbr>partitions</th>" in html
    assert "failed_produce_requests" in metrics.columns
    assert "<wbr>" not in metrics.to_string()


def test_replication_events_tell_the_story_in_sentences(acks1_run):
    """Faults, broker states, elections, ISR changes and truncations, each with a sentence."""
    story = lessons.replication_events(acks1_run)
    assert set(story["kind"]) <= set(lessons.REPLICATION_KINDS)
    assert story["seq"].is_monotonic_increasing
    assert "clean election of broker 1, leader epoch 1" in " ".join(story["what"])
    assert "broker 0 truncated its log to offset 1000, dropping 600 records" in " ".join(
        story["what"])


def test_the_story_table_aligns_its_sentences_left(acks1_run):
    """JupyterLab aligns table cells right; the story's sentences (and kinds) read from the
    left edge, its numbers stay right: a style rule names exactly the text columns."""
    story = lessons.replication_events(acks1_run)
    html = story._repr_html_()
    rule = re.search(r"<style>(.*?)\{ text-align: left; \}</style>", html)
    assert rule is not None
    columns = [int(k) - 1 - story.index.nlevels for k in
               re.findall(r"td:nth-child\((\d+)\)", rule.group(1))]
    assert [story.columns[c] for c in columns] == ["kind", "what"]


def test_loss_report_groups_lost_records_by_the_event_the_audit_blames(acks1_run):
    """One cause, a truncation, for all 600 lost records; the same seq as the audit's."""
    losses = lessons.loss_report(acks1_run)
    assert len(losses) == 1
    assert losses["cause_seq"].iloc[0] == audit_kernel(acks1_run).lost_records[0]["cause"]["seq"]
    assert losses["records"].sum() == audit_kernel(acks1_run).lost
    assert lessons.loss_report(scenarios.load("safe-replication").run()).empty


def test_bookmarks_name_the_loss_event(acks1_run):
    """The bookmarks are in trace order and include the audit's loss event."""
    marks = lessons.replication_bookmarks(acks1_run)
    seqs = list(marks.values())
    assert seqs == sorted(seqs)
    cause = int(lessons.loss_report(acks1_run)["cause_seq"].iloc[0])
    assert any("acknowledged records lost: 600" in label and seq == cause
               for label, seq in marks.items())


def test_replication_timeline_has_leader_leos_hw_and_marks(acks1_run):
    """Series for each leader's LEO and the HW; the HW never decreases."""
    series, marks = lessons.replication_timeline(acks1_run)
    assert set(series["series"]) == {"LEO broker 0", "LEO broker 1", "HW"}
    hw = series[series["series"] == "HW"]["value"].to_numpy()
    assert (np.diff(hw) >= 0).all()
    assert len(marks) > 0
    assert {"time_ms", "label"} <= set(marks.columns)


def test_config_header_names_version_and_replication_configs():
    """The replication header names Kafka 4.0, acks, idempotence, RF, min ISR, unclean, lag."""
    header = lessons.config_header(lessons.replication_kernel(SAFE), "replication")
    for text in ("Kafka 4.0", "acks=all", "enable.idempotence=true", "replication.factor=3",
                 "min.insync.replicas=2", "unclean.leader.election.enable=false",
                 "replica.lag.time.max.ms=30000"):
        assert text in header
    acks1 = lessons.config_header(lessons.replication_kernel({"acks": "1"}), "replication")
    assert "enable.idempotence=false (off with acks=1)" in acks1
    with pytest.raises(ConfigError, match="focus"):
        lessons.config_header(lessons.replication_kernel(), "consumers")


def test_replication_run_summarises_and_renders():
    """A run shows its header, then its outcome and its metric totals as two one-row tables
    (sixteen columns in one row would not fit a notebook)."""
    run = lessons.replication_run(SAFE, traffic_ms=[(0, 1_000)])
    assert set(lessons.OUTCOME_COLUMNS) <= set(run.row())
    page = run._repr_html_()
    assert "Kafka 4.0" in page
    assert "acknowledged=200" in repr(run)
    outcome, metrics = _tables(page)
    assert outcome[0] == list(lessons.OUTCOME_COLUMNS)
    assert metrics[0] == list(lessons.METRIC_COLUMNS)
    shown = dict(zip(outcome[0] + metrics[0], outcome[1] + metrics[1], strict=True))
    assert shown == {name: f"{value:.1f}" if isinstance(value, float) else str(value)
                     for name, value in run.row().items()}


class _TableText(HTMLParser):
    """The text of each ``<table>`` in a page, as rows of cell strings."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def _tables(page: str) -> list[list[list[str]]]:
    parser = _TableText()
    parser.feed(page)
    return parser.tables


def _shows_every_cell_of(comparison: lessons.Comparison) -> None:
    """``comparison`` is shown as two tables that hold every cell of its ``table``: configs
    and outcome with a row per run, then the metrics with a row per metric and a column per
    run."""
    table = comparison.table
    outcome, metrics = _tables(comparison._repr_html_())
    assert outcome[0] == ["", "configs", *lessons.OUTCOME_COLUMNS]
    assert metrics[0] == [table.index.name, *table.index]
    for row in outcome[2:]:
        expected = table.loc[row[0], ["configs", *lessons.OUTCOME_COLUMNS]]
        assert row[1:] == [f"{v:.1f}" if isinstance(v, float) else str(v) for v in expected]
    assert [row[0] for row in metrics[1:]] == list(lessons.METRIC_COLUMNS)
    for row in metrics[1:]:
        assert row[1:] == [str(v) for v in table[row[0]]]


def test_a_comparison_is_shown_as_two_tables_that_fit_a_notebook(durability):
    """The sixteen columns side by side were 2,194 pixels wide and hid the produce-request
    columns the lesson cites; shown as an outcome table and a metric table, each column a
    learner reads is in view, and no cell is lost. Column labels may break after an
    underscore; row labels only at a space, never inside a word."""
    _shows_every_cell_of(durability)
    page = durability._repr_html_()
    assert "<th>latency_<wbr>p99_<wbr>ms</th>" in page
    nowrap = '<span style="white-space: nowrap">'
    assert f"<th>{nowrap}failed_produce_requests</span></th>" in page
    assert (f"<th>{nowrap}acks=all,</span> {nowrap}min.insync.replicas=3</span></th>"
            in page)
    # the configs (text) are aligned left, the numbers right: a rule names its column only
    rule = re.search(r"<style>(.*?)\{ text-align: left; \}</style>", page)
    assert rule is not None
    assert re.findall(r"td:nth-child\((\d+)\)", rule.group(1)) == ["2"]  # after the run


# --- Figures ----------------------------------------------------------------------------------


def test_replication_view_draws_replicas_hw_and_header():
    """One bar per replica, the leader framed, the HW line and the config line in the title."""
    kernel = lessons.advance(lessons.replication_kernel(
        SAFE, faults=[(500, faults.NetworkPartition((2,), (0, 1)))]), 1_000)
    header = lessons.config_header(kernel, "replication")
    fig = viz.replication_view(lessons.replication_snapshot(kernel), time_ms=kernel.now_ms,
                               header=header)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if p.get_height() > 0]
    assert len(bars) == 3
    assert bars[0].get_linewidth() > bars[1].get_linewidth()  # the leader's frame
    assert bars[2].get_hatch() is None  # broker 2 is still in the ISR, only lagging
    assert "acks=all" in ax.get_title()
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[2] == "broker 2\nfollower\nisolated"
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "HW 100" in texts
    assert "payments-0 · leader 0 · epoch 0 · ISR [0, 1, 2]" in texts


def test_replication_view_marks_replicas_out_of_the_isr_and_offline_partitions():
    """An out-of-sync replica is hatched; a partition without a leader says OFFLINE."""
    snapshot = pd.DataFrame([
        {"topic": "t", "partition": 0, "broker": b, "role": "offline", "leader": -1,
         "leader_epoch": 3, "in_isr": b == 0, "alive": b != 0, "fenced": b == 0,
         "broker_state": "down" if b == 0 else "up", "believes_leader": False,
         "connected_to_leader": False, "log_end_offset": 10 * (b + 1), "high_watermark": 10,
         "replica_high_watermark": 10} for b in range(3)])
    ax = viz.replication_view(snapshot).axes[0]
    bars = [p for p in ax.patches if p.get_height() > 0]
    assert bars[1].get_hatch() == "//"
    assert "OFFLINE" in " ".join(t.get_text() for t in ax.texts)


def test_replication_timeline_figure_has_one_line_per_series(acks1_run):
    """Two leaders' log end offsets and the high watermark, plus a dotted line per mark time."""
    series, marks = lessons.replication_timeline(acks1_run)
    ax = viz.replication_timeline(series, marks).axes[0]
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert "high watermark" in labels
    assert sum(label.startswith("log end offset") for label in labels) == 2


# --- Stepper with the replication view -------------------------------------------------------


def test_stepper_until_ms_ends_the_replay_at_the_scenario_duration():
    """With until_ms the probe stops at the duration; stepping never passes it."""
    scenario = _acks1()
    state = widgets.new_state(scenario.build, until_ms=scenario.duration_ms)
    assert state.end_ms <= scenario.duration_ms
    widgets.step_forward(state, state.total_steps + 50)
    assert state.finished
    assert state.kernel.env.peek() > scenario.duration_ms


def test_seek_event_stops_just_after_the_event_forward_and_back(acks1_run):
    """seek_event(seq) ends with event seq in the trace; going back replays from the start."""
    cause = int(lessons.loss_report(acks1_run)["cause_seq"].iloc[0])
    state = widgets.new_state(_acks1().build, until_ms=30_000)
    widgets.seek_event(state, cause)
    frame = state.kernel.trace.to_frame()
    assert frame["seq"].max() >= cause
    assert frame.loc[frame["seq"] == cause, "kind"].item() == "log.truncate"
    before = widgets.seek_event(state, cause - 1)
    assert len(before.kernel.trace) <= cause + 1
    rows = _by_broker(lessons.replication_snapshot(before.kernel))
    assert rows[0]["log_end_offset"] == 1600


def test_recent_events_can_keep_only_some_kinds():
    """recent_events(kinds=...) shows only those kinds; the replication table has sentences."""
    state = widgets.seek_time(widgets.new_state(_acks1().build), 9_000)
    frame = widgets.recent_events(state, 3, kinds=["fault", "broker.state"])
    assert set(frame["kind"]) <= {"fault", "broker.state"}
    story = widgets.recent_replication_events(state, 3)
    assert list(story.columns) == ["seq", "time_ms", "kind", "what"]
    assert "broker 0 crashed" in " ".join(story["what"])


def test_stepper_panel_with_replication_view_and_bookmarks(acks1_run):
    """The panel draws the replication view and jumps to a bookmark."""
    scenario = _acks1()
    marks = lessons.replication_bookmarks(acks1_run)
    panel = widgets.stepper(scenario.build, "acks1", view="replication",
                            until_ms=scenario.duration_ms, bookmarks=marks)
    assert isinstance(panel, ipywidgets.Widget)
    assert "min.insync.replicas=1" in panel.children[1].value
    cause = max(marks.values())
    panel.bookmarks.value = cause
    panel.go_button.click()
    assert len(panel.state.kernel.trace) > cause
    assert panel.image.value[:4] == b"\x89PNG"
    assert "what" in panel.events.value


def test_stepper_rejects_an_unknown_view():
    """A misspelt view name is a clear error."""
    with pytest.raises(ConfigError, match="Unknown stepper view"):
        widgets.stepper(_acks1().build, view="replicas")


# --- Fault panel ------------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "broker", "fault"), [
    ("crash", 1, faults.CrashBroker(1)),
    ("restart", 2, faults.RestartBroker(2)),
    ("isolate", 0, faults.NetworkPartition((0,), (1, 2))),
    ("heal", 0, faults.HealNetwork((0,), (1, 2))),
    ("preferred election", None, faults.PreferredLeaderElection()),
])
def test_fault_for_maps_buttons_to_faults(action, broker, fault):
    """Each button stands for one fault of sim.faults."""
    kernel = lessons.replication_kernel()
    assert widgets.fault_for(kernel, action, broker) == fault


def test_fire_with_a_bad_broker_leaves_a_message_and_changes_nothing():
    """A broker that does not exist is a message in the state, not an exception."""
    state = widgets.new_fault_state(widgets.live_cluster(SAFE))
    widgets.fire(state, "crash", 7)
    assert "no broker 7" in state.message
    assert state.history == []
    with pytest.raises(ConfigError, match="Unknown fault"):
        widgets.fault_for(state.kernel, "explode", 0)


def test_isolating_an_isolated_broker_is_a_message_and_one_heal_mends_it():
    """Cuts add up (a link two faults cut needs two heals), so the panel refuses to isolate a
    broker that is cut off already: one heal always brings it back."""
    state = widgets.new_fault_state(widgets.live_cluster(SAFE))
    widgets.fire(state, "isolate", 0)
    widgets.fire(state, "isolate", 0)
    assert "cut off from the other brokers already" in state.message
    assert [what for _, what in state.history] == ["isolate broker 0"]
    widgets.fire(state, "heal", 0)
    network = state.kernel.cluster.network
    assert network.connected(0, 1)
    assert network.connected(0, 2)


def test_run_forward_turns_a_stalled_simulation_into_a_message():
    """A kernel stuck at one instant stops with a message; the state stays usable."""
    state = widgets.new_fault_state(lambda: Kernel(seed=0, brokers=1))

    def spin():
        while True:
            yield state.kernel.env.timeout(0)

    state.kernel.env.process(spin())
    widgets.run_forward(state, 100)
    assert "stopped advancing" in state.message
    widgets.reset_faults(state)
    assert state.message is None
    assert widgets.run_forward(state, 100).now_ms == 100


def test_fault_panel_buttons_fire_faults_and_redraw():
    """crash and run forward through the panel; reset goes back to time 0."""
    panel = widgets.fault_panel(configs=SAFE, run_ms=1_000)
    assert isinstance(panel, ipywidgets.Widget)
    assert panel.state.now_ms == 1_000
    assert "Kafka 4.0" in panel.header.value
    panel.broker.value = 1
    panel.buttons["crash"].click()
    assert panel.state.history == [(1_000.0, "crash broker 1")]
    assert panel.state.now_ms == 2_000
    assert "crash broker 1 at 1,000 ms" in panel.status.value
    panel.run_ms.value = 9_000
    panel.run_button.click()
    assert "fenced" in panel.story.value
    assert panel.image.value[:4] == b"\x89PNG"
    panel.reset_button.click()
    assert panel.state.now_ms == 0
    assert panel.state.history == []


def test_grading_mode_builds_no_replication_widgets(monkeypatch):
    """With KAFKA_LAB_GRADING=1 the fault panel and a replication stepper are placeholders."""
    monkeypatch.setenv("KAFKA_LAB_GRADING", "1")
    made = [widgets.fault_panel(), widgets.stepper(_acks1().build, view="replication")]
    for placeholder in made:
        assert isinstance(placeholder, widgets.GradingPlaceholder)
        assert not isinstance(placeholder, ipywidgets.Widget)


# --- The lesson's claims, one test each -------------------------------------------------------


def test_lesson_section1_all_replicas_hold_400_records_at_2s():
    """§1: after 2 s every replica has 400 records and the HW is 400; followers know 398. The
    cell shows six of the snapshot's 15 columns, those the text reads."""
    healthy = lessons.advance(lessons.replication_kernel(SAFE), 2_000)
    snapshot = lessons.replication_snapshot(healthy)
    assert len(snapshot.columns) == 15
    assert (snapshot["log_end_offset"] == 400).all()
    assert (snapshot["high_watermark"] == 400).all()
    assert list(snapshot["replica_high_watermark"]) == [400, 398, 398]


@pytest.fixture(scope="module")
def lagging() -> lessons.ReplicationRun:
    """§2's run: broker 2 cut off at 3 s, replica.lag.time.max.ms 5 s, traffic for 12 s."""
    return lessons.replication_run(
        SAFE, faults=[(3_000, faults.NetworkPartition((2,), (0, 1)))],
        broker_configs={"replica.lag.time.max.ms": 5_000}, traffic_ms=[(0, 12_000)])


def test_lesson_section2_hw_waits_at_600_until_the_isr_shrinks_at_10s(lagging):
    """§2: the HW stays at 600 from 3 s until the ISR shrinks to [0, 1] at 10.0 s."""
    series, _marks = lessons.replication_timeline(lagging.kernel)
    hw = series[series["series"] == "HW"]
    shrink = lagging.story[lagging.story["kind"] == "isr.change"]
    assert len(shrink) == 1
    shrink_ms = float(shrink["time_ms"].iloc[0])
    assert 10_000 <= shrink_ms < 10_010
    assert "ISR [0, 1]" in shrink["what"].iloc[0]
    stuck = hw[(hw["time_ms"] >= 3_000) & (hw["time_ms"] < shrink_ms)]
    assert stuck.empty
    assert hw[hw["time_ms"] < 3_000]["value"].iloc[-1] == 600


def test_lesson_section2_leo_stays_flat_at_602_while_five_requests_wait(lagging):
    """§2: the leader's LEO climbs to 602 just after 3 s and stays there until the shrink at
    10 s: it holds one request (2 records) for the high watermark and reads none of the four
    behind it on the connection (SocketServer mutes it until the response is sent); with five
    requests in flight (max.in.flight) nothing more is sent. After the shrink it appends the
    four queued requests one at a time (602 → 610), then the buffered records."""
    series, _marks = lessons.replication_timeline(lagging.kernel)
    leo = series[series["series"] == "LEO broker 0"]
    assert lagging.kernel.clients[0].config["max.in.flight.requests.per.connection"] == 5
    stuck = leo[(leo["time_ms"] >= 3_000) & (leo["time_ms"] < 10_000)]
    assert stuck["value"].max() == 602
    assert leo[(leo["time_ms"] >= 3_100) & (leo["time_ms"] < 10_000)].empty  # flat: no change
    after = leo[leo["time_ms"] >= 10_000]["value"].tolist()
    assert after[:4] == [604, 606, 608, 610]
    assert after[4] > 610


def test_lesson_section2_slowest_write_waits_about_7s(lagging):
    """§2: latency p99 is about 6.9 s and no write waited more than 7.5 s."""
    assert 6_800 < lagging.outcome["latency_p99_ms"] < 7_000
    latency = lagging.kernel.clients[0].results()["latency_ms"]
    assert 6_900 < latency.max() < 7_500
    assert lagging.outcome["lost"] == 0


def test_lesson_section2_metrics_and_isolated_broker(lagging):
    """§2: broker 0 shrank the ISR once and leads one under-replicated partition; 2 isolated."""
    metrics = lagging.metrics.set_index("broker")
    assert metrics.loc[0, "isr_shrinks"] == 1
    assert metrics.loc[0, "under_replicated_partitions"] == 1
    assert metrics.loc[[1, 2], ["isr_shrinks", "under_replicated_partitions"]].sum().sum() == 0
    assert metrics.loc[2, "state"] == "isolated"
    rows = _by_broker(lagging.snapshot)
    assert rows[2]["log_end_offset"] == 600
    assert not rows[2]["in_isr"]


@pytest.fixture(scope="module")
def durability() -> lessons.Comparison:
    """§3's comparison: follower 2 crashes at 3 s; four settings of acks and min ISR."""
    return lessons.compare_replication({
        "acks=1": {"configs": {"acks": "1"}},
        "acks=all, min.insync.replicas=1": {"configs": {"min.insync.replicas": 1}},
        "acks=all, min.insync.replicas=2": {"configs": {"min.insync.replicas": 2}},
        "acks=all, min.insync.replicas=3": {"configs": {"min.insync.replicas": 3}},
    }, faults=[(3_000, faults.CrashBroker(2))], traffic_ms=[(0, 20_000)],
        configs={"delivery.timeout.ms": 10_000, "request.timeout.ms": 5_000})


def test_lesson_section3_a_follower_crash_loses_nothing(durability):
    """§3: none of the four runs loses a record; the caption names Kafka 4.0 and the fault."""
    assert (durability.table["lost"] == 0).all()
    assert "Kafka 4.0" in durability.caption
    assert "CrashBroker at 3,000 ms" in durability.caption


def test_lesson_section3_acks_all_waits_for_the_fence(durability):
    """§3: acks=1 answers in milliseconds; acks=all waits about 8.8 s for the fence at 12 s."""
    table = durability.table
    assert table.loc["acks=1", "latency_p99_ms"] < 10
    for run in ("acks=all, min.insync.replicas=1", "acks=all, min.insync.replicas=2"):
        assert 8_700 < table.loc[run, "latency_p99_ms"] < 8_900
        assert table.loc[run, "failed"] == 0


def test_lesson_section3_min_isr_3_acknowledges_only_what_came_before_the_crash(durability):
    """§3: min ISR 3 acknowledges the 600 records sent before the crash and fails the other
    3,400; 2 expired produce requests (REQUEST_TIMED_OUT at 8 s and 13.1 s: the frozen high
    watermark; the leader holds one request of the connection at a time), then 67 failed ones
    (NOT_ENOUGH_REPLICAS after broker 2 is fenced at 12 s)."""
    row = durability.table.loc["acks=all, min.insync.replicas=3"]
    assert row["acknowledged"] == 600
    assert row["failed"] == 3_400
    assert row["waiting"] == 0
    assert row["failed_produce_requests"] == 67
    assert row["expired_produce_requests"] == 2
    runs = durability.runs["acks=all, min.insync.replicas=3"]
    (producer,) = runs.kernel.clients
    failed = producer.results()["error"].dropna()
    assert set(failed) == {"TimeoutException: delivery.timeout.ms expired"}
    errors = runs.kernel.trace.frame(events.KINDS["produce.error"])
    assert errors["error"].value_counts().to_dict() == {"NOT_ENOUGH_REPLICAS": 67,
                                                        "REQUEST_TIMED_OUT": 2}
    expired = errors[errors["error"] == "REQUEST_TIMED_OUT"]["time_ms"].round(-2).tolist()
    assert expired == [8_000, 13_100]
    timed_out = errors.loc[errors["error"] == "REQUEST_TIMED_OUT", "time_ms"]
    assert 8_000 <= timed_out.min() < 8_100  # 3 s crash + request.timeout.ms 5 s
    fenced = runs.story[runs.story["what"].str.contains("fenced")]["time_ms"]
    assert set(fenced) == {12_000}
    refused = errors.loc[errors["error"] == "NOT_ENOUGH_REPLICAS", "time_ms"]
    assert refused.min() > 12_000
    part = runs.kernel.cluster.partition("payments", 0)
    assert part.isr == [0, 1]
    assert part.log.high_watermark == 600  # frozen below min.insync.replicas


def test_lesson_section4_the_leader_is_replaced_after_the_session_timeout():
    """§4: crash at 3 s; at 11 s broker 0 still leads, nothing acknowledged since; at 13 s
    broker 1 leads with epoch 1; restart and preferred election give broker 0 epoch 2."""
    live = widgets.new_fault_state(widgets.live_cluster(SAFE))
    widgets.run_forward(live, 3_000)
    widgets.fire(live, "crash", 0, run_ms=8_000)
    rows = _by_broker(lessons.replication_snapshot(live.kernel))
    assert (rows[0]["role"], rows[0]["broker_state"]) == ("leader", "down")
    assert lessons.delivery_outcome(live.kernel)["acknowledged"] == 600
    assert "acknowledged 600" in widgets.fault_status(live)
    widgets.run_forward(live, 2_000)
    rows = _by_broker(lessons.replication_snapshot(live.kernel))
    assert (rows[1]["role"], rows[1]["leader_epoch"]) == ("leader", 1)
    story = lessons.replication_events(live.kernel)
    assert story.loc[story["what"].str.contains("fenced"), "time_ms"].tolist() == [12_000]
    widgets.fire(live, "restart", 0, run_ms=1_000)
    assert _by_broker(lessons.replication_snapshot(live.kernel))[0]["in_isr"]
    widgets.fire(live, "preferred election", run_ms=100)
    rows = _by_broker(lessons.replication_snapshot(live.kernel))
    assert (rows[0]["role"], rows[0]["leader_epoch"]) == ("leader", 2)


def test_lesson_section5_acks1_loses_600_records_at_broker_0s_truncation(acks1_run):
    """§5.1: 600 lost, offsets 1000–1599, blamed on broker 0's truncation at 20,000 ms, after
    broker 1's clean election at 17 s."""
    losses = lessons.loss_report(acks1_run)
    row = losses.iloc[0]
    assert (row["records"], row["first_offset"], row["last_offset"]) == (600, 1000, 1599)
    assert (row["kind"], row["broker"], row["time_ms"]) == ("log.truncate", 0, 20_000)
    story = lessons.replication_events(acks1_run)
    election = story[story["kind"] == "leader.election"]
    assert election["time_ms"].tolist() == [17_000]
    assert "clean election of broker 1" in election["what"].iloc[0]


def test_lesson_section5_acks1_hw_never_passes_1000_during_the_partition(acks1_run):
    """§5.1 timeline: from the cut at 5 s to the election at 17 s the HW stays at 1,000."""
    series, _marks = lessons.replication_timeline(acks1_run)
    hw = series[series["series"] == "HW"]
    assert hw[hw["time_ms"] < 17_000]["value"].max() == 1000
    assert hw.loc[hw["value"] > 1000, "time_ms"].min() > 17_000


def test_lesson_section5_acks1_before_and_after_the_truncation(acks1_run):
    """§5.1: just before the loss event broker 0 holds 1,600 records, just after 1,000."""
    cause = int(lessons.loss_report(acks1_run)["cause_seq"].iloc[0])
    replay = widgets.new_state(_acks1().build, until_ms=30_000)
    before = _by_broker(lessons.replication_snapshot(
        widgets.seek_event(replay, cause - 1).kernel))
    assert (before[0]["role"], before[0]["log_end_offset"]) == ("follower", 1600)
    after = _by_broker(lessons.replication_snapshot(widgets.seek_event(replay, cause).kernel))
    assert after[0]["log_end_offset"] == 1000
    assert isinstance(widgets.replication_figure(replay), Figure)


def test_lesson_section5_unclean_election_loses_2600_records(unclean_run):
    """§5.2: 2,600 lost (offsets 400–2999); at 24 s, fencing 0 then 1 one at a time
    (ReplicationControlManager.maybeFenceOneStaleBroker), the controller elects the crashed
    broker 1, still unfenced (ClusterControlManager.isActive), then unclean broker 2 with 400
    records; brokers 0 and 1 truncate at 30 s; the audit names broker 0's truncation."""
    losses = lessons.loss_report(unclean_run)
    row = losses.iloc[0]
    assert (row["records"], row["first_offset"], row["last_offset"]) == (2600, 400, 2999)
    assert (row["broker"], row["time_ms"]) == (0, 30_000)
    story = lessons.replication_events(unclean_run)
    election = story[story["kind"] == "leader.election"]
    assert election["time_ms"].tolist() == [24_000, 24_000]
    assert "clean election of broker 1" in election["what"].iloc[0]
    assert "unclean election of broker 2" in election["what"].iloc[1]
    truncations = story[story["kind"] == "log.truncate"]
    assert truncations["time_ms"].tolist() == [30_000, 30_000]
    assert [w.split(" truncated")[0] for w in truncations["what"]] == [
        "payments-0: broker 0", "payments-0: broker 1"]
    at_election = scenarios.load("unclean-election").build()
    at_election.run(24_000.1)
    assert _by_broker(lessons.replication_snapshot(at_election))[2]["log_end_offset"] == 400


def test_lesson_section5_scenario_table():
    """§5.3: lost 600 / 2,600 / 0 / 0 / 0; isr-shrink fails 2,245, and its leader counts 2
    expired produce requests (REQUEST_TIMED_OUT), then 46 failed ones (45 NOT_ENOUGH_REPLICAS
    after the fencing, one OUT_OF_ORDER_SEQUENCE_NUMBER for a batch sent just after two expired),
    in the totals and in its per-broker table;
    retries-duplicates stores 2 records twice; one unclean election."""
    names = ["acks1-leader-crash", "unclean-election", "safe-replication", "isr-shrink",
             "retries-duplicates"]
    result = lessons.scenario_table(names)
    table = result.table
    assert table["lost"].tolist() == [600, 2600, 0, 0, 0]
    assert table.loc["safe-replication", "failed"] == 0
    assert table.loc["isr-shrink", "failed"] == 2245
    assert table.loc["isr-shrink", "sent"] == 4000
    assert table.loc["isr-shrink", "failed_produce_requests"] == 46
    assert table.loc["isr-shrink", "expired_produce_requests"] == 2
    per_broker = result.runs["isr-shrink"].metrics.set_index("broker")
    assert per_broker[["failed_produce_requests", "expired_produce_requests"]].to_dict(
        "index") == {0: {"failed_produce_requests": 46, "expired_produce_requests": 2},
                     1: {"failed_produce_requests": 0, "expired_produce_requests": 0},
                     2: {"failed_produce_requests": 0, "expired_produce_requests": 0}}
    errors = result.runs["isr-shrink"].kernel.trace.frame(events.KINDS["produce.error"])
    assert errors["error"].value_counts().to_dict() == {
        "NOT_ENOUGH_REPLICAS": 45, "OUT_OF_ORDER_SEQUENCE_NUMBER": 1, "REQUEST_TIMED_OUT": 2}
    _shows_every_cell_of(result)
    refused = errors.loc[errors["error"] == "NOT_ENOUGH_REPLICAS", "time_ms"]
    assert refused.min() > 14_000  # the followers were fenced at 14 s
    assert table.loc["retries-duplicates", "duplicates"] == 2
    assert table["unclean_elections"].tolist() == [0, 1, 0, 0, 0]
    assert "acks=all" in table.loc["safe-replication", "configs"]
