"""Same scenario and seed, same bytes — under any ``PYTHONHASHSEED``.

Python randomises the hashes of strings per process, so iterating a set (or a dict built from
one) that holds strings — client ids, ``"controller"`` — can change the order of events from
one run to the next. Each test runs ``python -m sim`` in fresh interpreters with two hash seeds
and compares their output byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HASH_SEEDS = ("0", "1")  # 1 put broker ids of a set with "controller" and "app" out of order

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


def run_cli(hash_seed: str, *argv: str, cwd: Path) -> bytes:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONIOENCODING": "utf-8",
           "PYTHONPATH": os.pathsep.join([str(ROOT),
                                          *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-m", "sim", *argv], cwd=cwd, env=env,
                          capture_output=True, timeout=300, check=False)
    assert (proc.returncode, proc.stderr) == (0, b"")
    return proc.stdout


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
    first, second = (run_cli(seed, *argv, cwd=tmp_path) for seed in HASH_SEEDS)
    assert first
    assert first == second
