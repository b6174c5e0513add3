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
when fewer schedules run), beside the wall time measured. The wall time not spent inside the
workers' batches (starting the worker processes, importing ``sim`` there, the last task's
wait) is printed apart.

``--breakdown N`` first runs N schedules in this process as a worker runs them and prints
where one schedule's time goes: building the scenario, the simulated run, the checker's
judging (delivery audit and consistency check), and collecting the run's garbage; each also
as bare SimPy events, so that machines (and loads) compare.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from simpy_rate import REFERENCE_EVENTS_PER_S, simpy_events_per_s

from sim import scenarios
from sim.fuzz import checker
from sim.sweep import prepare, sweep
from sim.sweep.grid import scenario_of

TARGET_S = 60.0
TARGET_SCHEDULES = 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=TARGET_SCHEDULES,
                        help=f"fault schedules to run (default {TARGET_SCHEDULES})")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--profile", default="safe", help="fuzzer profile (default safe)")
    parser.add_argument("--breakdown", type=int, default=0, metavar="N",
                        help="first time the phases of N schedules in this process")
    args = parser.parse_args()
    if args.breakdown:
        breakdown(args.breakdown, args.profile)
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
    outside_s = wall_s - in_runs_s / min(args.jobs, timing["batches"])
    print(f"this machine now: SimPy runs {speed:,.0f} bare events/s (before {before:,.0f}, "
          f"after {after:,.0f}) = {speed / REFERENCE_EVENTS_PER_S:.2f}× the reference machine")
    print(f"{args.schedules:,} schedules of profile {args.profile} on {args.jobs} processes "
          f"({timing['batches']} batches): {wall_s:.1f} s wall, "
          f"{wall_s / args.schedules * 1000:.0f} ms per schedule; "
          f"{in_runs_s / args.schedules * 1000:.0f} ms per schedule inside a worker; "
          f"{runs['steps'].mean():,.0f} simulated events per schedule; "
          f"{outside_s:.1f} s of the wall outside the batches (workers starting, last task)")
    print(f"outcome: {int(runs['loses_data'].sum())} schedules lost data, "
          f"{int((runs['verdict'] != 'ok').sum())} with a violation, "
          f"{int(runs['hung'].sum())} hung, {int(runs['raised'].sum())} raised")
    verdict = "met" if wall_s <= scaled_s else f"missed by {wall_s - scaled_s:.1f} s"
    print(f"target: {TARGET_S:.0f} s for {TARGET_SCHEDULES:,} schedules on the reference machine"
          f" = {scaled_s:.1f} s for {args.schedules:,} here: {verdict} "
          f"(ratio {wall_s / scaled_s:.2f}; ≤ 1 meets it)")
    return 0


def breakdown(count: int, profile: str) -> None:
    """Where one schedule's time goes, run in this process the way a sweep's worker runs it."""
    plan, runs, _ = prepare(None, schedules=count, profile=profile)
    phases = dict.fromkeys(("scenario", "run", "judge", "collect"), 0.0)
    steps = 0
    gc.collect()
    gc.freeze()  # as a worker does (sim.sweep.backends.worker_batch)
    gc.disable()
    try:
        for run in runs:
            started = time.perf_counter()
            scenario = scenario_of(plan, run.params, run.seed, run.schedule)
            loaded = scenarios.from_dict(scenario, "breakdown.yaml")
            kernel = loaded.build()
            built = time.perf_counter()
            plan.guard.run(kernel, loaded.duration_ms)
            ran = time.perf_counter()
            checker._judge(kernel, scenario, [], plan.profile.unsafe)
            judged = time.perf_counter()
            steps += kernel.steps
            del kernel, loaded
            gc.collect()
            done = time.perf_counter()
            for phase, seconds in zip(phases, (built - started, ran - built, judged - ran,
                                               done - judged), strict=True):
                phases[phase] += seconds
    finally:
        gc.enable()
        gc.unfreeze()
    speed = max(simpy_events_per_s() for _ in range(3))
    total = sum(phases.values())
    print(f"one schedule in this process, mean of {count} (SimPy at {speed:,.0f} bare "
          f"events/s): {total / count * 1000:.0f} ms = {total / count * speed:,.0f} bare "
          f"events for {steps / count:,.0f} simulated events "
          f"({total * speed / steps:.0f} bare events per simulated event)")
    for phase, seconds in phases.items():
        print(f"  {phase:9s} {seconds / count * 1000:7.1f} ms {seconds / count * speed:10,.0f} "
              f"bare events {seconds / total:6.1%}")


if __name__ == "__main__":
    sys.exit(main())
