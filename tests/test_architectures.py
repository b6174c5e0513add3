"""sim.architectures: four architectures on one workload agree where they must and differ where
the lesson says they do."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.architectures import (
    Workload,
    comparison,
    query_revenue,
    revenue,
    revenue_topology,
    run_payments,
    simulate,
    truth,
)
from sim.architectures.comparison import NAMES, freshness
from sim.architectures.revenue_app import window_cell
from sim.architectures.workload import HOUR_MS, MINUTE_MS, counts_as_revenue, encode_value
from sim.broker.remote_log_manager import REMOTE_READ
from sim.errors import ConfigError
from sim.streams import TopologyTestDriver
from sim.streams import events as streams_events


@pytest.fixture(scope="module")
def run():
    """The lesson's run: four hours of payments, the rule changes at 2 h 45 min."""
    return simulate()


def _series(run, values) -> pd.Series:
    return pd.Series(values, index=pd.MultiIndex.from_tuples(run.cells))


def test_late_payments_arrive_out_of_order(run):
    """Some payments arrive after payments with later event times (the late ones)."""
    pay = run.payments
    assert pay["arrival_ms"].is_monotonic_increasing
    assert not pay["event_ms"].is_monotonic_increasing
    late = pay[pay["late"]]
    assert len(late) > 0
    assert ((late["arrival_ms"] - late["event_ms"]) >= run.workload.late_min_ms).all()


def test_rules_differ_only_on_vouchers():
    """v2 stops counting voucher payments; an unknown rule is refused by name."""
    assert counts_as_revenue("v1", "voucher", 500) == 500
    assert counts_as_revenue("v2", "voucher", 500) == 0
    assert counts_as_revenue("v2", "card", 500) == 500
    with pytest.raises(ConfigError, match="v3"):
        counts_as_revenue("v3", "card", 1)


def test_all_four_agree_on_old_enough_hours_before_the_change(run):
    """Before the logic change, hours whose payments had all reached the last batch run's
    files get the same revenue from all four architectures: the right one."""
    before = run.workload.change_ms - 1
    last = [r for r in run.variants["batch"].runs if r["run_ms"] <= before][-1]
    dumped_ms = last["due_ms"] - run.variants["batch"].job_delay_ms
    old = [h for h in range(run.workload.hours)
           if (h + 1) * HOUR_MS + run.workload.late_max_ms <= dumped_ms]
    assert old, "the run must have at least one old-enough hour before the change"
    table = run.table_at(before)
    rows = table[table.index.get_level_values("hour").isin(old)]
    right = truth(run.payments, run.workload, before, "v1").astype(float)
    for name in run.variants:
        pd.testing.assert_series_equal(rows[name], right.loc[rows.index], check_names=False)


def test_kappa_and_the_lake_are_right_at_the_end(run):
    """After the change, kappa (after reprocessing) and the lake (rule at query time) give the
    new rule over every payment, in every cell."""
    right = run.truth_at(run.end_ms)
    for name in ("kappa", "lake"):
        pd.testing.assert_series_equal(run.answer_at(name, run.end_ms), right,
                                       check_names=False)


def test_lambda_speed_layer_keeps_the_old_rule(run):
    """Lambda's merged answer is the old rule where the speed layer answers and the new rule,
    as of the last batch run, where the batch view does: the two copies of the logic drift."""
    lam = run.variants["lambda"]
    layers = _series(run, lam.layers())
    answer = run.answer_at("lambda", run.end_ms)
    pay = run.payments
    last_run_ms = lam.db.execute("SELECT MAX(run_ms) FROM batch_runs").fetchone()[0]
    speed = layers[layers == "speed"].index
    batch = layers[layers == "batch"].index
    assert len(speed)
    assert len(batch)
    old_rule = truth(pay, run.workload, run.end_ms, "v1")
    master = pay[pay["arrival_ms"] < last_run_ms]
    as_batched = revenue(master, "v2", run.workload)
    pd.testing.assert_series_equal(answer.loc[speed], old_rule.loc[speed].astype(float),
                                   check_names=False)
    pd.testing.assert_series_equal(answer.loc[batch], as_batched.loc[batch].astype(float),
                                   check_names=False)
    wrong = answer.loc[speed] != run.truth_at(run.end_ms).loc[speed]
    vouchers = pay[(pay["method"] == "voucher")
                   & (pay["event_ms"] // HOUR_MS).isin(speed.get_level_values(1))]
    assert wrong.any()
    assert len(vouchers)


def test_batch_collection_shows_only_the_files_of_its_last_run(run):
    """The batch report is the rule in force at its last run over the payments dumped before
    it; later payments are missing until the next run."""
    batch = run.variants["batch"]
    last = batch.runs[-1]
    dumped_ms = last["due_ms"] - batch.job_delay_ms
    pay = run.payments
    expected = revenue(pay[pay["arrival_ms"] < dumped_ms], last["rule"], run.workload)
    pd.testing.assert_series_equal(run.answer_at("batch", run.end_ms),
                                   expected.astype(float), check_names=False)
    assert len(batch.files()) == 2 * int(run.end_ms // batch.dump_every_ms)


def test_kappa_reprocessed_table_equals_a_fresh_run_of_the_new_logic(run):
    """The second instance's table equals the new topology run from scratch over the whole
    history (TopologyTestDriver, payments in arrival order), and the pandas logic."""
    kappa = run.variants["kappa"]
    fresh: dict[tuple[str, int], int] = {}
    with TopologyTestDriver(revenue_topology("v2", "payments", "out")) as driver:
        source, out = driver.create_input_topic("payments"), driver.create_output_topic("out")
        for m, method, amount, event_ms in zip(run.payments["merchant"], run.payments["method"],
                                               run.payments["amount_cents"],
                                               run.payments["event_ms"], strict=True):
            source.pipe_input(m, encode_value(method, int(amount)), int(event_ms))
        for record in out.read_records_to_list():
            fresh[window_cell(record.key)] = record.value
    table = _series(run, kappa.table("v2"))
    expected = pd.Series(fresh).reindex(table.index).astype(float)
    pd.testing.assert_series_equal(table, expected, check_names=False)
    pd.testing.assert_series_equal(table, revenue(run.payments, "v2", run.workload)
                                   .astype(float), check_names=False)


def test_kappa_switches_after_catching_up_and_reads_history_from_the_remote_tier(run):
    """The second instance starts at the change, reads the oldest hour back from the Parquet
    tier, switches the readers once caught up, and the old job and table are gone."""
    kappa = run.variants["kappa"]
    start, switch = kappa.reprocessing["start_ms"], kappa.reprocessing["switch_ms"]
    assert start == run.workload.change_ms < switch < run.end_ms
    assert kappa.serving_rule == "v2"
    assert set(kappa.tables) == {"v2"}
    reads = run.kernel.trace.frame(REMOTE_READ)
    assert ((reads["time_ms"] >= start) & (reads["time_ms"] <= switch)).any()
    before = run.answer_at("kappa", switch - 1)
    assert (before == truth(run.payments, run.workload, switch, "v2")).sum() < len(before)


def test_lake_query_over_the_tiers_matches_its_answer(run):
    """A query by time over Parquet (cold) and the brokers (hot) gives the lake's answer,
    and reading an hour as an offset range would miss late payments."""
    answer, reads = query_revenue(run.kernel, "payments", run.workload, "v2")
    pd.testing.assert_series_equal(answer.astype(float), run.answer_at("lake", run.end_ms),
                                   check_names=False)
    assert reads["remote"] > 0
    assert reads["local"] > 0
    assert reads["missed_by_offset_range"] > 0
    later, _ = query_revenue(run.kernel, "payments", run.workload, "v2", from_ms=2 * HOUR_MS)
    assert (later.xs(0, level=1) == 0).all()
    assert (later.xs(3, level=1) == answer.xs(3, level=1)).all()


def test_comparison_orders_the_architectures_as_the_lesson_says(run):
    """Freshness: lake < kappa < batch; lambda has two code paths; kappa and the lake end
    right, batch and lambda do not; kappa restates the history before the batch jobs."""
    table = comparison(run)
    assert list(table.index) == list(NAMES.values())
    fresh = table["freshness median (s)"]
    assert fresh["streaming data lake"] < fresh["kappa"] < fresh["batch collection"]
    assert fresh["lambda"] < fresh["batch collection"]
    assert table.loc["lambda", "code paths"] == 2
    assert (table["code paths"].drop("lambda") == 1).all()
    wrong = table["wrong cells at the end"]
    assert wrong["kappa"] == wrong["streaming data lake"] == 0
    assert wrong["lambda"] > 0
    assert wrong["batch collection"] > 0
    restated = table["history restated after (s)"]
    assert restated["streaming data lake"] <= restated["kappa"] < restated["lambda"]
    assert table.loc["kappa", "reprocessing (s)"] == run.variants["kappa"].reprocessing_ms / 1000
    assert (table["storage (USD per GB of payments per month)"] > 0).all()


def test_freshness_counts_payments_never_shown_as_infinite(run):
    """Batch collection never shows the card payments that arrived after its last run's
    files by the end (voucher ones count for nothing under the new rule)."""
    fresh = freshness(run, "batch")
    dumped_ms = run.variants["batch"].runs[-1]["due_ms"] - run.variants["batch"].job_delay_ms
    cards = run.payments["method"].to_numpy() == "card"
    unseen = run.payments["arrival_ms"].to_numpy() >= dumped_ms
    assert np.isinf(fresh[unseen & cards]).all()
    assert np.isfinite(fresh[~unseen]).all()


SMALL = Workload(hours=2, change_ms=100 * MINUTE_MS)


def test_same_seed_same_comparison():
    """Two runs with the same seed give the same answers and the same comparison."""
    first, second = simulate(SMALL, seed=3), simulate(SMALL, seed=3)
    np.testing.assert_array_equal(first.answers, second.answers)
    pd.testing.assert_frame_equal(comparison(first), comparison(second))


def test_kappa_refuses_to_reprocess_without_the_history():
    """With retention shorter than the history, kappa's reprocessing fails and says why."""
    with pytest.raises(ConfigError, match="retention"):
        simulate(SMALL, variants=("kappa",), topic_configs={"retention.ms": 30 * MINUTE_MS,
                                                             "local.retention.ms": -2})


def test_run_payments_are_the_payments_the_run_sends(run):
    """run_payments gives, without running, exactly the payments simulate sent."""
    pd.testing.assert_frame_equal(run_payments(), run.payments)


def test_an_outage_stops_the_processing_but_not_the_lake():
    """With every processing component down for ten minutes, the Streams-based answers show
    the outage's payments only after the restart, the failed batch job leaves no report, and
    the lake's freshness does not change."""
    outage = (60 * MINUTE_MS, 70 * MINUTE_MS)
    run = simulate(SMALL, seed=3, outage=outage, partitions=1, replication_factor=1)
    arrival = run.payments["arrival_ms"].to_numpy()
    during = (arrival >= outage[0]) & (arrival < outage[1])
    for name in ("lambda", "kappa"):
        fresh = freshness(run, name)[during]
        shown_at = arrival[during] / 1000 + fresh
        assert (shown_at >= outage[1] / 1000).all()
        assert np.isfinite(fresh).all()
    assert (freshness(run, "lake")[during] <= 10).all()
    assert run.variants["batch"].failed_runs == [65 * MINUTE_MS]
    assert run.variants["batch"].runs == []
    assert "freshness during the outage (s)" in comparison(run).columns


@pytest.mark.parametrize(("name", "options"), [("kappa", {}),
                                           ("lambda", {"update_speed_layer": True})])
def test_a_logic_change_during_an_outage_starts_its_job_when_the_outage_ends(name, options):
    """The rule changes while every processing component is down: the new rule's Streams job
    (kappa's second instance, lambda's new speed layer) is deployed but cannot run until the
    outage ends, then starts, and the answers end as without the outage. (Its start used to
    be followed by a restart of a job that was running: a StreamsError.)"""
    workload = Workload(hours=1, every_ms=10_000, change_ms=40 * MINUTE_MS)
    outage = (30 * MINUTE_MS, 50 * MINUTE_MS)
    with_outage = simulate(workload, seed=3, variants=(name,), outage=outage,
                           options={name: options})
    without = simulate(workload, seed=3, variants=(name,), options={name: options})
    new_app = "revenue-v2" if name == "kappa" else "speed-layer-v2"
    processed = with_outage.kernel.trace.frame(streams_events.STREAMS_PROCESS)
    mine = processed[processed["component"].str.startswith(new_app)]
    assert len(mine)
    assert mine["time_ms"].min() >= outage[1]
    np.testing.assert_array_equal(with_outage.answers[-1], without.answers[-1])
