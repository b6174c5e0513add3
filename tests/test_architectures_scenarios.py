"""The architecture scenarios: kappa-reprocessing (a Streams scenario), and batch-collection,
lambda-drift and data-lake-time-query (scenarios with an ``architecture:`` section, run by
:mod:`sim.scenarios.architecture`)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.architectures import query_revenue
from sim.architectures.comparison import freshness
from sim.architectures.workload import HOUR_MS, revenue
from sim.consumer.group import group_coordinator
from sim.errors import ScenarioError
from sim.lessons.streams import topic_records
from sim.records import TopicPartition
from sim.scenarios import architecture, load, parse
from tests.test_cli_errors import assert_one_line_error, cli


def test_second_instance_replays_the_history_into_a_new_table() -> None:
    """table-v2 holds a row for every payment, those sent before job-v2 started included, and
    job-v2's committed offsets reach the end of payments, as job-v1's do."""
    scenario = load("kappa-reprocessing")
    kernel = scenario.run()
    payments = topic_records(kernel, "payments")
    new_table = topic_records(kernel, "table-v2")
    start_ms = next(s["start_ms"] for s in scenario.streams if s["application.id"] == "job-v2")
    assert (payments["timestamp"] < start_ms).sum() > 0
    assert sorted(new_table["timestamp"]) == sorted(payments["timestamp"])
    tps = [TopicPartition("payments", p) for p in range(2)]
    ends = {tp: kernel.cluster.partition("payments", tp.partition).log.high_watermark
            for tp in tps}
    for group in ("job-v1", "job-v2"):
        assert group_coordinator(kernel).fetch_offsets(group, tps) == ends


# --- Scenarios with an architecture section -----------------------------------------------------


@functools.cache
def arch_run(name: str, **changes: Any) -> Any:
    """The ArchitectureRun of built-in ``name`` (its section changed by ``changes``)."""
    scenario = load(name)
    assert scenario.architecture is not None
    return architecture.simulate_spec({**scenario.architecture, **changes}, scenario.seed)


def hour_total(values: Any, run: Any, hour: int) -> float:
    """The sum over the merchants of ``hour`` (values per cell, in ``run.cells`` order)."""
    mask = np.array([h == hour for _m, h in run.cells])
    return float(np.asarray(values, dtype=float)[mask].sum())


def test_batch_collection_answers_only_what_the_last_job_read() -> None:
    """At every sample the report is the last successful job's: its rule over the payments
    that arrived before the dump it followed, nothing newer; a payment waits at least the job's
    delay, and one that arrived just after a dump whose job then failed waits two intervals.
    That failed job leaves the previous report in place."""
    run = arch_run("batch-collection")
    batch = run.variants["batch"]
    every, delay = batch.dump_every_ms, batch.job_delay_ms
    pay = run.payments
    for s, t in enumerate(run.sample_ms):
        done = [r for r in batch.runs if r["run_ms"] <= t]
        if not done:
            assert np.isnan(run.answers[s, 0]).all()
            continue
        job = done[-1]
        read = pay[pay["arrival_ms"] < job["due_ms"] - delay]
        assert job["payments"] == len(read)
        expected = revenue(read, job["rule"], run.workload).to_numpy(dtype=float)
        assert np.array_equal(run.answers[s, 0], expected), t
    first_seen = {}
    for job in batch.runs:
        for p in pay.loc[pay["arrival_ms"] < job["due_ms"] - delay, "payment"]:
            first_seen.setdefault(p, job["run_ms"])
    waits = [(first_seen[p] - a) for p, a in zip(pay["payment"], pay["arrival_ms"], strict=True)
             if p in first_seen]
    assert min(waits) >= delay
    assert np.isinf(freshness(run, "batch")).sum() == len(pay) - len(waits)
    start, end = run.outage
    failed = [d for d in range(every + delay, int(run.end_ms), every) if start <= d < end]
    assert batch.failed_runs == failed
    assert failed
    dump = failed[0] - delay  # its payments wait for the next job, a whole period later
    stranded = [first_seen[p] - a for p, a in zip(pay["payment"], pay["arrival_ms"], strict=True)
                if dump - every <= a < dump]
    assert stranded
    assert min(stranded) >= every + delay
    before, after = run.answer_at("batch", failed[0] - 1), run.answer_at("batch", end)
    assert before.equals(after)


def test_lambda_drift_the_speed_view_keeps_the_old_rule_until_a_batch_run_replaces_it() -> None:
    """After the change only the batch copy knows the new rule: at the end, every hour the
    speed view answers is too high by exactly its vouchers and every hour the batch view
    answers is the new rule's revenue of what had arrived by that batch run; at the run that
    takes over an hour, that hour's answer drops from above the new rule's to it."""
    run = arch_run("lambda-drift")
    lam = run.variants["lambda"]
    runs = lam.db.execute("SELECT run_ms, covered_until_hour, rule FROM batch_runs").fetchall()
    end = run.end_ms
    answer, layers = lam.answer(), lam.layers()
    pay = run.payments
    took_over = [(t, h) for t, h, rule in runs if rule == "v2" and t > run.workload.change_ms]
    assert took_over
    last_run, horizon = runs[-1][0], runs[-1][1]
    speed_hours = range(horizon, run.workload.hours)
    assert list(speed_hours)
    for hour in range(run.workload.hours):
        mask = np.array([h == hour for _m, h in run.cells])
        assert set(layers[mask]) == {"speed" if hour >= horizon else "batch"}
        mine = pay[pay["event_ms"] // HOUR_MS == hour]
        if hour >= horizon:
            vouchers = mine.loc[mine["method"] == "voucher", "amount_cents"].sum()
            assert vouchers > 0
            assert hour_total(answer, run, hour) - hour_total(
                run.truth_at(end, "v2"), run, hour) == vouchers
        else:
            assert hour_total(answer, run, hour) == hour_total(
                run.truth_at(last_run, "v2"), run, hour)
    run_ms, covered = took_over[0]
    taken = covered - 1  # the newest hour the run covers: the speed view answered it before
    before = run.sample_ms[run.sample_ms < run_ms][-1]
    old = hour_total(run.answer_at("lambda", before), run, taken)
    new = hour_total(run.answer_at("lambda", run_ms), run, taken)
    assert old > hour_total(run.truth_at(before, "v2"), run, taken)
    assert old <= hour_total(run.truth_at(before, "v1"), run, taken)
    assert new == hour_total(run.truth_at(run_ms, "v2"), run, taken)


def test_lambda_with_both_copies_updated_does_not_drift() -> None:
    """The same run with the change deployed to the speed layer too: the hours the speed view
    answers at the end show the new rule."""
    run = arch_run("lambda-drift", update_speed_layer=True)
    lam = run.variants["lambda"]
    layers, answer = lam.layers(), lam.answer()
    right = run.truth_at(run.end_ms, "v2").to_numpy()
    speed = layers == "speed"
    assert speed.any()
    assert np.array_equal(answer[speed], right[speed])


def test_data_lake_query_across_the_tiers_equals_the_whole_log() -> None:
    """A query by time read partly from the remote tier and partly from the brokers gets the
    revenue of exactly the payments of that time (what the full log says), whichever half hour
    it starts at; some late payments sit after their hour's successor's first offset."""
    run = arch_run("data-lake-time-query")
    pay = run.payments
    rule = run.workload.rule_at(run.end_ms)
    spec = load("data-lake-time-query").architecture
    assert spec is not None
    starts = sorted({spec["query_from_ms"], *range(0, run.workload.duration_ms, HOUR_MS // 2)})
    reads_seen = []
    for start in starts:
        answer, reads = query_revenue(run.kernel, run.topic, run.workload, rule, start)
        right = revenue(pay[pay["event_ms"] >= start], rule, run.workload)
        assert answer.equals(right), start
        reads_seen.append(reads)
    chosen = reads_seen[starts.index(spec["query_from_ms"])]
    assert chosen["remote"] > 0
    assert chosen["local"] > 0
    assert chosen["missed_by_offset_range"] > 0
    assert run.answer_at("lake", run.end_ms).equals(run.truth_at(run.end_ms).rename("lake"))


def test_data_lake_the_remote_tier_lags_the_log() -> None:
    """The Parquet tier never holds more than the log, holds nothing during the first hour (no
    segment has closed) and trails the log at every full hour."""
    lag = arch_run("data-lake-time-query").variants["lake"].cold_lag()
    assert (lag["in_remote_tier"] <= lag["in_log"]).all()
    assert (lag.loc[lag["time_ms"] <= HOUR_MS, "in_remote_tier"] == 0).all()
    hourly = lag[lag["time_ms"] % HOUR_MS == 0]
    assert (hourly["in_remote_tier"] < hourly["in_log"]).all()


@pytest.mark.parametrize("name", ["batch-collection", "lambda-drift", "data-lake-time-query"])
def test_the_json_summary_has_the_architecture(name: str) -> None:
    """``run --json`` carries the architecture's comparison row and timeline."""
    code, out, err = cli("run", name, "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)["architecture"]
    assert data["variant"] == load(name).architecture["variant"]  # type: ignore[index]
    assert data["payments"] == len(arch_run(name).payments)
    assert data["timeline"][-1]["right answer"] == int(arch_run(name).truth_at(
        arch_run(name).end_ms).sum())


KAPPA = """\
name: small-kappa
seed: 4
architecture:
  variant: kappa
  partitions: 1
  replication_factor: 1
  workload: {hours: 1, every_ms: 20000, change_ms: 2400000}
"""


def test_a_kappa_architecture_scenario_reprocesses_and_ends_right(tmp_path: Path) -> None:
    """variant kappa: the second instance switches readers after the change; every cell right
    at the end."""
    path = tmp_path / "kappa.yaml"
    path.write_text(KAPPA, encoding="utf-8")
    code, out, err = cli("run", str(path))
    assert (code, err) == (0, "")
    assert "Architecture: kappa" in out
    assert "wrong cells at the end: 0 of 4" in out
    assert "readers switched at " in out


def test_kappa_without_the_history_is_one_line(tmp_path: Path) -> None:
    """Retention shorter than the history: the replay cannot start, and the run says why in
    one line naming the file."""
    path = tmp_path / "kappa.yaml"
    path.write_text(KAPPA + "  topic_configs: {retention.ms: 600000, segment.ms: 600000, "
                    "local.retention.ms: 600000}\n",
                    encoding="utf-8")
    assert_one_line_error(*cli("run", str(path)), f"{path}: ", "whole history", "retention.ms")


@pytest.mark.parametrize(("change", "fragments"), [
    ("  bogus: 1\n", ["architecture.bogus", "allowed"]),
    ("  workload: {hours: 3, bogus: 1}\n", ["architecture.workload.bogus"]),
    ("  workload: {hours: -1}\n", ["architecture.workload.hours", "-1"]),
    ("  workload: {hours: 30}\n", ["architecture.workload.hours", "between 1 and 3", "limit"]),
    ("  workload: {hours: 2, every_ms: 100}\n", ["architecture.workload.every_ms", "2,000"]),
    ("  workload: {hours: 2, change_ms: 9000000}\n", ["architecture.workload", "change_ms"]),
    ("  workload: {late_share: 1.5}\n", ["architecture.workload.late_share", "share"]),
    ("  workload: {every_ms: '10'}\n", ["architecture.workload.every_ms", "must be int"]),
    ("  batch_every_ms: -5\n", ["architecture.batch_every_ms", "-5"]),
    ("  batch_every_ms: 1000\n", ["architecture.batch_every_ms", "600,000"]),
    ("  batch_delay_ms: 7200000\n", ["architecture.batch_delay_ms", "period"]),
    ("  query_from_ms: 0\n", ["architecture.query_from_ms", "lake only"]),
    ("  update_speed_layer: 1\n", ["architecture.update_speed_layer", "bool"]),
    ("  outage: {start_ms: 100}\n", ["architecture.outage.end_ms", "required"]),
    ("  outage: {start_ms: 100, end_ms: 50}\n", ["architecture.outage.end_ms", "not after"]),
    ("  outage: {start_ms: -1, end_ms: 50}\n", ["architecture.outage.start_ms", "-1"]),
    ("  outage: {start_ms: 90000000, end_ms: 90000001}\n", ["architecture.outage.start_ms"]),
    ("  topic_configs: {cleanup.policy: compact}\n", ["topic_configs.cleanup.policy"]),
    ("  topic_configs: {segment.ms: '1000'}\n", ["topic_configs.segment.ms", "600,000"]),
    ("  topic_configs: {retention.ms: abc}\n", ["architecture.topic_configs", "retention.ms"]),
    ("  topic_configs: {retention.ms: 600000}\n", ["local.retention.ms", "at most retention.ms"]),
    ("  partitions: 0\n", ["architecture.partitions", "0"]),
    ("  replication_factor: 4\n", ["architecture.replication_factor", "4"]),
    ("  variant: sideways\n", ["architecture.variant", "sideways"]),
])
def test_a_bad_architecture_field_is_one_line_naming_it(
        tmp_path: Path, change: str, fragments: list[str]) -> None:
    """Unknown keys, wrong types, negative or too large times and knobs of another
    architecture are refused before anything runs, in one line naming the field."""
    base = "name: bad\narchitecture:\n  variant: batch\n"
    if change.startswith(("  query_from_ms", "  update_speed_layer")):
        base = base.replace("batch", "lambda")
    if change.startswith("  variant:"):
        base = "name: bad\narchitecture:\n"
    path = tmp_path / "bad.yaml"
    path.write_text(base + change, encoding="utf-8")
    assert_one_line_error(*cli("run", str(path)), f"{path}: ", *fragments)


def test_an_architecture_scenario_cannot_also_name_topics_or_be_built() -> None:
    """Topics or producers beside architecture are refused; build() (a bare cluster) too."""
    with pytest.raises(ScenarioError, match="topics cannot be given with architecture"):
        parse("name: x\ntopics: [{name: a}]\narchitecture: {variant: lake}\n", "x.yaml")
    with pytest.raises(ScenarioError, match="runs whole"):
        parse("name: x\narchitecture: {variant: lake}\n", "x.yaml").build()


@pytest.mark.parametrize(("faults", "fragments"), [
    ("[{at_ms: 100, crash: {consumer: x}}]", ["faults[0].crash", "not a fault kind"]),
    ("[{at_ms: 100, crash_broker: {broker: 3}}]", ["faults[0].crash_broker.broker", "0 to 2"]),
    ("[{at_ms: 100, crash_broker: {broker: 1}}, {at_ms: 200, crash_broker: {broker: 1}}]",
     ["faults[1].crash_broker", "already crashed"]),
    ("[{at_ms: 100, network_partition: {a: [0], b: [revenue-app]}}]",
     ["faults[0].network_partition.b", "revenue-app", "payment-services"]),
    ("[{at_ms: 99000000, preferred_leader_election: {}}]", ["faults[0].at_ms", "after the run"]),
])
def test_a_bad_architecture_fault_is_one_line_naming_it(
        tmp_path: Path, faults: str, fragments: list[str]) -> None:
    """An architecture scenario's faults hit its cluster only: broker ids of the run, the
    controller and the services' producer; crashes and restarts alternate; none after the
    run's end."""
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\narchitecture: {{variant: lake, workload: {{hours: 1}}}}\n"
                    f"faults: {faults}\n", encoding="utf-8")
    assert_one_line_error(*cli("run", str(path)), f"{path}: ", *fragments)


def test_broker_faults_in_an_architecture_scenario_hit_its_cluster() -> None:
    """A crash and a cut in an architecture scenario happen on the run's cluster (the brokers'
    states and the producer's retries show them) and the lake's answer still ends right."""
    scenario = parse(
        "name: lake-faults\nseed: 9\n"
        "architecture: {variant: lake, workload: {hours: 1, every_ms: 10000}}\n"
        "faults:\n"
        "  - {at_ms: 600000, crash_broker: {broker: 1}}\n"
        "  - {at_ms: 900000, restart_broker: {broker: 1}}\n"
        "  - {at_ms: 1200000, network_partition: {a: [0, 1, 2], b: [payment-services]}}\n"
        "  - {at_ms: 1230000, heal_network: {a: [0, 1, 2], b: [payment-services]}}\n",
        "lake-faults.yaml")
    kernel = scenario.run()
    frame = kernel.trace.to_frame()
    assert (frame["kind"] == "fault").sum() == 4
    assert (frame["kind"] == "produce.retry").any()
    assert (frame["kind"] == "leader.election").any()
    spec = scenario.architecture
    calm = architecture.simulate_spec(spec, scenario.seed)
    faulted = architecture.simulate_spec(spec, scenario.seed, fault_list=scenario.faults)
    np.testing.assert_array_equal(faulted.answers[-1], calm.answers[-1])


@pytest.mark.parametrize("summary", [True, False])
def test_run_returns_the_run_and_removes_batch_collections_folder(summary: bool) -> None:
    """``architecture.run`` (the scenario's and the fuzzer's one runner) returns the
    ArchitectureRun, keeps the summary for the report only when asked, and deletes the
    folder batch collection dumped into either way."""
    spec = {"variant": "batch", "workload": {"hours": 1, "every_ms": 20000},
            "batch_every_ms": 600_000, "batch_delay_ms": 0}
    result = architecture.run(spec, 4, summary=summary)
    root = result.variants["batch"].root
    assert result.variants["batch"].runs  # the bulk job read the dumped files
    assert not root.exists()
    assert bool(architecture.summary_lines(result.kernel)) == summary
