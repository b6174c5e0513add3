"""Specification of scenarios and the command line: golden outputs, teaching claims, validation.

- Every built-in scenario's ``python -m sim run NAME`` output equals ``tests/golden/NAME.txt``
  byte for byte. After an intended change, rerun ``python tests/golden/regenerate.py`` and review
  the diff.
- Each built-in scenario makes a claim that a lesson relies on; a focused test asserts it on the
  very run the golden file shows.
- A scenario file is validated before anything runs; errors name the file, the field and what
  is allowed, and the command exits with code 2 and ``error: …`` on stderr, without a traceback.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from sim import audit, metrics, scenarios
from sim import trace as events
from sim.__main__ import main
from sim.kernel import Kernel
from sim.murmur2 import murmur2
from sim.producer.accumulator import RECORD_BATCH_OVERHEAD, record_sizes
from sim.workloads import ZipfKeys

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
BUILTINS = scenarios.builtin_names()

TINY = """\
name: tiny
description: A small key-less run for command-line tests.
seed: 3
cluster: {brokers: 2}
topics:
  - {name: clicks, partitions: 4}
producers:
  - config: {linger.ms: 1}
    workload: {topic: clicks, records: 400, rate_per_s: 20000, value_bytes: 100}
"""


@dataclass(frozen=True)
class CliRun:
    """One in-process ``python -m sim`` call: exit code, stdout, stderr and the kernel it ran."""

    code: int
    out: str
    err: str
    kernel: Kernel | None


def call_cli(*argv: str) -> CliRun:
    """Call the command's ``main`` in-process, keeping the kernel that ``Scenario.run`` made."""
    kernels: list[Kernel] = []
    original = scenarios.Scenario.run

    def keep(self: scenarios.Scenario, seed: int | None = None) -> Kernel:
        kernel = original(self, seed)
        kernels.append(kernel)
        return kernel

    out, err = io.StringIO(), io.StringIO()
    with (mock.patch.object(scenarios.Scenario, "run", keep), contextlib.redirect_stdout(out),
          contextlib.redirect_stderr(err)):
        code = main(list(argv))
    return CliRun(code, out.getvalue(), err.getvalue(), kernels[0] if kernels else None)


@functools.cache
def builtin_run(name: str) -> CliRun:
    """``python -m sim run NAME`` for a built-in, run once and shared by golden and claim tests."""
    return call_cli("run", name)


def builtin_kernel(name: str) -> Kernel:
    kernel = builtin_run(name).kernel
    assert kernel is not None
    return kernel


def results(name: str) -> pd.DataFrame:
    """Per-record results of the scenario's only producer, in send order."""
    (producer,) = builtin_kernel(name).clients
    return producer.results()


def leader_share(kernel: Kernel, broker: int) -> float:
    """Share of the records stored on partitions that ``broker`` leads."""
    parts = metrics.partition_metrics(kernel)
    return float(parts.loc[parts["leader"] == broker, "records"].sum() / parts["records"].sum())


def variant(name: str, **config: object) -> Kernel:
    """Run a built-in scenario with its producer's config changed."""
    scenario = copy.deepcopy(scenarios.load(name))
    scenario.producers[0].setdefault("config", {}).update(config)
    return scenario.run()


def write(tmp_path: Path, text: str, file_name: str = "scenario.yaml") -> Path:
    path = tmp_path / file_name
    path.write_text(text, encoding="utf-8")
    return path


# --- Golden outputs ------------------------------------------------------------------------------


def test_every_builtin_has_a_golden_and_no_golden_is_stale() -> None:
    """tests/golden holds exactly one NAME.txt per built-in scenario."""
    assert sorted(p.stem for p in GOLDEN.glob("*.txt")) == BUILTINS


@pytest.mark.parametrize("name", BUILTINS)
def test_cli_output_matches_golden(name: str) -> None:
    """`python -m sim run NAME` prints exactly tests/golden/NAME.txt (regenerate.py rewrites it)."""
    run = builtin_run(name)
    assert (run.code, run.err) == (0, "")
    golden = GOLDEN / f"{name}.txt"
    assert golden.exists(), f"missing {golden}; run python tests/golden/regenerate.py"
    assert run.out.encode("utf-8") == golden.read_bytes(), (
        f"{name}: output differs from {golden.name}; if intended, run "
        "python tests/golden/regenerate.py and review the diff")


def test_same_seed_twice_prints_identical_bytes(tmp_path: Path) -> None:
    """Running the same scenario and seed twice prints the same bytes; --seed N is a seed too."""
    path = str(write(tmp_path, TINY))
    runs = [call_cli("run", path), call_cli("run", path),
            call_cli("run", path, "--seed", "9"), call_cli("run", path, "--seed", "9")]
    assert [run.code for run in runs] == [0, 0, 0, 0]
    assert runs[0].out == runs[1].out
    assert runs[2].out == runs[3].out
    assert "seed 3 ·" in runs[0].out
    assert "seed 9 ·" in runs[2].out


def test_seed_option_changes_the_keyless_output() -> None:
    """--seed overrides the scenario's seed, and key-less partitioning then differs."""
    other = call_cli("run", "keyless-uniform-sticky", "--seed", "7")
    assert other.code == 0
    assert "seed 7" in other.out
    assert other.out != builtin_run("keyless-uniform-sticky").out
    assert other.out.splitlines()[0] == "Scenario: keyless-uniform-sticky"


def test_scenario_file_path_works_like_a_builtin_name(tmp_path: Path) -> None:
    """A copy of a built-in's YAML, run by path, prints the built-in's golden output."""
    name = "round-robin-kafka-9965"
    text = (ROOT / "sim" / "scenarios" / f"{name}.yaml").read_text(encoding="utf-8")
    run = call_cli("run", str(write(tmp_path, text, "copy.yaml")))
    assert run.code == 0
    assert run.out.encode("utf-8") == (GOLDEN / f"{name}.txt").read_bytes()


def test_list_names_every_builtin_with_its_description(capsys: pytest.CaptureFixture[str]) -> None:
    """`list` prints each built-in name at the start of a line, followed by its description."""
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line for line in lines if line and not line.startswith(" ")]
    assert names == BUILTINS
    assert all(line.startswith("    ") for line in lines if line not in names)


# --- Teaching claims -----------------------------------------------------------------------------


def test_round_robin_kafka_9965_uses_only_partitions_1_and_3() -> None:
    """KAFKA-9965: every record opens a new batch, partition() runs twice, so only 1 and 3 fill."""
    # RoundRobinPartitioner's counter starts at 0; the first call (0) is discarded by
    # onNewBatch's retry, the second (1) is used; then 2 discarded, 3 used; and so on.
    parts = results("round-robin-kafka-9965")["partition"].to_numpy()
    assert len(parts) == 2000
    np.testing.assert_array_equal(parts, np.tile([1, 3], 1000))


def test_round_robin_is_even_again_with_the_kafka_4_0_client() -> None:
    """Without onNewBatch (Kafka 4.0), the same workload puts 500 records on each partition."""
    kernel = variant("round-robin-kafka-9965", **{"lab.kafka.version": "4.0"})
    parts = kernel.clients[0].results()["partition"].to_numpy()
    np.testing.assert_array_equal(parts, np.arange(2000) % 4)


def test_keyed_each_key_on_the_murmur2_partition() -> None:
    """keyed: each key is on exactly one partition, toPositive(murmur2(key)) % 12."""
    frame = results("keyed")
    partitions = frame.groupby("key")["partition"].unique()
    assert len(partitions) == 1000
    for key, found in partitions.items():
        expected = (murmur2(str(key).encode("utf-8")) & 0x7FFFFFFF) % 12  # Utils.toPositive
        assert list(found) == [expected], key


def test_skewed_keys_busiest_partition_holds_the_hottest_key() -> None:
    """skewed-keys: the busiest partition takes well over 1/12 and holds key-0, the hottest key."""
    frame = results("skewed-keys")
    shares = frame["partition"].value_counts(normalize=True)
    busiest = shares.idxmax()
    assert shares[busiest] > 2 / 12
    assert set(frame.loc[frame["key"] == "key-0", "partition"]) == {busiest}
    # key-0 alone should carry p0 = 1 / Σ (i+1)^-1.2 ≈ 23 % of the records.
    p0 = ZipfKeys(1000, 1.2).probabilities()[0]
    assert (frame["key"] == "key-0").mean() == pytest.approx(p0, abs=0.01)


def test_slow_broker_kip480_gives_the_slow_broker_more() -> None:
    """slow-broker-kip480: partitions led by the slow broker get far more than their 1/3."""
    kernel = builtin_kernel("slow-broker-kip480")
    slow = [b for b, broker in kernel.cluster.brokers.items() if broker.slowdown > 1]
    assert slow == [0]
    assert metrics.broker_metrics(kernel).loc[0, "leader_partitions"] == 4  # a third of 12
    assert leader_share(kernel, 0) > 0.6


def test_slow_broker_availability_timeout_takes_load_off_it() -> None:
    """slow-broker: a low partitioner.availability.timeout.ms lowers the slow broker's share."""
    without = leader_share(builtin_kernel("slow-broker"), 0)
    with_timeout = leader_share(
        variant("slow-broker", **{"partitioner.availability.timeout.ms": 1}), 0)
    assert with_timeout < without


def test_slow_broker_adaptive_partitioning_sends_it_fewer_records() -> None:
    """slow-broker: adaptive partitioning gives the slow broker fewer records than without it."""
    adaptive = leader_share(builtin_kernel("slow-broker"), 0)
    uniform = leader_share(
        variant("slow-broker", **{"partitioner.adaptive.partitioning.enable": False}), 0)
    assert adaptive < uniform


def test_vip_partitioner_separates_vips() -> None:
    """vip-partitioner: VIP keys only on 0–7, others only on 8–9; VIPs carry about 80 %."""
    frame = results("vip-partitioner")
    vip = frame["key"].str.startswith("vip-")
    assert set(frame.loc[vip, "partition"]) <= set(range(8))
    assert set(frame.loc[~vip, "partition"]) == {8, 9}
    assert (frame["partition"] < 8).mean() == pytest.approx(0.8, abs=0.01)
    assert (frame.groupby("key")["partition"].nunique() == 1).all()


def test_keyless_round_robin_cycles_through_partitions() -> None:
    """keyless-round-robin (Kafka 4.0): record i goes to partition i % 12, so counts are even."""
    frame = results("keyless-round-robin")
    np.testing.assert_array_equal(frame["partition"], np.arange(len(frame)) % 12)


def test_keyless_round_robin_makes_smaller_batches_than_sticky() -> None:
    """Round-robin spreads each moment's records thinly: smaller and more batches, which
    travel four to a request (each broker leads 4 of the 12 partitions, and a ready broker's
    every partition is drained), so not more requests."""
    round_robin = metrics.producer_metrics(builtin_kernel("keyless-round-robin")).iloc[0]
    sticky = metrics.producer_metrics(builtin_kernel("keyless-uniform-sticky")).iloc[0]
    assert round_robin["records"] == sticky["records"]
    assert round_robin["records_per_batch"] < sticky["records_per_batch"] / 2
    assert round_robin["batches"] > 2 * sticky["batches"]
    assert round_robin["batches"] == 4 * round_robin["requests"]
    assert round_robin["requests"] <= sticky["requests"]


def test_keyless_sticky_batches_left_unfilled_travel_with_a_full_one() -> None:
    """Uniform sticky fills one partition's batch at a time; when it is full, its broker is
    ready and the sender drains every partition that broker leads, so the partition the
    producer has just moved to leaves half full in the same request, if it is a neighbour
    (``RecordAccumulator.drainBatchesForOneNode``)."""
    kernel = builtin_kernel("keyless-uniform-sticky")
    sent = kernel.trace.frame(events.REQUEST_SENT)
    appended = kernel.trace.frame(events.LOG_APPEND)
    full = appended["records"].max()
    pairs = int((sent["batches"] == 2).sum())
    unfilled = int((appended["records"] < 0.8 * full).sum())
    assert set(sent["batches"]) == {1, 2}
    assert pairs > 50
    assert abs(unfilled - pairs) <= 2  # at most the first and the last batch besides


def test_keyless_uniform_sticky_switches_after_batch_size_bytes() -> None:
    """KIP-794: each sticky stint lasts between batch.size and 2 × batch.size bytes."""
    kernel = builtin_kernel("keyless-uniform-sticky")
    batch_size = kernel.clients[0].config["batch.size"]
    frame = results("keyless-uniform-sticky")
    sizes = record_sizes(np.full(len(frame), -1), frame["value_bytes"].to_numpy())
    batches = kernel.trace.count(events.LOG_APPEND)
    header = RECORD_BATCH_OVERHEAD
    produced = int(sizes.sum()) + header * batches  # records plus one batch header per batch
    stints = kernel.trace.count(events.STICKY_SWITCH) + 1
    # Every stint but the last has at least batch.size bytes, and stops at the append that
    # crosses 2 × batch.size: less than that plus one record and the header of a new batch.
    longest = 2 * batch_size + int(sizes.max()) + header
    assert produced / longest <= stints <= produced / batch_size + 1
    assert (metrics.partition_metrics(kernel)["records"] > 0).all()


def test_keyless_sticky_kip480_opens_one_batch_per_stint() -> None:
    """KIP-480: each new batch moves to another partition, so runs of records equal batches."""
    parts = results("keyless-sticky-kip480")["partition"].to_numpy()
    runs = 1 + np.count_nonzero(np.diff(parts))
    batches = metrics.partition_metrics(builtin_kernel("keyless-sticky-kip480"))["batches"].sum()
    assert runs == batches
    assert len(np.unique(parts)) == 12


# --- Validation errors ---------------------------------------------------------------------------

# (name, scenario text, fragments the error must contain besides the file name)
INVALID = [
    ("unknown top-level field", TINY + "colour: red\n",
     ["field colour", "allowed:", "producers", "topics"]),
    ("missing topics", TINY.replace("topics:\n  - {name: clicks, partitions: 4}\n", ""),
     ["field topics", "is required"]),
    ("workload on a missing topic", TINY.replace("topic: clicks", "topic: views"),
     ["producers[0].workload.topic", "'views'", "topics: clicks"]),
    ("bad producer config", TINY.replace("linger.ms: 1", "linger.ms: -5"),
     ["producers[0].config", "linger.ms", "-5", "at least 0"]),
    ("unknown producer config", TINY.replace("linger.ms: 1", "linger.msx: 1"),
     ["producers[0].config", "linger.msx", "Did you mean linger.ms"]),
    ("slow broker that does not exist",
     TINY + "faults: [{at_ms: 5, slow_broker: {broker: 7, factor: 3}}]\n",
     ["faults[0].slow_broker.broker", "from 0 to 1"]),
    ("replication factor above brokers",
     TINY.replace("partitions: 4}", "partitions: 4, replication_factor: 3}"),
     ["topics[0].replication_factor", "number of brokers (2)", "is 3"]),
    ("wrong type", TINY.replace("seed: 3", "seed: three"),
     ["field seed", "must be int", "'three'"]),
    ("not YAML", "name: [unclosed\ntopics: {", ["not valid YAML"]),
    ("YAML but not a mapping", "- just\n- a list\n", ["must be a mapping"]),
]


@pytest.mark.parametrize(("text", "fragments"), [case[1:] for case in INVALID],
                         ids=[case[0] for case in INVALID])
def test_invalid_scenario_names_file_field_and_rule(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    """load() raises ScenarioError naming the file, the field and what is allowed."""
    path = write(tmp_path, text, "broken.yaml")
    with pytest.raises(scenarios.ScenarioError) as info:
        scenarios.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(("text", "fragments"), [case[1:] for case in INVALID],
                         ids=[case[0] for case in INVALID])
def test_cli_reports_invalid_scenarios_with_exit_code_2(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    """`run FILE` prints "error: …" (file, field, rule) on stderr, nothing on stdout, exits 2."""
    path = write(tmp_path, text, "broken.yaml")
    run = call_cli("run", str(path))
    assert run.code == 2
    assert run.out == ""
    assert run.err.startswith(f"error: {path}: ")
    assert "Traceback" not in run.err
    assert all(fragment in run.err for fragment in fragments)
    assert run.kernel is None  # nothing ran


BAD_KEYS = [
    pytest.param("{zipf: {s: 1.2}}", id="zipf without count"),
    pytest.param("{vip: {vip: 0}}", id="vip with no VIPs"),
    pytest.param("{uniform: 0}", id="uniform with no keys"),
    pytest.param("{zipf: {count: 10, s: -1}}", id="zipf with negative s"),
    pytest.param("{gaussian: 3}", id="unknown kind"),
]


@pytest.mark.parametrize("keys", BAD_KEYS)
def test_bad_key_spec_is_a_scenario_error(tmp_path: Path, keys: str) -> None:
    """An impossible key distribution is reported at load time, naming the keys field."""
    text = TINY.replace("value_bytes: 100}", f"value_bytes: 100, keys: {keys}}}")
    run = call_cli("run", str(write(tmp_path, text)))
    assert run.code == 2
    assert "producers[0].workload.keys" in run.err


def test_bad_value_bytes_is_a_scenario_error(tmp_path: Path) -> None:
    """A non-numeric value_bytes is reported at load time, naming the field."""
    text = TINY.replace("value_bytes: 100", "value_bytes: abc")
    run = call_cli("run", str(write(tmp_path, text)))
    assert run.code == 2
    assert "producers[0].workload.value_bytes" in run.err


def test_json_summary_shows_simulated_time_without_float_noise() -> None:
    """keyed ends at 1005.7621862000001 ms in binary floats; --json says 1005.762186."""
    run = builtin_run("keyed")
    assert run.kernel is not None
    assert run.kernel.now_ms != round(run.kernel.now_ms, 6)  # the noise is really there
    json_run = call_cli("run", "keyed", "--json")
    assert f'"simulated_ms": {round(run.kernel.now_ms, 6)},' in json_run.out


def test_unknown_scenario_name_lists_the_builtins() -> None:
    """An unknown name exits 2 with an error that lists every built-in scenario."""
    run = call_cli("run", "no-such-scenario")
    assert run.code == 2
    assert run.err.startswith("error: Unknown scenario 'no-such-scenario'")
    assert all(name in run.err for name in BUILTINS)


def test_missing_scenario_file_is_named() -> None:
    """A .yaml path that does not exist is an error naming the path."""
    run = call_cli("run", "nowhere/missing.yaml")
    assert run.code == 2
    assert "nowhere/missing.yaml does not exist" in run.err


def test_unsupported_trace_format_is_an_error(tmp_path: Path) -> None:
    """--trace accepts .csv or .parquet only; anything else is an error, exit 2."""
    run = call_cli("run", str(write(tmp_path, TINY)), "--trace", str(tmp_path / "trace.txt"))
    assert run.code == 2
    assert ".csv or .parquet" in run.err
    assert not (tmp_path / "trace.txt").exists()


# --- The command as a subprocess -----------------------------------------------------------------


def python_m_sim(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m sim ...` in a fresh interpreter that imports this checkout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "sim", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=120,
                          check=False)


def test_python_m_sim_list(tmp_path: Path) -> None:
    """`python -m sim list` exits 0 and names every built-in scenario."""
    proc = python_m_sim("list", cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert [line for line in proc.stdout.splitlines() if not line.startswith(" ")] == BUILTINS


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_python_m_sim_run_writes_a_readable_trace(tmp_path: Path, suffix: str) -> None:
    """`run keyed --trace FILE` prints the golden summary and writes every event to FILE."""
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"trace{suffix}"
    proc = python_m_sim("run", "keyed", "--trace", path.name, cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.encode("utf-8") == (GOLDEN / "keyed.txt").read_bytes()
    frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    events_line = proc.stdout.splitlines()[3]  # "Kafka 4.0 defaults · seed 42 · … · N events"
    assert len(frame) == int(events_line.rsplit("·", 1)[1].split()[0])
    assert list(frame.columns[:4]) == ["seq", "time_ms", "component", "kind"]
    assert frame["seq"].tolist() == list(range(len(frame)))
    assert set(frame["kind"]) <= set(events.KINDS)


# --- The audit's words ---------------------------------------------------------------------------


@pytest.mark.parametrize("term", [*audit.KINDS, "unavailable", "valid", "INVALID"])
def test_explain_defines_each_term_the_audit_prints(term: str) -> None:
    """`explain TERM` prints the audit module's definition of TERM, and exits 0."""
    run = call_cli("explain", term)
    assert (run.code, run.err) == (0, "")
    assert run.out.startswith(f"{term}: ")
    assert " ".join(run.out.split()) == " ".join(audit.explain(term).split())


def test_explain_accepts_processed_twice_as_two_words() -> None:
    """`explain processed twice` is `explain processed-twice`."""
    assert call_cli("explain", "processed", "twice").out == call_cli(
        "explain", "processed-twice").out


def test_explain_without_a_term_lists_every_term() -> None:
    """`explain` alone defines every term, each on a line of its own."""
    run = call_cli("explain")
    assert run.code == 0
    starts = [line.split(":")[0] for line in run.out.splitlines() if not line.startswith(" ")]
    assert starts == list(audit.TERMS)


def test_explain_an_unknown_term_lists_the_known_ones() -> None:
    """An unknown term exits 2 with one line naming it and every known term."""
    run = call_cli("explain", "lost-writes")
    assert run.code == 2
    assert run.err.startswith("error: Unknown audit term 'lost-writes'; known terms: ")
    assert all(term in run.err for term in audit.TERMS)
    assert len(run.err.splitlines()) == 1


@pytest.mark.parametrize("name", ["keyed", "consumer-crash-at-most-once", "acks1-leader-crash"])
def test_every_audit_has_the_legend_and_every_word_it_counts_is_explained(name: str) -> None:
    """The audit prints the one-line legend under its verdict, and each count's name is a term
    that `explain` knows."""
    lines = builtin_run(name).out.splitlines()
    start = lines.index("Delivery audit (Jepsen's anomaly names)")
    assert f"  legend: {audit.LEGEND}" in lines[start:]
    verdict = " ".join(lines[start + 1:lines.index(f"  legend: {audit.LEGEND}")])
    counted = [part.strip().rsplit(" ", 1)[0] for part in verdict.split(";")[-1].split(",")]
    # storage kinds (retention, compaction) are printed only when a record has one
    assert counted == [k for k in audit.KINDS if k not in audit.STORAGE_KINDS or k in counted]
    assert all(audit.explain(word) for word in counted)


def test_the_producer_table_counts_records_still_in_flight(tmp_path: Path) -> None:
    """A run that stops while records are batched or awaiting a response: acknowledged +
    failed + in_flight = records, in the table and in --json."""
    path = write(tmp_path, TINY.replace("seed: 3\n", "seed: 3\nduration_ms: 8\n"))
    kernel = scenarios.load(path).run()
    row = metrics.producer_metrics(kernel).iloc[0]
    assert row["in_flight"] > 0
    assert row["acknowledged"] + row["failed"] + row["in_flight"] == row["records"] == 400
    results = kernel.clients[0].results()
    assert row["in_flight"] == int((results["ack_ms"].isna() & results["error"].isna()).sum())
    run = call_cli("run", str(path))
    header = run.out.split("Producers\n", 1)[1].splitlines()[0].split()
    assert header[header.index("failed") + 1] == "in_flight"
    data = json.loads(call_cli("run", str(path), "--json").out)
    assert data["producers"][0]["in_flight"] == row["in_flight"]
