"""Specification of the command line's answer to a user's mistake: one line, never a traceback.

Every mistake below exits with code 2 and prints exactly one line on stderr — starting with
``error:``, naming the file, the field or the argument, the value, and what is allowed — and
nothing on stdout: arguments and the scenario are checked before anything runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim import workloads
from sim.__main__ import main

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
