"""Same scenario and seed, same bytes — under any ``PYTHONHASHSEED``, whatever ran before.

Python randomises the hashes of strings per process, so iterating a set (or a dict built from
one) that holds strings — client ids, ``"controller"`` — can change the order of events from
one run to the next. Each test runs ``python -m sim`` in fresh interpreters with two hash seeds
and compares their output byte for byte.

A run also must not change after it ends. SimPy processes are generators; when a finished run's
kernel is dropped, Python closes the paused ones whenever its garbage collector gets to them,
which depends on everything else the interpreter did. Code that runs then (a ``finally``) must
not write to the run's trace: the Streams scenarios are checked after a collection and against
fresh interpreters.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim import scenarios
from tests.trace_fingerprints import FINGERPRINTS, trace_fingerprints

ROOT = Path(__file__).resolve().parents[1]
HASH_SEEDS = ("0", "1")  # 1 put broker ids of a set with "controller" and "app" out of order
STREAMS_SCENARIOS = [name for name in scenarios.builtin_names() if scenarios.load(name).streams]

# Every broker is fenced while the controller is isolated; when the link heals they register one
# after the other, and the first one back is elected for every partition.
CONTROLLER_HEAL = """\
name: controller-heal-order
description: The controller is isolated for 14 s; every broker is fenced, then all return.
seed: 7
duration_ms: 20000
cluster: {brokers: 3}
topics:
  - {name: payments, partitions: 3, replication_factor: 3}
producers:
  - config: {client.id: app}
    workload: {topic: payments, records: 2000, rate_per_s: 100, value_bytes: 100}
faults:
  - {at_ms: 1000, network_partition: {a: [controller], b: [0, 1, 2, app]}}
  - {at_ms: 15000, heal_network: {a: [controller], b: [0, 1, 2, app]}}
"""


def run_python(*argv: str, cwd: Path) -> list[bytes]:
    """``python *argv`` in one fresh interpreter per hash seed of ``HASH_SEEDS``, all at once:
    their stdouts."""
    procs = []
    for hash_seed in HASH_SEEDS:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONIOENCODING": "utf-8",
               "PYTHONPATH": os.pathsep.join([str(ROOT),
                                              *filter(None, [os.environ.get("PYTHONPATH")])])}
        procs.append(subprocess.Popen([sys.executable, *argv], cwd=cwd, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outputs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert (proc.returncode, stderr) == (0, b"")
        outputs.append(stdout)
    return outputs


def run_cli(*argv: str, cwd: Path) -> list[bytes]:
    """``python -m sim *argv`` under each hash seed: their stdouts."""
    return run_python("-m", "sim", *argv, cwd=cwd)


@pytest.mark.parametrize("argv", [
    ("run", "zombie-leader"),
    ("run", "unclean-election"),
    ("run", "acks1-leader-crash", "--json"),
    ("run", "controller-heal.yaml"),
    ("run", "compaction-last-value", "--json"),
])
def test_output_does_not_depend_on_the_hash_seed(tmp_path: Path, argv: tuple[str, ...]):
    """Built-in scenarios (network partitions with and without the controller), a --json run
    and a controller heal that unfences every broker print identical bytes."""
    (tmp_path / "controller-heal.yaml").write_text(CONTROLLER_HEAL, encoding="utf-8")
    first, second = run_cli(*argv, cwd=tmp_path)
    assert first
    assert first == second


def test_the_streams_scenarios_are_found() -> None:
    """The Streams tests below pick the built-in scenarios that run Kafka Streams."""
    assert {"kappa-reprocessing", "streams-restore-shared-state-dir"} <= set(STREAMS_SCENARIOS)


@pytest.mark.slow
def test_a_streams_run_does_not_change_when_python_collects_it() -> None:
    """Each Streams scenario runs after the others in one interpreter, only its trace kept; its
    finished kernel is collected (stream threads paused in their loop) and the next scenarios
    run. Every trace still matches its pinned fingerprints."""
    pinned = json.loads(FINGERPRINTS.read_text())
    traces = {}
    for name in STREAMS_SCENARIOS:
        traces[name] = scenarios.load(name).run().trace
        gc.collect()
    for name, trace in traces.items():
        assert trace_fingerprints(trace) == pinned[name], name


@pytest.mark.slow
@pytest.mark.parametrize("name", STREAMS_SCENARIOS)
def test_streams_trace_frames_do_not_depend_on_the_hash_seed(tmp_path: Path, name: str) -> None:
    """Each Streams scenario's trace fingerprints, each from a fresh interpreter, are the same
    under two hash seeds and are the pinned ones."""
    script = ("import json, sys; from tests.trace_fingerprints import scenario_fingerprints; "
              "print(json.dumps(scenario_fingerprints(sys.argv[1]), sort_keys=True))")
    first, second = run_python("-c", script, name, cwd=tmp_path)
    assert first == second
    assert json.loads(first) == json.loads(FINGERPRINTS.read_text())[name]
