"""Producer and log benchmarks: the produce path's cost against a bare-SimPy loop, and memory.

Run with ``python benchmarks/bench_producer.py [--peak-records N]``. Prints, measured in this
run, as ratios (machines, and one machine's load, differ several-fold; ratios much less):

(a) the standard keyed workload (3 brokers, 12 partitions, 1,000,000 records of 100 bytes,
    1,000 uniform keys) with replication factor 1, against a bare-SimPy loop doing five
    timeouts and one NumPy slice assignment per 160-record batch (a produce round trip's
    events and the least copying a batch needs, nothing else). Target: within 8× of the loop.
(b) the same with replication factor 3, ``acks=all``, ``min.insync.replicas=2``: within 10×.
(c) peak memory (tracemalloc) during a run of ``--peak-records`` records (10,000,000 by
    default; 0 skips it), RF 1 and RF 3, per record: target ≤ 60 bytes. Also the bytes per
    record the partition logs hold at the end (per replica, by the logs' accounting and
    traced): ≤ 16.
    The accounting counts each replica's copy (as each Kafka replica has its own files); the
    traced bytes count once the full blocks a follower shares with its leader.

Each workload is timed in alternation with the baseline, medians of ``REPEATS`` runs with the
garbage collector paused as ``timeit`` does.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable, Generator

import numpy as np
import simpy

from sim.broker import log as log_module
from sim.kernel import Kernel
from sim.producer import Producer
from sim.workloads import UniformKeys, Workload

RECORDS = 1_000_000
RATE_PER_S = 2_000_000
BASELINE_BATCH = 160  # records per batch of the baseline loop
REPEATS = 3
TARGET_RATIO = {1: 8.0, 3: 10.0}
TARGET_PEAK_BYTES = 60
TARGET_STORED_BYTES = 16


def build(records: int, rf: int) -> tuple[Kernel, Producer]:
    """The standard keyed workload, ready to run: RF 1 with the defaults, or RF 3 with
    ``acks=all`` and ``min.insync.replicas=2``."""
    kernel = Kernel(seed=1, brokers=3)
    configs = {"min.insync.replicas": 2} if rf == 3 else {}
    kernel.cluster.create_topic("bench", partitions=12, replication_factor=rf, configs=configs)
    workload = Workload.generate(kernel.spawn_rng(), "bench", records, RATE_PER_S,
                                 keys=UniformKeys(1000), value_bytes=100)
    producer = Producer(kernel, {"acks": "all"} if rf == 3 else {}, workload=workload)
    return kernel, producer


def simulate(rf: int, records: int = RECORDS) -> float:
    """Seconds to set up and simulate the standard keyed workload once."""
    start = time.perf_counter()
    kernel, producer = build(records, rf)
    kernel.run()
    elapsed = time.perf_counter() - start
    assert producer.acked == records
    return elapsed


def bare_simpy_loop(records: int = RECORDS, batch: int = BASELINE_BATCH) -> float:
    """Seconds for SimPy to run five timeouts and one NumPy slice assignment per batch."""
    start = time.perf_counter()
    env = simpy.Environment()
    source = np.arange(records, dtype=np.int64)
    stored = np.empty(records, np.int64)

    def produce() -> Generator[simpy.Event, None, None]:
        for lo in range(0, records, batch):
            for _ in range(5):  # accumulate, send, append, respond, complete
                yield env.timeout(0.1)
            stored[lo : lo + batch] = source[lo : lo + batch]

    env.process(produce())
    env.run()
    return time.perf_counter() - start


def paired_times(run: Callable[[], float]) -> tuple[float, float]:
    """Median seconds of ``run`` and of the baseline, timed in alternation after a warm-up so
    that a machine that speeds up or slows down during the run affects both alike."""
    run()
    bare_simpy_loop()
    workload, baseline = [], []
    for _ in range(REPEATS):
        for timed, times in ((run, workload), (bare_simpy_loop, baseline)):
            gc.collect()
            gc.disable()
            try:
                times.append(timed())
            finally:
                gc.enable()
    return statistics.median(workload), statistics.median(baseline)


def peak_memory(records: int, rf: int) -> dict[str, float]:
    """Bytes per record: peak traced during setup and run, and what the logs hold at the end
    (per replica, by ``PartitionLog.nbytes`` and traced: what ``sim.broker.log`` allocated and
    still holds)."""
    gc.collect()
    tracemalloc.start()
    try:
        kernel, producer = build(records, rf)
        kernel.run()
        assert producer.acked == records
        _, peak = tracemalloc.get_traced_memory()
        logs = [log for topic in kernel.cluster.topics.values() for part in topic.partitions
                for log in part.logs.values()]
        accounted = sum(log.nbytes() for log in logs)
        in_logs = tracemalloc.Filter(True, log_module.__file__)
        traced = sum(stat.size for stat in tracemalloc.take_snapshot().filter_traces(
            [in_logs]).statistics("filename"))
    finally:
        tracemalloc.stop()
    stored = records * rf
    return {"peak": peak / records, "accounted": accounted / stored, "traced": traced / stored}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peak-records", type=int, default=10_000_000,
                        help="records of the peak-memory runs (default 10,000,000; 0 skips "
                             "them)")
    args = parser.parse_args(argv)
    for label, rf in (("(a) RF 1", 1), ("(b) RF 3, acks=all, min.insync.replicas=2", 3)):
        seconds, baseline = paired_times(lambda rf=rf: simulate(rf))
        ratio = seconds / baseline
        verdict = "met" if ratio <= TARGET_RATIO[rf] else "NOT met"
        print(f"{label}: {seconds:.3f} s for {RECORDS:,} keyed records, {ratio:.1f}× the bare "
              f"SimPy loop ({baseline * 1000:.1f} ms: 5 timeouts + 1 slice per "
              f"{BASELINE_BATCH}-record batch); target ≤ {TARGET_RATIO[rf]:g}× {verdict}")
    for rf in (1, 3) if args.peak_records > 0 else ():
        start = time.perf_counter()
        memory = peak_memory(args.peak_records, rf)
        peak_ok = "met" if memory["peak"] <= TARGET_PEAK_BYTES else "NOT met"
        stored_ok = "met" if max(memory["accounted"], memory["traced"]) <= TARGET_STORED_BYTES \
            else "NOT met"
        print(f"(c) RF {rf}, {args.peak_records:,} records "
              f"({time.perf_counter() - start:.0f} s traced): peak {memory['peak']:.1f} "
              f"bytes/record, target ≤ {TARGET_PEAK_BYTES} {peak_ok}; stored log "
              f"{memory['accounted']:.1f} bytes/record per replica by the logs' accounting, "
              f"{memory['traced']:.1f} traced, target ≤ {TARGET_STORED_BYTES} {stored_ok}")


if __name__ == "__main__":
    main()
