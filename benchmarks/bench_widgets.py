"""How long does the partitioner playground take to answer a slider move?

Run: ``python benchmarks/bench_widgets.py [--profile]`` (about two minutes on two cores).

A slider move is what the panel's callback does when a control is released: re-simulate the
run (≈100,000 records), summarise it, redraw the figure and encode it as PNG, and fill in the
statistics table. The script builds a real ``PlaygroundPanel`` (no browser is needed), moves
one control through neighbouring positions as a learner would, and times each callback.

The target is 150 ms per move on the reference machine the target was set on, where SimPy
processes about 2,000,000 bare events per second. Machines differ several-fold,
so the script measures that rate here too, beside each case, and also prints the target scaled
by it (the stricter of the two measurements), along with a ratio against a baseline measured in
the same run: a bare ``Kernel`` plus ``Producer`` sending the default panel's workload, without
metrics or drawing.

With ``--profile`` the script also prints where the time of one move goes (cProfile).
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

from simpy_rate import REFERENCE_EVENTS_PER_S, simpy_events_per_s

from sim import Kernel, NoKeys, Producer, Workload, lessons
from sim.widgets import simulate_playground
from sim.widgets.playground import PlaygroundPanel
from sim.widgets.playground_figure import PlaygroundFigure

TARGET_MS = 150.0
RECORDS = 100_000
REPEATS = 5

MOVES: dict[str, tuple[dict[str, Any], str, list[Any]]] = {
    # case: (panel values, control moved, positions it is moved through)
    "built-in, key-less (default panel)": ({}, "linger.ms", [4, 6, 8, 5, 3, 5]),
    "built-in, batch.size steps": ({}, "batch.size", [8192, 32768, 16384, 65536, 16384]),
    "built-in, uniform keys": ({"keys": "uniform"}, "linger.ms", [4, 6, 8, 5]),
    "built-in, Zipf keys s=1.2 (lesson 01)": ({"keys": "zipf", "zipf_s": 1.2}, "zipf_s",
                                              [1.0, 1.5, 1.2]),
    "built-in, slow broker": ({"slow_broker": 0, "slowdown": 100.0}, "slowdown",
                              [50.0, 79.43282347242814, 100.0, 63.09573444801933]),
    "RoundRobinPartitioner (4.0)": ({"partitioner": "round-robin"}, "linger.ms", [4, 6, 5]),
    "KIP-480 sticky (3.8)": ({"partitioner": "kip-480"}, "linger.ms", [4, 6, 5]),
    "KIP-480, slow broker, linger.ms=0 (lesson 01)": (
        {"partitioner": "kip-480", "slow_broker": 0, "slowdown": 100.0, "linger.ms": 0},
        "slowdown", [50.0, 79.43282347242814, 100.0]),
    "VipPartitioner, 10 partitions": ({"partitioner": "vip", "partitions": 10, "keys": "vip"},
                                      "linger.ms", [4, 6, 5]),
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


def slider_moves(values: dict[str, Any], control: str, positions: list[Any]
                 ) -> tuple[list[float], int]:
    """Time each move of ``control`` through ``positions`` on one panel: (ms per move, frames
    the figure drew in full during the moves)."""
    panel = PlaygroundPanel(values)
    widget = panel.controls[control]
    before = panel.figure.frames_drawn
    times = []
    for value in positions:
        start = time.perf_counter()
        widget.value = value  # the panel's observer re-simulates and redraws
        times.append((time.perf_counter() - start) * 1000)
        assert panel.result is not None
        assert panel.result.ok, panel.result.message
    return times, panel.figure.frames_drawn - before


def split_default() -> str:
    """Where a default-panel move goes: simulate, summarise, draw (kept frame), full frame."""
    from sim.widgets.playground import _kernel_args

    args = _kernel_args({})
    run_ms = median_ms(lambda: lessons.producer_kernel(**args).run())
    kernel = lessons.producer_kernel(**args).run()
    summary_ms = median_ms(lambda: lessons.summarise(kernel))
    result = simulate_playground({})
    figure = PlaygroundFigure()
    blit_ms = median_ms(lambda: figure.png(result))
    full_ms = median_ms(lambda: PlaygroundFigure().png(result), repeats=3)
    return (f"default panel split: simulate {run_ms:.0f} ms · summarise {summary_ms:.0f} ms · "
            f"draw data and encode {blit_ms:.0f} ms (a move that redraws the frame: "
            f"{full_ms:.0f} ms, on a new figure)")


def profile(values: dict[str, Any], control: str, value: Any, lines: int = 25) -> str:
    """cProfile of one slider move, the ``lines`` most expensive calls by cumulative time."""
    panel = PlaygroundPanel(values)
    profiler = cProfile.Profile()
    profiler.enable()
    panel.controls[control].value = value
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(lines)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    args = parser.parse_args()
    speed = statistics.median(simpy_events_per_s() for _ in range(3))
    base = median_ms(baseline)
    print(f"this machine now: SimPy runs {speed:,.0f} bare events/s = "
          f"{speed / REFERENCE_EVENTS_PER_S:.2f}× the reference machine; the "
          f"{TARGET_MS:.0f} ms target there is {TARGET_MS * REFERENCE_EVENTS_PER_S / speed:.0f} "
          "ms here")
    print(f"baseline: bare Kernel + Producer, {RECORDS:,} key-less records: {base:.0f} ms\n")
    print(split_default() + "\n")
    print(f"{'case (control moved)':58} {'median':>7} {'max':>6} {'frames':>7} "
          f"{'× base':>7} {'vs 150 ms':>10} {'scaled':>7} {'vs scaled':>10}")
    for name, (values, control, positions) in MOVES.items():
        # the machine's speed is measured again beside each case: load on it comes and goes
        scaled = TARGET_MS * REFERENCE_EVENTS_PER_S / simpy_events_per_s()
        times, frames = slider_moves(values, control, positions)
        scaled = min(scaled, TARGET_MS * REFERENCE_EVENTS_PER_S / simpy_events_per_s())
        ms = statistics.median(times)
        absolute = "met" if ms <= TARGET_MS else f"+{ms - TARGET_MS:.0f} ms"
        relative = "met" if ms <= scaled else f"+{ms - scaled:.0f} ms"
        print(f"{name + f' ({control})':58} {ms:7.0f} {max(times):6.0f} "
              f"{frames:>3}/{len(times):<3} {ms / base:7.2f} {absolute:>10} {scaled:7.0f} "
              f"{relative:>10}")
    print("\nframes: moves that redrew the figure's frame (axes, ticks, legend) in full; scaled: "
          "the target on this machine, from the faster of the SimPy rates measured just before "
          "and just after the case")
    if args.profile:
        print("\nProfile, default panel, linger.ms 5 → 6:\n" + profile({}, "linger.ms", 6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
