"""How long does the partitioner playground take to answer a slider move?

Run: ``python benchmarks/bench_widgets.py [--profile]`` (about a minute on two cores).

The playground's callback is ``simulate_playground`` (a seeded run of ≈100,000 records) followed
by ``render`` and the PNG encoding the panel's image widget shows. The target is 150 ms for a
lesson-sized run. Each timing is the median of a few repetitions after a warm-up run, and is
also given as a ratio against a baseline measured in the same run: a bare ``Kernel`` plus
``Producer`` sending the same workload, without metrics or drawing.

With ``--profile`` the script also prints where the time of one callback goes (cProfile,
cumulative), for the built-in partitioner and for a custom one.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from sim import Kernel, NoKeys, Producer, Workload, viz
from sim.widgets import render, simulate_playground

TARGET_MS = 150.0
RECORDS = 100_000
REPEATS = 5

CASES: dict[str, dict[str, Any]] = {
    "built-in, key-less (default panel)": {},
    "built-in, uniform keys": {"keys": "uniform"},
    "built-in, slow broker ×100": {"slow_broker": 0, "slowdown": 100.0},
    "RoundRobinPartitioner (4.0)": {"partitioner": "round-robin"},
    "KIP-480 sticky (3.8)": {"partitioner": "kip-480"},
    "VipPartitioner, 10 partitions": {"partitioner": "vip", "partitions": 10, "keys": "vip"},
}


def median_ms(fn: Callable[[], Any], repeats: int = REPEATS) -> float:
    """Median wall time of ``fn()`` in ms over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def baseline() -> None:
    """A bare kernel and producer sending the default panel's workload: no metrics, no figure."""
    kernel = Kernel(seed=42, brokers=3)
    kernel.cluster.create_topic("clicks", partitions=12)
    workload = Workload.generate(kernel.spawn_rng(), "clicks", RECORDS, 100_000, keys=NoKeys())
    Producer(kernel, {"linger.ms": 5}, workload=workload)
    kernel.run()


def callback(values: dict[str, Any]) -> Callable[[], bytes]:
    """The playground's work for one slider move: simulate, draw, encode."""
    return lambda: viz.figure_png(render(simulate_playground(values)))


def profile(values: dict[str, Any], lines: int = 18) -> str:
    """cProfile of one callback, the ``lines`` most expensive calls by cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    callback(values)()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(lines)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    args = parser.parse_args()
    base = median_ms(baseline)
    print(f"baseline: bare Kernel + Producer, {RECORDS:,} key-less records: {base:.0f} ms")
    print(f"target for one playground callback: {TARGET_MS:.0f} ms\n")
    result = simulate_playground({})
    sim_ms = median_ms(lambda: simulate_playground({}))
    render_ms = median_ms(lambda: render(result))
    png_ms = median_ms(lambda: viz.figure_png(render(result))) - render_ms
    print(f"default panel split: simulate {sim_ms:.0f} ms · build figure {render_ms:.0f} ms · "
          f"encode PNG {png_ms:.0f} ms\n")
    print(f"{'case':38} {'median ms':>10} {'× baseline':>11} {'vs target':>10}")
    for name, values in CASES.items():
        ms = median_ms(callback(values), repeats=3)
        verdict = "met" if ms <= TARGET_MS else f"+{ms - TARGET_MS:.0f} ms"
        print(f"{name:38} {ms:10.0f} {ms / base:11.1f} {verdict:>10}")
    if args.profile:
        print("\nProfile, default panel:\n" + profile({}))
        print("Profile, RoundRobinPartitioner:\n" + profile({"partitioner": "round-robin"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
