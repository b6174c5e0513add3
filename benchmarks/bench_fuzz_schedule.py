"""The fuzzer's schedule cost: CPU milliseconds per schedule of the "safe" profile.

Run with ``python benchmarks/bench_fuzz_schedule.py [SCHEDULES]`` (default 20). Each schedule
(3 brokers, RF 3, 3 partitions, keyed records at 50/s, ``linger.ms`` 5) sends nearly every
record in a request of its own, so the producer's per-request costs dominate. Scenarios are
built before timing; only the runs are timed, with the garbage collector frozen and paused.
"""

from __future__ import annotations

import gc
import sys
import time

from sim import scenarios
from sim.sweep import prepare
from sim.sweep.grid import scenario_of


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    plan, runs, _ = prepare(None, schedules=count, profile="safe")
    built = [scenarios.from_dict(scenario_of(plan, r.params, r.seed, r.schedule), "b.yaml")
             for r in runs]
    gc.collect()
    gc.freeze()
    gc.disable()
    total = 0.0
    for loaded in built:
        kernel = loaded.build()
        start = time.process_time()
        plan.guard.run(kernel, loaded.duration_ms)
        total += time.process_time() - start
    print(f"{total / len(built) * 1000:.1f} ms/schedule")


if __name__ == "__main__":
    main()
