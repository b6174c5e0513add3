"""Specification of sweeps (``sim.sweep``): many runs, one table, the same whatever runs it.

One reference sweep — the fuzzer's standard scenario (300 records) under 4 random fault
schedules of campaign seed 2029, with an unsafe configuration (acks=1, no idempotence,
min.insync.replicas=1, unclean election) and the safe one — is compared with the same sweep on
two loky processes, on a Dask ``LocalCluster`` (two worker processes) and from the command line
under two hash seeds, and checked against the delivery audit of the same runs replayed alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sim import scenarios
from sim.audit import audit_kernel
from sim.errors import KafkaLabError
from sim.fuzz.generator import to_yaml
from sim.sweep import (
    CAUSE_COLUMNS,
    CAUSES,
    MAX_BATCH_RUNS,
    batched,
    causes,
    prepare,
    read_results,
    scenario_of,
    summary,
    sweep,
)
from tests.test_cli_errors import assert_one_line_error, cli

ROOT = Path(__file__).resolve().parents[1]
SEED = 2029
RECORDS = 300
SCHEDULES = 4
UNSAFE = {"acks": ["1"], "enable.idempotence": [False], "min.insync.replicas": [1],
          "unclean.leader.election.enable": [True]}
SAFE = {"acks": ["all"], "min.insync.replicas": [2], "unclean.leader.election.enable": [False]}
GRID = [UNSAFE, SAFE]
ARGS = {"grid": GRID, "schedules": SCHEDULES, "records": RECORDS, "seeds": [SEED],
        "progress": False}


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return sweep(None, **ARGS)


def test_one_row_per_run_keyed_by_run_id(reference):
    """Every (grid point, seed, schedule) runs once, in run_id order, with its parameters."""
    assert list(reference["run_id"]) == list(range(2 * SCHEDULES))
    assert reference[["point", "seed", "schedule"]].drop_duplicates().shape[0] == len(reference)
    assert set(reference["schedule"]) == set(range(SCHEDULES))
    assert set(reference["seed"]) == {SEED}
    assert list(reference.columns[2:6]) == ["acks", "enable.idempotence",
                                            "min.insync.replicas",
                                            "unclean.leader.election.enable"]
    unsafe = reference[reference["point"] == 0].iloc[0]
    assert (unsafe["acks"], unsafe["enable.idempotence"], unsafe["min.insync.replicas"]) \
        == ("1", False, 1)
    safe = reference[reference["point"] == 1].iloc[0]
    assert safe["enable.idempotence"] is None  # not part of that grid: the scenario's own
    assert (reference["sent"] == RECORDS).all()
    assert not reference["hung"].any()
    assert not reference["raised"].any()
    assert "wall_s" in reference.attrs["timing"]
    assert not any("wall" in c or c.endswith("_s") for c in reference.columns)


def test_lost_records_split_by_cause_add_up(reference):
    """The per-cause columns add up to the lost records; the cause is the largest of them."""
    assert (reference[list(CAUSE_COLUMNS)].sum(axis=1) == reference["lost"]).all()
    assert ((reference["lost"] > 0) == reference["loses_data"]).all()
    for row in reference.itertuples(index=False):
        counts = dict(zip(CAUSES, (getattr(row, c) for c in CAUSE_COLUMNS), strict=True))
        assert row.cause == (max(counts, key=counts.get) if row.lost else "")
    tidy = causes(reference)
    assert tidy.groupby("run_id")["records"].sum().to_dict() \
        == reference.loc[reference["lost"] > 0].set_index("run_id")["lost"].to_dict()


def test_unsafe_configuration_loses_where_the_safe_one_does_not(reference):
    """On the same schedules, acks=1 + unclean election loses acknowledged records somewhere
    and acks=all + min.insync.replicas=2 nowhere; each count is the audit's of that run alone."""
    unsafe = reference[reference["point"] == 0].set_index("schedule")
    safe = reference[reference["point"] == 1].set_index("schedule")
    assert unsafe["loses_data"].any()
    assert not safe["loses_data"].any()
    assert (safe["verdict"] == "ok").all()
    assert (unsafe.loc[unsafe["loses_data"], "verdict"] == "lost-write").all()
    plan, runs, _ = prepare(None, **{k: v for k, v in ARGS.items() if k != "progress"})
    losing = int(unsafe.index[unsafe["loses_data"]][0])
    for run in runs:
        if run.schedule != losing:
            continue
        scenario = scenario_of(plan, run.params, run.seed, run.schedule)
        loaded = scenarios.parse(to_yaml(scenario), "replay.yaml")
        kernel = loaded.run()
        delivery = audit_kernel(kernel)
        row = reference.loc[reference["run_id"] == run.run_id].iloc[0]
        assert row["lost"] == delivery.lost == len(delivery.lost_records)
        assert row["acknowledged"] == delivery.acknowledged
        assert row["duplicates"] == delivery.duplicates
    assert summary(reference)["losing"].tolist() == [int(unsafe["loses_data"].sum()), 0]


def test_same_table_with_two_loky_processes(reference):
    """Two joblib (loky) worker processes, two runs per task, give the same table."""
    table = sweep(None, **ARGS, jobs=2, batch_size=2)
    assert table.attrs["timing"]["backend"] == "loky"
    assert table.attrs["timing"]["batches"] == SCHEDULES
    pd.testing.assert_frame_equal(table, reference)


def test_tasks_are_short_and_cover_every_run_in_order():
    """By default a big sweep goes out in tasks of a few runs (so that no worker idles long
    while another finishes a big last task), a small one in about ten tasks per worker; every
    run once, in run order. A given batch size is kept."""
    _, runs, _ = prepare(None, schedules=1000)
    for workers, count in ((2, 1000), (2, 30), (4, 7), (1, 1)):
        batches = batched(runs[:count], workers)
        assert [run for batch in batches for run in batch] == runs[:count]
        assert max(map(len, batches)) <= MAX_BATCH_RUNS
        assert len(batches) >= min(count, 10 * workers) // MAX_BATCH_RUNS
    assert [len(b) for b in batched(runs, 2)] == [MAX_BATCH_RUNS] * (1000 // MAX_BATCH_RUNS)
    assert [len(b) for b in batched(runs[:30], 2)] == [2] * 15  # about 20 tasks wanted
    assert [len(b) for b in batched(runs[:7], 2, batch_size=3)] == [3, 3, 1]


def test_same_table_on_a_dask_local_cluster(reference):
    """The same batches as Dask tasks on two worker processes, given a Client or the
    scheduler's address, give the same rows."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        table = sweep(None, **ARGS, client=client)
        assert table.attrs["timing"]["backend"] == "dask"
        pd.testing.assert_frame_equal(table, reference)
        safe = sweep(None, **{**ARGS, "grid": SAFE, "schedules": 2},
                     client=cluster.scheduler_address)
    expected = reference[(reference["point"] == 1) & (reference["schedule"] < 2)]
    columns = [c for c in reference.columns
               if c not in ("run_id", "point", "enable.idempotence")]
    pd.testing.assert_frame_equal(safe[columns], expected[columns].reset_index(drop=True))


def test_scenario_own_faults_over_a_grid_match_its_audit():
    """Without schedules a run is the scenario itself at a grid point: the unclean-election
    scenario loses what its audit says, for that reason, and nothing with the election off."""
    table = sweep("unclean-election", grid={"unclean.leader.election.enable": [True, False]},
                  progress=False)
    delivery = audit_kernel(scenarios.load("unclean-election").run())
    assert table["schedule"].tolist() == [-1, -1]
    assert table["seed"].tolist() == [scenarios.load("unclean-election").seed] * 2
    assert table["lost"].tolist() == [delivery.lost, 0]
    assert delivery.lost > 0
    assert table["cause"].tolist() == ["unclean-election", ""]


def test_a_scenario_without_duration_runs_to_its_end_like_run():
    """keyed has no duration_ms: each run used to be ``raised`` (the guard compared None with
    a float); now it runs until only housekeeping is left, as ``python -m sim run`` does."""
    loaded = scenarios.load("keyed")
    assert loaded.duration_ms is None
    table = sweep("keyed", grid={"acks": ["1", "all"]}, records=500, progress=False)
    assert table["raised"].tolist() == [False, False]
    assert table["error"].tolist() == ["", ""]
    assert table["acknowledged"].tolist() == table["sent"].tolist() == [500, 500]


def run_cli(*argv: str, hash_seed: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": hash_seed,
           "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "sim", "sweep", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=300,
                          check=False)


def test_cli_writes_the_same_bytes_under_two_hash_seeds(tmp_path):
    """``python -m sim sweep`` prints and writes the same bytes under two PYTHONHASHSEEDs (and
    one or two processes), with a progress bar on stderr."""
    argv = ["safe-replication", "--schedules", "1", "--records", "300", "--grid", "acks=1,all"]
    first = run_cli(*argv, "--jobs", "1", "--out", "a.csv", hash_seed="0", cwd=tmp_path)
    second = run_cli(*argv, "--jobs", "2", "--out", "b.csv", "--no-progress",
                     hash_seed="4242", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert first.stdout.replace("a.csv", "b.csv") == second.stdout
    assert "100%" in first.stderr
    assert "100%" not in second.stderr
    header = first.stdout.splitlines()[0].split()
    assert header == ["acks", "runs", "losing", "lost", "hung", "raised", "cause"]
    table = read_results(tmp_path / "a.csv")
    assert table["acks"].tolist() == ["1", "all"]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_results_round_trip_through_files(reference, tmp_path, suffix):
    """A written table reads back equal: grid values typed as their configs read them, a grid
    key missing from one point None, empty texts empty."""
    path = tmp_path / f"runs{suffix}"
    written = reference.copy()
    written.attrs = {}
    if suffix == ".parquet":
        written.to_parquet(path, index=False)
    else:
        written.to_csv(path, index=False)
    pd.testing.assert_frame_equal(read_results(path), written)


HOSTILE = [
    ({"grid": {"ack": ["1"]}}, "Unknown grid key 'ack'", "acks"),
    ({"grid": {"acks": ["2"]}}, "grid acks='2'", "acks"),
    ({"grid": {"min.insync.replicas": [0]}}, "min.insync.replicas", "0"),
    ({"grid": {"client.id": ["a"]}}, "producer.client.id", "consumer.client.id"),
    ({"grid": {"max.poll.records": [10]}}, "consumer config", "no consumers"),
    ({"grid": {"acks": []}}, "'acks' has no values", ""),
    ({"grid": "acks=1"}, "grid must map", ""),
    ({"schedules": -1}, "schedules must be", "-1"),
    ({"jobs": 0}, "jobs must be", "0"),
    ({"seeds": []}, "seeds is an empty list", ""),
    ({"seeds": [-3]}, "seed", "-3"),
    ({"profile": "chaos"}, "Unknown fuzzer profile 'chaos'", "safe"),
    ({"client": 42}, "client must be a dask.distributed.Client", "42"),
    ({"profile": "streams", "schedules": 1}, "profile 'streams'", "safe"),
    ({"profile": "connect"}, "runs a Kafka Connect pipeline", "fuzz --profile connect"),
    ({"profile": "architectures"}, "runs lesson 09's architectures",
     "fuzz --profile architectures"),
    ({"grid": {"delivery.timeout.ms": [10]}}, "grid point 0 (delivery.timeout.ms=10)",
     "delivery.timeout.ms"),
    # listing these runs used to take gigabytes (and weeks to run) before the first one started
    ({"seeds": 100_000_000}, "100,000,000 seeds", "at most 1,000,000"),
    ({"schedules": 99_999_999_999}, "99,999,999,999 runs", "at most 1,000,000"),
    ({"grid": {"lab.network.latency.ms": list(range(1000)), "batch.size": list(range(1001))}},
     "1,001,000 grid points", "at most 1,000,000"),
    ({"seeds": list(range(600_000)), "grid": {"acks": ["1", "all"]}}, "1,200,000 runs",
     "at most 1,000,000"),
]


@pytest.mark.parametrize(("kwargs", "first", "second"), HOSTILE)
def test_hostile_input_is_one_lab_error_before_any_run(monkeypatch, kwargs, first, second):
    """A bad argument or grid point is a lab error naming it, raised before any run starts."""
    monkeypatch.setattr("sim.sweep.results.run_one", _no_run)
    with pytest.raises(KafkaLabError) as raised:
        sweep("safe-replication", progress=False, **kwargs)
    message = str(raised.value)
    assert "\n" not in message
    assert first in message
    assert second in message


def test_unknown_scenario_and_bad_grid_point_of_the_fuzzer_are_lab_errors(monkeypatch):
    """An unknown scenario, or a grid point its producer refuses (acks=1 with the fuzzer's
    explicit enable.idempotence=true), is a lab error before any run."""
    monkeypatch.setattr("sim.sweep.results.run_one", _no_run)
    with pytest.raises(KafkaLabError, match="Unknown scenario 'nope'"):
        sweep("nope", progress=False)
    with pytest.raises(KafkaLabError, match=r"lambda-drift\.yaml: an architecture scenario runs"):
        sweep("lambda-drift", progress=False)
    with pytest.raises(KafkaLabError, match=r"grid point 0 \(acks=1\).*idempotence"):
        sweep(None, grid={"acks": ["1"]}, schedules=1, progress=False)
    with pytest.raises(KafkaLabError, match="schedules ≥ 1"):
        sweep(None, progress=False)


def test_a_grid_point_listed_twice_is_refused(monkeypatch):
    """``--grid acks=1,1`` (or 1 and "1", which acks reads alike, or the same point in two
    grids, keys in another order) would run one configuration twice and count it twice: one
    error line first."""
    monkeypatch.setattr("sim.sweep.results.run_one", _no_run)
    for grid in ({"acks": ["1", "1"]}, {"acks": [1, "1"]},
                 [{"acks": ["all"], "min.insync.replicas": [2]},
                  {"min.insync.replicas": ["2"], "acks": ["all"]}]):
        with pytest.raises(KafkaLabError, match=r"grid points 0 and 1 are the same") as raised:
            sweep("safe-replication", grid=grid, progress=False)
        assert "\n" not in str(raised.value)
    monkeypatch.undo()
    assert len(prepare("safe-replication", grid={"acks": ["1", "all"]})[1]) == 2


@pytest.mark.parametrize(("grid", "shown"), [
    ({"acks": ["-1", "all"]}, "acks=-1 and acks=all are one setting"),
    ({"acks": ["all", -1]}, "acks=all and acks=-1 are one setting"),
    ([{"acks": ["all"]}, {"producer.acks": ["-1"]}], "acks=all and producer.acks=-1"),
    ({"linger.ms": [5, 5.0]}, "(linger.ms=5)"),  # a whole float is the LONG it names
    ({"cleanup.policy": ["compact,delete", "delete,compact"]}, "are one setting"),
])
def test_grid_values_kafka_acts_on_alike_are_one_point(monkeypatch, grid, shown):
    """acks -1 and all are one setting to the producer (ProducerConfig.parseAcks turns all into
    -1), as are 5 and 5.0 ms, and cleanup.policy's two orders (LogConfig reads a list): such a
    grid ran one configuration twice and weighed it twice. One error line, values as given."""
    monkeypatch.setattr("sim.sweep.results.run_one", _no_run)
    with pytest.raises(KafkaLabError, match=r"grid points 0 and 1 are the same") as raised:
        sweep("safe-replication", grid=grid, progress=False)
    assert shown in str(raised.value)
    assert "\n" not in str(raised.value)


def test_grid_values_are_shown_as_given_when_distinct():
    """-1 stays -1 in the plan (and so in the result table's column), beside 1 and 0."""
    runs = prepare("safe-replication", grid={"acks": ["-1", "1", "0"]})[1]
    assert [run.params for run in runs] == [(("acks", "-1"),), (("acks", "1"),),
                                            (("acks", "0"),)]


def test_schedules_over_a_production_too_short_for_a_crash_are_refused(monkeypatch):
    """A 1-second production leaves the fuzzer no room for its crash of at least 1 s: every
    schedule drawing one used to end in numpy's "high <= 0" traceback."""
    monkeypatch.setattr("sim.sweep.results.run_one", _no_run)
    short = {"name": "short", "seed": 1, "topics": [{"name": "t", "partitions": 1}],
             "producers": [{"config": {"client.id": "p"},
                            "workload": {"topic": "t", "records": 10, "rate_per_s": 10}}]}
    with pytest.raises(KafkaLabError, match=r"produce for 1000 ms.*need longer"):
        sweep(short, schedules=2, progress=False)
    short["producers"][0]["workload"]["records"] = 11  # 1.1 s: room for one
    monkeypatch.undo()
    table = sweep(short, schedules=2, progress=False)
    assert table["error"].tolist() == ["", ""]


def _no_run(*_args: object) -> None:
    raise AssertionError("a run started although the sweep's input was invalid")


@pytest.mark.parametrize(("argv", "fragments"), [
    (["safe-replication", "--grid", "acks"], ["--grid 'acks'", "KEY=VALUE1,VALUE2"]),
    (["safe-replication", "--grid", "acks=1", "acks=all"], ["acks twice"]),
    (["safe-replication", "--grid", "ack=1"], ["Unknown grid key 'ack'"]),
    (["safe-replication", "--out", "runs.txt"], ["--out runs.txt", ".parquet or .csv"]),
    (["safe-replication", "--out", "missing/runs.csv"], ["missing", "does not exist"]),
    (["safe-replication", "--schedules", "-1"], ["schedules must be", "-1"]),
    (["safe-replication", "--jobs", "0"], ["jobs must be", "0"]),
    (["safe-replication", "--seeds", "0"], ["--seeds", "0"]),
    (["nope.yaml"], ["nope.yaml", "does not exist"]),
])
def test_cli_mistakes_are_one_line(monkeypatch, tmp_path, argv, fragments):
    """``python -m sim sweep`` with a bad argument: exit 2, one error line, nothing run."""
    monkeypatch.setattr("sim.sweep.results.run_one", _no_run)
    assert_one_line_error(*cli("sweep", *argv, "--no-progress", cwd=tmp_path), *fragments)
