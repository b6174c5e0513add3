"""Transactions' cost: transactional against plain producing, by transaction size, in one run.

Run with ``python benchmarks/bench_transactions.py``. For each transaction size S one producer
sends the same 4,000 records (100 bytes, keyed over 6 partitions, 3 brokers, RF 3) in groups
of S:

- **transactional**: ``begin_transaction()``, S × ``send()``, ``commit_transaction()``;
- **plain** (idempotent, the same acks=all): S × ``send()``, ``flush()`` — the same
  synchronisation points, without the coordinator.

It prints the *simulated* throughput of each (records per simulated second: what a Kafka
application would see) and their ratio, which is what the lesson's question "how big should a
transaction be?" needs. Every transaction costs an AddPartitionsToTxn round trip (and its
replicated __transaction_state write) before its batches may leave, an EndTxn, a marker per
partition (an offset each) — and the next transaction's AddPartitionsToTxn finds the previous
one still writing its markers (CONCURRENT_TRANSACTIONS) and is retried after Kafka's fixed
20 ms. So small transactions pay a lot and large ones less. The wall-clock time of the
simulation is printed too. Both sides run in this process, one after the other, so the ratio
does not depend on the machine.

Measured shape (seed 1): the ratio rises with S — about 0.09 at S = 1, 0.14 at 10, 0.19 at
100, 0.23 at 1,000 (there a plain group takes about 5 ms and the 20 ms retry dominates).
"""

from __future__ import annotations

import time

from sim.kernel import Kernel
from sim.producer import Producer

RECORDS = 4_000
SIZES = (1, 10, 100, 1_000)
PARTITIONS = 6


def run(size: int, transactional: bool) -> tuple[float, float, int]:
    """Simulated ms and wall-clock s to send ``RECORDS`` in groups of ``size``; markers."""
    start = time.perf_counter()
    kernel = Kernel(seed=1, brokers=3)
    kernel.cluster.create_topic("bench", PARTITIONS, 3, {"min.insync.replicas": 2})
    config = {"client.id": "bench", "linger.ms": 0}
    if transactional:
        config["transactional.id"] = "bench-app"
    producer = Producer(kernel, config)
    if transactional:
        producer.init_transactions()
    began = kernel.now_ms
    value = "x" * 100
    for first in range(0, RECORDS, size):
        if transactional:
            producer.begin_transaction()
        for i in range(first, min(first + size, RECORDS)):
            producer.send("bench", key=f"key-{i % 600}", value=value)
        if transactional:
            producer.commit_transaction()
        else:
            producer.flush()
    simulated = kernel.now_ms - began
    assert producer.acked == RECORDS
    markers = sum(int(p.log.batches()["is_control"].sum())
                  for p in kernel.cluster.topic("bench").partitions)
    return simulated, time.perf_counter() - start, markers


def main() -> None:
    print(f"{RECORDS:,} records, {PARTITIONS} partitions, RF 3; records per simulated second")
    print(f"{'size':>6} {'plain/s':>10} {'txn/s':>10} {'ratio':>6} {'markers':>8} "
          f"{'wall s (plain, txn)':>20}")
    for size in SIZES:
        plain_ms, plain_wall, _ = run(size, transactional=False)
        txn_ms, txn_wall, markers = run(size, transactional=True)
        plain_rate = RECORDS / plain_ms * 1000
        txn_rate = RECORDS / txn_ms * 1000
        print(f"{size:>6} {plain_rate:>10,.0f} {txn_rate:>10,.0f} {txn_rate / plain_rate:>6.2f} "
              f"{markers:>8} {plain_wall:>9.2f} {txn_wall:>9.2f}")


if __name__ == "__main__":
    main()
