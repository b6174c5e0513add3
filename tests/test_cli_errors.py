"""Specification of the command line's answer to a user's mistake: one line, never a traceback.

Every mistake below exits with code 2 and prints exactly one line on stderr — starting with
``error:``, naming the file, the field or the argument, the value, and what is allowed — and
nothing on stdout: arguments and the scenario are checked before anything runs.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from sim import scenarios, workloads
from sim.__main__ import main
from sim.consumer import Consumer
from sim.errors import ConfigError, ScenarioError, SimulationError
from sim.kernel import Kernel
from sim.producer import Producer
from sim.scenarios import MAX_NESTING
from tests import strategies

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
name: good
seed: 1
topics: [{name: orders, partitions: 3}]
producers:
  - config: {client.id: app}
    workload: {topic: orders, records: 200, rate_per_s: 10000}
"""


def cli(*argv: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """``python -m sim ARGV`` in-process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if cwd is not None:
            with contextlib.chdir(cwd):
                code = main(list(argv))
        else:
            code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    """Exit 2, nothing on stdout, one ``error:`` line on stderr containing every fragment."""
    assert code == 2, err
    assert out == ""
    assert err.startswith("error: ")
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def scenario(tmp_path: Path, text: str, name: str = "scenario.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def python_m_sim(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "sim", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=120,
                          check=False)


# --- Arguments -----------------------------------------------------------------------------------


def test_negative_seed_option_is_refused_before_running(tmp_path: Path) -> None:
    """--seed -1: numpy takes no negative seed; the error names the option and the value."""
    assert_one_line_error(*cli("run", scenario(tmp_path, GOOD), "--seed", "-1"),
                          "--seed", "integer ≥ 0", "-1")


def test_trace_into_a_missing_folder_is_refused_before_running(tmp_path: Path) -> None:
    """--trace into a folder that does not exist fails before the run, not after the summary."""
    missing = tmp_path / "no-such-folder" / "trace.csv"
    assert_one_line_error(*cli("run", scenario(tmp_path, GOOD), "--trace", str(missing)),
                          str(missing), "does not exist")


def test_trace_with_an_unknown_suffix_is_refused_before_running(tmp_path: Path) -> None:
    """--trace x.txt fails before the run (stdout stays empty), naming the allowed suffixes."""
    assert_one_line_error(*cli("run", scenario(tmp_path, GOOD), "--trace",
                               str(tmp_path / "x.txt")), "x.txt", ".csv or .parquet")


def test_an_unknown_option_is_one_line_naming_it(tmp_path: Path) -> None:
    """argparse's own mistakes are one line too, pointing at --help."""
    with pytest.raises(SystemExit) as info, contextlib.redirect_stderr(io.StringIO()) as err:
        main(["run", scenario(tmp_path, GOOD), "--colour", "red"])
    assert info.value.code == 2
    assert_one_line_error(2, "", err.getvalue(), "--colour", "--help")


def test_an_error_from_deep_inside_is_still_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a lab error's text holds (a library's multi-line message), the command line
    prints it on one line."""
    def load(name: str) -> None:
        raise ScenarioError(f"{name}: first line\n  second line\n")

    monkeypatch.setattr(scenarios, "load", load)
    assert_one_line_error(*cli("run", "x.yaml"), "x.yaml: first line second line")


@pytest.mark.parametrize(("argv", "fragments"), [
    pytest.param(["grade", "subs", "--out", "g.csv", "--memory-mb", "-1"],
                 ["--memory-mb -1", "at least 1"], id="grade memory"),
    pytest.param(["grade", "subs", "--out", "g.csv", "--timeout", "nan"], ["--timeout nan"],
                 id="grade timeout nan"),
    pytest.param(["grade", "subs", "--out", "g.csv", "--cell-timeout", "0"],
                 ["--cell-timeout 0", "> 0"], id="grade cell timeout 0"),
    pytest.param(["fuzz", "--runs", "1", "--minimise-runs", "-5"], ["--minimise-runs", "-5"],
                 id="fuzz minimise runs"),
    pytest.param(["fuzz", "--runs", "1", "--profile", "architectures", "--records", "50"],
                 ["--records", "architectures"], id="fuzz records of architectures"),
])
def test_a_bad_number_option_is_refused_before_any_work(
    tmp_path: Path, argv: list[str], fragments: list[str]
) -> None:
    """Negative or NaN limits used to be accepted (grade ran with no memory at all, fuzz took
    -5 minimising runs as none)."""
    (tmp_path / "subs").mkdir()
    assert_one_line_error(*cli(*argv, cwd=tmp_path), *fragments)


def test_a_memory_limit_beyond_what_the_kernel_takes_is_refused(tmp_path: Path) -> None:
    """--memory-mb 99999999999999999 used to be accepted: setrlimit overflowed in every
    submission's process, and a solved notebook got 0 points for "the notebook's process
    ended before grading was over"."""
    (tmp_path / "subs").mkdir()
    assert_one_line_error(*cli("grade", "subs", "--out", "g.csv", "--memory-mb",
                               "99999999999999999", cwd=tmp_path),
                          "--memory-mb 99999999999999999", "at most")
    assert not (tmp_path / "g.csv").exists()


def test_a_memory_limit_too_small_to_import_the_lab_is_refused(tmp_path: Path) -> None:
    """--memory-mb 64 was accepted and every submission, solved or not, got 0 for "the
    notebook's process ended before grading was over" (it could not import NumPy). A process
    under the limit must import what every exercise imports before any grading starts."""
    from sim.grading.batch import memory_suffices
    from sim.grading.sandbox import Limits

    (tmp_path / "subs").mkdir()
    assert_one_line_error(*cli("grade", "subs", "--out", "g.csv", "--memory-mb", "64",
                               cwd=tmp_path),
                          "--memory-mb 64", "cannot import", "default 2048")
    assert not (tmp_path / "g.csv").exists()
    assert not memory_suffices(64 << 20)
    assert memory_suffices(1024 << 20)
    assert Limits.memory_bytes == 2048 << 20  # the default the message names


@pytest.mark.parametrize(("argv", "fragments"), [
    pytest.param(["--out", "subs"], ["--out subs is a folder"], id="out is a folder"),
    pytest.param(["--out", "afile/g.csv"], ["--out", "afile"], id="out under a file"),
    pytest.param(["--out", "g.csv", "--feedback", "afile"], ["--feedback", "afile"],
                 id="feedback is a file"),
])
def test_grade_outputs_that_cannot_be_written_are_refused_before_grading(
    tmp_path: Path, argv: list[str], fragments: list[str]
) -> None:
    """These were tracebacks; the feedback folder's only after every submission was graded."""
    (tmp_path / "subs").mkdir()
    (tmp_path / "afile").write_text("not a folder")
    assert_one_line_error(*cli("grade", "subs", *argv, cwd=tmp_path), *fragments)
    assert not (tmp_path / "g.csv").exists()


# --- Files that are not scenarios ----------------------------------------------------------------


def test_a_binary_file_is_not_a_scenario(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 text: the error names the file and says a scenario is text."""
    path = tmp_path / "photo.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xd0\xff")
    assert_one_line_error(*cli("run", str(path)), str(path), "not a text file")


def test_a_folder_is_not_a_scenario(tmp_path: Path) -> None:
    """A directory given as the scenario: named, with what to give instead."""
    assert_one_line_error(*cli("run", str(tmp_path)), str(tmp_path), "is a folder",
                          ".yaml")


# --- Scenario fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "fragments"), [
    pytest.param(("seed: 1", "seed: -1"), ["field seed", "integer ≥ 0", "-1"], id="seed -1"),
    pytest.param(("records: 200", "records: 10000000000"),
                 ["field producers[0].workload.records", "10,000,000,000", "GiB of memory",
                  "free"], id="ten billion records"),
    pytest.param(("partitions: 3", "partitions: 0"),
                 ["field topics[0].partitions", "at least 1", "is 0"], id="partitions 0"),
    pytest.param(("partitions: 3}]", "partitions: 3}, {name: orders, partitions: 2}]"),
                 ["field topics[1].name", "'orders'", "earlier topic"], id="duplicate topic"),
    pytest.param(("seed: 1", "seed: 1\nduration_ms: -100"),
                 ["field duration_ms", "≥ 0", "-100"], id="negative duration"),
    pytest.param(("seed: 1", "seed: 1\ncluster: {brokers: -2}"),
                 ["field cluster.brokers", "at least 1", "-2"], id="negative brokers"),
    pytest.param(("producers:\n  - config: {client.id: app}\n    workload: {topic: orders, "
                  "records: 200, rate_per_s: 10000}\n", "producers: []\n"),
                 ["field producers", "at least one producer"], id="no producers"),
    pytest.param((GOOD, GOOD + "faults: [{at_ms: 5, network_partition: "
                  "{a: [broker-1], b: [1, 2]}}]\n"),
                 ["field faults[0].network_partition.a", "'broker-1'", "broker ids 0 to 2",
                  "controller", "app"], id="partition naming an unknown node"),
    pytest.param((GOOD, GOOD + "faults: [{at_ms: 5, link_loss: "
                  "{a: 0, b: apps, probability: 0.5}}]\n"),
                 ["field faults[0].link_loss.b", "'apps'", "app"],
                 id="link loss naming an unknown client"),
])
def test_invalid_scenario_field_is_one_line_naming_file_field_and_rule(
    tmp_path: Path, change: tuple[str, str], fragments: list[str]
) -> None:
    """Each mistake names the file and the field the user wrote, with the value and the rule."""
    old, new = change
    assert old in GOOD
    path = scenario(tmp_path, GOOD.replace(old, new))
    assert_one_line_error(*cli("run", path), f"error: {path}: ", *fragments)


def test_the_same_scenario_without_the_mistake_runs(tmp_path: Path) -> None:
    """The base scenario and its valid faults run: the checks above blame only the mistakes."""
    text = GOOD + ("faults: [{at_ms: 5, network_partition: {a: [0, app], b: [1, 2, controller]}},"
                   " {at_ms: 6, link_loss: {a: 0, b: app, probability: 0.5}}]\n")
    code, out, err = cli("run", scenario(tmp_path, text))
    assert (code, err) == (0, "")
    assert "Scenario: good" in out


def test_a_repeated_client_id_is_known_by_its_numbered_name(tmp_path: Path) -> None:
    """Two producers named app: the second is app-1 (Producer numbers it), and faults may name
    it; plain app-2 names nobody."""
    two = GOOD + "  - config: {client.id: app}\n    workload: {topic: orders, records: 10, " \
                 "rate_per_s: 1000}\n"
    ok = two + "faults: [{at_ms: 5, link_loss: {a: 0, b: app-1, probability: 0.5}}]\n"
    code, _, err = cli("run", scenario(tmp_path, ok))
    assert (code, err) == (0, "")
    bad = two + "faults: [{at_ms: 5, link_loss: {a: 0, b: app-2, probability: 0.5}}]\n"
    assert_one_line_error(*cli("run", scenario(tmp_path, bad, "bad.yaml")), "'app-2'",
                          "app, app-1")


# --- Hostile values -----------------------------------------------------------------------------

CONSUMER = "consumers:\n  - {group: g, topics: [orders]}\n"
"""A consumer for GOOD (GOOD plus ``duration_ms``), named consumer-g-1."""


def _with(field: str) -> str:
    """GOOD with ``field`` (``key: value``) added to the workload."""
    return GOOD.replace("rate_per_s: 10000", f"rate_per_s: 10000, {field}")


@pytest.mark.parametrize(("text", "fragments"), [
    pytest.param(GOOD.replace("rate_per_s: 10000", "rate_per_s: .nan"),
                 ["field producers[0].workload.rate_per_s", "finite", "nan"], id="rate nan"),
    pytest.param(GOOD.replace("rate_per_s: 10000", "rate_per_s: .inf"),
                 ["field producers[0].workload.rate_per_s", "finite", "inf"], id="rate inf"),
    pytest.param(_with("start_ms: .nan"), ["field producers[0].workload.start_ms", "nan"],
                 id="workload start nan"),
    pytest.param(GOOD + "faults: [{at_ms: .nan, crash_broker: {broker: 1}}]\n",
                 ["field faults[0].at_ms", "nan"], id="fault at nan"),
    pytest.param(GOOD + "faults: [{at_ms: .inf, crash_broker: {broker: 1}}]\n",
                 ["field faults[0].at_ms", "inf"], id="fault at inf"),
    pytest.param(GOOD + "faults: [{at_ms: 5, slow_broker: {broker: 1, factor: .inf}}]\n",
                 ["field faults[0].slow_broker.factor", "inf"], id="slow factor inf"),
    pytest.param(GOOD.replace("client.id: app", "client.id: app, linger.ms: .inf"),
                 ["field producers[0].config", "linger.ms", "inf", "expected int"],
                 id="linger inf"),
    pytest.param("duration_ms: 1000\n" + GOOD + CONSUMER.replace("orders]", "orders], "
                 "processing_ms_per_record: .nan"),
                 ["field consumers[0].processing_ms_per_record", "finite"], id="processing nan"),
    pytest.param("duration_ms: 1000\n" + GOOD + CONSUMER.replace("orders]", "orders], "
                 "start_ms: .nan"), ["field consumers[0].start_ms"], id="consumer start nan"),
    pytest.param("duration_ms: 1000\n" + GOOD + CONSUMER + "faults: [{at_ms: 5, hang: "
                 "{consumer: consumer-g-1, duration_ms: .inf}}]\n",
                 ["field faults[0].hang.duration_ms", "finite"], id="hang inf"),
    pytest.param(_with("keys: {list: {keys: [a, b], weights: [.nan, 1]}}"),
                 ["field producers[0].workload.keys.list.weights", "finite"], id="weight nan"),
])
def test_a_number_that_is_not_finite_is_refused(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    """NaN and infinity (.nan, .inf in YAML) pass every "≥ 0" check by accident; they must be
    refused by name instead of running with NaN times (or forever)."""
    assert_one_line_error(*cli("run", scenario(tmp_path, text)), *fragments)


@pytest.mark.parametrize(("text", "fragments"), [
    pytest.param(GOOD + "description: 1.5\n", ["field description", "1.5"], id="description"),
    pytest.param(_with("start_ms: soon"), ["field producers[0].workload.start_ms", "'soon'"],
                 id="start text"),
    pytest.param(_with("start_ms: -5"), ["field producers[0].workload.start_ms", "-5"],
                 id="start negative"),
    pytest.param(GOOD + "cluster: {brokers: 3, brokers_overrides: null}\n",
                 ["field cluster.brokers_overrides", "None"], id="overrides null"),
    pytest.param(GOOD + "cluster: {brokers: 3, brokers_overrides: [1]}\n",
                 ["field cluster.brokers_overrides", "[1]"], id="overrides list"),
    pytest.param(GOOD + "faults: [{at_ms: 5, link_loss: {a: [0], b: app, probability: 1}}]\n",
                 ["field faults[0].link_loss.a", "one node", "[0]"], id="link loss list"),
    pytest.param(_with("keys: {list: {keys: [1, [2]]}}"),
                 ["field producers[0].workload.keys.list.keys[0]", "string"], id="key types"),
    pytest.param("duration_ms: 1000\n" + GOOD + CONSUMER.replace("topics: [orders]",
                                                                  "pattern: '('"),
                 ["field consumers[0].pattern", "regular expression"], id="bad regex"),
    pytest.param("duration_ms: 1000\n" + GOOD + CONSUMER.replace("[orders]", "[{}]"),
                 ["field consumers[0].topics", "{}"], id="topic a mapping"),
    pytest.param("duration_ms: 1000\n" + GOOD + CONSUMER.replace("[orders]", "[]"),
                 ["field consumers[0].topics", "at least one topic"], id="no topics"),
    pytest.param(GOOD.replace("name: orders", "name: '..'").replace("topic: orders",
                                                                    "topic: '..'"),
                 ["field topics[0].name", "'..'"], id="topic .."),
    pytest.param(GOOD.replace("orders", "a" * 250), ["field topics[0].name", "249"],
                 id="topic 250 chars"),
    pytest.param(GOOD.replace("orders", "'my orders'"), ["field topics[0].name", "illegal"],
                 id="topic with a space"),
    pytest.param(GOOD.replace("name: good", "name: \"a\\nb\""), ["field name", "one line"],
                 id="name on two lines"),
])
def test_a_value_of_the_wrong_shape_is_named_not_a_traceback(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    """Values that used to reach the simulation and crash it there (or fail without naming the
    file and field) are refused while loading."""
    code, out, err = cli("run", scenario(tmp_path, text))
    assert_one_line_error(code, out, err, "scenario.yaml: field", *fragments)


@pytest.mark.parametrize(("text", "fragments"), [
    pytest.param(GOOD + "seed: 2\n", ["'seed'", "twice", "line 7"], id="duplicate top key"),
    pytest.param(GOOD.replace("partitions: 3", "partitions: 3, partitions: 4"),
                 ["'partitions'", "twice"], id="duplicate nested key"),
    pytest.param(GOOD + "faults: [{at_ms: 5, crash_broker: {broker: 1, lose_disk: 'false'}}]\n",
                 ["field faults[0].crash_broker.lose_disk", "true or false", "'false'"],
                 id="lose_disk as text"),
    pytest.param(GOOD + "faults: [{at_ms: 5, crash_broker: {broker: 1, los_disk: true}}]\n",
                 ["field faults[0].crash_broker.los_disk", "broker, lose_disk"],
                 id="misspelt fault field"),
    pytest.param(GOOD + "faults: [{at_ms: 5, preferred_leader_election: {broker: 1}}]\n",
                 ["field faults[0].preferred_leader_election.broker"], id="field of no fault"),
    pytest.param(_with("keys: {zipf: {count: 10, sigma: 2}}"),
                 ["field producers[0].workload.keys.zipf.sigma", "count, s"], id="zipf field"),
    pytest.param(_with("keys: {list: {keys: [a], wieghts: [1]}}"),
                 ["field producers[0].workload.keys.list.wieghts"], id="list field"),
    pytest.param(_with("keys: {uniform: 10, zipff: {count: 10}}"),
                 ["field producers[0].workload.keys.zipff", "list, uniform, vip, zipf"],
                 id="misspelt key distribution"),
    pytest.param(_with("keys: {uniform: 1.7}"),
                 ["field producers[0].workload.keys.uniform", "int", "1.7"], id="uniform float"),
    pytest.param(GOOD.replace("partitions: 3", "partitions: 3, replica_assignment: [[0]]"),
                 ["field topics[0].partitions", "replica_assignment"],
                 id="partitions and replica assignment"),
    pytest.param("duration_ms: 1000\n" + GOOD + "faults: [{at_ms: 5000, crash_broker: "
                 "{broker: 1}}]\n", ["field faults[0].at_ms", "5000", "never"],
                 id="fault after the end"),
    pytest.param(GOOD + "faults: [{at_ms: 5, restart_broker: {broker: 1}}]\n",
                 ["field faults[0].restart_broker", "broker 1", "running"],
                 id="restart a running broker"),
    pytest.param(GOOD + "faults: [{at_ms: 9, crash_broker: {broker: 1}}, "
                 "{at_ms: 5, crash_broker: {broker: 1}}]\n",
                 ["field faults[0].crash_broker", "broker 1", "already crashed"],
                 id="crash a crashed broker"),
    pytest.param(GOOD + "faults: [{at_ms: 5, network_partition: {a: [0, 1], b: [1, 2]}}]\n",
                 ["field faults[0].network_partition.b", "1", "side a"], id="node on both sides"),
    pytest.param(GOOD + "faults: [{at_ms: 5, link_loss: {a: 0, b: 0, probability: 1}}]\n",
                 ["field faults[0].link_loss.b", "two different nodes"], id="link to itself"),
    pytest.param("duration_ms: 1000\n" + GOOD + CONSUMER.replace("orders]", "orders], "
                 "name: app"), ["field consumers", "'app'"], id="consumer named as producer"),
])
def test_a_mistake_that_used_to_be_silently_ignored_is_an_error(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    """Each of these ran and did something else than written (YAML kept the last of two keys,
    bool('false') is True, 1.7 keys became 1, a fault after the end never happened, ...)."""
    assert_one_line_error(*cli("run", scenario(tmp_path, text)), "scenario.yaml: ", *fragments)


@pytest.mark.parametrize(("text", "fragments"), [
    pytest.param(GOOD.replace("partitions: 3", "partitions: 1000000000"),
                 ["field topics[0].partitions", "1,000,000,000", "10,000"], id="partitions"),
    pytest.param(GOOD + "cluster: {brokers: 100000000}\n", ["field cluster.brokers", "1,000"],
                 id="brokers"),
    pytest.param("duration_ms: 1000\n" + GOOD + CONSUMER.replace("orders]", "orders], "
                 "count: 10000000"), ["field consumers[0].count", "1,000"], id="consumers"),
    pytest.param("duration_ms: 7200000\n" + GOOD + CONSUMER,
                 ["field duration_ms", "3,600,000"], id="consumers polling for ever"),
    pytest.param(_with("keys: {uniform: 1000000000000}"),
                 ["field producers[0].workload.keys.uniform", "1,000,000"], id="uniform keys"),
    pytest.param(_with("keys: {zipf: {count: 1000000000000}}"),
                 ["field producers[0].workload.keys.zipf.count", "1,000,000"], id="zipf keys"),
    pytest.param("duration_ms: 1.0e+30\n" + GOOD, ["field duration_ms", "86,400,000"],
                 id="a run of 10^30 ms"),
    pytest.param(GOOD + "cluster: {brokers: 3, broker_configs: {replica.lag.time.max.ms: 0}}\n",
                 ["field cluster.broker_configs", "replica.lag.time.max.ms", "at least 2"],
                 id="ISR check every 0 ms"),
    pytest.param(_with("value_bytes: 1000000000000"),
                 ["field producers[0].workload.value_bytes", "2,147,483,647"], id="record size"),
    pytest.param(_with("keys: {zipf: {count: 10, s: 1000}}"),
                 ["field producers[0].workload.keys.zipf.s", "50"], id="zipf exponent"),
])
def test_a_scenario_too_big_to_simulate_is_refused_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, fragments: list[str]
) -> None:
    """Sizes that used to run for minutes (or exhaust memory) before any output: refused while
    the file is checked, before any simulated cluster is built, naming the field and the lab's
    limit."""

    def no_cluster(*_: object, **__: object) -> None:
        raise AssertionError("a Kernel was built for a scenario the checks must refuse")

    monkeypatch.setattr(Kernel, "__init__", no_cluster)
    assert_one_line_error(*cli("run", scenario(tmp_path, text)), *fragments)


DEEP = 5000
"""Levels of hostile nesting: the text goes on far past ``MAX_NESTING``."""


def _laughs(levels: int) -> str:
    """A list anchored at each level and aliased ten times by the next: ``10**levels`` values
    in a few hundred bytes."""
    text = "&a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"
    for level in range(1, levels):
        text = f"&a{level} [{text}, " + ", ".join([f"*a{level - 1}"] * 9) + "]"
    return text


@pytest.mark.parametrize(("text", "fragments"), [
    pytest.param(GOOD.replace("rate_per_s: 10000}", "rate_per_s: 10000, keys: {uniform: "
                              + _laughs(9) + "}}"),
                 ["YAML aliases", "1,111,111,1", "at most 2,000,000"], id="a billion laughs"),
    pytest.param(GOOD.replace("topics: [", "topics: &t [").replace(
        "partitions: 3}", "partitions: 3, configs: {x: *t}}"),
                 ["a YAML alias", "holds it"], id="an alias inside its anchor"),
])
def test_yaml_aliases_that_expand_without_end_are_refused_at_once(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    """A 600-byte file whose aliases stand for a billion values ran for hours (walked while
    validated, and printed in the error); a list that holds itself was walked by luck."""
    started = time.monotonic()
    assert_one_line_error(*cli("run", scenario(tmp_path, text)), *fragments)
    assert time.monotonic() - started < 30


def test_aliases_that_share_a_config_still_load(tmp_path: Path) -> None:
    text = GOOD.replace("- config: {client.id: app}", "- config: &c {client.id: app}") + (
        "  - config: *c\n    workload: {topic: orders, records: 20, rate_per_s: 10000}\n")
    assert len(scenarios.load(scenario(tmp_path, text)).producers) == 2


@pytest.mark.parametrize(("text", "line", "column"), [
    pytest.param(GOOD + "description: " + "[" * DEEP + "]" * DEEP + "\n",
                 7, len("description: ") + MAX_NESTING, id="flow lists"),
    pytest.param(GOOD + "description:\n  " + "- " * DEEP + "x\n",
                 8, 2 + 2 * MAX_NESTING - 1, id="block lists"),
    pytest.param('{"name": "deep", "description": ' + "[" * DEEP + "]" * DEEP + "}",
                 1, len('{"name": "deep", "description": ') + MAX_NESTING, id="JSON"),
])
def test_hostile_deep_nesting_is_refused_where_it_passes_the_limit(
    tmp_path: Path, text: str, line: int, column: int
) -> None:
    """YAML or JSON nested 5,000 deep: PyYAML's scanner does more work per character the
    deeper it is, and its composer recurses once per level. The loader stops at the level
    past ``MAX_NESTING`` (the top mapping is level 1) with one line giving where: so it read
    no further than that (the work is bounded by the limit, not by the text), and the error
    is the lab's own check, not a ``RecursionError`` caught after the fact."""
    assert_one_line_error(*cli("run", scenario(tmp_path, text)), "not valid YAML",
                          f"nested too deeply for a scenario: more than {MAX_NESTING} levels "
                          f"at line {line}, column {column})")


@pytest.mark.parametrize("depth", [MAX_NESTING - 1, MAX_NESTING])
def test_nesting_up_to_the_limit_is_read(depth: int) -> None:
    """The limit refuses only past ``MAX_NESTING`` levels: a top-level mapping holding lists
    nested ``depth`` - 1 deep loads, and the check that fails next is about the field."""
    text = GOOD + "description: " + "[" * (depth - 1) + "]" * (depth - 1) + "\n"
    with pytest.raises(ScenarioError, match="field description") as info:
        scenarios.parse(text, "s.yaml")
    assert "nested" not in str(info.value)


@pytest.mark.parametrize(("text", "fragments"), [
    pytest.param("name:\tx\n", ["not valid YAML", "line 1"], id="tab"),
    pytest.param(GOOD.replace("rate_per_s: 10000", "rate_per_s: 1e4"),
                 ["rate_per_s", "'1e4'", "1.0e+3"], id="YAML 1.1 exponent"),
])
def test_yaml_mistakes_are_one_line(tmp_path: Path, text: str, fragments: list[str]) -> None:
    """PyYAML's multi-line messages are folded into one line; 1e4 (text in YAML 1.1) says so."""
    assert_one_line_error(*cli("run", scenario(tmp_path, text)), *fragments)


def test_the_guards_leave_valid_neighbours_alone(tmp_path: Path) -> None:
    """What the checks above must still accept: a crash then a restart, a fault at the very end,
    finite floats, and a partition between disjoint sides."""
    text = "duration_ms: 1000\n" + GOOD + (
        "faults: [{at_ms: 5, crash_broker: {broker: 1, lose_disk: true}}, "
        "{at_ms: 500.5, restart_broker: {broker: 1}}, "
        "{at_ms: 1000, network_partition: {a: [0], b: [1, controller]}}]\n")
    code, out, err = cli("run", scenario(tmp_path, text.replace("rate_per_s: 10000",
                                                                "rate_per_s: 1.0e+4")))
    assert (code, err) == (0, "")
    assert "Scenario: good" in out


# --- The header of a client fault (consumer, Streams, Connect) ----------------------------------

CLIENT_FAULT_BASES = {
    "crash": {"name": "c", "duration_ms": 30000, "topics": [{"name": "t", "partitions": 2}],
              "producers": [{"workload": {"topic": "t", "records": 100, "rate_per_s": 100}}],
              "consumers": [{"group": "g", "topics": ["t"], "count": 2}]},
    "streams_hang": {"name": "s", "duration_ms": 30000,
                     "topics": [{"name": "in", "partitions": 2}, {"name": "out", "partitions": 2}],
                     "producers": [{"workload": {"topic": "in", "records": 100,
                                                 "rate_per_s": 20}}],
                     "streams": [{"application.id": "app", "app": "rekey", "input": "in",
                                  "output": "out", "instances": 2}]},
    "connect_crash": {"name": "k", "duration_ms": 30000,
                      "topics": [{"name": "lines", "partitions": 3}],
                      "connect": {"workers": 2, "topic": "lines",
                                  "source": {"lines": 60, "rate_per_s": 12.0},
                                  "sink": {"tasks": 2}}},
}
CLIENT_FAULT_BODIES = {"crash": {"consumer": "consumer-g-1"},
                       "streams_hang": {"instance": "app-1", "duration_ms": 5},
                       "connect_crash": {"worker": "connect-1"}}
SECOND_KIND = {"crash": "leave", "streams_hang": "streams_crash",
               "connect_crash": "connect_restart"}


@pytest.mark.parametrize("kind", list(CLIENT_FAULT_BASES))
@pytest.mark.parametrize(("header", "message"), [
    ({"at_ms": -5}, r"field faults\[0\]\.at_ms must be a time in ms ≥ 0 but is -5\.$"),
    ({"at_ms": "soon"}, r"field faults\[0\]\.at_ms must be int or float but is 'soon'\.$"),
    ({"at_ms": True}, r"field faults\[0\]\.at_ms must be int or float but is True\.$"),
    ({"at_ms": math.nan}, r"field faults\[0\]\.at_ms must be a finite number but is nan\.$"),
    ({"at_ms": 5, "extra": 1}, r"field faults\[0\]\.extra is not a scenario field here; "
                               r"allowed: at_ms, KIND\.$"),
    ({"at_ms": 5, "KIND": "soon"}, r"field faults\[0\]\.KIND must be dict but is 'soon'\.$"),
    ({"at_ms": 5, "KIND": None}, r"field faults\[0\]\.KIND must be dict but is None\.$"),
    ({"at_ms": 5, "SECOND": {}}, r"field faults\[0\] needs exactly one fault kind besides "
                                 r"at_ms, but has KIND, SECOND\.$"),
])
def test_a_client_faults_header_gets_the_same_one_line_error_in_every_family(kind, header,
                                                                             message):
    """Consumer, Streams and Connect faults share one header check (``fault_header``): a
    bad ``at_ms``, an unknown field, a body that is no mapping or two kinds of the family are
    one line naming the field; a Connect fault's ``at_ms`` used to reach a comparison first
    (TypeError on text)."""
    fault = {**header, kind: CLIENT_FAULT_BODIES[kind]}
    if "KIND" in fault:
        fault[kind] = fault.pop("KIND")
    if "SECOND" in fault:
        fault[SECOND_KIND[kind]] = {**CLIENT_FAULT_BODIES[kind], **fault.pop("SECOND")}
    wanted = message.replace("KIND", kind).replace("SECOND", SECOND_KIND[kind])
    text = yaml.safe_dump({**CLIENT_FAULT_BASES[kind], "faults": [fault]})
    with pytest.raises(ScenarioError, match=r"^bad\.yaml: " + wanted) as raised:
        scenarios.parse(text, "bad.yaml")
    assert "\n" not in str(raised.value)
    good = {**CLIENT_FAULT_BASES[kind], "faults": [{"at_ms": 5, kind: CLIENT_FAULT_BODIES[kind]}]}
    scenarios.parse(yaml.safe_dump(good), "good.yaml")


# --- Mutants of the built-in scenarios -----------------------------------------------------------


def _builtin_bases() -> list[dict]:
    """The built-in scenarios, cut to at most 100 records a producer so each run is quick."""
    bases = []
    for name in scenarios.builtin_names():
        data = yaml.safe_load((ROOT / "sim" / "scenarios" / f"{name}.yaml").read_text("utf-8"))
        for spec in data.get("producers", []):
            spec["workload"]["records"] = min(spec["workload"]["records"], 100)
        bases.append(data)
    return bases


def test_hostile_mutants_of_every_builtin_get_a_run_or_one_line(tmp_path: Path) -> None:
    """300 seeded mutants (a hostile value anywhere, a field dropped, an unknown field added):
    each either runs (exit 0, nothing on stderr) or exits 2 with one ``error:`` line naming the
    file, never a traceback and never more than 10 s of CPU time (a busy machine's wall clock
    says nothing); an added unknown field is always an error that names it."""
    rng = random.Random(14)
    bases = _builtin_bases()
    path = tmp_path / "mutant.yaml"

    def too_slow(*_: object) -> None:
        raise TimeoutError

    previous = signal.signal(signal.SIGVTALRM, too_slow)
    try:
        for i in range(300):
            data, added_unknown = strategies.hostile_mutant(rng, rng.choice(bases))
            text = yaml.safe_dump(data, allow_unicode=True)
            path.write_text(text, encoding="utf-8")
            signal.setitimer(signal.ITIMER_VIRTUAL, 10)
            try:
                code, out, err = cli("run", str(path))
            except TimeoutError:
                pytest.fail(f"mutant {i} ran for more than 10 s of CPU time:\n{text}")
            finally:
                signal.setitimer(signal.ITIMER_VIRTUAL, 0)
            if code == 0 and not added_unknown:
                assert err == "", (i, err, text)
                continue
            assert_one_line_error(code, out, err, f"{path}: ")
            if added_unknown:
                assert strategies.UNKNOWN_FIELD in err, (i, err, text)
    finally:
        signal.signal(signal.SIGVTALRM, previous)


# --- The Python API in notebooks -----------------------------------------------------------------


@pytest.mark.parametrize(("call", "error", "fragments"), [
    pytest.param(lambda: Kernel(seed=-1), ConfigError, ["seed=-1", "integer ≥ 0"], id="seed -1"),
    pytest.param(lambda: Kernel(seed=1.5), ConfigError, ["seed=1.5"], id="seed float"),
    pytest.param(lambda: Kernel(seed="1"), ConfigError, ["seed='1'"], id="seed text"),
    pytest.param(lambda: Kernel(broker_configs=["lab.slowdown"]), ConfigError,
                 ["Broker configs are a mapping", "['lab.slowdown']"], id="broker configs list"),
    pytest.param(lambda: Producer(Kernel(), "acks=all"), ConfigError,
                 ["Producer configs are a mapping", "'acks=all'"], id="producer config text"),
    pytest.param(lambda: Kernel().run(math.nan), SimulationError, ["until_ms=nan"],
                 id="run until nan"),
    pytest.param(lambda: Kernel().run("10"), SimulationError, ["until_ms='10'"],
                 id="run until text"),
    pytest.param(lambda: scenarios.load(""), ScenarioError, ["No scenario named", "keyed"],
                 id="load empty name"),
])
def test_the_python_api_raises_the_labs_errors(
    call: Callable[[], object], error: type[Exception], fragments: list[str]
) -> None:
    """In a notebook, a wrong argument raises the lab's own error naming it, not numpy's
    ``ValueError`` or an ``AttributeError`` from deep inside."""
    with pytest.raises(error) as info:
        call()
    assert "\n" not in str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_run_until_infinity_is_run_to_the_end() -> None:
    """``run(math.inf)`` means ``run()``: with a consumer polling for ever it is refused the same
    way instead of spinning for ever."""
    kernel = Kernel()
    kernel.cluster.create_topic("orders", 1, 1)
    Consumer(kernel, {"group.id": "g"}).subscribe(["orders"])
    with pytest.raises(SimulationError, match="poll forever"):
        kernel.run(math.inf)


# --- Memory --------------------------------------------------------------------------------------


def test_a_run_beyond_free_memory_says_how_much_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 million records with 1 GiB free: refused before any allocation, saying it needs
    74.5 GiB (800 bytes a record) and how many records would fit."""
    monkeypatch.setattr(workloads, "available_memory_bytes", lambda: 2**30)
    path = scenario(tmp_path, GOOD.replace("records: 200", "records: 100000000"))
    assert_one_line_error(*cli("run", path), "74.5 GiB of memory", "1.0 GiB is free",
                          "at most about 1,342,177 records")


def test_a_run_within_free_memory_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same guard lets a run through when the estimate fits (1 million records need about
    763 MiB; 1 GiB is free)."""
    monkeypatch.setattr(workloads, "available_memory_bytes", lambda: 2**30)
    workloads.check_run_fits_in_memory(1_000_000)
    code, _, err = cli("run", scenario(tmp_path, GOOD))
    assert (code, err) == (0, "")


# --- exercises -----------------------------------------------------------------------------------


def test_exercises_check_without_the_folders_is_an_error(tmp_path: Path) -> None:
    """Neither solutions/ nor exercises/ here: an error, not "in step"."""
    assert_one_line_error(*cli("exercises", "check", cwd=tmp_path), "solutions/",
                          "is not a folder")


def test_exercises_build_into_a_file_is_an_error(tmp_path: Path) -> None:
    """It was a FileExistsError traceback from mkdir."""
    (tmp_path / "solutions").mkdir()
    (tmp_path / "afile").write_text("not a folder")
    assert_one_line_error(*cli("exercises", "build", "--exercises", "afile", cwd=tmp_path),
                          "--exercises afile is a file")


def test_exercises_check_without_exercises_says_to_build(tmp_path: Path) -> None:
    """solutions/ but no exercises/: an error saying how to build them."""
    (tmp_path / "solutions").mkdir()
    assert_one_line_error(*cli("exercises", "check", cwd=tmp_path), "exercises/",
                          "exercises build")


# --- In a real process ---------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    pytest.param(["run", "keyed", "--seed", "-1"], id="seed"),
    pytest.param(["run", "."], id="folder"),
    pytest.param(["run", "keyed", "--trace", "missing/trace.csv"], id="trace folder"),
])
def test_python_m_sim_prints_one_line_and_no_traceback(tmp_path: Path, argv: list[str]) -> None:
    """As a subprocess: exit 2, one line on stderr, nothing on stdout."""
    proc = python_m_sim(*argv, cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stdout, proc.stderr)
