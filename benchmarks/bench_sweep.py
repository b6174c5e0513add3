"""A sweep of the fuzzer's standard schedule: wall time of 1,000 fault schedules on 2 processes.

Run with ``python benchmarks/bench_sweep.py [--schedules 1000] [--jobs 2] [--profile safe]``.
Each run is the fuzzer's standard schedule (3 brokers, a topic of 3 partitions with
replication factor 3, 3,000 keyed records at 50/s, faults undone within 60 s, then 60 s to
settle: 120 s simulated), run and judged by ``sim.sweep.sweep`` exactly as ``python -m sim
sweep --schedules N`` does: batches of runs on joblib's loky processes.

Target: 1,000 schedules in < 60 s with 2 processes on the reference machine, where SimPy
processes about 2,000,000 bare events per second. Machines (and one machine's load) differ
several-fold, so the script measures SimPy's bare-event rate just before and just after the
sweep and prints the target scaled by the faster of the two (and by ``--schedules`` / 1,000
when fewer schedules run), beside the wall time measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from simpy_rate import REFERENCE_EVENTS_PER_S, simpy_events_per_s

from sim.sweep import sweep

TARGET_S = 60.0
TARGET_SCHEDULES = 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=TARGET_SCHEDULES,
                        help=f"fault schedules to run (default {TARGET_SCHEDULES})")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--profile", default="safe", help="fuzzer profile (default safe)")
    args = parser.parse_args()
    before = statistics.median(simpy_events_per_s() for _ in range(3))
    started = time.perf_counter()
    runs = sweep(None, schedules=args.schedules, profile=args.profile, jobs=args.jobs)
    wall_s = time.perf_counter() - started
    after = simpy_events_per_s()
    speed = max(before, after)
    timing = runs.attrs["timing"]
    share = args.schedules / TARGET_SCHEDULES
    scaled_s = TARGET_S * share * REFERENCE_EVENTS_PER_S / speed
    in_runs_s = sum(timing["batch_wall_s"])
    print(f"this machine now: SimPy runs {speed:,.0f} bare events/s (before {before:,.0f}, "
          f"after {after:,.0f}) = {speed / REFERENCE_EVENTS_PER_S:.2f}× the reference machine")
    print(f"{args.schedules:,} schedules of profile {args.profile} on {args.jobs} processes "
          f"({timing['batches']} batches): {wall_s:.1f} s wall, "
          f"{wall_s / args.schedules * 1000:.0f} ms per schedule; "
          f"{in_runs_s / args.schedules * 1000:.0f} ms per schedule inside a worker; "
          f"{runs['steps'].mean():,.0f} simulated events per schedule")
    print(f"outcome: {int(runs['loses_data'].sum())} schedules lost data, "
          f"{int((runs['verdict'] != 'ok').sum())} with a violation, "
          f"{int(runs['hung'].sum())} hung, {int(runs['raised'].sum())} raised")
    verdict = "met" if wall_s <= scaled_s else f"missed by {wall_s - scaled_s:.1f} s"
    print(f"target: {TARGET_S:.0f} s for {TARGET_SCHEDULES:,} schedules on the reference machine"
          f" = {scaled_s:.1f} s for {args.schedules:,} here: {verdict} "
          f"(ratio {wall_s / scaled_s:.2f}; ≤ 1 meets it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
