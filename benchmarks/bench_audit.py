"""Delivery-audit benchmark: what auditing a run costs, as a ratio to what running it cost.

Run with ``python benchmarks/bench_audit.py``. For runs that lose thousands of acknowledged
records (the ``zombie-leader`` and ``unclean-election`` scenarios, and the zombie one scaled to
ten times more records), and for a run that loses nothing (the fuzzer's standard safe schedule:
3 brokers, RF 3, 3,000 records, faults, 120 s simulated), it prints the median wall-clock time
to simulate the run and to audit it (``sim.audit.audit_kernel``: final reads, lost-write causes,
unavailability windows), their ratio, and the audit's cost per lost record.

Target: an audit costs at most 0.3× the run it checks, at 3,000 lost records and at 30,000 (ten
times as many): the audit is linear in the records, so its share of the run does not grow with
them — a loss's cause is found by sorted searches over all lost records at once, never by a
trace search per record. A run that loses nothing pays no cause analysis at all (a sweep of
1,000 fault schedules is mostly such runs).

Machines differ several-fold, so only the ratio, measured here in one process, is the verdict.
"""

from __future__ import annotations

import copy
import gc
import statistics
import time

from sim import scenarios
from sim.audit import audit_kernel
from sim.fuzz.generator import PROFILES, generate, to_yaml

REPEATS = 3
TARGET = 0.3
"""The most an audit may cost, as a fraction of the run it checks."""


def scaled_zombie(records: int) -> scenarios.Scenario:
    """``zombie-leader`` with ``records`` records at 200 records per simulated second × k."""
    scenario = copy.deepcopy(scenarios.load("zombie-leader"))
    workload = scenario.producers[0]["workload"]
    factor = records / workload["records"]
    workload["records"] = records
    workload["rate_per_s"] = workload["rate_per_s"] * factor
    return scenario


def measure(scenario: scenarios.Scenario) -> tuple[float, float, int]:
    """Median seconds to run and to audit ``scenario``, and the records it lost."""
    runs, audits, lost = [], [], 0
    for _ in range(REPEATS + 1):  # the first round warms up and is dropped
        gc.collect()
        start = time.perf_counter()
        kernel = scenario.run()
        ran = time.perf_counter() - start
        start = time.perf_counter()
        report = audit_kernel(kernel)
        audited = time.perf_counter() - start
        runs.append(ran)
        audits.append(audited)
        lost = report.lost
    return statistics.median(runs[1:]), statistics.median(audits[1:]), lost


def main() -> None:
    cases = [("zombie-leader", scenarios.load("zombie-leader")),
             ("unclean-election", scenarios.load("unclean-election")),
             ("zombie-leader × 10", scaled_zombie(40_000)),
             ("fuzz safe, no loss", scenarios.parse(to_yaml(generate(PROFILES["safe"], 0, 0)),
                                                    "fuzz-safe-0-0.yaml"))]
    print(f"{'run':<20} {'lost':>7} {'run s':>8} {'audit s':>8} {'audit/run':>10} "
          f"{'µs/lost':>8}")
    worst = 0.0
    for name, scenario in cases:
        ran, audited, lost = measure(scenario)
        ratio = audited / ran
        worst = max(worst, ratio)
        print(f"{name:<20} {lost:>7} {ran:>8.3f} {audited:>8.3f} {ratio:>10.2f} "
              + (f"{audited / lost * 1e6:>8.1f}" if lost else f"{'-':>8}"))
    verdict = "met" if worst <= TARGET else "NOT met"
    print(f"target audit/run ≤ {TARGET}: {verdict} (worst {worst:.2f})")


if __name__ == "__main__":
    main()
