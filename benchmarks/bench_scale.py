"""Producer cost at scale: per batch as partitions grow, and the set-up share of a large run.

Run with ``python benchmarks/bench_scale.py``. Prints, measured in this run:

(1) key-less cost per batch: wall-clock seconds per produced batch for the same key-less workload
    (3 brokers, 1,000,000 records of 100 bytes at 2,000,000 records/s) into topics of 12, 120 and
    1,200 partitions, and the ratio 1,200 : 12. Target: grows ≤ 1.3×. Kafka's
    ``RecordAccumulator.ready`` visits every partition on every sender pass; the lab keeps
    partitions in a heap by ready time, so a pass only visits the ones that are due.
(2) set-up share of a 1,000,000-record run: generating the workload and filling the producer's
    record columns (send times, timestamps, key hashes, record sizes) against the whole run,
    for the standard keyed workload (12 partitions, 1,000 uniform keys) and a key-less one.
    Target: ≤ 5 %. Routing the records into per-partition streams, the producer's first
    batching step, is printed beside it (it is part of the run, not of the set-up).

Both are ratios of times taken in the same process, alternated so that a machine that speeds up
or slows down during the run affects every side alike; medians of ``REPEATS`` rounds.
"""

from __future__ import annotations

import gc
import statistics
import time

from sim import trace as events
from sim.kernel import Kernel
from sim.producer import Producer
from sim.workloads import NoKeys, UniformKeys, Workload

RECORDS = 1_000_000
RATE_PER_S = 2_000_000
PARTITIONS = (12, 120, 1_200)
REPEATS = 3
PER_BATCH_TARGET = 1.3
SETUP_TARGET = 0.05


class Phases:
    """Wall-clock seconds of one run's phases."""

    def __init__(self) -> None:
        self.generate = self.fill = self.add = self.simulate = 0.0

    @property
    def setup(self) -> float:
        """Generating the workload and filling the producer's record columns."""
        return self.generate + self.fill

    @property
    def total(self) -> float:
        return self.generate + self.add + self.simulate


_fill = Producer._fill
_current = Phases()


def _timed_fill(producer: Producer, *args: object) -> None:
    """``Producer._fill``, timed: the record columns and sizes of ``add_workload``."""
    start = time.perf_counter()
    _fill(producer, *args)
    _current.fill += time.perf_counter() - start


Producer._fill = _timed_fill  # type: ignore[method-assign]


def timed_run(partitions: int, keys: object) -> tuple[Phases, int]:
    """The phases of one run of the workload, and the batches it sent."""
    global _current
    _current = phases = Phases()
    gc.collect()
    gc.disable()
    try:
        kernel = Kernel(seed=1, brokers=3)
        kernel.cluster.create_topic("bench", partitions=partitions)
        start = time.perf_counter()
        workload = Workload.generate(kernel.spawn_rng(), "bench", RECORDS, RATE_PER_S, keys=keys,
                                     value_bytes=100)
        generated = time.perf_counter()
        producer = Producer(kernel, workload=workload)
        ready = time.perf_counter()
        kernel.run()
        done = time.perf_counter()
    finally:
        gc.enable()
    assert producer.acked == RECORDS
    phases.generate, phases.add = generated - start, ready - generated
    phases.simulate = done - ready
    return phases, int(kernel.trace.frame(events.REQUEST_SENT)["batches"].sum())


def per_batch_costs() -> dict[int, float]:
    """Median wall-clock seconds per batch (set-up and simulation) at each partition count."""
    for partitions in PARTITIONS:  # warm-up: imports, first-touch memory
        timed_run(partitions, NoKeys())
    costs: dict[int, list[float]] = {p: [] for p in PARTITIONS}
    for _ in range(REPEATS):
        for partitions in PARTITIONS:
            phases, batches = timed_run(partitions, NoKeys())
            costs[partitions].append(phases.total / batches)
    return {p: statistics.median(c) for p, c in costs.items()}


def setup_share(keys: object) -> tuple[Phases, float, float]:
    """The median run's phases of the 12-partition workload, the median share of its set-up,
    and the median share of routing (``add_workload`` beyond the record columns)."""
    timed_run(12, keys)
    runs = sorted((timed_run(12, keys)[0] for _ in range(REPEATS)), key=lambda r: r.total)
    return (runs[len(runs) // 2], statistics.median(r.setup / r.total for r in runs),
            statistics.median((r.add - r.fill) / r.total for r in runs))


def main() -> None:
    costs = per_batch_costs()
    for partitions, cost in costs.items():
        print(f"(1) key-less, {partitions:>5,} partitions: {cost * 1e6:7.1f} µs per batch "
              f"({cost / costs[PARTITIONS[0]]:.2f}× the {PARTITIONS[0]}-partition cost)")
    growth = costs[PARTITIONS[-1]] / costs[PARTITIONS[0]]
    verdict = "met" if growth <= PER_BATCH_TARGET else "NOT met"
    print(f"(1) cost per batch grows {growth:.2f}× from {PARTITIONS[0]} to {PARTITIONS[-1]:,} "
          f"partitions; target ≤ {PER_BATCH_TARGET}× {verdict}")
    for label, keys in (("keyed (1,000 keys)", UniformKeys(1000)), ("key-less", NoKeys())):
        run, share, routing = setup_share(keys)
        verdict = "met" if share <= SETUP_TARGET else "NOT met"
        print(f"(2) {label}: set-up {run.setup:.3f} s (generate {run.generate:.3f} s, record "
              f"columns and sizes {run.fill:.3f} s) of a {run.total:.3f} s run of {RECORDS:,} "
              f"records = {share:.1%}; target ≤ {SETUP_TARGET:.0%} {verdict}; routing to "
              f"partitions {routing:.1%}")


if __name__ == "__main__":
    main()
