"""Streams state benchmark: what RocksDB stores and restores cost, as ratios in one run.

Run with ``python benchmarks/bench_streams_state.py``. A counting topology (group_by_key →
count → to_stream → to) over ``RECORDS`` keyed records in a 4-partition topic runs once with
in-memory stores and once with RocksDB stores (``default.dsl.store``), with the record cache off
so that every record updates its store and the changelog. It prints records per wall-clock second
for both and their ratio (RocksDB / in-memory: the price of a real on-disk store). Then the
RocksDB instance crashes with its state directory lost and restarts; the restore reads every
changelog record back into RocksDB, and it prints restored records per wall-clock second, as a
ratio to the in-memory processing rate, and per simulated second (what the network model allows).

Machines differ several-fold, so only the ratios, measured here in one process, are comparable.
"""

from __future__ import annotations

import gc
import statistics
import time

from sim.kernel import Kernel
from sim.producer import Producer
from sim.streams import KafkaStreams, StreamsBuilder

RECORDS = 20_000
KEYS = 500
REPEATS = 3


def processed(streams: KafkaStreams) -> int:
    return sum(active.task.metrics["process-total"] for thread in streams.threads
               for active in thread.tasks.values())


def restored_tasks(streams: KafkaStreams) -> int:
    return sum(not active.restoring for thread in streams.threads
               for active in thread.tasks.values())


def run(store: str) -> tuple[float, float, float]:
    """Seconds to process the input; for RocksDB also the restore's wall-clock seconds and its
    records per simulated second (0, 0 for in-memory)."""
    kernel = Kernel(seed=1, brokers=3)
    kernel.cluster.create_topic("in", 4)
    kernel.cluster.create_topic("out", 4)
    producer = Producer(kernel, {"client.id": "input"})
    for i in range(RECORDS):
        producer.send("in", f"key-{i % KEYS}", i)
    builder = StreamsBuilder()
    builder.stream("in").group_by_key().count().to_stream().to("out")
    streams = KafkaStreams(kernel, builder.build(), {
        "application.id": "bench", "commit.interval.ms": 1000, "default.dsl.store": store,
        "statestore.cache.max.bytes": 0})
    gc.collect()
    start = time.perf_counter()
    streams.start()
    kernel.run_until(lambda _k: processed(streams) >= RECORDS)
    elapsed = time.perf_counter() - start
    assert processed(streams) == RECORDS
    if store != "rocksDB":
        streams.close()
        kernel.run(until_ms=kernel.now_ms + 5_000)
        return elapsed, 0.0, 0.0
    kernel.run(until_ms=kernel.now_ms + 5_000)  # the last changelog writes land
    streams.crash(lose_state=True)
    gc.collect()
    start = time.perf_counter()
    restarted = streams.restart()
    kernel.run_until(lambda _k: restored_tasks(restarted) == 4)
    restore_s = time.perf_counter() - start
    frame = restarted.restore_frame()
    simulated_s = (frame.end_ms.max() - frame.start_ms.min()) / 1000
    restored = int(frame.restored.sum())
    assert restored == RECORDS
    restarted.close()
    return elapsed, restore_s, restored / simulated_s


def main() -> None:
    memory_s, rocks_s, restore_s, simulated = [], [], [], []
    for _ in range(REPEATS):  # alternate, so that load changes hit both alike
        memory_s.append(run("in_memory")[0])
        rocks, restore, per_sim_s = run("rocksDB")
        rocks_s.append(rocks)
        restore_s.append(restore)
        simulated.append(per_sim_s)
    memory_rate = RECORDS / statistics.median(memory_s)
    rocks_rate = RECORDS / statistics.median(rocks_s)
    restore_rate = RECORDS / statistics.median(restore_s)
    print(f"{'':<26} {'records/s':>12} {'ratio':>8}")
    print(f"{'count, in-memory stores':<26} {memory_rate:>12,.0f} {1.0:>8.2f}")
    print(f"{'count, RocksDB stores':<26} {rocks_rate:>12,.0f} {rocks_rate / memory_rate:>8.2f}")
    print(f"{'restore into RocksDB':<26} {restore_rate:>12,.0f} "
          f"{restore_rate / memory_rate:>8.2f}")
    print(f"restore, simulated: {statistics.median(simulated):,.0f} records per simulated second")


if __name__ == "__main__":
    main()
