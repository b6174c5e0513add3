"""Architectures benchmark: the lesson's comparison against the bare Streams run of its workload.

Run with ``python benchmarks/bench_architectures.py [REPEATS]``. It times, in one process:

- **comparison**: ``simulate()`` with all four architectures attached (the lesson's run: four
  simulated hours of payments, three Streams applications over its course, the batch jobs,
  the SQLite serving layer, the Parquet reads) followed by ``comparison()``;
- **bare Streams run**: the same payments sent at the same moments to the same cluster, with
  only one revenue Streams application running, and nothing else.

Machines differ several-fold, so only the ratio comparison / bare, measured here in one
process, is comparable. The lesson stays interactive while the comparison takes seconds.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time

from sim.architectures import Workload, comparison, run_payments, simulate
from sim.architectures.revenue_app import revenue_app
from sim.architectures.run import BROKER_CONFIGS, TOPIC, TOPIC_CONFIGS
from sim.architectures.workload import encode_value
from sim.kernel import Kernel
from sim.producer import Producer

SEED = 9
TAIL_MS = 3 * 60_000


def bare_streams_run(workload: Workload) -> int:
    """The lesson's payments through one revenue application; returns the payments sent."""
    pay = run_payments(workload, SEED)
    kernel = Kernel(seed=SEED, brokers=3, broker_configs=BROKER_CONFIGS)
    kernel.cluster.create_topic(TOPIC, 2, 3, TOPIC_CONFIGS)
    kernel.cluster.create_topic("revenue", 2, 3)
    revenue_app(kernel, "revenue-v1", "v1", TOPIC, "revenue")
    producer = Producer(kernel, {"client.id": "payment-services"})
    for merchant, method, amount, event_ms, arrival_ms in zip(
            pay["merchant"], pay["method"], pay["amount_cents"], pay["event_ms"],
            pay["arrival_ms"], strict=True):
        kernel.run(until_ms=float(arrival_ms))
        producer.send(TOPIC, merchant, encode_value(method, int(amount)),
                      timestamp=int(event_ms))
    kernel.run(until_ms=workload.duration_ms + TAIL_MS)
    return len(pay)


def full_comparison() -> int:
    """The lesson's run with every architecture, and its comparison; returns its rows."""
    return len(comparison(simulate(seed=SEED)))


def timed(work) -> float:
    gc.collect()
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main(repeats: int) -> None:
    workload = Workload()
    bare, full = [], []
    for _ in range(repeats):
        bare.append(timed(lambda: bare_streams_run(workload)))
        full.append(timed(full_comparison))
    b, f = statistics.median(bare), statistics.median(full)
    print(f"workload: {workload.hours} simulated hours, a payment every {workload.every_ms} ms "
          f"on average; median of {repeats} run(s)")
    print(f"bare Streams run     {b:7.2f} s")
    print(f"comparison (4 arch.) {f:7.2f} s")
    print(f"ratio comparison / bare: {f / b:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
